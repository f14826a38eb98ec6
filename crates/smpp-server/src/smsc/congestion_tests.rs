//! `smpp serve` and SMPP 5.0 `congestion_state`: every answer to a 5.0
//! ESME carries it (none to a 3.4 one), and the account's rate limit
//! raises it above 90 after a refusal, so the ESME narrows its window.

use std::time::Duration;

use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Client, Error};
use tokio::time::timeout;

use crate::clock::ManualClock;
use crate::config::ServeConfig;
use crate::{start_with_clock, NoObserver};

const START_MS: u64 = 1_768_645_805_000;
const WAIT: Duration = Duration::from_secs(10);

async fn bind(addr: std::net::SocketAddr, version: u8) -> Client {
    let bind = Bind {
        system_id: "smppclient1".into(),
        password: "password".into(),
        interface_version: version,
        ..Default::default()
    };
    let config = SessionConfig::default().with_max_in_flight(64);
    let (client, _inbound) = timeout(
        WAIT,
        Client::connect(addr, BindKind::Transmitter, bind, config),
    )
    .await
    .expect("bind answered in time")
    .expect("bind accepted");
    client
}

fn sm() -> SubmitSm {
    SubmitSm {
        source_addr: "447700900001".into(),
        destination_addr: "447700900002".into(),
        short_message: "hello"[..].into(),
        ..Default::default()
    }
}

async fn submit(client: &Client) -> Result<(), Error> {
    timeout(WAIT, client.submit(sm()))
        .await
        .expect("answered in time")
        .map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_refusal_makes_the_next_answers_read_nearing_congestion() {
    let mut config = ServeConfig::for_tests();
    config.tps = Some(1);
    let clock = ManualClock::new(START_MS);
    let srv = start_with_clock(config, std::sync::Arc::new(NoObserver), clock.clone())
        .await
        .expect("server starts");

    let v34 = bind(srv.smpp_addr(), 0x34).await;
    submit(&v34).await.unwrap();
    let stats = v34.stats().await.unwrap();
    assert_eq!(stats.peer_congestion, None, "nothing for a 3.4 ESME");
    v34.unbind().await.unwrap();

    let client = bind(srv.smpp_addr(), 0x50).await;
    clock.advance(Duration::from_secs(1));
    submit(&client).await.unwrap();
    let calm = client.stats().await.unwrap();
    assert!(calm.peer_congestion.is_some_and(|c| c < 80), "{calm:?}");
    let before = calm.max_in_flight;

    let refused = submit(&client).await;
    assert!(
        matches!(refused, Err(Error::Status(CommandStatus::THROTTLED))),
        "{refused:?}"
    );
    clock.advance(Duration::from_secs(1));
    submit(&client).await.unwrap();
    let stats = client.stats().await.unwrap();
    assert!(
        stats.peer_congestion.is_some_and(|c| c > 90),
        "nearing congestion after a refusal: {stats:?}"
    );
    assert!(stats.max_in_flight < before, "{before} -> {stats:?}");
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}
