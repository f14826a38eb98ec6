//! A response that arrives after its request timed out is counted in the
//! client's stats (and reported as `Event::LateResponse`), over the wire.

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
