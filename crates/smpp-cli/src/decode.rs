//! `smpp decode`: hex PDUs to every header field, body field and TLV by name,
//! the short message decoded per `data_coding` (UDH shown), receipts parsed.
//!
//! All the protocol work is smpp-proto's: framing and validation
//! ([`pdu::decode`]), field names ([`Body::for_each_field`](smpp_proto::pdu::Body::for_each_field)), text decoding
//! ([`decode_user_data`]) and receipts ([`DeliveryReceipt::from_body`]). This
//! module only turns hex into bytes and reports into text or JSON.

use std::fmt::Write as _;
use std::io::{BufRead, Write as _};
use std::process::ExitCode;

use bytes::{Bytes, BytesMut};
use clap::Args;
use serde::Serialize;
use serde_json::Value;
use smpp_proto::message::coding::{decode_user_data, Content};
use smpp_proto::message::{
    DataCoding, DecodeOptions, DeliveryReceipt, InformationElement, UserDataHeader,
};
use smpp_proto::pdu::{
    self, DecodeConfig, DecodeError, Decoded, FieldValue, Pdu, TlvKind, TlvTag, Tlvs,
};

/// Longest input line read (hex characters and separators); longer lines are refused.
const MAX_LINE: usize = 1 << 20;

/// Arguments of `smpp decode`.
#[derive(Debug, Args)]
#[command(after_long_help = "INPUT:\n  \
    Hex digits; whitespace, colons, commas, dashes and `0x` prefixes are ignored. The arguments are \
    read as one continuous stream of PDUs, split by command_length. Without arguments, stdin \
    is read: each line holds one or more whole PDUs (blank lines and lines starting with `#` \
    are skipped), or, with --stream, all of stdin is one continuous stream (hex dumps wrapped \
    over lines).\n\n\
    ERRORS:\n  \
    A PDU that does not decode is reported on stderr with the byte offset of the problem \
    (from the start of the PDU and from the start of the line or stream) and the status an \
    MC would answer with; decoding goes on with the next PDU when the framing allows it. \
    Exit code 1 when anything failed, 0 otherwise.\n\n\
    JSON (--json):\n  \
    One object per PDU and line: offset, command_length, command_id, command, \
    command_status, status, sequence_number, fields ([{name, value}] in wire order; octet \
    fields as hex), tlvs ([{tag, name, length, hex, value}]), message (data_coding, \
    alphabet, udh [{iei, name, detail}], text or binary hex, error) when the PDU carries \
    user data, receipt (id, state, state_value, is_final, stat, submitted, delivered, submit_date, \
    done_date, error, text, network_error) when it is a delivery receipt. Errors are objects with an \
    `error` member: {error, line, offset, pdu_offset, command, status, fatal}.")]
pub struct DecodeArgs {
    /// Hex PDUs (read from stdin when none is given).
    #[arg(value_name = "HEX")]
    pub hex: Vec<String>,
    /// Print one JSON object per PDU and line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Read stdin as one continuous hex stream instead of line by line.
    #[arg(long)]
    pub stream: bool,
}

