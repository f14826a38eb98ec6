//! An SMSC built on the smpp34 1.5.1 crate's server: the independent MC that
//! our client and the `smpp send`/`smpp listen` commands are checked against
//! (scenario C).
//!
//! It accepts binds of every kind for `smppclient1`/`password` (others get
//! ESME_RINVPASWD / ESME_RINVSYSID), answers submit_sm with ids `S34-<n>`,
//! query_sm from what it stored (ENROUTE, then DELIVERED once the receipt
//! went out; ESME_RQUERYFAIL for an unknown id), and sends a deliver_sm
//! receipt (Appendix B text plus the receipted_message_id and message_state
//! TLVs) after [`RECEIPT_DELAY`] when registered_delivery asks: to the
//! submitting session when it can receive, else to a receiver bound with the
//! same system_id. smpp34 answers enquire_link and unbind itself.
//!
//! For the `smpp query|cancel|replace|ussd` checks it also answers
//! replace_sm (a pending message's text is replaced; ESME_RREPLACEFAIL for
//! an unknown or final one), and plays a USSD application for any
//! submit_sm with `ussd_service_op`: a PSSR indication (the dialled code) gets
//! the prompt [`USSD_MENU`], the subscriber's USSR confirm the final screen
//! `You chose <answer>` (PSSR response, end of session), both as deliver_sm to
//! the submitting session.
//!
//! cancel_sm gets smpp34's default answer, ESME_RCANCELFAIL, whatever it
//! names: smpp34 1.5.1 decodes cancel_sm from the start of the PDU, header
//! included (`cancel_sm::decode` does not skip the 16 header octets, as its
//! `query_sm` and `replace_sm` decoders do), so the message id it hands over
//! is read from the header and the real one is lost.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use smpp34::server::ESME;
use smpp34::{
    bind_receiver, bind_receiver_resp, bind_transceiver, bind_transceiver_resp, bind_transmitter,
    bind_transmitter_resp, query_sm, query_sm_resp, replace_sm, replace_sm_resp, submit_sm,
    submit_sm_resp, SmppConnectionInformation, SmppError, SmppServer, SmppServerListener, Tlv,
    TlvTag,
};
use smpp_proto::message::ussd::{UssdMessage, UssdServiceDialog};
use smpp_proto::message::{DeliveryReceipt, MessageState, ReferenceCounter};
use smpp_proto::pdu::{Body, COctetString, SubmitSm as ProtoSubmitSm, TlvTag as ProtoTag, Tlvs};

use crate::{receipt_date_now, smsc_time, PASSWORD, SYSTEM_ID};

/// The prompt of the USSD menu it plays.
pub const USSD_MENU: &str = "smpp34 menu: 1 Balance, 2 Top-up";

/// How long after a submit its receipt goes out.
pub const RECEIPT_DELAY: Duration = Duration::from_millis(100);
/// Messages remembered for query_sm at most.
const MAX_STORED: usize = 100_000;

#[derive(Default)]
struct State {
    /// Bound sessions by session id.
    esmes: HashMap<String, Arc<ESME>>,
    /// Message id -> (state, final date).
    messages: HashMap<String, (MessageState, String)>,
    /// USSD dialogs by subscriber number.
    ussd: HashMap<String, UssdServiceDialog>,
}

/// The smpp34 listener: the SMSC's behaviour.
#[derive(Default)]
pub struct Smsc {
    next_id: AtomicU64,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Smsc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smsc").finish_non_exhaustive()
    }
}

fn authenticate(system_id: &str, password: &str) -> Result<(), SmppError> {
    match (system_id == SYSTEM_ID, password == PASSWORD) {
        (true, true) => Ok(()),
        (true, false) => Err(SmppError::ESME_RINVPASWD),
        _ => Err(SmppError::ESME_RINVSYSID),
    }
}

fn set_state(state: &Mutex<State>, id: &str, s: MessageState, date: String) {
    if let Ok(mut st) = state.lock() {
        if st.messages.len() >= MAX_STORED && !st.messages.contains_key(id) {
            return;
        }
        st.messages.insert(id.to_owned(), (s, date));
    }
}

/// Whether `id` is a pending (ENROUTE) message.
fn is_pending(state: &Mutex<State>, id: &str) -> bool {
    state
        .lock()
        .ok()
        .and_then(|st| st.messages.get(id).map(|m| m.0 == MessageState::Enroute))
        .unwrap_or(false)
}

