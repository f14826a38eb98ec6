//! `cargo xtask interop tshark`: Wireshark's SMPP dissector against our codec.
//!
//! Every golden PDU
//! (`crates/smpp-proto/testdata/golden.txt`) is wrapped in a TCP frame in its
//! direction (ESME port 40000 ⇄ MC port 2775), written to a capture with
//! `text2pcap`, and decoded by Wireshark's SMPP dissector (`tshark -T pdml`).
//! The check fails when Wireshark finds a frame malformed or raises an expert
//! info of severity warning or error, or when a field Wireshark decodes
//! differs from what our codec decodes from the same octets: the header, every
//! mandatory body field Wireshark shows, submit_multi's destination lists and
//! every TLV (tag, length, the octets Wireshark reads as its value, and its
//! integer value). Known dissector quirks are listed in [`Quirk`] and only
//! excuse the exact PDU and field they name.
//!
//! Files are left in `target/interop/tshark/` for inspection.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use bytes::Bytes;
use smpp_proto::pdu::{self, Body, DestAddress, FieldValue, Pdu, TlvKind, TlvTag, Tlvs};

use crate::Result;

/// TCP port of the MC (SMSC) in the generated capture; the ESME uses [`ESME_PORT`].
const MC_PORT: u16 = 2775;
const ESME_PORT: u16 = 40000;
/// Expert-info severity of a warning (`PI_WARN`); errors are above it.
const PI_WARN: u64 = 0x0060_0000;

pub(super) fn tshark() -> Result {
    let started = Instant::now();
    ensure_tools()?;
    let version = tool_version("tshark")?;
    eprintln!("interop: using {version}");

    let root = crate::root();
    let golden_path = root.join("crates/smpp-proto/testdata/golden.txt");
    let golden = read_golden(&golden_path)?;
    if golden.is_empty() {
        return Err(format!("{}: no PDUs", golden_path.display()));
    }

    let dir = root.join("target/interop/tshark");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dump = dir.join("golden.hexdump");
    let pcap = dir.join("golden.pcapng");
    let pdml = dir.join("golden.pdml");
    std::fs::write(&dump, hexdump(&golden)).map_err(|e| format!("{}: {e}", dump.display()))?;
    // `-D`: each frame starts with I (inbound: ESME → MC) or O (outbound: MC →
    // ESME); text2pcap swaps the ports and keeps one TCP sequence per direction.
    let ports = format!("{ESME_PORT},{MC_PORT}");
    output(
        Command::new("text2pcap")
            .args(["-q", "-D", "-T", &ports])
            .arg(&dump)
            .arg(&pcap),
    )?;

    let decode_as = format!("tcp.port=={MC_PORT},smpp");
    let tshark = |extra: &[&str]| -> Result<String> {
        let mut cmd = Command::new("tshark");
        cmd.arg("-r")
            .arg(&pcap)
            .args(["-d", &decode_as])
            .args(extra)
            // Keep a developer's Wireshark preferences out of the check.
            .env("WIRESHARK_CONFIG_DIR", &dir);
        output(&mut cmd)
    };
    let xml = tshark(&["-T", "pdml"])?;
    std::fs::write(&pdml, &xml).map_err(|e| format!("{}: {e}", pdml.display()))?;
    let packets = parse_pdml(&xml).map_err(|e| format!("{}: {e}", pdml.display()))?;
    // Wireshark's own filter, as a cross-check of the PDML walk below.
    let flagged = tshark(&[
        "-Y",
        "_ws.malformed || _ws.expert.severity >= warning",
        "-T",
        "fields",
        "-e",
        "frame.number",
    ])?;
    let flagged: BTreeSet<usize> = flagged
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .parse()
                .map_err(|_| format!("tshark -Y printed `{l}`, not a frame number"))
        })
        .collect::<Result<_>>()?;

    if packets.len() != golden.len() {
        return Err(format!(
            "tshark decoded {} frames from {}, expected {} (one per golden PDU)",
            packets.len(),
            pcap.display(),
            golden.len()
        ));
    }

    let mut check = Check::default();
    let mut flagged_by_walk = BTreeSet::new();
    for (i, (g, packet)) in golden.iter().zip(&packets).enumerate() {
        let frame = i + 1;
        check.pdu = g.name.clone();
        let (problems, skipped) = (check.problems.len(), check.skipped.len());
        let has_flag = check_frame(&mut check, frame, g, packet)?;
        if has_flag {
            flagged_by_walk.insert(frame);
        }
        let status = if check.problems.len() > problems {
            "MISMATCH"
        } else if check.skipped.len() > skipped {
            "not dissected (see below)"
        } else {
            "ok"
        };
        eprintln!("  frame {frame:>2} {:<32} {status}", g.name);
    }
    if flagged_by_walk != flagged {
        return Err(format!(
            "tshark's display filter flags frames {flagged:?} as malformed or warning/error, \
             the PDML walk found {flagged_by_walk:?}: the PDML parsing here is out of date"
        ));
    }

    for q in &check.quirks {
        eprintln!("interop: allowed known dissector quirk: {q}");
    }
    for s in &check.skipped {
        eprintln!("interop: not compared: {s}");
    }
    eprintln!(
        "interop tshark: {} PDUs, {} fields compared, {} problems ({} known quirks allowed), \
         Wireshark {}, {:.1?}",
        golden.len(),
        check.compared,
        check.problems.len(),
        check.quirks.len(),
        version.split_whitespace().nth(2).unwrap_or("?"),
        started.elapsed()
    );
    if check.problems.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "Wireshark and smpp-proto disagree ({} problems; capture and PDML in {}):",
        check.problems.len(),
        dir.display()
    );
    for p in &check.problems {
        let _ = write!(
            msg,
            "\n  {}: {}: ours {}, Wireshark {}",
            p.pdu, p.field, p.ours, p.theirs
        );
    }
    Err(msg)
}

