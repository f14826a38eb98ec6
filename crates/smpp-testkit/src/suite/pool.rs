//! A pool of binds: round robin, one inbound, rebinding, and flow control
//! (a TPS limit, retries of throttled submits, paused members).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use smpp_async::{Backoff, Error, MemberState, Order, PoolConfig, ServerConfig};
use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::{COctetString, CommandId, CommandStatus, DeliverSm};
use smpp_proto::session::{BindKind, SessionConfig};

use super::{local, submit, to, wait_for, LIMIT};
use crate::adapter::{timeout, Adapter, ConnOps, InboundOps, PoolOps, ServerOps};
use crate::Smsc;

/// A pool of binds to a running SMSC, all bound.
struct Setup<A: Adapter> {
    pool: A::Pool,
    inbound: A::Inbound,
    server: A::Server,
}

async fn pool<A: Adapter>(smsc: Smsc, size: usize, config: PoolConfig) -> Setup<A> {
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
    pool_with(smsc, size, config, backoff).await
}

async fn pool_with<A: Adapter>(
    smsc: Smsc,
    size: usize,
    config: PoolConfig,
    backoff: Backoff,
) -> Setup<A> {
    let running = A::serve(local(), smsc, ServerConfig::default(), None).await;
    let connector = to(
        running.addr,
        BindKind::Transceiver,
        SessionConfig::default(),
    );
    let (pool, inbound) = A::pool(size, connector, backoff, LIMIT, config);
    wait_for("all members bound", || pool.bound() == size).await;
    Setup {
        pool,
        inbound,
        server: running.server,
    }
}

/// `n` numbered submits at once (asking for a receipt every `receipts`).
async fn submit_all<A: Adapter>(
    pool: &A::Pool,
    n: usize,
    receipts: Option<usize>,
) -> Vec<Result<COctetString, Error>> {
    let receipt = |i: usize| receipts.is_some_and(|every| i % every == 0);
    let calls = (0..n).map(|i| pool.submit(submit(&i.to_string(), receipt(i))));
    timeout(LIMIT, join_all(calls)).await.expect("in time")
}

pub async fn spreads_submits_over_its_binds_and_merges_their_inbound<A: Adapter>() {
    let s = pool::<A>(Smsc::default(), 4, PoolConfig::default()).await;
    let results = submit_all::<A>(&s.pool, 1000, Some(100)).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(s.pool.bound(), 4);
    assert_eq!(s.server.connections().len(), 4);
    for _ in 0..10 {
        let request = s.inbound.recv(LIMIT).await.unwrap().unwrap();
        assert!(request.receipt().is_some());
    }
    for conn in s.server.connections() {
        let submits = conn.stats().await.unwrap().received(CommandId::SUBMIT_SM);
        assert_eq!(submits, 250, "round robin over the binds");
        let mo = DeliverSm {
            short_message: "MO".into(),
            ..Default::default()
        };
        drop(A::spawn(async move { conn.deliver(mo).await }));
    }
    // Each bind's deliver_sm arrives on the pool's one Inbound.
    for _ in 0..4 {
        let request = s.inbound.recv(LIMIT).await.unwrap().expect("a deliver_sm");
        assert_eq!(request.pdu().command_id(), CommandId::DELIVER_SM);
        assert!(request.receipt().is_none());
    }
    s.pool.close().await;
    assert_eq!(s.pool.bound(), 0);
}

pub async fn a_dropped_bind_comes_back_while_the_others_carry_on<A: Adapter>() {
    // A reconnection comes 2 s after the drop: time to show the others carry
    // on (a margin a loaded CI machine does not eat: 300 ms did, on blocking).
    let backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(2));
    let config = PoolConfig::default();
    let s = pool_with::<A>(Smsc::default(), 3, config, backoff.with_jitter(0.0)).await;
    let victim = s.server.connections().remove(0);
    victim.close();
    wait_for("the pool to see the drop", || s.pool.bound() < 3).await;
    // The others carry on (no call waits for the dropped one).
    let started = Instant::now();
    let results = submit_all::<A>(&s.pool, 60, None).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited for the dropped bind"
    );
    wait_for("the bind to come back", || {
        s.pool.bound() == 3 && s.server.connections().len() == 3
    })
    .await;
    assert!(s.server.connections().iter().all(|c| c.id() != victim.id()));
    s.pool.close().await;
}

