//! The session's timers (reference §7.5). They are plain deadlines: the
//! session reports the earliest through `poll_timeout` and acts in
//! `handle_timeout` on those that passed; it never reads a clock.

use std::time::{Duration, Instant};

use super::config::SessionConfig;
use super::state::State;

/// A session timer, by its SMPP name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timer {
    /// `session_init_timer`: not bound in time after the connection opened.
    SessionInit,
    /// `enquire_link_timer`: nothing received for a while; probe the peer.
    EnquireLink,
    /// Our keepalive `enquire_link` unanswered: the peer is dead.
    EnquireLinkResponse,
    /// `inactivity_timer`: no transaction for a while.
    Inactivity,
    /// `response_timer`: one request unanswered.
    Response,
    /// Waiting for `unbind_resp`, or for outstanding traffic before answering the peer's `unbind`.
    Unbind,
}

impl Timer {
    /// Every timer.
    pub const ALL: [Timer; 6] = [
        Timer::SessionInit,
        Timer::EnquireLink,
        Timer::EnquireLinkResponse,
        Timer::Inactivity,
        Timer::Response,
        Timer::Unbind,
    ];

    /// Its name.
    pub const fn name(self) -> &'static str {
        match self {
            Timer::SessionInit => "session_init_timer",
            Timer::EnquireLink => "enquire_link_timer",
            Timer::EnquireLinkResponse => "enquire_link response wait",
            Timer::Inactivity => "inactivity_timer",
            Timer::Response => "response_timer",
            Timer::Unbind => "unbind wait",
        }
    }

    /// The configuration field that sets it.
    pub const fn config_field(self) -> &'static str {
        match self {
            Timer::SessionInit => "session_init_timeout",
            Timer::EnquireLink => "enquire_link_interval",
            Timer::EnquireLinkResponse => "enquire_link_timeout",
            Timer::Inactivity => "inactivity_timeout",
            Timer::Response => "response_timeout",
            Timer::Unbind => "unbind_timeout",
        }
    }

    /// The states it runs in.
    pub const fn active_in(self) -> &'static str {
        match self {
            Timer::SessionInit => "OPEN, OUTBOUND",
            Timer::EnquireLink | Timer::Inactivity => "BOUND_TX, BOUND_RX, BOUND_TRX",
            Timer::EnquireLinkResponse | Timer::Response => "all but CLOSED",
            Timer::Unbind => "UNBOUND",
        }
    }

    /// What happens when it expires.
    pub const fn on_expiry(self) -> &'static str {
        match self {
            Timer::SessionInit => "close (`SessionError::SessionInitTimeout`)",
            Timer::EnquireLink => "send enquire_link (armed again when it is answered)",
            Timer::EnquireLinkResponse => "close: peer dead (`SessionError::KeepaliveTimeout`)",
            Timer::Inactivity => "unbind; the session closes with `SessionError::InactivityTimeout`",
            Timer::Response => "fail that request (`RequestError::Timeout`); window room frees",
            Timer::Unbind => "our unbind: close (`SessionError::UnbindTimeout`); the peer's unbind: answer it and close",
        }
    }
}

/// The session-wide deadlines (per-request deadlines live in the in-flight map).
#[derive(Debug)]
pub(crate) struct Timers {
    /// When the connection opened.
    pub(crate) opened: Instant,
    /// Last PDU received: the enquire_link timer runs from here.
    pub(crate) last_received: Instant,
    /// Last PDU sent or received other than enquire_link(_resp): the
    /// inactivity timer runs from here.
    pub(crate) last_transaction: Instant,
    /// Our keepalive's sequence number and deadline.
    pub(crate) keepalive: Option<(u32, Instant)>,
    /// Our unbind, or the peer's unbind we have not answered yet.
    pub(crate) unbind: Option<Instant>,
}

impl Timers {
    pub(crate) fn new(now: Instant) -> Self {
        Timers {
            opened: now,
            last_received: now,
            last_transaction: now,
            keepalive: None,
            unbind: None,
        }
    }

    /// The deadline of one session-wide timer in `state`, if it runs.
    pub(crate) fn deadline(
        &self,
        timer: Timer,
        state: State,
        config: &SessionConfig,
    ) -> Option<Instant> {
        let century = Duration::from_secs(100 * 365 * 86_400);
        let after = |t: Instant, d: Option<Duration>| d.and_then(|d| t.checked_add(d.min(century)));
        match timer {
            Timer::SessionInit if matches!(state, State::Open | State::Outbound) => {
                after(self.opened, config.session_init_timeout)
            }
            Timer::EnquireLink if state.is_bound() && self.keepalive.is_none() => {
                after(self.last_received, config.enquire_link_interval)
            }
            Timer::EnquireLinkResponse => self.keepalive.map(|(_, d)| d),
            Timer::Inactivity if state.is_bound() => {
                after(self.last_transaction, config.inactivity_timeout)
            }
            Timer::Unbind if state == State::Unbound => self.unbind,
            _ => None,
        }
    }

    /// The earliest session-wide deadline in `state`.
    pub(crate) fn earliest(&self, state: State, config: &SessionConfig) -> Option<Instant> {
        [
            Timer::SessionInit,
            Timer::EnquireLink,
            Timer::EnquireLinkResponse,
            Timer::Inactivity,
            Timer::Unbind,
        ]
        .into_iter()
        .filter_map(|t| self.deadline(t, state, config))
        .min()
    }
}