/// The USSD message a submit_sm carries (our reading of smpp34's fields).
fn ussd_message(req: &submit_sm) -> Option<UssdMessage> {
    let mut tlvs = Tlvs::new();
    for t in &req.tlvs {
        tlvs.push(ProtoTag(t.tag), &t.value).ok()?;
    }
    let sm = ProtoSubmitSm {
        service_type: COctetString::copy_from_str(&req.service_type),
        source_addr: COctetString::copy_from_str(&req.source_addr),
        destination_addr: COctetString::copy_from_str(&req.destination_addr),
        data_coding: req.data_coding,
        short_message: req.short_message.clone().into(),
        tlvs,
        ..Default::default()
    };
    UssdMessage::from_body(&Body::SubmitSm(Box::new(sm)))
}

/// The application's answer to `m`, advancing (or ending) the dialog.
fn ussd_answer(state: &Mutex<State>, m: &UssdMessage) -> Option<UssdMessage> {
    let mut st = state.lock().ok()?;
    if let Ok((mut dialog, _dialled)) = UssdServiceDialog::accept(m) {
        let prompt = dialog.prompt(USSD_MENU).ok()?;
        st.ussd.insert(m.msisdn.clone(), dialog);
        return Some(prompt);
    }
    let mut dialog = st.ussd.remove(&m.msisdn)?;
    let answer = dialog.handle(m).ok()?;
    if dialog.is_ended() {
        return None; // cancelled by the subscriber
    }
    dialog.end(&format!("You chose {answer}")).ok()
}

/// Sends `m` to `esme` as deliver_sm (one per part).
async fn send_ussd(esme: &ESME, m: &UssdMessage) {
    let Ok(parts) = m.to_short_message().build(&mut ReferenceCounter::new(1)) else {
        eprintln!("smpp34-smsc: USSD screen cannot be built");
        return;
    };
    for part in parts {
        let tlvs: Vec<Tlv> = part
            .tlvs
            .iter()
            .map(|t| Tlv {
                tag: t.tag.0,
                value: t.value.to_vec(),
            })
            .collect();
        let sent = esme
            .deliver_sm()
            .service_type(part.service_type.to_string_lossy())
            .source_addr(part.source_addr.to_string_lossy())
            .destination_addr(part.destination_addr.to_string_lossy())
            .esm_class(part.esm_class)
            .data_coding(part.data_coding)
            .short_message(part.short_message.to_vec())
            .tlvs(tlvs)
            .send()
            .await;
        if !matches!(sent, Ok(ref resp) if resp.is_success()) {
            eprintln!("smpp34-smsc: USSD screen not delivered");
        }
    }
}

#[async_trait]
impl SmppServerListener for Smsc {
    async fn on_bind_transmitter(
        &self,
        req: bind_transmitter,
        _c: &SmppConnectionInformation,
        _s: &String,
    ) -> bind_transmitter_resp {
        match authenticate(&req.system_id, &req.password) {
            Ok(()) => req.accept("smpp34-smsc".into(), Some(0x34)),
            Err(e) => req.reject(e),
        }
    }

    async fn on_bind_receiver(
        &self,
        req: bind_receiver,
        _c: &SmppConnectionInformation,
        _s: &String,
    ) -> bind_receiver_resp {
        match authenticate(&req.system_id, &req.password) {
            Ok(()) => req.accept("smpp34-smsc".into(), Some(0x34)),
            Err(e) => req.reject(e),
        }
    }

    async fn on_bind_transceiver(
        &self,
        req: bind_transceiver,
        _c: &SmppConnectionInformation,
        _s: &String,
    ) -> bind_transceiver_resp {
        match authenticate(&req.system_id, &req.password) {
            Ok(()) => req.accept("smpp34-smsc".into(), Some(0x34)),
            Err(e) => req.reject(e),
        }
    }

    async fn on_esme_bound(&self, esme: ESME, session_id: &String) {
        if let Ok(mut st) = self.state.lock() {
            st.esmes.insert(session_id.clone(), Arc::new(esme));
        }
    }

    async fn on_esme_unbound(&self, session_id: &String) {
        if let Ok(mut st) = self.state.lock() {
            st.esmes.remove(session_id);
        }
    }

