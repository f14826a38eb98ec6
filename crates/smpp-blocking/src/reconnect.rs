//! Sessions that come back: [`ReconnectingClient`] (one bind reconnected by
//! a supervisor thread with exponential backoff and jitter) and [`Pool`] (N
//! of them, with optional flow control: [`PoolConfig`]); blocking calls over
//! [`smpp_async`]'s on [`Threads`].

use std::time::Duration;

use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::{Body, COctetString, Pdu, SubmitSm};

pub use smpp_async::{Backoff, MemberState, MemberStatus, Order, PoolConfig};

use crate::client::Inbound;
use crate::rt::{block_on, Threads};
use crate::{Client, Error};

type Bound = Result<(smpp_async::Client<Threads>, smpp_async::Inbound), Error>;

/// A session `connect` made, as the async layer's; the connecting runs (and
/// blocks) on the supervisor's thread.
fn into_async(bound: Result<(Client, Inbound), Error>) -> std::future::Ready<Bound> {
    std::future::ready(bound.map(|(client, inbound)| (client.into_kept(), inbound.0)))
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
pub struct ReconnectingClient(smpp_async::ReconnectingClient<Threads>);

impl ReconnectingClient {
    /// Starts connecting with `connect` (for instance
    /// `move || Client::connect(addr, kind, bind.clone(), config.clone())`),
    /// and again after each session ends. Peer requests of every session
    /// arrive on the returned [`Inbound`] (up to 64 waiting; dropping it
    /// answers them with status 0).
    pub fn new<F>(mut connect: F, backoff: Backoff, wait: Duration) -> (ReconnectingClient, Inbound)
    where
        F: FnMut() -> Result<(Client, Inbound), Error> + Send + 'static,
    {
        let connect = move || into_async(connect());
        let (client, rx) = smpp_async::ReconnectingClient::new(connect, backoff, wait);
        (ReconnectingClient(client), Inbound(rx))
    }

    /// The bound session now, if any.
    pub fn current(&self) -> Option<Client> {
        self.0.current().map(Client::kept)
    }

    /// A session is bound now.
    pub fn is_connected(&self) -> bool {
        self.0.is_connected()
    }

    /// Waits up to `wait` for a bound session.
    pub fn client(&self) -> Result<Client, Error> {
        block_on(self.0.client()).map(Client::kept)
    }

    /// [`Client::submit`] on the current session.
    pub fn submit(&self, sm: SubmitSm) -> Result<COctetString, Error> {
        block_on(self.0.submit(sm))
    }

    /// [`Client::submit_message`] on the current session (all parts on one bind).
    pub fn submit_message(&self, message: &ShortMessage) -> Result<Vec<COctetString>, Error> {
        block_on(self.0.submit_message(message))
    }

    /// [`Client::request`] on the current session.
    pub fn request(&self, body: Body) -> Result<Pdu, Error> {
        block_on(self.0.request(body))
    }

    /// Stops reconnecting and unbinds the current session.
    pub fn close(&self) {
        block_on(self.0.close());
    }
}

/// N reconnecting binds used in turn: spreads requests over several
/// sessions (and connections) to one MC. Cheap to clone. Same semantics as
/// [`smpp_async::Pool`] (flow control: a TPS limit, and members paused on
/// `ESME_RTHROTTLED`/`ESME_RMSGQFUL` with the request retried elsewhere).
#[derive(Clone, Debug)]
pub struct Pool(smpp_async::Pool<Threads>);

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
        mut connect: F,
        backoff: Backoff,
        wait: Duration,
        config: PoolConfig,
    ) -> (Pool, Inbound)
    where
        F: FnMut() -> Result<(Client, Inbound), Error> + Clone + Send + 'static,
    {
        let (pool, rx) = smpp_async::Pool::with_config(
            size,
            move || into_async(connect()),
            backoff,
            wait,
            config,
        );
        (Pool(pool), Inbound(rx))
    }

    /// The pool's flow control.
    pub fn config(&self) -> &PoolConfig {
        self.0.config()
    }

    /// How many members are bound now.
    pub fn bound(&self) -> usize {
        self.0.bound()
    }

    /// How many members are paused now after a throttled answer.
    pub fn paused(&self) -> usize {
        self.0.paused()
    }

    /// Each member's state now and its session's last measured round trip
    /// (see [`smpp_async::Pool::members`]).
    pub fn members(&self) -> Vec<MemberStatus> {
        self.0.members()
    }

    /// An `enquire_link` through every bound member at once; each member's
    /// round trip, `None` for one not bound (see [`smpp_async::Pool::enquire_link`]).
    pub fn enquire_link(&self) -> Vec<Option<Result<Duration, Error>>> {
        block_on(self.0.enquire_link())
    }

    /// The next bound, unpaused member in turn (waiting as
    /// [`ReconnectingClient::client`] does).
    pub fn client(&self) -> Result<Client, Error> {
        block_on(self.0.client()).map(Client::kept)
    }

    /// [`Client::submit`] on the next unpaused member, under the pool's flow control.
    pub fn submit(&self, sm: SubmitSm) -> Result<COctetString, Error> {
        block_on(self.0.submit(sm))
    }

    /// [`submit`](Pool::submit) in order with the other submits of the same
    /// `key`, from any thread: it goes once every earlier call with this key
    /// has ended (see [`Order`]).
    pub fn submit_keyed<K: std::hash::Hash>(
        &self,
        key: K,
        sm: SubmitSm,
    ) -> Result<COctetString, Error> {
        block_on(self.0.submit_keyed(key, sm))
    }

    /// [`Client::submit_message`] with all parts on one member (pipelined,
    /// in order), each part under the pool's flow control. Fails with the
    /// first part that fails; the others may have been accepted.
    pub fn submit_message(&self, message: &ShortMessage) -> Result<Vec<COctetString>, Error> {
        block_on(self.0.submit_message(message))
    }

    /// [`Client::request`] on the next unpaused member, under the pool's flow control.
    pub fn request(&self, body: Body) -> Result<Pdu, Error> {
        block_on(self.0.request(body))
    }

    /// Stops reconnecting and unbinds every member.
    pub fn close(&self) {
        block_on(self.0.close());
    }
}
