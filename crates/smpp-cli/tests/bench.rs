//! `smpp bench` against an in-process test SMSC.

mod bench_support;

use std::time::Duration;

use bench_support::{json, run_limited, Behaviour, TestSmsc};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn count_with_json_accounts_for_every_submit() {
    let smsc = TestSmsc::start(Behaviour::default());
    let out = run_limited(
        smsc.smpp("bench").args([
            "--sessions",
            "2",
            "--window",
            "16",
            "--count",
            "3000",
            "--dest",
            "4477009#####",
            "--json",
        ]),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    let j = json(&out);
    assert_eq!(j["sent"], 3000);
    assert_eq!(j["ok"], 3000);
    assert_eq!(j["unanswered"], 0);
    assert_eq!(j["lost"], 0);
    assert_eq!(j["unsent"], 0);
    assert_eq!(j["failed_total"], 0);
    assert_eq!(j["success"], true);
    assert!(j["throughput"].as_f64().unwrap() > 0.0);
    let lat = &j["latency_us"];
    assert!(lat["p50"].as_f64().unwrap() <= lat["p99"].as_f64().unwrap());
    assert!(lat["p99"].as_f64().unwrap() <= lat["max"].as_f64().unwrap());
    // The server saw exactly what was sent, spread by the address template.
    assert_eq!(smsc.total(), 3000);
    let per_dest = smsc.per_dest();
    assert_eq!(per_dest.len(), 3000);
    assert_eq!(per_dest.get("447700900042"), Some(&1));
}

#[test]
fn silent_server_gives_unanswered_and_exit_1() {
    let smsc = TestSmsc::start(Behaviour {
        silent_every: 50,
        ..Default::default()
    });
    let out = run_limited(
        smsc.smpp("bench").args([
            "--window",
            "8",
            "--count",
            "200",
            "--response-timeout",
            "500ms",
            "--json",
        ]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let j = json(&out);
    assert_eq!(j["unanswered"], 4);
    assert_eq!(j["ok"], 196);
    assert_eq!(j["success"], false);
}

#[test]
fn error_statuses_are_counted_by_name() {
    let smsc = TestSmsc::start(Behaviour {
        reject: vec![(
            "447700900007".into(),
            smpp_proto::pdu::CommandStatus::THROTTLED,
        )],
        ..Default::default()
    });
    let out = run_limited(
        smsc.smpp("bench")
            .args(["--count", "100", "--dest", "44770090000#", "--json"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let j = json(&out);
    assert_eq!(j["ok"], 90);
    assert_eq!(j["failed_total"], 10);
    assert_eq!(j["failed"]["ESME_RTHROTTLED"], 10);
}

#[test]
fn rate_is_respected() {
    let smsc = TestSmsc::start(Behaviour::default());
    let out = run_limited(
        smsc.smpp("bench").args([
            "--window", "32", "--count", "300", "--rate", "500", "--json",
        ]),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    let times = smsc.times();
    assert_eq!(times.len(), 300);
    // 300 at 500/s: the last leaves 598 ms after the first (loose bounds).
    let span = times[299].duration_since(times[0]).as_secs_f64();
    assert!((0.5..1.5).contains(&span), "300 submits took {span} s");
    let rate = 299.0 / span;
    assert!(rate < 600.0, "measured {rate}/s");
    let j = json(&out);
    assert!(j["throughput"].as_f64().unwrap() < 600.0);
}

#[test]
fn duration_mode_stops_in_time() {
    let smsc = TestSmsc::start(Behaviour::default());
    let started = std::time::Instant::now();
    let out = run_limited(
        smsc.smpp("bench")
            .args(["--duration", "500ms", "--rate", "1000", "--json"]),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(elapsed < 5.0, "took {elapsed} s");
    let j = json(&out);
    let ok = j["ok"].as_u64().unwrap();
    assert!((150..=501).contains(&ok), "{ok} in 500 ms at 1000/s");
    assert_eq!(j["ok"], j["sent"]);
}

#[test]
fn receipts_are_matched_and_timed() {
    let smsc = TestSmsc::start(Behaviour::default());
    let out = run_limited(
        smsc.smpp("bench").args([
            "--count",
            "500",
            "--window",
            "16",
            "--receipt",
            "--wait-receipts",
            "5s",
            "--coding",
            "ucs2",
            "--text-len",
            "60",
            "--json",
        ]),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    let j = json(&out);
    let r = &j["receipts"];
    assert_eq!(r["expected"], 500);
    assert_eq!(r["received"], 500);
    assert_eq!(r["missing"], 0);
    assert_eq!(r["unmatched"], 0);
    assert!(r["latency_ms"]["p50"].as_f64().unwrap() >= 0.0);
    assert_eq!(j["coding"], "ucs2");
}

#[test]
fn sweep_prints_one_row_per_window() {
    let smsc = TestSmsc::start(Behaviour::default());
    let out = run_limited(
        smsc.smpp("bench")
            .args(["--count", "500", "--sweep-window", "1,8,64"]),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 4, "{text}"); // header + 3 windows
    assert!(
        rows[1].starts_with("| 1 |") && rows[3].starts_with("| 64 |"),
        "{text}"
    );
    assert_eq!(smsc.total(), 1500);
}

#[test]
fn wrong_password_fails_cleanly() {
    let smsc = TestSmsc::start(Behaviour::default());
    let out = run_limited(
        smsc.smpp("bench")
            .args(["--password", "nope", "--count", "10"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot bind"));
}

#[test]
fn a_runtime_of_its_own_gives_the_same_accounting() {
    let smsc = TestSmsc::start(Behaviour::default());
    for threads in ["1", "2"] {
        let out = run_limited(
            smsc.smpp("bench").args([
                "--sessions",
                "2",
                "--count",
                "1000",
                "--threads",
                threads,
                "--json",
            ]),
            LIMIT,
        );
        assert!(out.status.success(), "{out:?}");
        let j = json(&out);
        assert_eq!(j["ok"], 1000, "threads {threads}");
        assert_eq!(j["success"], true);
    }
    assert_eq!(smsc.total(), 2000);
}

#[test]
fn transmitters_with_receivers_get_every_receipt() {
    let smsc = TestSmsc::start(Behaviour::default());
    let out = run_limited(
        smsc.smpp("bench").args([
            "--sessions",
            "2",
            "--bind",
            "tx-rx",
            "--count",
            "400",
            "--receipt",
            "--wait-receipts",
            "5s",
            "--json",
        ]),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    let j = json(&out);
    assert_eq!(j["ok"], 400);
    assert_eq!(j["receipts"]["received"], 400);
    assert_eq!(j["receipts"]["missing"], 0);
}

#[test]
fn random_text_varies_and_keeps_its_length() {
    let smsc = TestSmsc::start(Behaviour::default());
    let out = run_limited(
        smsc.smpp("bench").args([
            "--count",
            "300",
            "--random-text",
            "--text-len",
            "100",
            "--json",
        ]),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(smsc.distinct_texts() > 200, "{}", smsc.distinct_texts());
    let fixed = TestSmsc::start(Behaviour::default());
    let out = run_limited(
        fixed
            .smpp("bench")
            .args(["--count", "300", "--text-len", "100"]),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fixed.distinct_texts(), 1);
}

#[test]
fn congestion_state_is_shown_for_5_0_binds_only() {
    let smsc = TestSmsc::start(Behaviour::default());
    let run = |version: &str| {
        let out = run_limited(
            smsc.smpp("bench").args([
                "--window",
                "16",
                "--count",
                "500",
                "--interface-version",
                version,
                "--json",
            ]),
            LIMIT,
        );
        assert!(out.status.success(), "{out:?}");
        json(&out)
    };
    let j = run("5.0");
    let c = &j["congestion_state"];
    assert!(c["responses"].as_u64().unwrap() >= 500, "{c}");
    assert!(c["max"].as_u64().unwrap() <= 100, "{c}");
    assert!(
        c["last"].as_u64().unwrap() <= c["max"].as_u64().unwrap(),
        "{c}"
    );
    let w = c["window_end"].as_u64().unwrap();
    assert!((1..=16).contains(&w), "{c}");
    assert!(j["congestion_state"].is_object());
    assert!(run("3.4")["congestion_state"].is_null());

    let text = run_limited(
        smsc.smpp("bench").args([
            "--window",
            "8",
            "--count",
            "100",
            "--interface-version",
            "5.0",
        ]),
        LIMIT,
    );
    assert!(text.status.success(), "{text:?}");
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("congestion_state: max "), "{stdout}");
}
