//! Sessions that come back: [`ReconnectingClient`] (one bind reconnected by
//! a supervisor task with exponential backoff and jitter) and [`Pool`] (N of
//! them, with optional flow control: [`PoolConfig`]).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::flow::{self, Order, Pick, RateLimiter, Throttle};
use crate::order::{hash_key, KeyOrder, Ticket};
use event_listener::Event;
use futures_util::future::{AbortHandle, Abortable};
use smpp_proto::message::{ReferenceCounter, ShortMessage};
use smpp_proto::pdu::{Body, COctetString, Pdu, SubmitSm};

use crate::client::{Inbound, InboundRequest};
use crate::{Client, Error, Runtime};

pub use crate::flow::Backoff;

/// What the supervisor and the handles share.
#[derive(Debug)]
struct Shared<R> {
    state: Mutex<State<R>>,
    /// Notified when the state changes (a waiting caller that gives up
    /// leaves nothing behind).
    changed: Event,
}

#[derive(Debug)]
struct State<R> {
    current: Option<Client<R>>,
    stopped: bool,
}

impl<R> Default for Shared<R> {
    fn default() -> Self {
        let state = State {
            current: None,
            stopped: false,
        };
        Shared {
            state: Mutex::new(state),
            changed: Event::new(),
        }
    }
}

impl<R> Shared<R> {
    fn lock(&self) -> MutexGuard<'_, State<R>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the current session (or none) and wakes the waiting callers.
    /// Once stopped, nothing is set and `client` comes back.
    fn set(&self, client: Option<Client<R>>) -> Result<(), Option<Client<R>>> {
        let mut state = self.lock();
        if state.stopped {
            return Err(client);
        }
        state.current = client;
        drop(state);
        self.changed.notify(usize::MAX);
        Ok(())
    }

    /// Stops for good and takes the current session, if any.
    fn stop(&self) -> Option<Client<R>> {
        let mut state = self.lock();
        state.stopped = true;
        let current = state.current.take();
        drop(state);
        self.changed.notify(usize::MAX);
        current
    }
}

/// Cancels the supervisor when the last [`ReconnectingClient`] clone goes.
#[derive(Debug)]
struct StopOnDrop<R> {
    shared: Arc<Shared<R>>,
    supervisor: AbortHandle,
}

impl<R> StopOnDrop<R> {
    fn stop(&self) -> Option<Client<R>> {
        let current = self.shared.stop();
        self.supervisor.abort();
        current
    }
}

impl<R> Drop for StopOnDrop<R> {
    fn drop(&mut self) {
        // Dropping the last clone of the session unbinds it.
        drop(self.stop());
    }
}

/// A [`Client`] that reconnects (with [`Backoff`]) whenever its session
/// ends, until closed or dropped. Cheap to clone.
///
/// A supervisor task connects, forwards the session's peer requests, and connects again once
/// the session ends. Calls wait up to `wait` for a bound session and fail
/// with [`Error::NotConnected`] otherwise. A call that fails because the
/// session died is **not** retried (it may have reached the MC;
/// resubmitting could duplicate the message): retry it yourself if
/// duplicates are acceptable. Peer requests of every successive session
/// arrive on one [`Inbound`].
#[derive(Clone, Debug)]
pub struct ReconnectingClient<R> {
    shared: Arc<Shared<R>>,
    guard: Arc<StopOnDrop<R>>,
    wait: Duration,
}

impl<R: Runtime> ReconnectingClient<R> {
    /// Starts connecting with `connect` (for instance
    /// `move || Client::connect(addr, kind, bind.clone(), config.clone())`),
    /// and again after each session ends. Peer requests of every session
    /// arrive on the returned [`Inbound`] (up to 64 waiting; dropping it
    /// answers them with status 0).
    pub fn new<F, Fut>(
        connect: F,
        backoff: Backoff,
        wait: Duration,
    ) -> (ReconnectingClient<R>, Inbound)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(Client<R>, Inbound), Error>> + Send + 'static,
    {
        let (sink, inbound) = async_channel::bounded(64);
        let client = ReconnectingClient::with_sink(connect, backoff, wait, sink);
        (client, Inbound::forwarded(inbound))
    }

