//! `cargo xtask`: everything beyond plain cargo.
//!
//! - `cargo xtask ci`: the whole test suite, as CI runs it.
//! - `cargo xtask fuzz [TARGET] [--seconds N]`: run cargo-fuzz targets.
//! - `cargo xtask conformance [--check]`: write (or check) `docs/CONFORMANCE.md`.
//! - `cargo xtask interop [tshark|python|rust|all] [--stand-in]`: Wireshark's
//!   dissector checks our golden PDUs; independent SMPP peers (PyPI smpplib,
//!   aiosmpplib; crates.io smpp34, rusmppc) against our SMSC and client.
//! - `cargo xtask bench codec`: the codec race against rusmpp and smpp34, as a table.
//! - `cargo xtask bench [e2e]`: the end-to-end race (our client and server, the
//!   raw ceiling, smpp34 and rusmppc), as a table.
//! - `cargo xtask soak [--minutes N]`: long mixed load against `smpp serve`, RSS and fds sampled.
//! - `cargo xtask lines`: code lines of the adapters and their shared async core.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod bench;
mod bench_e2e;
mod conformance;
mod fuzz;
mod interop;
mod lines;
mod soak;

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["ci", rest @ ..] => ci(rest),
        ["fuzz", rest @ ..] => fuzz::run(rest),
        ["conformance", rest @ ..] => conformance::run(rest),
        ["interop", rest @ ..] => interop::run(rest),
        ["bench", rest @ ..] => bench::run_bench(rest),
        ["soak", rest @ ..] => soak::run_soak(rest),
        ["lines", rest @ ..] => lines::run(rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 ci [--quick]                       fmt, clippy (benches too), tests, docs, dependency checks, packaging, fuzz smoke, interop\n  \
                 fuzz [TARGET] [--seconds N]        run cargo-fuzz targets (all by default)\n  \
                 conformance [--check]              write (or check) docs/CONFORMANCE.md from the code's tables\n  \
                 interop [PART]... [--stand-in]     PART: tshark (Wireshark decodes every golden PDU), python\n                                     (smpplib, aiosmpplib, malformed bytes vs our SMSC), rust (smpp34,\n                                     rusmppc vs our SMSC; our client vs smpp34's server); all (default)\n  \
                 bench codec [--table-only]         race the codec against rusmpp and smpp34, print the table\n  \
                 bench [e2e] [--quick] [--runs N]   end-to-end race: ours, raw ceiling, smpp34, rusmppc; RSS per bind\n  \
                 soak [--minutes N] [--restart-every M]  mixed load on `smpp serve` with restarts; RSS, fds, losses\n  \
                 lines                              code lines of the adapters and their shared async core"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// Runs a command in the workspace root, echoing it; fails on a non-zero exit.
pub(crate) fn run(cmd: &mut Command) -> Result {
    eprintln!("$ {}", show(cmd));
    let status = cmd
        .current_dir_if_unset()
        .status()
        .map_err(|e| format!("{}: {e}", show(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed: {status}", show(cmd)))
    }
}

pub(crate) fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

trait CurrentDir {
    fn current_dir_if_unset(&mut self) -> &mut Self;
}

impl CurrentDir for Command {
    fn current_dir_if_unset(&mut self) -> &mut Self {
        if self.get_current_dir().is_none() {
            self.current_dir(root());
        }
        self
    }
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn ci(args: &[&str]) -> Result {
    let quick = args.contains(&"--quick");
    let started = std::time::Instant::now();
    let step = |name: &str| eprintln!("\n==> {name} ({:.0?} so far)", started.elapsed());

    step("format");
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    step("clippy");
    let clippy = |features: &[&str]| {
        let mut c = cargo();
        c.args(["clippy", "--workspace", "--all-targets", "--locked"])
            .args(features);
        c.args(["--", "-D", "warnings"]);
        c
    };
    // With every optional feature (arbitrary derives, TLS), and as most users build it.
    run(&mut clippy(&["--all-features"]))?;
    run(&mut clippy(&[]))?;
    step("tests");
    run(cargo().args(["test", "--workspace", "--all-features", "--locked"]))?;
    step("docs");
    run(cargo()
        .args([
            "doc",
            "--workspace",
            "--no-deps",
            "--all-features",
            "--locked",
        ])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    step("conformance statement is current");
    conformance::run(&["--check"])?;
    step("smpp-proto depends on no runtime");
    no_runtime_in_core()?;
    if quick {
        return Ok(());
    }
    step("packages: every publishable crate packaged and built from its .crate");
    package()?;
    step("fuzz targets: build and smoke run");
    fuzz::run(&["--seconds", "20"])?;
    step("interop: Wireshark dissector, independent SMPP peers");
    interop::run(&["all"])?;
    eprintln!("\nci: all green in {:.0?}", started.elapsed());
    Ok(())
}

/// `cargo package --workspace`, verified (each crate built from its packaged
/// sources, against the others packaged beside it), for the crates that are
/// published: the `publish = false` ones are never uploaded, and verifying
/// them too roughly doubled the step's time. A developer's uncommitted work is
/// allowed; CI (`CI` set, a fresh clone) must package a clean tree.
fn package() -> Result {
    let out = cargo()
        .args(["metadata", "--no-deps", "--format-version", "1", "--locked"])
        .current_dir(root())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let mut cmd = cargo();
    cmd.args(["package", "--workspace", "--locked"]);
    // `publish = false` reads as `"publish": []` (no registry may have it).
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let unpublished = package["publish"].as_array().is_some_and(Vec::is_empty);
        if let (true, Some(name)) = (unpublished, package["name"].as_str()) {
            cmd.args(["--exclude", name]);
        }
    }
    if std::env::var_os("CI").is_none() {
        cmd.arg("--allow-dirty");
    }
    run(&mut cmd)
}

/// The core must stay runtime-free: no async runtime or socket library below it.
fn no_runtime_in_core() -> Result {
    let out = cargo()
        .args([
            "tree",
            "-p",
            "smpp-proto",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--locked",
        ])
        .current_dir(root())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    let banned = [
        "tokio",
        "mio",
        "async-io",
        "smol",
        "async-std",
        "async-executor",
        "futures-io",
    ];
    for line in tree.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if banned.contains(&name) {
            return Err(format!(
                "smpp-proto depends on `{name}`: the core must not depend on a runtime"
            ));
        }
    }
    eprintln!("smpp-proto normal dependencies: {}", tree.lines().count());
    Ok(())
}
