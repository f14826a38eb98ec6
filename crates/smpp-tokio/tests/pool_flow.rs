//! Pool flow control over 127.0.0.1: the TPS limit, and retries with
//! member pauses on `ESME_RTHROTTLED` / `ESME_RMSGQFUL`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm, SubmitSmResp};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{
    Backoff, Client, Connection, Error, Handler, Inbound, Pool, PoolConfig, Server, ServerConfig,
    ServerHandle,
};
use tokio::time::timeout;

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

/// Starts `smsc` and a pool of `size` binds to it.
async fn pool(smsc: Smsc, size: usize, config: PoolConfig) -> Pool {
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
    pool_with(smsc, size, config, backoff).await.0
}

/// [`pool`] with its backoff, and the server's handle.
async fn pool_with(
    smsc: Smsc,
    size: usize,
    config: PoolConfig,
    backoff: Backoff,
) -> (Pool, ServerHandle) {
    let server = Server::bind("127.0.0.1:0", smsc, ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    tokio::spawn(server.run());
    let connect = move || -> Connecting {
        let bind = Bind {
            system_id: "esme".into(),
            password: "secret".into(),
            interface_version: 0x34,
            ..Default::default()
        };
        Box::pin(Client::connect(
            addr,
            BindKind::Transceiver,
            bind,
            SessionConfig::default(),
        ))
    };
    let (pool, _inbound) = Pool::with_config(size, connect, backoff, LIMIT, config);
    timeout(LIMIT, async {
        while pool.bound() < size {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("all members bound");
    (pool, handle)
}

fn submit(i: usize) -> SubmitSm {
    SubmitSm {
        source_addr: "447700900123".into(),
        destination_addr: "447700900456".into(),
        short_message: i.to_string().into_bytes().into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn tps_limit_spaces_submits_over_the_whole_pool() {
    let smsc = Smsc::default();
    let seen = smsc.seen.clone();
    let pool = pool(smsc, 3, PoolConfig::default().with_tps(100, 1)).await;
    let started = Instant::now();
    let results = timeout(
        LIMIT,
        futures_util::future::join_all((0..50).map(|i| pool.submit(submit(i)))),
    )
    .await
    .expect("in time");
    let elapsed = started.elapsed();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 50);
    // 50 tokens at 100/s, 1 at once: the last at 0.49 s.
    assert!(elapsed >= Duration::from_millis(450), "took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    pool.close().await;
}

#[tokio::test]
async fn no_tps_limit_by_default() {
    let pool = pool(Smsc::default(), 2, PoolConfig::default()).await;
    assert_eq!(pool.config(), &PoolConfig::default());
    let started = Instant::now();
    let results = timeout(
        LIMIT,
        futures_util::future::join_all((0..50).map(|i| pool.submit(submit(i)))),
    )
    .await
    .expect("in time");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(started.elapsed() < Duration::from_millis(400));
    pool.close().await;
}

#[tokio::test]
async fn throttled_submits_are_retried_until_accepted() {
    let smsc = Smsc {
        refuse: 6,
        ..Smsc::default()
    };
    let seen = smsc.seen.clone();
    let config = PoolConfig::default()
        .with_throttle_pause(Duration::from_millis(20), Duration::from_millis(80))
        .with_max_throttle_retries(10);
    let pool = pool(smsc, 2, config).await;
    let results = timeout(
        LIMIT,
        futures_util::future::join_all((0..10).map(|i| pool.submit(submit(i)))),
    )
    .await
    .expect("in time");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // Every refused attempt (THROTTLED and MSGQFUL alike) was sent again.
    assert_eq!(seen.load(Ordering::SeqCst), 10 + 6);
    pool.close().await;
}

#[tokio::test]
async fn a_throttled_member_pauses_doubling_on_repeats() {
    let smsc = Smsc {
        refuse: 2,
        only_throttled: true,
        ..Smsc::default()
    };
    let seen = smsc.seen.clone();
    let config = PoolConfig::default()
        .with_throttle_pause(Duration::from_millis(100), Duration::from_secs(1))
        .with_max_throttle_retries(5);
    let pool = pool(smsc, 1, config).await;
    let started = Instant::now();
    let id = timeout(LIMIT, pool.submit(submit(0)))
        .await
        .expect("in time")
        .expect("accepted on the third attempt");
    let elapsed = started.elapsed();
    assert_eq!(id, "2");
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    // Paused 100 ms, then 200 ms: nothing was sent through it meanwhile.
    assert!(elapsed >= Duration::from_millis(280), "took {elapsed:?}");
    // The success reset the pause: the next submit goes at once.
    assert_eq!(pool.paused(), 0);
    let started = Instant::now();
    pool.submit(submit(1)).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(100));
    pool.close().await;
}

#[tokio::test]
async fn retries_exhausted_return_the_throttled_status() {
    let smsc = Smsc {
        refuse: usize::MAX,
        only_throttled: true,
        ..Smsc::default()
    };
    let seen = smsc.seen.clone();
    let config = PoolConfig::default()
        .with_throttle_pause(Duration::from_millis(10), Duration::from_millis(20))
        .with_max_throttle_retries(2);
    let pool = pool(smsc, 2, config).await;
    let result = timeout(LIMIT, pool.submit(submit(0)))
        .await
        .expect("in time");
    assert!(
        matches!(result, Err(Error::Status(s)) if s == CommandStatus::THROTTLED),
        "{result:?}"
    );
    // The first attempt and two retries.
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    pool.close().await;
}

#[tokio::test]
async fn message_parts_stay_on_one_member_through_throttling() {
    let smsc = Smsc {
        refuse: 1,
        ..Smsc::default()
    };
    let (seen, accepted_on) = (smsc.seen.clone(), smsc.accepted_on.clone());
    let config = PoolConfig::default()
        .with_tps(1000, 1)
        .with_throttle_pause(Duration::from_millis(20), Duration::from_millis(80));
    let pool = pool(smsc, 3, config).await;
    let long = ShortMessage::text("x".repeat(400))
        .from("447700900123")
        .to("447700900456");
    let ids = timeout(LIMIT, pool.submit_message(&long))
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
    pool.close().await;
}

#[tokio::test]
async fn a_dropped_bind_comes_back_while_the_others_carry_on() {
    // A reconnection comes 300 ms after the drop: time to show the others carry on.
    let backoff = Backoff::new(Duration::from_millis(300), Duration::from_millis(300));
    let config = PoolConfig::default();
    let (pool, server) = pool_with(Smsc::default(), 3, config, backoff.with_jitter(0.0)).await;
    let victim = server.connections().remove(0);
    victim.close();
    timeout(LIMIT, async {
        while pool.bound() == 3 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the pool sees the drop");
    // The others carry on (no call waits for the dropped one).
    let started = Instant::now();
    let results = timeout(
        LIMIT,
        futures_util::future::join_all((0..60).map(|i| pool.submit(submit(i)))),
    )
    .await
    .expect("in time");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "waited for the dropped bind"
    );
    timeout(LIMIT, async {
        while pool.bound() < 3 || server.connections().len() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("rebound");
    assert!(server.connections().iter().all(|c| c.id() != victim.id()));
    pool.close().await;
}
