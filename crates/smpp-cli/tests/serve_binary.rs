//! The real `smpp serve` binary on 127.0.0.1:0: defaults, accounts (and
//! their allow-lists), TLS (and TLS-only), graceful shutdown on SIGTERM,
//! and kill -9 + restart losing nothing.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use smpp_proto::message::MessageState;
use smpp_proto::pdu::{Bind, Body, CommandStatus, QuerySm, SubmitSm};
use smpp_proto::session::{BindKind, CloseReason, SessionConfig};
use smpp_tokio::{Client, Error, Inbound};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

/// A running `smpp serve`; killed when dropped.
struct Serve {
    child: Child,
    lines: Vec<String>,
}

impl Serve {
    fn spawn(args: &[&str], cwd: &Path) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_smpp"))
            .arg("serve")
            .args(args)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("smpp runs");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        // Everything up to the store line is the start-up banner.
        loop {
            let line = rx.recv_timeout(WAIT).expect("start-up banner in time");
            let last = line.starts_with("store:");
            lines.push(line);
            if last {
                break;
            }
        }
        Serve { child, lines }
    }

    fn addr(&self, label: &str) -> SocketAddr {
        let prefix = format!("{label} listening on ");
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in {:?}", self.lines))
            .parse()
            .expect("an address")
    }

    fn smpp(&self) -> SocketAddr {
        self.addr("SMPP")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bind_pdu(system_id: &str, password: &str) -> Bind {
    Bind {
        system_id: system_id.to_owned().into(),
        password: password.to_owned().into(),
        interface_version: 0x34,
        ..Default::default()
    }
}

async fn bind_as(
    addr: SocketAddr,
    kind: BindKind,
    system_id: &str,
    password: &str,
) -> Result<(Client, Inbound), Error> {
    timeout(
        WAIT,
        Client::connect(
            addr,
            kind,
            bind_pdu(system_id, password),
            SessionConfig::default().with_max_in_flight(64),
        ),
    )
    .await
    .expect("bind answered in time")
}

fn sm(text: &str, registered_delivery: u8) -> SubmitSm {
    SubmitSm {
        source_addr: "447700900001".into(),
        destination_addr: "447700900002".into(),
        registered_delivery,
        short_message: text.as_bytes().to_vec().into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn defaults_work_and_accounts_replace_them() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::spawn(&["--listen", "127.0.0.1:0"], dir.path());
    assert!(
        serve
            .lines
            .iter()
            .any(|l| l == "account: smppclient1 password: password"),
        "{:?}",
        serve.lines
    );
    let (client, _inbound) = bind_as(
        serve.smpp(),
        BindKind::Transceiver,
        "smppclient1",
        "password",
    )
    .await
    .unwrap();
    let id = client.submit(sm("hi", 0)).await.unwrap();
    assert!(!id.is_empty());
    client.unbind().await.unwrap();
    assert!(
        dir.path().join("smpp-data").is_dir(),
        "the default store is ./smpp-data"
    );
    drop(serve);

    let serve = Serve::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--account",
            "alice:secret",
            "--tps",
            "3",
        ],
        dir.path(),
    );
    assert!(serve.lines.iter().any(|l| l == "account: alice"));
    assert!(
        !serve.lines.iter().any(|l| l.contains("secret")),
        "passwords are not printed"
    );
    let refused = bind_as(
        serve.smpp(),
        BindKind::Transmitter,
        "smppclient1",
        "password",
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(Error::Status(CommandStatus::INVALID_SYSTEM_ID))
        ),
        "{refused:?}"
    );
    let (client, _inbound) = bind_as(serve.smpp(), BindKind::Transmitter, "alice", "secret")
        .await
        .unwrap();
    // --tps 3: a burst of 12 gets some ESME_RTHROTTLED.
    let started = std::time::Instant::now();
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let c = client.clone();
        burst.spawn(async move { c.submit(sm("burst", 0)).await });
    }
    let mut throttled = 0;
    while let Some(r) = burst.join_next().await {
        if let Err(e) = r.unwrap() {
            assert!(
                matches!(e, Error::Status(CommandStatus::THROTTLED)),
                "{e:?}"
            );
            throttled += 1;
        }
    }
    // At most 3 per one-second window the burst spanned get through.
    let windows = started.elapsed().as_secs() as usize + 2;
    assert!(
        throttled >= 12usize.saturating_sub(3 * windows).max(1),
        "{throttled} throttled"
    );
    client.unbind().await.unwrap();
}

