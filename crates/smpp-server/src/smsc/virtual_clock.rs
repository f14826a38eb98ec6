//! The server's time-dependent behaviour on a [`ManualClock`]: receipt
//! delays, validity expiry, scheduled delivery, retention and receipt
//! retries. Nothing sleeps: the clock moves when a test says so, and the
//! assertions name exact times (the real-time `timeout`s only guard the
//! loopback round trips).

use std::time::Duration;

use smpp_proto::message::MessageState;
use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Client, Inbound, InboundRequest};
use tokio::time::timeout;

use super::{parse_id, Smsc};
use crate::clock::{Clock, ManualClock};
use crate::config::{ServeConfig, StoreConfig};
use crate::jobs::Job;
use crate::store::{Outcome, Record};
use crate::{start_with_clock, NoObserver, RunningServer};

/// 2026-01-17 10:30:05 UTC.
const START_MS: u64 = 1_768_645_805_000;
/// A guard for loopback round trips, never a wait for the server's time.
const WAIT: Duration = Duration::from_secs(10);

async fn server(config: ServeConfig) -> (RunningServer<ManualClock>, ManualClock) {
    let clock = ManualClock::new(START_MS);
    let srv = start_with_clock(config, std::sync::Arc::new(NoObserver), clock.clone())
        .await
        .expect("server starts");
    (srv, clock)
}

async fn bind(srv: &RunningServer<ManualClock>) -> (Client, Inbound) {
    let bind = Bind {
        system_id: "smppclient1".into(),
        password: "password".into(),
        interface_version: 0x34,
        ..Default::default()
    };
    let config = SessionConfig::default().with_max_in_flight(64);
    let bound = timeout(
        WAIT,
        Client::connect(srv.smpp_addr(), BindKind::Transceiver, bind, config),
    )
    .await
    .expect("bind answered in time")
    .expect("bind accepted");
    // The server marks the session bound once its answer is out, which can
    // be a moment after the client has read it: a receipt due before then
    // is put off by the binding retry on this clock, which only the test
    // moves. Wait for the mark.
    until(|| {
        smsc(srv)
            .session_connections()
            .iter()
            .all(|(_, c)| c.bind_kind().is_some())
            && !smsc(srv).sessions().is_empty()
    })
    .await;
    bound
}

fn sm(registered_delivery: u8) -> SubmitSm {
    SubmitSm {
        source_addr: "447700900001".into(),
        destination_addr: "447700900002".into(),
        registered_delivery,
        short_message: "hello"[..].into(),
        ..Default::default()
    }
}

async fn submit(client: &Client, sm: SubmitSm) -> u64 {
    let id = timeout(WAIT, client.submit(sm))
        .await
        .expect("answered in time")
        .expect("accepted");
    parse_id(&id.to_string_lossy()).expect("a hex id")
}

async fn next(inbound: &Inbound) -> InboundRequest {
    timeout(WAIT, inbound.recv())
        .await
        .expect("a request in time")
        .expect("session open")
}

fn smsc(srv: &RunningServer<ManualClock>) -> &Smsc<ManualClock> {
    srv.smsc()
}

fn record(srv: &RunningServer<ManualClock>, id: u64) -> Record {
    smsc(srv).get(id).expect("the record")
}

/// The jobs armed for `id`, with their due times.
fn timers(srv: &RunningServer<ManualClock>, id: u64) -> Vec<(u64, Job)> {
    smsc(srv).jobs.armed(id)
}

