//! The receipts owed to customers (their durable copies are in the store),
//! by account and in order, and their delivery: each goes to a bound
//! receiver or transceiver of its account, at most [`IN_FLIGHT`] at once;
//! it leaves the outbox (and the store) once the customer answered.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smpp_tokio::Connection;

use crate::node::{lock, stored_sm, Node};
use crate::store::{Op, OwedReceipt};

/// Deliveries under way at most.
const IN_FLIGHT: usize = 256;

/// Deliveries under way per account at most (a customer's window).
const IN_FLIGHT_PER_ACCOUNT: usize = 64;

/// How often the outbox looks again without being woken.
const RESCAN: Duration = Duration::from_millis(500);

/// A receipt the customer answers with a permanent error status this many
/// times is given up (logged): the customer does not want it. Transient
/// answers (throttled, queue full, ESME_RX_T_APPN...) and lost connections
/// never give a receipt up: they delay it (see [`retry_delay`]).
const MAX_REFUSALS: u32 = 5;

/// The first delay after a transient failure; it doubles with each one, up
/// to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// The delay before the next attempt after `failures` transient failures.
fn retry_delay(failures: u32) -> Duration {
    FIRST_RETRY_DELAY
        .saturating_mul(1u32 << failures.min(16))
        .min(MAX_RETRY_DELAY)
}

#[derive(Debug)]
struct Outgoing {
    owed: OwedReceipt,
    in_flight: bool,
    /// How many times the customer answered it with a permanent error status.
    refusals: u32,
    /// Transient failures so far, and not to be tried before this.
    failures: u32,
    not_before: Option<Instant>,
}

/// One account's receipts, by outbox key (oldest first).
#[derive(Debug, Default)]
struct Account {
    owed: BTreeMap<u64, Outgoing>,
    in_flight: usize,
}

/// The receipts owed, by account.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    accounts: HashMap<String, Account>,
    len: usize,
    in_flight: usize,
    /// Where the next pass starts among the accounts (each pass one
    /// further, so that no account waits behind the others for long).
    turn: usize,
    /// The keys of the receipts delivered lately (at most [`DONE_KEPT`]):
    /// a receipt read back from the store just before its deletion
    /// committed is not taken in again.
    done: HashSet<u64>,
    done_order: VecDeque<u64>,
}

/// Delivered receipts remembered at most.
const DONE_KEPT: usize = 100_000;

impl Outbox {
    /// Adds a receipt (already stored).
    pub(crate) fn insert(&mut self, owed: OwedReceipt) {
        let account = self.accounts.entry(owed.account.clone()).or_default();
        let previous = account.owed.insert(
            owed.seq,
            Outgoing {
                owed,
                in_flight: false,
                refusals: 0,
                failures: 0,
                not_before: None,
            },
        );
        if previous.is_none() {
            self.len += 1;
        }
    }

    /// Adds a receipt unless it is here already (claimed again).
    pub(crate) fn insert_absent(&mut self, owed: OwedReceipt) {
        let known = self
            .accounts
            .get(&owed.account)
            .is_some_and(|a| a.owed.contains_key(&owed.seq));
        if !known && !self.done.contains(&owed.seq) {
            self.insert(owed);
        }
    }

    /// Takes out the receipts of the accounts `bound` says have no receiver
    /// here (those not being delivered).
    pub(crate) fn take_unbound(&mut self, bound: impl Fn(&str) -> bool) -> Vec<OwedReceipt> {
        let mut left = Vec::new();
        for (name, account) in &mut self.accounts {
            if bound(name) {
                continue;
            }
            let taken: Vec<u64> = account
                .owed
                .iter()
                .filter(|(_, out)| !out.in_flight)
                .map(|(seq, _)| *seq)
                .collect();
            for seq in taken {
                if let Some(out) = account.owed.remove(&seq) {
                    left.push(out.owed);
                }
            }
        }
        self.len -= left.len();
        self.accounts.retain(|_, a| !a.owed.is_empty());
        left
    }

    /// Receipts owed.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Receipts owed to `account`.
    pub(crate) fn owed_to(&self, account: &str) -> usize {
        self.accounts.get(account).map_or(0, |a| a.owed.len())
    }