// ---------------------------------------------------------------------------
// Tools

/// The Wireshark command-line tools this check runs.
const TOOLS: [&str; 2] = ["tshark", "text2pcap"];

fn has_tool(name: &str) -> bool {
    Command::new(name)
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn tool_version(name: &str) -> Result<String> {
    let out = output(Command::new(name).arg("-v"))?;
    Ok(out.lines().next().unwrap_or("").trim().to_string())
}

/// Installs tshark (which brings text2pcap) with apt when a tool is missing.
fn ensure_tools() -> Result {
    let missing: Vec<&str> = TOOLS.into_iter().filter(|t| !has_tool(t)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "interop: {} not found; installing the Debian package `tshark` with apt-get \
         (non-interactive, without the setuid dumpcap)",
        missing.join(" and ")
    );
    let script = "set -e\n\
        apt-get update\n\
        echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections\n\
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tshark\n";
    crate::run(Command::new("sh").args(["-c", script])).map_err(|e| {
        format!(
            "installing tshark failed ({e}); install it yourself (`apt-get install tshark`, as root) \
             and run `cargo xtask interop tshark` again"
        )
    })?;
    let still: Vec<&str> = TOOLS.into_iter().filter(|t| !has_tool(t)).collect();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} still not runnable after installing tshark",
            still.join(" and ")
        ))
    }
}

/// Runs a command, echoing it, and returns its standard output; fails on a
/// non-zero exit with the command's standard error.
fn output(cmd: &mut Command) -> Result<String> {
    let mut shown = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.contains(' ') {
            let _ = write!(shown, " '{a}'");
        } else {
            let _ = write!(shown, " {a}");
        }
    }
    eprintln!("$ {shown}");
    let out = cmd.output().map_err(|e| format!("{shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{shown}` failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("`{shown}` printed non-UTF-8 output: {e}"))
}

// ---------------------------------------------------------------------------
// Golden PDUs and the hex dump

#[derive(Debug)]
struct Golden {
    name: String,
    /// ESME → MC.
    from_esme: bool,
    bytes: Vec<u8>,
}

fn read_golden(path: &Path) -> Result<Vec<Golden>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("{}:{}", path.display(), n + 1);
        let mut parts = line.split_whitespace();
        let (Some(name), Some(dir), Some(hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("{}: expected `NAME DIR HEX`", at()));
        };
        let from_esme = match dir {
            "em" => true,
            "me" => false,
            other => return Err(format!("{}: direction `{other}` is not em or me", at())),
        };
        let bytes = hex::decode(hex).map_err(|e| format!("{}: bad hex: {e}", at()))?;
        out.push(Golden {
            name: name.to_string(),
            from_esme,
            bytes,
        });
    }
    Ok(out)
}

/// text2pcap input: per frame a direction letter, offset lines of 16 octets,
/// and a blank line.
fn hexdump(golden: &[Golden]) -> String {
    let mut s = String::new();
    for g in golden {
        s.push_str(if g.from_esme { "I\n" } else { "O\n" });
        for (i, chunk) in g.bytes.chunks(16).enumerate() {
            let _ = write!(s, "{:06x}", i * 16);
            for b in chunk {
                let _ = write!(s, " {b:02x}");
            }
            s.push('\n');
        }
        s.push('\n');
    }
    s
}

// ---------------------------------------------------------------------------
// PDML

