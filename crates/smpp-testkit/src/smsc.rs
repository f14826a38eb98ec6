//! The suite's MC: one handler with the knobs the tests turn, implemented
//! for the async adapters' and the blocking adapter's `Handler` traits.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use smpp_proto::message::{DeliveryReceipt, MessageState};
use smpp_proto::pdu::{Bind, CommandStatus, QuerySm, QuerySmResp, SubmitSm, SubmitSmResp, TlvTag};
use smpp_proto::session::BindKind;

/// Accepts `esme`/`secret` (`ESME_RINVPASWD` for another password,
/// `ESME_RINVSYSID` for another system id) and answers `submit_sm` with
/// sequential hex ids, a receipt per `registered_delivery` submit, and
/// `query_sm` for message "1" (`ESME_RQUERYFAIL` otherwise). The knobs:
/// a gate that holds submits, refusals for flow control, an id of its
/// own, and texts that act: "boom" panics, "drop" closes the connection
/// with the submit in flight.
#[derive(Clone, Debug, Default)]
pub struct Smsc {
    /// Counts accepted submits; shared by clones and across restarts.
    pub next_id: Arc<AtomicU64>,
    /// Each submit takes one permit before it is answered.
    pub gate: Option<Gate>,
    /// Submits seen (accepted or refused).
    pub seen: Arc<AtomicUsize>,
    /// The connection id of each accepted submit.
    pub accepted_on: Arc<Mutex<Vec<u64>>>,
    /// The first `refuse` submits get `ESME_RTHROTTLED` and
    /// `ESME_RMSGQFUL` in turn (only the first when `only_throttled`).
    pub refuse: usize,
    /// See `refuse`.
    pub only_throttled: bool,
    /// Attempt `n` (counted as `seen`) gets `ESME_RTHROTTLED` when
    /// `refuse_pattern[n]` is true (attempts past its end are not refused).
    pub refuse_pattern: Option<Arc<[bool]>>,
    /// The destination and text of each accepted submit, in order.
    pub accepted: Arc<Mutex<Vec<(String, String)>>>,
    /// Every message id is this one.
    pub fixed_id: Option<&'static str>,
    /// Message ids are "len" and the short message's length.
    pub echo_len: bool,
}

/// Permits for held submits (a semaphore both sync and async callers wait on).
#[derive(Clone, Debug)]
pub struct Gate {
    permits: async_channel::Sender<()>,
    taken: async_channel::Receiver<()>,
}

impl Default for Gate {
    fn default() -> Gate {
        let (permits, taken) = async_channel::unbounded();
        Gate { permits, taken }
    }
}

impl Gate {
    /// Lets `n` more submits through.
    pub fn open(&self, n: usize) {
        for _ in 0..n {
            self.permits.try_send(()).expect("unbounded");
        }
    }
}

/// What the handler needs from a connection.
trait Peer: Clone + Send + 'static {
    fn id(&self) -> u64;
    fn close(&self);
    /// Sends `receipt` on a thread of its own (the handler does not wait).
    fn send_later(&self, receipt: SubmitSm);
}

impl Peer for smpp_async::Connection {
    fn id(&self) -> u64 {
        std::ops::Deref::deref(self).id()
    }

    fn close(&self) {
        smpp_async::Connection::close(self);
    }

    fn send_later(&self, receipt: SubmitSm) {
        let conn = self.clone();
        std::thread::spawn(move || futures_lite::future::block_on(conn.deliver(receipt)));
    }
}

impl Peer for smpp_blocking::Connection {
    fn id(&self) -> u64 {
        std::ops::Deref::deref(self).id()
    }

    fn close(&self) {
        smpp_blocking::Connection::close(self);
    }

    fn send_later(&self, receipt: SubmitSm) {
        let conn = self.clone();
        std::thread::spawn(move || conn.deliver(receipt));
    }
}

impl Smsc {
    /// An SMSC whose submits wait for `gate`'s permits.
    pub fn gated(gate: &Gate) -> Smsc {
        Smsc {
            gate: Some(gate.clone()),
            ..Smsc::default()
        }
    }

    fn bind(bind: &Bind) -> Result<(), CommandStatus> {
        match (bind.system_id.as_bytes(), bind.password.as_bytes()) {
            (b"esme", b"secret") => Ok(()),
            (b"esme", _) => Err(CommandStatus::INVALID_PASSWORD),
            _ => Err(CommandStatus::INVALID_SYSTEM_ID),
        }
    }

