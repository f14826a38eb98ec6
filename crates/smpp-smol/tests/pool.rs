//! The pool over 127.0.0.1: spreading over its binds, a dropped bind
//! coming back while the others carry on, the TPS limit, and retries with
//! member pauses on `ESME_RTHROTTLED` / `ESME_RMSGQFUL` (the scenarios of
//! smpp-tokio's `pool_flow.rs`). Every test runs on smol and on async-std.

#[macro_use]
mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{sleep, timeout, Join, Rt, LIMIT};
use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::{Bind, CommandId, CommandStatus, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_smol::{
    Backoff, Client, Connection, Error, Handler, Inbound, Pool, PoolConfig, Server, ServerConfig,
    ServerHandle,
};

/// Answers the first `refuse` submits with `ESME_RTHROTTLED` and
/// `ESME_RMSGQFUL` in turn (all `ESME_RTHROTTLED` when `only_throttled`),
/// then accepts; counts every submit it sees, and records the connection
/// of each accepted one.
#[derive(Clone, Default)]
struct Smsc {
    seen: Arc<AtomicUsize>,
    accepted_on: Arc<Mutex<Vec<u64>>>,
    refuse: usize,
    only_throttled: bool,
}

impl Handler<Connection> for Smsc {
    async fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    async fn submit_sm(
        &self,
        conn: &Connection,
        _: SubmitSm,
    ) -> Result<SubmitSmResp, CommandStatus> {
        let n = self.seen.fetch_add(1, Ordering::SeqCst);
        if n < self.refuse {
            if self.only_throttled || n % 2 == 0 {
                return Err(CommandStatus::THROTTLED);
            }
            return Err(CommandStatus::MESSAGE_QUEUE_FULL);
        }
        self.accepted_on.lock().unwrap().push(conn.id());
        Ok(SubmitSmResp {
            message_id: format!("{n:X}").into(),
            ..Default::default()
        })
    }
}

type Connecting =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(Client, Inbound), Error>> + Send>>;

fn connector(addr: SocketAddr) -> impl FnMut() -> Connecting + Clone + Send + 'static {
    move || -> Connecting {
        let bind = Bind {
            system_id: "esme".into(),
            password: "secret".into(),
            ..Default::default()
        };
        let config = SessionConfig::default();
        Box::pin(Client::connect(addr, BindKind::Transceiver, bind, config))
    }
}

/// A running pool, its server and the server's task (kept: smol cancels a dropped task).
struct Setup {
    pool: Pool,
    server: ServerHandle,
    _serving: Join<std::io::Result<()>>,
}

/// Starts `smsc` and a pool of `size` binds to it, all bound.
async fn pool(rt: Rt, smsc: Smsc, size: usize, config: PoolConfig) -> Setup {
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
    pool_with(rt, smsc, size, config, backoff).await
}

