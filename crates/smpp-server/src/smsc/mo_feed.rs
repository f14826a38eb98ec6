//! The MO feed: mobile-originated messages (from a CSV file, read by the
//! command) delivered at a steady rate, each like [`Smsc::inject_mo_message`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use smpp_proto::message::ShortMessage;
use smpp_proto::pdu::CommandStatus;

use super::Smsc;
use crate::clock::Clock;
use crate::config::Rate;

/// How often a message whose destination no ESME takes yet is tried again.
const NO_TARGET_RETRY: Duration = Duration::from_millis(100);

impl<C: Clock> Smsc<C> {
    /// Delivers `messages` in order as MO messages, one every
    /// `rate.interval()` at most: each goes where its destination routes (a
    /// receiver's `address_range`, a configured route, else a receiver that
    /// registered no range) and is then queued and retried like any routed
    /// message. A message that no ESME takes yet waits (and the ones after
    /// it) until one binds; one that cannot be sent at all (too long) is
    /// skipped with a warning. Returns how many were accepted, when done or
    /// when the server stops.
    pub async fn feed_mo(self: Arc<Self>, messages: Vec<ShortMessage>, rate: Rate) -> usize {
        let interval = rate.interval();
        let total = messages.len();
        let mut accepted = 0;
        let mut next = self.clock.now();
        for (i, message) in messages.iter().enumerate() {
            let wait = next.saturating_duration_since(self.clock.now());
            if !wait.is_zero() {
                self.clock.sleep(wait).await;
            }
            loop {
                if self.stopping.load(Ordering::Acquire) {
                    return accepted;
                }
                match self.inject_mo_message(message).await {
                    Ok(_) => {
                        accepted += 1;
                        break;
                    }
                    Err(status) if status == CommandStatus::INVALID_DESTINATION_ADDRESS => {
                        self.clock.sleep(NO_TARGET_RETRY).await;
                    }
                    Err(status) => {
                        tracing::warn!(row = i + 1, %status, "MO feed: message skipped");
                        break;
                    }
                }
            }
            next = (next + interval).max(self.clock.now());
        }
        tracing::info!(accepted, total, "MO feed done");
        accepted
    }
}