    /// Everything after the gate.
    fn submit(&self, conn: &impl Peer, sm: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        assert!(sm.short_message.as_ref() != b"boom", "handler bug");
        if sm.short_message.as_ref() == b"drop" {
            conn.close(); // the connection dies with this submit in flight
        }
        let n = self.seen.fetch_add(1, Ordering::SeqCst);
        let patterned = self
            .refuse_pattern
            .as_ref()
            .is_some_and(|p| p.get(n).copied().unwrap_or(false));
        if patterned {
            return Err(CommandStatus::THROTTLED);
        }
        if n < self.refuse {
            if self.only_throttled || n % 2 == 0 {
                return Err(CommandStatus::THROTTLED);
            }
            return Err(CommandStatus::MESSAGE_QUEUE_FULL);
        }
        self.accepted_on.lock().unwrap().push(conn.id());
        self.accepted.lock().unwrap().push((
            sm.destination_addr.to_string_lossy().into_owned(),
            String::from_utf8_lossy(&sm.short_message).into_owned(),
        ));
        let id = match (self.fixed_id, self.echo_len) {
            (Some(id), _) => id.to_owned(),
            (None, true) => format!("len{}", sm.short_message.len()),
            (None, false) => format!("{:X}", self.next_id.fetch_add(1, Ordering::SeqCst) + 1),
        };
        if sm.registered_delivery().wants_receipt_for(true) {
            let mut receipt = DeliveryReceipt::new(id.clone(), MessageState::Delivered);
            receipt.text = Some(String::from_utf8_lossy(&sm.short_message).into_owned());
            let mut dlr = SubmitSm {
                source_addr: sm.destination_addr.clone(),
                destination_addr: sm.source_addr.clone(),
                esm_class: 0x04,
                short_message: receipt.to_text().into_bytes().into(),
                ..Default::default()
            };
            dlr.tlvs
                .set_text(TlvTag::RECEIPTED_MESSAGE_ID, id.as_bytes())
                .unwrap();
            dlr.tlvs.set_u8(TlvTag::MESSAGE_STATE, 2);
            conn.send_later(dlr);
        }
        Ok(SubmitSmResp {
            message_id: id.into(),
            ..Default::default()
        })
    }

    fn query(query: QuerySm) -> Result<QuerySmResp, CommandStatus> {
        if query.message_id == "1" {
            Ok(QuerySmResp {
                message_id: query.message_id,
                message_state: 2,
                ..Default::default()
            })
        } else {
            Err(CommandStatus::QUERY_FAILED)
        }
    }
}

impl smpp_async::Handler<smpp_async::Connection> for Smsc {
    async fn bind(
        &self,
        _: &smpp_async::Connection,
        _: BindKind,
        bind: &Bind,
    ) -> Result<(), CommandStatus> {
        Smsc::bind(bind)
    }

    async fn submit_sm(
        &self,
        conn: &smpp_async::Connection,
        sm: SubmitSm,
    ) -> Result<SubmitSmResp, CommandStatus> {
        if let Some(gate) = &self.gate {
            gate.taken.recv().await.unwrap();
        }
        self.submit(conn, sm)
    }

    async fn query_sm(
        &self,
        _: &smpp_async::Connection,
        query: QuerySm,
    ) -> Result<QuerySmResp, CommandStatus> {
        Smsc::query(query)
    }
}

impl smpp_blocking::Handler<smpp_blocking::Connection> for Smsc {
    fn bind(
        &self,
        _: &smpp_blocking::Connection,
        _: BindKind,
        bind: &Bind,
    ) -> Result<(), CommandStatus> {
        Smsc::bind(bind)
    }

    fn submit_sm(
        &self,
        conn: &smpp_blocking::Connection,
        sm: SubmitSm,
    ) -> Result<SubmitSmResp, CommandStatus> {
        if let Some(gate) = &self.gate {
            gate.taken.recv_blocking().unwrap();
        }
        self.submit(conn, sm)
    }

    fn query_sm(
        &self,
        _: &smpp_blocking::Connection,
        query: QuerySm,
    ) -> Result<QuerySmResp, CommandStatus> {
        Smsc::query(query)
    }
}
