//! `smpp listen`: bind as a receiver (or transceiver) and print every
//! `deliver_sm` / `data_sm`: mobile-originated messages decoded and
//! reassembled, delivery receipts parsed. Every request is answered OK.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use smpp_proto::message::reassembly::{ReassembledMessage, ReassemblyEvent};
use smpp_proto::message::{
    DecodeOptions, IncomingPart, PartOutcome, Reassembler, ReassemblyConfig,
};
use smpp_proto::pdu::Body;
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
    {\"type\":\"message\", \"command\":\"deliver_sm\"|\"data_sm\", \"from\", \"to\", \
    \"data_coding\", \"esm_class\", \"parts\", \"text\" (decoded per data_coding) or \
    \"binary\" (hex) or \"error\", \"udh\": [{iei, name, detail}] (other than concatenation)}\n  \
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
pub async fn run(args: ListenArgs) -> anyhow::Result<ExitCode> {
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
            Ok(PartOutcome::Complete(message)) => self.message(&command, esm_class, &message),
            Ok(PartOutcome::Pending) => tracing::info!(%from, %to, "part stored"),
            Ok(PartOutcome::Duplicate) => tracing::info!(%from, %to, "duplicate part ignored"),
            Err(e) => self.item(
                format!("message from {from} to {to}: {e}"),
                json!({"type": "message", "command": command, "from": from, "to": to,
                       "esm_class": esm_class, "error": e.to_string()}),
            ),
        }
    }

    fn message(&mut self, command: &str, esm_class: u8, m: &ReassembledMessage) {
        let parts = m.parts.len();
        let dc = m.data_coding.0;
        let (content_text, content) = match m.decode_text(&DecodeOptions::default()) {
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
        let mut object = json!({"type": "message", "command": command, "from": m.source,
            "to": m.destination, "data_coding": dc, "esm_class": esm_class, "parts": parts});
        if let (Value::Object(o), Value::Object(c)) = (&mut object, content) {
            o.extend(c);
            if let Some(udh) = &udh {
                o.insert("udh".into(), json!(udh));
            }
        }
        self.item(
            format!(
                "message from {} to {} ({parts} part{}, data_coding 0x{dc:02x}): {content_text}",
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