async fn pool_with(rt: Rt, smsc: Smsc, size: usize, config: PoolConfig, backoff: Backoff) -> Setup {
    let server = Server::bind("127.0.0.1:0", smsc, ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let serving = rt.spawn(server.run());
    let (pool, _inbound) = Pool::with_config(size, connector(addr), backoff, LIMIT, config);
    timeout(LIMIT, async {
        while pool.bound() < size {
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("all members bound");
    Setup {
        pool,
        server: handle,
        _serving: serving,
    }
}

fn submit(i: usize) -> SubmitSm {
    SubmitSm {
        source_addr: "447700900123".into(),
        destination_addr: "447700900456".into(),
        short_message: i.to_string().into_bytes().into(),
        ..Default::default()
    }
}

async fn submit_all(pool: &Pool, n: usize) -> Vec<Result<smpp_proto::pdu::COctetString, Error>> {
    let all = futures_util::future::join_all((0..n).map(|i| pool.submit(submit(i))));
    timeout(LIMIT, all).await.expect("in time")
}

async fn pool_spreads_submits_over_its_binds(rt: Rt) {
    let s = pool(rt, Smsc::default(), 4, PoolConfig::default()).await;
    let results = submit_all(&s.pool, 400).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(s.server.connections().len(), 4);
    for conn in s.server.connections() {
        let submits = conn.stats().await.unwrap().received(CommandId::SUBMIT_SM);
        assert_eq!(submits, 100, "round robin over the binds");
    }
    s.pool.close().await;
    assert_eq!(s.pool.bound(), 0);
}

async fn a_dropped_bind_comes_back_while_the_others_carry_on(rt: Rt) {
    // A reconnection comes 300 ms after the drop: time to show the others carry on.
    let backoff = Backoff::new(Duration::from_millis(300), Duration::from_millis(300));
    let s = pool_with(
        rt,
        Smsc::default(),
        3,
        PoolConfig::default(),
        backoff.with_jitter(0.0),
    )
    .await;
    let victim = s.server.connections().remove(0);
    victim.close();
    timeout(LIMIT, async {
        while s.pool.bound() == 3 {
            sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the pool sees the drop");
    // The others carry on (no call waits for the dropped one). Calls that
    // were in flight on the dropped bind would fail (never resent: the MC
    // may have them); none are here.
    let started = Instant::now();
    let results = submit_all(&s.pool, 60).await;
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "waited for the dropped bind"
    );
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // And the dropped one is re-established.
    timeout(LIMIT, async {
        while s.pool.bound() < 3 || s.server.connections().len() < 3 {
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("rebound");
    assert!(s.server.connections().iter().all(|c| c.id() != victim.id()));
    s.pool.close().await;
}

async fn tps_limit_spaces_submits_over_the_whole_pool(rt: Rt) {
    let smsc = Smsc::default();
    let seen = smsc.seen.clone();
    let s = pool(rt, smsc, 3, PoolConfig::default().with_tps(100, 1)).await;
    let started = Instant::now();
    let results = submit_all(&s.pool, 50).await;
    let elapsed = started.elapsed();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 50);
    // 50 tokens at 100/s, 1 at once: the last at 0.49 s.
    assert!(elapsed >= Duration::from_millis(450), "took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    s.pool.close().await;
}

async fn throttled_submits_are_retried_until_accepted(rt: Rt) {
    let smsc = Smsc {
        refuse: 6,
        ..Smsc::default()
    };
    let seen = smsc.seen.clone();
    let config = PoolConfig::default()
        .with_throttle_pause(Duration::from_millis(20), Duration::from_millis(80))
        .with_max_throttle_retries(10);
    let s = pool(rt, smsc, 2, config).await;
    let results = submit_all(&s.pool, 10).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // Every refused attempt (THROTTLED and MSGQFUL alike) was sent again.
    assert_eq!(seen.load(Ordering::SeqCst), 10 + 6);
    s.pool.close().await;
}

async fn a_throttled_member_pauses_doubling_on_repeats(rt: Rt) {
    let smsc = Smsc {
        refuse: 2,
        only_throttled: true,
        ..Smsc::default()
    };
    let seen = smsc.seen.clone();
    let config = PoolConfig::default()
        .with_throttle_pause(Duration::from_millis(100), Duration::from_secs(1))
        .with_max_throttle_retries(5);
    let s = pool(rt, smsc, 1, config).await;
    let started = Instant::now();
    let id = timeout(LIMIT, s.pool.submit(submit(0)))
        .await
        .expect("in time")
        .expect("accepted on the third attempt");
    let elapsed = started.elapsed();
    assert_eq!(id, "2");
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    // Paused 100 ms, then 200 ms: nothing was sent through it meanwhile.
    assert!(elapsed >= Duration::from_millis(280), "took {elapsed:?}");
    assert_eq!(s.pool.paused(), 0);
    let started = Instant::now();
    s.pool.submit(submit(1)).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(100));
    s.pool.close().await;
}

async fn retries_exhausted_return_the_throttled_status(rt: Rt) {
    let smsc = Smsc {
        refuse: usize::MAX,
        only_throttled: true,
        ..Smsc::default()
    };
    let seen = smsc.seen.clone();
    let config = PoolConfig::default()
        .with_throttle_pause(Duration::from_millis(10), Duration::from_millis(20))
        .with_max_throttle_retries(2);
    let s = pool(rt, smsc, 2, config).await;
    let result = timeout(LIMIT, s.pool.submit(submit(0)))
        .await
        .expect("in time");
    assert!(
        matches!(result, Err(Error::Status(s)) if s == CommandStatus::THROTTLED),
        "{result:?}"
    );
    // The first attempt and two retries.
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    s.pool.close().await;
}

async fn message_parts_stay_on_one_member_through_throttling(rt: Rt) {
    let smsc = Smsc {
        refuse: 1,
        ..Smsc::default()
    };
    let (seen, accepted_on) = (smsc.seen.clone(), smsc.accepted_on.clone());
    let config = PoolConfig::default()
        .with_tps(1000, 1)
        .with_throttle_pause(Duration::from_millis(20), Duration::from_millis(80));
    let s = pool(rt, smsc, 3, config).await;
    let long = ShortMessage::text("x".repeat(400))
        .from("447700900123")
        .to("447700900456");
    let ids = timeout(LIMIT, s.pool.submit_message(&long))
        .await
        .expect("in time")
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

on_both!(
    pool_spreads_submits_over_its_binds,
    a_dropped_bind_comes_back_while_the_others_carry_on,
    tps_limit_spaces_submits_over_the_whole_pool,
    throttled_submits_are_retried_until_accepted,
    a_throttled_member_pauses_doubling_on_repeats,
    retries_exhausted_return_the_throttled_status,
    message_parts_stay_on_one_member_through_throttling,
);
