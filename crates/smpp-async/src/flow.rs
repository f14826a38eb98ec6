//! Reconnection and flow control for binds, without a clock or a runtime:
//! the reconnection delays ([`Backoff`]), the pool's policy ([`PoolConfig`]), a token bucket that hands out send times
//! ([`RateLimiter`]), each member's throttle pause ([`Throttle`]) and the
//! choice of the next member ([`pick`]). The adapters' pools sleep until
//! the instants these return.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use smpp_proto::pdu::CommandStatus;

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
    #[must_use]
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

/// Flow control for a pool: an optional rate limit for the whole pool, and
/// what to do when the MC answers `ESME_RTHROTTLED` or `ESME_RMSGQFUL`.
///
/// The default has no rate limit, pauses a throttled member for 1 s
/// (doubling up to 30 s on repeats) and retries a throttled request up to 3
/// times.
///
/// ```
/// use std::time::Duration;
/// use smpp_async::PoolConfig;
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
    /// How many times a throttled request is sent again before its error
    /// status is returned (0: never retried).
    pub max_throttle_retries: u32,
    /// Whether submits to one destination keep their order through
    /// throttling and retries ([`Order`]).
    pub order: Order,
}

/// What order a pool keeps among concurrent submits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Order {
    /// None among concurrent calls: each goes as soon as it can, so a
    /// message retried after a throttle may be passed by later ones.
    #[default]
    Any,
    /// Per `destination_addr`: a submit waits until every earlier submit
    /// (call order) to the same destination has ended, so one destination
    /// has one message in flight and its messages are accepted in the
    /// order they were submitted, throttles and retries included. Other
    /// destinations are not held up. A submit that ends in a timeout lets
    /// the next go, though the MC may still accept it later. Await (or
    /// drop) keyed calls in the order they were made: one never polled
    /// holds its key. (`Pool::submit_keyed` keeps order per a key of the
    /// caller's in any mode.)
    PerDestination,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            tps: None,
            burst: 1,
            throttle_pause: Duration::from_secs(1),
            max_throttle_pause: Duration::from_secs(30),
            max_throttle_retries: 3,
            order: Order::Any,
        }
    }
}

impl PoolConfig {
    /// Limits the pool to `tps` requests per second, `burst` (at least 1) at once.
    #[must_use]
    pub fn with_tps(mut self, tps: u32, burst: u32) -> PoolConfig {
        self.tps = Some(tps);
        self.burst = burst.max(1);
        self
    }

    /// Sets [`throttle_pause`](PoolConfig::throttle_pause) and
    /// [`max_throttle_pause`](PoolConfig::max_throttle_pause).
    #[must_use]
    pub fn with_throttle_pause(mut self, pause: Duration, max: Duration) -> PoolConfig {
        self.throttle_pause = pause;
        self.max_throttle_pause = max;
        self
    }

    /// Sets [`max_throttle_retries`](PoolConfig::max_throttle_retries).
    #[must_use]
    pub fn with_max_throttle_retries(mut self, retries: u32) -> PoolConfig {
        self.max_throttle_retries = retries;
        self
    }

    /// Sets [`order`](PoolConfig::order).
    #[must_use]
    pub fn with_order(mut self, order: Order) -> PoolConfig {
        self.order = order;
        self
    }

    /// The pause after `strikes` (at least 1) throttled answers in a row.
    pub fn pause(&self, strikes: u32) -> Duration {
        let doubling = strikes.saturating_sub(1).min(20);
        self.throttle_pause
            .saturating_mul(1 << doubling)
            .min(self.max_throttle_pause.max(self.throttle_pause))
    }

    /// The pool's token bucket, if it has a rate limit.
    pub fn limiter(&self) -> Option<RateLimiter> {
        self.tps.map(|tps| RateLimiter::new(tps, self.burst))
    }
}

/// The statuses that mean "not now, try later" (the request was not
/// accepted): `ESME_RTHROTTLED` and `ESME_RMSGQFUL`.
pub(crate) fn is_throttle(status: CommandStatus) -> bool {
    status == CommandStatus::THROTTLED || status == CommandStatus::MESSAGE_QUEUE_FULL
}

