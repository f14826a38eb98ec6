//! The channels between a connection's handles and its task: unbounded,
//! many senders, one receiver, a lock around a queue.
//!
//! Smaller than an async-channel, which matters for idle connections (a
//! server holds thousands): async-channel's unbounded channel is 512
//! octets (two cache-padded positions, three events) and keeps a block of
//! 31 slots (504 octets) from its first item on, plus its events' state
//! once listened to; this one is under 150 octets, and its queues only
//! hold what was in them at once (given back by [`Receiver::shrink`]).
//! Every use here has one receiver (the connection's task, or the
//! application's side of the incoming requests), which waits on one waker.
//!
//! Bounds are the callers' (see `driver::Control`): the queue grows as it
//! must. A channel made by [`bounded`] holds at most its bound: a
//! [`send`](Sender::send) beyond it waits for room, and room is offered to
//! the waiting sends in the order they came; as with a semaphore, a send
//! that finds room takes it, so a waiting send that is never polled again
//! holds up no other (the requests' channel: the room is the lock's own
//! state, where a separate semaphore cost a shared add, a notification
//! and a reference count per request).

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

struct State<T> {
    items: VecDeque<T>,
    /// The receiver, while it waits for an item.
    waker: Option<Waker>,
    senders: usize,
    /// Closed by the receiver (or dropped): nothing more is accepted.
    closed: bool,
    /// Items queued at most through [`Sender::send`].
    bound: usize,
    /// Sends waiting for room, first come first woken: a ticket and its
    /// waker.
    waiting: VecDeque<(u64, Waker)>,
    /// The next waiting send's ticket.
    next_ticket: u64,
}

impl<T> State<T> {
    /// The first waiting send's waker, when there is room for it.
    fn next_sender(&self) -> Option<Waker> {
        if self.items.len() < self.bound {
            self.waiting.front().map(|(_, w)| w.clone())
        } else {
            None
        }
    }

    /// Every waiting send's waker (the channel closed: they all end).
    fn all_senders(&self) -> Vec<Waker> {
        self.waiting.iter().map(|(_, w)| w.clone()).collect()
    }
}

type Shared<T> = Arc<Mutex<State<T>>>;

fn lock<T>(shared: &Shared<T>) -> MutexGuard<'_, State<T>> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// A new channel.
pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    bounded(usize::MAX)
}

/// A new channel whose [`send`](Sender::send)s wait while `bound` items
/// are queued ([`try_send`](Sender::try_send) does not look at it).
pub(crate) fn bounded<T>(bound: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Mutex::new(State {
        items: VecDeque::new(),
        waker: None,
        senders: 1,
        closed: false,
        bound,
        waiting: VecDeque::new(),
        next_ticket: 0,
    }));
    (Sender(shared.clone()), Receiver(shared))
}

/// The sending side; clones send into the same channel.
pub(crate) struct Sender<T>(Shared<T>);

impl<T> Sender<T> {
    /// Queues `item`, or gives it back once the channel is closed.
    pub(crate) fn try_send(&self, item: T) -> Result<(), T> {
        let mut state = lock(&self.0);
        if state.closed {
            return Err(item);
        }
        state.items.push_back(item);
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Queues `item` once the channel has room for it (when room comes,
    /// the longest waiting send is woken first); gives it back once the
    /// channel is closed. Dropped while it waits, it leaves its place (and
    /// its turn to the next).
    pub(crate) fn send(&self, item: T) -> Sending<'_, T> {
        Sending {
            sender: self,
            item: Some(item),
            ticket: None,
        }
    }

    /// Whether the receiver closed the channel (or is gone).
    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.0).closed
    }
}

/// A [`Sender::send`] in progress.
pub(crate) struct Sending<'a, T> {
    sender: &'a Sender<T>,
    item: Option<T>,
    /// Its place among the waiting sends, once it waits.
    ticket: Option<u64>,
}

impl<T> Unpin for Sending<'_, T> {}