/// Waits (yielding, never sleeping) until `done` holds.
async fn until(mut done: impl FnMut() -> bool) {
    timeout(WAIT, async {
        while !done() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("reached in time");
}

fn state(srv: &RunningServer<ManualClock>, id: u64) -> (&'static str, Option<u64>, u32) {
    let view = smsc(srv)
        .message(&format!("{id:X}"))
        .expect("a known message");
    (view.state, view.done_time_ms, view.receipts_sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_comes_when_the_drawn_delay_has_passed() {
    let mut config = ServeConfig::for_tests();
    config.dlr_delay = Duration::from_secs(10);
    let (srv, clock) = server(config).await;
    let (client, inbound) = bind(&srv).await;
    let id = submit(&client, sm(1)).await;
    let Outcome::Planned {
        due_ms, state: s, ..
    } = record(&srv, id).outcome
    else {
        panic!("a planned outcome");
    };
    assert!((START_MS..=START_MS + 10_000).contains(&due_ms), "{due_ms}");
    assert_eq!(s, MessageState::Delivered.to_u8());
    assert_eq!(timers(&srv, id), [(due_ms, Job::Finalize)]);
    if due_ms > START_MS {
        clock.advance(Duration::from_millis(due_ms - START_MS - 1));
        assert_eq!(state(&srv, id), ("ENROUTE", None, 0));
        clock.advance(Duration::from_millis(1));
    }
    assert_eq!(state(&srv, id), ("DELIVRD", Some(due_ms), 0));
    let receipt = next(&inbound).await;
    let r = receipt.receipt().expect("a receipt");
    assert_eq!(r.id, format!("{id:X}"));
    assert_eq!(r.state, MessageState::Delivered);
    assert_eq!(
        r.done_date.unwrap(),
        smpp_proto::message::time::receipt_date(due_ms),
        "done when due"
    );
    drop(receipt);
    until(|| state(&srv, id).2 == 1).await;
    assert_eq!(
        clock.now_ms(),
        due_ms.max(START_MS),
        "no time passed meanwhile"
    );
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validity_period_expires_a_message_scheduled_after_it() {
    let (srv, clock) = server(ServeConfig::for_tests()).await;
    let (client, inbound) = bind(&srv).await;
    let mut expiring = sm(1);
    expiring.schedule_delivery_time = "000000000100000R".into(); // in 1 minute
    expiring.validity_period = "000000000030000R".into(); // valid 30 s
    let id = submit(&client, expiring).await;
    assert_eq!(
        record(&srv, id).outcome,
        Outcome::Planned {
            due_ms: START_MS + 30_000,
            state: MessageState::Expired.to_u8(),
            error: 0
        }
    );
    assert_eq!(timers(&srv, id), [(START_MS + 30_000, Job::Finalize)]);
    clock.advance(Duration::from_millis(29_999));
    assert_eq!(state(&srv, id), ("ENROUTE", None, 0));
    clock.advance(Duration::from_millis(1));
    assert_eq!(state(&srv, id), ("EXPIRED", Some(START_MS + 30_000), 0));
    let r = next(&inbound).await.receipt().expect("a receipt");
    assert_eq!(r.state, MessageState::Expired);
    until(|| state(&srv, id).2 == 1).await;
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_message_is_delivered_at_its_time() {
    let (srv, clock) = server(ServeConfig::for_tests()).await;
    let (client, inbound) = bind(&srv).await;
    let mut later = sm(1);
    later.schedule_delivery_time = "000000000010000R".into(); // in 10 s
    let id = submit(&client, later).await;
    let due = START_MS + 10_000;
    assert_eq!(timers(&srv, id), [(due, Job::Finalize)]);
    clock.advance(Duration::from_millis(9_999));
    assert_eq!(state(&srv, id), ("ENROUTE", None, 0));
    // Still armed: nothing ran before its time.
    assert_eq!(timers(&srv, id), [(due, Job::Finalize)]);
    clock.advance(Duration::from_millis(1));
    let r = next(&inbound).await.receipt().expect("a receipt");
    assert_eq!(r.state, MessageState::Delivered);
    assert_eq!(
        r.done_date.unwrap(),
        smpp_proto::message::time::receipt_date(due)
    );
    until(|| state(&srv, id) == ("DELIVRD", Some(due), 1)).await;
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_dropped_once_final_for_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    for store in [
        StoreConfig::Memory,
        StoreConfig::Path(dir.path().join("store")),
    ] {
        let mut config = ServeConfig::for_tests();
        config.retention = Duration::from_secs(3600);
        config.store = store.clone();
        let (srv, clock) = server(config).await;
        let (client, _inbound) = bind(&srv).await;
        // No receipt asked: final at once, nothing left to do.
        let id = submit(&client, sm(0)).await;
        assert_eq!(state(&srv, id), ("DELIVRD", Some(START_MS), 0), "{store:?}");
        clock.advance(Duration::from_secs(3600));
        smsc(&srv).expire_old().await;
        assert!(
            smsc(&srv).get(id).is_some(),
            "kept until the retention ends"
        );
        clock.advance(Duration::from_millis(1));
        smsc(&srv).expire_old().await;
        assert!(smsc(&srv).get(id).is_none(), "{store:?}: dropped after it");
        assert!(smsc(&srv).message(&format!("{id:X}")).is_none());
        client.unbind().await.unwrap();
        srv.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_receipt_is_retried_with_a_growing_backoff() {
    let (srv, clock) = server(ServeConfig::for_tests()).await;
    let (client, inbound) = bind(&srv).await;
    let id = submit(&client, sm(1)).await;
    // Due at once; refused twice, then taken.
    let mut at = START_MS;
    for backoff in [1_000, 2_000] {
        let receipt = next(&inbound).await;
        assert_eq!(receipt.receipt().expect("a receipt").id, format!("{id:X}"));
        assert_eq!(clock.now_ms(), at);
        receipt.reject(CommandStatus::SYSTEM_ERROR);
        at += backoff;
        until(|| timers(&srv, id) == [(at, Job::Finalize)]).await;
        assert_eq!(state(&srv, id).2, 0, "not delivered");
        clock.advance(Duration::from_millis(backoff - 1));
        assert_eq!(
            timers(&srv, id),
            [(at, Job::Finalize)],
            "not before its time"
        );
        clock.advance(Duration::from_millis(1));
    }
    let receipt = next(&inbound).await;
    assert_eq!(clock.now_ms(), START_MS + 3_000);
    drop(receipt); // answered OK
    until(|| state(&srv, id).2 == 1).await;
    assert!(timers(&srv, id).is_empty(), "nothing more to do");
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}

/// The count of records in memory against the shards' tables.
fn counted(srv: &RunningServer<ManualClock>) -> (usize, usize) {
    let smsc = smsc(srv);
    let held = smsc
        .shards
        .iter()
        .map(|s| super::lock(s).records.len())
        .sum();
    (smsc.stored.load(std::sync::atomic::Ordering::Relaxed), held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_count_of_records_in_memory_follows_inserts_evictions_and_expiry() {
    let mut config = ServeConfig::for_tests();
    // Two per shard: the third message of a shard evicts its oldest.
    config.max_messages = 128;
    config.retention = Duration::from_secs(60);
    let (srv, clock) = server(config).await;
    let (client, _inbound) = bind(&srv).await;
    for _ in 0..300 {
        submit(&client, sm(0)).await;
    }
    let (stored, held) = counted(&srv);
    assert_eq!(stored, held, "counted as held");
    assert!(held <= 128, "evicted down to the limit: {held}");
    // Final at once (no receipt delay), then past the retention: forgotten.
    clock.advance(Duration::from_secs(61));
    while smsc(&srv).expire_old().await {}
    assert_eq!(counted(&srv), (0, 0));
    client.unbind().await.unwrap();
    srv.shutdown().await.unwrap();
}
