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
//! integer value). Known dissector quirks are listed in `compare::Quirk`
//! and only excuse the exact PDU and field they name.
//!
//! The golden WAP pushes (an MMS notification, an SI and an SL) go through Wireshark's
//! WSP, MMSE and WBXML dissectors too ([`push`]).
//!
//! Files are left in `target/interop/tshark/` for inspection.
//!
//! This file runs the tools and walks the frames; [`pdml`] parses tshark's
//! XML output and [`compare`] checks each frame against our codec.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::Result;

mod compare;
mod pdml;
mod push;

use compare::{check_frame, Check};
use pdml::parse_pdml;

/// TCP port of the MC (SMSC) in the generated capture; the ESME uses [`ESME_PORT`].
const MC_PORT: u16 = 2775;
const ESME_PORT: u16 = 40000;

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
        push::check(&dir)?;
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
