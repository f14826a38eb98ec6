//! Where the server reads the time and waits: a [`Clock`].
//!
//! Every delay, expiry, retry and retention of the server goes through the
//! clock it was started with: the [`SystemClock`] in production, a
//! [`ManualClock`] in tests, which moves only when told to (so receipt
//! delays, validity periods, scheduled deliveries, retention and retries are
//! tested without sleeping).
//!
//! The server is generic over its clock (`Smsc<C: Clock>`): no dynamic call
//! and no allocation per read. The submission path reads it once
//! ([`Clock::now`]) and derives the wall time from that reading
//! ([`Clock::wall_ms_at`]).

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

/// A source of time, and of waiting for it.
pub trait Clock: Clone + Send + Sync + 'static {
    /// A monotonic instant (latencies, and the anchor of [`wall_ms_at`](Clock::wall_ms_at)).
    fn now(&self) -> Instant;

    /// Milliseconds since the Unix epoch at `at`, an instant this clock's
    /// [`now`](Clock::now) returned a moment ago.
    fn wall_ms_at(&self, at: Instant) -> u64;

    /// Milliseconds since the Unix epoch, now.
    fn now_ms(&self) -> u64 {
        self.wall_ms_at(self.now())
    }

    /// Microseconds since the Unix epoch, now (the first message id).
    fn now_us(&self) -> u64;

    /// This clock's instant for `received`, a reading of the runtime's
    /// monotonic clock (when a connection's task took a request in): the
    /// same instant when this clock is that one, which spares a read per
    /// request; by default (another time line) this clock's `now`.
    fn arrival(&self, received: Instant) -> Instant {
        let _ = received;
        self.now()
    }

    /// Waits `duration` of this clock's time.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send;

    /// Waits until the clock reads `at_ms` (ms since the epoch). The target
    /// is absolute: time that passes between reading the clock and starting
    /// to wait is not added to the wait (a [`ManualClock`] moved in between
    /// would otherwise overshoot).
    fn sleep_until_ms(&self, at_ms: u64) -> impl Future<Output = ()> + Send {
        self.sleep(Duration::from_millis(at_ms.saturating_sub(self.now_ms())))
    }
}

/// The operating system's clocks and tokio's timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn arrival(&self, received: Instant) -> Instant {
        received
    }

    fn wall_ms_at(&self, at: Instant) -> u64 {
        wall_ms(at)
    }

    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn now_us(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }
}

/// How long a thread's anchor for [`wall_ms`] serves before it is taken
/// again: the monotonic and wall clocks drift apart by a few ppm at most
/// (NTP slewing), well under a millisecond in this time, and a step of the
/// wall clock shows within it.
const REANCHOR: Duration = Duration::from_secs(1);

thread_local! {
    /// A wall-clock reading (since the epoch) and the monotonic instant it
    /// was taken at.
    static ANCHOR: Cell<Option<(Instant, Duration)>> = const { Cell::new(None) };
    /// The last instant asked for and its answer: the requests read
    /// together share their arrival instant.
    static LAST: Cell<Option<(Instant, u64)>> = const { Cell::new(None) };
}

/// Milliseconds since the epoch at `at` (a recent instant), derived from
/// this thread's anchor without reading the wall clock again: the hot path
/// reads one clock per message instead of two. A step of the wall clock, or
/// a suspend (which the monotonic clock does not count), shows within
/// [`REANCHOR`].
fn wall_ms(at: Instant) -> u64 {
    if let Some((_, ms)) = LAST.with(Cell::get).filter(|(last, _)| *last == at) {
        return ms;
    }
    let wall = ANCHOR.with(|anchor| {
        let anchored =
            anchor
                .get()
                .and_then(|(then, wall)| match at.checked_duration_since(then) {
                    Some(after) => (after < REANCHOR).then(|| wall + after),
                    None => {
                        let before = then - at;
                        (before < REANCHOR).then(|| wall.saturating_sub(before))
                    }
                });
        anchored.unwrap_or_else(|| {
            let then = Instant::now();
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            anchor.set(Some((then, wall)));
            wall.saturating_sub(then.saturating_duration_since(at))
        })
    });
    let ms = u64::try_from(wall.as_millis()).unwrap_or(u64::MAX);
    LAST.with(|last| last.set(Some((at, ms))));
    ms
}

/// A clock that stands still until [`advance`](ManualClock::advance)d: for
/// tests. Clones share the time. Its [`sleep`](Clock::sleep) ends when the
/// clock has been moved far enough, however little real time passed.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Manual>,
}

