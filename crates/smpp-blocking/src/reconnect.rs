//! A session that comes back: [`ReconnectingClient`], one bind reconnected
//! by a supervisor thread with exponential backoff and jitter.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use smpp_proto::endpoint::flow::{self, Pick, RateLimiter, Throttle};
use smpp_proto::message::{ReferenceCounter, ShortMessage};
use smpp_proto::pdu::{Body, COctetString, Pdu, SubmitSm};

use crate::client::{Inbound, InboundRequest};
use crate::{Client, Error};

pub use smpp_proto::endpoint::flow::Backoff;

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
/// successive session arrive on one [`Inbound`].
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
    /// arrive on the returned [`Inbound`] (up to 64 waiting; dropping it
    /// answers them with status 0).
    pub fn new<F>(connect: F, backoff: Backoff, wait: Duration) -> (ReconnectingClient, Inbound)
    where
        F: FnMut() -> Result<(Client, Inbound), Error> + Send + 'static,
    {
        let (sink, inbound) = mpsc::sync_channel(64);
        let client = ReconnectingClient::with_sink(connect, backoff, wait, sink);
        (client, Inbound::forwarded(inbound))
    }

    fn with_sink<F>(
        connect: F,
        backoff: Backoff,
        wait: Duration,
        sink: SyncSender<InboundRequest>,
    ) -> ReconnectingClient
    where
        F: FnMut() -> Result<(Client, Inbound), Error> + Send + 'static,
    {
        let shared = Arc::new(Shared::default());
        let supervisor = Arc::clone(&shared);
        thread::Builder::new()
            .name("smpp-reconnect".into())
            .spawn(move || supervise(&supervisor, connect, &backoff, &sink))
            .expect("spawn the reconnect supervisor");
        ReconnectingClient {
            _guard: Arc::new(StopOnDrop(Arc::clone(&shared))),
            shared,
            wait,
        }
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

pub use smpp_proto::endpoint::flow::PoolConfig;

/// `ESME_RTHROTTLED` or `ESME_RMSGQFUL`: not accepted, try later.
fn is_throttle(e: &Error) -> bool {
    matches!(e, Error::Status(s) if flow::is_throttle(*s))
}

fn sleep_until(at: Instant) {
    thread::sleep(at.saturating_duration_since(Instant::now()));
}

/// N reconnecting binds used in turn: spreads requests over several
/// sessions (and connections) to one MC. Cheap to clone; call it from as
/// many threads as you like. Same semantics as `smpp_tokio::Pool`.
///
/// # Flow control ([`PoolConfig`])
///
/// With [`PoolConfig::tps`] set, every request the pool sends (each part of
/// a [`submit_message`](Pool::submit_message), each retry) first waits for a
/// token of one bucket shared by the whole pool, handed out in call order.
///
/// When a request through a member is answered `ESME_RTHROTTLED` or
/// `ESME_RMSGQFUL`, that member is paused (no new request goes through it
/// for [`PoolConfig::throttle_pause`], doubling on repeats) and the request
/// is sent again, through the next unpaused member, up to
/// [`PoolConfig::max_throttle_retries`] times; then the call returns
/// [`Error::Status`] with that status. Other errors are never retried (see
/// [`ReconnectingClient`]).
///
/// # Order
///
/// A thread that waits for each call before making the next has its
/// requests sent (and accepted) in that order; calls from several threads
/// may go through different sessions, and no order among them is guaranteed.
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
    pub fn new<F>(size: usize, connect: F, backoff: Backoff, wait: Duration) -> (Pool, Inbound)
    where
        F: FnMut() -> Result<(Client, Inbound), Error> + Clone + Send + 'static,
    {
        Pool::with_config(size, connect, backoff, wait, PoolConfig::default())
    }

    /// [`Pool::new`] with the flow control of `config`.
    pub fn with_config<F>(
        size: usize,
        connect: F,
        backoff: Backoff,
        wait: Duration,
        config: PoolConfig,
    ) -> (Pool, Inbound)
    where
        F: FnMut() -> Result<(Client, Inbound), Error> + Clone + Send + 'static,
    {
        let (sink, inbound) = mpsc::sync_channel(64);
        let size = size.max(1);
        let members = (0..size)
            .map(|_| {
                let (connect, backoff) = (connect.clone(), backoff.clone());
                ReconnectingClient::with_sink(connect, backoff, wait, sink.clone())
            })
            .collect();
        let throttles = (0..size).map(|_| Throttle::default()).collect();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u16);
        let pool = Pool {
            members,
            throttles,
            next: Arc::new(AtomicUsize::new(0)),
            limiter: config.limiter().map(Arc::new),
            config: Arc::new(config),
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
        self.members.iter().filter(|m| m.is_connected()).count()
    }

    /// How many members are paused now after a throttled answer.
    pub fn paused(&self) -> usize {
        let now = Instant::now();
        let paused = self
            .throttles
            .iter()
            .filter(|t| t.paused_until(now).is_some());
        paused.count()
    }

    /// The next bound, unpaused member in turn; waits for a pause to end
    /// when every bound member is paused, and (like
    /// [`ReconnectingClient::client`]) when none is bound.
    pub fn client(&self) -> Result<Client, Error> {
        self.pick().map(|(_, client)| client)
    }

    fn pick(&self) -> Result<(usize, Client), Error> {
        loop {
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            let bound = |i: usize| self.members[i].is_connected();
            match flow::pick(start, &self.throttles, Instant::now(), bound) {
                Pick::Member(i) => match self.members[i].current() {
                    Some(client) => return Ok((i, client)),
                    None => continue, // it just went away
                },
                Pick::WaitUntil(t) => sleep_until(t),
                Pick::WaitBound(i) => drop(self.members[i].client()?),
            }
        }
    }

    /// Member `i` once bound and unpaused (for requests pinned to one member).
    fn pick_pinned(&self, i: usize) -> Result<Client, Error> {
        loop {
            if let Some(t) = self.throttles[i].paused_until(Instant::now()) {
                sleep_until(t);
            }
            let client = self.members[i].client()?;
            if self.throttles[i].paused_until(Instant::now()).is_none() {
                return Ok(client);
            }
        }
    }

    /// Sends with `op` under the pool's flow control: a token, an unpaused
    /// member (member `pinned` only, if given), retries on throttling.
    fn send<T>(
        &self,
        pinned: Option<usize>,
        op: impl Fn(Client) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut retries = 0;
        loop {
            if let Some(limiter) = &self.limiter {
                sleep_until(limiter.reserve(Instant::now()));
            }
            let (i, client) = match pinned {
                Some(i) => (i, self.pick_pinned(i)?),
                None => self.pick()?,
            };
            match op(client) {
                Ok(value) => {
                    self.throttles[i].succeeded();
                    return Ok(value);
                }
                Err(e) if is_throttle(&e) => {
                    self.throttles[i].throttled(Instant::now(), &self.config);
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
    pub fn submit(&self, sm: SubmitSm) -> Result<COctetString, Error> {
        self.send(None, |client| client.submit(sm.clone()))
    }

    /// Builds `message` into its parts and submits them all on one member,
    /// one after the other in order, each under the pool's flow control; a
    /// throttled part is retried on the same member once its pause ends.
    /// Fails with the first part that fails; the earlier ones were accepted.
    pub fn submit_message(&self, message: &ShortMessage) -> Result<Vec<COctetString>, Error> {
        let parts = {
            let mut refs = self.refs.lock().unwrap_or_else(|e| e.into_inner());
            message.build(&mut refs)?
        };
        let (member, _) = self.pick()?;
        let submit = |sm: SubmitSm| self.send(Some(member), |client| client.submit(sm.clone()));
        parts.into_iter().map(submit).collect()
    }

    /// [`Client::request`] on the next unpaused member, under the pool's flow control.
    pub fn request(&self, body: Body) -> Result<Pdu, Error> {
        self.send(None, |client| client.request(body.clone()))
    }

    /// Stops reconnecting and unbinds every member.
    pub fn close(&self) {
        thread::scope(|s| {
            for member in self.members.iter() {
                s.spawn(|| member.close());
            }
        });
    }
}
