//! The channels between a connection's handles and its task: unbounded,
//! many senders, one receiver, a lock around a queue.
//!
//! Smaller than an async-channel, which matters for idle connections (a
//! server holds thousands): async-channel's unbounded channel is 512
//! octets (two cache-padded positions, three events) and keeps a block of
//! 31 slots (504 octets) from its first item on, plus its events' state
//! once listened to; this one is under 100 octets, and its queue only
//! holds what was in it at once (given back by [`Receiver::shrink`]).
//! Every use here has one receiver (the connection's task, or the
//! application's side of the incoming requests), which waits on one waker.
//!
//! Bounds are the callers' (see `driver::Control`): the queue grows as it
//! must.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
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
}

type Shared<T> = Arc<Mutex<State<T>>>;

fn lock<T>(shared: &Shared<T>) -> MutexGuard<'_, State<T>> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// A new channel.
pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Mutex::new(State {
        items: VecDeque::new(),
        waker: None,
        senders: 1,
        closed: false,
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

    /// Whether the receiver closed the channel (or is gone).
    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.0).closed
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
        lock(&self.0).items.pop_front()
    }

    /// Refuses further items; those queued can still be received.
    pub(crate) fn close(&self) {
        lock(&self.0).closed = true;
    }

    /// Gives back the queue's memory when it is empty (a quiet connection).
    pub(crate) fn shrink(&self) {
        let mut state = lock(&self.0);
        if state.items.is_empty() {
            state.items = VecDeque::new();
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
        drop(state);
        drop(items);
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
