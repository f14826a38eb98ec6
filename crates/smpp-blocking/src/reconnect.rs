//! A session that comes back: [`ReconnectingClient`], one bind reconnected
//! by a supervisor thread with exponential backoff and jitter.

use std::hash::{BuildHasher, Hasher};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::{Body, COctetString, Pdu, SubmitSm};

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

/// What the supervisor and the handles share.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    current: Option<Client>,
    stopped: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the supervisor and takes the current session, if any.
    fn stop(&self) -> Option<Client> {
        let mut state = self.lock();
        state.stopped = true;
        let current = state.current.take();
        self.changed.notify_all();
        current
    }
}

/// Stops the supervisor when the last [`ReconnectingClient`] clone goes.
#[derive(Debug)]
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // Dropping the last clone of the session unbinds it.
        drop(self.0.stop());
    }
}

/// A [`Client`] that reconnects (with [`Backoff`]) whenever its session
/// ends, until closed or dropped. Cheap to clone.
///
/// A supervisor thread connects, forwards the session's peer requests,
/// and connects again once the session ends. Calls wait up to `wait` for a
/// bound session and fail with [`Error::NotConnected`] otherwise. A call
/// that fails because the session died is **not** retried (it may have
/// reached the MC; resubmitting could duplicate the message): retry it
/// yourself if duplicates are acceptable. Peer requests of every
/// successive session arrive on one [`Receiver`].
#[derive(Clone, Debug)]
pub struct ReconnectingClient {
    shared: Arc<Shared>,
    _guard: Arc<StopOnDrop>,
    wait: Duration,
}

impl ReconnectingClient {
    /// Starts connecting with `connect` (for instance
    /// `move || Client::connect(addr, kind, bind.clone(), config.clone())`),
    /// and again after each session ends. Peer requests of every session
    /// arrive on the returned receiver (up to 64 waiting; dropping it
    /// answers them with status 0).
    pub fn new<F>(
        connect: F,
        backoff: Backoff,
        wait: Duration,
    ) -> (ReconnectingClient, Receiver<InboundRequest>)
    where
        F: FnMut() -> Result<(Client, Inbound), Error> + Send + 'static,
    {
        let (sink, inbound) = mpsc::sync_channel(64);
        let shared = Arc::new(Shared::default());
        let supervisor = Arc::clone(&shared);
        thread::Builder::new()
            .name("smpp-reconnect".into())
            .spawn(move || supervise(&supervisor, connect, &backoff, &sink))
            .expect("spawn the reconnect supervisor");
        let client = ReconnectingClient {
            _guard: Arc::new(StopOnDrop(Arc::clone(&shared))),
            shared,
            wait,
        };
        (client, inbound)
    }

    /// The bound session now, if any.
    pub fn current(&self) -> Option<Client> {
        let state = self.shared.lock();
        state.current.clone().filter(|c| !c.is_closed())
    }

    /// A session is bound now.
    pub fn is_connected(&self) -> bool {
        self.current().is_some()
    }

    /// Waits up to `wait` for a bound session.
    pub fn client(&self) -> Result<Client, Error> {
        let deadline = Instant::now() + self.wait;
        let mut state = self.shared.lock();
        loop {
            if state.stopped {
                return Err(Error::NotConnected);
            }
            if let Some(client) = state.current.as_ref().filter(|c| !c.is_closed()) {
                return Ok(client.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::NotConnected);
            }
            // A closed-but-not-yet-cleared session wakes nobody: poll it.
            let nap = left.min(Duration::from_millis(20));
            state = match self.shared.changed.wait_timeout(state, nap) {
                Ok((state, _)) => state,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// [`Client::submit`] on the current session.
    pub fn submit(&self, sm: SubmitSm) -> Result<COctetString, Error> {
        self.client()?.submit(sm)
    }

    /// [`Client::submit_message`] on the current session (all parts on one bind).
    pub fn submit_message(&self, message: &ShortMessage) -> Result<Vec<COctetString>, Error> {
        self.client()?.submit_message(message)
    }

    /// [`Client::request`] on the current session.
    pub fn request(&self, body: Body) -> Result<Pdu, Error> {
        self.client()?.request(body)
    }

    /// Stops reconnecting and unbinds the current session.
    pub fn close(&self) {
        if let Some(client) = self.shared.stop() {
            let _ = client.unbind();
        }
    }
}

/// The supervisor thread: connect, serve, back off, until stopped.
fn supervise<F>(
    shared: &Shared,
    mut connect: F,
    backoff: &Backoff,
    sink: &SyncSender<InboundRequest>,
) where
    F: FnMut() -> Result<(Client, Inbound), Error>,
{
    let mut attempt = 0u32;
    loop {
        if shared.lock().stopped {
            return;
        }
        match connect() {
            Ok((client, inbound)) => {
                {
                    let mut state = shared.lock();
                    if state.stopped {
                        drop(state);
                        let _ = client.unbind();
                        return;
                    }
                    attempt = 0;
                    state.current = Some(client);
                    shared.changed.notify_all();
                }
                // Forward peer requests until the session ends.
                for request in inbound {
                    // A dropped receiver: the request is answered with status 0.
                    let _ = sink.send(request);
                }
                let mut state = shared.lock();
                state.current = None;
                shared.changed.notify_all();
            }
            Err(e) => tracing::warn!(error = %e, attempt, "connect failed"),
        }
        let deadline = Instant::now() + backoff.delay(attempt);
        attempt = attempt.saturating_add(1);
        let mut state = shared.lock();
        loop {
            if state.stopped {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = match shared.changed.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(e) => e.into_inner().0,
            };
        }
    }
}
