//! Per-key order through a pool's throttling and retries: a request with a
//! key waits until every earlier request with the same key has ended
//! (accepted, refused, or given up), so a later message to a destination
//! never passes an earlier one that is waiting out a throttle pause.
//!
//! Each key has a queue of tickets, taken when the request is made (in
//! call order, before anything is awaited); a request goes when its
//! ticket is at the front, and leaves the queue when it ends or is
//! dropped. Keys are hashed: two keys that collide only share a queue
//! (serialised, never reordered).

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use event_listener::Event;

/// The queues of one pool.
#[derive(Debug, Default)]
pub(crate) struct KeyOrder {
    queues: Mutex<HashMap<u64, Queue>>,
    next: AtomicU64,
}

/// One key's tickets, and the event its waiters listen on (a ticket that
/// leaves wakes the waiters of its key only).
#[derive(Debug, Default)]
struct Queue {
    tickets: VecDeque<u64>,
    changed: Arc<Event>,
}

/// A place in a key's queue; leaves it when dropped (so a caller that
/// gives up, or whose call ends in any way, a timeout included, lets the
/// next go). A future that is never polled and never dropped holds its
/// key: await keyed calls in the order they were made, or drop them.
#[derive(Debug)]
pub(crate) struct Ticket {
    order: Arc<KeyOrder>,
    key: u64,
    id: u64,
    changed: Arc<Event>,
}

/// The hash of a caller's key (fixed keys: the same in every process).
pub(crate) fn hash_key(key: impl Hash) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

impl KeyOrder {
    /// Takes the next place in `key`'s queue.
    pub(crate) fn enter(self: &Arc<Self>, key: u64) -> Ticket {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let queue = queues.entry(key).or_default();
        queue.tickets.push_back(id);
        Ticket {
            order: self.clone(),
            key,
            id,
            changed: queue.changed.clone(),
        }
    }

    fn is_first(&self, ticket: &Ticket) -> bool {
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues
            .get(&ticket.key)
            .and_then(|queue| queue.tickets.front())
            .is_some_and(|&front| front == ticket.id)
    }

    /// How many keys have requests queued.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> usize {
        self.queues.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Ticket {
    /// Completes once every earlier ticket of the same key has left.
    pub(crate) async fn turn(&self) {
        loop {
            // Listening first: a ticket leaving after the check still wakes us.
            let changed = self.changed.listen();
            if self.order.is_first(self) {
                return;
            }
            changed.await;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut queues = self.order.queues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(queue) = queues.get_mut(&self.key) {
            if let Some(at) = queue.tickets.iter().position(|&id| id == self.id) {
                queue.tickets.remove(at);
            }
            if queue.tickets.is_empty() {
                queues.remove(&self.key);
            }
        }
        drop(queues);
        self.changed.notify(usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_of_a_key_go_in_order_and_leave_on_drop() {
        let order = Arc::new(KeyOrder::default());
        let (a, b) = (hash_key("447700900001"), hash_key("447700900002"));
        let first = order.enter(a);
        let second = order.enter(a);
        let other = order.enter(b);
        assert!(order.is_first(&first));
        assert!(!order.is_first(&second));
        assert!(order.is_first(&other), "another key does not wait");
        drop(first);
        assert!(order.is_first(&second));
        drop(second);
        drop(other);
        assert_eq!(order.keys(), 0, "empty queues are removed");
    }

    #[test]
    fn a_ticket_dropped_while_waiting_leaves_its_place() {
        let order = Arc::new(KeyOrder::default());
        let key = hash_key(7u32);
        let first = order.enter(key);
        let waiting = order.enter(key);
        let third = order.enter(key);
        drop(waiting); // a caller gave up
        drop(first);
        assert!(order.is_first(&third));
    }

    #[test]
    fn turn_completes_when_the_earlier_ticket_leaves() {
        let order = Arc::new(KeyOrder::default());
        let key = hash_key("k");
        let first = order.enter(key);
        let second = order.enter(key);
        let mut turn = Box::pin(second.turn());
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(turn.as_mut().poll(&mut cx).is_pending());
        drop(first);
        assert!(turn.as_mut().poll(&mut cx).is_ready());
    }

    use std::future::Future;
}
