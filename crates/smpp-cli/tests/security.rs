//! The security controls of `smpp serve`, over the wire against the real
//! binary: hashed passwords, the bind lockout, the HTTP token. PROXY
//! protocol and TLS: `security_tls.rs`.

mod security_support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use security_support::*;
use smpp_proto::pdu::CommandStatus;

/// `smpp hash-password` + `--account ID:$argon2id$...`: the right password
/// binds (again and again: cached), a wrong one does not; the hash is not
/// printed and the plain-text account of the same server is flagged.
#[tokio::test]
async fn hashed_password_binds_with_the_right_password_only() {
    let dir = tempfile::tempdir().unwrap();
    let hash = hash_password("s3cret");
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(!hash.contains("s3cret"));
    let account = format!("hashed:{hash}");
    let serve = Serve::spawn(
        &["--listen", "127.0.0.1:0", "--memory", "--account", &account],
        dir.path(),
    );
    assert!(
        !serve.lines.iter().any(|l| l.contains("argon2")),
        "{:?}",
        serve.lines
    );
    for _ in 0..3 {
        let ok = bind_status("127.0.0.1", serve.smpp(), b"", "hashed", "s3cret").await;
        assert_eq!(ok, Some(CommandStatus::OK));
    }
    let wrong = bind_status("127.0.0.1", serve.smpp(), b"", "hashed", "s3creT").await;
    assert_eq!(wrong, Some(CommandStatus::INVALID_PASSWORD));
    // The hash itself is no password.
    let truncated = &hash[..8];
    let as_password = bind_status("127.0.0.1", serve.smpp(), b"", "hashed", truncated).await;
    assert_eq!(as_password, Some(CommandStatus::INVALID_PASSWORD));
}

/// A value that looks like a hash but is not one refuses to start.
#[test]
fn a_broken_hash_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args(["serve", "--listen", "127.0.0.1:0", "--memory", "--account"])
        .arg("esme:$argon2id$v=19$broken")
        .current_dir(dir.path())
        .output()
        .expect("smpp runs");
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("account esme"), "{stderr}");
}

/// The default lockout (more than 10 failures a minute): after 12 wrong
/// binds from 127.0.0.1 the right password gets ESME_RBINDFAIL there, while
/// 127.0.0.2 binds; /metrics counts the lockout and the refused binds.
#[tokio::test]
async fn twelve_wrong_binds_lock_the_address_out() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--http",
            "127.0.0.1:0",
            "--account",
            "esme:right",
        ],
        dir.path(),
    );
    let smpp = serve.smpp();
    for i in 0..12 {
        let status = bind_status("127.0.0.1", smpp, b"", "esme", "wrong").await;
        let expected = if i < 11 {
            CommandStatus::INVALID_PASSWORD
        } else {
            CommandStatus::BIND_FAILED
        };
        assert_eq!(status, Some(expected), "wrong bind #{}", i + 1);
    }
    let locked = bind_status("127.0.0.1", smpp, b"", "esme", "right").await;
    assert_eq!(locked, Some(CommandStatus::BIND_FAILED), "locked out");
    let elsewhere = bind_status("127.0.0.2", smpp, b"", "esme", "right").await;
    assert_eq!(elsewhere, Some(CommandStatus::OK), "another address binds");
    let (status, body) = http_get(serve.addr("HTTP"), "/metrics", None).await;
    assert_eq!(status, 200);
    assert_eq!(metric(&body, "smpp_bind_lockouts_total"), 1.0, "{body}");
    assert_eq!(metric(&body, "smpp_binds_locked_out_total"), 2.0, "{body}");
}

/// `--bind-failure-limit off` turns the lockout off; a bad value refuses to start.
#[tokio::test]
async fn the_lockout_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--account",
            "esme:right",
            "--bind-failure-limit",
            "2/1m/1h",
        ],
        dir.path(),
    );
    for _ in 0..3 {
        bind_status("127.0.0.1", serve.smpp(), b"", "nobody", "x").await;
    }
    let locked = bind_status("127.0.0.1", serve.smpp(), b"", "esme", "right").await;
    assert_eq!(
        locked,
        Some(CommandStatus::BIND_FAILED),
        "an unknown system_id counts too"
    );
    drop(serve);
    let serve = Serve::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--account",
            "esme:right",
            "--bind-failure-limit",
            "off",
        ],
        dir.path(),
    );
    for _ in 0..15 {
        bind_status("127.0.0.1", serve.smpp(), b"", "esme", "wrong").await;
    }
    let ok = bind_status("127.0.0.1", serve.smpp(), b"", "esme", "right").await;
    assert_eq!(ok, Some(CommandStatus::OK));
    let out = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args(["serve", "--listen", "127.0.0.1:0", "--memory"])
        .args(["--bind-failure-limit", "ten"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bind-failure-limit"));
}

/// `--http-token`: every route needs `Authorization: Bearer TOKEN` (401
/// without it or with a wrong one, then 200/404 as usual); `--metrics-open`
/// lets /metrics answer without it, the API still not.
#[tokio::test]
async fn http_needs_the_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--http",
            "127.0.0.1:0",
            "--http-token",
            "t0ken",
        ],
        dir.path(),
    );
    let http = serve.addr("HTTP");
    for path in ["/metrics", "/api/messages/1", "/nowhere"] {
        assert_eq!(http_get(http, path, None).await.0, 401, "{path}");
        assert_eq!(http_get(http, path, Some("t0keN")).await.0, 401, "{path}");
    }
    let (status, body) = http_get(http, "/metrics", Some("t0ken")).await;
    assert_eq!(status, 200);
    assert!(body.contains("smpp_binds_total"), "{body}");
    assert_eq!(
        http_get(http, "/api/messages/1", Some("t0ken")).await.0,
        404
    );
    drop(serve);

    // The token from the environment, as a hash; /metrics open.
    let hash = hash_password("env-token");
    let mut child = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args(["serve", "--listen", "127.0.0.1:0", "--memory"])
        .args(["--http", "127.0.0.1:0", "--metrics-open"])
        .env("SMPP_HTTP_TOKEN", &hash)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let http: SocketAddr = loop {
        let line = lines.next().expect("a banner").unwrap();
        if let Some(addr) = line.strip_prefix("HTTP listening on ") {
            break addr.parse().unwrap();
        }
    };
    assert_eq!(
        http_get(http, "/metrics", None).await.0,
        200,
        "metrics open"
    );
    assert_eq!(http_get(http, "/api/messages/1", None).await.0, 401);
    assert_eq!(
        http_get(http, "/api/messages/1", Some("env-token")).await.0,
        404
    );
    assert_eq!(http_get(http, "/api/messages/1", Some(&hash)).await.0, 401);
    let _ = child.kill();
    let _ = child.wait();
}

