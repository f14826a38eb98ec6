//! `smpp send`: bind, submit one message (split into parts when needed),
//! print each part's message id, and optionally wait for the receipts.

use std::collections::{HashMap, VecDeque};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use clap::{ArgGroup, Args, ValueEnum};
use serde_json::json;
use smpp_proto::message::charsets::Charset;
use smpp_proto::message::concat::{CharsetSet, ConcatMode, TextEncoding};
use smpp_proto::message::mms::{MmsExpiry, MmsNotification};
use smpp_proto::message::mwi::{MessageWaiting, MwiKind};
use smpp_proto::message::wap::ServiceIndication;
use smpp_proto::message::{
    Address, DataCoding, DeliveryReceipt, MessageIdFormat, MessageState, ReferenceCounter,
    ShortMessage, UssdServiceOp,
};
use smpp_proto::pdu::{
    Body, COctetString, DataSm, DestAddress, EsmClass, SubmitMulti, SubmitSm, TlvTag,
};
use smpp_proto::session::{BindKind, SendError, SessionConfig};
use smpp_tokio::{Client, Inbound};

use crate::common::ConnectArgs;
use crate::decode::{parse_hex, ReceiptReport};

/// How the text (or the `--hex` octets) is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Coding {
    /// GSM 7-bit when every character has a GSM code, else a character set of
    /// `--smsc-codings` that has them all, else UCS-2 (`--hex`: 8-bit binary,
    /// data_coding 0x04).
    Auto,
    /// GSM 7-bit default alphabet, data_coding 0x00 (unpacked septets).
    Gsm7,
    /// UCS-2 (UTF-16BE), data_coding 0x08.
    Ucs2,
    /// ISO-8859-1, data_coding 0x03.
    Latin1,
    /// ISO-8859-5 (Cyrillic), data_coding 0x06.
    Cyrillic,
    /// ISO-8859-8 (Latin/Hebrew), data_coding 0x07.
    Hebrew,
    /// 8-bit binary, data_coding 0x04 (`--text`: its UTF-8 octets).
    Binary,
}

impl Coding {
    /// The text coding this forces (`None`: automatic, or binary).
    fn text_encoding(self) -> Option<TextEncoding> {
        match self {
            Coding::Auto | Coding::Binary => None,
            Coding::Gsm7 => Some(TextEncoding::GSM7),
            Coding::Ucs2 => Some(TextEncoding::UCS2),
            Coding::Latin1 => Some(TextEncoding::LATIN1),
            Coding::Cyrillic => Some(TextEncoding::CYRILLIC),
            Coding::Hebrew => Some(TextEncoding::HEBREW),
        }
    }
}

/// A single-octet character set the SMSC takes (`--smsc-codings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SmscCoding {
    /// ISO-8859-1, data_coding 0x03.
    Latin1,
    /// ISO-8859-5 (Cyrillic), data_coding 0x06.
    Cyrillic,
    /// ISO-8859-8 (Latin/Hebrew), data_coding 0x07.
    Hebrew,
}

/// The set of character sets `codings` names.
pub fn charset_set(codings: &[SmscCoding]) -> CharsetSet {
    codings.iter().fold(CharsetSet::EMPTY, |set, c| {
        set.with(match c {
            SmscCoding::Latin1 => Charset::Latin1,
            SmscCoding::Cyrillic => Charset::Cyrillic,
            SmscCoding::Hebrew => Charset::Hebrew,
        })
    })
}

/// How `smpp send` binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SendBind {
    /// bind_transceiver: receipts come back on the same bind (needed by --wait-receipt).
    Transceiver,
    /// bind_transmitter.
    Transmitter,
}