    /// Marks receipts to deliver now: of accounts with a bound receiver,
    /// oldest first, up to [`IN_FLIGHT_PER_ACCOUNT`] per account and the
    /// room left under [`IN_FLIGHT`]; each pass starts at another account.
    fn take_due(
        &mut self,
        receiver: impl Fn(&str) -> Option<Connection>,
    ) -> Vec<(OwedReceipt, Connection)> {
        let mut due = Vec::new();
        let now = Instant::now();
        let mut names: Vec<String> = self.accounts.keys().cloned().collect();
        if names.is_empty() {
            return due;
        }
        self.turn = self.turn.wrapping_add(1);
        let start = self.turn % names.len();
        names.rotate_left(start);
        for name in names {
            if self.in_flight + due.len() >= IN_FLIGHT {
                break;
            }
            let Some(account) = self.accounts.get_mut(&name) else {
                continue;
            };
            let busy = account.in_flight;
            if busy >= IN_FLIGHT_PER_ACCOUNT || busy == account.owed.len() {
                continue;
            }
            let Some(conn) = receiver(&name) else {
                continue;
            };
            let room = (IN_FLIGHT - self.in_flight - due.len()).min(IN_FLIGHT_PER_ACCOUNT - busy);
            let before = due.len();
            for out in account
                .owed
                .values_mut()
                .filter(|o| !o.in_flight && o.not_before.is_none_or(|t| t <= now))
                .take(room)
            {
                out.in_flight = true;
                due.push((out.owed.clone(), conn.clone()));
            }
            account.in_flight += due.len() - before;
        }
        self.in_flight += due.len();
        due
    }

    /// A delivery ended: `delivered` (or given up) removes the receipt,
    /// otherwise it is retried later.
    fn finish(&mut self, owed: &OwedReceipt, remove: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let Some(account) = self.accounts.get_mut(&owed.account) else {
            return;
        };
        account.in_flight = account.in_flight.saturating_sub(1);
        if remove {
            if account.owed.remove(&owed.seq).is_some() {
                self.len -= 1;
            }
            if self.done.insert(owed.seq) {
                self.done_order.push_back(owed.seq);
                if self.done_order.len() > DONE_KEPT {
                    if let Some(old) = self.done_order.pop_front() {
                        self.done.remove(&old);
                    }
                }
            }
            if account.owed.is_empty() {
                self.accounts.remove(&owed.account);
            }
        } else if let Some(out) = account.owed.get_mut(&owed.seq) {
            out.in_flight = false;
        }
    }

    /// A transient failure: the receipt waits before its next attempt.
    fn retry_later(&mut self, owed: &OwedReceipt) {
        if let Some(out) = self
            .accounts
            .get_mut(&owed.account)
            .and_then(|a| a.owed.get_mut(&owed.seq))
        {
            out.not_before = Some(Instant::now() + retry_delay(out.failures));
            out.failures = out.failures.saturating_add(1);
        }
    }

    /// Counts a refusal; `true` when the receipt should be given up.
    fn refused(&mut self, owed: &OwedReceipt) -> bool {
        let Some(out) = self
            .accounts
            .get_mut(&owed.account)
            .and_then(|a| a.owed.get_mut(&owed.seq))
        else {
            return false;
        };
        out.refusals += 1;
        out.refusals >= MAX_REFUSALS
    }
}

/// Puts a stored receipt in the outbox (or with the webhook calls, when it
/// goes over HTTP) and wakes it.
pub(crate) fn queue(node: &Node, owed: OwedReceipt) {
    if owed.webhook.is_some() {
        node.webhooks.queue(owed);
        return;
    }
    let account = owed.account.clone();
    lock(&node.outbox).insert(owed);
    node.outbox_wake.notify_one();
    // Another node may hold the account's binds.
    if let Some(cluster) = &node.cluster {
        if node.binds.receiver(&account).is_none() {
            cluster.wake.notify_one();
        }
    }
}