/// A non-loopback `--http` address without a token refuses to start (and
/// listens nowhere); with a token it would be allowed.
#[test]
fn non_loopback_http_without_a_token_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    for http in ["0.0.0.0:0", "[::]:0"] {
        let out = Command::new(env!("CARGO_BIN_EXE_smpp"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--memory",
                "--http",
                http,
            ])
            .env_remove("SMPP_HTTP_TOKEN")
            .current_dir(dir.path())
            .output()
            .expect("smpp runs");
        assert!(!out.status.success(), "{http}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--http-token"), "{stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    }
}

/// Wrong HTTP tokens count per address like failed binds (the same
/// --bind-failure-limit, a table of their own): over it, even the right
/// token gets 429 from that address, while the SMPP side is untouched.
#[tokio::test]
async fn wrong_http_tokens_lock_the_address_out() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--http",
            "127.0.0.1:0",
            "--http-token",
            "t0ken",
            "--bind-failure-limit",
            "2/1m/5m",
        ],
        dir.path(),
    );
    let http = serve.addr("HTTP");
    assert_eq!(http_get(http, "/metrics", Some("t0ken")).await.0, 200);
    for _ in 0..3 {
        assert_eq!(http_get(http, "/metrics", Some("guess")).await.0, 401);
    }
    assert_eq!(http_get(http, "/metrics", Some("t0ken")).await.0, 429);
    let bind = bind_status("127.0.0.1", serve.smpp(), b"", "smppclient1", "password").await;
    assert_eq!(bind, Some(CommandStatus::OK), "binds are counted apart");
}

/// A burst of concurrent wrong binds against a hashed account from one
/// address: they all pass the lockout check before any fails, queue for
/// the hashing slots, and once the lockout engages the rest are refused
/// without being hashed (ESME_RBINDFAIL rather than ESME_RINVPASWD).
#[tokio::test]
async fn a_burst_of_guesses_is_not_hashed_after_the_lockout() {
    let dir = tempfile::tempdir().unwrap();
    let account = format!("hashed:{}", hash_password("right"));
    let serve = Serve::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--account",
            &account,
            "--bind-failure-limit",
            "2/1m/5m",
        ],
        dir.path(),
    );
    let smpp = serve.smpp();
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..24 {
        burst.spawn(async move { bind_status("127.0.0.1", smpp, b"", "hashed", "wrong").await });
    }
    let (mut hashed, mut refused) = (0, 0);
    while let Some(status) = burst.join_next().await {
        match status.unwrap() {
            Some(CommandStatus::INVALID_PASSWORD) => hashed += 1,
            Some(CommandStatus::BIND_FAILED) => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(hashed >= 3, "the limit's failures were hashed: {hashed}");
    assert!(
        hashed <= 10 && refused >= 14,
        "hashed {hashed}, refused unhashed {refused}"
    );
}

/// `smpp_late_responses_total`: an ESME that answers a deliver_sm after the
/// server's 10 s response timeout is counted on /metrics (this test takes
/// that long).
#[tokio::test]
async fn a_late_deliver_sm_resp_is_counted_on_metrics() {
    use smpp_proto::pdu::{Bind, Body};
    use smpp_proto::session::{BindKind, SessionConfig};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--http",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    let bind = Bind {
        system_id: "smppclient1".into(),
        password: "password".into(),
        interface_version: 0x34,
        ..Default::default()
    };
    let (client, inbound) = smpp_tokio::Client::connect(
        serve.smpp(),
        BindKind::Receiver,
        bind,
        SessionConfig::default(),
    )
    .await
    .unwrap();
    // Answers the MO 11 s late: after the server's 10 s timeout.
    let answering = tokio::spawn(async move {
        let request = inbound.recv().await.expect("the MO deliver_sm");
        tokio::time::sleep(std::time::Duration::from_secs(11)).await;
        request.respond(CommandStatus::OK, Body::DeliverSmResp(Default::default()));
        inbound
    });
    let http = serve.addr("HTTP");
    let body = r#"{"from":"447700900999","to":"447700900123","text":"late"}"#;
    let mut tcp = tokio::net::TcpStream::connect(http).await.unwrap();
    let request = format!(
        "POST /api/mo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "accepted: {response}");
    let _inbound = answering.await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, metrics) = http_get(http, "/metrics", None).await;
        if metric(&metrics, "smpp_late_responses_total") == 1.0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The server may have given up on so slow a receiver: closed is fine.
    let _ = client.unbind().await;
}