/// One `<proto>` or `<field>` element of tshark's PDML.
#[derive(Debug, Default)]
struct Node {
    name: String,
    show: String,
    /// Hex of the octets (for bit fields: of the masked value).
    value: String,
    /// Hex of the whole octets of a bit field.
    unmasked: Option<String>,
    pos: usize,
    size: usize,
    children: Vec<Node>,
}

impl Node {
    fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Node)) {
        f(self);
        for c in &self.children {
            c.walk(f);
        }
    }

    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The octets, from `unmaskedvalue` for a bit field.
    fn octets(&self) -> Result<Vec<u8>> {
        let hex = self.unmasked.as_deref().unwrap_or(&self.value);
        hex::decode(hex).map_err(|e| format!("field {}: value `{hex}` is not hex: {e}", self.name))
    }

    /// The octets as a big-endian unsigned integer.
    fn uint(&self) -> Result<u64> {
        let o = self.octets()?;
        if o.is_empty() || o.len() > 8 {
            return Err(format!(
                "field {}: {} octets is not an integer",
                self.name,
                o.len()
            ));
        }
        Ok(o.iter().fold(0, |a, &b| a << 8 | u64::from(b)))
    }

    fn end(&self) -> usize {
        self.pos + self.size
    }
}

/// A `<packet>`: its top-level protocols.
type Packet = Vec<Node>;

fn parse_pdml(xml: &str) -> Result<Vec<Packet>> {
    let mut packets = Vec::new();
    let mut current: Option<Packet> = None;
    let mut stack: Vec<Node> = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        if let Some(after) = rest.strip_prefix("!--") {
            let end = after.find("-->").ok_or("unterminated comment")?;
            rest = &after[end + 3..];
            continue;
        }
        let end = rest.find('>').ok_or("unterminated tag")?;
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') {
            continue;
        }
        if let Some(closing) = tag.strip_prefix('/') {
            match closing.trim() {
                "packet" => {
                    if !stack.is_empty() {
                        return Err("</packet> inside an open element".into());
                    }
                    packets.push(current.take().ok_or("</packet> without <packet>")?);
                }
                "proto" | "field" => {
                    let node = stack.pop().ok_or("unbalanced closing tag")?;
                    attach(&mut stack, &mut current, node)?;
                }
                _ => {}
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (kind, attrs) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
        match kind {
            "packet" => {
                if current.is_some() {
                    return Err("nested <packet>".into());
                }
                current = Some(Vec::new());
            }
            "proto" | "field" => {
                let node = parse_node(attrs)?;
                if self_closing {
                    attach(&mut stack, &mut current, node)?;
                } else {
                    stack.push(node);
                }
            }
            _ => {}
        }
    }
    if current.is_some() || !stack.is_empty() {
        return Err("truncated PDML (an element is never closed)".into());
    }
    Ok(packets)
}

fn attach(stack: &mut [Node], packet: &mut Option<Packet>, node: Node) -> Result {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => packet
            .as_mut()
            .ok_or("element outside <packet>")?
            .push(node),
    }
    Ok(())
}

fn parse_node(attrs: &str) -> Result<Node> {
    let mut node = Node::default();
    let mut rest = attrs.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .ok_or_else(|| format!("bad attributes `{attrs}`"))?;
        let (val, after) = after
            .split_once('"')
            .ok_or_else(|| format!("unterminated attribute in `{attrs}`"))?;
        let val = unescape(val)?;
        let number = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("attribute {key}=\"{v}\" is not a number"))
        };
        match key.trim() {
            "name" => node.name = val,
            "show" => node.show = val,
            "value" => node.value = val,
            "unmaskedvalue" => node.unmasked = Some(val),
            "pos" => node.pos = number(&val)?,
            "size" => node.size = number(&val)?,
            _ => {}
        }
        rest = after.trim_start();
    }
    Ok(node)
}

fn unescape(s: &str) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find(';')
            .ok_or_else(|| format!("bad entity in `{s}`"))?;
        let entity = &rest[i + 1..i + end];
        let c = match entity {
            "quot" => '"',
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "apos" => '\'',
            _ => {
                let code = if let Some(h) = entity.strip_prefix("#x") {
                    u32::from_str_radix(h, 16).ok()
                } else if let Some(d) = entity.strip_prefix('#') {
                    d.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("unknown entity &{entity}; in `{s}`"))?
            }
        };
        out.push(c);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

// ---------------------------------------------------------------------------
// The comparison

#[derive(Debug)]
struct Problem {
    pdu: String,
    field: String,
    ours: String,
    theirs: String,
}

#[derive(Debug, Default)]
struct Check {
    /// The golden PDU being checked.
    pdu: String,
    compared: usize,
    problems: Vec<Problem>,
    quirks: Vec<String>,
    skipped: Vec<String>,
}