/// Arguments of `smpp send`.
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("content").required(true).multiple(true)
        .args(["text", "hex", "wap_push", "mms_notify", "mwi", "ussd"])),
    after_long_help = "OUTPUT:\n  \
    One line per part: `part I/N message_id ID`, or `part I/N error STATUS`. With \
    --wait-receipt, one line per receipt: `part I/N message_id ID state STAT ...` \
    (intermediate receipts too), then `final STAT` when every part has a final receipt. \
    With --json, one object per line instead: {event: submitted|submit_failed|receipt|\
    timeout|final, part, parts, message_id, status, error, receipt: {id, state, stat, \
    submitted, delivered, submit_date, done_date, error, text, network_error}, state}.\n\n\
    EXIT CODE:\n  \
    0 when every part was accepted and, with --wait-receipt, every part's final receipt \
    says DELIVRD in time. 1 on a failed bind or connection, any part answered with an error \
    status or not answered, a receipt wait that times out, or a final state other than \
    DELIVRD (UNDELIV, EXPIRED, REJECTD, DELETED, UNKNOWN, ACCEPTD...). 2 on usage errors."
)]
pub struct SendArgs {
    /// Where to connect and how to bind.
    #[command(flatten)]
    pub connect: Box<ConnectArgs>,
    /// Originator address (`+` or 7+ digits: international; up to 6 digits: short code;
    /// else alphanumeric). Empty lets the SMSC choose.
    #[arg(long, default_value = "")]
    pub from: String,
    /// Recipient address; several `--to` send one submit_multi per part
    /// (`--to dl:NAME` names a distribution list of the SMSC).
    #[arg(long, required = true)]
    pub to: Vec<String>,
    /// The message text.
    #[arg(long)]
    pub text: Option<String>,
    /// The user data as hex octets (sent as they are, split into parts when needed).
    #[arg(long, conflicts_with_all = ["text", "wap_push", "mms_notify", "mwi", "ussd"])]
    pub hex: Option<String>,
    /// Send a WAP push Service Indication for this URL (`--text` is the text shown with
    /// it): 8-bit data on the WAP push ports 2948/9200, concatenated when long.
    #[arg(long, value_name = "URL", conflicts_with_all = ["mms_notify", "mwi", "ussd"])]
    pub wap_push: Option<String>,
    /// Send an MMS notification (M-Notification.ind in a WAP push) whose content location
    /// is this URL (`--text` becomes its subject; see --mms-size, --mms-expiry).
    #[arg(long, value_name = "URL", conflicts_with_all = ["mwi", "ussd"])]
    pub mms_notify: Option<String>,
    /// The message size an MMS notification announces, in octets.
    #[arg(
        long,
        value_name = "OCTETS",
        default_value_t = 0,
        requires = "mms_notify"
    )]
    pub mms_size: u64,
    /// How long the MMSC keeps the message an MMS notification announces.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = humantime::parse_duration, requires = "mms_notify")]
    pub mms_expiry: Duration,
    /// Set or clear the voicemail indication: `on`, `on:COUNT` (messages waiting), `off`
    /// (data_coding MWI group and the UDH special SMS indication; `--text`, when given,
    /// is stored by the phone, else the message is discarded after setting the icon).
    #[arg(long, value_name = "on|off[:COUNT]", value_parser = parse_mwi, conflicts_with = "ussd")]
    pub mwi: Option<smpp_proto::message::mwi::MessageWaiting>,
    /// Send a USSD operation (ussd_service_op) with `--text` as its string: a name
    /// (pssr-indication, pssd-indication, ussr-request, ussn-request, pssr-response,
    /// pssd-response, ussr-confirm, ussn-confirm) or a number; service_type USSD.
    #[arg(long, value_name = "OP", value_parser = parse_ussd_op)]
    pub ussd: Option<UssdServiceOp>,
    /// Coding of the message.
    #[arg(long, value_enum, default_value_t = Coding::Auto)]
    pub coding: Coding,
    /// Single-octet character sets the SMSC takes, for `--coding auto`: a text
    /// GSM 7-bit cannot carry goes in the first of them that has every
    /// character (140 characters per part) instead of UCS-2 (70). Comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "latin1,cyrillic,hebrew"
    )]
    pub smsc_codings: Vec<SmscCoding>,
    /// Ask for a delivery receipt (registered_delivery 1).
    #[arg(long)]
    pub receipt: bool,
    /// Ask for a receipt and wait this long (e.g. `30s`) for every part's final receipt;
    /// binds as transceiver so the receipts come back on the same bind.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub wait_receipt: Option<Duration>,
    /// How to bind (default: transmitter, or transceiver with --wait-receipt).
    #[arg(long, value_enum)]
    pub bind: Option<SendBind>,
    /// Print one JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the connection, the bind, each response and the unbind.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub response_timeout: Duration,
    /// The other fields of the submission.
    #[command(flatten)]
    pub fields: SubmitFields,
}

