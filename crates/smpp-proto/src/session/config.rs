//! Session configuration: limits and timer durations.

use core::time::Duration;

use crate::pdu::profile::TlvProfile;
use crate::pdu::DecodeConfig;

/// What happens when the peer has more requests awaiting our answer than
/// [`SessionConfig::max_inbound`] allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum InboundOverflow {
    /// Answer the excess request at once with its `*_resp` and
    /// `ESME_RTHROTTLED`, and report [`Event::InboundThrottled`](super::Event::InboundThrottled).
    #[default]
    Throttle,
    /// Stop accepting input bytes (`handle_input` returns less than it was
    /// given) until the application answers a pending request. TCP flow
    /// control then slows the peer down.
    Backpressure,
}

/// Limits and timers of a [`Session`](super::Session). Shared between
/// sessions behind an `Arc`; build with `SessionConfig::default()` and the
/// `with_*` methods.
///
/// Defaults follow common practice (reference §7.5): responses within 30 s,
/// an `enquire_link` after 30 s without traffic from the peer, 10 s for its
/// answer, 30 s to bind, no inactivity timeout, a window of 10.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// How received PDUs are decoded; `decode.max_pdu_len` also caps the input buffer.
    pub decode: DecodeConfig,
    /// Outbound window: the application's requests awaiting a response (at least 1).
    pub max_in_flight: usize,
    /// Inbound window: peer requests awaiting the application's answer (at least 1).
    pub max_inbound: usize,
    /// What to do when the inbound window is full.
    pub inbound_overflow: InboundOverflow,
    /// Octets of encoded PDUs held until [`poll_transmit`](super::Session::poll_transmit)
    /// takes them. Commands are refused beyond it, and input stops being
    /// accepted (automatic answers could not be queued).
    pub max_buffered_output: usize,
    /// Events held until [`poll_event`](super::Session::poll_event) takes
    /// them; input stops being accepted beyond it.
    pub max_buffered_events: usize,
    /// `response_timer`: a request unanswered for this long fails with
    /// [`RequestError::Timeout`](super::RequestError::Timeout).
    pub response_timeout: Duration,
    /// `enquire_link_timer`: when bound and nothing arrived from the peer
    /// for this long, send an `enquire_link`. `None`: never.
    pub enquire_link_interval: Option<Duration>,
    /// How long our keepalive `enquire_link` may go unanswered before the
    /// peer is declared dead and the session closes.
    pub enquire_link_timeout: Duration,
    /// `session_init_timer`: close a connection that is not bound this long
    /// after it opened (both roles). `None`: never.
    pub session_init_timeout: Option<Duration>,
    /// `inactivity_timer`: when bound and no PDU other than `enquire_link`
    /// passed either way for this long, unbind. `None`: never.
    pub inactivity_timeout: Option<Duration>,
    /// How long to wait for `unbind_resp` after our `unbind`, and how long
    /// to wait for outstanding traffic after the peer's `unbind` before
    /// answering it.
    pub unbind_timeout: Duration,
    /// What a peer request carrying a TLV its operation may not carry (in
    /// the session's version) gets: kept ([`TlvProfile::Lenient`], the
    /// specification's rule), or answered `ESME_RTLVNOTALLWD`
    /// ([`TlvProfile::Strict`]; see [`crate::pdu::profile`]).
    pub tlv_profile: TlvProfile,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            decode: DecodeConfig::default(),
            max_in_flight: 10,
            max_inbound: 64,
            inbound_overflow: InboundOverflow::Throttle,
            max_buffered_output: 256 * 1024,
            max_buffered_events: 1024,
            response_timeout: Duration::from_secs(30),
            enquire_link_interval: Some(Duration::from_secs(30)),
            enquire_link_timeout: Duration::from_secs(10),
            session_init_timeout: Some(Duration::from_secs(30)),
            inactivity_timeout: None,
            unbind_timeout: Duration::from_secs(5),
            tlv_profile: TlvProfile::Lenient,
        }
    }
}

impl SessionConfig {
    /// Sets [`SessionConfig::tlv_profile`].
    #[must_use]
    pub fn with_tlv_profile(mut self, profile: TlvProfile) -> Self {
        self.tlv_profile = profile;
        self
    }

    /// Sets [`SessionConfig::decode`].
    #[must_use]
    pub fn with_decode(mut self, decode: DecodeConfig) -> Self {
        self.decode = decode;
        self
    }

    /// Sets [`SessionConfig::max_in_flight`] (at least 1).
    #[must_use]
    pub fn with_max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Sets [`SessionConfig::max_inbound`] (at least 1).
    #[must_use]
    pub fn with_max_inbound(mut self, n: usize) -> Self {
        self.max_inbound = n.max(1);
        self
    }

    /// Sets [`SessionConfig::inbound_overflow`].
    #[must_use]
    pub fn with_inbound_overflow(mut self, mode: InboundOverflow) -> Self {
        self.inbound_overflow = mode;
        self
    }

    /// Sets [`SessionConfig::max_buffered_output`] (at least one PDU header).
    #[must_use]
    pub fn with_max_buffered_output(mut self, bytes: usize) -> Self {
        self.max_buffered_output = bytes.max(crate::pdu::HEADER_LEN);
        self
    }

    /// Sets [`SessionConfig::max_buffered_events`] (at least 1).
    #[must_use]
    pub fn with_max_buffered_events(mut self, n: usize) -> Self {
        self.max_buffered_events = n.max(1);
        self
    }

    /// Sets [`SessionConfig::response_timeout`].
    #[must_use]
    pub fn with_response_timeout(mut self, d: Duration) -> Self {
        self.response_timeout = d;
        self
    }

    /// Sets [`SessionConfig::enquire_link_interval`].
    #[must_use]
    pub fn with_enquire_link_interval(mut self, d: Option<Duration>) -> Self {
        self.enquire_link_interval = d;
        self
    }

    /// Sets [`SessionConfig::enquire_link_timeout`].
    #[must_use]
    pub fn with_enquire_link_timeout(mut self, d: Duration) -> Self {
        self.enquire_link_timeout = d;
        self
    }

    /// Sets [`SessionConfig::session_init_timeout`].
    #[must_use]
    pub fn with_session_init_timeout(mut self, d: Option<Duration>) -> Self {
        self.session_init_timeout = d;
        self
    }

    /// Sets [`SessionConfig::inactivity_timeout`].
    #[must_use]
    pub fn with_inactivity_timeout(mut self, d: Option<Duration>) -> Self {
        self.inactivity_timeout = d;
        self
    }

    /// Sets [`SessionConfig::unbind_timeout`].
    #[must_use]
    pub fn with_unbind_timeout(mut self, d: Duration) -> Self {
        self.unbind_timeout = d;
        self
    }
}
