//! TLS client and server with a certificate made at test time.

use std::sync::Arc;

use futures_util::future::join_all;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::RootCertStore;
use smpp_async::{Error, ServerConfig};
use smpp_proto::pdu::{DeliverSm, SubmitSm};
use smpp_proto::session::{BindKind, CloseReason, SessionConfig};

use super::{local, to, LIMIT};
use crate::adapter::{timeout, Adapter, ClientOps, ConnOps, InboundOps, ServerOps};
use crate::Smsc;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration for "localhost", a client that trusts it and one
/// that trusts nobody.
fn tls_configs() -> (
    Arc<rustls::ServerConfig>,
    Arc<rustls::ClientConfig>,
    Arc<rustls::ClientConfig>,
) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert: CertificateDer<'static> = made.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let client = |roots: RootCertStore| {
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    };
    let mut trusted = RootCertStore::empty();
    trusted.add(cert).unwrap();
    (
        Arc::new(server),
        client(trusted),
        client(RootCertStore::empty()),
    )
}

pub async fn bind_submit_deliver_unbind_and_untrusted_certificate<A: Adapter>() {
    let (server_tls, trusting, untrusting) = tls_configs();
    let smsc = Smsc {
        echo_len: true,
        ..Smsc::default()
    };
    let running = A::serve(local(), smsc, ServerConfig::default(), Some(server_tls)).await;
    let connector = to(
        running.addr,
        BindKind::Transceiver,
        SessionConfig::default(),
    );
    let bound = A::connect(connector.clone(), Some((trusting, "localhost")));
    let (client, inbound) = timeout(LIMIT, bound).await.unwrap().unwrap();
    let sm = SubmitSm {
        short_message: vec![b'x'; 160].into(),
        ..Default::default()
    };
    // 8 tasks x 100 submits, pipelined through one TLS connection.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, sm) = (client.clone(), sm.clone());
            A::spawn(async move {
                let ids = join_all((0..100).map(|_| client.submit(sm.clone()))).await;
                assert!(ids.iter().all(|id| *id.as_ref().unwrap() == "len160"));
                ids.len()
            })
        })
        .collect();
    let mut sent = 0;
    for task in tasks {
        sent += timeout(LIMIT, task.join()).await.unwrap();
    }
    assert_eq!(sent, 800);

    // The server pushes over TLS too.
    let conn = running.server.receiver("esme").expect("bound");
    let pusher = A::spawn(async move { conn.deliver(DeliverSm::default()).await });
    drop(inbound.recv(LIMIT).await.unwrap().expect("deliver_sm"));
    let pushed = timeout(LIMIT, pusher.join()).await.unwrap();
    assert!(pushed.unwrap().command_status.is_ok());

    client.unbind().await.unwrap();
    assert_eq!(client.closed().await, CloseReason::Unbound);

    let refused = A::connect(connector, Some((untrusting, "localhost"))).await;
    assert!(matches!(refused, Err(Error::Io(_))), "{refused:?}");

    running.server.shutdown();
    timeout(LIMIT, running.task.join()).await.unwrap().unwrap();
}
