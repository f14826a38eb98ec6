//! TLS client and server with a certificate made at test time.

use std::sync::Arc;
use std::thread;

use smpp_blocking::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use smpp_blocking::rustls::{self, RootCertStore};
use smpp_blocking::{Client, Connection, Error, Handler, Server, ServerConfig};
use smpp_proto::pdu::{Bind, CommandStatus, DeliverSm, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, CloseReason, SessionConfig};

struct Echo;

impl Handler<Connection> for Echo {
    fn bind(&self, _: &Connection, _: BindKind, bind: &Bind) -> Result<(), CommandStatus> {
        if bind.password == "secret" {
            Ok(())
        } else {
            Err(CommandStatus::INVALID_PASSWORD)
        }
    }

    fn submit_sm(&self, _: &Connection, sm: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        Ok(SubmitSmResp {
            message_id: format!("len{}", sm.short_message.len()).into(),
            ..Default::default()
        })
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

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

#[test]
fn tls_bind_submit_deliver_unbind_and_untrusted_certificate() {
    let (server_tls, trusting, untrusting) = tls_configs();
    let server = Server::bind("127.0.0.1:0", Echo, ServerConfig::default()).unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let task = thread::spawn(move || server.run_tls(server_tls));
    let name = ServerName::try_from("localhost").unwrap();
    let bind = Bind {
        system_id: "esme".into(),
        password: "secret".into(),
        ..Default::default()
    };
    let (client, inbound) = Client::connect_tls(
        addr,
        name.clone(),
        trusting,
        BindKind::Transceiver,
        bind.clone(),
        SessionConfig::default(),
    )
    .unwrap();
    let sm = SubmitSm {
        short_message: vec![b'x'; 160].into(),
        ..Default::default()
    };
    // 8 threads x 100 submits, pipelined through one TLS connection.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (client, sm) = (client.clone(), sm.clone());
            thread::spawn(move || {
                let ids: Vec<_> = (0..100)
                    .map(|_| client.submit(sm.clone()).unwrap())
                    .collect();
                assert!(ids.iter().all(|id| *id == "len160"));
                ids.len()
            })
        })
        .collect();
    let sent: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(sent, 800);

    // The server pushes over TLS too.
    let conn = handle.receiver("esme").expect("bound");
    let pusher = thread::spawn(move || conn.deliver(DeliverSm::default()));
    drop(inbound.recv().expect("deliver_sm"));
    assert!(pusher.join().unwrap().unwrap().command_status.is_ok());

    client.unbind().unwrap();
    assert_eq!(client.closed(), CloseReason::Unbound);

    let refused = Client::connect_tls(
        addr,
        name,
        untrusting,
        BindKind::Transceiver,
        bind,
        SessionConfig::default(),
    );
    assert!(matches!(refused, Err(Error::Io(_))), "{refused:?}");

    handle.shutdown();
    task.join().unwrap().unwrap();
}
