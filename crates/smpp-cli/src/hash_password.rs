//! `smpp hash-password`: reads a password (stdin, or a prompt without echo
//! when stdin is a terminal) and prints its argon2id PHC string alone on
//! stdout, for `--account ID:$argon2id$...`, `password = "..."` in the
//! config, or `http_token`.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Args;

/// Arguments of `smpp hash-password` (none: the password never goes on the
/// command line, where `ps` and the shell history would see it).
#[derive(Debug, Args)]
pub struct HashPasswordArgs {}

/// Longest password a bind carries (SMPP 3.4/5.0: a C-octet string of 9 octets).
const BIND_PASSWORD_MAX: usize = 8;

/// Runs `smpp hash-password`.
pub fn run(_args: HashPasswordArgs) -> anyhow::Result<ExitCode> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        let again = rpassword::prompt_password("Again: ").context("cannot read the password")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut text = String::new();
        stdin
            .lock()
            .read_to_string(&mut text)
            .context("cannot read the password from stdin (UTF-8 text)")?;
        // One line: the end of line is not part of it.
        let line = text.strip_suffix('\n').unwrap_or(&text);
        line.strip_suffix('\r').unwrap_or(line).to_owned()
    };
    if password.is_empty() {
        bail!("empty password");
    }
    if password.len() > BIND_PASSWORD_MAX {
        eprintln!(
            "smpp: note: {} octets: a bind carries {BIND_PASSWORD_MAX} at most (fine for an HTTP token)",
            password.len()
        );
    }
    let hash = smpp_server::credentials::hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{hash}")?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