impl Check {
    fn problem(
        &mut self,
        field: impl Into<String>,
        ours: impl Into<String>,
        theirs: impl Into<String>,
    ) {
        self.problems.push(Problem {
            pdu: self.pdu.clone(),
            field: field.into(),
            ours: ours.into(),
            theirs: theirs.into(),
        });
    }

    /// Compares one value; counts it.
    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, field: &str, ours: T, theirs: T) {
        self.compared += 1;
        if ours != theirs {
            self.problem(field, format!("{ours:?}"), format!("{theirs:?}"));
        }
    }
}

/// Dissector behaviour that differs from the specification and from us, known
/// and accepted. Each excuses only the PDU and field it names.
///
/// Not a quirk (checked with Wireshark 4.0.17): `source_telematics_id` is read
/// as 1 octet, as the specification says, so the golden `data_sm_all_tlvs`
/// needs no exception; that PDU carries `broadcast_rep_num` in 1 octet, which
/// Wireshark reads whole as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quirk {
    /// packet-smpp.c reads `broadcast_rep_num` (0x0604) as 1 octet whatever
    /// its length, while SMPP 5.0 §4.8.4.8 makes it 2 octets, and then goes on
    /// from the wrong offset: the following TLVs are garbage and the frame is
    /// reported malformed. Hit by the golden `broadcast_sm`.
    BroadcastRepNumOneOctet,
    /// packet-smpp.c's submit_multi() adds an empty `validity_period` under the
    /// field `smpp.schedule_delivery_time_r` (submit_sm() uses
    /// `smpp.validity_period_r`). Hit by the golden `submit_multi`.
    SubmitMultiValidityName,
}

/// What one mandatory field holds according to our codec.
#[derive(Debug)]
enum Want {
    Int(u64),
    /// A C-Octet String, without its NUL.
    CStr(Vec<u8>),
    /// A time C-Octet String (Wireshark's field `NAME` or `NAME_r`).
    Time(Vec<u8>),
    /// Raw octets (`short_message`).
    Octets(Vec<u8>),
}

/// `(Wireshark field name, our value)` in wire order.
type Fields = Vec<(&'static str, Want)>;

fn s(c: &pdu::COctetString) -> Want {
    Want::CStr(c.as_bytes().to_vec())
}
fn i(v: impl Into<u64>) -> Want {
    Want::Int(v.into())
}

/// Fields of submit_multi(_resp) compared with the smpp.dlist subtrees instead.
const LISTED_ELSEWHERE: &[&str] = &[
    "number_of_dests",
    "dest_flag",
    "dl_name",
    "no_unsuccess",
    "error_status_code",
];

/// Wireshark's name for one of our field names (`None`: not mapped yet).
fn wireshark_name(name: &str) -> Option<&'static str> {
    WIRESHARK_NAMES
        .iter()
        .find(|(ours, _)| *ours == name)
        .map(|(_, ws)| *ws)
}

/// Our field name and Wireshark's.
const WIRESHARK_NAMES: &[(&str, &str)] = &[
    // esm_class and registered_delivery are bit fields; the first one carries the whole octet.
    ("esm_class", "smpp.esm.submit.msg_mode"),
    ("registered_delivery", "smpp.regdel.receipt"),
    ("short_message", "smpp.message"),
    ("system_id", "smpp.system_id"),
    ("password", "smpp.password"),
    ("system_type", "smpp.system_type"),
    ("interface_version", "smpp.interface_version"),
    ("addr_ton", "smpp.addr_ton"),
    ("addr_npi", "smpp.addr_npi"),
    ("address_range", "smpp.address_range"),
    ("service_type", "smpp.service_type"),
    ("source_addr_ton", "smpp.source_addr_ton"),
    ("source_addr_npi", "smpp.source_addr_npi"),
    ("source_addr", "smpp.source_addr"),
    ("dest_addr_ton", "smpp.dest_addr_ton"),
    ("dest_addr_npi", "smpp.dest_addr_npi"),
    ("destination_addr", "smpp.destination_addr"),
    ("protocol_id", "smpp.protocol_id"),
    ("priority_flag", "smpp.priority_flag"),
    ("schedule_delivery_time", "smpp.schedule_delivery_time"),
    ("validity_period", "smpp.validity_period"),
    ("replace_if_present_flag", "smpp.replace_if_present_flag"),
    ("data_coding", "smpp.data_coding"),
    ("sm_default_msg_id", "smpp.sm_default_msg_id"),
    ("sm_length", "smpp.sm_length"),
    ("message_id", "smpp.message_id"),
    ("final_date", "smpp.final_date"),
    ("message_state", "smpp.message_state"),
    ("error_code", "smpp.error_code"),
    ("esme_addr_ton", "smpp.esme_addr_ton"),
    ("esme_addr_npi", "smpp.esme_addr_npi"),
    ("esme_addr", "smpp.esme_addr"),
];

