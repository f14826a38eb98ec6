//! The in-flight map (our requests awaiting a response), sequence number
//! allocation, and the inbound map (peer requests awaiting our answer).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

use crate::pdu::{CommandId, SequenceNumber};

use super::state::BindKind;

/// Who sent a request and what its resolution means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The application's `send_request` or `enquire_link`: counts against
    /// the window and is resolved by an event.
    App,
    /// The application's bind.
    Bind(BindKind),
    /// An unbind; `report`: the application asked for it (an event resolves it).
    Unbind { report: bool },
    /// Our keepalive `enquire_link`: resolved silently.
    Keepalive,
}

impl Origin {
    /// Its resolution is reported to the application.
    pub(crate) fn reported(self) -> bool {
        !matches!(self, Origin::Keepalive | Origin::Unbind { report: false })
    }
}

/// One request of ours awaiting its response.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub(crate) seq: u32,
    pub(crate) command_id: CommandId,
    pub(crate) origin: Origin,
    pub(crate) deadline: Instant,
    /// Send order, to fail requests in that order on close.
    pub(crate) order: u64,
}

/// Requests in flight, in a slot array indexed by `seq & mask`.
///
/// Sequence numbers are allocated in order; a number whose slot is taken is
/// skipped, so a number still in flight is never reused (and a lookup is one
/// index plus a compare). The array keeps at least twice as many slots as
/// requests in flight, so allocation finds a free slot in a few steps. It
/// starts small and doubles as use grows, up to twice what can be in
/// flight: an idle session holds a few hundred octets, not the full window
/// (doubling keeps distinct `seq & mask` distinct, so entries just move).
///
/// Response deadlines of [`Origin::App`] and [`Origin::Bind`] requests share
/// one duration and are therefore queued in send order; resolved entries are
/// dropped from that queue lazily.
#[derive(Debug)]
pub(crate) struct InFlight {
    slots: Box<[Option<Entry>]>,
    mask: u32,
    /// The size the array may grow to.
    max_slots: usize,
    next: SequenceNumber,
    /// Entries in the slots.
    len: usize,
    /// [`Origin::App`] entries: the window.
    app: usize,
    window: usize,
    /// A send was refused since the window last had room.
    refused: bool,
    deadlines: VecDeque<(Instant, u32)>,
    order: u64,
}

/// Requests of ours outside the window: one bind, one unbind, one keepalive.
const EXTRA: usize = 3;
/// Slots of a new session.
const FIRST_SLOTS: usize = 8;

impl InFlight {
    pub(crate) fn new(window: usize) -> Self {
        let max_slots = ((window + EXTRA) * 2).next_power_of_two();
        let slots = max_slots.min(FIRST_SLOTS);
        InFlight {
            slots: vec![None; slots].into_boxed_slice(),
            mask: (slots - 1) as u32,
            max_slots,
            next: SequenceNumber::FIRST,
            len: 0,
            app: 0,
            window,
            refused: false,
            deadlines: VecDeque::new(),
            order: 0,
        }
    }

    /// The application's requests in flight.
    pub(crate) fn app_len(&self) -> usize {
        self.app
    }