    async fn on_submit_sm(
        &self,
        req: submit_sm,
        _c: &SmppConnectionInformation,
        session_id: &String,
    ) -> submit_sm_resp {
        let id = format!("S34-{}", self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        if let Some(m) = ussd_message(&req) {
            // A USSD application: the next screen goes to the submitting session.
            let esme = self
                .state
                .lock()
                .ok()
                .and_then(|st| st.esmes.get(session_id).cloned());
            if let (Some(answer), Some(esme)) = (ussd_answer(&self.state, &m), esme) {
                tokio::spawn(async move { send_ussd(&esme, &answer).await });
            }
            return req.accept(id);
        }
        set_state(&self.state, &id, MessageState::Enroute, String::new());
        if smpp_proto::pdu::RegisteredDelivery::from(req.registered_delivery).wants_receipt() {
            let state = self.state.clone();
            let session_id = session_id.clone();
            let (id, src, dst) = (
                id.clone(),
                req.destination_addr.clone(),
                req.source_addr.clone(),
            );
            // The submitter's account, now: it may unbind before the receipt is due.
            let system_id = self
                .state
                .lock()
                .ok()
                .and_then(|st| st.esmes.get(&session_id).map(|e| e.system_id.clone()));
            let submitted = receipt_date_now();
            let text: String = req
                .short_message
                .iter()
                .filter(|b| b.is_ascii_graphic() || **b == b' ')
                .take(20)
                .map(|&b| char::from(b))
                .collect();
            tokio::spawn(async move {
                tokio::time::sleep(RECEIPT_DELAY).await;
                let target = state.lock().ok().and_then(|st| {
                    let own = st.esmes.get(&session_id).cloned();
                    own.filter(|e| e.can_receive).or_else(|| {
                        st.esmes
                            .values()
                            .find(|e| e.can_receive && Some(&e.system_id) == system_id.as_ref())
                            .cloned()
                    })
                });
                let Some(esme) = target else {
                    eprintln!("smpp34-smsc: no receiver bound for the receipt of {id}");
                    return;
                };
                let mut receipt = DeliveryReceipt::new(id.clone(), MessageState::Delivered);
                receipt.submitted = Some(1);
                receipt.delivered = Some(1);
                receipt.submit_date = Some(submitted);
                receipt.done_date = Some(receipt_date_now());
                receipt.error = Some("000".into());
                receipt.text = Some(text);
                set_state(&state, &id, MessageState::Delivered, smsc_time());
                let mut receipted = id.clone().into_bytes();
                receipted.push(0);
                let sent = esme
                    .deliver_sm()
                    .source_addr(src)
                    .destination_addr(dst)
                    .esm_class(0x04)
                    .short_message(receipt.to_text().into_bytes())
                    .tlv(TlvTag::ReceiptedMessageId, receipted)
                    .tlv(TlvTag::MessageStateTlv, [MessageState::Delivered as u8])
                    .send()
                    .await;
                match sent {
                    Ok(resp) if resp.is_success() => {}
                    Ok(_) => eprintln!("smpp34-smsc: receipt for {id} answered with an error"),
                    Err(e) => eprintln!("smpp34-smsc: receipt for {id} not delivered: {e:?}"),
                }
            });
        }
        req.accept(id)
    }

    async fn on_query_sm(
        &self,
        req: query_sm,
        _c: &SmppConnectionInformation,
        _s: &String,
    ) -> query_sm_resp {
        let found = self
            .state
            .lock()
            .ok()
            .and_then(|st| st.messages.get(&req.message_id).cloned());
        match found {
            Some((state, date)) => {
                let id = req.message_id.clone();
                req.accept(id, date, state as u8, 0)
            }
            None => req.reject(SmppError::ESME_RQUERYFAIL),
        }
    }

    async fn on_replace_sm(
        &self,
        req: replace_sm,
        _c: &SmppConnectionInformation,
        _s: &String,
    ) -> replace_sm_resp {
        // The text is not kept (nothing reads it back): a pending message
        // takes the replacement, anything else is refused.
        if is_pending(&self.state, &req.message_id) {
            req.accept()
        } else {
            req.reject(SmppError::ESME_RREPLACEFAIL)
        }
    }
}

/// Starts the smpp34 server on a free loopback port; returns it and its address.
///
/// smpp34 takes a port number and cannot report the one the OS chose for
/// port 0, so a free port is found first (and the start retried if another
/// process takes it in between).
pub async fn start() -> anyhow::Result<(SmppServer, SocketAddr)> {
    let listener = Arc::new(Smsc::default());
    for _ in 0..10 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut server = SmppServer::new_with_default_timers(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            listener.clone(),
            5000,
            30_000,
            300_000,
            5000,
            1500,
        );
        server.start().await;
        if server.is_alive() {
            return Ok((server, SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
        }
    }
    anyhow::bail!("smpp34's server could not listen on a free port in 10 tries")
}