impl<T> Future for Sending<'_, T> {
    type Output = Result<(), T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T>> {
        let this = self.get_mut();
        let Some(item) = this.item.take() else {
            return Poll::Ready(Ok(())); // polled after it completed
        };
        let mut state = lock(&this.sender.0);
        if state.closed {
            if let Some(ticket) = this.ticket.take() {
                state.waiting.retain(|(t, _)| *t != ticket);
            }
            return Poll::Ready(Err(item));
        }
        if state.items.len() < state.bound {
            if let Some(ticket) = this.ticket.take() {
                state.waiting.retain(|(t, _)| *t != ticket);
            }
            state.items.push_back(item);
            let receiver = state.waker.take();
            let next = state.next_sender();
            drop(state);
            if let Some(waker) = receiver {
                waker.wake();
            }
            if let Some(waker) = next {
                waker.wake(); // room for more: the next waiting send's turn
            }
            return Poll::Ready(Ok(()));
        }
        this.item = Some(item);
        match this.ticket {
            Some(ticket) => {
                if let Some((_, waker)) = state.waiting.iter_mut().find(|(t, _)| *t == ticket) {
                    if !waker.will_wake(cx.waker()) {
                        *waker = cx.waker().clone();
                    }
                }
            }
            None => {
                let ticket = state.next_ticket;
                state.next_ticket += 1;
                state.waiting.push_back((ticket, cx.waker().clone()));
                this.ticket = Some(ticket);
            }
        }
        Poll::Pending
    }
}

impl<T> Drop for Sending<'_, T> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        let mut state = lock(&self.sender.0);
        let was_first = state.waiting.front().is_some_and(|(t, _)| *t == ticket);
        state.waiting.retain(|(t, _)| *t != ticket);
        // Woken for room it will not take: the next one takes it.
        let next = was_first.then(|| state.next_sender()).flatten();
        drop(state);
        if let Some(waker) = next {
            waker.wake();
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        lock(&self.0).senders += 1;
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = lock(&self.0);
        state.senders -= 1;
        let waker = (state.senders == 0).then(|| state.waker.take()).flatten();
        drop(state);
        if let Some(waker) = waker {
            waker.wake(); // the receiver sees the end
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// The receiving side.
pub(crate) struct Receiver<T>(Shared<T>);

impl<T> Receiver<T> {
    /// The next item; `Ready(None)` once the channel is empty and closed,
    /// or every sender is gone.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = lock(&self.0);
        if let Some(item) = state.items.pop_front() {
            let next = state.next_sender();
            drop(state);
            if let Some(waker) = next {
                waker.wake(); // room for a waiting send
            }
            return Poll::Ready(Some(item));
        }
        if state.closed || state.senders == 0 {
            return Poll::Ready(None);
        }
        match &mut state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The next item (`None` as in [`poll_recv`](Receiver::poll_recv)).
    pub(crate) async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next item if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        let mut state = lock(&self.0);
        let item = state.items.pop_front();
        let next = item.is_some().then(|| state.next_sender()).flatten();
        drop(state);
        if let Some(waker) = next {
            waker.wake();
        }
        item
    }

    /// Refuses further items; those queued can still be received. Waiting
    /// sends get theirs back.
    pub(crate) fn close(&self) {
        let mut state = lock(&self.0);
        state.closed = true;
        let senders = state.all_senders();
        drop(state);
        senders.into_iter().for_each(Waker::wake);
    }

    /// Gives back the queue's memory when it is empty (a quiet connection).
    pub(crate) fn shrink(&self) {
        let mut state = lock(&self.0);
        if state.items.is_empty() {
            state.items = VecDeque::new();
        }
        if state.waiting.is_empty() {
            state.waiting = VecDeque::new();
        }
    }
}

impl<T> futures_core::Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().poll_recv(cx)
    }
}

