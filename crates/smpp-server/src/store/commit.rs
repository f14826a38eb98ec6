//! The disk store's commit queue: where the sessions' writes wait for the
//! writer thread, and how a durable write learns that its batch is synced.
//!
//! The point is the size of a batch and what gathering one costs. A
//! client's window of submissions arrives as a burst that the server's
//! worker decodes and admits one after the other; a sync for its first few
//! and another for the rest costs twice the disk's flush time and twice the
//! system time of an I/O request (50-100 µs here), and a writer that spins
//! to see whether more is coming burns the core the sessions need. So:
//!
//! - A write is pushed under a mutex (no channel, no allocation but the
//!   queue's own growth) and gets a **ticket**, its place in the order of
//!   writes.
//! - The first write of a burst does not wake the writer: it wakes a small
//!   task, the **kicker**, on the same runtime. The kicker runs once the
//!   task that is admitting the burst yields (the worker has nothing more
//!   of it to decode), so it wakes the writer once per burst, with the
//!   whole burst queued. While the writer commits, the next bursts queue
//!   up and are taken together. A burst that never ends (a runtime whose
//!   other workers keep pushing) is taken after [`BURST_WAIT`] at most;
//!   without a runtime (or once its kicker is gone) a write wakes the
//!   writer itself.
//! - A long burst is not waited for whole: once [`BATCH_START`] writes
//!   wait, the writer takes them, so that their sync overlaps the
//!   admission of the rest (a window of 256 submissions is admitted in
//!   about as long as a sync takes here; taken whole, the two ran one
//!   after the other: at 1 bind, window 256, a median of 180k submit_sm/s
//!   then against 256k now, docs/BENCHMARKS.md).
//! - A durable write waits for the **synced ticket**, which the writer
//!   raises after each batch, and wakes only the waiters of that batch;
//!   a batch that failed is remembered as a range of tickets whose waiters
//!   get the error.
//!
//! Bounded: at most [`QUEUE`] writes wait; a producer beyond that waits for
//! room. A writer that panics fails every write it had not committed, and
//! every later one, instead of leaving their waiters hanging.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};

use super::Pruned;

/// Writes waiting for the writer thread at most.
pub(super) const QUEUE: usize = 16 * 1024;
/// How long the writer waits for a burst in progress to end before it
/// takes what is queued anyway.
const BURST_WAIT: Duration = Duration::from_millis(1);
/// Failed batches remembered (as ranges of tickets) at most.
const FAILURES: usize = 256;
/// Writes of a burst in progress that the writer takes without waiting
/// for its end (see the module docs).
const BATCH_START: usize = 64;

/// One write for the writer thread.
pub(super) enum Write {
    /// A record: `durable` when someone waits for it to be synced.
    Put {
        id: u64,
        bytes: Vec<u8>,
        durable: bool,
    },
    /// Nothing to write: the batch is synced.
    Flush,
    /// Delete records final before `cutoff_ms` with no work left at `now_ms`.
    Prune {
        now_ms: u64,
        cutoff_ms: u64,
        report: bool,
        done: oneshot::Sender<Pruned>,
    },
}

impl Write {
    /// Whether the batch holding it must be synced.
    pub(super) fn durable(&self) -> bool {
        matches!(self, Write::Put { durable: true, .. } | Write::Flush)
    }
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Write::Put { id, .. } => write!(f, "Put({id})"),
            Write::Flush => f.write_str("Flush"),
            Write::Prune { cutoff_ms, .. } => write!(f, "Prune({cutoff_ms})"),
        }
    }
}

/// Why [`CommitQueue::try_push`] did not queue a write.
pub(super) enum TryPush {
    /// No more writes are taken.
    Closed,
    /// No room now: the write, to be pushed with [`CommitQueue::push`].
    Full(Write),
}

/// What the producers and the writer share.
struct Shared {
    state: Mutex<State>,
    /// The writer waits here for writes (and for a burst to end).
    writer: Condvar,
    /// Producers wait here for room.
    room: Notify,
    /// Every write with a ticket up to this one has been committed (or
    /// failed).
    synced: AtomicU64,
    /// Durable writes waiting for their ticket to be synced.
    waiters: Mutex<Vec<(u64, Waker)>>,
    /// Tickets of failed batches, oldest first, with the error.
    failures: Mutex<VecDeque<(u64, u64, String)>>,
    /// Whether any batch ever failed: until then an outcome is `Ok` without
    /// a look at `failures` (no lock per write on the hot path).
    any_failed: AtomicBool,
    /// The task that wakes the writer at the end of a burst, started on the
    /// runtime of a write (again when the runtime it ran on is gone).
    kicker: Mutex<Option<Kicker>>,
}