#[tokio::test]
async fn sigterm_unbinds_everyone_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Serve::spawn(&["--listen", "127.0.0.1:0"], dir.path());
    let (client, _inbound) = bind_as(serve.smpp(), BindKind::Receiver, "smppclient1", "password")
        .await
        .unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let reason = timeout(WAIT, client.closed())
        .await
        .expect("closed in time");
    // The server unbinds; the client's session sometimes sees the server's
    // close before it records its own unbind_resp as sent (ConnectionLost):
    // a client-side race in smpp-tokio, reported. Either way we were closed.
    assert!(
        matches!(
            reason,
            CloseReason::Unbound
                | CloseReason::Error(smpp_proto::session::SessionError::ConnectionLost)
        ),
        "{reason:?}"
    );
    let mut exited = None;
    for _ in 0..200 {
        if let Some(s) = serve.child.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exited = exited.expect("exited in time");
    assert!(exited.success(), "{exited:?}");
}

#[tokio::test]
async fn tls_listener_serves_binds() {
    use smpp_tokio::rustls::{self, pki_types::ServerName, RootCertStore};
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let serve = Serve::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        dir.path(),
    );
    let mut roots = RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let (client, inbound) = timeout(
        WAIT,
        Client::connect_tls(
            serve.addr("TLS"),
            ServerName::try_from("localhost").unwrap(),
            Arc::new(tls),
            BindKind::Transceiver,
            bind_pdu("smppclient1", "password"),
            SessionConfig::default(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let id = client.submit(sm("over tls", 1)).await.unwrap();
    let receipt = timeout(WAIT, inbound.recv())
        .await
        .unwrap()
        .unwrap()
        .receipt()
        .unwrap();
    assert_eq!(receipt.id, id.to_string_lossy());
    client.unbind().await.unwrap();
}

/// Submits with receipts requested and no receiver bound, kill -9s the
/// server while submissions are still in flight, restarts it on the same
/// store: every acknowledged message gets its receipt and query_sm finds it.
#[tokio::test]
async fn kill_9_and_restart_loses_nothing() {
    const N: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--store",
        store.to_str().unwrap(),
        "--dlr-delay",
        "0s",
    ];
    let mut serve = Serve::spawn(&args, dir.path());
    let (client, _inbound) = bind_as(
        serve.smpp(),
        BindKind::Transmitter,
        "smppclient1",
        "password",
    )
    .await
    .unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut submitters = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (client, acked) = (client.clone(), acked.clone());
        submitters.spawn(async move {
            for i in 0.. {
                match client.submit(sm(&format!("w{worker} m{i}"), 1)).await {
                    Ok(id) => acked
                        .lock()
                        .unwrap()
                        .push(id.to_string_lossy().into_owned()),
                    Err(_) => break,
                }
            }
        });
    }
    // Kill while the load is still running.
    timeout(Duration::from_secs(60), async {
        while acked.lock().unwrap().len() < N {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("enough messages accepted");
    serve.child.kill().unwrap(); // SIGKILL
    serve.child.wait().unwrap();
    while submitters.join_next().await.is_some() {}
    drop(client);
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(acked.len() >= N);

    let serve = Serve::spawn(&args, dir.path());
    let (rx, inbound) = bind_as(serve.smpp(), BindKind::Receiver, "smppclient1", "password")
        .await
        .unwrap();
    let mut missing: HashSet<&str> = acked.iter().map(String::as_str).collect();
    let got = timeout(Duration::from_secs(60), async {
        while !missing.is_empty() {
            let req = inbound.recv().await.expect("session open");
            let receipt = req.receipt().expect("only receipts");
            assert_eq!(receipt.state, MessageState::Delivered);
            missing.remove(receipt.id.as_str());
        }
    })
    .await;
    assert!(got.is_ok(), "{} receipts never came", missing.len());
    // Receipts of messages committed but not yet acknowledged at the kill
    // may follow: keep answering them.
    let drain = tokio::spawn(async move { while inbound.recv().await.is_some() {} });

    let (tx, _i) = bind_as(
        serve.smpp(),
        BindKind::Transmitter,
        "smppclient1",
        "password",
    )
    .await
    .unwrap();
    for id in &acked {
        let q = QuerySm {
            message_id: id.clone().into(),
            source_addr: "447700900001".into(),
            ..Default::default()
        };
        let resp = tx.request(Body::QuerySm(Box::new(q))).await.unwrap();
        let Body::QuerySmResp(r) = resp.body else {
            panic!("query_sm_resp expected")
        };
        assert_eq!(r.message_state, MessageState::Delivered.to_u8(), "{id}");
    }
    // Ids stay unique across the restart.
    let fresh = tx.submit(sm("after restart", 0)).await.unwrap();
    assert!(!acked.contains(&fresh.to_string_lossy().into_owned()));
    tx.unbind().await.unwrap();
    rx.unbind().await.unwrap();
    drain.await.unwrap();
}

#[tokio::test]
async fn config_file_sets_accounts_and_rules() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("smsc.toml");
    std::fs::write(
        &config,
        r##"
memory = true
dlr_delay = "0s"

[[account]]
system_id = "bob"
password = "pw"

[[rule]]
prefix = "4479"
state = "UNDELIV"
error = 9

[[rule]]
contains = "#THROTTLE"
status = "ESME_RTHROTTLED"
"##,
    )
    .unwrap();
    let serve = Serve::spawn(
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    assert!(serve.lines.iter().any(|l| l == "store: in memory"));
    let (client, inbound) = bind_as(serve.smpp(), BindKind::Transceiver, "bob", "pw")
        .await
        .unwrap();
    let mut to_fail = sm("x", 1);
    to_fail.destination_addr = "447900000001".into();
    let id = client.submit(to_fail).await.unwrap();
    let req = timeout(WAIT, inbound.recv()).await.unwrap().unwrap();
    let receipt = req.receipt().unwrap();
    assert_eq!(receipt.id, id.to_string_lossy());
    assert_eq!(receipt.state, MessageState::Undeliverable);
    assert_eq!(receipt.error.as_deref(), Some("009"));
    drop(req);
    let e = client.submit(sm("#THROTTLE", 0)).await.unwrap_err();
    assert!(
        matches!(e, Error::Status(CommandStatus::THROTTLED)),
        "{e:?}"
    );
    client.unbind().await.unwrap();

    // A bad file is a start-up error, not a silent default.
    std::fs::write(&config, "[[rule]]\nprefix = \"1\"\nstate = \"NOPE\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args(["serve", "--config", config.to_str().unwrap(), "--memory"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOPE"));
}

/// Raw bytes on the wire: an unknown command id gets generic_nack
/// ESME_RINVCMDID, and the session (and the server) carry on.
#[tokio::test]
async fn unknown_command_gets_generic_nack_and_the_session_carries_on() {
    use smpp_proto::pdu::{Pdu, SequenceNumber};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::spawn(&["--listen", "127.0.0.1:0", "--memory"], dir.path());
    let mut tcp = tokio::net::TcpStream::connect(serve.smpp()).await.unwrap();
    let bind = Pdu::request(
        SequenceNumber::new(1),
        Body::BindTransmitter(Box::new(bind_pdu("smppclient1", "password"))),
    );
    tcp.write_all(&bind.to_vec().unwrap()).await.unwrap();
    async fn read_pdu(tcp: &mut tokio::net::TcpStream) -> (u32, u32, u32) {
        let mut header = [0u8; 16];
        timeout(WAIT, tcp.read_exact(&mut header))
            .await
            .unwrap()
            .unwrap();
        let word = |i: usize| u32::from_be_bytes(header[i..i + 4].try_into().unwrap());
        let mut body = vec![0u8; (word(0) as usize).saturating_sub(16)];
        tcp.read_exact(&mut body).await.unwrap();
        (word(4), word(8), word(12))
    }
    assert_eq!(
        read_pdu(&mut tcp).await,
        (0x8000_0002, 0, 1),
        "bind_transmitter_resp OK"
    );
    // command_id 0x00000077 does not exist.
    let unknown = [0, 0, 0, 16, 0, 0, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 2];
    tcp.write_all(&unknown).await.unwrap();
    assert_eq!(
        read_pdu(&mut tcp).await,
        (0x8000_0000, CommandStatus::INVALID_COMMAND_ID.0, 2),
        "generic_nack ESME_RINVCMDID"
    );
    let enquire = Pdu::enquire_link(SequenceNumber::new(3));
    tcp.write_all(&enquire.to_vec().unwrap()).await.unwrap();
    assert_eq!(
        read_pdu(&mut tcp).await,
        (0x8000_0015, 0, 3),
        "enquire_link_resp"
    );
}

/// A routed (ESME-to-ESME) message accepted while its receiver is away
/// survives a kill -9 and reaches it after the restart; the submitter then
/// gets its receipt.
#[tokio::test]
async fn routed_message_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("smsc.toml");
    std::fs::write(
        &config,
        r#"
dlr_delay = "0s"
[[account]]
system_id = "esme1"
password = "pw1"
[[account]]
system_id = "esme2"
password = "pw2"
[[route]]
prefix = "555"
account = "esme2"
"#,
    )
    .unwrap();
    let store = dir.path().join("store");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    let mut serve = Serve::spawn(&args, dir.path());
    let (tx, _i) = bind_as(serve.smpp(), BindKind::Transmitter, "esme1", "pw1")
        .await
        .unwrap();
    let mut routed = sm("for esme2", 1);
    routed.destination_addr = "5551234".into();
    let id = tx.submit(routed).await.unwrap();
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    drop(tx);

    let serve = Serve::spawn(&args, dir.path());
    let (rx1, receipts) = bind_as(serve.smpp(), BindKind::Receiver, "esme1", "pw1")
        .await
        .unwrap();
    let (rx2, mo) = bind_as(serve.smpp(), BindKind::Receiver, "esme2", "pw2")
        .await
        .unwrap();
    let req = timeout(WAIT, mo.recv()).await.unwrap().unwrap();
    let Body::DeliverSm(d) = req.body() else {
        panic!("deliver_sm expected")
    };
    assert_eq!(d.short_message.as_ref(), b"for esme2");
    assert_eq!(d.destination_addr, "5551234");
    drop(req);
    let receipt = timeout(WAIT, receipts.recv())
        .await
        .unwrap()
        .unwrap()
        .receipt()
        .unwrap();
    assert_eq!(receipt.id, id.to_string_lossy());
    assert_eq!(receipt.state, MessageState::Delivered);
    rx2.unbind().await.unwrap();
    rx1.unbind().await.unwrap();
}

/// `--account ID:PASSWORD@CIDR`: a bind from outside the networks gets
/// ESME_RBINDFAIL (right or wrong password alike); from inside, it binds.
#[tokio::test]
async fn allow_lists_refuse_binds_from_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--account",
            "remote:s3cr@t@10.0.0.0/8",
            "--account",
            "local:pw@10.0.0.0/8,127.0.0.1",
            "--account",
            "anywhere:p@ss",
        ],
        dir.path(),
    );
    assert!(
        serve
            .lines
            .iter()
            .any(|l| l == "account: local from 10.0.0.0/8,127.0.0.1/32"),
        "{:?}",
        serve.lines
    );
    assert!(
        !serve.lines.iter().any(|l| l.contains("s3cr")),
        "passwords are not printed"
    );
    for password in ["s3cr@t", "wrong"] {
        let refused = bind_as(serve.smpp(), BindKind::Transmitter, "remote", password).await;
        assert!(
            matches!(refused, Err(Error::Status(CommandStatus::BIND_FAILED))),
            "password {password:?}: {refused:?}"
        );
    }
    let (client, _inbound) = bind_as(serve.smpp(), BindKind::Transmitter, "local", "pw")
        .await
        .unwrap();
    assert!(!client.submit(sm("allowed", 0)).await.unwrap().is_empty());
    client.unbind().await.unwrap();
    let wrong = bind_as(serve.smpp(), BindKind::Transmitter, "local", "nope").await;
    assert!(
        matches!(wrong, Err(Error::Status(CommandStatus::INVALID_PASSWORD))),
        "{wrong:?}"
    );
    // No allow-list, and a password with '@' that is not followed by a network.
    let (client, _inbound) = bind_as(serve.smpp(), BindKind::Transmitter, "anywhere", "p@ss")
        .await
        .unwrap();
    client.unbind().await.unwrap();
}

