//! The pool over 127.0.0.1: spreading over its binds, a dropped bind
//! coming back while the others carry on, the TPS limit, and retries with
//! member pauses on `ESME_RTHROTTLED` / `ESME_RMSGQFUL` (the scenarios of
//! smpp-tokio's `pool_flow.rs`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use smpp_blocking::{
    Backoff, Client, Connection, Error, Handler, Inbound, Pool, PoolConfig, Server, ServerConfig,
    ServerHandle,
};
use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::{
    Bind, COctetString, CommandId, CommandStatus, DeliverSm, SubmitSm, SubmitSmResp,
};
use smpp_proto::session::{BindKind, SessionConfig};

const LIMIT: Duration = Duration::from_secs(10);

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
    fn bind(&self, _: &Connection, _: BindKind, _: &Bind) -> Result<(), CommandStatus> {
        Ok(())
    }

    fn submit_sm(&self, conn: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
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

fn connector(
    addr: SocketAddr,
) -> impl FnMut() -> Result<(Client, Inbound), Error> + Clone + Send + 'static {
    move || {
        let bind = Bind {
            system_id: "esme".into(),
            password: "secret".into(),
            ..Default::default()
        };
        Client::connect(addr, BindKind::Transceiver, bind, SessionConfig::default())
    }
}

/// Polls `done` until it holds, for at most [`LIMIT`].
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

struct Setup {
    pool: Pool,
    inbound: Inbound,
    server: ServerHandle,
}

fn pool(smsc: Smsc, size: usize, config: PoolConfig) -> Setup {
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
    pool_with(smsc, size, config, backoff)
}

