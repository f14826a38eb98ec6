//! `cargo xtask`: everything beyond plain cargo.
//!
//! - `cargo xtask ci`: the whole test suite, as CI runs it.
//! - `cargo xtask fuzz [TARGET] [--seconds N]`: run cargo-fuzz targets.
//! - `cargo xtask conformance [--check]`: write (or check) `docs/CONFORMANCE.md`.
//! - `cargo xtask interop [tshark|python|rust|all] [--stand-in]`: Wireshark's
//!   dissector checks our golden PDUs; independent SMPP peers (PyPI smpplib,
//!   aiosmpplib; crates.io smpp34, rusmppc) against our SMSC and client.
//! - `cargo xtask bench codec`: the codec race against rusmpp and smpp34, as a table.
//! - `cargo xtask bench store`: the durable store's candidate engines on one workload.
//! - `cargo xtask bench [e2e]`: the end-to-end race (our client and server, the
//!   raw ceiling, smpp34 and rusmppc), as a table.
//! - `cargo xtask bench gateway`: customers → `smpp gateway` (durable) → two
//!   upstreams, receipts back; beside Jasmin 0.11.1 and the ceiling, as a table.
//! - `cargo xtask soak [--minutes N]`: long mixed load against `smpp serve`, RSS and fds sampled.
//! - `cargo xtask lines`: code lines of the adapters and their shared async core.
//! - `cargo xtask examples`: the feature examples against a real `smpp serve` (part of ci).
//! - `cargo xtask postgres`: a PostgreSQL for the gateway's store tests (the
//!   one at 127.0.0.1:5432, else the local cluster started; part of ci).
//! - `cargo xtask ui`: the dashboard in a real Chromium against a real `smpp serve`
//!   (screenshots in `target/ui/`; part of ci).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod bench;
mod bench_e2e;
mod bench_gateway;
mod bench_idle;
mod conformance;
mod fuzz;
mod interop;
mod lines;
mod postgres;
mod soak;
mod ui;

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
        ["core"] => no_runtime_in_core(),
        ["examples"] => feature_examples(),
        ["ui", rest @ ..] => ui::run_ui(rest),
        ["postgres"] => postgres::ensure().map(|url| println!("{url}")),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 ci [--quick]                       fmt, clippy (benches too), tests, feature examples, docs, dependency checks, packaging, fuzz smoke, interop\n  \
                 fuzz [TARGET] [--seconds N]        run cargo-fuzz targets (all by default)\n  \
                 conformance [--check]              write (or check) docs/CONFORMANCE.md from the code's tables\n  \
                 interop [PART]... [--stand-in]     PART: tshark (Wireshark decodes every golden PDU), python\n                                     (smpplib, aiosmpplib, malformed bytes vs our SMSC), rust (smpp34,\n                                     rusmppc vs our SMSC; our client vs smpp34's server), gateway\n                                     (the same customers vs smpp gateway); all (default)\n  \
                 bench codec [--table-only]         race the codec against rusmpp and smpp34, print the table\n  \
                 bench store [--secs S] [--rounds N] race the durable store's candidate engines\n  \
                 bench [e2e] [--quick] [--runs N]   end-to-end race: ours, raw ceiling, smpp34, rusmppc; RSS per bind\n  \
                 bench gateway [--rounds N] [--secs S] [--no-jasmin] [--quick] [--json] [--database URL]\n                                     gateway end to end with receipts, beside Jasmin 0.11.1 and the ceiling\n  \
                 soak [--minutes N] [--restart-every M]  mixed load on `smpp serve` with restarts; RSS, fds, losses\n  \
                 lines                              code lines of the adapters and their shared async core\n  \
                 core                               smpp-proto is sans-IO, no raw flag masks outside it (part of ci)\n  \
                 examples                           the feature examples (WAP push, MMS, USSD, MWI, billing) against smpp serve (part of ci)\n  \
                 ui                                 the dashboard in Chromium against smpp serve; screenshots in target/ui (part of ci)\n  \
                 postgres                           make sure a PostgreSQL answers for the store tests (starts the local cluster); print its URL"
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
    step("PostgreSQL for the gateway's store tests");
    let database = postgres::ensure()?;
    step("tests");
    run(cargo()
        .args(["test", "--workspace", "--all-features", "--locked"])
        .env("SMPP_TEST_DATABASE_URL", &database))?;
    if let Some(restart) = postgres::restart_command(&database) {
        step("the gateway cluster across a PostgreSQL restart");
        run(cargo()
            .args([
                "test",
                "--locked",
                "-p",
                "smpp-cli",
                "--test",
                "gateway_binary",
            ])
            .args([
                "--",
                "--ignored",
                "a_cluster_under_load_survives_a_postgresql_restart",
            ])
            .env("SMPP_TEST_DATABASE_URL", &database)
            .env("SMPP_TEST_PG_RESTART", restart))?;
    }
    step("feature examples against a real smpp serve");
    feature_examples()?;
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
    step("smpp-proto is sans-IO; no raw flag masks outside it");
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
    step("dashboard in a real browser");
    ui::run_ui(&[])?;
    eprintln!("\nci: all green in {:.0?}", started.elapsed());
    Ok(())
}

/// The examples that show a message feature end to end: each starts `smpp serve`,
/// sends the feature through it to a bound receiver, checks what arrives decodes to
/// what was sent, and exits non-zero otherwise.
const FEATURE_EXAMPLES: &[&str] = &[
    "wap_push",
    "mms_notification",
    "ussd_menu",
    "mwi",
    "billing",
];

