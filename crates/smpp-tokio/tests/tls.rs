//! TLS client and server with a certificate made at test time.

use std::sync::Arc;
use std::time::Duration;

use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, CloseReason, SessionConfig};
use smpp_tokio::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use smpp_tokio::rustls::{self, RootCertStore};
use smpp_tokio::{Client, Connection, Error, Handler, Server, ServerConfig};
use tokio::time::timeout;

struct Echo;

impl Handler<Connection> for Echo {
    async fn bind(&self, _: &Connection, _: BindKind, bind: &Bind) -> Result<(), CommandStatus> {
        if bind.password == "secret" {
            Ok(())
        } else {
            Err(CommandStatus::INVALID_PASSWORD)
        }
    }

    async fn submit_sm(&self, _: &Connection, sm: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        let id = format!("len{}", sm.short_message.len());
        Ok(SubmitSmResp {
            message_id: id.into(),
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

#[tokio::test]
async fn tls_bind_submit_unbind_and_untrusted_certificate() {
    let (server_tls, trusting, untrusting) = tls_configs();
    let config = ServerConfig::default();
    let server = Server::bind("127.0.0.1:0", Echo, config).await.unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let task = tokio::spawn(server.run_tls(server_tls));
    let name = ServerName::try_from("localhost").unwrap();
    let bind = Bind {
        system_id: "esme".into(),
        password: "secret".into(),
        ..Default::default()
    };

    let (client, _inbound) = timeout(
        Duration::from_secs(10),
        Client::connect_tls(
            addr,
            name.clone(),
            trusting,
            BindKind::Transceiver,
            bind.clone(),
            SessionConfig::default(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let sm = SubmitSm {
        short_message: vec![b'x'; 160].into(),
        ..Default::default()
    };
    let ids = futures_util::future::try_join_all((0..100).map(|_| client.submit(sm.clone())))
        .await
        .unwrap();
    assert!(ids.iter().all(|id| *id == "len160"));
    client.unbind().await.unwrap();
    assert_eq!(client.closed().await, CloseReason::Unbound);

    let refused = Client::connect_tls(
        addr,
        name,
        untrusting,
        BindKind::Transceiver,
        bind,
        SessionConfig::default(),
    )
    .await;
    assert!(matches!(refused, Err(Error::Io(_))), "{refused:?}");

    handle.shutdown();
    timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