/// Our decoded mandatory fields, named as Wireshark names them, and the TLVs.
/// The fields come from the codec's own visitor (`Body::for_each_field`), so
/// every operation is covered; Wireshark's names: `tshark -G fields | grep -P "\tsmpp\."`.
fn our_fields(body: &Body, quirks: &mut Vec<Quirk>) -> Result<(Fields, Tlvs)> {
    if let Body::Unknown(raw) = body {
        return Err(format!(
            "interop: no Wireshark field map for {}",
            raw.command_id
        ));
    }
    let mut f: Fields = Vec::new();
    let mut tlvs = Tlvs::new();
    let mut unmapped = None;
    let multi = matches!(body, Body::SubmitMulti(_) | Body::SubmitMultiResp(_));
    body.for_each_field(|field| {
        if let FieldValue::Tlvs(t) = field.value {
            tlvs = t.clone();
            return;
        }
        // submit_multi_resp's unsuccess entries repeat these names; they are compared with the list.
        if multi
            && matches!(
                field.name,
                "dest_addr_ton" | "dest_addr_npi" | "destination_addr"
            )
        {
            return;
        }
        if LISTED_ELSEWHERE.contains(&field.name) {
            return;
        }
        let Some(mut name) = wireshark_name(field.name) else {
            unmapped = Some(field.name);
            return;
        };
        let want = match field.value {
            FieldValue::Int(v) => Want::Int(u64::from(v)),
            FieldValue::Str(v) => Want::CStr(v.as_bytes().to_vec()),
            FieldValue::Time(v) => {
                // Wireshark's submit_multi labels an empty validity_period as a schedule time.
                if multi && field.name == "validity_period" && v.is_empty() {
                    quirks.push(Quirk::SubmitMultiValidityName);
                    name = "smpp.schedule_delivery_time";
                }
                Want::Time(v.as_bytes().to_vec())
            }
            FieldValue::Octets(v) => Want::Octets(v.to_vec()),
            _ => return,
        };
        f.push((name, want));
    });
    match unmapped {
        Some(name) => Err(format!(
            "interop: no Wireshark name for field `{name}`: add it to xtask/src/interop.rs"
        )),
        None => Ok((f, tlvs)),
    }
}

/// Wireshark field names that restate another field (decoded text) and are
/// not compared.
const DERIVED: &[&str] = &["smpp.message_text"];

/// Checks one frame; returns whether Wireshark flagged it (malformed or an
/// expert info of severity warning or above).
fn check_frame(check: &mut Check, frame: usize, g: &Golden, packet: &Packet) -> Result<bool> {
    // Expert infos and malformed markers, anywhere in the frame.
    let mut flags: Vec<String> = Vec::new();
    for proto in packet {
        proto.walk(&mut |n| {
            if n.name == "_ws.malformed" && !n.children.is_empty() {
                flags.push(format!("malformed: {}", expert_message(n)));
            } else if n.name == "_ws.expert" {
                let sev = n
                    .child("_ws.expert.severity")
                    .and_then(|s| s.show.parse::<u64>().ok())
                    .unwrap_or(0);
                if sev >= PI_WARN && !flags.iter().any(|f| f.ends_with(&expert_message(n))) {
                    flags.push(format!("expert info: {}", expert_message(n)));
                }
            }
        });
    }
    let flagged = !flags.is_empty();

    // Direction.
    let tcp = packet
        .iter()
        .find(|p| p.name == "tcp")
        .ok_or_else(|| format!("frame {frame} ({}): tshark shows no TCP layer", g.name))?;
    let dst = tcp
        .child("tcp.dstport")
        .ok_or_else(|| format!("frame {frame}: no tcp.dstport"))?
        .uint()?;
    let want_dst = if g.from_esme { MC_PORT } else { ESME_PORT };
    if dst != u64::from(want_dst) {
        return Err(format!(
            "frame {frame} ({}): text2pcap sent it to port {dst}, not {want_dst}",
            g.name
        ));
    }

    let ours = pdu::decode_frame(Bytes::from(g.bytes.clone()), &pdu::DecodeConfig::default())
        .map_err(|e| format!("{}: our codec refuses the golden PDU: {e}", g.name))?;
    let smpp: Vec<&Node> = packet.iter().filter(|p| p.name == "smpp").collect();

    if let Body::Unknown(raw) = &ours.body {
        // Wireshark only dissects the command ids it knows (and some vendors').
        if smpp.is_empty() && !flagged {
            check.skipped.push(format!(
                "{}: command_id {} is not a standard operation; Wireshark agrees and leaves it undissected",
                g.name, raw.command_id
            ));
        } else {
            check.problem(
                "command_id",
                format!("{} not a standard operation", raw.command_id),
                "dissected as SMPP",
            );
        }
        return Ok(flagged);
    }
    let [smpp] = smpp[..] else {
        check.problem("SMPP PDUs in the frame", "1", smpp.len().to_string());
        return Ok(flagged);
    };

    let mut quirks = Vec::new();
    let (fields, tlvs) = our_fields(&ours.body, &mut quirks)?;
    check.eq("SMPP PDU size", g.bytes.len(), smpp.size);
    check_header(check, smpp, &ours, g.bytes.len())?;
    check_mandatory(check, smpp, &fields, g.bytes.len())?;
    check_dest_lists(check, smpp, &ours.body)?;
    check_tlvs(check, smpp, &tlvs, &mut quirks)?;

    let rep_num_quirk = quirks.contains(&Quirk::BroadcastRepNumOneOctet);
    for f in flags {
        // Reading on from the wrong offset ends in an exception.
        if !(rep_num_quirk && f.contains("Malformed Packet (Exception occurred)")) {
            check.problem("Wireshark expert info", "none", f);
        }
    }
    for q in quirks {
        check
            .quirks
            .push(format!("{}: {q:?} ({})", g.name, quirk_note(q)));
    }
    Ok(flagged)
}