pub async fn tps_limit_spaces_submits_over_the_whole_pool<A: Adapter>() {
    let smsc = Smsc::default();
    let seen = smsc.seen.clone();
    let s = pool::<A>(smsc, 3, PoolConfig::default().with_tps(100, 1)).await;
    let started = Instant::now();
    let results = submit_all::<A>(&s.pool, 50, None).await;
    let elapsed = started.elapsed();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 50);
    // 50 tokens at 100/s, 1 at once: the last at 0.49 s.
    assert!(elapsed >= Duration::from_millis(450), "took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    s.pool.close().await;
}

pub async fn a_long_message_under_a_tps_limit_completes<A: Adapter>() {
    // More parts than `join_all` polls without a `FuturesOrdered` (30), each
    // waiting for a token: every part's timer must wake it.
    let s = pool::<A>(Smsc::default(), 2, PoolConfig::default().with_tps(200, 1)).await;
    let long = ShortMessage::text("x".repeat(153 * 40))
        .from("447700900123")
        .to("447700900456");
    let ids = timeout(LIMIT, s.pool.submit_message(long)).await;
    assert_eq!(ids.expect("no hang").expect("all parts accepted").len(), 40);
    s.pool.close().await;
}

pub async fn no_tps_limit_by_default<A: Adapter>() {
    let s = pool::<A>(Smsc::default(), 2, PoolConfig::default()).await;
    assert_eq!(s.pool.config(), PoolConfig::default());
    assert_eq!(s.pool.paused(), 0);
    let started = Instant::now();
    let results = submit_all::<A>(&s.pool, 50, None).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // Not paced: even a limit of 25/s would take 2 s (a loaded CI machine
    // ate a 400 ms bound).
    assert!(started.elapsed() < Duration::from_secs(2));
    s.pool.close().await;
}

pub async fn throttled_submits_are_retried_until_accepted<A: Adapter>() {
    let smsc = Smsc {
        refuse: 6,
        ..Smsc::default()
    };
    let seen = smsc.seen.clone();
    let config = PoolConfig::default()
        .with_throttle_pause(Duration::from_millis(20), Duration::from_millis(80))
        .with_max_throttle_retries(10);
    let s = pool::<A>(smsc, 2, config).await;
    let results = submit_all::<A>(&s.pool, 10, None).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // Every refused attempt (THROTTLED and MSGQFUL alike) was sent again.
    assert_eq!(seen.load(Ordering::SeqCst), 10 + 6);
    s.pool.close().await;
}

pub async fn a_throttled_member_pauses_doubling_on_repeats<A: Adapter>() {
    let smsc = Smsc {
        refuse: 2,
        only_throttled: true,
        ..Smsc::default()
    };
    let seen = smsc.seen.clone();
    let config = PoolConfig::default()
        .with_throttle_pause(Duration::from_millis(100), Duration::from_secs(1))
        .with_max_throttle_retries(5);
    let s = pool::<A>(smsc, 1, config).await;
    let started = Instant::now();
    let id = s.pool.submit(submit("0", false)).await;
    let elapsed = started.elapsed();
    // The first one accepted, on the third attempt.
    assert_eq!(id.expect("accepted on the third attempt"), "1");
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    // Paused 100 ms, then 200 ms: nothing was sent through it meanwhile.
    assert!(elapsed >= Duration::from_millis(280), "took {elapsed:?}");
    assert_eq!(s.pool.paused(), 0);
    // No pause left after the success (`paused() == 0` above): the next
    // submit goes at once, well under the 400 ms a third pause would take.
    let started = Instant::now();
    s.pool.submit(submit("1", false)).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(350));
    s.pool.close().await;
}

pub async fn retries_exhausted_return_the_throttled_status<A: Adapter>() {
    let smsc = Smsc {
        refuse: usize::MAX,
        only_throttled: true,
        ..Smsc::default()
    };
    let seen = smsc.seen.clone();
    let config = PoolConfig::default()
        .with_throttle_pause(Duration::from_millis(10), Duration::from_millis(20))
        .with_max_throttle_retries(2);
    let s = pool::<A>(smsc, 2, config).await;
    let result = s.pool.submit(submit("0", false)).await;
    assert!(
        matches!(result, Err(Error::Status(s)) if s == CommandStatus::THROTTLED),
        "{result:?}"
    );
    // The first attempt and two retries.
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    s.pool.close().await;
}

