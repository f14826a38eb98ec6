//! The comparison: each frame Wireshark decoded against what our codec
//! decodes from the same octets (header, mandatory fields, submit_multi's
//! lists, TLVs), with the known dissector quirks that excuse a field.

use bytes::Bytes;
use smpp_proto::pdu::{self, Body, DestAddress, FieldValue, Pdu, TlvKind, TlvTag, Tlvs};

use super::pdml::{Node, Packet};
use super::{Golden, ESME_PORT, MC_PORT};
use crate::Result;

/// Expert-info severity of a warning (`PI_WARN`); errors are above it.
const PI_WARN: u64 = 0x0060_0000;

#[derive(Debug)]
pub(super) struct Problem {
    pub(super) pdu: String,
    pub(super) field: String,
    pub(super) ours: String,
    pub(super) theirs: String,
}

#[derive(Debug, Default)]
pub(super) struct Check {
    /// The golden PDU being checked.
    pub(super) pdu: String,
    pub(super) compared: usize,
    pub(super) problems: Vec<Problem>,
    pub(super) quirks: Vec<String>,
    pub(super) skipped: Vec<String>,
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
pub(super) fn check_frame(
    check: &mut Check,
    frame: usize,
    g: &Golden,
    packet: &Packet,
) -> Result<bool> {
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