fn quirk_note(q: Quirk) -> &'static str {
    match q {
        Quirk::BroadcastRepNumOneOctet => {
            "packet-smpp.c reads broadcast_rep_num as 1 octet, SMPP 5.0 makes it 2; \
             Wireshark reads the following TLVs from the wrong offset and marks the frame \
             malformed; the TLVs after it are not compared"
        }
        Quirk::SubmitMultiValidityName => {
            "packet-smpp.c names an empty submit_multi validity_period smpp.schedule_delivery_time_r"
        }
    }
}

fn expert_message(n: &Node) -> String {
    let mut msg = String::new();
    n.walk(&mut |c| {
        if msg.is_empty() && c.name == "_ws.expert.message" {
            msg = c.show.clone();
        }
    });
    if msg.is_empty() {
        "(no message)".into()
    } else {
        msg
    }
}

fn field<'a>(smpp: &'a Node, name: &str) -> Result<&'a Node> {
    smpp.child(name)
        .ok_or_else(|| format!("Wireshark's SMPP tree has no {name}"))
}

fn check_header(check: &mut Check, smpp: &Node, ours: &Pdu, frame_len: usize) -> Result {
    let len = ours
        .encoded_len()
        .map_err(|e| format!("{}: our codec cannot re-encode it: {e}", check.pdu))?;
    if len != frame_len {
        check.problem(
            "length when re-encoded",
            len.to_string(),
            format!("n/a (the golden PDU has {frame_len} octets)"),
        );
    }
    check.eq(
        "command_length",
        len as u64,
        field(smpp, "smpp.command_length")?.uint()?,
    );
    check.eq(
        "command_id",
        u64::from(ours.command_id().0),
        field(smpp, "smpp.command_id")?.uint()?,
    );
    // Wireshark shows command_status for responses only.
    match smpp.child("smpp.command_status") {
        Some(st) => check.eq(
            "command_status",
            u64::from(ours.command_status.0),
            st.uint()?,
        ),
        None if ours.is_request() => {}
        None => check.problem(
            "command_status",
            format!("0x{:08x}", ours.command_status.0),
            "missing",
        ),
    }
    check.eq(
        "sequence_number",
        u64::from(ours.sequence_number.get()),
        field(smpp, "smpp.sequence_number")?.uint()?,
    );
    Ok(())
}

/// Wireshark's mandatory body fields: the direct children of the SMPP tree
/// after the header, bit fields of one octet merged into their first field.
fn ws_mandatory(smpp: &Node) -> Vec<&Node> {
    const SKIP: &[&str] = &[
        "smpp.command_length",
        "smpp.command_id",
        "smpp.command_status",
        "smpp.sequence_number",
        "smpp.opt_params",
        "smpp.dlist",
        "smpp.dlist_resp",
    ];
    let mut out: Vec<&Node> = Vec::new();
    for c in &smpp.children {
        if SKIP.contains(&c.name.as_str()) || DERIVED.contains(&c.name.as_str()) {
            continue;
        }
        if let Some(prev) = out.last() {
            if c.unmasked.is_some() && prev.unmasked.is_some() && prev.pos == c.pos {
                continue;
            }
        }
        out.push(c);
    }
    out
}