/// A token bucket kept as a "theoretical arrival time" (GCRA): each
/// [`reserve`](RateLimiter::reserve) books the next send time under a lock;
/// the caller sleeps until it. Reservations are handed out in call order.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    /// How far ahead of `interval` spacing a send may go: `(burst - 1) * interval`.
    tolerance: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// `tps` (at least 1) sends per second, `burst` (at least 1) at once.
    pub fn new(tps: u32, burst: u32) -> RateLimiter {
        let interval = Duration::from_secs(1) / tps.max(1);
        RateLimiter {
            interval,
            tolerance: interval.saturating_mul(burst.max(1) - 1),
            next: Mutex::new(None),
        }
    }

    /// Books one token: the instant (`now` or later) at which it may be used.
    pub fn reserve(&self, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let tat = next.map_or(now, |t| t.max(now));
        let at = tat.checked_sub(self.tolerance).map_or(now, |t| t.max(now));
        *next = Some(tat + self.interval);
        at
    }
}

/// A pool member's throttle state.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// Sends nothing new before this.
    paused_until: Mutex<Option<Instant>>,
    /// Throttled answers in a row.
    strikes: AtomicU32,
}

impl Throttle {
    /// When the member's pause ends, if it is paused at `now`.
    pub(crate) fn paused_until(&self, now: Instant) -> Option<Instant> {
        let until = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        until.filter(|&t| t > now)
    }

    /// The member got a throttled answer at `now`: pause it (longer on repeats).
    pub(crate) fn throttled(&self, now: Instant, config: &PoolConfig) {
        let strikes = self
            .strikes
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let until = now + config.pause(strikes);
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        *paused = Some(paused.map_or(until, |t| t.max(until)));
    }

    /// A request through the member succeeded: the next pause starts short again.
    pub(crate) fn succeeded(&self) {
        self.strikes.store(0, Ordering::Relaxed);
    }
}

/// What [`pick`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pick {
    /// Use this member.
    Member(usize),
    /// Every bound member is paused: try again at this instant.
    WaitUntil(Instant),
    /// No member is bound: wait for this one to bind.
    WaitBound(usize),
}

/// The next bound, unpaused member in turn, starting at `start` (a turn
/// counter) among `throttles.len()` members; `bound(i)` says whether member
/// `i` has a session now.
pub(crate) fn pick(
    start: usize,
    throttles: &[Throttle],
    now: Instant,
    bound: impl Fn(usize) -> bool,
) -> Pick {
    let n = throttles.len().max(1);
    let mut earliest: Option<Instant> = None;
    for i in (0..n).map(|i| (start + i) % n) {
        if !bound(i) {
            continue;
        }
        match throttles.get(i).and_then(|t| t.paused_until(now)) {
            None => return Pick::Member(i),
            Some(t) => earliest = Some(earliest.map_or(t, |e| e.min(t))),
        }
    }
    match earliest {
        Some(t) => Pick::WaitUntil(t),
        None => Pick::WaitBound(start % n),
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

    #[test]
    fn rate_limiter_spaces_after_the_burst() {
        #[allow(clippy::disallowed_methods)] // a test epoch; only differences matter
        let now = Instant::now();
        let limiter = RateLimiter::new(100, 3);
        let times: Vec<Duration> = (0..8).map(|_| limiter.reserve(now) - now).collect();
        // 3 at once, then every 10 ms: the 8th at 50 ms.
        assert_eq!(times[..3], [Duration::ZERO; 3]);
        assert_eq!(times[7], Duration::from_millis(50));
        // After a quiet spell the burst is back.
        let later = now + Duration::from_secs(1);
        assert_eq!(limiter.reserve(later), later);
    }

    #[test]
    fn pick_skips_unbound_and_paused_members() {
        #[allow(clippy::disallowed_methods)] // a test epoch; only differences matter
        let now = Instant::now();
        let config = PoolConfig::default();
        let throttles: Vec<Throttle> = (0..3).map(|_| Throttle::default()).collect();
        assert_eq!(pick(0, &throttles, now, |i| i != 0), Pick::Member(1));
        throttles[1].throttled(now, &config);
        assert_eq!(pick(0, &throttles, now, |i| i != 0), Pick::Member(2));
        throttles[2].throttled(now, &config);
        let until = now + config.pause(1);
        assert_eq!(pick(0, &throttles, now, |i| i != 0), Pick::WaitUntil(until));
        assert_eq!(pick(4, &throttles, now, |_| false), Pick::WaitBound(1));
        // The pause ends.
        assert_eq!(pick(1, &throttles, until, |i| i != 0), Pick::Member(1));
        assert!(is_throttle(CommandStatus::MESSAGE_QUEUE_FULL));
        assert!(!is_throttle(CommandStatus::OK));
    }
}
