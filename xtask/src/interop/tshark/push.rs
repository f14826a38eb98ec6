//! Wireshark's WSP, MMSE and WBXML dissectors against our WAP push builders and
//! decoder: the golden pushes (`crates/smpp-proto/testdata/push.txt`, submit_sm PDUs
//! with an MMS notification, a Service Indication and a Service Loading) are decoded by
//! tshark through SMPP, the SMS user data header (WAP ports) and WSP, and every field
//! Wireshark reads must be what `smpp_proto::message::wap::decode_push` reads from the
//! same octets. No frame may be malformed or raise a warning.

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use smpp_proto::message::mms::{MmsExpiry, MmsMessageClass};
use smpp_proto::message::wap::{PushContent, WapPush};
use smpp_proto::message::UserDataHeader;
use smpp_proto::pdu::{decode_frame, Body, DecodeConfig};

use super::{hexdump, output, read_golden, ESME_PORT, MC_PORT};
use crate::Result;

/// The tshark fields compared, in the order `-e` lists them.
const FIELDS: [&str; 13] = [
    "wsp.header.content_type",
    "wsp.header.x_wap_application_id",
    "mmse.message_type",
    "mmse.transaction_id",
    "mmse.mms_version",
    "mmse.from",
    "mmse.subject",
    "mmse.message_class.id",
    "mmse.message_size",
    "mmse.expiry.rel",
    "mmse.content_location",
    "wbxml.public_id.known",
    "wbxml.str_i",
];

/// Checks the golden pushes; returns how many fields were compared.
pub(super) fn check(dir: &Path) -> Result<usize> {
    let path = crate::root().join("crates/smpp-proto/testdata/push.txt");
    let golden = read_golden(&path)?;
    let dump = dir.join("push.hexdump");
    let pcap = dir.join("push.pcapng");
    std::fs::write(&dump, hexdump(&golden)).map_err(|e| format!("{}: {e}", dump.display()))?;
    output(
        Command::new("text2pcap")
            .args(["-q", "-D", "-T", &format!("{ESME_PORT},{MC_PORT}")])
            .arg(&dump)
            .arg(&pcap),
    )?;
    let tshark = |extra: &[&str]| {
        let mut cmd = Command::new("tshark");
        cmd.arg("-r")
            .arg(&pcap)
            .args(["-d", &format!("tcp.port=={MC_PORT},smpp")])
            .args(extra)
            .env("WIRESHARK_CONFIG_DIR", dir);
        output(&mut cmd)
    };
    let flagged = tshark(&[
        "-Y",
        "_ws.malformed || _ws.expert.severity >= warning",
        "-T",
        "fields",
        "-e",
        "frame.number",
    ])?;
    if !flagged.trim().is_empty() {
        return Err(format!(
            "Wireshark flags push frames {:?} as malformed or warning/error ({})",
            flagged.split_whitespace().collect::<Vec<_>>(),
            pcap.display()
        ));
    }
    let mut args = vec!["-T", "fields", "-E", "separator=|", "-E", "occurrence=a"];
    for f in FIELDS {
        args.extend(["-e", f]);
    }
    let table = tshark(&args)?;
    let rows: Vec<&str> = table.lines().filter(|l| !l.trim().is_empty()).collect();
    if rows.len() != golden.len() {
        return Err(format!(
            "tshark decoded {} push frames, expected {}",
            rows.len(),
            golden.len()
        ));
    }
    let mut problems = Vec::new();
    let mut compared = 0;
    for (g, row) in golden.iter().zip(rows) {
        let theirs: Vec<&str> = row.split('|').collect();
        let field = |name: &str| {
            FIELDS
                .iter()
                .position(|f| *f == name)
                .and_then(|i| theirs.get(i))
                .copied()
                .unwrap_or("")
        };
        let push = ours(&g.bytes).map_err(|e| format!("{}: our decoder: {e}", g.name))?;
        let mut expect = |name: &str, ours: String| {
            compared += 1;
            if field(name) != ours {
                problems.push(format!(
                    "{}: {name}: ours {ours:?}, Wireshark {:?}",
                    g.name,
                    field(name)
                ));
            }
        };
        expect("wsp.header.content_type", push.content_type.clone());
        match &push.content {
            PushContent::MmsNotification(n) => {
                // x-wap-application:mms.ua is well-known application id 4.
                expect(
                    "wsp.header.x_wap_application_id",
                    match push.application_id.as_deref() {
                        Some("4") => "x-wap-application:mms.ua".into(),
                        other => format!("{other:?}"),
                    },
                );
                expect("mmse.message_type", "0x82".into());
                expect("mmse.transaction_id", n.transaction_id.clone());
                expect(
                    "mmse.mms_version",
                    format!("{}.{}", n.version.0, n.version.1),
                );
                expect("mmse.from", n.from.clone().unwrap_or_default());
                expect("mmse.subject", n.subject.clone().unwrap_or_default());
                let class = match &n.class {
                    MmsMessageClass::Personal => "0x80",
                    MmsMessageClass::Advertisement => "0x81",
                    MmsMessageClass::Informational => "0x82",
                    MmsMessageClass::Auto => "0x83",
                    _ => "",
                };
                expect("mmse.message_class.id", class.into());
                expect("mmse.message_size", n.size.to_string());
                let MmsExpiry::Relative(secs) = n.expiry else {
                    return Err(format!("{}: the golden expiry is relative", g.name));
                };
                expect("mmse.expiry.rel", format!("{secs}.000000000"));
                expect("mmse.content_location", n.content_location.clone());
            }
            PushContent::ServiceIndication(si) => {
                expect("wbxml.public_id.known", "0x00000005".into());
                // Wireshark lists inline strings in document order: the href after its
                // prefix token, the si-id, the text.
                let href = si.href.trim_start_matches("https://www.");
                let strings = [Some(href), si.si_id.as_deref(), Some(si.text.as_str())];
                expect(
                    "wbxml.str_i",
                    strings.into_iter().flatten().collect::<Vec<_>>().join(","),
                );
            }
            PushContent::ServiceLoading(sl) => {
                expect("wbxml.public_id.known", "0x00000006".into());
                expect(
                    "wbxml.str_i",
                    sl.href.trim_start_matches("http://").to_owned(),
                );
            }
            _ => return Err(format!("{}: not a push our decoder knows", g.name)),
        }
    }
    if problems.is_empty() {
        eprintln!(
            "interop tshark: {} WAP pushes, {compared} WSP/MMSE/WBXML fields compared, no problems",
            golden.len()
        );
        Ok(compared)
    } else {
        Err(format!(
            "Wireshark and smpp-proto read the pushes differently ({}):\n  {}",
            pcap.display(),
            problems.join("\n  ")
        ))
    }
}

/// What our decoder reads from a golden submit_sm.
fn ours(wire: &[u8]) -> std::result::Result<WapPush, String> {
    let pdu = decode_frame(Bytes::copy_from_slice(wire), &DecodeConfig::default())
        .map_err(|e| e.to_string())?;
    let Body::SubmitSm(sm) = pdu.body else {
        return Err("not a submit_sm".into());
    };
    let (udh, payload) = UserDataHeader::split(&sm.short_message).map_err(|e| e.to_string())?;
    WapPush::from_user_data(Some(&udh), &payload)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "not on the WAP push port".into())
}