#[test]
fn bad_security_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--memory", "--retention", "0s"][..],
        &[
            "--memory",
            "--account",
            "a:b@10.0.0.0/8",
            "--retention",
            "1x",
        ],
        &["--memory", "--tls-only"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_smpp"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("smpp runs");
        assert!(!out.status.success(), "{args:?}: {out:?}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("listening"),
            "{args:?}: {out:?}"
        );
    }
}

/// `--tls-only`: no plain-TCP listener (no `SMPP listening on` line), TLS
/// binds work; without a TLS listener configured it refuses to start.
#[tokio::test]
async fn tls_only_has_no_plain_listener() {
    use smpp_tokio::rustls::{self, pki_types::ServerName, RootCertStore};
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();

    let refused = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args(["serve", "--listen", "127.0.0.1:0", "--memory", "--tls-only"])
        .current_dir(dir.path())
        .output()
        .expect("smpp runs");
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--tls-only"),
        "{refused:?}"
    );
    assert!(!String::from_utf8_lossy(&refused.stdout).contains("listening"));

    // A port that was free a moment ago: nothing may listen on it after start-up.
    let plain = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let plain_arg = plain.to_string();
    let serve = Serve::spawn(
        &[
            "--listen",
            &plain_arg,
            "--memory",
            "--tls-only",
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(
        !serve
            .lines
            .iter()
            .any(|l| l.starts_with("SMPP listening on")),
        "{:?}",
        serve.lines
    );
    assert!(
        std::net::TcpStream::connect(plain).is_err(),
        "something listens on the plain address {plain}"
    );
    let mut roots = RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let (client, _inbound) = timeout(
        WAIT,
        Client::connect_tls(
            serve.addr("TLS"),
            ServerName::try_from("localhost").unwrap(),
            Arc::new(tls),
            BindKind::Transmitter,
            bind_pdu("smppclient1", "password"),
            SessionConfig::default(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!client.submit(sm("tls only", 0)).await.unwrap().is_empty());
    client.unbind().await.unwrap();
}