/// Closes the channel and drops what is queued (outside the lock: an item's
/// drop may wake its caller).
impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = lock(&self.0);
        state.closed = true;
        state.waker = None;
        let items = std::mem::take(&mut state.items);
        let senders = state.all_senders();
        drop(state);
        drop(items);
        senders.into_iter().for_each(Waker::wake);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    #[test]
    fn items_arrive_in_order_and_wake_the_receiver() {
        let (tx, mut rx) = channel();
        let (count, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Pending);
        tx.try_send(1).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        tx.clone().try_send(2).unwrap();
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(1)));
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.try_recv(), None);
    }

    #[test]
    fn ends_once_every_sender_is_gone() {
        let (tx, mut rx) = channel();
        let tx2 = tx.clone();
        tx.try_send(1).unwrap();
        drop(tx);
        let (count, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(1)));
        assert_eq!(rx.poll_recv(&mut cx), Poll::Pending);
        drop(tx2);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(None));
    }

    #[test]
    fn close_refuses_new_items_and_keeps_queued_ones() {
        let (tx, mut rx) = channel();
        tx.try_send(1).unwrap();
        rx.close();
        assert!(tx.is_closed());
        assert_eq!(tx.try_send(2), Err(2));
        let (_, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(1)));
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(None));
    }

    #[test]
    fn a_dropped_receiver_drops_the_queue_and_refuses() {
        let item = Arc::new(());
        let (tx, rx) = channel();
        tx.try_send(item.clone()).unwrap();
        drop(rx);
        assert_eq!(Arc::strong_count(&item), 1);
        assert!(tx.is_closed());
        assert!(tx.try_send(item.clone()).is_err());
    }

    fn poll<F: Future + Unpin>(f: &mut F, waker: &Waker) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_bounded_send_waits_for_room_and_the_longest_waiting_is_woken_first() {
        let (tx, mut rx) = bounded(2);
        let (_, w) = waker();
        assert_eq!(poll(&mut tx.send(1), &w), Poll::Ready(Ok(())));
        assert_eq!(poll(&mut tx.send(2), &w), Poll::Ready(Ok(())));
        let (first, w1) = waker();
        let (second, w2) = waker();
        let mut three = tx.send(3);
        let mut four = tx.send(4);
        assert_eq!(poll(&mut three, &w1), Poll::Pending);
        assert_eq!(poll(&mut four, &w2), Poll::Pending);
        // One item out: room for one, offered to the first waiter.
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(first.0.load(Ordering::SeqCst), 1);
        assert_eq!(second.0.load(Ordering::SeqCst), 0);
        assert_eq!(poll(&mut three, &w1), Poll::Ready(Ok(())));
        // Full again: the second still waits; the next room is its.
        assert_eq!(poll(&mut four, &w2), Poll::Pending);
        let mut cx = Context::from_waker(&w);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(2)));
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll(&mut four, &w2), Poll::Ready(Ok(())));
        assert_eq!(
            std::iter::from_fn(|| rx.try_recv()).collect::<Vec<_>>(),
            [3, 4]
        );
        assert!(lock(&rx.0).waiting.is_empty());
    }

    #[test]
    fn a_waiting_send_never_polled_again_holds_up_no_other() {
        let (tx, mut rx) = bounded(1);
        let (_, w) = waker();
        assert_eq!(poll(&mut tx.send(1), &w), Poll::Ready(Ok(())));
        // Waits, then is left alone (its task is busy elsewhere).
        let mut stalled = tx.send(2);
        assert_eq!(poll(&mut stalled, &w), Poll::Pending);
        assert_eq!(rx.try_recv(), Some(1));
        // Another send finds the room and takes it (as with a semaphore).
        assert_eq!(poll(&mut tx.send(3), &w), Poll::Ready(Ok(())));
        assert_eq!(rx.try_recv(), Some(3));
        assert_eq!(poll(&mut stalled, &w), Poll::Ready(Ok(())));
        assert_eq!(rx.try_recv(), Some(2));
    }

    #[test]
    fn a_waiting_send_dropped_gives_its_turn_to_the_next() {
        let (tx, mut rx) = bounded(1);
        let (_, w) = waker();
        assert_eq!(poll(&mut tx.send(1), &w), Poll::Ready(Ok(())));
        let (_, w1) = waker();
        let (second, w2) = waker();
        let mut two = tx.send(2);
        let mut three = tx.send(3);
        assert_eq!(poll(&mut two, &w1), Poll::Pending);
        assert_eq!(poll(&mut three, &w2), Poll::Pending);
        assert_eq!(rx.try_recv(), Some(1)); // wakes `two`...
        drop(two); // ...which leaves: `three` is woken and goes in
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll(&mut three, &w2), Poll::Ready(Ok(())));
        assert_eq!(rx.try_recv(), Some(3));
        assert!(lock(&rx.0).waiting.is_empty());
    }

    #[test]
    fn closing_or_dropping_the_receiver_gives_waiting_sends_their_items_back() {
        for close in [true, false] {
            let (tx, rx) = bounded(1);
            let (_, w) = waker();
            assert_eq!(poll(&mut tx.send(1), &w), Poll::Ready(Ok(())));
            let (woken, w1) = waker();
            let mut two = tx.send(2);
            assert_eq!(poll(&mut two, &w1), Poll::Pending);
            if close {
                rx.close();
            } else {
                drop(rx);
            }
            assert_eq!(woken.0.load(Ordering::SeqCst), 1);
            assert_eq!(poll(&mut two, &w1), Poll::Ready(Err(2)));
            let mut three = tx.send(3);
            assert_eq!(poll(&mut three, &w1), Poll::Ready(Err(3)));
            assert!(tx.is_closed());
        }
    }

    #[test]
    fn shrink_gives_the_queue_back_only_when_empty() {
        let (tx, mut rx) = channel();
        for i in 0..100 {
            tx.try_send(i).unwrap();
        }
        rx.shrink();
        assert_eq!(rx.try_recv(), Some(0));
        while rx.try_recv().is_some() {}
        rx.shrink();
        assert_eq!(lock(&rx.0).items.capacity(), 0);
    }
}