/// Runs `smpp decode`.
pub fn run(args: DecodeArgs) -> anyhow::Result<ExitCode> {
    let mut out = Output::new(args.json);
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let flush = |out: &mut Output| -> anyhow::Result<()> {
        let mut o = stdout.lock();
        o.write_all(out.stdout.as_bytes())?;
        o.flush()?;
        stderr.lock().write_all(out.stderr.as_bytes())?;
        out.stdout.clear();
        out.stderr.clear();
        Ok(())
    };
    let mut decoded_any = false;
    if !args.hex.is_empty() {
        let joined = args.hex.join(" ");
        decoded_any |= decode_chunks(std::iter::once(joined), false, &mut out);
        flush(&mut out)?;
    } else {
        let stdin = std::io::stdin();
        let mut reader = stdin.lock();
        let mut stream = Stream::new(None);
        let mut line_no = 0usize;
        loop {
            let line = match read_line(&mut reader)? {
                Line::Eof => break,
                Line::TooLong => {
                    line_no += 1;
                    out.error_line(line_no, "line too long");
                    continue;
                }
                Line::Text(l) => l,
            };
            line_no += 1;
            if args.stream {
                match parse_hex(&line) {
                    Ok(bytes) => stream.feed(&bytes, &mut out),
                    Err(e) => out.error_line(line_no, &e),
                }
            } else {
                let trimmed = line.trim();
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                decoded_any |= decode_line(line_no, &line, &mut out);
            }
            flush(&mut out)?;
        }
        if args.stream {
            stream.finish(&mut out);
            decoded_any |= stream.pdus > 0 || stream.errors > 0;
        }
        flush(&mut out)?;
    }
    if !decoded_any && !out.failed {
        out.error_line(0, "no PDU in the input");
        flush(&mut out)?;
    }
    Ok(if out.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

enum Line {
    Eof,
    TooLong,
    Text(String),
}

/// Reads one line of at most [`MAX_LINE`] octets (the rest of a longer line is skipped).
fn read_line(reader: &mut impl BufRead) -> std::io::Result<Line> {
    let mut buf = Vec::new();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let n = chunk.len();
        if !too_long {
            if buf.len() + n > MAX_LINE {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        reader.consume(n);
        if done {
            break;
        }
    }
    if too_long {
        return Ok(Line::TooLong);
    }
    if buf.is_empty() {
        return Ok(Line::Eof);
    }
    Ok(Line::Text(String::from_utf8_lossy(&buf).into_owned()))
}

/// Decodes the given chunks (each one a stream of whole PDUs, or all one stream), as the
/// command does; returns whether anything was found. Used by the tests.
pub fn decode_chunks(
    chunks: impl IntoIterator<Item = String>,
    one_stream: bool,
    out: &mut Output,
) -> bool {
    let mut any = false;
    if one_stream {
        let mut stream = Stream::new(None);
        for (i, chunk) in chunks.into_iter().enumerate() {
            match parse_hex(&chunk) {
                Ok(bytes) => stream.feed(&bytes, out),
                Err(e) => out.error_line(i + 1, &e),
            }
        }
        stream.finish(out);
        any |= stream.pdus > 0 || stream.errors > 0;
    } else {
        for (i, chunk) in chunks.into_iter().enumerate() {
            any |= decode_line(i + 1, &chunk, out);
        }
    }
    any
}

/// One line (or the joined arguments) as its own stream; returns whether it held anything.
fn decode_line(line_no: usize, line: &str, out: &mut Output) -> bool {
    let bytes = match parse_hex(line) {
        Ok(b) => b,
        Err(e) => {
            out.error_line(line_no, &e);
            return true;
        }
    };
    if bytes.is_empty() {
        return false;
    }
    let mut stream = Stream::new(Some(line_no));
    stream.feed(&bytes, out);
    stream.finish(out);
    true
}

/// Hex digits to bytes; whitespace, `:`, `,`, `-` and `0x` prefixes are separators.
pub fn parse_hex(input: &str) -> Result<Vec<u8>, String> {
    let mut digits = Vec::with_capacity(input.len());
    let bytes = input.as_bytes();
    let mut i = 0;
    let mut token_start = true;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() || matches!(c, b':' | b',' | b'-') {
            token_start = true;
            i += 1;
            continue;
        }
        if token_start && c == b'0' && matches!(bytes.get(i + 1), Some(b'x' | b'X')) {
            i += 2;
            token_start = false;
            continue;
        }
        token_start = false;
        match (c as char).to_digit(16) {
            Some(d) => digits.push(d as u8),
            None => {
                let column = input[..i].chars().count() + 1;
                let ch = input[i..].chars().next().unwrap_or('?');
                return Err(format!("not hex: {ch:?} at column {column}"));
            }
        }
        i += 1;
    }
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    Ok(digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

/// Where decoded PDUs and errors go, as text or JSON lines.
#[derive(Debug, Default)]
pub struct Output {
    json: bool,
    /// What goes to stdout.
    pub stdout: String,
    /// What goes to stderr.
    pub stderr: String,
    /// Something failed: the exit code is 1.
    pub failed: bool,
    printed: usize,
}

impl Output {
    /// An empty output, text or JSON.
    pub fn new(json: bool) -> Self {
        Output {
            json,
            ..Default::default()
        }
    }

    fn error_line(&mut self, line: usize, message: &str) {
        self.failed = true;
        let prefix = if line > 0 {
            format!("line {line}: ")
        } else {
            String::new()
        };
        let _ = writeln!(self.stderr, "smpp: {prefix}{message}");
        if self.json {
            let v = serde_json::json!({ "error": message, "line": (line > 0).then_some(line) });
            let _ = writeln!(self.stdout, "{v}");
        }
    }

    fn decode_error(&mut self, line: Option<usize>, pdu_start: usize, e: &DecodeError) {
        self.failed = true;
        let at = pdu_start + e.offset();
        let prefix = line.map(|l| format!("line {l}: ")).unwrap_or_default();
        let fatal = if e.is_fatal() {
            "; the stream cannot be framed after it"
        } else {
            ""
        };
        let _ = writeln!(
            self.stderr,
            "smpp: {prefix}{} at byte {at} (byte {} of the PDU at {pdu_start}); an MC answers {}{fatal}",
            e.kind(),
            e.offset(),
            e.status(),
        );
        if self.json {
            let v = serde_json::json!({
                "error": e.kind().to_string(),
                "line": line,
                "offset": at,
                "pdu_offset": pdu_start,
                "command": e.command_id().to_string(),
                "status": e.status().to_string(),
                "fatal": e.is_fatal(),
            });
            let _ = writeln!(self.stdout, "{v}");
        }
    }

    fn truncated(&mut self, line: Option<usize>, pdu_start: usize, have: usize, needed: usize) {
        self.failed = true;
        let prefix = line.map(|l| format!("line {l}: ")).unwrap_or_default();
        let _ = writeln!(
            self.stderr,
            "smpp: {prefix}truncated PDU at byte {pdu_start}: {have} octets, {needed} more needed"
        );
        if self.json {
            let v = serde_json::json!({
                "error": format!("truncated PDU: {have} octets, {needed} more needed"),
                "line": line,
                "offset": pdu_start + have,
                "pdu_offset": pdu_start,
            });
            let _ = writeln!(self.stdout, "{v}");
        }
    }

    fn pdu(&mut self, report: &PduReport) {
        if self.json {
            match serde_json::to_string(report) {
                Ok(s) => {
                    let _ = writeln!(self.stdout, "{s}");
                }
                Err(e) => {
                    let _ = writeln!(self.stderr, "smpp: cannot write JSON: {e}");
                    self.failed = true;
                }
            }
        } else {
            if self.printed > 0 {
                self.stdout.push('\n');
            }
            report.write_text(&mut self.stdout);
        }
        self.printed += 1;
    }
}

/// A byte stream split into PDUs by command_length.
struct Stream {
    line: Option<usize>,
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    offset: usize,
    /// A framing error: the rest of the stream cannot be split.
    dead: bool,
    pdus: usize,
    errors: usize,
}

impl Stream {
    fn new(line: Option<usize>) -> Self {
        Stream {
            line,
            buf: BytesMut::new(),
            offset: 0,
            dead: false,
            pdus: 0,
            errors: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8], out: &mut Output) {
        if self.dead {
            self.offset += bytes.len();
            return;
        }
        self.buf.extend_from_slice(bytes);
        let config = DecodeConfig::default();
        loop {
            let start = self.offset;
            let before = self.buf.len();
            let length = match pdu::frame_len(&self.buf, &config) {
                Ok(Some(len)) => len,
                Ok(None) => return,
                Err(e) => {
                    self.fail(start, &e, out);
                    return;
                }
            };
            if self.buf.len() < length {
                return;
            }
            match pdu::decode(&mut self.buf, &config) {
                Ok(Decoded::Pdu(p)) => {
                    self.pdus += 1;
                    out.pdu(&PduReport::new(start, length, &p));
                }
                Ok(Decoded::Partial { .. }) => return,
                Err(e) if e.is_fatal() => {
                    self.fail(start, &e, out);
                    return;
                }
                Err(e) => {
                    self.errors += 1;
                    out.decode_error(self.line, start, &e);
                }
            }
            self.offset += before - self.buf.len();
        }
    }

    fn fail(&mut self, start: usize, e: &DecodeError, out: &mut Output) {
        self.errors += 1;
        out.decode_error(self.line, start, e);
        self.dead = true;
        self.offset += self.buf.len();
        self.buf.clear();
    }

    fn finish(&mut self, out: &mut Output) {
        if self.dead || self.buf.is_empty() {
            return;
        }
        let have = self.buf.len();
        let needed = match pdu::frame_len(&self.buf, &DecodeConfig::default()) {
            Ok(Some(len)) => len.saturating_sub(have),
            _ => pdu::HEADER_LEN.saturating_sub(have),
        };
        self.errors += 1;
        out.truncated(self.line, self.offset, have, needed);
        self.buf.clear();
    }
}

/// Everything `smpp decode` says about one PDU.
#[derive(Debug, Serialize)]
pub struct PduReport {
    /// Byte offset of the PDU in its line or stream.
    pub offset: usize,
    /// `command_length`.
    pub command_length: usize,
    /// `command_id`.
    pub command_id: u32,
    /// Its name (or hex when unknown).
    pub command: String,
    /// `command_status`.
    pub command_status: u32,
    /// Its name.
    pub status: String,
    /// `sequence_number`.
    pub sequence_number: u32,
    /// Body fields in wire order.
    pub fields: Vec<FieldReport>,
    /// TLVs in wire order.
    pub tlvs: Vec<TlvReport>,
    /// The user data, decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageReport>,
    /// The delivery receipt it carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ReceiptReport>,
}

/// One body field.
#[derive(Debug, Serialize)]
pub struct FieldReport {
    /// The specification's name.
    pub name: &'static str,
    /// A number, a string, or hex for octets.
    pub value: Value,
}

/// One TLV.
#[derive(Debug, Serialize)]
pub struct TlvReport {
    /// The tag.
    pub tag: u16,
    /// Its name (or hex when unknown).
    pub name: String,
    /// Value length.
    pub length: usize,
    /// The raw value in hex.
    pub hex: String,
    /// The value read per the tag's kind (integer or text), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// The user data of a message-carrying PDU.
#[derive(Debug, Serialize)]
pub struct MessageReport {
    /// `data_coding`.
    pub data_coding: u8,
    /// The alphabet it selects.
    pub alphabet: String,
    /// UDH information elements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udh: Option<Vec<UdhElementReport>>,
    /// Decoded text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Binary content in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
    /// Why the user data could not be decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One UDH information element.
#[derive(Debug, Serialize)]
pub struct UdhElementReport {
    /// IEI.
    pub iei: u8,
    /// What it is.
    pub name: &'static str,
    /// Its parameters.
    pub detail: String,
}

/// A parsed delivery receipt.
#[derive(Debug, Serialize)]
pub struct ReceiptReport {
    /// The receipted message id.
    pub id: String,
    /// The state's stat word (`DELIVRD`...).
    pub state: &'static str,
    /// The `message_state` value of the state.
    pub state_value: u8,
    /// Whether the state is final.
    pub is_final: bool,
    /// The `stat:` word as received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stat: Option<String>,
    /// `sub:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted: Option<u32>,
    /// `dlvrd:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered: Option<u32>,
    /// `submit date:` as received digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submit_date: Option<String>,
    /// `done date:` as received digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_date: Option<String>,
    /// `err:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `text:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `network_error_code` TLV as `type:code`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_error: Option<String>,
}

impl ReceiptReport {
    /// The report of a parsed receipt.
    pub fn new(r: &DeliveryReceipt) -> Self {
        ReceiptReport {
            id: r.id.clone(),
            state: r.state.stat_word(),
            state_value: r.state.to_u8(),
            is_final: r.state.is_final(),
            stat: r.stat_word.clone(),
            submitted: r.submitted,
            delivered: r.delivered,
            submit_date: r.submit_date.map(|d| d.to_receipt_string()),
            done_date: r.done_date.map(|d| d.to_receipt_string()),
            error: r.error.clone(),
            text: r.text.clone(),
            network_error: r
                .network_error
                .map(|n| format!("{}:{}", n.network_type, n.error_code)),
        }
    }

    /// One line: `id ... stat DELIVRD err 000 ...`.
    pub fn summary(&self) -> String {
        let mut s = format!("id {:?} state {}", self.id, self.state);
        let mut opt = |label: &str, v: Option<String>| {
            if let Some(v) = v {
                let _ = write!(s, " {label} {v}");
            }
        };
        opt("sub", self.submitted.map(|v| v.to_string()));
        opt("dlvrd", self.delivered.map(|v| v.to_string()));
        opt("submit_date", self.submit_date.clone());
        opt("done_date", self.done_date.clone());
        opt("err", self.error.clone());
        opt("network_error", self.network_error.clone());
        opt(
            "text",
            self.text
                .as_ref()
                .filter(|t| !t.is_empty())
                .map(|t| format!("{t:?}")),
        );
        s
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn field_value(v: &FieldValue<'_>) -> Value {
    match v {
        FieldValue::Int(n) => Value::from(*n),
        FieldValue::Str(s) | FieldValue::Time(s) => Value::from(s.to_string_lossy().into_owned()),
        FieldValue::Octets(o) => Value::from(hex(o)),
        other => Value::from(format!("{other:?}")),
    }
}

fn tlv_report(tag: TlvTag, value: &[u8]) -> TlvReport {
    let typed = match tag.info().map(|i| i.kind) {
        Some(TlvKind::Integer) if (1..=4).contains(&value.len()) => Some(Value::from(
            value.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)),
        )),
        Some(TlvKind::CString | TlvKind::Time) => {
            let text = value.strip_suffix(&[0]).unwrap_or(value);
            Some(Value::from(String::from_utf8_lossy(text).into_owned()))
        }
        _ => None,
    };
    TlvReport {
        tag: tag.get(),
        name: tag.to_string(),
        length: value.len(),
        hex: hex(value),
        value: typed,
    }
}

/// Describes one UDH element.
pub fn udh_element(ie: &InformationElement) -> UdhElementReport {
    let (name, detail) = match ie {
        InformationElement::Concat8 {
            reference,
            total,
            seq,
        } => (
            "concat8",
            format!("reference {reference}, part {seq} of {total}"),
        ),
        InformationElement::Concat16 {
            reference,
            total,
            seq,
        } => (
            "concat16",
            format!("reference {reference}, part {seq} of {total}"),
        ),
        InformationElement::SpecialSmsIndication { indication, count } => (
            "special_sms_indication",
            format!("indication 0x{indication:02x}, count {count}"),
        ),
        InformationElement::AppPort8 {
            destination,
            originator,
        } => (
            "app_port8",
            format!("destination {destination}, originator {originator}"),
        ),
        InformationElement::AppPort16 {
            destination,
            originator,
        } => (
            "app_port16",
            format!("destination {destination}, originator {originator}"),
        ),
        InformationElement::NationalSingleShift(l) => {
            ("national_single_shift", format!("language {l}"))
        }
        InformationElement::NationalLockingShift(l) => {
            ("national_locking_shift", format!("language {l}"))
        }
        InformationElement::Other { data, .. } => ("other", hex(data)),
        other => ("other", format!("{other:?}")),
    };
    UdhElementReport {
        iei: ie.iei(),
        name,
        detail,
    }
}

/// Decodes user data (`short_message` or `message_payload`) per `data_coding`, with the UDH
/// when `esm_class` has UDHI.
pub fn message_report(data_coding: u8, esm_class: u8, user_data: &Bytes) -> MessageReport {
    let dc = DataCoding(data_coding);
    let mut report = MessageReport {
        data_coding,
        alphabet: format!("{:?}", dc.alphabet()),
        udh: None,
        text: None,
        binary: None,
        error: None,
    };
    match decode_user_data(dc, esm_class, user_data, &DecodeOptions::default()) {
        Ok(decoded) => {
            report.udh = decoded.udh.as_ref().map(udh_elements);
            match decoded.content {
                Content::Text(t) => report.text = Some(t),
                Content::Binary(b) => report.binary = Some(hex(&b)),
            }
        }
        Err(e) => report.error = Some(e.to_string()),
    }
    report
}

fn udh_elements(udh: &UserDataHeader) -> Vec<UdhElementReport> {
    udh.elements.iter().map(udh_element).collect()
}

impl PduReport {
    /// The report of a decoded PDU found at `offset`, `length` octets long.
    pub fn new(offset: usize, length: usize, p: &Pdu) -> Self {
        let mut fields = Vec::new();
        let mut tlvs: Option<&Tlvs> = None;
        let mut data_coding = None;
        let mut esm_class = 0u8;
        let mut short_message: Option<&[u8]> = None;
        p.body.for_each_field(|f| {
            match (f.name, &f.value) {
                ("data_coding", FieldValue::Int(v)) => data_coding = Some(*v as u8),
                ("esm_class", FieldValue::Int(v)) => esm_class = *v as u8,
                ("short_message", FieldValue::Octets(o)) => short_message = Some(o),
                _ => {}
            }
            if let FieldValue::Tlvs(t) = f.value {
                tlvs = Some(t);
            } else {
                fields.push(FieldReport {
                    name: f.name,
                    value: field_value(&f.value),
                });
            }
        });
        let payload = tlvs.and_then(|t| t.get_bytes(TlvTag::MESSAGE_PAYLOAD));
        let message = data_coding.and_then(|dc| {
            let user_data = match (short_message, payload) {
                (Some(sm), _) if !sm.is_empty() => Bytes::copy_from_slice(sm),
                (_, Some(p)) => p,
                (Some(_), None) => Bytes::new(),
                (None, None) => return None,
            };
            Some(message_report(dc, esm_class, &user_data))
        });
        let receipt = DeliveryReceipt::from_body(&p.body, &DecodeOptions::default())
            .map(|r| ReceiptReport::new(&r));
        let id = p.command_id();
        PduReport {
            offset,
            command_length: length,
            command_id: id.get(),
            command: id.to_string(),
            command_status: p.command_status.get(),
            status: p.command_status.to_string(),
            sequence_number: p.sequence_number.get(),
            fields,
            tlvs: tlvs
                .map(|t| t.iter().map(|tlv| tlv_report(tlv.tag, tlv.value)).collect())
                .unwrap_or_default(),
            message,
            receipt,
        }
    }

    /// The text form.
    pub fn write_text(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "{} ({} octets at offset {})",
            self.command, self.command_length, self.offset
        );
        let row = |out: &mut String, name: &str, value: &str| {
            let _ = writeln!(out, "  {name:<24} {value}");
        };
        row(out, "command_length", &self.command_length.to_string());
        row(
            out,
            "command_id",
            &format!("0x{:08x} {}", self.command_id, self.command),
        );
        row(
            out,
            "command_status",
            &format!("0x{:08x} {}", self.command_status, self.status),
        );
        row(out, "sequence_number", &self.sequence_number.to_string());
        for f in &self.fields {
            let value = match &f.value {
                Value::String(s) if f.name == "short_message" || f.name == "body" => {
                    format!(
                        "{} ({} octets)",
                        if s.is_empty() { "-" } else { s },
                        s.len() / 2
                    )
                }
                Value::String(s) => format!("{s:?}"),
                v => v.to_string(),
            };
            row(out, f.name, &value);
        }
        for t in &self.tlvs {
            let value = match &t.value {
                Some(Value::String(s)) => format!(" = {s:?}"),
                Some(v) => format!(" = {v}"),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "  tlv 0x{:04x} {:<30} len {:<3} {}{value}",
                t.tag,
                t.name,
                t.length,
                if t.hex.is_empty() { "-" } else { &t.hex },
            );
        }
        if let Some(m) = &self.message {
            let _ = writeln!(
                out,
                "  message: data_coding 0x{:02x} ({})",
                m.data_coding, m.alphabet
            );
            for e in m.udh.iter().flatten() {
                let _ = writeln!(out, "    udh {} (0x{:02x}) {}", e.name, e.iei, e.detail);
            }
            if let Some(t) = &m.text {
                let _ = writeln!(out, "    text {t:?}");
            }
            if let Some(b) = &m.binary {
                let _ = writeln!(out, "    binary {b}");
            }
            if let Some(e) = &m.error {
                let _ = writeln!(out, "    undecodable: {e}");
            }
        }
        if let Some(r) = &self.receipt {
            let _ = writeln!(out, "  receipt: {}", r.summary());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_separators_and_prefixes() {
        assert_eq!(
            parse_hex("0x00 0X1a:2B,ff-00"),
            Ok(vec![0, 0x1a, 0x2b, 0xff, 0])
        );
        assert_eq!(parse_hex(""), Ok(vec![]));
        assert!(parse_hex("abc").unwrap_err().contains("odd"));
        assert!(parse_hex("00zz").unwrap_err().contains("column 3"));
        // A `0x` inside a token is not a prefix.
        assert!(parse_hex("000x").is_err());
    }

    #[test]
    fn stream_split_by_command_length() {
        let mut out = Output::new(false);
        let two = "00000010000000150000000000000007 00000010800000150000000000000007";
        assert!(decode_chunks([two.to_string()], false, &mut out));
        assert!(!out.failed);
        assert_eq!(out.stdout.matches("enquire_link").count(), 4);
        assert!(out
            .stdout
            .contains("enquire_link_resp (16 octets at offset 16)"));
    }

    #[test]
    fn wrapped_stream() {
        let mut out = Output::new(false);
        let lines = ["0000001000000015", "0000000000000007"].map(String::from);
        assert!(decode_chunks(lines, true, &mut out));
        assert!(!out.failed, "{}", out.stderr);
        assert!(out
            .stdout
            .starts_with("enquire_link (16 octets at offset 0)"));
    }

    /// Arbitrary octets behind plausible headers: never a panic, and every input
    /// octet is either decoded or reported.
    #[test]
    fn arbitrary_input_never_panics() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let ids: Vec<u32> = pdu::CommandId::ALL.iter().map(|c| c.get()).collect();
        for _ in 0..3000 {
            let body_len = (next() % 120) as usize;
            let mut pdu = Vec::new();
            let declared = if next() % 8 == 0 {
                (next() % 200) as u32
            } else {
                (16 + body_len) as u32
            };
            pdu.extend_from_slice(&declared.to_be_bytes());
            let id = ids[(next() % ids.len() as u64) as usize];
            pdu.extend_from_slice(&id.to_be_bytes());
            pdu.extend_from_slice(&((next() % 4) as u32).to_be_bytes());
            pdu.extend_from_slice(&1u32.to_be_bytes());
            for _ in 0..body_len {
                // Mostly small values and NULs, like real bodies.
                let b = next() as u8;
                pdu.push(if b < 128 { b % 4 } else { b });
            }
            for json in [false, true] {
                let mut out = Output::new(json);
                decode_chunks([hex(&pdu)], false, &mut out);
                assert!(out.failed || !out.stdout.is_empty());
            }
        }
    }

    #[test]
    fn line_too_long_is_refused_not_buffered() {
        let long = "0".repeat(MAX_LINE + 10) + "\n00000010000000150000000000000007\n";
        let mut reader = std::io::Cursor::new(long.into_bytes());
        assert!(matches!(read_line(&mut reader), Ok(Line::TooLong)));
        match read_line(&mut reader) {
            Ok(Line::Text(t)) => assert_eq!(t.trim(), "00000010000000150000000000000007"),
            _ => panic!("expected the second line"),
        }
        assert!(matches!(read_line(&mut reader), Ok(Line::Eof)));
    }
}