/// The fields of a submission beyond addresses and content: every part gets them.
#[derive(Debug, Clone, Default, Args)]
pub struct SubmitFields {
    /// service_type (e.g. `CMT`, `WAP`, `USSD`; at most 5 characters).
    #[arg(long, default_value = "")]
    pub service_type: String,
    /// validity_period: a duration from now (`10m`, `2h`, `3d`) sent as an SMPP relative
    /// time, or an SMPP time as it goes on the wire (`YYMMDDhhmmsstnnp` or `YYMMDDhhmmss000R`).
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub validity: Option<String>,
    /// schedule_delivery_time, in the forms of --validity.
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub schedule: Option<String>,
    /// priority_flag, 0 (lowest) to 3.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub priority: Option<u8>,
    /// esm_class (decimal or 0x-hex); the UDH indicator of a concatenated message's parts
    /// is kept whatever this says.
    #[arg(long, value_name = "BYTE", value_parser = parse_byte)]
    pub esm_class: Option<u8>,
    /// protocol_id (decimal or 0x-hex).
    #[arg(long, value_name = "BYTE", value_parser = parse_byte)]
    pub protocol_id: Option<u8>,
    /// A TLV, by specification name or number: `--tlv user_message_reference=0001`,
    /// `--tlv 0x1403=2a` (repeatable; added to every part).
    #[arg(long, value_name = "TAG=HEX", value_parser = parse_tlv)]
    pub tlv: Vec<Tlv>,
    /// billing_identification (SMPP 5.0) as hex octets, the first one its format.
    #[arg(long, value_name = "HEX", value_parser = parse_hex_octets)]
    pub billing_id: Option<HexOctets>,
    /// Send a data_sm (the whole message in one `message_payload`) instead of submit_sm.
    #[arg(long)]
    pub data_sm: bool,
    /// The interface_version the bind offers: 3.3, 3.4 (the default) or 5.0. The
    /// session sends what the agreed version takes: no TLVs with 3.3 (and no
    /// data_sm, nor a text in message_payload), no 5.0-only TLVs such as
    /// billing_identification with 3.4.
    #[arg(long, value_name = "VERSION", value_parser = parse_version)]
    pub interface_version: Option<u8>,
}

/// Octets given in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexOctets(pub Vec<u8>);

fn parse_hex_octets(s: &str) -> Result<HexOctets, String> {
    parse_octets(s).map(HexOctets)
}

/// One `--tlv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    /// Its tag.
    pub tag: TlvTag,
    /// Its value.
    pub value: Vec<u8>,
}

fn parse_byte(s: &str) -> Result<u8, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| format!("{s:?} is not a byte (0-255 or 0x00-0xFF)"))
}

fn parse_octets(s: &str) -> Result<Vec<u8>, String> {
    parse_hex(s)
        .map(|b| b.to_vec())
        .map_err(|e| format!("hex: {e}"))
}

/// `TAG=HEX`, the tag by specification name or number (`--tlv`'s form).
pub(crate) fn parse_tlv(s: &str) -> Result<Tlv, String> {
    let (tag, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected TAG=HEX"))?;
    let tag = match tag.strip_prefix("0x").or_else(|| tag.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16)
            .map(TlvTag)
            .map_err(|_| format!("{tag:?} is not a tag number (0x0000-0xFFFF)"))?,
        None => match tag.parse::<u16>() {
            Ok(n) => TlvTag(n),
            Err(_) => TlvTag::from_name(tag).ok_or_else(|| format!("unknown TLV name {tag:?}"))?,
        },
    };
    Ok(Tlv {
        tag,
        value: parse_octets(value)?,
    })
}

fn parse_mwi(s: &str) -> Result<MessageWaiting, String> {
    let (state, count) = match s.split_once(':') {
        Some((state, count)) => (
            state,
            Some(
                count
                    .parse::<u8>()
                    .map_err(|_| format!("{count:?}: the count is 0-255"))?,
            ),
        ),
        None => (s, None),
    };
    match (state, count) {
        ("on", count) => Ok(MessageWaiting::set(MwiKind::Voicemail, count.unwrap_or(1))),
        ("off", None | Some(0)) => Ok(MessageWaiting::clear(MwiKind::Voicemail)),
        ("off", Some(_)) => Err("`off` has no messages waiting: give `off` or `off:0`".into()),
        _ => Err(format!("{s:?}: expected on, on:COUNT or off")),
    }
}

