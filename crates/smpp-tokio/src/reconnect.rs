//! Sessions that come back: [`ReconnectingClient`] (one bind, reconnected
//! with exponential backoff and jitter) and [`Pool`] (N of them, with
//! optional flow control: [`PoolConfig`]).

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smpp_proto::message::{ReferenceCounter, ShortMessage};
use smpp_proto::pdu::{Body, COctetString, CommandStatus, Pdu, SubmitSm};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::client::{Inbound, InboundRequest};
use crate::{Client, Error};

/// Exponential backoff with jitter between reconnection attempts.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Backoff {
    /// The delay after the first failure.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Fraction of each delay taken off at random (0: none, 1: "full jitter"),
    /// so that many clients do not reconnect in lockstep.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// A backoff from `initial` doubling up to `max`, with half jitter.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            ..Backoff::default()
        }
    }

    /// Sets [`Backoff::jitter`] (clamped to 0..=1).
    pub fn with_jitter(mut self, jitter: f64) -> Backoff {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// The delay before attempt `attempt + 1` (0 after the first failure):
    /// `min(initial * 2^attempt, max)`, less up to `jitter` of it.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1 << attempt.min(20))
            .min(self.max);
        // A fresh RandomState is randomly keyed: enough for spreading retries.
        let bits = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let unit = (bits >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(1.0 - self.jitter.clamp(0.0, 1.0) * unit)
    }
}

/// A [`Client`] that reconnects (with [`Backoff`]) whenever its session
/// ends, until closed or dropped. Cheap to clone.
///
/// Calls wait up to `wait` for a bound session and fail with
/// [`Error::NotConnected`] otherwise. A call that fails because the session
/// died is **not** retried (it may have reached the MC; resubmitting could
/// duplicate the message): retry it yourself if duplicates are acceptable.
/// Peer requests of every successive session arrive on one [`Inbound`].
#[derive(Clone, Debug)]
pub struct ReconnectingClient {
    current: watch::Receiver<Option<Client>>,
    supervisor: Arc<AbortOnDrop>,
    wait: Duration,
}

#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ReconnectingClient {
    /// Starts connecting with `connect` (for instance
    /// `move || Client::connect(addr, kind, bind.clone(), config.clone())`,
    /// or `Client::connect_tls`), and again after each session ends.
    pub fn new<F, Fut>(
        connect: F,
        backoff: Backoff,
        wait: Duration,
    ) -> (ReconnectingClient, Inbound)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(Client, Inbound), Error>> + Send,
    {
        let (sink, inbound) = mpsc::channel(64);
        let client = ReconnectingClient::with_sink(connect, backoff, wait, sink);
        (client, Inbound::forwarded(inbound))
    }

    fn with_sink<F, Fut>(
        mut connect: F,
        backoff: Backoff,
        wait: Duration,
        sink: mpsc::Sender<InboundRequest>,
    ) -> ReconnectingClient
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(Client, Inbound), Error>> + Send,
    {
        let (current_tx, current) = watch::channel(None);
        let supervisor = tokio::spawn(async move {
            let mut attempt = 0;
            loop {
                match connect().await {
                    Ok((client, mut inbound)) => {
                        attempt = 0;
                        current_tx.send_replace(Some(client));
                        // Forward peer requests until the session ends.
                        while let Some(request) = inbound.recv().await {
                            let _ = sink.send(request).await;
                        }
                        current_tx.send_replace(None);
                    }
                    Err(e) => tracing::warn!(error = %e, attempt, "connect failed"),
                }
                let delay = backoff.delay(attempt);
                attempt = attempt.saturating_add(1);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = current_tx.closed() => return, // every handle is gone
                }
            }
        });
        ReconnectingClient {
            current,
            supervisor: Arc::new(AbortOnDrop(supervisor)),
            wait,
        }
    }

    /// The bound session now, if any.
    pub fn current(&self) -> Option<Client> {
        self.current.borrow().clone().filter(|c| !c.is_closed())
    }

    /// Waits up to `wait` for a bound session.
    pub async fn client(&self) -> Result<Client, Error> {
        let mut current = self.current.clone();
        let bound = async {
            let bound = current.wait_for(|c| c.as_ref().is_some_and(|c| !c.is_closed()));
            bound.await.ok().and_then(|c| c.clone())
        };
        let client = tokio::time::timeout(self.wait, bound).await;
        client.ok().flatten().ok_or(Error::NotConnected)
    }

    /// [`Client::submit`] on the current session.
    pub async fn submit(&self, sm: SubmitSm) -> Result<COctetString, Error> {
        self.client().await?.submit(sm).await
    }

    /// [`Client::submit_message`] on the current session (all parts on one bind).
    pub async fn submit_message(&self, message: &ShortMessage) -> Result<Vec<COctetString>, Error> {
        self.client().await?.submit_message(message).await
    }

    /// [`Client::request`] on the current session.
    pub async fn request(&self, body: Body) -> Result<Pdu, Error> {
        self.client().await?.request(body).await
    }

    /// Stops reconnecting and unbinds the current session.
    pub async fn close(&self) {
        self.supervisor.0.abort();
        if let Some(client) = self.current() {
            let _ = client.unbind().await;
        }
    }
}

