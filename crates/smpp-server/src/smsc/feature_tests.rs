//! The MO feed's pace on a [`ManualClock`]: one message per interval of
//! the server's clock, however fast real time goes.

use std::sync::Arc;
use std::time::Duration;

use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::{Bind, Body};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Client, Inbound};
use tokio::time::timeout;

use crate::clock::ManualClock;
use crate::config::{Rate, ServeConfig};
use crate::{start_with_clock, NoObserver};

/// A guard for loopback round trips, never a wait for the server's time.
const WAIT: Duration = Duration::from_secs(10);
/// How long a message that must not come yet is given to show up anyway.
const ABSENT: Duration = Duration::from_millis(300);

async fn next_text(inbound: &Inbound) -> String {
    let request = timeout(WAIT, inbound.recv())
        .await
        .expect("a deliver_sm in time")
        .expect("session open");
    let Body::DeliverSm(sm) = request.body() else {
        panic!("not a deliver_sm: {:?}", request.pdu());
    };
    String::from_utf8_lossy(sm.payload()).into_owned()
}

async fn nothing_yet(inbound: &Inbound) {
    let early = timeout(ABSENT, inbound.recv()).await;
    assert!(early.is_err(), "a message before its time: {early:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mo_feed_delivers_one_message_per_interval_of_the_clock() {
    let clock = ManualClock::new(1_768_645_805_000);
    let srv = start_with_clock(
        ServeConfig::for_tests(),
        Arc::new(NoObserver),
        clock.clone(),
    )
    .await
    .expect("server starts");
    let bind = Bind {
        system_id: "smppclient1".into(),
        password: "password".into(),
        interface_version: 0x34,
        ..Default::default()
    };
    let (client, inbound) = timeout(
        WAIT,
        Client::connect(
            srv.smpp_addr(),
            BindKind::Receiver,
            bind,
            SessionConfig::default(),
        ),
    )
    .await
    .expect("bind answered in time")
    .expect("bind accepted");
    // Delivered only once the server has marked the bind (a moment after
    // its answer); before, a delivery waits for the binding retry on this
    // clock, which only the test moves.
    timeout(WAIT, async {
        while srv.smsc().sessions().is_empty()
            || srv
                .smsc()
                .session_connections()
                .iter()
                .any(|(_, c)| c.bind_kind().is_none())
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the bind marked in time");
    let messages: Vec<ShortMessage> = ["one", "two", "three"]
        .iter()
        .map(|t| ShortMessage::text(*t).from("447700900001").to("4470"))
        .collect();
    let feed = tokio::spawn(
        srv.smsc()
            .clone()
            .feed_mo(messages, "1/s".parse::<Rate>().unwrap()),
    );
    assert_eq!(next_text(&inbound).await, "one", "the first at once");
    nothing_yet(&inbound).await;
    clock.advance(Duration::from_millis(999));
    nothing_yet(&inbound).await;
    clock.advance(Duration::from_millis(1));
    assert_eq!(next_text(&inbound).await, "two");
    clock.advance(Duration::from_secs(1));
    assert_eq!(next_text(&inbound).await, "three");
    let accepted = timeout(WAIT, feed).await.expect("done").expect("joined");
    assert_eq!(accepted, 3);
    let _ = client.unbind().await;
    srv.shutdown().await.expect("shut down");
}
