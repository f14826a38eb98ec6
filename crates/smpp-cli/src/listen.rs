//! `smpp listen`: bind as a receiver (or transceiver) and print every
//! `deliver_sm` / `data_sm`: mobile-originated messages decoded and
//! reassembled, delivery receipts parsed. Every request is answered OK.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use smpp_proto::message::features::MessageFeatures;
use smpp_proto::message::mms::MmsExpiry;
use smpp_proto::message::mwi::MwiKind;
use smpp_proto::message::reassembly::{ReassembledMessage, ReassemblyEvent};
use smpp_proto::message::wap::PushContent;
use smpp_proto::message::{
    DecodeOptions, IncomingPart, PartOutcome, Reassembler, ReassemblyConfig,
};
use smpp_proto::pdu::{Body, Tlvs};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Inbound, InboundRequest};

use crate::common::ConnectArgs;
use crate::decode::{hex, udh_element, ReceiptReport};

/// How `smpp listen` binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListenBind {
    /// bind_receiver.
    Receiver,
    /// bind_transceiver.
    Transceiver,
}

/// Arguments of `smpp listen`.
#[derive(Debug, Args)]
#[command(after_long_help = "OUTPUT:\n  \
    One line per item. A message is printed once all its parts have arrived \
    (concatenation by UDH or SAR TLVs, in any order); a receipt as soon as it arrives.\n\n\
    JSON (--json), one object per line:\n  \
    {\"type\":\"message\", \"kind\", \"command\":\"deliver_sm\"|\"data_sm\", \"from\", \"to\", \
    \"data_coding\", \"esm_class\", \"parts\", \"text\" (decoded per data_coding) or \
    \"binary\" (hex) or \"error\", \"udh\": [{iei, name, detail}] (other than concatenation)}; \
    \"kind\" is message, wap_push_si, wap_push_sl, mms_notification, wap_push, bad_wap_push, \
    mwi or ussd, and what was recognised adds \"wap_push\": {tid, content_type, \
    application_id, url, and text, si_id, created, expires, action (SI) | action (SL) | \
    transaction_id, version, from, subject, class, size, expiry: {relative|absolute}, \
    content_location (MMS)}, \"wap_push_error\", \"mwi\": [{active, kind, count}], \
    \"ussd\": {op, name, session, sequence, end_of_session}, \"billing_id\" (hex)\n  \
    {\"type\":\"receipt\", \"command\", \"from\", \"to\", \"id\", \"state\" (DELIVRD, \
    UNDELIV...), \"receipt\": {id, state, state_value, is_final, stat, submitted, delivered, \
    submit_date, done_date, error, text, network_error}}\n  \
    {\"type\":\"incomplete\", \"from\", \"to\", \"reference\", \"total\", \"received\", \
    \"reason\": \"expired\"|\"evicted\"|\"ended\"} for a long message whose parts stopped \
    coming (\"ended\": still waiting when listening stopped)\n  \
    {\"type\":\"other\", \"command\"} for any other request (alert_notification...)\n\n\
    EXIT CODE:\n  \
    0 after --count items, or when interrupted (Ctrl-C unbinds first) or --timeout passes \
    without --count; 1 when --count items did not come (timeout, Ctrl-C, or the SMSC \
    closed the session), or the bind failed; 2 on usage errors.")]
pub struct ListenArgs {
    /// Where to connect and how to bind.
    #[command(flatten)]
    pub connect: Box<ConnectArgs>,
    /// How to bind.
    #[arg(long, value_enum, default_value_t = ListenBind::Receiver)]
    pub bind: ListenBind,
    /// The address_range to register: a regular expression (anchored by `smpp serve`)
    /// for the destinations the SMSC routes to this bind, e.g. `4477009004[0-9]{2}`.
    #[arg(long, value_name = "RANGE", default_value = "")]
    pub address_range: String,
    /// The interface_version the bind offers: 3.3, 3.4 or 5.0 (5.0 to receive 5.0 TLVs
    /// such as billing_identification from a strict SMSC).
    #[arg(long, value_name = "VERSION", value_parser = crate::send::parse_version)]
    pub interface_version: Option<u8>,
    /// Print one JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Exit after this many items (messages, receipts, others).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop listening after this long (e.g. `30s`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// How long to wait for the connection, the bind, each response and the unbind.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub response_timeout: Duration,
}