fn parse_ussd_op(s: &str) -> Result<UssdServiceOp, String> {
    if let Ok(n) = parse_byte(s) {
        return Ok(UssdServiceOp::from_u8(n));
    }
    let wanted = s.to_ascii_lowercase().replace(['_', ' '], "-");
    (0..=19u8)
        .map(UssdServiceOp::from_u8)
        .find(|op| op.name().to_ascii_lowercase().replace(' ', "-") == wanted)
        .ok_or_else(|| {
            format!("{s:?}: not a USSD operation (pssr-indication, ussr-request, ... or a number)")
        })
}

/// A `--validity`/`--schedule` value: a duration (sent as an SMPP relative
/// time) or an SMPP time as it goes on the wire.
pub fn parse_when(s: &str) -> Result<String, String> {
    let wire = s.len() == 16
        && s.as_bytes()[..15].iter().all(u8::is_ascii_digit)
        && matches!(s.as_bytes()[15], b'R' | b'+' | b'-');
    if wire {
        return Ok(s.to_owned());
    }
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{s:?}: neither a duration ({e}) nor an SMPP time"))?;
    smpp_proto::message::time::relative(d).ok_or_else(|| format!("{s:?} is too long"))
}

pub(crate) fn parse_version(s: &str) -> Result<u8, String> {
    match s {
        "3.3" | "33" | "0x33" => Ok(0x33),
        "3.4" | "34" | "0x34" => Ok(0x34),
        "5.0" | "5" | "50" | "0x50" => Ok(0x50),
        _ => Err(format!("{s:?}: the interface version is 3.3, 3.4 or 5.0")),
    }
}

impl SubmitFields {
    /// Sets the fields on one part.
    pub fn apply(&self, sm: &mut SubmitSm) -> anyhow::Result<()> {
        if !self.service_type.is_empty() {
            sm.service_type = COctetString::from(self.service_type.clone());
        }
        if let Some(v) = &self.validity {
            sm.validity_period = COctetString::from(v.clone());
        }
        if let Some(v) = &self.schedule {
            sm.schedule_delivery_time = COctetString::from(v.clone());
        }
        if let Some(p) = self.priority {
            sm.priority_flag = p;
        }
        if let Some(e) = self.esm_class {
            let udhi = sm.esm_class().udhi();
            sm.set_esm_class(EsmClass::new(e).with_udhi(udhi || EsmClass::new(e).udhi()));
        }
        if let Some(p) = self.protocol_id {
            sm.protocol_id = p;
        }
        for tlv in &self.tlv {
            sm.tlvs
                .push(tlv.tag, &tlv.value)
                .with_context(|| format!("TLV {}", tlv.tag))?;
        }
        if let Some(b) = &self.billing_id {
            sm.tlvs
                .set(TlvTag::BILLING_IDENTIFICATION, &b.0)
                .context("billing_identification")?;
        }
        Ok(())
    }
}

