//! `smpp decode`: snapshots of every golden PDU (text and JSON), error cases,
//! and the real binary's input handling and exit codes.

use std::io::Write as _;
use std::process::{Command, Stdio};

use smpp_cli::decode::{decode_chunks, Output};

const GOLDEN: &str = include_str!("../../smpp-proto/testdata/golden.txt");

fn golden() -> Vec<(&'static str, &'static str)> {
    GOLDEN
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next().expect("name");
            let _direction = it.next().expect("direction");
            (name, it.next().expect("hex"))
        })
        .collect()
}

fn decode(input: &str, json: bool) -> Output {
    let mut out = Output::new(json);
    decode_chunks([input.to_string()], false, &mut out);
    out
}

fn both(input: &str) -> String {
    let text = decode(input, false);
    let json = decode(input, true);
    format!(
        "--- text (exit {}) ---\n{}--- stderr ---\n{}--- json ---\n{}",
        u8::from(text.failed),
        text.stdout,
        text.stderr,
        json.stdout
    )
}

#[test]
fn golden_pdus() {
    let golden = golden();
    assert!(golden.len() >= 30, "golden file not read");
    for (name, hex) in golden {
        let text = decode(hex, false);
        assert!(!text.failed, "{name}: {}", text.stderr);
        let json = decode(hex, true);
        // Every JSON line is an object naming the command and its full length.
        let v: serde_json::Value = serde_json::from_str(json.stdout.trim()).expect("JSON");
        assert_eq!(v["command_length"], hex.len() / 2, "{name}");
        insta::assert_snapshot!(format!("golden_{name}"), both(hex));
    }
}

#[test]
fn golden_stream_is_split_by_command_length() {
    let stream: String = golden().iter().map(|(_, h)| *h).collect();
    let out = decode(&stream, true);
    assert!(!out.failed, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), golden().len());
}

#[test]
fn errors() {
    let cases = [
        // command_length below the header: fatal, nothing after it is framed.
        (
            "length_too_small",
            "0000000c00000015000000000000000700000010000000150000000000000007",
        ),
        // command_length above the 64 KiB maximum.
        ("length_too_large", "7fffffff000000150000000000000007"),
        // Ends before command_length says.
        ("truncated", "0000002b00000002000000000000000165736d65"),
        // system_id without its NUL; the stream goes on with the next PDU.
        (
            "missing_nul",
            "0000001400000002000000000000000165736d6500000010000000150000000000000007",
        ),
        // submit_sm whose sm_length runs past the end.
        (
            "sm_length_overrun",
            "0000002200000004000000000000000200000000000000000000000000000000ff41",
        ),
        // A TLV whose length runs past the PDU.
        (
            "tlv_overrun",
            "000000188000000200000000000000015300021000050102",
        ),
        ("not_hex", "0000001000000015zz"),
        ("odd_digits", "000000100000001500000000000000070"),
        // An unknown command id decodes (kept raw), it is not an error.
        (
            "unknown_command",
            "0000001400AB00CD000000000000000101020304",
        ),
    ];
    for (name, hex) in cases {
        insta::assert_snapshot!(format!("error_{name}"), both(hex));
    }
}

#[test]
fn separators_are_tolerated() {
    let plain = decode("00000010000000150000000000000007", false);
    for spaced in [
        "00 00 00 10 00 00 00 15 00 00 00 00 00 00 00 07",
        "0x00:0x00:0x00:0x10 0x00000015 00:00:00:00 00,00,00,07",
        "  00000010 00000015\t00000000 00000007  ",
    ] {
        let out = decode(spaced, false);
        assert!(!out.failed, "{spaced}: {}", out.stderr);
        assert_eq!(out.stdout, plain.stdout);
    }
}

fn smpp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smpp"))
}

fn run_stdin(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = smpp()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn smpp");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn binary_arguments_and_exit_codes() {
    let out = smpp()
        .args(["decode", "00000010", "00000015", "00000000", "00000007"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("enquire_link (16 octets"));

    let out = smpp()
        .args([
            "decode",
            "--json",
            "0000002b00000002000000000000000165736d65",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("truncated PDU at byte 0: 20 octets, 23 more needed"),
        "{err}"
    );
}

#[test]
fn binary_stdin_lines_and_stream() {
    let lines = "# a comment\n00000010000000150000000000000007\n\n0x00000010 0x80000015 0x00000000 0x00000007\n";
    let (code, stdout, stderr) = run_stdin(&["decode", "--json"], lines);
    assert_eq!(code, 0, "{stderr}");
    let commands: Vec<String> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON")["command"].to_string())
        .collect();
    assert_eq!(commands, ["\"enquire_link\"", "\"enquire_link_resp\""]);

    // A dump wrapped over lines is one PDU with --stream, and two truncated lines without.
    let wrapped = "0000001000000015\n0000000000000007\n";
    let (code, stdout, _) = run_stdin(&["decode", "--stream"], wrapped);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("enquire_link (16 octets at offset 0)"));
    let (code, _, stderr) = run_stdin(&["decode"], wrapped);
    assert_eq!(code, 1);
    assert!(stderr.contains("line 1: truncated PDU"), "{stderr}");
    assert!(
        stderr.contains("line 2: command_length 0 is below"),
        "{stderr}"
    );

    // A bad line does not stop the next ones.
    let (code, stdout, stderr) = run_stdin(
        &["decode"],
        "0000000c000000150000000000000007\n00000010000000150000000000000007\n",
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("line 1: command_length 12 is below the 16-octet header at byte 0"),
        "{stderr}"
    );
    assert!(stdout.contains("enquire_link"));

    let (code, _, stderr) = run_stdin(&["decode"], "");
    assert_eq!(code, 1);
    assert!(stderr.contains("no PDU"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    let out = smpp()
        .args(["decode", "--no-such-flag"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = smpp().args(["no-such-command"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

/// Every subcommand's arguments are consistent (no duplicate names between a
/// subcommand and the flattened connection arguments, valid defaults...).
#[test]
fn command_line_definition_is_valid() {
    use clap::CommandFactory as _;
    smpp_cli::Cli::command().debug_assert();
}
