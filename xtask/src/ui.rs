//! `cargo xtask ui`: the dashboard's browser tests. A real Chromium (Debian's
//! `chromium`; a browser download cannot be fetched here) driven by npm's
//! `playwright-core` against the real `smpp serve` (see `xtask/ui/dashboard.cjs`).
//! Installs what is missing (`apt-get install chromium`, `npm install
//! playwright-core` into `target/ui`), and leaves a screenshot of each page
//! under `target/ui/`.

use std::path::Path;
use std::process::Command;

use crate::{cargo, root, run, Result};

/// The playwright-core release the script is written against.
const PLAYWRIGHT_CORE: &str = "playwright-core@1.65.1";

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `apt-get install` of `packages` (as root, as CI and this machine run).
fn apt_install(packages: &[&str]) -> Result {
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

pub(crate) fn run_ui(_args: &[&str]) -> Result {
    let mut missing = Vec::new();
    if !have("chromium") {
        missing.push("chromium");
    }
    if !have("node") || !have("npm") {
        missing.extend(["nodejs", "npm"]);
    }
    if !missing.is_empty() {
        apt_install(&missing)?;
    }
    let chromium = Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .map_err(|e| e.to_string())?;
    let chromium = String::from_utf8_lossy(&chromium.stdout).trim().to_owned();
    let ui = root().join("target").join("ui");
    let module = ui.join("node_modules").join("playwright-core");
    if !module.join("package.json").exists() {
        std::fs::create_dir_all(&ui).map_err(|e| e.to_string())?;
        run(Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                PLAYWRIGHT_CORE,
            ])
            .current_dir(&ui))?;
    }
    run(cargo().args(["build", "--locked", "-p", "smpp-cli", "--bin", "smpp"]))?;
    let smpp = target_dir().join("debug").join("smpp");
    run(Command::new("node")
        .arg(root().join("xtask").join("ui").join("dashboard.cjs"))
        .env("SMPP_BIN", &smpp)
        .env("PLAYWRIGHT_CORE", &module)
        .env("CHROMIUM", &chromium)
        .env("SHOTS", &ui))
}

/// Where cargo puts what it builds.
fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|d| {
            let d = Path::new(&d).to_path_buf();
            if d.is_absolute() {
                d
            } else {
                root().join(d)
            }
        })
        .unwrap_or_else(|| root().join("target"))
}
