//! `cargo xtask interop python`: the PyPI peers (smpplib, aiosmpplib) and the
//! raw-bytes script against our SMSC, from a venv this xtask creates.

use std::path::PathBuf;
use std::process::Command;

use super::{target_dir, SmscChoice, Tally};
use crate::Result;

/// The scripts in `interop/`, each run against a fresh SMSC.
const SCRIPTS: &[(&str, &str)] = &[
    ("smpplib", "smpplib_client.py"),
    ("aiosmpplib", "aiosmpplib_client.py"),
    ("malformed raw bytes", "malformed.py"),
];

pub(super) fn run(smsc: &SmscChoice, tally: &mut Tally) -> Result {
    let python = venv()?;
    let dir = crate::root().join("interop");
    for (name, script) in SCRIPTS {
        let server = match smsc.start() {
            Ok(s) => s,
            Err(e) => {
                tally.fail(format!("{name}: SMSC did not start: {e}"));
                continue;
            }
        };
        let (host, port) = server.host_port()?;
        tally.peer(
            name,
            Command::new(&python)
                .arg(dir.join(script))
                .args([host, port])
                .current_dir(&dir)
                .env("PYTHONDONTWRITEBYTECODE", "1"),
        );
    }
    Ok(())
}

/// Creates `target/interop/venv` and installs `interop/requirements.txt`
/// into it (again only when the requirements changed); returns its python.
fn venv() -> Result<PathBuf> {
    let venv = target_dir().join("interop/venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        crate::run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).map_err(|e| {
            format!(
                "{e}\n`python3 -m venv` failed: on Debian/Ubuntu install the `python3-venv` package"
            )
        })?;
    }
    let requirements = crate::root().join("interop/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("{}: {e}", requirements.display()))?;
    let stamp = venv.join("installed-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        crate::run(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(&requirements),
        )?;
        std::fs::write(&stamp, &wanted).map_err(|e| format!("{}: {e}", stamp.display()))?;
    }
    Ok(python)
}
