//! Sessions that come back: [`ReconnectingClient`] (one bind, reconnected
//! with exponential backoff and jitter) and [`Pool`] (N of them, with
//! optional flow control: [`PoolConfig`]).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smpp_proto::endpoint::flow::{self, Pick, RateLimiter, Throttle};
use smpp_proto::message::{ReferenceCounter, ShortMessage};
use smpp_proto::pdu::{Body, COctetString, Pdu, SubmitSm};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::client::{Inbound, InboundRequest};
use crate::{Client, Error};

pub use smpp_proto::endpoint::flow::Backoff;

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

pub use smpp_proto::endpoint::flow::PoolConfig;

/// `ESME_RTHROTTLED` or `ESME_RMSGQFUL`: not accepted, try later.
fn is_throttle(e: &Error) -> bool {
    matches!(e, Error::Status(s) if flow::is_throttle(*s))
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
        let limiter = config.limiter().map(Arc::new);
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
            .filter(|t| t.paused_until(std::time::Instant::now()).is_some())
            .count()
    }

    /// The next bound, unpaused member in turn; waits for a pause to end
    /// when every bound member is paused, and (like
    /// [`ReconnectingClient::client`]) when none is bound.
    pub async fn client(&self) -> Result<Client, Error> {
        self.pick().await.map(|(_, client)| client)
    }

    async fn pick(&self) -> Result<(usize, Client), Error> {
        loop {
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            let now = std::time::Instant::now();
            let bound = |i: usize| self.members[i].current().is_some();
            match flow::pick(start, &self.throttles, now, bound) {
                Pick::Member(i) => match self.members[i].current() {
                    Some(client) => return Ok((i, client)),
                    None => continue, // it just went away
                },
                Pick::WaitUntil(t) => tokio::time::sleep_until(Instant::from_std(t)).await,
                Pick::WaitBound(i) => drop(self.members[i].client().await?),
            }
        }
    }

    /// Member `i` once bound and unpaused (for requests pinned to one member).
    async fn pick_pinned(&self, i: usize) -> Result<Client, Error> {
        loop {
            let now = std::time::Instant::now();
            if let Some(t) = self.throttles[i].paused_until(now) {
                tokio::time::sleep_until(Instant::from_std(t)).await;
            }
            let client = self.members[i].client().await?;
            if self.throttles[i]
                .paused_until(std::time::Instant::now())
                .is_none()
            {
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
                let at = limiter.reserve(std::time::Instant::now());
                tokio::time::sleep_until(Instant::from_std(at)).await;
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
                    self.throttles[i].throttled(std::time::Instant::now(), &self.config);
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
