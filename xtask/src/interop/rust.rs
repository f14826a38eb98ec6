//! `cargo xtask interop rust`: the crates.io peers from `crates/smpp-interop`.
//!
//! - A: `rust-peers smpp34` and `rust-peers rusmppc` against our SMSC;
//! - C: `rust-peers tokio-client` (our `smpp_tokio::Client`), then
//!   `smpp send` and `smpp listen`, against `smpp34-smsc` (the smpp34
//!   crate's server).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{
    interop_binary, logs_dir, output, output_fed, smpp_binary, RunningSmsc, SmscChoice, Tally,
};
use crate::Result;

const SMPP_CLI: &str = "smpp send/listen vs smpp34 1.5.1 server";
const SMPP_OPS: &str = "smpp query/replace/cancel/ussd/ping vs smpp34 1.5.1 server";
const CLI_LIMIT: Duration = Duration::from_secs(30);

pub(super) fn run(smsc: &SmscChoice, tally: &mut Tally) -> Result {
    run_customers(smsc, tally)?;
    let peers = interop_binary("rust-peers")?;
    let smpp34_smsc = interop_binary("smpp34-smsc")?;

    match RunningSmsc::start("smpp34-smsc", &smpp34_smsc, &[]) {
        Ok(server) => tally.peer(
            "rust-peers tokio-client",
            Command::new(&peers).args(["tokio-client", server.addr.as_str()]),
        ),
        Err(e) => tally.fail(format!("smpp34-smsc did not start: {e}")),
    }

    let smpp = smpp_binary()?;
    cli_checks(&smpp, &smpp34_smsc, &peers, tally)?;
    match RunningSmsc::start("smpp34-smsc", &smpp34_smsc, &[]) {
        Ok(server) => ops_checks(&smpp, &server, tally)?,
        Err(e) => tally.fail(format!("smpp34-smsc did not start: {e}")),
    }
    Ok(())
}

/// Scenario A: the crates.io clients (smpp34, rusmppc) against `smsc`.
pub(super) fn run_customers(smsc: &SmscChoice, tally: &mut Tally) -> Result {
    let peers = interop_binary("rust-peers")?;
    for peer in ["smpp34", "rusmppc"] {
        match smsc.start() {
            Ok(server) => tally.peer(
                &format!("rust-peers {peer}"),
                Command::new(&peers).args([peer, server.addr.as_str()]),
            ),
            Err(e) => tally.fail(format!("{peer}: SMSC did not start: {e}")),
        }
    }
    Ok(())
}