/// Runs `smpp send`.
pub async fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    let kind = match (args.bind, args.wait_receipt.is_some()) {
        (Some(SendBind::Transmitter), true) => {
            eprintln!(
                "smpp: error: --wait-receipt needs the receipts on the same bind: \
                 use --bind transceiver (the default with --wait-receipt)"
            );
            return Ok(ExitCode::from(2));
        }
        (Some(SendBind::Transmitter), false) | (None, false) => BindKind::Transmitter,
        (Some(SendBind::Transceiver), _) | (None, true) => BindKind::Transceiver,
    };
    let mut message = build_message(&args)?;
    if args.fields.data_sm {
        if args.to.len() > 1 {
            eprintln!("smpp: error: --data-sm has one recipient: give one --to");
            return Ok(ExitCode::from(2));
        }
        message = message.concat(ConcatMode::Payload);
    }
    // Build the parts before binding: a text that cannot be coded fails without a connection.
    let mut refs = ReferenceCounter::new(reference_seed());
    let mut parts = message
        .build(&mut refs)
        .context("cannot build the message")?;
    for sm in &mut parts {
        args.fields.apply(sm)?;
    }
    let mut connect = args.connect.clone();
    if let Some(v) = args.fields.interface_version {
        connect.interface_version = v;
    }
    let (client, inbound) = connect
        .connect(
            kind,
            SessionConfig::default().with_response_timeout(args.response_timeout),
        )
        .await?;
    let printer = Printer { json: args.json };
    let outcome = send_and_wait(&client, inbound, parts, &args, &printer).await;
    let unbind = tokio::time::timeout(args.response_timeout, client.unbind()).await;
    if !matches!(unbind, Ok(Ok(()))) {
        tracing::warn!("unbind did not complete cleanly");
        client.close();
    }
    Ok(if outcome? {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn reference_seed() -> u16 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u16)
}

/// The message as asked: a feature (WAP push, MMS notification, MWI, USSD), or text
/// or octets in the coding asked.
fn build_message(args: &SendArgs) -> anyhow::Result<ShortMessage> {
    let first = args.to.first().map_or("", String::as_str);
    let text = args.text.as_deref().unwrap_or_default();
    // A WSP transaction id that differs between runs.
    let tid = reference_seed() as u8;
    let content = if let Some(url) = &args.wap_push {
        ServiceIndication {
            href: url.clone(),
            text: text.to_owned(),
            ..ServiceIndication::default()
        }
        .to_short_message(tid)
        .context("cannot build the WAP push")?
    } else if let Some(url) = &args.mms_notify {
        let mut n = MmsNotification::new(
            format!("smpp-{:08x}", reference_seed()),
            url.clone(),
            args.mms_size,
            MmsExpiry::Relative(args.mms_expiry.as_secs()),
        );
        n.subject = args.text.clone();
        n.to_short_message(tid)
            .context("cannot build the MMS notification")?
    } else if let Some(mwi) = &args.mwi {
        mwi.to_short_message(text)
    } else if let Some(op) = args.ussd {
        ShortMessage::text(text)
            .service_type("USSD")
            .tlv(TlvTag::USSD_SERVICE_OP, &[op.to_u8()])?
    } else {
        message_content(args.text.as_deref(), args.hex.as_deref(), args.coding)?
            .charsets(charset_set(&args.smsc_codings))
    };
    let message = content.from(args.from.as_str()).to(first);
    Ok(if args.receipt || args.wait_receipt.is_some() {
        message.request_receipt()
    } else {
        message
    })
}

/// A submit_multi destination: `dl:NAME` is a distribution list, anything else
/// an address read as the message layer reads `--to` (TON, NPI, digits).
fn dest_address(to: &str) -> DestAddress {
    match to.strip_prefix("dl:") {
        Some(name) => DestAddress::DistributionList(COctetString::from(name.to_owned())),
        None => {
            let a = Address::guess(to);
            DestAddress::Sme {
                ton: a.ton,
                npi: a.npi,
                addr: a.addr,
            }
        }
    }
}

