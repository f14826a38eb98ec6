//! Small parts of an adapter's connection handle, the same in every adapter.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

use crate::Error;
use event_listener::Event;
use smpp_proto::pdu::Body;
use smpp_proto::session::{CloseReason, SendError};

/// `Err(Error::Refused)` for a command without a response (it cannot be
/// awaited as a request).
pub(crate) fn check_request(body: &Body) -> Result<(), Error> {
    match body.command_id().response_id() {
        Some(_) => Ok(()),
        None => Err(Error::Refused(SendError::WrongCommand(()))),
    }
}

/// The one-shot commands the handles of a connection have sent
/// ([`Command::Close`](super::Command::Close),
/// [`Command::Release`](super::Command::Release)): repeats are no-ops.
#[derive(Debug, Default)]
pub(crate) struct Ending(AtomicU8);

impl Ending {
    const CLOSE: u8 = 1;
    const RELEASE: u8 = 2;

    /// True the first time only: send `Command::Close` then.
    pub(crate) fn close(&self) -> bool {
        self.0.fetch_or(Self::CLOSE, Ordering::AcqRel) & Self::CLOSE == 0
    }

    /// True the first time only: send `Command::Release` then.
    pub(crate) fn release(&self) -> bool {
        self.0.fetch_or(Self::RELEASE, Ordering::AcqRel) & Self::RELEASE == 0
    }
}

/// Why a connection's session closed, once it has; shared by its handles.
/// Its event allocates only once someone waits.
#[derive(Debug, Default)]
pub(crate) struct CloseState {
    reason: Mutex<Option<CloseReason>>,
    closed: Event,
}

impl CloseState {
    /// Records `reason` (the first one stands) and wakes the waiters.
    pub(crate) fn set(&self, reason: CloseReason) {
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        drop(r);
        self.closed.notify(usize::MAX);
    }

    /// Waits for the reason.
    pub(crate) async fn wait(&self) -> CloseReason {
        loop {
            if let Some(reason) = self.get() {
                return reason;
            }
            let listener = self.closed.listen();
            if let Some(reason) = self.get() {
                return reason;
            }
            listener.await;
        }
    }

    /// The reason, once closed.
    pub(crate) fn get(&self) -> Option<CloseReason> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
