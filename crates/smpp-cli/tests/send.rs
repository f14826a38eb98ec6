//! `smpp send` (the real binary) against an in-process SMSC.

mod send_support;

use send_support::{smpp, start, text};

fn base(port: &str) -> Vec<&str> {
    vec!["send", "--host", "127.0.0.1", "--port", port]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_text_gets_one_id() {
    let smsc = start().await;
    let port = smsc.addr.port().to_string();
    let mut args = base(&port);
    args.extend(["--from", "Acme", "--to", "447700900001", "--text", "Hello"]);
    let out = smpp(&args).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "part 1/1 message_id 0000A1B0\n");
    let sent = smsc.submitted.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].short_message.as_ref(), b"Hello");
    assert_eq!(sent[0].source_addr, "Acme");
    assert_eq!(sent[0].registered_delivery, 0);
    assert_eq!(sent[0].data_coding, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_text_is_split_and_every_id_printed() {
    let smsc = start().await;
    let port = smsc.addr.port().to_string();
    let long = "x".repeat(400); // 3 parts of at most 153 GSM characters
    let mut args = base(&port);
    args.extend(["--to", "447700900001", "--text", &long, "--json"]);
    let out = smpp(&args).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let mut ids: Vec<String> = lines
        .iter()
        .map(|l| {
            assert_eq!(l["event"], "submitted");
            assert_eq!(l["parts"], 3);
            l["message_id"].as_str().expect("id").to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    let sent = smsc.submitted.lock().unwrap().clone();
    assert_eq!(sent.len(), 3);
    assert!(
        sent.iter().all(|sm| sm.esm_class().udhi()),
        "UDHI on every part"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codings() {
    let smsc = start().await;
    let port = smsc.addr.port().to_string();
    for (coding, text_arg, dc, bytes) in [
        ("ucs2", "Hé", 8u8, vec![0, b'H', 0, 0xE9]),
        ("latin1", "Hé", 3, vec![b'H', 0xE9]),
        (
            "auto",
            "Привет",
            8,
            vec![
                0x04, 0x1F, 0x04, 0x40, 0x04, 0x38, 0x04, 0x32, 0x04, 0x35, 0x04, 0x42,
            ],
        ),
        ("binary", "AB", 4, vec![b'A', b'B']),
    ] {
        smsc.submitted.lock().unwrap().clear();
        let mut args = base(&port);
        args.extend([
            "--to",
            "447700900001",
            "--text",
            text_arg,
            "--coding",
            coding,
        ]);
        let out = smpp(&args).await;
        assert_eq!(out.status.code(), Some(0), "{coding}: {:?}", text(&out));
        let sent = smsc.submitted.lock().unwrap().clone();
        assert_eq!(sent[0].data_coding, dc, "{coding}");
        assert_eq!(sent[0].short_message.as_ref(), &bytes[..], "{coding}");
    }
    // Forced UCS-2, long: GSM text splits into 134-octet parts; emoji are never cut.
    for (text_arg, parts) in [("a".repeat(71), 2usize), ("😀".repeat(40), 2)] {
        smsc.submitted.lock().unwrap().clear();
        let mut args = base(&port);
        args.extend([
            "--to",
            "447700900001",
            "--text",
            &text_arg,
            "--coding",
            "ucs2",
        ]);
        let out = smpp(&args).await;
        assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
        let sent = smsc.submitted.lock().unwrap().clone();
        assert_eq!(sent.len(), parts);
        let mut utf16 = Vec::new();
        for sm in &sent {
            assert_eq!(sm.data_coding, 8);
            let (udh, rest) = sm.short_message.split_at(6);
            assert_eq!(&udh[..3], &[5, 0, 3]);
            // No part ends inside a surrogate pair.
            let last = u16::from_be_bytes([rest[rest.len() - 2], rest[rest.len() - 1]]);
            assert!(
                !(0xD800..0xDC00).contains(&last),
                "part ends with a high surrogate"
            );
            utf16.extend(rest.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])));
        }
        assert_eq!(String::from_utf16(&utf16).expect("UTF-16"), text_arg);
    }

    smsc.submitted.lock().unwrap().clear();
    let mut args = base(&port);
    args.extend(["--to", "447700900001", "--hex", "0x01:02:ff"]);
    let out = smpp(&args).await;
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let sent = smsc.submitted.lock().unwrap().clone();
    assert_eq!(
        (sent[0].data_coding, sent[0].short_message.as_ref()),
        (4, &[1u8, 2, 0xff][..])
    );

    // GSM 7-bit cannot carry Cyrillic: refused before binding, exit 1.
    let mut args = base(&port);
    args.extend([
        "--to",
        "447700900001",
        "--text",
        "Привет",
        "--coding",
        "gsm7",
    ]);
    let out = smpp(&args).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("GSM 7-bit"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_receipt_delivered() {
    let smsc = start().await;
    let port = smsc.addr.port().to_string();
    let mut args = base(&port);
    args.extend([
        "--to",
        "447700900001",
        "--text",
        "Hi",
        "--wait-receipt",
        "10s",
    ]);
    let out = smpp(&args).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "part 1/1 message_id 0000A1B0");
    // The receipt says id 41392 (decimal): matched to 0000A1B0 by normalisation.
    assert!(
        lines[1] == "part 1/1 message_id 0000A1B0 receipt id \"41392\" state DELIVRD sub 1 dlvrd 1 err 000",
        "{stdout}"
    );
    assert_eq!(lines.last(), Some(&"final DELIVRD"));
    assert_eq!(smsc.submitted.lock().unwrap()[0].registered_delivery, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_receipt_long_message_intermediate_then_final() {
    let smsc = start().await;
    let port = smsc.addr.port().to_string();
    let long = "y".repeat(200);
    let mut args = base(&port);
    args.extend([
        "--to",
        "447700900005",
        "--text",
        &long,
        "--wait-receipt",
        "10s",
        "--json",
    ]);
    let out = smpp(&args).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let count = |what: &str, state: &str| {
        events
            .iter()
            .filter(|e| e["event"] == what && (state.is_empty() || e["state"] == state))
            .count()
    };
    assert_eq!(count("submitted", ""), 2);
    assert_eq!(count("receipt", "ENROUTE"), 2);
    assert_eq!(count("receipt", "DELIVRD"), 2);
    assert_eq!(events.last().expect("final")["state"], "DELIVRD");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_receipt_undeliverable_exits_1() {
    let smsc = start().await;
    let port = smsc.addr.port().to_string();
    let mut args = base(&port);
    args.extend([
        "--to",
        "447700900002",
        "--text",
        "Hi",
        "--wait-receipt",
        "10s",
    ]);
    let out = smpp(&args).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("state UNDELIV"), "{stdout}");
    assert!(stdout.ends_with("final UNDELIV\n"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_receipt_timeout_exits_1() {
    let smsc = start().await;
    let port = smsc.addr.port().to_string();
    let mut args = base(&port);
    args.extend([
        "--to",
        "447700900003",
        "--text",
        "Hi",
        "--wait-receipt",
        "300ms",
    ]);
    let started = std::time::Instant::now();
    let out = smpp(&args).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("timeout: no final receipt within 300ms"),
        "{stdout}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_status_exits_1() {
    let smsc = start().await;
    let port = smsc.addr.port().to_string();
    let mut args = base(&port);
    args.extend(["--to", "447700900004", "--text", "Hi"]);
    let out = smpp(&args).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("part 1/1 error peer answered with status ESME_RTHROTTLED"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_exits_1_with_a_clear_message() {
    let smsc = start().await;
    let port = smsc.addr.port().to_string();
    let mut args = base(&port);
    args.extend(["--password", "nope", "--to", "447700900001", "--text", "Hi"]);
    let out = smpp(&args).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("cannot bind to 127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("ESME_RINVPASWD"), "{stderr}");
    assert!(stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_exits_1() {
    // A port that was just free.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port().to_string()
    };
    let mut args = base(&port);
    args.extend(["--to", "447700900001", "--text", "Hi"]);
    let out = smpp(&args).await;
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    for args in [
        vec!["send", "--text", "Hi"],                            // no --to
        vec!["send", "--to", "1"],                               // no content
        vec!["send", "--to", "1", "--text", "a", "--hex", "00"], // both
        vec!["send", "--to", "1", "--text", "a", "--coding", "ebcdic"], // bad coding
        vec!["send", "--to", "1", "--text", "a", "--wait-receipt", "soon"],
        vec![
            "send",
            "--to",
            "1",
            "--text",
            "a",
            "--wait-receipt",
            "1s",
            "--bind",
            "transmitter",
        ],
    ] {
        let out = smpp(&args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {:?}", text(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_ca_insecure_and_untrusted() {
    let (tls, pem) = send_support::self_signed();
    let smsc = send_support::start_tls(tls).await;
    let port = smsc.addr.port().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).expect("write ca");
    let ca = ca.to_str().expect("path").to_string();
    let send = |extra: Vec<&'static str>| {
        let mut args = vec!["send", "--host", "localhost", "--port"];
        args.push(port.as_str());
        args.extend(["--to", "447700900001", "--text", "Hi", "--tls"]);
        args.extend(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    for extra in [vec!["--insecure"], vec!["--ca", "CA"]] {
        let args: Vec<String> = send(extra)
            .into_iter()
            .map(|a| if a == "CA" { ca.clone() } else { a })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = smpp(&args).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stdout}{stderr}");
        assert!(stdout.starts_with("part 1/1 message_id "), "{stdout}");
    }
    // The built-in roots do not trust a self-signed certificate.
    let args = send(vec![]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = smpp(&args).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("cannot bind to localhost:"), "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    // --insecure without --tls is a usage error.
    let out = smpp(&["send", "--insecure", "--to", "1", "--text", "a"]).await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_before_the_responses_are_kept() {
    let smsc = start().await;
    let port = smsc.addr.port().to_string();
    let long = "w".repeat(300); // 2 parts, each receipt answered before its response
    let mut args = base(&port);
    args.extend([
        "--to",
        "447700900007",
        "--text",
        &long,
        "--wait-receipt",
        "10s",
    ]);
    let started = std::time::Instant::now();
    let out = smpp(&args).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.matches("state DELIVRD").count(), 2, "{stdout}");
    assert!(stdout.ends_with("final DELIVRD\n"), "{stdout}");
    // Nothing waited for a response timeout.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_and_any_tlv_can_be_set() {
    use smpp_proto::pdu::TlvTag;
    let smsc = start().await;
    let port = smsc.addr.port().to_string();
    let long = "y".repeat(200); // 2 parts: every part gets the fields
    let mut args = base(&port);
    args.extend([
        "--to",
        "447700900001",
        "--text",
        &long,
        "--service-type",
        "CMT",
        "--validity",
        "1d 2h 3m 4s",
        "--schedule",
        "261231235959000+",
        "--priority",
        "2",
        "--esm-class",
        "0x80",
        "--protocol-id",
        "0x41",
        "--tlv",
        "user_message_reference=002a",
        "--tlv",
        "0x1403=0102",
        "--billing-id",
        "01aabb",
        "--interface-version",
        "5.0",
    ]);
    let out = smpp(&args).await;
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(*smsc.versions.lock().unwrap(), [0x50]);
    let sent = smsc.submitted.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    for sm in &sent {
        assert_eq!(sm.service_type, "CMT");
        assert_eq!(sm.validity_period, "000001020304000R");
        assert_eq!(sm.schedule_delivery_time, "261231235959000+");
        assert_eq!(sm.priority_flag, 2);
        assert_eq!(sm.protocol_id, 0x41);
        // The reply path asked for, and the parts' UDH indicator kept.
        assert!(sm.esm_class().reply_path());
        assert!(sm.esm_class().udhi());
        assert_eq!(
            sm.tlvs.get(TlvTag::USER_MESSAGE_REFERENCE),
            Some(&[0, 0x2a][..])
        );
        assert_eq!(sm.tlvs.get(TlvTag(0x1403)), Some(&[1, 2][..]));
        assert_eq!(
            sm.tlvs.get(TlvTag::BILLING_IDENTIFICATION),
            Some(&[1, 0xaa, 0xbb][..])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_field_values_are_usage_errors() {
    for bad in [
        ["--tlv", "no_such_tlv=01"],
        ["--tlv", "user_message_reference"],
        ["--validity", "soon"],
        ["--priority", "4"],
        ["--esm-class", "0x100"],
        ["--interface-version", "4.0"],
    ] {
        let mut args = base("1");
        args.extend(["--to", "1", "--text", "x"]);
        args.extend(bad);
        let out = smpp(&args).await;
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {:?}", text(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_recipients_make_a_submit_multi() {
    use smpp_proto::pdu::DestAddress;
    let smsc = start().await;
    let port = smsc.addr.port().to_string();
    let mut args = base(&port);
    args.extend([
        "--to",
        "+447700900001",
        "--to",
        "447700900002",
        "--to",
        "dl:friends",
        "--text",
        "Hello all",
        "--receipt",
    ]);
    let out = smpp(&args).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "part 1/1 message_id 0000A1B0\n");
    assert!(smsc.submitted.lock().unwrap().is_empty());
    let multi = smsc.multi.lock().unwrap().clone();
    assert_eq!(multi.len(), 1);
    let m = &multi[0];
    assert_eq!(m.short_message.as_ref(), b"Hello all");
    assert_eq!(m.registered_delivery, 1);
    assert_eq!(m.dest_addresses.len(), 3);
    match &m.dest_addresses[0] {
        DestAddress::Sme { ton, addr, .. } => {
            assert_eq!(*ton, 1, "international");
            assert_eq!(addr, "447700900001");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&m.dest_addresses[2], DestAddress::DistributionList(n) if n == "friends"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_sm_carries_the_whole_message_in_its_payload() {
    let smsc = start().await;
    let port = smsc.addr.port().to_string();
    let long = "z".repeat(300); // two or three SMS, one data_sm
    let mut args = base(&port);
    args.extend([
        "--to",
        "447700900001",
        "--text",
        &long,
        "--data-sm",
        "--receipt",
        "--service-type",
        "WAP",
    ]);
    let out = smpp(&args).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "part 1/1 message_id 0000A1B0\n");
    assert!(smsc.submitted.lock().unwrap().is_empty());
    let data = smsc.data.lock().unwrap().clone();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0].tlvs.message_payload(), Some(long.as_bytes()));
    assert_eq!(data[0].registered_delivery, 1);
    assert_eq!(data[0].service_type, "WAP");
    assert_eq!(data[0].destination_addr, "447700900001");
    // One recipient only.
    let mut two = base(&port);
    two.extend(["--to", "1", "--to", "2", "--text", "x", "--data-sm"]);
    assert_eq!(smpp(&two).await.status.code(), Some(2));
}

/// The bind's version decides what goes out: with 3.4 the 5.0-only
/// billing_identification is left out (user_message_reference goes); with
/// 3.3 no TLV goes, and data_sm (3.4) is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_interface_version_decides_what_is_sent() {
    let smsc = start().await;
    let port = smsc.addr.port().to_string();
    let tlvs = [
        "--tlv",
        "user_message_reference=002a",
        "--billing-id",
        "01aabb",
    ];
    let mut v34 = base(&port);
    v34.extend(["--to", "447700900001", "--text", "hi"]);
    v34.extend(tlvs);
    let out = smpp(&v34).await;
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let mut v33 = v34.clone();
    v33.extend(["--interface-version", "3.3"]);
    let out = smpp(&v33).await;
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(*smsc.versions.lock().unwrap(), [0x34, 0x33]);
    let sent = smsc.submitted.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0]
            .tlvs
            .get(smpp_proto::pdu::TlvTag::USER_MESSAGE_REFERENCE),
        Some(&[0, 0x2a][..])
    );
    assert_eq!(
        sent[0]
            .tlvs
            .get(smpp_proto::pdu::TlvTag::BILLING_IDENTIFICATION),
        None
    );
    assert!(sent[1].tlvs.is_empty(), "{:?}", sent[1]);

    let mut data = base(&port);
    data.extend([
        "--to",
        "447700900001",
        "--text",
        "hi",
        "--data-sm",
        "--interface-version",
        "3.3",
    ]);
    let out = smpp(&data).await;
    let (stdout, stderr) = text(&out);
    assert_ne!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout, "part 1/1 error refused: not in SMPP 3.3, the version the peer speaks\n",
        "{stderr}"
    );
    assert!(smsc.data.lock().unwrap().is_empty());
}

/// `--coding cyrillic|hebrew` force those sets; `--smsc-codings` lets `auto`
/// pick a set the SMSC takes instead of UCS-2 (one octet a character); a
/// coding that cannot carry the text is refused naming the character.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_octet_codings_forced_or_from_the_smsc_profile() {
    let smsc = start().await;
    let port = smsc.addr.port().to_string();
    for (extra, text_arg, dc, bytes) in [
        (
            vec!["--coding", "cyrillic"],
            "Привет",
            6u8,
            vec![0xBF, 0xE0, 0xD8, 0xD2, 0xD5, 0xE2],
        ),
        (
            vec!["--coding", "hebrew"],
            "שלום",
            7,
            vec![0xF9, 0xEC, 0xE5, 0xED],
        ),
        (vec!["--coding", "latin1"], "hello", 3, b"hello".to_vec()),
        (
            vec!["--smsc-codings", "latin1,cyrillic"],
            "Привет",
            6,
            vec![0xBF, 0xE0, 0xD8, 0xD2, 0xD5, 0xE2],
        ),
        (
            vec!["--smsc-codings", "latin1", "--smsc-codings", "hebrew"],
            "crêpe",
            3,
            vec![b'c', b'r', 0xEA, b'p', b'e'],
        ),
        (
            vec!["--smsc-codings", "hebrew"],
            "שלום",
            7,
            vec![0xF9, 0xEC, 0xE5, 0xED],
        ),
        // GSM 7-bit first.
        (
            vec!["--smsc-codings", "latin1"],
            "Grüße",
            0,
            vec![b'G', b'r', 0x7E, 0x1E, b'e'],
        ),
        // Without a profile: UCS-2 as before.
        (
            vec![],
            "crêpe",
            8,
            vec![0, b'c', 0, b'r', 0, 0xEA, 0, b'p', 0, b'e'],
        ),
    ] {
        smsc.submitted.lock().unwrap().clear();
        let mut args = base(&port);
        args.extend(["--to", "447700900001", "--text", text_arg]);
        args.extend(extra.iter().copied());
        let out = smpp(&args).await;
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {:?}", text(&out));
        let sent = smsc.submitted.lock().unwrap().clone();
        assert_eq!(sent.len(), 1, "{extra:?}");
        assert_eq!(sent[0].data_coding, dc, "{extra:?}");
        assert_eq!(sent[0].short_message.as_ref(), &bytes[..], "{extra:?}");
    }
    // 141 Latin-1 characters: two parts of 134 octets at most, not three of UCS-2.
    smsc.submitted.lock().unwrap().clear();
    let long = "ê".repeat(141);
    let mut args = base(&port);
    args.extend([
        "--to",
        "447700900001",
        "--text",
        &long,
        "--smsc-codings",
        "latin1",
    ]);
    let out = smpp(&args).await;
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let sent = smsc.submitted.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert!(sent
        .iter()
        .all(|sm| sm.data_coding == 3 && sm.short_message.len() <= 140));

    // Cannot carry it: exit 1 before binding, the character named.
    for (coding, text_arg, named) in [
        ("latin1", "Привет", "'П' at char index 0"),
        ("cyrillic", "crêpe", "'ê' at char index 2"),
        ("hebrew", "a€", "'€' at char index 1"),
    ] {
        let before = smsc.submitted.lock().unwrap().len();
        let mut args = base(&port);
        args.extend([
            "--to",
            "447700900001",
            "--text",
            text_arg,
            "--coding",
            coding,
        ]);
        let out = smpp(&args).await;
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{coding}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot be coded as {coding}")),
            "{stderr}"
        );
        assert!(stderr.contains(named), "{stderr}");
        assert_eq!(smsc.submitted.lock().unwrap().len(), before);
    }
    // An unknown set is a usage error.
    let mut args = base(&port);
    args.extend(["--to", "1", "--text", "a", "--smsc-codings", "ebcdic"]);
    assert_eq!(smpp(&args).await.status.code(), Some(2));
}
