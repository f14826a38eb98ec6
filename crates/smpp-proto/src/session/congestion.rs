//! SMPP 5.0 `congestion_state` (TLV 0x0428, allowed in any response): what
//! an MC reports ([`Gauge`], formula [`congestion_state`]) and how the
//! sender of requests adapts its outbound window to it ([`Controller`]).
//!
//! The value's bands (SMPP 5.0 §4.8.4.17): 0 idle, 1-29 low, 30-49 medium,
//! 50-79 high, 80-90 optimum, 90-99 nearing congestion, 100 congested. A
//! sender should aim to keep its peer in the optimum band (reference §7.6).

/// The window a sender starts from when its peer first reports a
/// `congestion_state` (unless more is in flight already): small enough
/// for a modest inbound window, and doubled every round trip while the
/// peer reports low congestion.
pub const INITIAL_WINDOW: usize = 8;

/// The `congestion_state` an MC reports, 0-100.
///
/// The largest of three parts:
/// - **inbound window fill**: `inbound_peak * 90 / max_inbound`, where
///   `inbound_peak` is the most peer requests awaiting an answer at once
///   lately (see [`Session::congestion_state`](super::Session::congestion_state)).
///   A full inbound window reads 90, the top of the optimum band: a peer
///   whose window fits ours is told to hold, never to slow down, merely for
///   using its window;
/// - **over the window**: 100 when a request arrived beyond the inbound
///   window lately (answered `ESME_RTHROTTLED`): the peer sends more than
///   we take, that is real congestion;
/// - **the application's load** (`load`, 0-100, from
///   [`Session::set_load`](super::Session::set_load)): queue depth, store
///   backlog, rate-limit headroom, as the application measures it.
///
/// A sender that adapts as ours does ([`Session::window`](super::Session::window))
/// stops growing once the fill reads 80, at 8/9 of our inbound window: a
/// margin against timing jitter, so that it holds before it could overrun
/// the window. An inbound window above the peers' windows (`smpp serve`
/// uses 1,024) lets them use all of theirs.
pub fn congestion_state(
    inbound_peak: usize,
    max_inbound: usize,
    over_window: bool,
    load: u8,
) -> u8 {
    if over_window {
        return 100;
    }
    let max = max_inbound.max(1);
    let fill = (inbound_peak.min(max) * 90 / max) as u8;
    fill.max(load.min(100))
}

/// MC side: the inputs of [`congestion_state`], over a recent past.
///
/// "Lately" is the current and the previous epoch of `max_inbound`
/// answered requests each: a wave of responses that empties the inbound
/// window reports how full it was, not how empty it is becoming (else a
/// sender would read each wave as room to double its window).
#[derive(Clone, Debug, Default)]
pub(crate) struct Gauge {
    load: u8,
    peak: usize,
    prev_peak: usize,
    over: bool,
    prev_over: bool,
    answered: usize,
    last_sent: Option<u8>,
}

impl Gauge {
    pub(crate) fn set_load(&mut self, load: u8) {
        self.load = load.min(100);
    }

    pub(crate) fn load(&self) -> u8 {
        self.load
    }

    /// A peer request entered the inbound window; `pending` are there now.
    #[inline]
    pub(crate) fn arrived(&mut self, pending: usize) {
        self.peak = self.peak.max(pending);
    }

    /// A peer request was refused beyond the inbound window.
    pub(crate) fn over_window(&mut self) {
        self.over = true;
    }

    /// The value a response would carry now.
    #[inline]
    pub(crate) fn current(&self, max_inbound: usize) -> u8 {
        congestion_state(
            self.peak.max(self.prev_peak),
            max_inbound,
            self.over || self.prev_over,
            self.load,
        )
    }

    /// A peer request was answered; `pending` remain. Every `max_inbound`
    /// answers a new epoch starts.
    #[inline]
    pub(crate) fn answered(&mut self, pending: usize, max_inbound: usize) {
        self.answered += 1;
        if self.answered >= max_inbound {
            self.answered = 0;
            self.prev_peak = self.peak;
            self.peak = pending;
            self.prev_over = self.over;
            self.over = false;
        }
    }

    /// A response carried `v`.
    pub(crate) fn sent(&mut self, v: u8) {
        self.last_sent = Some(v);
    }

