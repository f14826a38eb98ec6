//! The delivery queue: what must happen to a message later (its final
//! state and receipts, a routed delivery, an intermediate notification),
//! when, and how retries back off.
//!
//! Jobs are armed at a due time (ms since the epoch, the server's clock) in
//! one timer heap, or parked until a receiver of an account binds. The
//! server's timer loop takes the due ones ([`JobQueue::take_due`]) and runs
//! each at most once at a time per message ([`JobQueue::start`]). Error
//! answers are counted per message ([`JobQueue::failed`]), and the retry
//! schedule is data: [`backoff`] and [`MAX_ATTEMPTS`].

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::futures::Notified;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Error answers from an ESME before a receipt or routed message is given up.
pub(crate) const MAX_ATTEMPTS: u32 = 10;
/// Deliveries (receipts, routed messages) in progress at most.
const MAX_DELIVERIES: usize = 4096;
/// How long a job waits for a receiver that is binding right now.
pub(crate) const BINDING_RETRY: Duration = Duration::from_millis(20);
/// Error answers remembered at most (they only matter while an ESME keeps
/// answering errors).
const MAX_TRACKED: usize = 100_000;

/// The wait after the `attempts`-th error answer: 1 s, 2 s, 4 s... up to a minute.
pub(crate) fn backoff(attempts: u32) -> Duration {
    Duration::from_millis((500u64 << attempts.min(7)).min(60_000))
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Job {
    /// The message is (or will be) final: report it, send its receipts.
    Finalize,
    /// Deliver the message to the routed ESME.
    Route,
    /// registered_delivery asked for an intermediate notification: one
    /// ENROUTE notification, best effort (not stored, not retried).
    Intermediate,
}

type Timer = Reverse<(u64, u64, Job)>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The jobs of a server.
#[derive(Debug)]
pub(crate) struct JobQueue {
    timers: Mutex<BinaryHeap<Timer>>,
    wake: Notify,
    /// Jobs waiting for a receiver of the account to bind.
    waiting: Mutex<HashMap<String, Vec<(u64, Job)>>>,
    /// Error answers per message while retrying.
    attempts: Mutex<HashMap<u64, u32>>,
    /// Messages a job is working on, with the jobs that came due for them
    /// meanwhile (armed again, due at once, when the running one ends).
    busy: Mutex<HashMap<u64, Vec<Job>>>,
    running: Arc<Semaphore>,
}

impl Default for JobQueue {
    fn default() -> JobQueue {
        JobQueue {
            timers: Mutex::default(),
            wake: Notify::new(),
            waiting: Mutex::default(),
            attempts: Mutex::default(),
            busy: Mutex::default(),
            running: Arc::new(Semaphore::new(MAX_DELIVERIES)),
        }
    }
}

/// A message's job in progress: the message is free again when dropped,
/// and the jobs that came due for it meanwhile are armed, due at once.
#[derive(Debug)]
pub(crate) struct Started<'a> {
    queue: &'a JobQueue,
    id: u64,
}

impl Drop for Started<'_> {
    fn drop(&mut self) {
        let deferred = lock(&self.queue.busy).remove(&self.id);
        for job in deferred.into_iter().flatten() {
            // Due at once: before any time the clock can read.
            self.queue.schedule(0, self.id, job);
        }
    }
}

impl JobQueue {
    /// Arms `job` for message `id` at `due_ms`.
    pub(crate) fn schedule(&self, due_ms: u64, id: u64, job: Job) {
        lock(&self.timers).push(Reverse((due_ms, id, job)));
        self.wake.notify_one();
    }

    /// Takes up to `max` jobs due at `now_ms`; returns them and the due time
    /// of the next one left.
    pub(crate) fn take_due(&self, now_ms: u64, max: usize) -> (Vec<(u64, Job)>, Option<u64>) {
        let mut due = Vec::new();
        let mut timers = lock(&self.timers);
        while let Some(Reverse((at, id, job))) = timers.peek().copied() {
            if at > now_ms || due.len() >= max {
                break;
            }
            timers.pop();
            due.push((id, job));
        }
        let next = timers.peek().map(|Reverse((at, ..))| *at);
        (due, next)
    }

    /// The jobs armed for `id` and their due times, in order (for tests).
    #[cfg(test)]
    pub(crate) fn armed(&self, id: u64) -> Vec<(u64, Job)> {
        let mut jobs: Vec<(u64, Job)> = lock(&self.timers)
            .iter()
            .filter(|t| t.0 .1 == id)
            .map(|t| (t.0 .0, t.0 .2))
            .collect();
        jobs.sort();
        jobs
    }

