//! Cross-runtime: the smol client against the smpp-tokio server, which runs
//! on its own tokio runtime in another thread.

use std::time::Duration;

use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, CloseReason, SessionConfig};
use smpp_testkit::adapter::timeout;
use smpp_testkit::suite::LIMIT;

struct TokioSmsc;

impl smpp_tokio::Handler<smpp_tokio::Connection> for TokioSmsc {
    async fn bind(
        &self,
        _: &smpp_tokio::Connection,
        _: BindKind,
        bind: &Bind,
    ) -> Result<(), CommandStatus> {
        if bind.password == "secret" {
            Ok(())
        } else {
            Err(CommandStatus::INVALID_PASSWORD)
        }
    }

    async fn submit_sm(
        &self,
        _: &smpp_tokio::Connection,
        sm: SubmitSm,
    ) -> Result<SubmitSmResp, CommandStatus> {
        Ok(SubmitSmResp {
            message_id: format!("T-{}", sm.short_message.len()).into(),
            ..Default::default()
        })
    }
}

/// Starts the tokio server in a thread; returns its address and a way to stop it.
fn tokio_server() -> (
    std::net::SocketAddr,
    smpp_tokio::ServerHandle,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let config = smpp_tokio::ServerConfig::default();
            let server = smpp_tokio::Server::bind("127.0.0.1:0", TokioSmsc, config)
                .await
                .unwrap();
            tx.send((server.local_addr().unwrap(), server.handle()))
                .unwrap();
            server.run().await.unwrap();
        });
    });
    let (addr, handle) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    (addr, handle, thread)
}

async fn bind_submit_unbind(addr: std::net::SocketAddr) {
    let bind = Bind {
        system_id: "esme".into(),
        password: "secret".into(),
        ..Default::default()
    };
    let config = SessionConfig::default().with_max_in_flight(16);
    let connecting = smpp_smol::Client::connect(addr, BindKind::Transceiver, bind, config);
    let (client, _inbound) = timeout(LIMIT, connecting).await.unwrap().unwrap();
    let sm = SubmitSm {
        source_addr: "447700900123".into(),
        destination_addr: "447700900456".into(),
        short_message: "hello".into(),
        ..Default::default()
    };
    let ids = futures_util::future::try_join_all((0..100).map(|_| client.submit(sm.clone())));
    let ids = timeout(LIMIT, ids).await.unwrap().unwrap();
    assert_eq!(ids.len(), 100);
    assert!(ids.iter().all(|id| id == "T-5"));
    timeout(LIMIT, client.unbind()).await.unwrap().unwrap();
    assert_eq!(client.closed().await, CloseReason::Unbound);

    let wrong = Bind {
        system_id: "esme".into(),
        password: "nope".into(),
        ..Default::default()
    };
    let refused =
        smpp_smol::Client::connect(addr, BindKind::Transmitter, wrong, SessionConfig::default())
            .await;
    assert!(
        matches!(
            refused,
            Err(smpp_smol::Error::Status(CommandStatus::INVALID_PASSWORD))
        ),
        "{refused:?}"
    );
}

#[test]
fn smol_client_against_tokio_server() {
    let (addr, server, thread) = tokio_server();
    smol::block_on(bind_submit_unbind(addr));
    async_std::task::block_on(bind_submit_unbind(addr));
    server.shutdown();
    thread.join().unwrap();
}