#[derive(Debug)]
struct Manual {
    /// The monotonic instant standing for the start.
    base: Instant,
    /// The wall time at the start, ms since the epoch.
    start_ms: u64,
    /// Time moved since the start, in microseconds.
    elapsed_us: AtomicU64,
    moved: Notify,
}

impl ManualClock {
    /// A clock reading `start_ms` milliseconds since the Unix epoch.
    pub fn new(start_ms: u64) -> ManualClock {
        ManualClock {
            inner: Arc::new(Manual {
                base: Instant::now(),
                start_ms,
                elapsed_us: AtomicU64::new(0),
                moved: Notify::new(),
            }),
        }
    }

    /// Moves the time on by `by`, and wakes the sleepers it ends.
    pub fn advance(&self, by: Duration) {
        let us = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.inner.elapsed_us.fetch_add(us, Ordering::SeqCst);
        self.inner.moved.notify_waiters();
    }

    /// Time moved since the start.
    pub fn elapsed(&self) -> Duration {
        Duration::from_micros(self.inner.elapsed_us.load(Ordering::SeqCst))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.inner.base + self.elapsed()
    }

    fn wall_ms_at(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.inner.base);
        self.inner.start_ms + u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }

    fn now_us(&self) -> u64 {
        self.inner.start_ms * 1000 + self.inner.elapsed_us.load(Ordering::SeqCst)
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        self.wait_until(self.elapsed() + duration)
    }

    fn sleep_until_ms(&self, at_ms: u64) -> impl Future<Output = ()> + Send {
        self.wait_until(Duration::from_millis(
            at_ms.saturating_sub(self.inner.start_ms),
        ))
    }
}

impl ManualClock {
    /// Waits until [`elapsed`](ManualClock::elapsed) reaches `until`.
    fn wait_until(&self, until: Duration) -> impl Future<Output = ()> + Send {
        let clock = self.clone();
        async move {
            loop {
                let moved = clock.inner.moved.notified();
                tokio::pin!(moved);
                // Registered before the check: an advance in between wakes it.
                moved.as_mut().enable();
                if clock.elapsed() >= until {
                    return;
                }
                moved.await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_ms_follows_the_wall_clock() {
        let clock = SystemClock;
        for _ in 0..3 {
            let before = clock.now_ms();
            let derived = clock.wall_ms_at(Instant::now());
            let after = clock.now_ms();
            // Truncations on both sides: a millisecond of slack.
            assert!(
                before <= derived + 1 && derived <= after + 1,
                "{before} {derived} {after}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // An instant from before the anchor is read back, not clamped.
        let before = clock.now_ms();
        let past = Instant::now() - Duration::from_millis(50);
        let derived = clock.wall_ms_at(past);
        let after = clock.now_ms();
        assert!(
            before - 51 <= derived && derived <= after - 49,
            "{before} {derived} {after}"
        );
        // The same instant again (the last one asked, then after another):
        // the same answer.
        assert_eq!(clock.wall_ms_at(past), derived);
        let later = past + Duration::from_millis(20);
        assert_eq!(clock.wall_ms_at(later), derived + 20);
        assert_eq!(clock.wall_ms_at(past), derived);
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000_000);
        let start = clock.now();
        assert_eq!(clock.now_ms(), 1_000_000);
        assert_eq!(clock.now_us(), 1_000_000_000);
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now_ms(), 1_001_500);
        assert_eq!(clock.now_us(), 1_001_500_000);
        assert_eq!(clock.now() - start, Duration::from_millis(1_500));
        assert_eq!(clock.wall_ms_at(start), 1_000_000);
        assert_eq!(clock.clone().now_ms(), 1_001_500, "clones share the time");
    }

    #[tokio::test]
    async fn a_manual_sleep_ends_when_the_clock_gets_there() {
        let clock = ManualClock::new(0);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep(Duration::from_secs(10)).await }
        });
        // It starts sleeping at 0.
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(9));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(10), sleeper)
            .await
            .expect("woken by the advance")
            .unwrap();
        // Zero: at once.
        clock.sleep(Duration::ZERO).await;
    }

    #[tokio::test]
    async fn a_wait_until_a_time_ends_there_however_late_it_starts() {
        let clock = ManualClock::new(5_000);
        // The timer loop's order: the due time is read, then the clock
        // moves, then the wait starts.
        let due = clock.now_ms() + 1_000;
        clock.advance(Duration::from_millis(999));
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until_ms(due).await }
        });
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_millis(1));
        tokio::time::timeout(Duration::from_secs(10), sleeper)
            .await
            .expect("woken at the due time, not 999 ms after it")
            .unwrap();
        // Past times: at once.
        clock.sleep_until_ms(0).await;
    }
}