/// Starts `smsc` and a pool of `size` binds to it, all bound.
fn pool_with(smsc: Smsc, size: usize, config: PoolConfig, backoff: Backoff) -> Setup {
    let server = Server::bind("127.0.0.1:0", smsc, ServerConfig::default()).unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    thread::spawn(move || server.run());
    let (pool, inbound) = Pool::with_config(size, connector(addr), backoff, LIMIT, config);
    wait_for("all members bound", || pool.bound() == size);
    Setup {
        pool,
        inbound,
        server: handle,
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

/// `n` submits from `threads` threads at once.
fn submit_all(pool: &Pool, n: usize, threads: usize) -> Vec<Result<COctetString, Error>> {
    let results = Mutex::new(Vec::new());
    thread::scope(|s| {
        for t in 0..threads {
            let results = &results;
            s.spawn(move || {
                for i in (t..n).step_by(threads) {
                    let r = pool.submit(submit(i));
                    results.lock().unwrap().push(r);
                }
            });
        }
    });
    results.into_inner().unwrap()
}

#[test]
fn pool_spreads_submits_over_its_binds_and_merges_their_inbound() {
    let s = pool(Smsc::default(), 4, PoolConfig::default());
    let results = submit_all(&s.pool, 400, 8);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(s.server.connections().len(), 4);
    for conn in s.server.connections() {
        let submits = conn.stats().unwrap().received(CommandId::SUBMIT_SM);
        assert_eq!(submits, 100, "round robin over the binds");
        let mo = DeliverSm {
            short_message: "MO".into(),
            ..Default::default()
        };
        thread::spawn(move || conn.deliver(mo));
    }
    // Each bind's deliver_sm arrives on the pool's one Inbound.
    for _ in 0..4 {
        let request = s.inbound.recv_timeout(LIMIT).expect("a deliver_sm");
        assert_eq!(request.pdu().command_id(), CommandId::DELIVER_SM);
    }
    s.pool.close();
    assert_eq!(s.pool.bound(), 0);
}

#[test]
fn a_dropped_bind_comes_back_while_the_others_carry_on() {
    // A reconnection comes 300 ms after the drop: time to show the others carry on.
    let backoff = Backoff::new(Duration::from_millis(300), Duration::from_millis(300));
    let s = pool_with(
        Smsc::default(),
        3,
        PoolConfig::default(),
        backoff.with_jitter(0.0),
    );
    let victim = s.server.connections().remove(0);
    victim.close();
    wait_for("the pool to see the drop", || s.pool.bound() < 3);
    let started = Instant::now();
    let results = submit_all(&s.pool, 60, 4);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "waited for the dropped bind"
    );
    wait_for("the bind to come back", || {
        s.pool.bound() == 3 && s.server.connections().len() == 3
    });
    assert!(s.server.connections().iter().all(|c| c.id() != victim.id()));
    s.pool.close();
}

#[test]
fn tps_limit_spaces_submits_over_the_whole_pool() {
    let smsc = Smsc::default();
    let seen = smsc.seen.clone();
    let s = pool(smsc, 3, PoolConfig::default().with_tps(100, 1));
    let started = Instant::now();
    let results = submit_all(&s.pool, 50, 10);
    let elapsed = started.elapsed();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 50);
    // 50 tokens at 100/s, 1 at once: the last at 0.49 s.
    assert!(elapsed >= Duration::from_millis(450), "took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    s.pool.close();
}

#[test]
fn a_long_message_under_a_tps_limit_completes() {
    // More parts than `join_all` polls without a `FuturesOrdered` (30), each
    // waiting for a token: every part's timer must wake it.
    let s = pool(Smsc::default(), 2, PoolConfig::default().with_tps(200, 1));
    let long = ShortMessage::text("x".repeat(153 * 40))
        .from("447700900123")
        .to("447700900456");
    let (tx, rx) = std::sync::mpsc::channel();
    let pool = s.pool.clone();
    thread::spawn(move || tx.send(pool.submit_message(&long)));
    let ids = rx.recv_timeout(LIMIT).expect("no hang");
    assert_eq!(ids.expect("all parts accepted").len(), 40);
    s.pool.close();
}

#[test]
fn no_tps_limit_by_default() {
    let s = pool(Smsc::default(), 2, PoolConfig::default());
    assert_eq!(s.pool.config(), &PoolConfig::default());
    let started = Instant::now();
    let results = submit_all(&s.pool, 50, 10);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(started.elapsed() < Duration::from_millis(400));
    s.pool.close();
}

#[test]
fn throttled_submits_are_retried_until_accepted() {
    let smsc = Smsc {
        refuse: 6,
        ..Smsc::default()
    };
    let seen = smsc.seen.clone();
    let config = PoolConfig::default()
        .with_throttle_pause(Duration::from_millis(20), Duration::from_millis(80))
        .with_max_throttle_retries(10);
    let s = pool(smsc, 2, config);
    let results = submit_all(&s.pool, 10, 10);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // Every refused attempt (THROTTLED and MSGQFUL alike) was sent again.
    assert_eq!(seen.load(Ordering::SeqCst), 10 + 6);
    s.pool.close();
}

#[test]
fn a_throttled_member_pauses_doubling_on_repeats() {
    let smsc = Smsc {
        refuse: 2,
        only_throttled: true,
        ..Smsc::default()
    };
    let seen = smsc.seen.clone();
    let config = PoolConfig::default()
        .with_throttle_pause(Duration::from_millis(100), Duration::from_secs(1))
        .with_max_throttle_retries(5);
    let s = pool(smsc, 1, config);
    let started = Instant::now();
    let id = s
        .pool
        .submit(submit(0))
        .expect("accepted on the third attempt");
    let elapsed = started.elapsed();
    assert_eq!(id, "2");
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    // Paused 100 ms, then 200 ms: nothing was sent through it meanwhile.
    assert!(elapsed >= Duration::from_millis(280), "took {elapsed:?}");
    assert_eq!(s.pool.paused(), 0);
    let started = Instant::now();
    s.pool.submit(submit(1)).unwrap();
    assert!(started.elapsed() < Duration::from_millis(100));
    s.pool.close();
}

#[test]
fn retries_exhausted_return_the_throttled_status() {
    let smsc = Smsc {
        refuse: usize::MAX,
        only_throttled: true,
        ..Smsc::default()
    };
    let seen = smsc.seen.clone();
    let config = PoolConfig::default()
        .with_throttle_pause(Duration::from_millis(10), Duration::from_millis(20))
        .with_max_throttle_retries(2);
    let s = pool(smsc, 2, config);
    let result = s.pool.submit(submit(0));
    assert!(
        matches!(result, Err(Error::Status(s)) if s == CommandStatus::THROTTLED),
        "{result:?}"
    );
    // The first attempt and two retries.
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    s.pool.close();
}

#[test]
fn message_parts_stay_on_one_member_through_throttling() {
    let smsc = Smsc {
        refuse: 1,
        ..Smsc::default()
    };
    let (seen, accepted_on) = (smsc.seen.clone(), smsc.accepted_on.clone());
    let config = PoolConfig::default()
        .with_tps(1000, 1)
        .with_throttle_pause(Duration::from_millis(20), Duration::from_millis(80));
    let s = pool(smsc, 3, config);
    let long = ShortMessage::text("x".repeat(400))
        .from("447700900123")
        .to("447700900456");
    let ids = s.pool.submit_message(&long).expect("all parts accepted");
    assert_eq!(ids.len(), 3);
    assert_eq!(seen.load(Ordering::SeqCst), 3 + 1);
    let accepted_on = accepted_on.lock().unwrap().clone();
    assert_eq!(accepted_on.len(), 3);
    assert!(
        accepted_on.iter().all(|&c| c == accepted_on[0]),
        "{accepted_on:?}"
    );
    s.pool.close();
}