/// The first `S34-<n>` id (smpp34-smsc's message ids) in `text`.
fn smsc_id(text: &str) -> Option<String> {
    let start = text.find("S34-")?;
    let digits: String = text[start + 4..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then(|| format!("S34-{digits}"))
}

/// Whether `smpp <sub>` is still the skeleton: its `--help` has no
/// `--host`, and run bare it answers "not built yet". (A built one is never
/// run bare here: it would connect to the default SMSC address.)
fn cli_not_built(smpp: &Path, sub: &str) -> Result<bool> {
    let help = output(
        Command::new(smpp).args([sub, "--help"]),
        Duration::from_secs(10),
        &format!("smpp-{sub}-help"),
    )?;
    if help.stdout.contains("--host") {
        return Ok(false);
    }
    let bare = output(
        Command::new(smpp).arg(sub),
        Duration::from_secs(10),
        &format!("smpp-{sub}-probe"),
    )?;
    Ok(bare.not_built())
}

const SEND_CHECK: &str = "smpp send --wait-receipt: message id and receipt";
const LISTEN_CHECK: &str = "smpp listen: prints the receipt of a message a transmitter submitted";

/// `smpp send` and `smpp listen` (the flags of issue #6) against smpp34's
/// server, a fresh one for each (so no session of one check gets the other's
/// receipt).
fn cli_checks(smpp: &Path, smpp34_smsc: &Path, peers: &Path, tally: &mut Tally) -> Result {
    let mut missing = Vec::new();
    for sub in ["send", "listen"] {
        if cli_not_built(smpp, sub)? {
            missing.push(sub);
        }
    }
    if missing.contains(&"send") {
        tally.skip(format!(
            "{SMPP_CLI}: {SEND_CHECK}: `smpp send` is not built yet"
        ));
    } else {
        match RunningSmsc::start("smpp34-smsc", smpp34_smsc, &[]) {
            Ok(server) => send_check(smpp, &server, tally)?,
            Err(e) => tally.fail(format!("smpp34-smsc did not start: {e}")),
        }
    }
    if missing.contains(&"listen") {
        tally.skip(format!(
            "{SMPP_CLI}: {LISTEN_CHECK}: `smpp listen` is not built yet"
        ));
    } else {
        match RunningSmsc::start("smpp34-smsc", smpp34_smsc, &[]) {
            Ok(server) => listen_check(smpp, peers, &server, tally)?,
            Err(e) => tally.fail(format!("smpp34-smsc did not start: {e}")),
        }
    }
    Ok(())
}

fn connect_args(server: &RunningSmsc) -> Result<Vec<String>> {
    let (host, port) = server.host_port()?;
    Ok([
        "--host",
        host,
        "--port",
        port,
        "--system-id",
        "smppclient1",
        "--password",
        "password",
    ]
    .map(String::from)
    .to_vec())
}

/// `smpp send --wait-receipt`: binds, submits, prints the id, waits for the receipt.
fn send_check(smpp: &Path, server: &RunningSmsc, tally: &mut Tally) -> Result {
    let out = output(
        Command::new(smpp)
            .arg("send")
            .args(connect_args(server)?)
            .args(["--from", "447700900123", "--to", "447700900456"])
            .args(["--text", "hello from smpp send", "--wait-receipt", "10s"]),
        CLI_LIMIT,
        "smpp-send",
    )?;
    if out.status.is_some_and(|s| s.success()) && smsc_id(&out.stdout).is_some() {
        tally.pass(format!("{SMPP_CLI}: {SEND_CHECK}"));
    } else {
        tally.fail(format!("{SMPP_CLI}: {SEND_CHECK}: {}", out.describe()));
    }
    Ok(())
}

/// `smpp listen` bound with the account; a transmitter of the same account
/// (`rust-peers submit`, so the receipt can only go to the listener) submits
/// with a receipt request; the listener must print a line naming the id.
fn listen_check(smpp: &Path, peers: &Path, server: &RunningSmsc, tally: &mut Tally) -> Result {
    let log = logs_dir()?.join("smpp-listen.stderr");
    let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut listen_cmd = Command::new(smpp);
    listen_cmd.arg("listen").args(connect_args(server)?);
    eprintln!("$ {}", crate::show(&listen_cmd));
    let mut listen = listen_cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("{}: {e}", smpp.display()))?;
    let Some(stdout) = listen.stdout.take() else {
        let _ = listen.kill();
        let _ = listen.wait();
        return Err("smpp listen: no stdout pipe".into());
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let result = listen_until_receipt(&mut listen, &rx, peers, server, &log);
    let _ = listen.kill();
    let _ = listen.wait();
    match result {
        Ok(()) => tally.pass(format!("{SMPP_CLI}: {LISTEN_CHECK}")),
        Err(why) => tally.fail(format!("{SMPP_CLI}: {LISTEN_CHECK}: {why}")),
    }
    Ok(())
}

fn listen_until_receipt(
    listen: &mut std::process::Child,
    lines: &mpsc::Receiver<String>,
    peers: &Path,
    server: &RunningSmsc,
    log: &Path,
) -> std::result::Result<(), String> {
    // Give it a moment to bind (or to fail).
    std::thread::sleep(Duration::from_secs(1));
    if let Some(status) = listen.try_wait().map_err(|e| e.to_string())? {
        let err = std::fs::read_to_string(log).unwrap_or_default();
        let printed: Vec<String> = lines.try_iter().collect();
        return Err(format!(
            "exited at once ({status}); stdout: {printed:?}; stderr: {:?}",
            err.trim()
        ));
    }
    let out = output(
        Command::new(peers).args(["submit", server.addr.as_str()]),
        CLI_LIMIT,
        "rust-peers-submit",
    )?;
    let Some(id) = smsc_id(&out.stdout) else {
        return Err(format!(
            "the transmitter got no message id: {}",
            out.describe()
        ));
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(&id) => return Ok(()),
            Ok(line) => seen.push(line),
            Err(_) => {
                return Err(format!(
                    "no line naming {id} within 10 s; it printed {seen:?}"
                ))
            }
        }
    }
}