pub async fn message_parts_stay_on_one_member_through_throttling<A: Adapter>() {
    let smsc = Smsc {
        refuse: 1,
        ..Smsc::default()
    };
    let (seen, accepted_on) = (smsc.seen.clone(), smsc.accepted_on.clone());
    let config = PoolConfig::default()
        .with_tps(1000, 1)
        .with_throttle_pause(Duration::from_millis(20), Duration::from_millis(80));
    let s = pool::<A>(smsc, 3, config).await;
    let long = ShortMessage::text("x".repeat(400))
        .from("447700900123")
        .to("447700900456");
    let ids = s
        .pool
        .submit_message(long)
        .await
        .expect("all parts accepted");
    assert_eq!(ids.len(), 3);
    assert_eq!(seen.load(Ordering::SeqCst), 3 + 1);
    let accepted_on = accepted_on.lock().unwrap().clone();
    assert_eq!(accepted_on.len(), 3);
    assert!(
        accepted_on.iter().all(|&c| c == accepted_on[0]),
        "{accepted_on:?}"
    );
    s.pool.close().await;
}

/// Submits `n` messages at once, message `i` to destination `i % dests`
/// (the calls are made in order `0..n`), through a pool of `size` binds,
/// and returns the order in which the SMSC accepted each destination's
/// messages.
async fn accepted_per_destination<A: Adapter>(
    smsc: Smsc,
    size: usize,
    config: PoolConfig,
    n: usize,
    dests: usize,
) -> Vec<Vec<usize>> {
    let accepted = smsc.accepted.clone();
    let s = pool::<A>(smsc, size, config).await;
    let destination = |i: usize| format!("44770090{:04}", i % dests);
    let calls = (0..n).map(|i| {
        let mut sm = submit(&i.to_string(), false);
        sm.destination_addr = destination(i).into();
        s.pool.submit(sm)
    });
    let results = timeout(LIMIT, join_all(calls)).await.expect("in time");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    s.pool.close().await;
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), n, "every message accepted once");
    let mut per = vec![Vec::new(); dests];
    for (dest, text) in accepted {
        let i: usize = text.parse().expect("a number");
        assert_eq!(dest, destination(i));
        per[i % dests].push(i);
    }
    per
}

fn throttle_config() -> PoolConfig {
    PoolConfig::default()
        .with_throttle_pause(Duration::from_millis(10), Duration::from_millis(40))
        .with_max_throttle_retries(50)
}

/// Property, over seeded refusal patterns: with `Order::PerDestination`,
/// each destination's messages are accepted in the order they were
/// submitted, through throttles and retries on other members, and none
/// is lost or doubled. (With `Order::Any` the same run reorders: a
/// throttled message retried later is passed by the next one to its
/// destination.)
pub async fn per_destination_order_survives_throttling<A: Adapter>() {
    for seed in 1..=6u64 {
        // About a third of the first 90 attempts are throttled.
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let pattern: Vec<bool> = (0..90)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % 3 == 0
            })
            .collect();
        let smsc = Smsc {
            refuse_pattern: Some(pattern.into()),
            ..Smsc::default()
        };
        let config = throttle_config().with_order(Order::PerDestination);
        let per = accepted_per_destination::<A>(smsc, 3, config, 40, 4).await;
        for (dest, order) in per.iter().enumerate() {
            assert!(
                order.is_sorted(),
                "seed {seed}, destination {dest}: {order:?}"
            );
        }
    }
}

pub async fn members_report_their_state_and_last_round_trip<A: Adapter>() {
    let s = pool::<A>(Smsc::default(), 3, PoolConfig::default()).await;
    let before = s.pool.members();
    assert_eq!(before.len(), 3);
    for member in &before {
        assert_eq!(member.state, MemberState::Bound);
        assert_eq!(member.last_round_trip, None);
    }
    let probes = timeout(LIMIT, s.pool.enquire_link())
        .await
        .expect("in time");
    assert_eq!(probes.len(), 3);
    let after = s.pool.members();
    for (probe, member) in probes.into_iter().zip(&after) {
        let rtt = probe.expect("bound").expect("answered");
        assert!(rtt > Duration::ZERO && rtt < LIMIT, "{rtt:?}");
        assert_eq!(member.state, MemberState::Bound);
        assert_eq!(member.last_round_trip, Some(rtt));
    }
    // The server ends every session: the members go back to connecting
    // (their new sessions have measured nothing), then the pool stops.
    s.server.shutdown();
    wait_for("members unbound", || s.pool.bound() == 0).await;
    s.pool.close().await;
    for member in s.pool.members() {
        assert_eq!(member.state, MemberState::Stopped);
        assert_eq!(member.last_round_trip, None);
    }
    let probes = timeout(LIMIT, s.pool.enquire_link())
        .await
        .expect("in time");
    assert!(probes.iter().all(Option::is_none), "{probes:?}");
}