    fn with_sink<F, Fut>(
        connect: F,
        backoff: Backoff,
        wait: Duration,
        sink: async_channel::Sender<InboundRequest>,
    ) -> ReconnectingClient<R>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(Client<R>, Inbound), Error>> + Send + 'static,
    {
        let shared = Arc::new(Shared::default());
        let (supervisor, registration) = AbortHandle::new_pair();
        let task = supervise(Arc::clone(&shared), connect, backoff, sink);
        R::spawn(async move {
            let _ = Abortable::new(task, registration).await;
        });
        let guard = StopOnDrop {
            shared: Arc::clone(&shared),
            supervisor,
        };
        ReconnectingClient {
            shared,
            guard: Arc::new(guard),
            wait,
        }
    }

    /// The bound session now, if any.
    pub fn current(&self) -> Option<Client<R>> {
        let state = self.shared.lock();
        state.current.clone().filter(|c| !c.is_closed())
    }

    /// A session is bound now.
    pub fn is_connected(&self) -> bool {
        self.current().is_some()
    }

    /// Waits up to `wait` for a bound session.
    pub async fn client(&self) -> Result<Client<R>, Error> {
        let bound = async {
            loop {
                // Listening first: a change after the check still wakes us.
                let changed = self.shared.changed.listen();
                {
                    let state = self.shared.lock();
                    if state.stopped {
                        return Err(Error::NotConnected);
                    }
                    if let Some(client) = state.current.as_ref().filter(|c| !c.is_closed()) {
                        return Ok(client.clone());
                    }
                }
                changed.await;
            }
        };
        let bound = crate::timeout::<R, _>(self.wait, bound).await;
        bound.unwrap_or(Err(Error::NotConnected))
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
async fn supervise<R: Runtime, F, Fut>(
    shared: Arc<Shared<R>>,
    mut connect: F,
    backoff: Backoff,
    sink: async_channel::Sender<InboundRequest>,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(Client<R>, Inbound), Error>>,
{
    let mut attempt = 0u32;
    loop {
        match connect().await {
            Ok((client, inbound)) => {
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
        R::sleep(backoff.delay(attempt)).await;
        attempt = attempt.saturating_add(1);
        if shared.lock().stopped {
            return;
        }
    }
}

pub use crate::flow::PoolConfig;

/// `ESME_RTHROTTLED` or `ESME_RMSGQFUL`: not accepted, try later.
fn is_throttle(e: &Error) -> bool {
    matches!(e, Error::Status(s) if flow::is_throttle(*s))
}

async fn sleep_until<R: Runtime>(at: std::time::Instant) {
    R::sleep(at.saturating_duration_since(std::time::Instant::now())).await;
}

/// A [`Pool`] member's state ([`Pool::members`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberState {
    /// Bound and taking requests.
    Bound,
    /// Bound, but paused after a throttled answer for `remaining` more.
    Paused {
        /// Until the pause ends.
        remaining: Duration,
    },
    /// Not bound now: connecting, or backing off before the next attempt.
    Connecting,
    /// The pool was closed.
    Stopped,
}

/// One [`Pool`] member's state and the last round trip measured on its
/// session ([`Pool::members`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberStatus {
    /// Bound, paused, connecting or stopped.
    pub state: MemberState,
    /// The round trip of the last answered `enquire_link` on its current
    /// session (`None`: not bound, or none measured on this session yet).
    pub last_round_trip: Option<Duration>,
}

/// N reconnecting binds used in turn: spreads requests over several
/// sessions (and connections) to one MC. Cheap to clone.
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
/// Each member is a [`Client`]: with an SMPP 5.0 MC reporting
/// `congestion_state`, a member's requests wait for room in its own
/// effective window, narrowed before the MC throttles (see [`Client`]);
/// [`Pool::peer_congestion`] shows the members' last values.
///
/// # Order
///
/// A caller that awaits each call before making the next has its requests
/// sent (and accepted) in that order. Concurrent calls may go through
/// different sessions, and by default no order among them is kept: a
/// throttled message retried later may be passed by the next one. With
/// [`Order::PerDestination`] (or [`submit_keyed`](Pool::submit_keyed))
/// the submits to one destination (one key) go one at a time, in call
/// order, through throttles and retries.
#[derive(Clone, Debug)]
pub struct Pool<R> {
    members: Arc<[ReconnectingClient<R>]>,
    throttles: Arc<[Throttle]>,
    next: Arc<AtomicUsize>,
    config: Arc<PoolConfig>,
    limiter: Option<Arc<RateLimiter>>,
    refs: Arc<Mutex<ReferenceCounter>>,
    keys: Arc<KeyOrder>,
}

impl<R: Runtime> Pool<R> {
    /// Starts `size` (at least 1) [`ReconnectingClient`]s made with
    /// `connect`; their peer requests all arrive on the one [`Inbound`].
    /// Flow control is [`PoolConfig::default`] (no rate limit).
    pub fn new<F, Fut>(
        size: usize,
        connect: F,
        backoff: Backoff,
        wait: Duration,
    ) -> (Pool<R>, Inbound)
    where
        F: FnMut() -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<(Client<R>, Inbound), Error>> + Send + 'static,
    {
        Pool::with_config(size, connect, backoff, wait, PoolConfig::default())
    }

    /// [`Pool::new`] with the flow control of `config`.
    #[must_use]
    pub fn with_config<F, Fut>(
        size: usize,
        connect: F,
        backoff: Backoff,
        wait: Duration,
        config: PoolConfig,
    ) -> (Pool<R>, Inbound)
    where
        F: FnMut() -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<(Client<R>, Inbound), Error>> + Send + 'static,
    {
        let (sink, inbound) = async_channel::bounded(64);
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
            keys: Arc::default(),
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

    /// The last SMPP 5.0 `congestion_state` each bound member's MC reported
    /// (`None`: not bound, or no value yet), from the members' stats.
    pub async fn peer_congestion(&self) -> Vec<Option<u8>> {
        let mut values = Vec::with_capacity(self.members.len());
        for member in self.members.iter() {
            let value = match member.current() {
                Some(client) => client.stats().await.ok().and_then(|s| s.peer_congestion),
                None => None,
            };
            values.push(value);
        }
        values
    }

    /// Each member's state now and the round trip of its session's last
    /// answered [`Client::enquire_link`] (through [`Pool::enquire_link`] or
    /// a client taken from the pool), in member order. Nothing is sent: see
    /// [`Pool::enquire_link`] to measure afresh.
    pub fn members(&self) -> Vec<MemberStatus> {
        let now = std::time::Instant::now();
        let status = |(member, throttle): (&ReconnectingClient<R>, &Throttle)| {
            let current = member.current();
            let state = match (&current, throttle.paused_until(now)) {
                _ if member.shared.lock().stopped => MemberState::Stopped,
                (None, _) => MemberState::Connecting,
                (Some(_), Some(until)) => MemberState::Paused {
                    remaining: until.saturating_duration_since(now),
                },
                (Some(_), None) => MemberState::Bound,
            };
            let last_round_trip = current.and_then(|c| c.last_round_trip());
            MemberStatus {
                state,
                last_round_trip,
            }
        };
        self.members
            .iter()
            .zip(self.throttles.iter())
            .map(status)
            .collect()
    }

    /// Sends an `enquire_link` through every bound member at once (paused
    /// ones too: a throttled MC still answers it; outside the TPS limit)
    /// and returns each member's round trip, in member order: `None` for a
    /// member not bound now, the error for one whose probe failed. The
    /// round trips are then in [`Pool::members`].
    pub async fn enquire_link(&self) -> Vec<Option<Result<Duration, Error>>> {
        let probe = |member: &ReconnectingClient<R>| {
            let current = member.current();
            async move {
                match current {
                    Some(client) => Some(client.enquire_link().await),
                    None => None,
                }
            }
        };
        futures_util::future::join_all(self.members.iter().map(probe)).await
    }

    /// How many members are paused now after a throttled answer.
    pub fn paused(&self) -> usize {
        let now = std::time::Instant::now();
        let paused = self
            .throttles
            .iter()
            .filter(|t| t.paused_until(now).is_some());
        paused.count()
    }

    /// The next bound, unpaused member in turn; waits for a pause to end
    /// when every bound member is paused, and (like
    /// [`ReconnectingClient::client`]) when none is bound.
    pub async fn client(&self) -> Result<Client<R>, Error> {
        self.pick().await.map(|(_, client)| client)
    }

    async fn pick(&self) -> Result<(usize, Client<R>), Error> {
        loop {
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            let now = std::time::Instant::now();
            let bound = |i: usize| self.members[i].is_connected();
            match flow::pick(start, &self.throttles, now, bound) {
                Pick::Member(i) => match self.members[i].current() {
                    Some(client) => return Ok((i, client)),
                    None => continue, // it just went away
                },
                Pick::WaitUntil(t) => sleep_until::<R>(t).await,
                Pick::WaitBound(i) => drop(self.members[i].client().await?),
            }
        }
    }

    /// Member `i` once bound and unpaused (for requests pinned to one member).
    async fn pick_pinned(&self, i: usize) -> Result<Client<R>, Error> {
        loop {
            if let Some(t) = self.throttles[i].paused_until(std::time::Instant::now()) {
                sleep_until::<R>(t).await;
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
        F: Fn(Client<R>) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut retries = 0;
        loop {
            if let Some(limiter) = &self.limiter {
                sleep_until::<R>(limiter.reserve(std::time::Instant::now())).await;
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

    /// [`Client::submit`] on the next unpaused member, under the pool's
    /// flow control (and, with [`Order::PerDestination`], after the earlier
    /// submits to the same destination: its place is taken at this call).
    pub fn submit(
        &self,
        sm: SubmitSm,
    ) -> impl Future<Output = Result<COctetString, Error>> + Send + '_ {
        let ticket = (self.config.order == Order::PerDestination)
            .then(|| self.keys.enter(hash_key(sm.destination_addr.as_bytes())));
        self.submit_in_turn(ticket, sm)
    }

    /// [`submit`](Pool::submit) in order with the other submits of the same
    /// `key` (a destination, a sender, a conversation...), whatever the
    /// pool's [`Order`]: it goes once every earlier call with this key has
    /// ended (its place is taken at this call, before anything is awaited).
    pub fn submit_keyed<K: std::hash::Hash>(
        &self,
        key: K,
        sm: SubmitSm,
    ) -> impl Future<Output = Result<COctetString, Error>> + Send + '_ {
        let ticket = Some(self.keys.enter(hash_key(key)));
        self.submit_in_turn(ticket, sm)
    }

    async fn submit_in_turn(
        &self,
        ticket: Option<Ticket>,
        sm: SubmitSm,
    ) -> Result<COctetString, Error> {
        if let Some(ticket) = &ticket {
            ticket.turn().await;
        }
        let result = self
            .send(None, |client| {
                let sm = sm.clone();
                async move { client.submit(sm).await }
            })
            .await;
        drop(ticket); // the next of this key may go
        result
    }

    /// [`Client::submit_message`] with all parts on one member (pipelined,
    /// in order), each part under the pool's flow control; a throttled part
    /// is retried on the same member once its pause ends. Fails with the
    /// first part that fails; the others may have been accepted.
    pub fn submit_message(
        &self,
        message: &ShortMessage,
    ) -> impl Future<Output = Result<Vec<COctetString>, Error>> + Send + '_ {
        // Built, and (with per-destination order) placed in its
        // destination's queue, at this call: one place for all its parts.
        let parts = {
            let mut refs = self.refs.lock().unwrap_or_else(|e| e.into_inner());
            message.build(&mut refs)
        };
        let ticket = match (
            self.config.order,
            parts.as_ref().ok().and_then(|p| p.first()),
        ) {
            (Order::PerDestination, Some(first)) => {
                Some(self.keys.enter(hash_key(first.destination_addr.as_bytes())))
            }
            _ => None,
        };
        async move {
            let parts = parts?;
            if let Some(ticket) = &ticket {
                ticket.turn().await;
            }
            let (member, _) = self.pick().await?;
            let send = |sm: SubmitSm| {
                self.send(Some(member), move |client| {
                    let sm = sm.clone();
                    async move { client.submit(sm).await }
                })
            };
            let result = futures_util::future::try_join_all(parts.into_iter().map(send)).await;
            drop(ticket); // the next of this destination may go
            result
        }
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