/// `smpp query`, `smpp replace`, `smpp cancel`, `smpp ussd` and `smpp ping`
/// (issue #21's acceptance) against smpp34's server. smpp34 1.5.1 answers
/// replace_sm with an error by default: `smpp34-smsc` answers it from what it
/// stored (a pending message is replaced; an unknown one gets
/// ESME_RREPLACEFAIL), and plays a one-question USSD menu
/// (`smpp_interop::smpp34_smsc::USSD_MENU`). smpp34 cannot take a cancel_sm
/// (it decodes the header as the body, so the message id is lost): its
/// documented answer, ESME_RCANCELFAIL (exit 1), is what the check asserts,
/// and the message stays ENROUTE.
fn ops_checks(smpp: &Path, server: &RunningSmsc, tally: &mut Tally) -> Result {
    let connect = connect_args(server)?;
    let run = |sub: &str, args: &[&str], input: Option<&[u8]>, name: &str| {
        output_fed(
            Command::new(smpp).arg(sub).args(&connect).args(args),
            input,
            CLI_LIMIT,
            name,
        )
    };
    let mut check = |what: &str, ok: bool, out: &super::Output| {
        if ok {
            tally.pass(format!("{SMPP_OPS}: {what}"));
        } else {
            tally.fail(format!("{SMPP_OPS}: {what}: {}", out.describe()));
        }
    };
    let succeeded = |out: &super::Output| out.status.is_some_and(|s| s.success());
    let failed_with_1 = |out: &super::Output| out.status.and_then(|s| s.code()) == Some(1);

    // A message without a receipt request stays ENROUTE: it can be queried
    // and replaced.
    let from = "447700900123";
    let sent = run(
        "send",
        &[
            "--from",
            from,
            "--to",
            "447700900456",
            "--text",
            "to be replaced",
        ],
        None,
        "smpp-ops-send",
    )?;
    let Some(id) = smsc_id(&sent.stdout).filter(|_| succeeded(&sent)) else {
        check("smpp send for the operations (a message id)", false, &sent);
        return Ok(());
    };
    let target = ["--id", id.as_str(), "--from", from];

    let out = run("query", &target, None, "smpp-query")?;
    check(
        "smpp query: exit 0, state ENROUTE",
        succeeded(&out)
            && out
                .stdout
                .contains(&format!("message_id {id} state ENROUTE")),
        &out,
    );
    let out = run(
        "replace",
        &[&target[..], &["--text", "replaced"]].concat(),
        None,
        "smpp-replace",
    )?;
    check(
        "smpp replace of a pending message: exit 0",
        succeeded(&out),
        &out,
    );
    let out = run("cancel", &target, None, "smpp-cancel")?;
    check(
        "smpp cancel: exit 1 with ESME_RCANCELFAIL (smpp34 1.5.1 cannot decode cancel_sm)",
        failed_with_1(&out)
            && out.stdout.contains(&format!(
                "message_id {id} error peer answered with status ESME_RCANCELFAIL"
            )),
        &out,
    );
    let out = run("query", &target, None, "smpp-query-after-cancel")?;
    check(
        "smpp query after the refused cancel: still ENROUTE",
        succeeded(&out) && out.stdout.contains("state ENROUTE"),
        &out,
    );
    let out = run(
        "replace",
        &["--id", "S34-999999", "--text", "x"],
        None,
        "smpp-replace-unknown",
    )?;
    check(
        "smpp replace of an unknown id: exit 1, ESME_RREPLACEFAIL",
        failed_with_1(&out) && format!("{}{}", out.stdout, out.stderr).contains("REPLACEFAIL"),
        &out,
    );
    let out = run("query", &["--id", "S34-999999"], None, "smpp-query-unknown")?;
    check(
        "smpp query of an unknown id: exit 1, ESME_RQUERYFAIL",
        failed_with_1(&out) && format!("{}{}", out.stdout, out.stderr).contains("QUERYFAIL"),
        &out,
    );

    // The menu's answer comes from the piped stdin.
    let out = run(
        "ussd",
        &["--from", "447700900777", "--to", "123", "--timeout", "10s"],
        Some(b"2\n"),
        "smpp-ussd",
    )?;
    check(
        "smpp ussd with piped stdin: the menu, the answer, the last screen, exit 0",
        succeeded(&out)
            && out.stdout.contains(smpp_interop_menu())
            && out.stdout.contains("> 2")
            && out.stdout.contains("You chose 2"),
        &out,
    );

    let out = run(
        "ping",
        &["--count", "3", "--interval", "200ms"],
        None,
        "smpp-ping",
    )?;
    check(
        "smpp ping --count 3: three answered probes, exit 0",
        succeeded(&out)
            && out
                .stdout
                .lines()
                .filter(|l| l.starts_with("enquire_link seq=") && l.ends_with(" ms"))
                .count()
                == 3,
        &out,
    );
    Ok(())
}

/// The prompt `smpp34-smsc`'s USSD menu shows (`USSD_MENU` there).
fn smpp_interop_menu() -> &'static str {
    "smpp34 menu: 1 Balance, 2 Top-up"
}