struct State {
    writes: Vec<Write>,
    /// The ticket of the last write pushed.
    last_ticket: u64,
    /// The ticket of the last write the writer took.
    taken: u64,
    /// A burst is being pushed: the kicker will say when it ends.
    burst: bool,
    /// The writer is waiting on the condition variable.
    parked: bool,
    /// Producers wait for room.
    full: bool,
    /// No more producers: the writer takes what is left and ends.
    closed: bool,
}

impl State {
    /// Whether the writer takes what waits (there is some): the burst
    /// ended, or it is long enough to start on, or the queue is closing.
    fn may_take(&self) -> bool {
        !self.burst || self.closed || self.writes.len() >= BATCH_START
    }
}

struct Kicker {
    notify: Arc<Notify>,
    alive: Arc<AtomicBool>,
}

/// The producers' side; the writer's side ends (after taking every write
/// left) when the last clone is dropped.
#[derive(Clone)]
pub(super) struct CommitQueue {
    handle: Arc<Handle>,
}

/// Closes the queue when the last producer goes.
struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.closed = true;
        state.burst = false;
        drop(state);
        self.0.writer.notify_one();
        if let Some(kicker) = lock(&self.0.kicker).as_ref() {
            kicker.notify.notify_one();
        }
    }
}

/// The writer thread's side.
pub(super) struct Taker {
    shared: Arc<Shared>,
}

/// Makes a queue: the producers' side and the writer's.
pub(super) fn queue() -> (CommitQueue, Taker) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            writes: Vec::new(),
            last_ticket: 0,
            taken: 0,
            burst: false,
            parked: false,
            full: false,
            closed: false,
        }),
        writer: Condvar::new(),
        room: Notify::new(),
        synced: AtomicU64::new(0),
        waiters: Mutex::new(Vec::new()),
        failures: Mutex::new(VecDeque::new()),
        any_failed: AtomicBool::new(false),
        kicker: Mutex::new(None),
    });
    let taker = Taker {
        shared: shared.clone(),
    };
    (
        CommitQueue {
            handle: Arc::new(Handle(shared)),
        },
        taker,
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Asks the kicker to end the burst (starting it on the current runtime
    /// when it is not running); `false` when there is no runtime to run it.
    fn kick(self: &Arc<Self>) -> bool {
        let mut kicker = lock(&self.kicker);
        if !kicker
            .as_ref()
            .is_some_and(|k| k.alive.load(Ordering::Acquire))
        {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return false;
            };
            let notify = Arc::new(Notify::new());
            let alive = Arc::new(AtomicBool::new(true));
            let shared = Arc::downgrade(self);
            runtime.spawn(kicker_task(shared, notify.clone(), Alive(alive.clone())));
            *kicker = Some(Kicker { notify, alive });
        }
        if let Some(k) = kicker.as_ref() {
            k.notify.notify_one();
        }
        true
    }

    /// The end of a burst: the writer may take it.
    fn end_burst(&self) {
        let mut state = self.lock();
        state.burst = false;
        let wake = state.parked && !state.writes.is_empty();
        drop(state);
        if wake {
            self.writer.notify_one();
        }
    }

    /// The outcome of the write with `ticket`, once synced.
    fn outcome(&self, ticket: u64) -> Result<(), String> {
        if !self.any_failed.load(Ordering::Acquire) {
            return Ok(());
        }
        let failures = lock(&self.failures);
        match failures
            .iter()
            .find(|(from, to, _)| (*from..=*to).contains(&ticket))
        {
            Some((_, _, error)) => Err(error.clone()),
            None => Ok(()),
        }
    }
}

