//! The optional features of `smpp serve` through the real binary on free
//! ports, checked over the wire: outbind to an ESME listener (retried until
//! it listens) with the waiting delivery and the `alert_notification` it
//! owes, distribution lists of `submit_multi`, the scripted USSD menu walked
//! by `smpp ussd`, and MO messages fed from a CSV file.

mod security_support;

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use smpp_proto::pdu::{
    Bind, Body, CommandStatus, DataSm, DestAddress, Pdu, SubmitMulti, SubmitSm, TlvTag,
};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Client, Inbound, OutbindListener};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(30);

/// A running `smpp serve` (the shared test harness) and its SMPP address.
struct Serve {
    /// Kept: the server stops when dropped.
    _serve: security_support::Serve,
    _dir: tempfile::TempDir,
    addr: SocketAddr,
}

fn serve(args: &[&str]) -> Serve {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut all = vec!["--memory", "--listen", "127.0.0.1:0", "--dlr-delay", "0s"];
    all.extend_from_slice(args);
    let serve = security_support::Serve::spawn(&all, dir.path());
    let addr = serve.smpp();
    Serve {
        _serve: serve,
        _dir: dir,
        addr,
    }
}

fn credentials(id: &str, pw: &str, range: &str) -> Bind {
    Bind {
        system_id: id.to_owned().into(),
        password: pw.to_owned().into(),
        address_range: range.to_owned().into(),
        interface_version: 0x34,
        ..Default::default()
    }
}

async fn bind(
    addr: SocketAddr,
    kind: BindKind,
    id: &str,
    pw: &str,
    range: &str,
) -> (Client, Inbound) {
    timeout(
        WAIT,
        Client::connect(
            addr,
            kind,
            credentials(id, pw, range),
            SessionConfig::default(),
        ),
    )
    .await
    .expect("bind in time")
    .expect("bind accepted")
}

/// The next inbound PDU (requests are answered OK when dropped).
async fn next(inbound: &Inbound) -> Pdu {
    let request = timeout(WAIT, inbound.recv())
        .await
        .expect("a PDU in time")
        .expect("the session is open");
    request.pdu().clone()
}

fn text_of(sm: &SubmitSm) -> String {
    String::from_utf8_lossy(sm.payload()).into_owned()
}