fn check_mandatory(check: &mut Check, smpp: &Node, fields: &Fields, frame_len: usize) -> Result {
    let theirs = ws_mandatory(smpp);
    if frame_len == pdu::HEADER_LEN {
        // Header-only (error) response: no body on either side.
        if let Some(n) = theirs.first() {
            check.problem("body", "none (header only)", n.name.clone());
        }
        return Ok(());
    }
    let mut used = vec![false; theirs.len()];
    for (name, want) in fields {
        let time_r = format!("{name}_r");
        // The next unused Wireshark field of this name (for times: NAME or NAME_r).
        let found = theirs.iter().enumerate().find(|(k, n)| {
            !used[*k] && (n.name == *name || (matches!(want, Want::Time(_)) && n.name == time_r))
        });
        let Some((k, n)) = found else {
            match want {
                // Wireshark adds no item for an empty C-Octet String
                // (smpp_handle_string) nor for an empty short_message.
                Want::CStr(v) | Want::Octets(v) if v.is_empty() => {}
                _ => check.problem(*name, show_want(want), "missing"),
            }
            continue;
        };
        used[k] = true;
        match want {
            Want::Int(v) => check.eq(name, *v, n.uint()?),
            Want::Octets(v) => check.eq(name, Hex(v), Hex(&n.octets()?)),
            Want::CStr(v) | Want::Time(v) => {
                let mut with_nul = v.clone();
                with_nul.push(0);
                check.eq(name, Text(&with_nul), Text(&n.octets()?));
            }
        }
    }
    for (k, n) in theirs.iter().enumerate() {
        if !used[k] {
            check.problem(
                n.name.clone(),
                "no such field",
                format!("{:?} (at offset {})", n.show, n.pos),
            );
        }
    }
    Ok(())
}

fn show_want(w: &Want) -> String {
    match w {
        Want::Int(v) => v.to_string(),
        Want::CStr(v) | Want::Time(v) => format!("{:?}", Text(v)),
        Want::Octets(v) => format!("{:?}", Hex(v)),
    }
}

/// Octets shown as text when printable.
struct Text<'a>(&'a [u8]);

impl PartialEq for Text<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}

impl std::fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

/// Octets shown as hex.
struct Hex<'a>(&'a [u8]);

impl PartialEq for Hex<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}

impl std::fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", hex::encode(self.0))
    }
}

/// submit_multi's destinations and submit_multi_resp's unsuccessful SMEs.
fn check_dest_lists(check: &mut Check, smpp: &Node, body: &Body) -> Result {
    let mut want: Vec<(&str, Want)> = Vec::new();
    let list = match body {
        Body::SubmitMulti(m) => {
            for d in &m.dest_addresses {
                match d {
                    DestAddress::Sme { ton, npi, addr } => {
                        want.push(("smpp.dest_addr_ton", i(*ton)));
                        want.push(("smpp.dest_addr_npi", i(*npi)));
                        want.push(("smpp.destination_addr", s(addr)));
                    }
                    DestAddress::DistributionList(name) => want.push(("smpp.dl_name", s(name))),
                }
            }
            "smpp.dlist"
        }
        Body::SubmitMultiResp(r) => {
            for u in &r.unsuccess_smes {
                want.push(("smpp.dest_addr_ton", i(u.ton)));
                want.push(("smpp.dest_addr_npi", i(u.npi)));
                want.push(("smpp.destination_addr", s(&u.addr)));
                want.push(("smpp.error_status_code", i(u.error_status.0)));
            }
            "smpp.dlist_resp"
        }
        _ => return Ok(()),
    };
    let theirs: Vec<&Node> = smpp
        .child(list)
        .map(|l| l.children.iter().collect())
        .unwrap_or_default();
    check.eq(
        &format!("{list}: entries (fields)"),
        want.len(),
        theirs.len(),
    );
    for (k, ((name, w), n)) in want.iter().zip(&theirs).enumerate() {
        let label = format!("{list}[{k}] {name}");
        if n.name != *name {
            check.problem(label, format!("field {name}"), format!("field {}", n.name));
            continue;
        }
        match w {
            Want::Int(v) => check.eq(&label, *v, n.uint()?),
            Want::CStr(v) => {
                let mut with_nul = v.clone();
                with_nul.push(0);
                check.eq(&label, Text(&with_nul), Text(&n.octets()?));
            }
            Want::Time(_) | Want::Octets(_) => {
                return Err(format!(
                    "{label}: destination lists hold integers and strings only"
                ))
            }
        }
    }
    Ok(())
}