    pub(crate) fn last_sent(&self) -> Option<u8> {
        self.last_sent
    }
}

/// Sender side: the effective outbound window, adapted to the peer's
/// `congestion_state` (SMPP 5.0 peers only; the session feeds it).
///
/// A bind that agrees 5.0 starts it at [`INITIAL_WINDOW`] (never above the
/// configured window; a peer of another version keeps the configured window
/// unchanged): until the peer reports a first value, each response grows it
/// by one (a slow start: it doubles every round trip and reaches the
/// configured window within a few, so an MC that never reports loses
/// nothing). A first value found it unengaged (a bind this controller did not
/// see) starts it the same way, at what is in flight if more; then, for each
/// response that carries a value `c`:
/// - `c` < 30 (idle, low): +1 per response (the window doubles every
///   round trip);
/// - 30 <= `c` < 80 (medium, high): +1 per window's worth of responses;
/// - 80 <= `c` <= 90 (optimum): hold;
/// - `c` > 90: multiply by 3/4 (by 1/2 at 100), at most once per window's
///   worth of responses (those already in flight when it shrank carry
///   older news).
///
/// Always within `[1, configured]`.
#[derive(Clone, Debug)]
pub(crate) struct Controller {
    configured: usize,
    window: usize,
    engaged: bool,
    /// Responses towards the next +1 in the medium/high band.
    credit: usize,
    /// Responses since the last shrink, and how many must pass before the next.
    since_cut: usize,
    guard: usize,
    last: Option<u8>,
    max: Option<u8>,
    received: u64,
}