fn temp_file(name: &str, contents: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join(name);
    std::fs::write(&path, contents).expect("written");
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbind_binds_the_esme_which_gets_its_waiting_message_and_the_alert_goes_out() {
    // A port where nothing listens yet: serve's outbind fails and retries.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let (_dir, config) = temp_file(
        "serve.toml",
        "[[route]]\nprefix = \"4470\"\naccount = \"esme2\"\n",
    );
    let outbind = format!("esme2:obpass@127.0.0.1:{port},interval=1s");
    let srv = serve(&[
        "--config",
        config.to_str().unwrap(),
        "--account",
        "smppclient1:password",
        "--account",
        "esme2:secret",
        "--outbind",
        &outbind,
    ]);
    let (client, client_inbound) = bind(
        srv.addr,
        BindKind::Transceiver,
        "smppclient1",
        "password",
        "",
    )
    .await;

    // A data_sm asking for a delivery pending flag, to esme2's route while
    // esme2 is not bound: it waits.
    let mut data = DataSm {
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: "447700900001".into(),
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: "447012345".into(),
        ..Default::default()
    };
    data.tlvs.set_u8(TlvTag::SET_DPF, 1);
    data.tlvs
        .set(TlvTag::MESSAGE_PAYLOAD, b"waiting for esme2")
        .unwrap();
    let resp = timeout(WAIT, client.request(Body::DataSm(Box::new(data))))
        .await
        .expect("answered in time")
        .expect("data_sm accepted");
    assert!(matches!(resp.body, Body::DataSmResp(_)), "{resp:?}");
    // And a submit_sm without it (no alert for this one).
    let plain = SubmitSm {
        source_addr: "447700900002".into(),
        destination_addr: "447099999".into(),
        short_message: b"second".to_vec().into(),
        ..Default::default()
    };
    timeout(WAIT, client.submit(plain))
        .await
        .expect("answered in time")
        .expect("submit_sm accepted");

    // Now the ESME listens: serve's next outbind reaches it.
    let listener = OutbindListener::bind(("127.0.0.1", port))
        .await
        .expect("the port is still free");
    let (esme, esme_inbound) = timeout(
        WAIT,
        listener.accept(
            BindKind::Receiver,
            credentials("esme2", "secret", ""),
            SessionConfig::default(),
            |ob| ob.system_id.as_str() == Ok("SMPPSIM") && ob.password.as_str() == Ok("obpass"),
        ),
    )
    .await
    .expect("an outbind in time")
    .expect("the outbind accepted and the bind answered");

    // The submitter hears that the recipient is available again...
    let alert = next(&client_inbound).await;
    let Body::AlertNotification(alert) = alert.body else {
        panic!("not an alert_notification: {alert:?}");
    };
    assert_eq!(alert.source_addr.as_str(), Ok("447012345"));
    assert_eq!(alert.esme_addr.as_str(), Ok("447700900001"));
    assert_eq!((alert.esme_addr_ton, alert.esme_addr_npi), (1, 1));
    assert_eq!(alert.tlvs.ms_availability_status(), Some(0));

    // ... and the ESME bound through the outbind gets both messages.
    let mut texts = Vec::new();
    while texts.len() < 2 {
        let pdu = next(&esme_inbound).await;
        let Body::DeliverSm(sm) = &pdu.body else {
            panic!("not a deliver_sm: {pdu:?}");
        };
        let payload = sm.tlvs.message_payload().map(<[u8]>::to_vec);
        texts.push(payload.map_or_else(|| text_of(sm), |p| String::from_utf8_lossy(&p).into()));
    }
    texts.sort();
    assert_eq!(texts, ["second", "waiting for esme2"]);
    // Only one alert: the plain submit_sm asked for none.
    let more = timeout(Duration::from_millis(500), client_inbound.recv()).await;
    assert!(more.is_err(), "an unexpected PDU: {more:?}");
    // Once that session ends, serve outbinds again.
    let _ = esme.unbind().await;
    let (again, _again_inbound) = timeout(
        WAIT,
        listener.accept(
            BindKind::Receiver,
            credentials("esme2", "secret", ""),
            SessionConfig::default(),
            |ob| ob.password.as_str() == Ok("obpass"),
        ),
    )
    .await
    .expect("another outbind in time")
    .expect("bound again");
    let _ = again.unbind().await;
    let _ = client.unbind().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_multi_expands_distribution_lists_and_refuses_unknown_ones() {
    let srv = serve(&[
        "--distribution-list",
        "staff=447700900011,447700900012,447700900013",
    ]);
    let (client, inbound) = bind(
        srv.addr,
        BindKind::Transceiver,
        "smppclient1",
        "password",
        "",
    )
    .await;
    let multi = SubmitMulti {
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: "447700900001".into(),
        dest_addresses: vec![
            DestAddress::DistributionList("staff".into()),
            DestAddress::DistributionList("nobody".into()),
            // Named twice: its members get the message once.
            DestAddress::DistributionList("staff".into()),
            DestAddress::Sme {
                ton: 1,
                npi: 1,
                addr: "447700900019".into(),
            },
        ],
        registered_delivery: 1,
        short_message: b"all hands".to_vec().into(),
        ..Default::default()
    };
    let resp = timeout(WAIT, client.request(Body::SubmitMulti(Box::new(multi))))
        .await
        .expect("answered in time")
        .expect("submit_multi accepted");
    let Body::SubmitMultiResp(resp) = resp.body else {
        panic!("not a submit_multi_resp: {resp:?}");
    };
    assert!(!resp.message_id.is_empty());
    assert_eq!(resp.unsuccess_smes.len(), 1, "{:?}", resp.unsuccess_smes);
    assert_eq!(resp.unsuccess_smes[0].addr.as_str(), Ok("nobody"));
    assert_eq!(
        resp.unsuccess_smes[0].error_status,
        CommandStatus::INVALID_DISTRIBUTION_LIST_NAME
    );
    // One receipt per address reached: the list's three and the plain one.
    let mut reached = Vec::new();
    while reached.len() < 4 {
        let pdu = next(&inbound).await;
        let Body::DeliverSm(sm) = &pdu.body else {
            panic!("not a receipt: {pdu:?}");
        };
        assert!(sm.is_delivery_receipt(), "a receipt: {sm:?}");
        reached.push(sm.source_addr.to_string_lossy().into_owned());
    }
    reached.sort();
    assert_eq!(
        reached,
        [
            "447700900011",
            "447700900012",
            "447700900013",
            "447700900019"
        ]
    );
    let more = timeout(Duration::from_millis(500), inbound.recv()).await;
    assert!(more.is_err(), "more receipts than addresses: {more:?}");
    let _ = client.unbind().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smpp_ussd_walks_the_scripted_menu_to_its_last_screen() {
    let menu = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/ussd-menu.toml");
    // Code 555 is not in the menu: an application behind a route answers it.
    let (_dir, config) = temp_file(
        "serve.toml",
        "[[route]]\nprefix = \"555\"\naccount = \"app\"\n",
    );
    let srv = serve(&[
        "--ussd-menu",
        menu,
        "--config",
        config.to_str().unwrap(),
        "--account",
        "smppclient1:password",
        "--account",
        "app:secret",
    ]);
    let port = srv.addr.port().to_string();
    let run = |answers: &'static str| {
        let port = port.clone();
        tokio::task::spawn_blocking(move || {
            let mut child = Command::new(env!("CARGO_BIN_EXE_smpp"))
                .args([
                    "ussd",
                    "--port",
                    &port,
                    "--from",
                    "447700900123",
                    "--to",
                    "123",
                ])
                .args(["--timeout", "20s"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("smpp ussd starts");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(answers.as_bytes())
                .expect("answers written");
            child.wait_with_output().expect("smpp ussd ends")
        })
    };
    // Bundles, then a wrong choice, then the first bundle.
    let out = timeout(WAIT * 2, run("2\n9\n1\n"))
        .await
        .expect("in time")
        .expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "Welcome to Example Mobile",
            "1 Balance",
            "2 Bundles",
            "3 Help",
            "> 2",
            "Choose a bundle",
            "1 1 GB for 5 EUR",
            "2 5 GB for 15 EUR",
            "> 9",
            "Invalid choice",
            "Choose a bundle",
            "1 1 GB for 5 EUR",
            "2 5 GB for 15 EUR",
            "> 1",
            "1 GB added. Thank you!",
        ],
        "{stdout}"
    );
    // A second dialog with the same subscriber starts afresh.
    let out = timeout(WAIT * 2, run("1\n"))
        .await
        .expect("in time")
        .expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.ends_with("> 1\nYour balance is 5.00 EUR, valid until 31/12.\n"),
        "{stdout}"
    );

    // USSD traffic for other codes goes the usual way, to the application.
    let (app, app_inbound) = bind(srv.addr, BindKind::Receiver, "app", "secret", "").await;
    let (phone, _phone_inbound) = bind(
        srv.addr,
        BindKind::Transceiver,
        "smppclient1",
        "password",
        "",
    )
    .await;
    let (_, dial) =
        smpp_proto::message::ussd::UssdPhone::dial("447700900124", "555", 7, "*555#").unwrap();
    timeout(WAIT, phone.submit_message(&dial.to_short_message()))
        .await
        .expect("answered in time")
        .expect("accepted");
    let pdu = next(&app_inbound).await;
    let routed = smpp_proto::message::ussd::UssdMessage::from_body(&pdu.body)
        .expect("a USSD message for the application");
    assert_eq!(routed.op.name(), "PSSR indication");
    assert_eq!(routed.text, "*555#");
    let _ = app.unbind().await;
    let _ = phone.unbind().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mo_messages_from_a_csv_file_reach_the_bound_receiver() {
    let (_dir, csv) = temp_file(
        "mo.csv",
        "from,to,text,coding\n\
         # a comment\n\
         447700900001,4470100,first\n\
         447700900002,4470101,\"second, with a comma\"\n\
         447700900003,4470102,ünïcödé,ucs2\n\
         447700900004,4470103,fourth\n\
         447700900005,4470104,fifth\n",
    );
    let srv = serve(&["--mo-csv", csv.to_str().unwrap(), "--mo-rate", "20/s"]);
    // The messages wait for a receiver of their destinations: bind it late.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (client, inbound) = bind(
        srv.addr,
        BindKind::Receiver,
        "smppclient1",
        "password",
        "4470[0-9]+",
    )
    .await;
    let mut got = Vec::new();
    while got.len() < 5 {
        let pdu = next(&inbound).await;
        let Body::DeliverSm(sm) = &pdu.body else {
            panic!("not a deliver_sm: {pdu:?}");
        };
        let text = smpp_proto::message::decode_text(
            smpp_proto::message::DataCoding(sm.data_coding),
            sm.payload(),
            &Default::default(),
        )
        .expect("text");
        got.push((
            sm.source_addr.to_string_lossy().into_owned(),
            sm.destination_addr.to_string_lossy().into_owned(),
            text,
        ));
    }
    let expected = [
        ("447700900001", "4470100", "first"),
        ("447700900002", "4470101", "second, with a comma"),
        ("447700900003", "4470102", "ünïcödé"),
        ("447700900004", "4470103", "fourth"),
        ("447700900005", "4470104", "fifth"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| ((*a).into(), (*b).into(), (*c).into()))
        .collect();
    // Taken in file order; each is a delivery of its own (no order between them).
    got.sort();
    assert_eq!(got, expected);
    let more = timeout(Duration::from_millis(500), inbound.recv()).await;
    assert!(more.is_err(), "more MO messages than lines: {more:?}");
    let _ = client.unbind().await;
}

#[test]
fn bad_feature_flags_are_refused_at_start() {
    for args in [
        &["--outbind", "esme2@nowhere"][..],
        &["--distribution-list", "staff="][..],
        &["--mo-rate", "0/s"][..],
        &["--ussd-menu", "/nonexistent/menu.toml"][..],
        &["--mo-csv", "/nonexistent/mo.csv"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_smpp"))
            .args(["serve", "--memory", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("smpp serve runs");
        assert!(!out.status.success(), "{args:?} accepted");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("SMPP listening"), "{args:?}: {stdout}");
    }
}
