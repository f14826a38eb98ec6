//! `smpp campaign status` and `smpp campaign list` (the real binary) against
//! the real `smpp serve` binary, whose receipts come up to 2 s after each
//! submission (`--dlr-delay`): after the sending run has ended, `status`
//! reads the journal offline, and `status --live` takes the late receipts
//! and asks `query_sm` about messages sent without asking for one.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// A running `smpp serve`; killed when dropped.
struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Serve {
    fn spawn(cwd: &Path, args: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_smpp"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("smpp runs");
        let out = child.stdout.take().expect("stdout piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = loop {
            let line = lines.recv_timeout(WAIT).expect("start-up banner in time");
            if let Some(addr) = line.strip_prefix("SMPP listening on ") {
                break addr.parse().expect("an address");
            }
        };
        Serve { child, addr }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `smpp ARGS` with the campaigns kept in `store`; waits (bounded).
fn smpp(store: &Path, cwd: &Path, args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args(args)
        .env("SMPP_CAMPAIGNS_DIR", store)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smpp runs");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || drop(tx.send(child.wait_with_output())));
    rx.recv_timeout(WAIT).expect("smpp ends in time").unwrap()
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(ok(out).trim()).expect("one JSON object")
}

fn journal_kinds(path: &Path) -> HashMap<String, usize> {
    let mut kinds = HashMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let kind = line.split('\t').next().unwrap().to_owned();
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
}

#[test]
fn late_receipts_are_picked_up_by_status_live() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("campaigns");
    std::fs::write(
        dir.path().join("serve.toml"),
        "[[rule]]\nprefix = \"4479\"\nstate = \"UNDELIV\"\nerror = 1\n",
    )
    .unwrap();
    let serve = Serve::spawn(
        dir.path(),
        &[
            "--config",
            "serve.toml",
            "--dlr-delay",
            "2s",
            "--store",
            "data",
        ],
    );
    let port = serve.addr.port().to_string();
    std::fs::write(
        dir.path().join("list.csv"),
        "recipient\n447700900001\n447700900002\n447900900003\n447700900004\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("other.csv"),
        "to\n447700900005\n447900900006\n",
    )
    .unwrap();
    let (d, s) = (dir.path(), store.as_path());

    // Sent without asking for receipts: only query_sm can tell.
    let quiet_sent = std::time::Instant::now();
    let quiet = ok(&smpp(
        s,
        d,
        &[
            "campaign",
            "--port",
            &port,
            "--recipients",
            "other.csv",
            "--text",
            "Hi",
            "--id",
            "quiet",
        ],
    ));
    assert!(quiet.contains("accepted: 2"), "{quiet}");
    // Asking for receipts, but not waiting for them: they all come later.
    let out = smpp(
        s,
        d,
        &[
            "campaign",
            "--port",
            &port,
            "--recipients",
            "list.csv",
            "--text",
            "Hello",
            "--receipts",
            "--wait-receipts",
            "0s",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(&out);
    let id = stderr
        .split_whitespace()
        .skip_while(|w| *w != "campaign")
        .nth(1)
        .expect("the campaign's id on stderr")
        .trim_end_matches(':')
        .to_owned();
    assert!(id.starts_with("list-"), "{stderr}");

    // Offline: everything attempted and accepted, receipts awaited.
    let before = json(&smpp(s, d, &["campaign", "status", &id, "--json"]));
    assert_eq!(before["id"], id.as_str());
    assert_eq!(before["rows"], 4);
    assert_eq!(before["attempted"], 4);
    let journal = before["journal"].as_str().unwrap().to_owned();
    assert!(Path::new(&journal).starts_with(&store), "{journal}");
    let receipts_before = journal_kinds(Path::new(&journal))
        .get("R")
        .copied()
        .unwrap_or(0);
    let awaiting = before["awaiting_receipt"].as_u64().unwrap();
    assert_eq!(awaiting as usize, 4 - receipts_before, "{before}");
    assert!(
        awaiting > 0,
        "every receipt came before the run ended: {before}"
    );
    // The same campaign found by its journal, in text.
    let text = ok(&smpp(s, d, &["campaign", "status", "--journal", &journal]));
    assert!(text.starts_with(&format!("campaign {id}\n")), "{text}");
    assert!(
        text.contains(&format!(
            "progress: 4/4 rows attempted (100.0%), {awaiting} awaiting a receipt"
        )),
        "{text}"
    );

    // Live: the late receipts are taken and recorded in the journal.
    let report = dir.path().join("report.csv");
    let live = json(&smpp(
        s,
        d,
        &[
            "campaign",
            "status",
            &id,
            // No --host or --port: the SMSC the campaign was sent to.
            "--live",
            "--wait",
            "20s",
            "--json",
            "--report",
            report.to_str().unwrap(),
        ],
    ));
    assert_eq!(live["awaiting_receipt"], 0, "{live}");
    assert_eq!(live["states"]["delivered"], 3, "{live}");
    assert_eq!(live["states"]["undeliverable"], 1, "{live}");
    assert_eq!(live["live"]["receipts"], awaiting, "{live}");
    assert_eq!(journal_kinds(Path::new(&journal))["R"], 4);
    let csv = std::fs::read_to_string(&report).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(
        lines[0].starts_with("row,recipient,state,message_ids"),
        "{csv}"
    );
    assert!(
        lines[3].starts_with("3,447900900003,undeliverable,"),
        "{csv}"
    );
    // What --live recorded stays: offline again, the same answer.
    let after = json(&smpp(s, d, &["campaign", "status", &id, "--json"]));
    assert_eq!(after["states"], live["states"]);

    // No receipt will ever come for `quiet`: --live asks query_sm (once
    // both messages are final at the SMSC) and records the answers.
    std::thread::sleep(Duration::from_millis(2500).saturating_sub(quiet_sent.elapsed()));
    let quiet = json(&smpp(
        s,
        d,
        &[
            "campaign", "status", "quiet", "--live", "--port", &port, "--wait", "0s", "--json",
        ],
    ));
    assert_eq!(quiet["live"]["queried"], 2, "{quiet}");
    assert_eq!(quiet["live"]["answered"], 2, "{quiet}");
    assert_eq!(quiet["states"]["delivered"], 1, "{quiet}");
    assert_eq!(quiet["states"]["undeliverable"], 1, "{quiet}");
    let quiet_journal = quiet["journal"].as_str().unwrap();
    assert_eq!(journal_kinds(Path::new(quiet_journal))["Q"], 2);

    // Both are on this machine, oldest first; the latest is the default.
    let list = ok(&smpp(s, d, &["campaign", "list"]));
    let ids: Vec<&str> = list
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids, ["quiet", id.as_str()], "{list}");
    assert!(
        list.lines()
            .next()
            .unwrap()
            .contains("2/2  delivered 1, undeliverable 1"),
        "{list}"
    );
    let latest = json(&smpp(s, d, &["campaign", "status", "--json"]));
    assert_eq!(latest["id"], id.as_str());
    // An unknown campaign is an error.
    let missing = smpp(s, d, &["campaign", "status", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
}
