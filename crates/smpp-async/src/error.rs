//! The error of every call of a runtime adapter.

use smpp_proto::endpoint::Failure;
use smpp_proto::message::BuildError;
use smpp_proto::pdu::{CommandId, CommandStatus, DecodeError, Pdu};
use smpp_proto::session::{RequestError, SendError};

/// Why a call of a runtime adapter (client, server connection, pool) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Connecting failed (or another I/O error outside a session).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer answered with this error status (a rejected bind, a refused submit...).
    #[error("peer answered with status {0}")]
    Status(CommandStatus),
    /// No response within the session's `response_timeout` (for an
    /// unbind, its `unbind_timeout`).
    #[error("no response in time")]
    Timeout,
    /// The peer answered with `generic_nack` and this status.
    #[error("generic_nack: {0}")]
    GenericNack(CommandStatus),
    /// The peer's response could not be decoded.
    #[error("malformed response: {0}")]
    MalformedResponse(DecodeError),
    /// The session is closed, or closed before the response arrived.
    #[error("session closed")]
    Closed,
    /// The session refused the command at once (wrong state, wrong command,
    /// a field that does not encode...). Nothing was sent.
    #[error("refused: {0}")]
    Refused(SendError<()>),
    /// The response was not of the expected kind.
    #[error("unexpected response {0}")]
    UnexpectedResponse(CommandId),
    /// No bound session was available in time (a reconnecting client, a pool).
    #[error("not connected")]
    NotConnected,
    /// The MC's `outbind` was refused by the application's check (an
    /// ESME's outbind listener); the connection was closed.
    #[error("outbind refused")]
    OutbindRefused,
    /// A [`ShortMessage`](smpp_proto::message::ShortMessage) could not be built into PDUs.
    #[error("cannot build the message: {0}")]
    Build(#[from] BuildError),
}

impl From<Failure> for Error {
    fn from(e: Failure) -> Error {
        match e {
            Failure::Request(e) => e.into(),
            Failure::Refused(e) => Error::Refused(e),
            _ => Error::Closed,
        }
    }
}

impl From<RequestError> for Error {
    fn from(e: RequestError) -> Error {
        match e {
            RequestError::Timeout => Error::Timeout,
            RequestError::GenericNack(status) => Error::GenericNack(status),
            RequestError::MalformedResponse(e) => Error::MalformedResponse(e),
            _ => Error::Closed,
        }
    }
}

impl Error {
    /// `Ok(pdu)` when its status is 0, [`Error::Status`] otherwise.
    pub fn check_status(pdu: Pdu) -> Result<Pdu, Error> {
        if pdu.command_status.is_ok() {
            Ok(pdu)
        } else {
            Err(Error::Status(pdu.command_status))
        }
    }
}
