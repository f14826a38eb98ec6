//! What every adapter's client (ESME) shares: peer requests handed to the
//! application as [`InboundRequest`]s (answered exactly once), the checks
//! of a bind's and a submit's responses and of an MC's `outbind`, and the
//! concatenation references of [`ShortMessage`]s.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};

use smpp_proto::message::{DecodeOptions, DeliveryReceipt, ReferenceCounter, ShortMessage};
use smpp_proto::pdu::{Body, COctetString, CommandStatus, Outbind, Pdu, SubmitSm};

use smpp_proto::endpoint::{default_answer, Incoming, Response};

use crate::Error;

/// How an adapter sends the answers to one connection's peer requests
/// (over its command channel, as [`Command::Respond`](super::Command::Respond)).
pub trait Respond: fmt::Debug + Send + Sync {
    /// Sends `response`; a connection that has ended drops it.
    fn respond(&self, response: Response);
}

/// One request from the peer, answered exactly once: with
/// [`respond`](InboundRequest::respond), or with status 0 and an empty body
/// when dropped. (`alert_notification` has no answer.)
#[derive(Debug)]
pub struct InboundRequest {
    pdu: Pdu,
    /// `None` once answered, or for requests without a response.
    responder: Option<Arc<dyn Respond>>,
}

impl InboundRequest {
    /// A peer request or alert of a connection whose answers go to
    /// `responder`; `None` for the other items (binds and outbinds are not
    /// for the application's client).
    pub fn from_incoming(item: Incoming, responder: &Arc<dyn Respond>) -> Option<InboundRequest> {
        let (pdu, responder) = match item {
            Incoming::Request(pdu) => (pdu, Some(responder.clone())),
            Incoming::Alert(pdu) => (pdu, None),
            _ => return None,
        };
        Some(InboundRequest { pdu, responder })
    }

    /// The request.
    pub fn pdu(&self) -> &Pdu {
        &self.pdu
    }

    /// The request's body.
    pub fn body(&self) -> &Body {
        &self.pdu.body
    }

    /// The delivery receipt this `deliver_sm` or `data_sm` carries, if any
    /// (text and TLVs; GSM 7-bit unpacked as the default alphabet).
    pub fn receipt(&self) -> Option<DeliveryReceipt> {
        self.receipt_with(&DecodeOptions::default())
    }

    /// [`receipt`](InboundRequest::receipt) with explicit text decoding options.
    pub fn receipt_with(&self, options: &DecodeOptions) -> Option<DeliveryReceipt> {
        DeliveryReceipt::from_body(&self.pdu.body, options)
    }

    /// Answers with `status` and `body` (the matching `*_resp`, or
    /// `generic_nack`). An error status with a default body goes header-only.
    pub fn respond(mut self, status: CommandStatus, body: Body) {
        self.send(status, Some(body));
    }

    /// Answers with an error status and an empty body.
    pub fn reject(mut self, status: CommandStatus) {
        self.send(status, None);
    }

    fn send(&mut self, status: CommandStatus, body: Option<Body>) {
        if let Some(responder) = self.responder.take() {
            let (seq, _, default) = default_answer(&self.pdu);
            responder.respond((seq, status, body.unwrap_or(default)));
        }
    }
}

impl Drop for InboundRequest {
    fn drop(&mut self) {
        self.send(CommandStatus::OK, None);
    }
}

/// The message id of a submit's response (any status accepted before:
/// see [`Error::check_status`]).
pub(crate) fn message_id(pdu: &Pdu) -> Result<COctetString, Error> {
    match pdu.body.message_id() {
        Some(id) => Ok(id.clone()),
        None => Err(Error::UnexpectedResponse(pdu.command_id())),
    }
}

/// ESME: whether to bind after the first item of a connection the MC
/// opened: `Ok` for an `outbind` that `accept` approves,
/// [`Error::OutbindRefused`] for one it does not, [`Error::Closed`] for
/// anything else (or nothing: the connection ended); a `wait` that failed
/// (timed out) passes through.
pub(crate) fn check_outbind(
    first: Result<Option<Incoming>, Error>,
    accept: impl FnOnce(&Outbind) -> bool,
) -> Result<(), Error> {
    match first? {
        Some(Incoming::Outbind(outbind)) if accept(&outbind) => Ok(()),
        Some(Incoming::Outbind(_)) => Err(Error::OutbindRefused),
        _ => Err(Error::Closed),
    }
}

/// A client's concatenation references, shared by its clones; the first is
/// random (std's per-instance hash keys), so that successive clients do not
/// reuse them.
#[derive(Debug)]
pub(crate) struct References(Mutex<ReferenceCounter>);

impl Default for References {
    fn default() -> Self {
        let seed = RandomState::new().build_hasher().finish() as u16;
        References(Mutex::new(ReferenceCounter::new(seed)))
    }
}

impl References {
    /// Builds `message` into its parts (`submit_sm`s, in order).
    pub(crate) fn build(&self, message: &ShortMessage) -> Result<Vec<SubmitSm>, Error> {
        let mut refs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Ok(message.build(&mut refs)?)
    }
}
