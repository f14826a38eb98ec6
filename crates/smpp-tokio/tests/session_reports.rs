//! What the session reports, over the wire: a response that arrives after
//! its request timed out is counted in the client's stats (and reported as
//! `Event::LateResponse`); the SMPP version both ends agree on at bind; the
//! handler hears once of each connection that ended.

use std::time::Duration;

use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Client, Connection, Error, Handler, Server, ServerConfig};

/// An SMSC that answers every submit_sm after `delay`.
struct Slow {
    delay: Duration,
}

impl Handler<Connection> for Slow {
    async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    async fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        tokio::time::sleep(self.delay).await;
        Ok(SubmitSmResp {
            message_id: "late-1".into(),
            ..Default::default()
        })
    }
}

#[tokio::test]
async fn a_late_response_is_counted_and_the_session_goes_on() {
    let server = Server::bind(
        "127.0.0.1:0",
        Slow {
            delay: Duration::from_millis(400),
        },
        ServerConfig::default(),
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run());

    let config = SessionConfig::default().with_response_timeout(Duration::from_millis(100));
    let bind = Bind {
        system_id: "esme".into(),
        password: "pw".into(),
        ..Default::default()
    };
    let (client, _inbound) = Client::connect(addr, BindKind::Transmitter, bind, config)
        .await
        .unwrap();
    let before = client.stats().await.unwrap();
    assert_eq!((before.late_responses, before.unexpected_responses), (0, 0));

    let result = client.submit(SubmitSm::default()).await;
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");

    // The answer comes about 300 ms after the timeout.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let stats = client.stats().await.unwrap();
        if stats.late_responses > 0 || tokio::time::Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(stats.late_responses, 1);
    assert_eq!(stats.unexpected_responses, 0);
    assert!(
        !client.is_closed(),
        "a late response does not end the session"
    );
    client.unbind().await.unwrap();
}

/// Accepts every bind and remembers the version its connection agreed.
struct Versions(std::sync::Mutex<Vec<Option<u8>>>);

impl Handler<Connection> for Versions {
    async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    async fn submit_sm(
        &self,
        conn: &Connection,
        _: SubmitSm,
    ) -> Result<SubmitSmResp, CommandStatus> {
        self.0.lock().unwrap().push(conn.interface_version());
        Ok(SubmitSmResp::default())
    }
}

#[tokio::test]
async fn the_version_is_negotiated_over_the_wire() {
    let handler = std::sync::Arc::new(Versions(std::sync::Mutex::new(Vec::new())));
    let server = Server::bind(
        "127.0.0.1:0",
        Shared(handler.clone()),
        ServerConfig::default(),
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run());
    for (offered, agreed, tlv) in [
        (0x50, 0x50, Some(0x50)),
        (0x34, 0x34, Some(0x34)),
        (0x33, 0x33, None),
    ] {
        let bind = Bind {
            system_id: "esme".into(),
            interface_version: offered,
            ..Default::default()
        };
        let (client, _inbound) =
            Client::connect(addr, BindKind::Transceiver, bind, SessionConfig::default())
                .await
                .unwrap();
        let resp = match &client.bind_response().body {
            smpp_proto::pdu::Body::BindTransceiverResp(r) => r.tlvs.sc_interface_version(),
            other => panic!("{other:?}"),
        };
        assert_eq!(resp, tlv, "sc_interface_version for a {offered:#x} bind");
        assert_eq!(client.interface_version(), agreed);
        client.submit(SubmitSm::default()).await.unwrap();
        client.unbind().await.unwrap();
    }
    assert_eq!(
        *handler.0.lock().unwrap(),
        vec![Some(0x50), Some(0x34), Some(0x33)]
    );
}

/// A handler shared with the test.
struct Shared(std::sync::Arc<Versions>);

impl Handler<Connection> for Shared {
    async fn bind(
        &self,
        conn: &Connection,
        kind: BindKind,
        bind: &Bind,
    ) -> Result<(), CommandStatus> {
        self.0.bind(conn, kind, bind).await
    }

    async fn submit_sm(
        &self,
        conn: &Connection,
        sm: SubmitSm,
    ) -> Result<SubmitSmResp, CommandStatus> {
        self.0.submit_sm(conn, sm).await
    }
}

/// The server side: a `deliver_sm_resp` that comes after the server's
/// request timed out is added to [`ServerConfig::late_responses`] (what
/// `smpp serve` exports on /metrics).
#[tokio::test]
async fn a_late_response_to_the_server_is_counted() {
    let late = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let config = ServerConfig::default()
        .with_session(SessionConfig::default().with_response_timeout(Duration::from_millis(100)))
        .with_late_responses(late.clone());
    let server = Server::bind(
        "127.0.0.1:0",
        Slow {
            delay: Duration::ZERO,
        },
        config,
    )
    .await
    .unwrap();
    let (addr, handle) = (server.local_addr().unwrap(), server.handle());
    tokio::spawn(server.run());
    let bind = Bind {
        system_id: "esme".into(),
        ..Default::default()
    };
    let (client, inbound) =
        Client::connect(addr, BindKind::Transceiver, bind, SessionConfig::default())
            .await
            .unwrap();
    // The ESME answers every deliver_sm 400 ms late.
    tokio::spawn(async move {
        while let Some(request) = inbound.recv().await {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let body = smpp_proto::pdu::Body::DeliverSmResp(Default::default());
            request.respond(CommandStatus::OK, body);
        }
    });
    let conn = handle.receiver("esme").expect("bound as transceiver");
    let sent = conn.deliver(Default::default()).await;
    assert!(matches!(sent, Err(Error::Timeout)), "{sent:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while late.load(std::sync::atomic::Ordering::Relaxed) == 0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(late.load(std::sync::atomic::Ordering::Relaxed), 1);
    client.unbind().await.unwrap();
}

/// Records the connections whose end the server reported.
#[derive(Clone, Default)]
struct Ends(std::sync::Arc<std::sync::Mutex<Vec<u64>>>);

impl Handler<Connection> for Ends {
    async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    fn ended(&self, conn: &Connection) {
        self.0.lock().unwrap().push(conn.id());
    }
}

#[tokio::test]
async fn the_handler_hears_once_of_each_connection_that_ended() {
    let ends = Ends::default();
    let server = Server::bind("127.0.0.1:0", ends.clone(), ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    tokio::spawn(server.run());
    let bind = || Bind {
        system_id: "esme".into(),
        ..Default::default()
    };
    // One unbinds, one just goes away, one stays.
    let config = SessionConfig::default;
    let (a, _) = Client::connect(addr, BindKind::Transmitter, bind(), config())
        .await
        .unwrap();
    let (b, _) = Client::connect(addr, BindKind::Transmitter, bind(), config())
        .await
        .unwrap();
    let (_c, _c_in) = Client::connect(addr, BindKind::Transmitter, bind(), config())
        .await
        .unwrap();
    let ids: Vec<u64> = {
        let mut ids: Vec<u64> = handle.connections().iter().map(|c| c.id()).collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(ids.len(), 3);
    a.unbind().await.unwrap();
    b.close();
    drop(b);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while ends.0.lock().unwrap().len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await; // no more than these two
    let mut ended = ends.0.lock().unwrap().clone();
    ended.sort_unstable();
    assert_eq!(ended, ids[..2]);
    assert_eq!(handle.connections().len(), 1);
}
