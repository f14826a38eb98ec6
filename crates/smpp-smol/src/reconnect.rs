//! A session that comes back: [`ReconnectingClient`], one bind reconnected
//! by a supervisor task with exponential backoff and jitter.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Duration;

use async_io::Timer;
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
}

#[derive(Debug, Default)]
struct State {
    current: Option<Client>,
    stopped: bool,
    /// Callers waiting for the state to change.
    waiters: Vec<Waker>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the current session (or none) and wakes the waiting callers.
    /// Once stopped, nothing is set and `client` comes back.
    fn set(&self, client: Option<Client>) -> Result<(), Option<Client>> {
        let mut state = self.lock();
        if state.stopped {
            return Err(client);
        }
        state.current = client;
        state.waiters.drain(..).for_each(Waker::wake);
        Ok(())
    }

    /// Stops for good and takes the current session, if any.
    fn stop(&self) -> Option<Client> {
        let mut state = self.lock();
        state.stopped = true;
        state.waiters.drain(..).for_each(Waker::wake);
        state.current.take()
    }
}

/// Cancels the supervisor when the last [`ReconnectingClient`] clone goes.
#[derive(Debug)]
struct StopOnDrop {
    shared: Arc<Shared>,
    supervisor: Mutex<Option<async_global_executor::Task<()>>>,
}

impl StopOnDrop {
    fn stop(&self) -> Option<Client> {
        let current = self.shared.stop();
        // Dropping the task cancels it.
        drop(
            self.supervisor
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        current
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // Dropping the last clone of the session unbinds it.
        drop(self.stop());
    }
}

/// A [`Client`] that reconnects (with [`Backoff`]) whenever its session
/// ends, until closed or dropped. Cheap to clone.
///
/// A supervisor task (on `async-global-executor`, like the connections)
/// connects, forwards the session's peer requests, and connects again once
/// the session ends. Calls wait up to `wait` for a bound session and fail
/// with [`Error::NotConnected`] otherwise. A call that fails because the
/// session died is **not** retried (it may have reached the MC;
/// resubmitting could duplicate the message): retry it yourself if
/// duplicates are acceptable. Peer requests of every successive session
/// arrive on one [`async_channel::Receiver`].
#[derive(Clone, Debug)]
pub struct ReconnectingClient {
    shared: Arc<Shared>,
    guard: Arc<StopOnDrop>,
    wait: Duration,
}

impl ReconnectingClient {
    /// Starts connecting with `connect` (for instance
    /// `move || Client::connect(addr, kind, bind.clone(), config.clone())`),
    /// and again after each session ends. Peer requests of every session
    /// arrive on the returned receiver (up to 64 waiting; dropping it
    /// answers them with status 0).
    pub fn new<F, Fut>(
        connect: F,
        backoff: Backoff,
        wait: Duration,
    ) -> (ReconnectingClient, async_channel::Receiver<InboundRequest>)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(Client, Inbound), Error>> + Send + 'static,
    {
        let (sink, inbound) = async_channel::bounded(64);
        let shared = Arc::new(Shared::default());
        let task =
            async_global_executor::spawn(supervise(Arc::clone(&shared), connect, backoff, sink));
        let guard = StopOnDrop {
            shared: Arc::clone(&shared),
            supervisor: Mutex::new(Some(task)),
        };
        let client = ReconnectingClient {
            shared,
            guard: Arc::new(guard),
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
    pub async fn client(&self) -> Result<Client, Error> {
        let bound = std::future::poll_fn(|cx| {
            let mut state = self.shared.lock();
            if state.stopped {
                return Poll::Ready(Err(Error::NotConnected));
            }
            if let Some(client) = state.current.as_ref().filter(|c| !c.is_closed()) {
                return Poll::Ready(Ok(client.clone()));
            }
            state.waiters.push(cx.waker().clone());
            Poll::Pending
        });
        let expired = async {
            Timer::after(self.wait).await;
            Err(Error::NotConnected)
        };
        futures_lite::future::or(bound, expired).await
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
        if let Some(client) = self.guard.stop() {
            let _ = client.unbind().await;
        }
    }
}

/// The supervisor task: connect, serve, back off, until stopped.
async fn supervise<F, Fut>(
    shared: Arc<Shared>,
    mut connect: F,
    backoff: Backoff,
    sink: async_channel::Sender<InboundRequest>,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(Client, Inbound), Error>>,
{
    let mut attempt = 0u32;
    loop {
        match connect().await {
            Ok((client, mut inbound)) => {
                if let Err(client) = shared.set(Some(client)) {
                    if let Some(client) = client {
                        let _ = client.unbind().await;
                    }
                    return;
                }
                attempt = 0;
                // Forward peer requests until the session ends.
                while let Some(request) = inbound.recv().await {
                    // A dropped receiver: the request is answered with status 0.
                    let _ = sink.send(request).await;
                }
                if shared.set(None).is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, attempt, "connect failed"),
        }
        Timer::after(backoff.delay(attempt)).await;
        attempt = attempt.saturating_add(1);
        if shared.lock().stopped {
            return;
        }
    }
}