/// Flow control for a [`Pool`]: an optional rate limit for the whole pool,
/// and what to do when the MC answers `ESME_RTHROTTLED` or `ESME_RMSGQFUL`.
///
/// The default has no rate limit, pauses a throttled member for 1 s
/// (doubling up to 30 s on repeats) and retries a throttled request up to 3
/// times.
///
/// ```
/// use std::time::Duration;
/// use smpp_tokio::PoolConfig;
///
/// let config = PoolConfig::default()
///     .with_tps(100, 10) // 100 requests per second, bursts of up to 10
///     .with_throttle_pause(Duration::from_millis(500), Duration::from_secs(10))
///     .with_max_throttle_retries(5);
/// assert_eq!(config.tps, Some(100));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// The most requests per second the whole pool sends (every attempt,
    /// retries included, takes a token); `None`: no limit. `Some(0)` is
    /// taken as 1.
    pub tps: Option<u32>,
    /// How many requests may go at once after a quiet spell (the token
    /// bucket's size); at least 1.
    pub burst: u32,
    /// How long a member that got `ESME_RTHROTTLED` or `ESME_RMSGQFUL`
    /// sends nothing new. Doubles with each throttled answer in a row from
    /// that member, up to [`max_throttle_pause`](PoolConfig::max_throttle_pause);
    /// back to this after a success through it.
    pub throttle_pause: Duration,
    /// The longest pause of a throttled member.
    pub max_throttle_pause: Duration,
    /// How many times a throttled request is sent again before its
    /// [`Error::Status`] is returned (0: never retried).
    pub max_throttle_retries: u32,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            tps: None,
            burst: 1,
            throttle_pause: Duration::from_secs(1),
            max_throttle_pause: Duration::from_secs(30),
            max_throttle_retries: 3,
        }
    }
}

impl PoolConfig {
    /// Limits the pool to `tps` requests per second, `burst` (at least 1) at once.
    pub fn with_tps(mut self, tps: u32, burst: u32) -> PoolConfig {
        self.tps = Some(tps);
        self.burst = burst.max(1);
        self
    }

    /// Sets [`throttle_pause`](PoolConfig::throttle_pause) and
    /// [`max_throttle_pause`](PoolConfig::max_throttle_pause).
    pub fn with_throttle_pause(mut self, pause: Duration, max: Duration) -> PoolConfig {
        self.throttle_pause = pause;
        self.max_throttle_pause = max;
        self
    }

    /// Sets [`max_throttle_retries`](PoolConfig::max_throttle_retries).
    pub fn with_max_throttle_retries(mut self, retries: u32) -> PoolConfig {
        self.max_throttle_retries = retries;
        self
    }

    /// The pause after `strikes` (at least 1) throttled answers in a row.
    fn pause(&self, strikes: u32) -> Duration {
        let doubling = strikes.saturating_sub(1).min(20);
        self.throttle_pause
            .saturating_mul(1 << doubling)
            .min(self.max_throttle_pause.max(self.throttle_pause))
    }
}

/// A token bucket kept as a "theoretical arrival time" (GCRA): each
/// [`acquire`](RateLimiter::acquire) reserves the next send time under a
/// lock, then sleeps until it. Reservations are handed out in call order.
#[derive(Debug)]
struct RateLimiter {
    interval: Duration,
    /// How far ahead of `interval` spacing a send may go: `(burst - 1) * interval`.
    tolerance: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    fn new(tps: u32, burst: u32) -> RateLimiter {
        let interval = Duration::from_secs(1) / tps.max(1);
        RateLimiter {
            interval,
            tolerance: interval.saturating_mul(burst.max(1) - 1),
            next: Mutex::new(None),
        }
    }