fn feature_examples() -> Result {
    // The examples find `smpp` beside them (target/debug).
    run(cargo().args(["build", "--locked", "-p", "smpp-cli", "--bin", "smpp"]))?;
    for name in FEATURE_EXAMPLES {
        run(cargo().args([
            "run",
            "--locked",
            "-q",
            "-p",
            "smpp-examples",
            "--example",
            name,
        ]))?;
    }
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
        if let (Some(name), Some(version)) = (package["name"].as_str(), package["version"].as_str())
        {
            forget_verified_sources(name, version);
        }
    }
    if std::env::var_os("CI").is_none() {
        cmd.arg("--allow-dirty");
    }
    run(&mut cmd)
}

/// Removes cargo's extracted copies of an earlier packaging of `name`
/// `version`. Verification builds each crate against the others from a
/// temporary local registry whose sources cargo extracts under
/// `$CARGO_HOME/registry/src/<hash of its path>/`, and reuses an extraction
/// it finds there: a second run from the same checkout path would build
/// against the first run's sources (seen: a field added since was
/// "missing"). Only those local-registry copies are removed (crates.io's
/// directory is left alone).
fn forget_verified_sources(name: &str, version: &str) {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let Some(home) = home else { return };
    let Ok(registries) = std::fs::read_dir(home.join("registry/src")) else {
        return;
    };
    for registry in registries.flatten() {
        if registry.file_name().to_string_lossy().starts_with("index.") {
            continue;
        }
        let stale = registry.path().join(format!("{name}-{version}"));
        if stale.exists() {
            let _ = std::fs::remove_dir_all(&stale);
        }
    }
}

/// The core must stay sans-IO: its direct dependencies are `bytes`,
/// `thiserror` and at most `tracing`; its code (tests aside) uses no lock,
/// task, waker, panic catching, OS randomness or I/O error; and the
/// workspace has one trait named `Runtime`.
fn no_runtime_in_core() -> Result {
    let out = cargo()
        .args([
            "tree",
            "-p",
            "smpp-proto",
            "-e",
            "normal",
            "--depth",
            "1",
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
    let allowed = ["smpp-proto", "bytes", "thiserror", "tracing"];
    for line in tree.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if !name.is_empty() && !allowed.contains(&name) {
            return Err(format!(
                "smpp-proto depends on `{name}`: the core may depend on bytes, thiserror and tracing only"
            ));
        }
    }
    let banned = [
        "Mutex",
        "RwLock",
        "OnceLock",
        "catch_unwind",
        "std::task",
        "Waker",
        "RandomState",
        "std::io::Error",
        "io::Result",
        "std::net::TcpStream",
        "std::thread",
        "SystemTime::now",
        "Instant::now",
    ];
    let mut files = Vec::new();
    rust_files(&root().join("crates/smpp-proto/src"), &mut files)?;
    for file in &files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Unit tests and the fuzz harnesses (test code compiled into the
        // crate for cargo-fuzz) may use a clock.
        if name == "tests.rs"
            || name == "fuzzing.rs"
            || file
                .components()
                .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "fuzzing")
        {
            continue;
        }
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("#[cfg(test)]") {
                break; // the unit tests follow
            }
            if code.starts_with("//") {
                continue;
            }
            if let Some(word) = banned.iter().find(|w| code.contains(*w)) {
                return Err(format!(
                    "{}:{}: `{word}` in smpp-proto: the core is sans-IO (runtime parts belong in smpp-async)",
                    file.display(),
                    n + 1
                ));
            }
        }
    }
    // Typed protocol fields: outside the core, esm_class and
    // registered_delivery are read through EsmClass / RegisteredDelivery,
    // never masked by hand.
    let mut code = Vec::new();
    rust_files(&root().join("crates"), &mut code)?;
    rust_files(&root().join("examples"), &mut code)?;
    rust_files(&root().join("xtask/src"), &mut code)?;
    for file in &code {
        if file.starts_with(root().join("crates/smpp-proto")) || file.ends_with("xtask/src/main.rs")
        {
            continue;
        }
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        for (n, line) in text.lines().enumerate() {
            let masked = ["esm_class", "registered_delivery"].iter().any(|field| {
                line.contains(&format!("{field} &")) && !line.contains(&format!("{field} &&"))
                    || line.contains(&format!("& {field}"))
                    || line.contains(&format!("&{field}")) && line.contains(" & ")
            });
            if masked {
                return Err(format!(
                    "{}:{}: a raw mask on esm_class/registered_delivery: use smpp_proto::pdu::EsmClass / RegisteredDelivery",
                    file.display(),
                    n + 1
                ));
            }
        }
    }
    let mut runtimes = Vec::new();
    let mut all = Vec::new();
    rust_files(&root().join("crates"), &mut all)?;
    for file in &all {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        if text.lines().any(|l| {
            l.trim_start().starts_with("pub trait Runtime")
                || l.trim_start().starts_with("trait Runtime")
        }) {
            runtimes.push(file.display().to_string());
        }
    }
    if runtimes.len() > 1 {
        return Err(format!(
            "more than one trait named `Runtime`: {}",
            runtimes.join(", ")
        ));
    }
    eprintln!(
        "smpp-proto: direct dependencies {}, {} source files sans-IO, one `Runtime` trait",
        tree.lines().count().saturating_sub(1),
        files.len()
    );
    Ok(())
}

/// Every `.rs` file under `dir` (recursively; `target` skipped).
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}