fn check_tlvs(check: &mut Check, smpp: &Node, tlvs: &Tlvs, quirks: &mut Vec<Quirk>) -> Result {
    let theirs: Vec<&Node> = smpp
        .child("smpp.opt_params")
        .map(|o| {
            o.children
                .iter()
                .filter(|c| c.name == "smpp.opt_param")
                .collect()
        })
        .unwrap_or_default();
    let ours: Vec<_> = tlvs.iter().collect();
    let mut desynced = false;
    for (k, tlv) in ours.iter().enumerate() {
        let label = format!("TLV #{k} {}", tlv.tag);
        let Some(n) = theirs.get(k) else {
            check.problem(label, "present", "missing");
            continue;
        };
        let tag = field(n, "smpp.opt_param_tag")?.uint()?;
        let len = field(n, "smpp.opt_param_len")?.uint()?;
        check.eq(&format!("{label}: tag"), u64::from(tlv.tag.0), tag);
        check.eq(&format!("{label}: length"), tlv.value.len() as u64, len);
        if tag != u64::from(tlv.tag.0) || len != tlv.value.len() as u64 {
            desynced = true;
            break;
        }
        // Where Wireshark's value fields lie, and where it goes on from.
        let start = n.pos + 4;
        let end = start + tlv.value.len();
        let values: Vec<&Node> = n
            .children
            .iter()
            .filter(|c| c.name != "smpp.opt_param_tag" && c.name != "smpp.opt_param_len")
            .collect();
        let read_end = match theirs.get(k + 1) {
            Some(next) => next.pos,
            None => values
                .iter()
                .map(|v| v.end())
                .max()
                .unwrap_or(start)
                .max(start),
        };
        if read_end != end {
            let read = read_end.saturating_sub(start);
            if tlv.tag == TlvTag::BROADCAST_REP_NUM && tlv.value.len() == 2 && read == 1 {
                quirks.push(Quirk::BroadcastRepNumOneOctet);
            } else {
                check.problem(
                    format!("{label}: value size"),
                    format!("{} octets", tlv.value.len()),
                    format!("reads {read} octets"),
                );
            }
            desynced = true;
            break;
        }
        check.compared += 1; // the value's extent
        for v in &values {
            if v.pos < start || v.end() > end {
                check.problem(
                    format!("{label}: {}", v.name),
                    format!("value at offsets {start}..{end}"),
                    format!("at {}..{}", v.pos, v.end()),
                );
                continue;
            }
            if v.value.is_empty() && v.unmasked.is_none() && v.size > 0 {
                // A text-only item (FT_NONE, e.g. smpp.callback_num): PDML
                // gives no octets; its extent was checked above.
                continue;
            }
            let slice = &tlv.value[v.pos - start..v.end() - start];
            check.eq(
                &format!("{label}: {}", v.name),
                Hex(slice),
                Hex(&v.octets()?),
            );
            // An integer TLV read whole: compare the numbers too.
            let integer = tlv.tag.info().is_some_and(|i| i.kind == TlvKind::Integer);
            if integer && v.unmasked.is_none() && v.pos == start && v.size == tlv.value.len() {
                if let Some(num) = parse_int(&v.show) {
                    let ours = tlvs.get_int(tlv.tag).map(u64::from);
                    check.eq(&format!("{label}: {} (integer)", v.name), ours, Some(num));
                }
            }
        }
    }
    if !desynced {
        check.eq("number of TLVs", ours.len(), theirs.len());
    }
    if !desynced && theirs.len() > ours.len() {
        for n in &theirs[ours.len()..] {
            let tag = n.child("smpp.opt_param_tag").map(|t| t.show.clone());
            check.problem(
                "TLVs",
                format!("{} TLVs", ours.len()),
                format!("an extra TLV {tag:?} at offset {}", n.pos),
            );
        }
    }
    Ok(())
}

/// An integer as tshark shows it: decimal or 0x-hex.
fn parse_int(show: &str) -> Option<u64> {
    match show.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => show.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdml_parses_nesting_and_entities() {
        let xml = r#"<?xml version="1.0"?>
<pdml>
<packet>
  <proto name="smpp" pos="54" size="16">
    <field name="smpp.system_id" show="a&quot;b&#x27;" value="61" pos="70" size="1"/>
    <field name="x" show="" value="">
      <proto name="_ws.malformed" hide="yes" size="0" pos="54"/>
    </field>
  </proto>
</packet>
</pdml>"#;
        let p = parse_pdml(xml).unwrap();
        assert_eq!(p.len(), 1);
        let smpp = &p[0][0];
        assert_eq!(smpp.children[0].show, "a\"b'");
        assert_eq!(smpp.children[0].uint().unwrap(), 0x61);
        assert_eq!(smpp.children[1].children[0].name, "_ws.malformed");
        assert!(parse_pdml("<packet><proto name=\"a\">").is_err());
    }
}