    async fn acquire(&self) {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let tat = next.map_or(now, |t| t.max(now));
            let at = tat.checked_sub(self.tolerance).map_or(now, |t| t.max(now));
            *next = Some(tat + self.interval);
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// A member's throttle state.
#[derive(Debug, Default)]
struct Throttle {
    /// Sends nothing new before this.
    paused_until: Mutex<Option<Instant>>,
    /// Throttled answers in a row.
    strikes: AtomicU32,
}

impl Throttle {
    fn paused_until(&self) -> Option<Instant> {
        let until = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        until.filter(|&t| t > Instant::now())
    }

    fn throttled(&self, config: &PoolConfig) {
        let strikes = self
            .strikes
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let until = Instant::now() + config.pause(strikes);
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        *paused = Some(paused.map_or(until, |t| t.max(until)));
    }

    fn succeeded(&self) {
        self.strikes.store(0, Ordering::Relaxed);
    }
}

/// The statuses that mean "not now, try later": the request was not accepted.
fn is_throttle(e: &Error) -> bool {
    matches!(
        e,
        Error::Status(s) if *s == CommandStatus::THROTTLED || *s == CommandStatus::MESSAGE_QUEUE_FULL
    )
}

/// N reconnecting binds used in turn: spreads requests over several
/// sessions (and connections) to one MC. Cheap to clone.
///
/// # Flow control ([`PoolConfig`])
///
/// With [`PoolConfig::tps`] set, every request the pool sends (each part of
/// a [`submit_message`](Pool::submit_message), each retry) first waits for a
/// token of one bucket shared by the whole pool; tokens are handed out in
/// the order calls ask for them. (A call dropped while it waits for its
/// token still uses up its slot.)
///
/// When a request through a member is answered `ESME_RTHROTTLED` or
/// `ESME_RMSGQFUL`, that member is paused (no new request goes through it
/// for [`PoolConfig::throttle_pause`], doubling on repeats) and the request
/// is sent again, through the next unpaused member, up to
/// [`PoolConfig::max_throttle_retries`] times; then the call returns
/// [`Error::Status`] with that status. Requests already in flight on a
/// member that gets paused are not affected. Other errors are never retried
/// (see [`ReconnectingClient`]).
///
/// # Order
///
/// A caller that awaits each call before making the next has its requests
/// sent (and accepted) in that order: a call returns only once its request
/// was accepted or failed for good, retries included. Calls made
/// concurrently (`join_all`, several tasks) take tokens in the order they
/// are first polled, but may go through different sessions, and a throttled
/// one is resent after others: no order among them is guaranteed.
#[derive(Clone, Debug)]
pub struct Pool {
    members: Arc<[ReconnectingClient]>,
    throttles: Arc<[Throttle]>,
    next: Arc<AtomicUsize>,
    config: Arc<PoolConfig>,
    limiter: Option<Arc<RateLimiter>>,
    refs: Arc<Mutex<ReferenceCounter>>,
}

impl Pool {
    /// Starts `size` (at least 1) [`ReconnectingClient`]s made with
    /// `connect`; their peer requests all arrive on the one [`Inbound`].
    /// Flow control is [`PoolConfig::default`] (no rate limit).
    pub fn new<F, Fut>(size: usize, connect: F, backoff: Backoff, wait: Duration) -> (Pool, Inbound)
    where
        F: FnMut() -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<(Client, Inbound), Error>> + Send,
    {
        Pool::with_config(size, connect, backoff, wait, PoolConfig::default())
    }

    /// [`Pool::new`] with the flow control of `config`.
    pub fn with_config<F, Fut>(
        size: usize,
        connect: F,
        backoff: Backoff,
        wait: Duration,
        config: PoolConfig,
    ) -> (Pool, Inbound)
    where
        F: FnMut() -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<(Client, Inbound), Error>> + Send,
    {
        let (sink, inbound) = mpsc::channel(64);
        let size = size.max(1);
        let members = (0..size)
            .map(|_| {
                let (connect, backoff) = (connect.clone(), backoff.clone());
                ReconnectingClient::with_sink(connect, backoff, wait, sink.clone())
            })
            .collect();
        let throttles = (0..size).map(|_| Throttle::default()).collect();
        let limiter = config
            .tps
            .map(|tps| Arc::new(RateLimiter::new(tps, config.burst)));
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u16);
        let pool = Pool {
            members,
            throttles,
            next: Arc::new(AtomicUsize::new(0)),
            config: Arc::new(config),
            limiter,
            refs: Arc::new(Mutex::new(ReferenceCounter::new(seed))),
        };
        (pool, Inbound::forwarded(inbound))
    }

    /// The pool's flow control.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// How many members are bound now.
    pub fn bound(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.current().is_some())
            .count()
    }

    /// How many members are paused now after a throttled answer.
    pub fn paused(&self) -> usize {
        self.throttles
            .iter()
            .filter(|t| t.paused_until().is_some())
            .count()
    }

