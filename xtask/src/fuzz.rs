//! cargo-fuzz on the stable toolchain.
//!
//! The machine has only stable Rust; cargo-fuzz passes nightly-only flags
//! (`-Zsanitizer=address`, ...), which `RUSTC_BOOTSTRAP=1` lets stable accept.
//! That variable is set here, for the fuzz builds only, and nowhere else.

use std::path::Path;
use std::process::Command;

use crate::run as sh;
use crate::{cargo, root, Result};

/// Every target in `fuzz/Cargo.toml`, in the order `cargo xtask fuzz` runs them.
fn targets() -> Result<Vec<String>> {
    let manifest =
        std::fs::read_to_string(root().join("fuzz/Cargo.toml")).map_err(|e| e.to_string())?;
    let names: Vec<String> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|section| {
            let line = section
                .lines()
                .find(|l| l.trim_start().starts_with("name"))?;
            Some(line.split('"').nth(1)?.to_string())
        })
        .collect();
    if names.is_empty() {
        return Err("no targets in fuzz/Cargo.toml".into());
    }
    Ok(names)
}

fn ensure_cargo_fuzz() -> Result {
    let have = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        eprintln!("cargo-fuzz is missing: installing it from crates.io");
        sh(cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

fn fuzz_cmd() -> Command {
    let mut c = cargo();
    c.arg("fuzz")
        .env("RUSTC_BOOTSTRAP", "1")
        .current_dir(root().join("fuzz"));
    c
}

/// Seeds a target's corpus with the golden PDUs (decode_pdu; wrapped in
/// scripts for the session targets) so that the fuzzer starts from real traffic.
fn seed_corpus(target: &str) -> Result<std::path::PathBuf> {
    let dir = root().join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if target == "decode_pdu" {
        for (name, bytes) in golden()? {
            write_if_changed(&dir.join(format!("seed-{name}")), &bytes)?;
        }
    }
    if target == "proxy_header" {
        let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0f".to_vec();
        v2.extend_from_slice(&[192, 0, 2, 7, 198, 51, 100, 1, 0x9c, 0x40, 0x0a, 0xd7]);
        v2.extend_from_slice(&[0x05, 0x00, 0x00]);
        let seeds: [(&str, &[u8]); 4] = [
            (
                "v1-tcp4",
                b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 2775\r\n",
            ),
            ("v1-tcp6", b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n"),
            ("v1-unknown", b"PROXY UNKNOWN\r\n"),
            ("v2-tcp4", &v2),
        ];
        for (name, bytes) in seeds {
            write_if_changed(&dir.join(format!("seed-{name}")), bytes)?;
        }
    }
    if target == "endpoint" {
        // Scripts for the endpoint driver (see smpp-proto's fuzzing/endpoint.rs):
        // 0 binds, 1 submits, 3 delivers from the MC, 4/5 answer, 6/8 move
        // octets across, 9 advances time, 10 unbinds.
        let scripts: [&[u8]; 3] = [
            &[
                0x3F, 0, 2, 6, 0, 4, 0, 8, 0, 1, 10, 3, 0, 6, 0, 8, 0, 4, 1, 5, 1, 6, 0, 8, 0,
            ],
            &[0x00, 0, 0, 6, 0, 4, 1, 8, 0, 1, 0, 6, 0, 9, 200],
            &[
                0x12, 0, 1, 6, 0, 4, 0, 8, 0, 3, 0, 3, 0, 8, 0, 9, 100, 13, 0, 11, 1,
            ],
        ];
        for (i, script) in scripts.iter().enumerate() {
            write_if_changed(&dir.join(format!("seed-script-{i}")), script)?;
        }
    }
    if target.starts_with("session_") {
        // Scripts for the session drivers (see smpp-proto's fuzzing/session.rs):
        // op 0 feeds the next N octets as peer bytes, 9 sends a request, 11
        // answers a peer request, 6 advances time, 14 unbinds, 17/18/19/23
        // inject well-formed peer PDUs.
        let scripts: [&[u8]; 6] = [
            &[0x00, 9, 0, 9, 0, 23],
            &[0x01, 18, 5, 18, 6, 11, 0, 11, 0],
            &[0x00, 9, 0, 6, 60, 6, 60],
            &[0x02, 6, 40, 6, 40, 6, 200, 17, 0, 0],
            &[0x20, 19, 4, 22, 19, 2, 8, 8],
            &[0x05, 9, 1, 19, 0, 17, 0, 0, 14, 23],
        ];
        for (i, script) in scripts.iter().enumerate() {
            write_if_changed(&dir.join(format!("seed-script-{i}")), script)?;
        }
        for (name, bytes) in golden()? {
            if bytes.len() <= 255 {
                let mut script = vec![0x00, 0x00, bytes.len() as u8];
                script.extend_from_slice(&bytes);
                write_if_changed(&dir.join(format!("seed-{name}")), &script)?;
            }
        }
    }
    Ok(dir)
}

/// The golden PDUs: (name, wire bytes).
fn golden() -> Result<Vec<(String, Vec<u8>)>> {
    let golden = std::fs::read_to_string(root().join("crates/smpp-proto/testdata/golden.txt"))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for line in golden
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(_), Some(hex)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let bytes = hex::decode(hex).map_err(|e| format!("golden {name}: {e}"))?;
        out.push((name.to_string(), bytes));
    }
    Ok(out)
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> Result {
    if std::fs::read(path).ok().as_deref() != Some(bytes) {
        std::fs::write(path, bytes).map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub(crate) fn run(args: &[&str]) -> Result {
    let mut seconds = 60u64;
    let mut only: Option<&str> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--seconds takes a number")?;
            }
            t if !t.starts_with('-') => only = Some(t),
            other => return Err(format!("unknown fuzz option {other}")),
        }
    }
    let all = targets()?;
    let chosen: Vec<&String> = match only {
        Some(t) => vec![all
            .iter()
            .find(|n| *n == t)
            .ok_or_else(|| format!("no fuzz target {t}; have {all:?}"))?],
        None => all.iter().collect(),
    };
    ensure_cargo_fuzz()?;
    sh(fuzz_cmd().args(["build", "-O", "--debug-assertions"]))?;
    for target in chosen {
        let corpus = seed_corpus(target)?;
        eprintln!("fuzzing {target} for {seconds} s");
        sh(fuzz_cmd()
            .args(["run", "-O", "--debug-assertions", target.as_str()])
            .arg(&corpus)
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-rss_limit_mb=2048",
                "-max_len=70000",
                "-print_final_stats=1",
            ]))?;
    }
    Ok(())
}