/// Clears the kicker's flag when its task is dropped (its runtime gone).
struct Alive(Arc<AtomicBool>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The kicker: runs after the task that pushed the first write of a burst
/// has yielded, and lets the writer take the burst.
async fn kicker_task(shared: Weak<Shared>, notify: Arc<Notify>, _alive: Alive) {
    loop {
        notify.notified().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.end_burst();
        if shared.lock().closed {
            return;
        }
    }
}

impl CommitQueue {
    /// Queues `write` (waiting for room while the queue is full); returns
    /// its ticket.
    pub(super) async fn push(&self, write: Write) -> Result<u64, String> {
        let shared = &self.handle.0;
        loop {
            let room = shared.room.notified();
            let mut room = std::pin::pin!(room);
            {
                let mut state = shared.lock();
                if state.closed {
                    return Err("store closed".into());
                }
                if state.writes.len() < QUEUE {
                    return Ok(self.push_locked(state, write));
                }
                state.full = true;
                // Registered before the lock goes: the writer's
                // `notify_waiters` after taking cannot be missed.
                room.as_mut().enable();
            }
            room.await;
        }
    }

    /// Queues `write` now when there is room: its ticket, or the write back
    /// (the queue is full: [`push`](CommitQueue::push) waits for room).
    pub(super) fn try_push(&self, write: Write) -> Result<u64, TryPush> {
        let state = self.handle.0.lock();
        if state.closed {
            return Err(TryPush::Closed);
        }
        if state.writes.len() < QUEUE {
            return Ok(self.push_locked(state, write));
        }
        Err(TryPush::Full(write))
    }

    /// Queues `write` under the lock (there is room); returns its ticket.
    fn push_locked(&self, mut state: MutexGuard<'_, State>, write: Write) -> u64 {
        state.writes.push(write);
        state.last_ticket += 1;
        let ticket = state.last_ticket;
        self.wake(state);
        ticket
    }

    /// After a push: lets the writer know, at the end of the burst when a
    /// kicker runs, else at once.
    fn wake(&self, mut state: MutexGuard<'_, State>) {
        let shared = &self.handle.0;
        if state.burst {
            // Long enough to start on (the writer, when it is busy, takes
            // it when it is done).
            if state.writes.len() == BATCH_START && state.parked {
                drop(state);
                shared.writer.notify_one();
            }
            return;
        }
        // The kicker's lock is taken under the state's (never the other way).
        if shared.kick() {
            state.burst = true;
            return;
        }
        let wake = state.parked;
        drop(state);
        if wake {
            shared.writer.notify_one();
        }
    }

    /// Waits until the write with `ticket` is synced; its batch's outcome.
    pub(super) fn synced(&self, ticket: u64) -> Synced {
        Synced {
            shared: self.handle.0.clone(),
            ticket,
            registered: None,
        }
    }
}

/// The future of [`CommitQueue::synced`].
pub(crate) struct Synced {
    shared: Arc<Shared>,
    ticket: u64,
    /// The waker last left with the waiters.
    registered: Option<Waker>,
}

impl Future for Synced {
    type Output = Result<(), String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Synced {
            shared,
            ticket,
            registered,
        } = &mut *self;
        let ticket = *ticket;
        if shared.synced.load(Ordering::Acquire) >= ticket {
            return Poll::Ready(shared.outcome(ticket));
        }
        let mut waiters = lock(&shared.waiters);
        // Checked again under the lock the writer takes to wake: a batch
        // synced in between is not missed.
        if shared.synced.load(Ordering::Acquire) >= ticket {
            drop(waiters);
            return Poll::Ready(shared.outcome(ticket));
        }
        // Left once per waker (a poll with another waker leaves that one
        // too: both are woken, which is harmless).
        if !registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            waiters.push((ticket, cx.waker().clone()));
            drop(waiters);
            *registered = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Taker {
    /// Waits for writes and moves them into `batch` (a burst in progress
    /// is waited for, a little); returns the first and last tickets taken,
    /// or `None` once the queue is closed and empty.
    pub(super) fn take(&self, batch: &mut Vec<Write>) -> Option<(u64, u64)> {
        let shared = &self.shared;
        let mut state = shared.lock();
        loop {
            if state.writes.is_empty() {
                if state.closed {
                    return None;
                }
                state.parked = true;
                state = shared
                    .writer
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                state.parked = false;
                continue;
            }
            if state.may_take() {
                break;
            }
            state.parked = true;
            let (guard, waited) = shared
                .writer
                .wait_timeout(state, BURST_WAIT)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state = guard;
            state.parked = false;
            if waited.timed_out() {
                break;
            }
        }
        std::mem::swap(&mut state.writes, batch);
        let from = state.taken + 1;
        state.taken = state.last_ticket;
        let to = state.taken;
        let full = std::mem::take(&mut state.full);
        drop(state);
        if full {
            shared.room.notify_waiters();
        }
        Some((from, to))
    }

    /// The writer is going away without finishing (it panicked): every
    /// write taken or waiting fails, and so does every later one.
    pub(super) fn abandon(&self, error: &str) {
        let mut state = self.shared.lock();
        state.closed = true;
        state.writes.clear();
        state.taken = state.last_ticket;
        drop(state);
        // Taken and not done, or still waiting.
        let from = self.shared.synced.load(Ordering::Acquire) + 1;
        self.shared.room.notify_waiters();
        self.done(from, u64::MAX, Err(error.to_string()));
    }

    /// The writes with tickets `from..=to` are committed (`Ok`) or failed:
    /// wakes their waiters.
    pub(super) fn done(&self, from: u64, to: u64, result: Result<(), String>) {
        let shared = &self.shared;
        if let Err(error) = result {
            let mut failures = lock(&shared.failures);
            match failures.back_mut() {
                // A run of failed batches is one range.
                Some((_, last, e)) if *last + 1 == from && *e == error => *last = to,
                _ => failures.push_back((from, to, error)),
            }
            if failures.len() > FAILURES {
                failures.pop_front();
            }
            shared.any_failed.store(true, Ordering::Release);
        }
        let mut waiters = lock(&shared.waiters);
        shared.synced.store(to, Ordering::Release);
        let mut ready = Vec::new();
        waiters.retain_mut(|(ticket, waker)| {
            if *ticket <= to {
                ready.push(std::mem::replace(waker, Waker::noop().clone()));
                false
            } else {
                true
            }
        });
        drop(waiters);
        for waker in ready {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(id: u64, durable: bool) -> Write {
        Write::Put {
            id,
            bytes: vec![0; 8],
            durable,
        }
    }

    /// A writer thread that takes batches and reports their sizes, failing
    /// the batches whose first ticket `fail` selects.
    fn writer(
        taker: Taker,
        fail: impl Fn(u64) -> bool + Send + 'static,
    ) -> std::thread::JoinHandle<Vec<(u64, u64)>> {
        std::thread::spawn(move || {
            let mut batches = Vec::new();
            let mut batch = Vec::new();
            while let Some((from, to)) = taker.take(&mut batch) {
                assert_eq!(batch.len() as u64, to - from + 1, "every ticket taken once");
                batch.clear();
                batches.push((from, to));
                let result = if fail(from) {
                    Err("disk full".to_string())
                } else {
                    Ok(())
                };
                taker.done(from, to, result);
            }
            batches
        })
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_burst_pushed_without_yielding_is_taken_whole() {
        let (queue, taker) = queue();
        let writer = writer(taker, |_| false);
        // Give the writer time to wait on an empty queue: a push must not
        // wake it before the burst ends.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut tickets = Vec::new();
        for id in 1..=50 {
            tickets.push(queue.push(put(id, true)).await.unwrap());
        }
        for t in &tickets {
            queue.synced(*t).await.unwrap();
        }
        let t = queue.push(put(51, true)).await.unwrap();
        queue.synced(t).await.unwrap();
        drop(queue);
        let batches = writer.join().unwrap();
        assert_eq!(batches, vec![(1, 50), (51, 51)]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_long_burst_is_started_on_before_it_ends() {
        let (queue, taker) = queue();
        let (report, reports) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            let mut batch = Vec::new();
            while let Some((from, to)) = taker.take(&mut batch) {
                batch.clear();
                let _ = report.send((from, to));
                taker.done(from, to, Ok(()));
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut tickets = Vec::new();
        for id in 1..=BATCH_START as u64 {
            tickets.push(queue.push(put(id, true)).await.unwrap());
        }
        // The burst has not ended: this task has not yielded, and the
        // kicker cannot run while it blocks the runtime's one thread. The
        // writer takes the first writes anyway.
        let first = reports.recv_timeout(Duration::from_secs(30));
        assert_eq!(first, Ok((1, BATCH_START as u64)));
        let last = BATCH_START as u64 + 10;
        for id in BATCH_START as u64 + 1..=last {
            tickets.push(queue.push(put(id, true)).await.unwrap());
        }
        for t in &tickets {
            queue.synced(*t).await.unwrap();
        }
        drop(queue);
        writer.join().unwrap();
        let rest: Vec<_> = reports.try_iter().collect();
        assert_eq!(rest, vec![(BATCH_START as u64 + 1, last)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_write_of_many_tasks_is_synced_once() {
        let (queue, taker) = queue();
        let writer = writer(taker, |_| false);
        let mut tasks = Vec::new();
        for task in 0..8u64 {
            let queue = queue.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..500 {
                    let t = queue.push(put(task * 1000 + i, i % 3 != 0)).await.unwrap();
                    if i % 3 != 0 {
                        queue.synced(t).await.unwrap();
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        drop(queue);
        let batches = writer.join().unwrap();
        // Contiguous, in order, covering every ticket.
        let mut next = 1;
        for (from, to) in batches {
            assert_eq!(from, next);
            next = to + 1;
        }
        assert_eq!(next, 4001);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_batch_fails_its_waiters_only() {
        let (queue, taker) = queue();
        let writer = writer(taker, |from| from == 1);
        let a = queue.push(put(1, true)).await.unwrap();
        let b = queue.push(put(2, true)).await.unwrap();
        assert_eq!(queue.synced(a).await, Err("disk full".into()));
        assert_eq!(queue.synced(b).await, Err("disk full".into()));
        let c = queue.push(put(3, true)).await.unwrap();
        assert_eq!(queue.synced(c).await, Ok(()));
        drop(queue);
        writer.join().unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_makes_producers_wait_for_room() {
        let (queue, taker) = queue();
        for id in 0..QUEUE as u64 {
            queue.push(put(id, false)).await.unwrap();
        }
        // Not queued now: the write comes back, and takes no ticket.
        match queue.try_push(put(7, true)) {
            Err(TryPush::Full(Write::Put { id: 7, .. })) => {}
            other => panic!("a full queue took a write: {:?}", other.map_err(|_| ())),
        }
        let mut one_more = Box::pin(queue.push(put(u64::MAX, true)));
        assert!(
            futures_poll_once(one_more.as_mut()).await.is_none(),
            "no room"
        );
        let writer = writer(taker, |_| false);
        let t = one_more.as_mut().await.unwrap();
        assert_eq!(t, QUEUE as u64 + 1);
        queue.synced(t).await.unwrap();
        drop(one_more);
        drop(queue);
        let batches = writer.join().unwrap();
        assert_eq!(batches.last().map(|b| b.1), Some(QUEUE as u64 + 1));
    }

    #[test]
    fn without_a_runtime_a_write_wakes_the_writer_itself() {
        let (queue, taker) = queue();
        let writer = writer(taker, |_| false);
        std::thread::sleep(Duration::from_millis(20));
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut push = Box::pin(queue.push(put(1, true)));
        let Poll::Ready(Ok(ticket)) = push.as_mut().poll(&mut cx) else {
            panic!("a push with room is immediate");
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut synced = Box::pin(queue.synced(ticket));
        while synced.as_mut().poll(&mut cx).is_pending() {
            assert!(std::time::Instant::now() < deadline, "never synced");
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(synced);
        drop(push);
        drop(queue);
        assert_eq!(writer.join().unwrap(), vec![(1, 1)]);
    }

    #[test]
    fn a_kicker_whose_runtime_is_gone_is_started_again() {
        let (queue, taker) = queue();
        let writer = writer(taker, |_| false);
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap()
        };
        runtime().block_on(async {
            let t = queue.push(put(1, true)).await.unwrap();
            queue.synced(t).await.unwrap();
        });
        // That runtime (and its kicker) is gone: a burst on another one is
        // still taken whole, once it ends.
        runtime().block_on(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let mut last = 0;
            for id in 2..=30 {
                last = queue.push(put(id, true)).await.unwrap();
            }
            queue.synced(last).await.unwrap();
        });
        drop(queue);
        assert_eq!(writer.join().unwrap(), vec![(1, 1), (2, 30)]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_writer_that_dies_fails_its_waiters_instead_of_leaving_them_hanging() {
        let (queue, taker) = queue();
        let a = queue.push(put(1, true)).await.unwrap();
        let writer = std::thread::spawn(move || {
            let mut batch = Vec::new();
            taker.take(&mut batch);
            taker.abandon("the store's writer failed");
        });
        assert!(queue.synced(a).await.is_err());
        writer.join().unwrap();
        assert!(queue.push(put(2, true)).await.is_err(), "closed for good");
        assert!(matches!(queue.try_push(put(3, true)), Err(TryPush::Closed)));
    }

    /// Polls `f` once: its output if ready.
    async fn futures_poll_once<F: Future + Unpin>(mut f: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            Poll::Ready(match Pin::new(&mut f).poll(cx) {
                Poll::Ready(v) => Some(v),
                Poll::Pending => None,
            })
        })
        .await
    }
}