/// Delivers what can be delivered, whenever woken (a new receipt, a new
/// bind, a delivery ended) or every [`RESCAN`].
pub(crate) async fn run(node: Arc<Node>) {
    while !node.stopped() {
        let due = lock(&node.outbox).take_due(|account| node.binds.receiver(account));
        for (owed, conn) in due {
            tokio::spawn(deliver(node.clone(), owed, conn));
        }
        tokio::select! {
            () = node.outbox_wake.notified() => {}
            () = tokio::time::sleep(RESCAN) => {}
        }
    }
}

async fn deliver(node: Arc<Node>, owed: OwedReceipt, conn: Connection) {
    let remove = match stored_sm(&owed.deliver) {
        None => {
            tracing::error!(seq = owed.seq, "stored receipt unreadable: dropped");
            true
        }
        Some(sm) => {
            // The session fits it to the customer's version (no TLVs to 3.3).
            match conn.deliver(sm).await {
                Ok(_) => true,
                Err(smpp_tokio::Error::Status(status)) if status.is_transient() => {
                    tracing::debug!(seq = owed.seq, %status, "receipt deferred by the customer");
                    lock(&node.outbox).retry_later(&owed);
                    false
                }
                Err(smpp_tokio::Error::Status(status)) => {
                    tracing::debug!(seq = owed.seq, %status, "receipt refused by the customer");
                    let give_up = lock(&node.outbox).refused(&owed);
                    if give_up {
                        tracing::warn!(
                            seq = owed.seq,
                            account = owed.account,
                            "receipt refused by the customer {MAX_REFUSALS} times: given up"
                        );
                    }
                    give_up
                }
                Err(e) => {
                    tracing::debug!(seq = owed.seq, error = %e, "receipt not delivered; retrying");
                    lock(&node.outbox).retry_later(&owed);
                    false
                }
            }
        }
    };
    // Delivered: recorded, however long the store takes to come back (it
    // stays in flight meanwhile, so it does not go twice); only a node
    // stopping first leaves it to go again at the next start (at least once).
    let remove =
        remove && crate::forward::write_until_done(&node, vec![Op::DeleteReceipt(owed.seq)]).await;
    lock(&node.outbox).finish(&owed, remove);
    node.outbox_wake.notify_one();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owed(seq: u64, account: &str) -> OwedReceipt {
        OwedReceipt {
            seq,
            message: seq,
            account: account.into(),
            webhook: None,
            deliver: Vec::new(),
        }
    }

    #[test]
    fn a_transient_failure_delays_the_receipt_and_never_gives_it_up() {
        assert_eq!(retry_delay(0), FIRST_RETRY_DELAY);
        assert_eq!(retry_delay(1), FIRST_RETRY_DELAY * 2);
        assert_eq!(retry_delay(40), MAX_RETRY_DELAY);
        let mut outbox = Outbox::default();
        outbox.insert(owed(1, "a"));
        for _ in 0..20 {
            outbox.retry_later(&owed(1, "a"));
        }
        let out = &outbox.accounts["a"].owed[&1];
        assert_eq!(out.refusals, 0, "transient failures are not refusals");
        assert!(out.not_before.is_some_and(|t| t > Instant::now()));
        assert_eq!(outbox.len(), 1);
    }

    #[test]
    fn receipts_are_counted_and_refusals_add_up() {
        let mut outbox = Outbox::default();
        outbox.insert(owed(1, "a"));
        outbox.insert(owed(2, "a"));
        outbox.insert(owed(3, "b"));
        outbox.insert(owed(3, "b"));
        assert_eq!(outbox.len(), 3);
        let due = outbox.take_due(|_| None);
        assert!(due.is_empty(), "nobody bound");
        for _ in 1..MAX_REFUSALS {
            assert!(!outbox.refused(&owed(1, "a")));
        }
        assert!(outbox.refused(&owed(1, "a")));
        outbox.finish(&owed(1, "a"), true);
        assert_eq!((outbox.len(), outbox.in_flight), (2, 0));
        outbox.finish(&owed(3, "b"), true);
        assert_eq!(outbox.len(), 1);
        assert!(!outbox.accounts.contains_key("b"), "an empty account goes");
    }
}