/// A message (without addresses) from a text or hex octets in `coding`: what
/// `smpp send --text/--hex --coding` and the HTTP MO injection accept.
///
/// Text: `auto` lets the message layer choose (GSM 7-bit when every character
/// has a GSM code, else UCS-2, or a character set the SMSC takes when the
/// caller adds them); `gsm7`, `ucs2`, `latin1`, `cyrillic` and `hebrew` code the
/// text as asked and fail on the first character the coding cannot represent;
/// `binary` sends its UTF-8 octets. Hex: the octets as they are, with
/// data_coding 0x04 (`auto`, `binary`), 0x00 (`gsm7`, unpacked septets), 0x08
/// (`ucs2`), 0x03 (`latin1`), 0x06 (`cyrillic`) or 0x07 (`hebrew`).
pub fn message_content(
    text: Option<&str>,
    hex: Option<&str>,
    coding: Coding,
) -> anyhow::Result<ShortMessage> {
    Ok(match (text, hex) {
        (Some(text), None) => match (coding, coding.text_encoding()) {
            (Coding::Binary, _) => {
                ShortMessage::binary(Bytes::copy_from_slice(text.as_bytes()), DataCoding::BINARY)
            }
            (_, Some(encoding)) => ShortMessage::text_in(text, encoding).with_context(|| {
                format!(
                    "the text cannot be coded as {}",
                    format!("{coding:?}").to_lowercase()
                )
            })?,
            (_, None) => ShortMessage::text(text),
        },
        (None, Some(hex)) => {
            let data = parse_hex(hex).map_err(|e| anyhow::anyhow!("hex: {e}"))?;
            let dc = match coding {
                Coding::Auto | Coding::Binary => DataCoding::BINARY,
                Coding::Gsm7 => DataCoding::SMSC_DEFAULT,
                Coding::Ucs2 => DataCoding::UCS2,
                Coding::Latin1 => DataCoding::LATIN1,
                Coding::Cyrillic => DataCoding::CYRILLIC,
                Coding::Hebrew => DataCoding::LATIN_HEBREW,
            };
            ShortMessage::binary(data, dc)
        }
        (Some(_), Some(_)) => anyhow::bail!("give either a text or hex octets, not both"),
        (None, None) => anyhow::bail!("give a text or hex octets"),
    })
}

struct Printer {
    json: bool,
}

impl Printer {
    fn line(&self, text: String, json: serde_json::Value) {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        // A closed stdout must not stop the unbind; the exit code still tells.
        let _ = if self.json {
            writeln!(out, "{json}")
        } else {
            writeln!(out, "{text}")
        };
        let _ = out.flush();
    }
}

/// Submits every part (pipelined), prints the ids, then waits for the receipts when asked.
/// `Ok(true)`: everything accepted (and delivered).
async fn send_and_wait(
    client: &Client,
    inbound: Inbound,
    parts: Vec<SubmitSm>,
    args: &SendArgs,
    out: &Printer,
) -> anyhow::Result<bool> {
    let total = parts.len();
    // Receipts may come before the last part is answered: take them meanwhile, so the
    // inbound window never fills (at most a few per part are kept).
    let keep = 4 * total + 16;
    let mut early = VecDeque::new();
    let mut inbound_open = args.wait_receipt.is_some();
    let multi = args.to.len() > 1;
    let data_sm = args.fields.data_sm;
    let dests: Vec<DestAddress> = if multi {
        args.to.iter().map(|to| dest_address(to)).collect()
    } else {
        Vec::new()
    };
    let submitting = futures_util::future::join_all(parts.into_iter().map(|sm| {
        let dests = dests.clone();
        async move {
            if data_sm {
                let data = DataSm::from_submit_sm(sm)
                    .map_err(|e| smpp_tokio::Error::Refused(SendError::Encode((), e)))?;
                let resp = client.request(Body::DataSm(Box::new(data))).await?;
                return match resp.body {
                    Body::DataSmResp(r) => Ok(r.message_id),
                    other => Err(smpp_tokio::Error::UnexpectedResponse(other.command_id())),
                };
            }
            if !multi {
                return client.submit(sm).await;
            }
            let resp = client
                .request(Body::SubmitMulti(Box::new(SubmitMulti::from_submit_sm(
                    sm, dests,
                ))))
                .await?;
            match resp.body {
                Body::SubmitMultiResp(r) => {
                    for u in &r.unsuccess_smes {
                        tracing::warn!(
                            to = %u.addr.to_string_lossy(),
                            status = %u.error_status,
                            "a destination was not accepted"
                        );
                    }
                    Ok(r.message_id)
                }
                other => Err(smpp_tokio::Error::UnexpectedResponse(other.command_id())),
            }
        }
    }));
    tokio::pin!(submitting);
    let results = loop {
        tokio::select! {
            results = &mut submitting => break results,
            request = inbound.recv(), if inbound_open => match request {
                Some(request) => match request.receipt() {
                    Some(receipt) if early.len() < keep => early.push_back(receipt),
                    Some(_) => tracing::warn!("too many early receipts: one dropped"),
                    None => tracing::info!("ignoring a message that is not a receipt"),
                },
                None => inbound_open = false,
            },
        }
    };
    let mut ids = Vec::with_capacity(total);
    let mut ok = true;
    for (i, result) in results.into_iter().enumerate() {
        let part = i + 1;
        match result {
            Ok(id) => {
                let id = id.to_string_lossy().into_owned();
                out.line(
                    format!("part {part}/{total} message_id {id}"),
                    json!({"event": "submitted", "part": part, "parts": total, "message_id": id}),
                );
                ids.push(id);
            }
            Err(e) => {
                ok = false;
                let status = match &e {
                    smpp_tokio::Error::Status(s) | smpp_tokio::Error::GenericNack(s) => {
                        Some(s.to_string())
                    }
                    _ => None,
                };
                out.line(
                    format!("part {part}/{total} error {e}"),
                    json!({"event": "submit_failed", "part": part, "parts": total,
                           "status": status, "error": e.to_string()}),
                );
            }
        }
    }
    if !ok {
        eprintln!("smpp: error: not every part was accepted");
        return Ok(false);
    }
    match args.wait_receipt {
        Some(wait) => wait_receipts(inbound, early, &ids, wait, out).await,
        None => Ok(true),
    }
}