/// Runs `smpp listen`.
pub async fn run(mut args: ListenArgs) -> anyhow::Result<ExitCode> {
    args.connect.address_range.clone_from(&args.address_range);
    if let Some(v) = args.interface_version {
        args.connect.interface_version = v;
    }
    let kind = match args.bind {
        ListenBind::Receiver => BindKind::Receiver,
        ListenBind::Transceiver => BindKind::Transceiver,
    };
    let (client, inbound) = args
        .connect
        .connect(
            kind,
            SessionConfig::default().with_response_timeout(args.response_timeout),
        )
        .await?;
    tracing::info!(?kind, "bound; listening");
    let mut listener = Listener::new(args.json);
    let end = listener.listen(inbound, args.count, args.timeout).await;
    let received = listener.items;
    listener.flush_incomplete();
    if end != End::Closed {
        let unbind = tokio::time::timeout(args.response_timeout, client.unbind()).await;
        if !matches!(unbind, Ok(Ok(()))) {
            tracing::warn!("unbind did not complete cleanly");
            client.close();
        }
    }
    let reached = args.count.is_none_or(|n| received >= n);
    Ok(match end {
        End::Closed => {
            eprintln!("smpp: error: the SMSC closed the session");
            ExitCode::FAILURE
        }
        _ if !reached => {
            eprintln!(
                "smpp: error: {received} of {} items received",
                args.count.unwrap_or(0)
            );
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Count,
    Timeout,
    Interrupted,
    Closed,
}

struct Listener {
    json: bool,
    reassembler: Reassembler,
    items: u64,
    output_closed: bool,
}

impl Listener {
    fn new(json: bool) -> Self {
        Listener {
            json,
            reassembler: Reassembler::new(ReassemblyConfig::default()),
            items: 0,
            output_closed: false,
        }
    }

    async fn listen(
        &mut self,
        inbound: Inbound,
        count: Option<u64>,
        timeout: Option<Duration>,
    ) -> End {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            if count.is_some_and(|n| self.items >= n) {
                return End::Count;
            }
            if self.output_closed {
                return End::Interrupted;
            }
            let reassembly_timer = self.reassembler.poll_timeout();
            tokio::select! {
                request = inbound.recv() => match request {
                    Some(request) => self.handle(request),
                    None => return End::Closed,
                },
                () = sleep_until(deadline) => return End::Timeout,
                () = sleep_until(reassembly_timer.map(tokio::time::Instant::from_std)) => {
                    self.reassembler.handle_timeout(Instant::now());
                }
                _ = &mut ctrl_c => return End::Interrupted,
            }
            while let Some(event) = self.reassembler.poll_event() {
                self.incomplete(event, false);
            }
        }
    }

    /// Prints one request; dropping it answers it with status 0.
    fn handle(&mut self, request: InboundRequest) {
        let body = request.body();
        let command = request.pdu().command_id().to_string();
        if let Some(receipt) = request.receipt() {
            let (from, to) = addresses(body);
            let report = ReceiptReport::new(&receipt);
            self.item(
                format!("receipt from {from} to {to}: {}", report.summary()),
                json!({"type": "receipt", "command": command, "from": from, "to": to,
                       "id": report.id, "state": report.state, "receipt": report}),
            );
            return;
        }
        let part = match body {
            Body::DeliverSm(sm) => IncomingPart::from_deliver_sm(sm),
            Body::DataSm(sm) => IncomingPart::from_data_sm(sm),
            _ => {
                self.item(
                    format!("{command} (not a message)"),
                    json!({"type": "other", "command": command}),
                );
                return;
            }
        };
        let esm_class = match body {
            Body::DeliverSm(sm) => sm.esm_class,
            Body::DataSm(sm) => sm.esm_class,
            _ => 0,
        };
        let (from, to) = addresses(body);
        let part = match part {
            Ok(part) => part,
            Err(e) => {
                self.item(
                    format!("message from {from} to {to}: bad user data header: {e}"),
                    json!({"type": "message", "command": command, "from": from, "to": to,
                           "esm_class": esm_class, "error": format!("bad user data header: {e}")}),
                );
                return;
            }
        };
        match self.reassembler.handle_part(Instant::now(), part) {
            Ok(PartOutcome::Complete(message)) => {
                let features = MessageFeatures::of(&message, body.tlvs().unwrap_or(&Tlvs::new()));
                self.message(&command, esm_class, &message, &features);
            }
            Ok(PartOutcome::Pending) => tracing::info!(%from, %to, "part stored"),
            Ok(PartOutcome::Duplicate) => tracing::info!(%from, %to, "duplicate part ignored"),
            Err(e) => self.item(
                format!("message from {from} to {to}: {e}"),
                json!({"type": "message", "command": command, "from": from, "to": to,
                       "esm_class": esm_class, "error": e.to_string()}),
            ),
        }
    }

    fn message(
        &mut self,
        command: &str,
        esm_class: u8,
        m: &ReassembledMessage,
        features: &MessageFeatures,
    ) {
        let parts = m.parts.len();
        let dc = m.data_coding.0;
        let (head, mut content_text, extra) = describe(features);
        let decoded = if features.has_text() {
            m.decode_text(&DecodeOptions::default())
        } else {
            // A push's user data is WSP octets, shown as hex beside what it decodes to.
            Err(smpp_proto::message::coding::DecodeError::Binary(
                m.data_coding.0,
            ))
        };
        let (text, content) = match decoded {
            Ok(text) => (format!("{text:?}"), json!({"text": text})),
            Err(smpp_proto::message::coding::DecodeError::Binary(_)) => {
                let h = hex(&m.payload());
                (format!("binary {h}"), json!({"binary": h}))
            }
            Err(e) => (format!("undecodable: {e}"), json!({"error": e.to_string()})),
        };
        let udh: Option<Vec<_>> = m
            .udh
            .as_ref()
            .map(|u| u.elements.iter().map(udh_element).collect());
        let mut object = json!({"type": "message", "kind": features.kind().name(),
            "command": command, "from": m.source,
            "to": m.destination, "data_coding": dc, "esm_class": esm_class, "parts": parts});
        if let (Value::Object(o), Value::Object(c), Value::Object(e)) =
            (&mut object, content, extra)
        {
            o.extend(c);
            o.extend(e);
            if let Some(udh) = &udh {
                o.insert("udh".into(), json!(udh));
            }
        }
        // A push shows what it decodes to; anything else its text.
        if content_text.is_empty() {
            content_text = text;
        }
        if let Some(b) = &features.billing {
            let mut octets = vec![b.format];
            octets.extend_from_slice(&b.data);
            content_text.push_str(&format!(" [billing_id {}]", hex(&octets)));
        }
        self.item(
            format!(
                "{head} from {} to {} ({parts} part{}, data_coding 0x{dc:02x}): {content_text}",
                m.source,
                m.destination,
                if parts == 1 { "" } else { "s" }
            ),
            object,
        );
    }

    /// Reports the messages still waiting for parts (the listening ends).
    fn flush_incomplete(&mut self) {
        if self.output_closed {
            return;
        }
        let later = Instant::now() + self.reassembler.config().timeout + Duration::from_secs(1);
        self.reassembler.handle_timeout(later);
        while let Some(event) = self.reassembler.poll_event() {
            self.incomplete(event, true);
        }
    }

    fn incomplete(&mut self, event: ReassemblyEvent, ended: bool) {
        let (reason, m) = match event {
            ReassemblyEvent::Expired(m) if ended => ("ended", m),
            ReassemblyEvent::Expired(m) => ("expired", m),
            ReassemblyEvent::Evicted(m) => ("evicted", m),
            other => {
                tracing::warn!(?other, "reassembly event");
                return;
            }
        };
        self.item(
            format!(
                "incomplete message from {} to {} ({reason}): {} of {} parts",
                m.key.source,
                m.key.destination,
                m.parts.len(),
                m.key.total
            ),
            json!({"type": "incomplete", "from": m.key.source, "to": m.key.destination,
                   "reference": m.key.reference, "total": m.key.total,
                   "received": m.parts.len(), "reason": reason}),
        );
    }

    fn item(&mut self, text: String, object: Value) {
        use std::io::Write as _;
        self.items += 1;
        let mut out = std::io::stdout().lock();
        let written = if self.json {
            writeln!(out, "{object}")
        } else {
            writeln!(out, "{text}")
        };
        // Nobody reads any more (`smpp listen | head`): stop listening.
        if written.and_then(|()| out.flush()).is_err() {
            self.output_closed = true;
        }
    }
}

/// How a recognised message is shown: the line's head ("WAP push SI", "MWI set
/// voicemail (3 waiting)", ...), its text before the content (the URL...), and the JSON
/// fields that describe it.
fn describe(f: &MessageFeatures) -> (String, String, Value) {
    let mut extra = serde_json::Map::new();
    let mut head = String::from("message");
    let mut text = String::new();
    match &f.push {
        Some(Ok(push)) => {
            let mut p = json!({"tid": push.tid, "content_type": push.content_type,
                "application_id": push.application_id, "url": push.url()});
            let details = match &push.content {
                PushContent::ServiceIndication(si) => {
                    head = "WAP push SI".into();
                    text = format!("{} {:?}", si.href, si.text);
                    json!({"text": si.text, "si_id": si.si_id, "created": si.created,
                        "expires": si.expires, "action": si.action.map(|a| format!("{a:?}"))})
                }
                PushContent::ServiceLoading(sl) => {
                    head = "WAP push SL".into();
                    text.clone_from(&sl.href);
                    json!({"action": sl.action.map(|a| format!("{a:?}"))})
                }
                PushContent::MmsNotification(n) => {
                    head = "MMS notification".into();
                    text = format!(
                        "{} (transaction {}, {} octets{})",
                        n.content_location,
                        n.transaction_id,
                        n.size,
                        n.subject
                            .as_ref()
                            .map(|s| format!(", subject {s:?}"))
                            .unwrap_or_default()
                    );
                    let expiry = match n.expiry {
                        MmsExpiry::Absolute(s) => json!({"absolute": s}),
                        MmsExpiry::Relative(s) => json!({"relative": s}),
                    };
                    json!({"transaction_id": n.transaction_id,
                        "version": format!("{}.{}", n.version.0, n.version.1),
                        "from": n.from, "subject": n.subject, "class": n.class.name(),
                        "size": n.size, "expiry": expiry,
                        "content_location": n.content_location})
                }
                _ => {
                    head = format!("WAP push {}", push.content_type);
                    json!({})
                }
            };
            if let (Value::Object(p), Value::Object(d)) = (&mut p, details) {
                p.extend(d);
            }
            extra.insert("wap_push".into(), p);
        }
        Some(Err(e)) => {
            head = "WAP push (undecodable)".into();
            text = e.to_string();
            extra.insert("wap_push_error".into(), json!(e.to_string()));
        }
        None => {}
    }
    if !f.message_waiting.is_empty() {
        let kind = |k: MwiKind| match k {
            MwiKind::Voicemail => "voicemail",
            MwiKind::Fax => "fax",
            MwiKind::Email => "email",
            MwiKind::Other => "other",
        };
        if f.push.is_none() && f.ussd.is_none() {
            let w = &f.message_waiting[0];
            head = format!(
                "MWI {} {}{}",
                if w.active { "set" } else { "clear" },
                kind(w.kind),
                w.count
                    .map(|c| format!(" ({c} waiting)"))
                    .unwrap_or_default()
            );
        }
        let list: Vec<Value> = f
            .message_waiting
            .iter()
            .map(|w| json!({"active": w.active, "kind": kind(w.kind), "count": w.count}))
            .collect();
        extra.insert("mwi".into(), json!(list));
    }
    if let Some(u) = &f.ussd {
        if f.push.is_none() {
            head = format!(
                "USSD {}{}",
                u.op.name(),
                u.session
                    .map(|s| format!(
                        " (session {}, sequence {}{})",
                        s.session_number,
                        s.sequence_number,
                        if s.end_of_session { ", end" } else { "" }
                    ))
                    .unwrap_or_default()
            );
        }
        extra.insert(
            "ussd".into(),
            json!({"op": u.op.to_u8(), "name": u.op.name(),
                "session": u.session.map(|s| s.session_number),
                "sequence": u.session.map(|s| s.sequence_number),
                "end_of_session": u.session.map(|s| s.end_of_session)}),
        );
    }
    if let Some(b) = &f.billing {
        let mut octets = vec![b.format];
        octets.extend_from_slice(&b.data);
        extra.insert("billing_id".into(), json!(hex(&octets)));
    }
    (head, text, Value::Object(extra))
}

fn addresses(body: &Body) -> (String, String) {
    match body {
        Body::DeliverSm(sm) => (
            sm.source_addr.to_string_lossy().into_owned(),
            sm.destination_addr.to_string_lossy().into_owned(),
        ),
        Body::DataSm(sm) => (
            sm.source_addr.to_string_lossy().into_owned(),
            sm.destination_addr.to_string_lossy().into_owned(),
        ),
        _ => (String::new(), String::new()),
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