    /// Resolves at the next [`schedule`](JobQueue::schedule) or
    /// [`wake`](JobQueue::wake) after this call.
    pub(crate) fn changed(&self) -> Notified<'_> {
        self.wake.notified()
    }

    /// Wakes the timer loop (to stop, say).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Room for one more job in progress (waits while the limit is reached).
    pub(crate) async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        self.running.clone().acquire_owned().await.ok()
    }

    /// Parks `job` until a receiver of `account` binds, unless `bound` says
    /// one is bound already (then `false`: retry it soon). `bound` runs
    /// under the lock that [`release`](JobQueue::release) takes, so a bind
    /// (which registers itself, then releases) cannot slip between the two.
    pub(crate) fn park(
        &self,
        account: &str,
        id: u64,
        job: Job,
        bound: impl FnOnce() -> bool,
    ) -> bool {
        let mut waiting = lock(&self.waiting);
        if bound() {
            return false;
        }
        waiting
            .entry(account.to_owned())
            .or_default()
            .push((id, job));
        true
    }

    /// The jobs parked for `account`'s receiver.
    pub(crate) fn release(&self, account: &str) -> Vec<(u64, Job)> {
        lock(&self.waiting).remove(account).unwrap_or_default()
    }

    /// Marks message `id` as worked on by `job`; `None` when another job is
    /// at it (then `job` is armed again, due at once, when that one ends).
    pub(crate) fn start(&self, id: u64, job: Job) -> Option<Started<'_>> {
        match lock(&self.busy).entry(id) {
            Entry::Vacant(free) => {
                free.insert(Vec::new());
                Some(Started { queue: self, id })
            }
            Entry::Occupied(mut running) => {
                // Runs once the running job ends (once, however often it
                // came due meanwhile).
                if !running.get().contains(&job) {
                    running.get_mut().push(job);
                }
                None
            }
        }
    }

    /// Counts an error answer for message `id`; returns how many so far
    /// (forgotten at [`MAX_ATTEMPTS`]: the caller gives up then).
    pub(crate) fn failed(&self, id: u64) -> u32 {
        let mut attempts = lock(&self.attempts);
        let n = attempts.entry(id).or_insert(0);
        *n += 1;
        let v = *n;
        if v >= MAX_ATTEMPTS {
            attempts.remove(&id);
        }
        if attempts.len() > MAX_TRACKED {
            attempts.clear();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_jobs_come_out_in_time_order() {
        let q = JobQueue::default();
        q.schedule(30, 3, Job::Finalize);
        q.schedule(10, 1, Job::Route);
        q.schedule(20, 2, Job::Intermediate);
        assert_eq!(q.take_due(5, 10), (vec![], Some(10)));
        assert_eq!(
            q.take_due(20, 10),
            (vec![(1, Job::Route), (2, Job::Intermediate)], Some(30))
        );
        assert_eq!(q.armed(3), [(30, Job::Finalize)]);
        assert_eq!(q.take_due(100, 0), (vec![], Some(30)), "at most max");
        assert_eq!(q.take_due(100, 10), (vec![(3, Job::Finalize)], None));
    }

    #[test]
    fn parked_jobs_wait_for_a_bind_unless_one_is_there() {
        let q = JobQueue::default();
        assert!(q.park("esme", 1, Job::Route, || false));
        assert!(!q.park("esme", 2, Job::Route, || true));
        assert_eq!(q.release("esme"), [(1, Job::Route)]);
        assert!(q.release("esme").is_empty());
    }

    #[test]
    fn one_job_per_message_at_a_time() {
        let q = JobQueue::default();
        let first = q.start(7, Job::Finalize).expect("free");
        assert!(q.start(7, Job::Finalize).is_none());
        assert!(q.start(8, Job::Finalize).is_some());
        drop(first);
        assert!(q.start(7, Job::Finalize).is_some());
    }

    #[test]
    fn a_job_due_while_another_runs_is_armed_again_when_it_ends() {
        let q = JobQueue::default();
        let running = q.start(7, Job::Route).expect("free");
        // Came due meanwhile: waits for the running one, once per kind,
        // without a timer of its own.
        assert!(q.start(7, Job::Finalize).is_none());
        assert!(q.start(7, Job::Finalize).is_none());
        assert!(q.start(7, Job::Route).is_none());
        assert!(q.armed(7).is_empty());
        drop(running);
        // Due at once, whatever the clock reads.
        assert_eq!(q.armed(7), [(0, Job::Finalize), (0, Job::Route)]);
        assert_eq!(
            q.take_due(1, 10),
            (vec![(7, Job::Finalize), (7, Job::Route)], None)
        );
        let again = q.start(7, Job::Finalize).expect("free again");
        drop(again);
        assert!(q.armed(7).is_empty(), "nothing deferred this time");
    }

    #[test]
    fn attempts_count_up_to_the_limit_and_back_off() {
        let q = JobQueue::default();
        let counts: Vec<u32> = (0..MAX_ATTEMPTS + 1).map(|_| q.failed(9)).collect();
        assert_eq!(counts[..3], [1, 2, 3]);
        assert_eq!(counts[MAX_ATTEMPTS as usize - 1], MAX_ATTEMPTS);
        assert_eq!(counts[MAX_ATTEMPTS as usize], 1, "forgotten at the limit");
        let waits: Vec<u64> = (1..=8).map(|a| backoff(a).as_millis() as u64).collect();
        assert_eq!(
            waits,
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
        );
    }
}
