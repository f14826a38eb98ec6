//! Hooks for metrics, CDRs and logs: an [`Observer`] is told about every
//! interesting thing the SMSC does. All methods have no-op defaults and are
//! called synchronously on the hot path, so an implementation must be cheap
//! (atomics, a bounded channel `try_send`): never block, never await.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use smpp_proto::pdu::{CommandId, CommandStatus};
use smpp_proto::session::BindKind;

/// A bind attempt and its answer.
#[derive(Debug, Clone, Copy)]
pub struct BindEvent<'a> {
    /// The connection (unique within the running server).
    pub connection: u64,
    /// The ESME's address.
    pub peer: Option<SocketAddr>,
    /// The system_id it tried.
    pub system_id: &'a str,
    /// Transmitter, receiver or transceiver.
    pub kind: BindKind,
    /// `OK` when accepted, else the status answered (`ESME_RINVPASWD`...).
    pub status: CommandStatus,
}

/// A request answered by the SMSC (everything but binds, `enquire_link`
/// and `unbind`, which the session answers itself).
#[derive(Debug, Clone, Copy)]
pub struct RequestEvent<'a> {
    /// The account of the connection.
    pub account: &'a str,
    /// The request's command id.
    pub command: CommandId,
    /// The status answered.
    pub status: CommandStatus,
    /// From the request's arrival in the handler to the answer.
    pub latency: Duration,
}

/// A message that reached its final state: everything a billing record needs.
#[derive(Debug, Clone, Serialize)]
pub struct FinalEvent<'a> {
    /// The submitting account (empty for injected MO messages).
    pub account: &'a str,
    /// The SMSC's message id.
    pub message_id: &'a str,
    /// Originator address.
    pub source: &'a str,
    /// Recipient addresses (several for `submit_multi`).
    pub destinations: Vec<&'a str>,
    /// Each submitted PDU is one message with its own id: for a part of a
    /// concatenated message (UDH or sar TLVs), the total number of parts; else 1.
    pub parts: u32,
    /// The data_coding of the submission.
    pub data_coding: u8,
    /// Submission time, milliseconds since the Unix epoch.
    pub submit_time_ms: u64,
    /// Final-state time, milliseconds since the Unix epoch.
    pub done_time_ms: u64,
    /// The final state's `stat:` word (`DELIVRD`, `UNDELIV`...).
    pub state: &'static str,
    /// The error code reported in the receipt (`err:`).
    pub error: u16,
    /// The raw value of the v5.0 `billing_identification` TLV, when present.
    pub billing_identification: Option<&'a [u8]>,
}

/// What happened to a delivery receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiptEvent {
    /// Waiting to be sent (its message is final; delivered when a receiver is bound).
    Queued,
    /// The ESME answered `deliver_sm_resp` OK.
    Sent,
    /// The ESME answered an error (or the attempt failed); it will be retried.
    Retrying,
    /// Given up after too many error answers.
    Failed,
}

/// Called at the interesting points of the SMSC's life; every method
/// defaults to doing nothing. Implementations must not block.
pub trait Observer: Send + Sync + 'static {
    /// A TCP (or TLS) connection sent its first bind.
    fn session_opened(&self, _connection: u64, _peer: Option<SocketAddr>) {}
    /// A connection seen by [`session_opened`](Observer::session_opened) ended.
    fn session_closed(&self, _connection: u64, _account: Option<&str>) {}
    /// A bind was accepted or rejected.
    fn bind(&self, _event: &BindEvent<'_>) {}
    /// Too many failed binds: binds from this address are refused for
    /// the cool-down (`--bind-failure-limit`).
    fn lockout(&self, _ip: std::net::IpAddr) {}
    /// A bind was refused because its address is locked out.
    fn bind_locked_out(&self, _ip: std::net::IpAddr) {}
    /// A request was answered.
    fn request(&self, _event: &RequestEvent<'_>) {}
    /// A request was refused with `ESME_RTHROTTLED` by the `--tps` limit.
    fn throttled(&self, _account: &str) {}
    /// A receipt changed state.
    fn receipt(&self, _account: &str, _message_id: &str, _event: ReceiptEvent) {}
    /// A message reached its final state. Only called when
    /// [`wants_final_states`](Observer::wants_final_states) is true (it costs
    /// a timer entry per message).
    fn final_state(&self, _event: &FinalEvent<'_>) {}
    /// A counter for the late responses of every session (answers to our
    /// requests that came after they timed out), shared with the servers;
    /// `None`: not counted.
    fn late_responses(&self) -> Option<std::sync::Arc<std::sync::atomic::AtomicU64>> {
        None
    }
    /// A counter for the TLVs every session left out of what it sent
    /// because the ESME's SMPP version cannot take them (none to 3.3, none
    /// of 5.0's to 3.4), shared with the servers; `None`: not counted.
    fn tlvs_dropped(&self) -> Option<std::sync::Arc<std::sync::atomic::AtomicU64>> {
        None
    }
    /// Whether [`final_state`](Observer::final_state) is wanted for every
    /// message (a CDR writer says yes; metrics alone need not).
    fn wants_final_states(&self) -> bool {
        false
    }
}

/// The observer that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}
