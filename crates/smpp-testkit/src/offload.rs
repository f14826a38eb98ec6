//! Blocking calls run off the test's task: a small pool of threads that
//! end when idle (so the chaos tests can count the process's threads).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::adapter::Task;

type Job = Box<dyn FnOnce() + Send>;

/// More threads than this and calls queue (more than any test blocks at once
/// on something that needs another pooled call to end).
const MAX_THREADS: usize = 512;

/// How long an idle thread waits for work before it ends.
const IDLE: Duration = Duration::from_millis(50);

struct Pool {
    state: Mutex<State>,
    work: Condvar,
}

struct State {
    queue: VecDeque<Job>,
    idle: usize,
    threads: usize,
}

static POOL: Pool = Pool {
    state: Mutex::new(State {
        queue: VecDeque::new(),
        idle: 0,
        threads: 0,
    }),
    work: Condvar::new(),
};

/// Runs `f` on a pooled thread; the future resolves to its result.
pub(crate) fn off<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> impl Future<Output = T> + Send {
    let (tx, task) = Task::channel();
    let mut state = POOL.state.lock().unwrap();
    state
        .queue
        .push_back(Box::new(move || drop(tx.send_blocking(f()))));
    if state.queue.len() > state.idle && state.threads < MAX_THREADS {
        state.threads += 1;
        std::thread::spawn(work);
    } else {
        POOL.work.notify_one();
    }
    drop(state);
    task.join()
}

fn work() {
    let mut state = POOL.state.lock().unwrap();
    loop {
        if let Some(job) = state.queue.pop_front() {
            drop(state);
            job();
            state = POOL.state.lock().unwrap();
            continue;
        }
        state.idle += 1;
        let (woken, wait) = POOL.work.wait_timeout(state, IDLE).unwrap();
        state = woken;
        state.idle -= 1;
        if wait.timed_out() && state.queue.is_empty() {
            state.threads -= 1;
            return;
        }
    }
}