    /// The next bound, unpaused member in turn; waits for a pause to end
    /// when every bound member is paused, and (like
    /// [`ReconnectingClient::client`]) when none is bound.
    pub async fn client(&self) -> Result<Client, Error> {
        self.pick().await.map(|(_, client)| client)
    }

    async fn pick(&self) -> Result<(usize, Client), Error> {
        let n = self.members.len();
        loop {
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            let mut earliest: Option<Instant> = None;
            for i in (0..n).map(|i| (start + i) % n) {
                let Some(client) = self.members[i].current() else {
                    continue;
                };
                match self.throttles[i].paused_until() {
                    None => return Ok((i, client)),
                    Some(t) => earliest = Some(earliest.map_or(t, |e| e.min(t))),
                }
            }
            match earliest {
                Some(t) => tokio::time::sleep_until(t).await,
                None => {
                    let i = start % n;
                    self.members[i].client().await?;
                }
            }
        }
    }

    /// Member `i` once bound and unpaused (for requests pinned to one member).
    async fn pick_pinned(&self, i: usize) -> Result<Client, Error> {
        loop {
            if let Some(t) = self.throttles[i].paused_until() {
                tokio::time::sleep_until(t).await;
            }
            let client = self.members[i].client().await?;
            if self.throttles[i].paused_until().is_none() {
                return Ok(client);
            }
        }
    }

    /// Sends with `op` under the pool's flow control: a token, an unpaused
    /// member (member `pinned` only, if given), retries on throttling.
    async fn send<T, F, Fut>(&self, pinned: Option<usize>, op: F) -> Result<T, Error>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut retries = 0;
        loop {
            if let Some(limiter) = &self.limiter {
                limiter.acquire().await;
            }
            let (i, client) = match pinned {
                Some(i) => (i, self.pick_pinned(i).await?),
                None => self.pick().await?,
            };
            match op(client).await {
                Ok(value) => {
                    self.throttles[i].succeeded();
                    return Ok(value);
                }
                Err(e) if is_throttle(&e) => {
                    self.throttles[i].throttled(&self.config);
                    if retries >= self.config.max_throttle_retries {
                        return Err(e);
                    }
                    retries += 1;
                    tracing::debug!(member = i, retries, error = %e, "throttled; retrying");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`Client::submit`] on the next unpaused member, under the pool's flow control.
    pub async fn submit(&self, sm: SubmitSm) -> Result<COctetString, Error> {
        self.send(None, |client| {
            let sm = sm.clone();
            async move { client.submit(sm).await }
        })
        .await
    }

    /// [`Client::submit_message`] with all parts on one member (pipelined,
    /// in order), each part under the pool's flow control; a throttled part
    /// is retried on the same member once its pause ends. Fails with the
    /// first part that fails; the others may have been accepted.
    pub async fn submit_message(&self, message: &ShortMessage) -> Result<Vec<COctetString>, Error> {
        let parts = {
            let mut refs = self.refs.lock().unwrap_or_else(|e| e.into_inner());
            message.build(&mut refs)?
        };
        let (member, _) = self.pick().await?;
        let send = |sm: SubmitSm| {
            self.send(Some(member), move |client| {
                let sm = sm.clone();
                async move { client.submit(sm).await }
            })
        };
        futures_util::future::try_join_all(parts.into_iter().map(send)).await
    }

    /// [`Client::request`] on the next unpaused member, under the pool's flow control.
    pub async fn request(&self, body: Body) -> Result<Pdu, Error> {
        self.send(None, |client| {
            let body = body.clone();
            async move { client.request(body).await }
        })
        .await
    }

    /// Stops reconnecting and unbinds every member.
    pub async fn close(&self) {
        futures_util::future::join_all(self.members.iter().map(|m| m.close())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_doubles_up_to_the_cap() {
        let config = PoolConfig::default()
            .with_throttle_pause(Duration::from_millis(100), Duration::from_millis(350));
        assert_eq!(config.pause(1), Duration::from_millis(100));
        assert_eq!(config.pause(2), Duration::from_millis(200));
        assert_eq!(config.pause(3), Duration::from_millis(350));
        assert_eq!(config.pause(99), Duration::from_millis(350));
    }

    #[tokio::test]
    async fn rate_limiter_spaces_after_the_burst() {
        let limiter = RateLimiter::new(100, 3);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        let burst = start.elapsed();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        // 8 tokens at 100/s, 3 at once: the 8th at 50 ms.
        let all = start.elapsed();
        assert!(burst < Duration::from_millis(30), "burst took {burst:?}");
        assert!(all >= Duration::from_millis(45), "8 tokens took {all:?}");
        assert!(all < Duration::from_secs(2), "8 tokens took {all:?}");
    }
}