    /// All requests in flight.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn window(&self) -> usize {
        self.window
    }

    /// Changes the window (congestion control). Requests already in flight
    /// stay; room shows again once they fall below the new size.
    pub(crate) fn set_window(&mut self, window: usize) {
        self.window = window.max(1);
    }

    /// Room left: 0 while more are in flight than a shrunk window allows.
    pub(crate) fn room(&self) -> usize {
        self.window.saturating_sub(self.app)
    }

    /// The window has room; if not, remember the refusal.
    pub(crate) fn try_reserve(&mut self) -> bool {
        if self.app < self.window {
            true
        } else {
            self.refused = true;
            false
        }
    }

    /// Sets the next number to allocate (tests: sequence wrap).
    #[cfg(test)]
    pub(crate) fn set_next(&mut self, next: SequenceNumber) {
        self.next = if next.is_valid() {
            next
        } else {
            SequenceNumber::FIRST
        };
    }

    /// Allocates a number (1..=0x7FFF_FFFF, wrapping, skipping taken slots)
    /// and records the request. `queue_deadline`: its deadline joins the
    /// shared, ordered deadline queue.
    pub(crate) fn insert(
        &mut self,
        command_id: CommandId,
        origin: Origin,
        deadline: Instant,
        queue_deadline: bool,
    ) -> SequenceNumber {
        if (self.len + 1) * 2 > self.slots.len() && self.slots.len() < self.max_slots {
            self.grow();
        }
        debug_assert!(self.len < self.slots.len());
        let seq = self.allocate_untracked();
        self.order += 1;
        self.slots[(seq.get() & self.mask) as usize] = Some(Entry {
            seq: seq.get(),
            command_id,
            origin,
            deadline,
            order: self.order,
        });
        self.len += 1;
        if origin == Origin::App {
            self.app += 1;
        }
        if queue_deadline {
            self.deadlines.push_back((deadline, seq.get()));
            // Resolved entries leave the queue lazily; keep it proportional
            // to what is in flight.
            if self.deadlines.len() > 2 * self.max_slots {
                let slots = &self.slots;
                let mask = self.mask;
                self.deadlines.retain(|(d, s)| {
                    matches!(slots[(s & mask) as usize], Some(e) if e.seq == *s && e.deadline == *d)
                });
            }
        }
        seq
    }

    /// With nothing in flight: back to the first slot array, and the
    /// deadline queue's capacity given back.
    pub(crate) fn shrink(&mut self) {
        if self.len > 0 {
            return;
        }
        self.deadlines = VecDeque::new();
        let first = self.max_slots.min(FIRST_SLOTS);
        if self.slots.len() > first {
            self.slots = vec![None; first].into_boxed_slice();
            self.mask = (first - 1) as u32;
        }
    }

    /// Doubles the slot array; each entry moves to its slot under the new mask.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).min(self.max_slots);
        let mut slots = vec![None; size].into_boxed_slice();
        let mask = (size - 1) as u32;
        for entry in self.slots.iter_mut().filter_map(Option::take) {
            slots[(entry.seq & mask) as usize] = Some(entry);
        }
        self.slots = slots;
        self.mask = mask;
    }

    /// Allocates a number without recording a request (outbind and
    /// alert_notification have no response).
    pub(crate) fn allocate_untracked(&mut self) -> SequenceNumber {
        loop {
            let s = self.next;
            self.next = s.next();
            if self.slots[(s.get() & self.mask) as usize].is_none() {
                return s;
            }
        }
    }

    /// The entry for a sequence number.
    pub(crate) fn get(&self, seq: u32) -> Option<&Entry> {
        self.slots[(seq & self.mask) as usize]
            .as_ref()
            .filter(|e| e.seq == seq)
    }

    /// Removes an entry. Returns it, and whether the window should now
    /// announce [`Event::WindowAvailable`](super::Event::WindowAvailable).
    pub(crate) fn remove(&mut self, seq: u32) -> Option<(Entry, bool)> {
        let slot = &mut self.slots[(seq & self.mask) as usize];
        if !matches!(slot, Some(e) if e.seq == seq) {
            return None;
        }
        let entry = slot.take()?;
        self.len -= 1;
        let mut announce = false;
        if entry.origin == Origin::App {
            self.app -= 1;
            if self.refused {
                self.refused = false;
                announce = true;
            }
        }
        Some((entry, announce))
    }

    /// The earliest queued deadline still in flight.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&(d, s)) = self.deadlines.front() {
            match self.get(s) {
                Some(e) if e.deadline == d => return Some(d),
                _ => {
                    self.deadlines.pop_front();
                }
            }
        }
        None
    }

    /// Pops the earliest queued request whose deadline is at or before `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<u32> {
        let d = self.next_deadline()?;
        if d <= now {
            self.deadlines.pop_front().map(|(_, s)| s)
        } else {
            None
        }
    }

    /// Removes every entry, in send order.
    pub(crate) fn drain(&mut self) -> Vec<Entry> {
        let mut all: Vec<Entry> = self.slots.iter_mut().filter_map(Option::take).collect();
        all.sort_unstable_by_key(|e| e.order);
        self.len = 0;
        self.app = 0;
        self.refused = false;
        self.deadlines.clear();
        all
    }
}