/// Waits until every part has a final receipt (matched by normalised message id) or
/// `wait` has passed. `Ok(true)` when every final state is DELIVRD.
async fn wait_receipts(
    inbound: Inbound,
    mut early: VecDeque<DeliveryReceipt>,
    ids: &[String],
    wait: Duration,
    out: &Printer,
) -> anyhow::Result<bool> {
    let format = MessageIdFormat::default();
    let total = ids.len();
    let mut pending: HashMap<String, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (format.canonical_submit(id), i))
        .collect();
    let mut finals: Vec<Option<MessageState>> = vec![None; total];
    let deadline = tokio::time::Instant::now() + wait;
    while !pending.is_empty() {
        let receipt = match early.pop_front() {
            Some(receipt) => receipt,
            None => {
                let request = tokio::select! {
                    r = inbound.recv() => r,
                    () = tokio::time::sleep_until(deadline) => break,
                    _ = tokio::signal::ctrl_c() => {
                        eprintln!("smpp: interrupted while waiting for receipts");
                        return Ok(false);
                    }
                };
                let Some(request) = request else {
                    eprintln!("smpp: error: the SMSC closed the session before every receipt came");
                    return Ok(false);
                };
                // Dropping the request answers it with status 0, receipt or not.
                match request.receipt() {
                    Some(receipt) => receipt,
                    None => {
                        tracing::info!("ignoring a message that is not a receipt");
                        continue;
                    }
                }
            }
        };
        let key = format.canonical_receipt(&receipt.id);
        let Some(&index) = pending.get(&key) else {
            tracing::info!(id = %receipt.id, "ignoring a receipt for another message");
            continue;
        };
        print_receipt(out, index, total, &ids[index], &receipt);
        if receipt.state.is_final() {
            pending.remove(&key);
            finals[index] = Some(receipt.state);
        }
    }
    let mut delivered = true;
    for (i, state) in finals.iter().enumerate() {
        if state.is_none() {
            delivered = false;
            out.line(
                format!(
                    "part {}/{total} message_id {} timeout: no final receipt within {}",
                    i + 1,
                    ids[i],
                    humantime::format_duration(wait)
                ),
                json!({"event": "timeout", "part": i + 1, "parts": total, "message_id": ids[i]}),
            );
        }
    }
    if !delivered {
        return Ok(false);
    }
    // The message's state: DELIVRD only when every part is.
    let worst = finals
        .iter()
        .flatten()
        .find(|s| **s != MessageState::Delivered)
        .copied()
        .unwrap_or(MessageState::Delivered);
    out.line(
        format!("final {}", worst.stat_word()),
        json!({"event": "final", "parts": total, "state": worst.stat_word()}),
    );
    Ok(worst == MessageState::Delivered)
}

fn print_receipt(out: &Printer, index: usize, total: usize, id: &str, receipt: &DeliveryReceipt) {
    let report = ReceiptReport::new(receipt);
    out.line(
        format!(
            "part {}/{total} message_id {id} receipt {}",
            index + 1,
            report.summary()
        ),
        json!({"event": "receipt", "part": index + 1, "parts": total, "message_id": id,
               "state": report.state, "receipt": report}),
    );
}
