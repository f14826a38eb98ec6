//! `smpp campaign` against an in-process test SMSC.

mod bench_support;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bench_support::{run_limited, Behaviour, TestSmsc};
use smpp_proto::message::MessageState;
use smpp_proto::pdu::CommandStatus;

const LIMIT: Duration = Duration::from_secs(60);

/// The report as (recipient -> columns by name).
fn report(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

fn recipients(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("list.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn report_has_states_ids_errors_and_matched_receipts() {
    let smsc = TestSmsc::start(Behaviour {
        reject: vec![(
            "447700900003".into(),
            CommandStatus::INVALID_DESTINATION_ADDRESS,
        )],
        receipt_state: vec![("447700900002".into(), MessageState::Undeliverable)],
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let list = recipients(
        dir.path(),
        "name,msisdn,text\n\
         ann,447700900001,Hello Ann\n\
         bob,447700900002,Hello Bob\n\
         cy,447700900003,Hello Cy\n\
         dee,447700900004,\"Hello, Dee\"\n\
         ann again,447700900001,Hello Ann\n",
    );
    let out_csv = dir.path().join("report.csv");
    let out = run_limited(
        smsc.smpp("campaign")
            .arg("--recipients")
            .arg(&list)
            .args(["--receipts", "--wait-receipts", "5s", "--report"])
            .arg(&out_csv),
        LIMIT,
    );
    // A refused recipient makes the campaign incomplete.
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows = report(&out_csv);
    assert_eq!(rows.len(), 5);
    let state = |i: usize| rows[i]["state"].as_str();
    assert_eq!(state(0), "delivered");
    assert_eq!(state(1), "undeliverable");
    assert_eq!(state(2), "failed");
    assert_eq!(rows[2]["error"], "ESME_RINVDSTADR");
    assert_eq!(state(3), "delivered");
    assert_eq!(state(4), "duplicate");
    for i in [0, 1, 3] {
        assert_eq!(rows[i]["message_ids"].len(), 8, "{:?}", rows[i]);
        assert!(rows[i]["receipt_at"].ends_with('Z'), "{:?}", rows[i]);
        assert!(rows[i]["submitted_at"] <= rows[i]["answered_at"]);
    }
    assert_eq!(rows[4]["message_ids"], "");
    // Each recipient got exactly one message, the duplicate none.
    let seen = smsc.per_dest();
    assert_eq!(seen.get("447700900001"), Some(&1));
    assert_eq!(seen.values().sum::<u32>(), 4);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("5 recipients"), "{summary}");
    assert!(summary.contains("delivered: 2"), "{summary}");
    assert!(summary.contains("failed: 1"), "{summary}");

    // Running it again sends nothing more and gives the same report.
    let again = run_limited(
        smsc.smpp("campaign")
            .arg("--recipients")
            .arg(&list)
            .args(["--receipts", "--wait-receipts", "1s", "--report"])
            .arg(&out_csv),
        LIMIT,
    );
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(smsc.total(), 4);
    assert_eq!(report(&out_csv), rows);
}

#[test]
fn rate_limit_is_respected() {
    let smsc = TestSmsc::start(Behaviour::default());
    let dir = tempfile::tempdir().unwrap();
    let mut list = String::from("recipient\n");
    for i in 0..40 {
        list.push_str(&format!("4477009{i:05}\n"));
    }
    let list = recipients(dir.path(), &list);
    let out = run_limited(
        smsc.smpp("campaign")
            .arg("--recipients")
            .arg(&list)
            .args(["--text", "Sale!", "--rate", "50", "--window", "8"]),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    let times = smsc.times();
    assert_eq!(times.len(), 40);
    // 40 at 50/s: 780 ms from the first to the last (loose bounds).
    let span = times[39].duration_since(times[0]).as_secs_f64();
    assert!((0.6..2.0).contains(&span), "40 submits took {span} s");
}

#[test]
fn resume_after_kill_9_sends_nobody_twice() {
    let smsc = TestSmsc::start(Behaviour {
        answer_delay: Duration::from_millis(30),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut list = String::from("recipient\n");
    let n = 80;
    for i in 0..n {
        list.push_str(&format!("4477009{i:05}\n"));
    }
    let list = recipients(dir.path(), &list);
    let campaign = || {
        let mut c = smsc.smpp("campaign");
        c.arg("--recipients").arg(&list).args([
            "--text",
            "Once only",
            "--rate",
            "100",
            "--window",
            "4",
        ]);
        c
    };
    // Start, and kill -9 it mid-way.
    let mut child = campaign()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while smsc.total() < 20 {
        assert!(started.elapsed() < LIMIT, "the campaign did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let first = smsc.total();
    assert!(first < n, "killed too late: {first} sent");

    // Resume to the end.
    let out_csv = dir.path().join("report.csv");
    let out = run_limited(campaign().arg("--report").arg(&out_csv), LIMIT);
    let rows = report(&out_csv);
    assert_eq!(rows.len(), n);
    let seen = smsc.per_dest();
    assert!(
        seen.values().all(|&c| c == 1),
        "someone got it twice: {seen:?}"
    );
    let mut unknown = 0;
    for row in &rows {
        let count = seen.get(&row["recipient"]).copied().unwrap_or(0);
        match row["state"].as_str() {
            "accepted" => assert_eq!(count, 1, "{row:?}"),
            // Sent before the kill without a recorded answer (or synced
            // but killed before it left): never resent.
            "unknown" => unknown += 1,
            other => panic!("unexpected state {other}: {row:?}"),
        }
    }
    // At most the window (4) was in flight when it was killed.
    eprintln!("{unknown} unknown after kill -9");
    // In flight (the window, 4) plus answers not yet appended when killed.
    assert!((1..=8).contains(&unknown), "{unknown} unknown");
    assert_eq!(
        out.status.code(),
        Some(1),
        "unknown rows make it incomplete"
    );
    let total = smsc.total();
    assert!(total > first, "the resumed run sent the rest");
    assert!(total <= n);
    assert_eq!(total + unknown, n + seen_but_unknown(&rows, &seen));

    // A third run has nothing left to send.
    let _ = run_limited(&mut campaign(), LIMIT);
    assert_eq!(smsc.total(), total);
}

/// Unknown rows that did reach the SMSC (they are counted in both).
fn seen_but_unknown(rows: &[HashMap<String, String>], seen: &HashMap<String, u32>) -> usize {
    rows.iter()
        .filter(|r| r["state"] == "unknown" && seen.contains_key(&r["recipient"]))
        .count()
}

#[test]
fn a_journal_of_another_list_is_refused() {
    let smsc = TestSmsc::start(Behaviour::default());
    let dir = tempfile::tempdir().unwrap();
    let list = recipients(dir.path(), "to\n447700900001\n");
    let journal = dir.path().join("j");
    let ok = run_limited(
        smsc.smpp("campaign")
            .arg("--recipients")
            .arg(&list)
            .args(["--text", "hi", "--journal"])
            .arg(&journal),
        LIMIT,
    );
    assert!(ok.status.success(), "{ok:?}");
    std::fs::write(&list, "to\n447700900002\n").unwrap();
    let refused = run_limited(
        smsc.smpp("campaign")
            .arg("--recipients")
            .arg(&list)
            .args(["--text", "hi", "--journal"])
            .arg(&journal),
        LIMIT,
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("another recipients list"));
    assert_eq!(smsc.total(), 1);
}

#[test]
fn ctrl_c_stops_cleanly_and_resume_finishes() {
    let smsc = TestSmsc::start(Behaviour::default());
    let dir = tempfile::tempdir().unwrap();
    let mut list = String::from("recipient\n");
    let n = 50;
    for i in 0..n {
        list.push_str(&format!("4477009{i:05}\n"));
    }
    let list = recipients(dir.path(), &list);
    let out_csv = dir.path().join("report.csv");
    let campaign = || {
        let mut c = smsc.smpp("campaign");
        c.arg("--recipients")
            .arg(&list)
            .args(["--text", "Stop and go", "--rate", "50", "--report"])
            .arg(&out_csv);
        c
    };
    let child = campaign()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while smsc.total() < 10 {
        assert!(started.elapsed() < LIMIT, "the campaign did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows = report(&out_csv);
    let states: Vec<&str> = rows.iter().map(|r| r["state"].as_str()).collect();
    // Messages in flight were answered before it stopped: nothing unknown.
    assert!(
        states.iter().all(|s| *s == "accepted" || *s == "pending"),
        "{states:?}"
    );
    let accepted = states.iter().filter(|s| **s == "accepted").count();
    assert_eq!(accepted, smsc.total());
    assert!(accepted < n, "{accepted} sent before Ctrl-C");

    let out = run_limited(&mut campaign(), LIMIT);
    assert!(out.status.success(), "{out:?}");
    assert!(report(&out_csv).iter().all(|r| r["state"] == "accepted"));
    assert_eq!(smsc.total(), n);
    assert!(smsc.per_dest().values().all(|&c| c == 1));
}