/// A cheap hasher for the inbound map: its keys are peer sequence numbers,
/// and the map never holds more than the inbound window, so even a peer that
/// picks colliding numbers only costs a scan of that many entries.
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 =
                (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x51_7C_C1_B7_27_22_0A_95);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Peer requests awaiting the application's answer, by sequence number.
pub(crate) type Inbound = HashMap<u32, CommandId, BuildHasherDefault<SeqHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        #[allow(clippy::disallowed_methods)] // a test epoch; only differences matter
        Instant::now()
    }

    #[test]
    fn allocation_wraps_to_one_and_skips_numbers_in_flight() {
        let now = t0();
        let mut w = InFlight::new(4);
        w.set_next(SequenceNumber::MAX);
        let a = w.insert(CommandId::SUBMIT_SM, Origin::App, now, true);
        let b = w.insert(CommandId::SUBMIT_SM, Origin::App, now, true);
        assert_eq!(a, SequenceNumber::MAX);
        assert_eq!(b, SequenceNumber::FIRST);
        // Number 2 is "in flight" via its slot: force the allocator onto it.
        let c = w.insert(CommandId::SUBMIT_SM, Origin::App, now, true);
        assert_eq!(c.get(), 2);
        w.set_next(SequenceNumber::new(2));
        let d = w.insert(CommandId::SUBMIT_SM, Origin::App, now, true);
        assert_eq!(d.get(), 3, "2 is still in flight and is skipped");
        assert_eq!(w.app_len(), 4);
        assert!(!w.try_reserve());
        let (_, announce) = w.remove(2).unwrap();
        assert!(announce, "room after a refusal is announced");
        let (_, announce) = w.remove(3).unwrap();
        assert!(!announce, "once");
        assert!(w.remove(3).is_none());
    }

    #[test]
    fn slots_grow_with_use_and_keep_every_entry() {
        let now = t0();
        let mut w = InFlight::new(100);
        assert_eq!(w.slots.len(), FIRST_SLOTS);
        let seqs: Vec<_> = (0..100)
            .map(|_| w.insert(CommandId::SUBMIT_SM, Origin::App, now, true))
            .collect();
        assert_eq!(w.slots.len(), w.max_slots);
        assert!(w.slots.len() >= 2 * 100);
        for s in &seqs {
            assert_eq!(w.get(s.get()).map(|e| e.seq), Some(s.get()));
        }
        for s in &seqs {
            assert!(w.remove(s.get()).is_some());
        }
        assert_eq!(w.len(), 0);
        // Numbers go on from where they were, and never collide.
        let next = w.insert(CommandId::SUBMIT_SM, Origin::App, now, true);
        assert_eq!(next.get(), 101);
    }

    #[test]
    fn deadlines_pop_in_order_and_skip_resolved() {
        let now = t0();
        let mut w = InFlight::new(8);
        let s: Vec<_> = (0..4)
            .map(|i| {
                w.insert(
                    CommandId::SUBMIT_SM,
                    Origin::App,
                    now + std::time::Duration::from_secs(i),
                    true,
                )
            })
            .collect();
        w.remove(s[0].get());
        assert_eq!(
            w.next_deadline(),
            Some(now + std::time::Duration::from_secs(1))
        );
        assert_eq!(w.pop_expired(now), None);
        assert_eq!(
            w.pop_expired(now + std::time::Duration::from_secs(2)),
            Some(s[1].get())
        );
    }
}
