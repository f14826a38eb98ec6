//! Sessions that come back: [`ReconnectingClient`] (one bind, reconnected
//! with exponential backoff and jitter) and [`Pool`] (N of them).

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::{Body, COctetString, Pdu, SubmitSm};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

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

/// N reconnecting binds used in turn: spreads requests over several
/// sessions (and connections) to one MC. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Pool {
    members: Arc<[ReconnectingClient]>,
    next: Arc<AtomicUsize>,
}

impl Pool {
    /// Starts `size` (at least 1) [`ReconnectingClient`]s made with
    /// `connect`; their peer requests all arrive on the one [`Inbound`].
    pub fn new<F, Fut>(size: usize, connect: F, backoff: Backoff, wait: Duration) -> (Pool, Inbound)
    where
        F: FnMut() -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<(Client, Inbound), Error>> + Send,
    {
        let (sink, inbound) = mpsc::channel(64);
        let members = (0..size.max(1))
            .map(|_| {
                let (connect, backoff) = (connect.clone(), backoff.clone());
                ReconnectingClient::with_sink(connect, backoff, wait, sink.clone())
            })
            .collect();
        let pool = Pool {
            members,
            next: Arc::new(AtomicUsize::new(0)),
        };
        (pool, Inbound::forwarded(inbound))
    }

    /// How many members are bound now.
    pub fn bound(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.current().is_some())
            .count()
    }

    /// The next bound member in turn; waits (like
    /// [`ReconnectingClient::client`]) when none is bound.
    pub async fn client(&self) -> Result<Client, Error> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.members.len();
        let bound = (0..n).find_map(|i| self.members[(start + i) % n].current());
        match bound {
            Some(client) => Ok(client),
            None => self.members[start % n].client().await,
        }
    }

    /// [`Client::submit`] on the next member.
    pub async fn submit(&self, sm: SubmitSm) -> Result<COctetString, Error> {
        self.client().await?.submit(sm).await
    }

    /// [`Client::submit_message`] with all parts on one member.
    pub async fn submit_message(&self, message: &ShortMessage) -> Result<Vec<COctetString>, Error> {
        self.client().await?.submit_message(message).await
    }

    /// [`Client::request`] on the next member.
    pub async fn request(&self, body: Body) -> Result<Pdu, Error> {
        self.client().await?.request(body).await
    }

    /// Stops reconnecting and unbinds every member.
    pub async fn close(&self) {
        futures_util::future::join_all(self.members.iter().map(|m| m.close())).await;
    }
}