impl Controller {
    pub(crate) fn new(configured: usize) -> Self {
        let configured = configured.max(1);
        Controller {
            configured,
            window: configured,
            engaged: false,
            credit: 0,
            since_cut: 0,
            guard: 0,
            last: None,
            max: None,
            received: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn window(&self) -> usize {
        self.window
    }

    pub(crate) fn configured(&self) -> usize {
        self.configured
    }

    pub(crate) fn last(&self) -> Option<u8> {
        self.last
    }

    pub(crate) fn max(&self) -> Option<u8> {
        self.max
    }

    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// The bind agreed SMPP 5.0: slow start from [`INITIAL_WINDOW`] (or
    /// `in_flight`, if more). Returns the new window.
    pub(crate) fn start(&mut self, in_flight: usize) -> usize {
        self.engaged = true;
        self.window = INITIAL_WINDOW.max(in_flight).clamp(1, self.configured);
        self.window
    }

    /// A response without `congestion_state`: +1 while the peer has never
    /// reported one (the slow start), else nothing. Returns the window.
    pub(crate) fn on_silence(&mut self) -> usize {
        if self.engaged && self.last.is_none() {
            self.window = (self.window + 1).min(self.configured);
        }
        self.window
    }

    /// A response carried `congestion_state` `c`, with `in_flight` of our
    /// requests still awaiting theirs. Returns the new window.
    pub(crate) fn on_congestion_state(&mut self, c: u8, in_flight: usize) -> usize {
        let c = c.min(100);
        self.received += 1;
        self.last = Some(c);
        self.max = Some(self.max.map_or(c, |m| m.max(c)));
        if !self.engaged {
            self.engaged = true;
            self.window = INITIAL_WINDOW.max(in_flight).clamp(1, self.configured);
        }
        self.since_cut = self.since_cut.saturating_add(1);
        match c {
            0..=29 => self.window += 1,
            30..=79 => {
                self.credit += 1;
                if self.credit >= self.window {
                    self.credit = 0;
                    self.window += 1;
                }
            }
            80..=90 => {}
            _ => {
                if self.since_cut >= self.guard {
                    self.guard = self.window;
                    self.window = if c == 100 {
                        self.window / 2
                    } else {
                        self.window - self.window / 4
                    };
                    self.since_cut = 0;
                    self.credit = 0;
                }
            }
        }
        self.window = self.window.clamp(1, self.configured);
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_formula_keeps_a_full_window_in_the_optimum_band() {
        assert_eq!(congestion_state(0, 16, false, 0), 0);
        assert_eq!(congestion_state(16, 16, false, 0), 90);
        assert_eq!(congestion_state(15, 16, false, 0), 84);
        assert_eq!(congestion_state(8, 16, false, 0), 45);
        assert_eq!(
            congestion_state(99, 16, false, 0),
            90,
            "never above 90 from fill"
        );
        assert_eq!(congestion_state(1, 16, true, 0), 100);
        assert_eq!(congestion_state(1, 16, false, 95), 95);
        assert_eq!(congestion_state(1, 16, false, 250), 100);
        assert_eq!(
            congestion_state(3, 0, false, 0),
            90,
            "a window of 0 counts as 1"
        );
    }

    #[test]
    fn a_wave_of_answers_reports_the_fill_it_started_from() {
        let mut g = Gauge::default();
        for pending in 1..=16 {
            g.arrived(pending);
        }
        for pending in (0..16).rev() {
            assert_eq!(g.current(16), 90);
            g.answered(pending, 16);
        }
        // The next epoch still remembers; the one after forgets.
        assert_eq!(g.current(16), 90);
        for _ in 0..16 {
            g.answered(0, 16);
        }
        assert_eq!(g.current(16), 0);
    }

    #[test]
    fn unengaged_controller_keeps_the_configured_window() {
        let c = Controller::new(64);
        assert_eq!(c.window(), 64);
        assert_eq!(c.last(), None);
    }

    #[test]
    fn grows_fast_when_low_slowly_when_high_holds_in_optimum_shrinks_above() {
        let mut c = Controller::new(64);
        assert_eq!(c.on_congestion_state(0, 0), INITIAL_WINDOW + 1);
        for _ in 0..8 {
            c.on_congestion_state(10, 0);
        }
        assert_eq!(c.window(), INITIAL_WINDOW + 9, "+1 per response when low");
        let w = c.window();
        for _ in 0..w - 1 {
            c.on_congestion_state(60, 0);
        }
        assert_eq!(c.window(), w, "high: +1 per window's worth");
        c.on_congestion_state(60, 0);
        assert_eq!(c.window(), w + 1);
        let w = c.window();
        for _ in 0..100 {
            c.on_congestion_state(85, 0);
        }
        assert_eq!(c.window(), w, "optimum: hold");
        c.on_congestion_state(95, 0);
        assert_eq!(c.window(), w - w / 4);
        c.on_congestion_state(100, 0);
        assert_eq!(c.window(), w - w / 4, "once per window's worth");
        for _ in 0..w {
            c.on_congestion_state(88, 0);
        }
        c.on_congestion_state(100, 0);
        assert_eq!(c.window(), (w - w / 4) / 2);
        assert_eq!(c.max(), Some(100));
        assert_eq!(c.received(), 1 + 8 + w as u64 + 100 + 2 + w as u64);
    }

    #[test]
    fn engaging_mid_stream_keeps_what_is_in_flight() {
        let mut c = Controller::new(64);
        assert_eq!(c.on_congestion_state(85, 40), 40);
        let mut small = Controller::new(3);
        assert_eq!(
            small.on_congestion_state(85, 0),
            3,
            "never above the configured window"
        );
    }

    proptest! {
        #[test]
        fn the_window_stays_within_one_and_the_configured(
            configured in 0usize..300,
            values in proptest::collection::vec((any::<u8>(), 0usize..400), 0..600),
        ) {
            let mut c = Controller::new(configured);
            let top = configured.max(1);
            prop_assert_eq!(c.window(), top);
            for (v, in_flight) in values {
                let w = c.on_congestion_state(v, in_flight);
                prop_assert!((1..=top).contains(&w), "{} not in [1, {}]", w, top);
                prop_assert_eq!(w, c.window());
            }
        }

        #[test]
        fn low_congestion_reaches_the_configured_window(configured in 1usize..300, start in 0u8..=100) {
            let mut c = Controller::new(configured);
            c.on_congestion_state(start, 0);
            for _ in 0..configured * configured + 10 {
                c.on_congestion_state(20, 0);
            }
            prop_assert_eq!(c.window(), configured);
        }

        #[test]
        fn sustained_congestion_reaches_one(configured in 1usize..300) {
            let mut c = Controller::new(configured);
            for _ in 0..configured * 20 + 10 {
                c.on_congestion_state(100, 0);
            }
            prop_assert_eq!(c.window(), 1);
        }
    }
}
