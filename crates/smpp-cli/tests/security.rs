//! The security controls of `smpp serve`, over the wire against the real
//! binary: hashed passwords, the bind lockout, the HTTP token, the PROXY
//! protocol.

use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use smpp_proto::pdu::{Bind, Body, CommandStatus, Pdu, SequenceNumber};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// A TCP connection to `server` from the local address `from` (127.0.0.x).
async fn connect_from(from: &str, server: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{from}:0").parse().unwrap())
        .expect("a loopback address to connect from");
    timeout(WAIT, socket.connect(server))
        .await
        .expect("connected in time")
        .expect("connects")
}

/// Reads one PDU's header: (command_id, command_status, sequence_number);
/// `None` when the server closed the connection.
async fn read_pdu(tcp: &mut tokio::net::TcpStream) -> Option<(u32, u32, u32)> {
    let mut header = [0u8; 16];
    timeout(WAIT, tcp.read_exact(&mut header))
        .await
        .expect("an answer in time")
        .ok()?;
    let word = |i: usize| u32::from_be_bytes(header[i..i + 4].try_into().unwrap());
    let mut body = vec![0u8; (word(0) as usize).saturating_sub(16)];
    tcp.read_exact(&mut body).await.ok()?;
    Some((word(4), word(8), word(12)))
}

fn bind_pdu(system_id: &str, password: &str) -> Vec<u8> {
    let bind = Bind {
        system_id: system_id.to_owned().into(),
        password: password.to_owned().into(),
        interface_version: 0x34,
        ..Default::default()
    };
    Pdu::request(
        SequenceNumber::new(1),
        Body::BindTransmitter(Box::new(bind)),
    )
    .to_vec()
    .unwrap()
}

/// Binds as a transmitter from `from` (after `preamble`, e.g. a PROXY
/// header) and returns the bind answer's status (`None`: closed unanswered).
async fn bind_status(
    from: &str,
    server: SocketAddr,
    preamble: &[u8],
    system_id: &str,
    password: &str,
) -> Option<CommandStatus> {
    let mut tcp = connect_from(from, server).await;
    let mut out = preamble.to_vec();
    out.extend(bind_pdu(system_id, password));
    tcp.write_all(&out).await.ok()?;
    let (id, status, _) = read_pdu(&mut tcp).await?;
    assert_eq!(id, 0x8000_0002, "bind_transmitter_resp");
    Some(CommandStatus(status))
}

fn hash_password(password: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smpp runs");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{password}").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "the hash alone on stdout: {stdout:?}");
    lines[0].to_owned()
}

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

/// `GET path` over HTTP/1.1 with an optional bearer token: (status, body).
async fn http_get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut tcp = timeout(WAIT, tokio::net::TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    timeout(WAIT, tcp.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP answer: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or_else(String::new, |(_, b)| b.to_owned());
    (status, body)
}

/// The value of a metric line `name value` (0 when absent).
fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
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

fn proxy_v1(client: &str, port: u16) -> Vec<u8> {
    format!("PROXY TCP4 {client} 127.0.0.1 {port} 2775\r\n").into_bytes()
}

fn proxy_v2(client: [u8; 4], port: u16) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend([0x21, 0x11, 0, 12]);
    header.extend(client);
    header.extend([127, 0, 0, 1]);
    header.extend(port.to_be_bytes());
    header.extend(2775u16.to_be_bytes());
    header
}

/// `--proxy-protocol 127.0.0.1/32`: from that trusted source, a v1 or v2
/// header carrying 192.0.2.7 makes the allow-list (192.0.2.7 only) accept
/// the bind; without the header the connection is closed; a carried address
/// outside the allow-list is refused. From an untrusted source (127.0.0.2)
/// the octets are SMPP: a header is rejected, a plain bind is judged by
/// 127.0.0.2 itself.
#[tokio::test]
async fn proxy_protocol_carries_the_client_address_from_trusted_sources() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--account",
            "esme:pw@192.0.2.7",
            "--proxy-protocol",
            "127.0.0.1/32",
        ],
        dir.path(),
    );
    let smpp = serve.smpp();
    let v1 = bind_status(
        "127.0.0.1",
        smpp,
        &proxy_v1("192.0.2.7", 40000),
        "esme",
        "pw",
    )
    .await;
    assert_eq!(v1, Some(CommandStatus::OK), "v1");
    let v2 = bind_status(
        "127.0.0.1",
        smpp,
        &proxy_v2([192, 0, 2, 7], 40001),
        "esme",
        "pw",
    )
    .await;
    assert_eq!(v2, Some(CommandStatus::OK), "v2");
    let other = bind_status(
        "127.0.0.1",
        smpp,
        &proxy_v1("192.0.2.8", 40002),
        "esme",
        "pw",
    )
    .await;
    assert_eq!(
        other,
        Some(CommandStatus::BIND_FAILED),
        "carried address not allowed"
    );

    // Trusted source, no header: closed, no bind answer.
    let mut tcp = connect_from("127.0.0.1", smpp).await;
    tcp.write_all(&bind_pdu("esme", "pw")).await.unwrap();
    assert_eq!(read_pdu(&mut tcp).await, None, "closed without a header");
    // Trusted source, malformed header: closed.
    let mut tcp = connect_from("127.0.0.1", smpp).await;
    let mut bad = b"PROXY TCP4 192.0.2.7 nonsense\r\n".to_vec();
    bad.extend(bind_pdu("esme", "pw"));
    tcp.write_all(&bad).await.unwrap();
    assert_eq!(read_pdu(&mut tcp).await, None, "closed on a bad header");

    // Untrusted source: a header is not SMPP, never a bind.
    let mut tcp = connect_from("127.0.0.2", smpp).await;
    let mut out = proxy_v1("192.0.2.7", 40003);
    out.extend(bind_pdu("esme", "pw"));
    let _ = tcp.write_all(&out).await;
    if let Some((id, status, _)) = read_pdu(&mut tcp).await {
        assert!(
            id != 0x8000_0002 || status != 0,
            "an untrusted header bound: {id:#x} {status:#x}"
        );
    }
    let mut tcp = connect_from("127.0.0.2", smpp).await;
    let mut out = proxy_v2([192, 0, 2, 7], 40004);
    out.extend(bind_pdu("esme", "pw"));
    let _ = tcp.write_all(&out).await;
    if let Some((id, status, _)) = read_pdu(&mut tcp).await {
        assert!(id != 0x8000_0002 || status != 0, "{id:#x} {status:#x}");
    }
    // ... and its plain bind is judged by its own address.
    let direct = bind_status("127.0.0.2", smpp, b"", "esme", "pw").await;
    assert_eq!(direct, Some(CommandStatus::BIND_FAILED));
}

/// A self-signed certificate for localhost, written as PEM files in `dir`.
fn server_cert(dir: &Path) -> (rcgen::CertifiedKey<rcgen::KeyPair>, String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let path = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();
    (made, path(cert), path(key))
}

fn client_tls(
    server: &rcgen::Certificate,
    identity: Option<(&rcgen::Certificate, &rcgen::KeyPair)>,
) -> std::sync::Arc<smpp_tokio::rustls::ClientConfig> {
    use smpp_tokio::rustls::{self, pki_types::PrivatePkcs8KeyDer, RootCertStore};
    let mut roots = RootCertStore::empty();
    roots.add(server.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![cert.der().clone()],
                PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
            )
            .unwrap(),
    };
    std::sync::Arc::new(config)
}

/// `--http-tls`: the HTTP API over TLS with the SMPP TLS certificate (and
/// still the token); plain HTTP on that port gets no answer.
#[tokio::test]
async fn http_over_tls_with_the_token() {
    use smpp_tokio::rustls::pki_types::ServerName;
    let dir = tempfile::tempdir().unwrap();
    let (made, cert, key) = server_cert(dir.path());
    let serve = Serve::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--http",
            "127.0.0.1:0",
            "--http-tls",
            "--http-token",
            "t0ken",
        ],
        dir.path(),
    );
    let http = serve.addr("HTTP");
    let connector = smpp_tokio::tokio_rustls::TlsConnector::from(client_tls(&made.cert, None));
    for (token, expected) in [(None, 401), (Some("t0ken"), 200)] {
        let tcp = tokio::net::TcpStream::connect(http).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = timeout(WAIT, connector.connect(name, tcp))
            .await
            .unwrap()
            .expect("TLS handshake");
        let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
        let request =
            format!("GET /metrics HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        let _ = timeout(WAIT, tls.read_to_end(&mut response)).await.unwrap();
        let text = String::from_utf8_lossy(&response);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {expected}")),
            "{token:?}: {text}"
        );
    }
    // Plain HTTP to the HTTPS port: no HTTP answer.
    let mut tcp = tokio::net::TcpStream::connect(http).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = timeout(WAIT, tcp.read_to_end(&mut response)).await.unwrap();
    assert!(!String::from_utf8_lossy(&response).contains("HTTP/1.1 200"));
}

/// `--tls-client-ca`: a client without a certificate, or with one from
/// another CA, cannot bind over TLS; one with a certificate from the CA can.
#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use smpp_proto::session::{BindKind, SessionConfig};
    use smpp_tokio::rustls::pki_types::ServerName;
    let dir = tempfile::tempdir().unwrap();
    let (made, cert, key) = server_cert(dir.path());
    let make_ca = || {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (Issuer::new(params, key), cert)
    };
    let (ca, ca_cert) = make_ca();
    let (other_ca, _) = make_ca();
    let ca_path = dir.path().join("clients.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client_params = CertificateParams::new(vec!["esme.example".to_owned()]).unwrap();
    let client_cert = client_params.signed_by(&client_key, &ca).unwrap();
    let stranger_cert = client_params.signed_by(&client_key, &other_ca).unwrap();

    let serve = Serve::spawn(
        &[
            "--memory",
            "--tls-only",
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            ca_path.to_str().unwrap(),
        ],
        dir.path(),
    );
    let bind = |tls| {
        let addr = serve.addr("TLS");
        async move {
            let bind = Bind {
                system_id: "smppclient1".into(),
                password: "password".into(),
                ..Default::default()
            };
            timeout(
                WAIT,
                smpp_tokio::Client::connect_tls(
                    addr,
                    ServerName::try_from("localhost").unwrap(),
                    tls,
                    BindKind::Transmitter,
                    bind,
                    SessionConfig::default(),
                ),
            )
            .await
            .expect("an outcome in time")
        }
    };
    let none = bind(client_tls(&made.cert, None)).await;
    assert!(
        none.is_err(),
        "no client certificate: {:?}",
        none.map(|_| ())
    );
    let stranger = bind(client_tls(&made.cert, Some((&stranger_cert, &client_key)))).await;
    assert!(stranger.is_err(), "another CA: {:?}", stranger.map(|_| ()));
    let (client, _inbound) = bind(client_tls(&made.cert, Some((&client_cert, &client_key))))
        .await
        .expect("a certificate from the CA binds");
    client.unbind().await.unwrap();
}

/// The PROXY header on the TLS listener comes before the handshake; the
/// lockout counts the carried address, not the balancer's: after 11 wrong
/// binds "from" 192.0.2.7 that address is locked out, 192.0.2.8 through the
/// same balancer still binds.
#[tokio::test]
async fn proxy_protocol_on_tls_and_the_lockout_see_the_carried_address() {
    use smpp_tokio::rustls::pki_types::ServerName;
    let dir = tempfile::tempdir().unwrap();
    let (made, cert, key) = server_cert(dir.path());
    let serve = Serve::spawn(
        &[
            "--memory",
            "--tls-only",
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--account",
            "esme:pw",
            "--proxy-protocol",
            "127.0.0.1",
        ],
        dir.path(),
    );
    let tls_addr = serve.addr("TLS");
    let connector = smpp_tokio::tokio_rustls::TlsConnector::from(client_tls(&made.cert, None));
    let bind_over_tls = |client: &'static str, password: &'static str| {
        let connector = connector.clone();
        async move {
            let mut tcp = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
            tcp.write_all(&proxy_v1(client, 40000)).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = timeout(WAIT, connector.connect(name, tcp))
                .await
                .unwrap()
                .expect("TLS handshake after the PROXY header");
            tls.write_all(&bind_pdu("esme", password)).await.unwrap();
            let mut header = [0u8; 16];
            timeout(WAIT, tls.read_exact(&mut header))
                .await
                .unwrap()
                .unwrap();
            CommandStatus(u32::from_be_bytes(header[8..12].try_into().unwrap()))
        }
    };
    assert_eq!(bind_over_tls("192.0.2.7", "pw").await, CommandStatus::OK);
    for _ in 0..11 {
        assert_eq!(
            bind_over_tls("192.0.2.7", "bad").await,
            CommandStatus::INVALID_PASSWORD
        );
    }
    assert_eq!(
        bind_over_tls("192.0.2.7", "pw").await,
        CommandStatus::BIND_FAILED,
        "the carried address is locked out"
    );
    assert_eq!(
        bind_over_tls("192.0.2.8", "pw").await,
        CommandStatus::OK,
        "not the balancer"
    );
    // Without the header, the trusted balancer's TLS connection is closed.
    let tcp = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let handshake = timeout(WAIT, connector.connect(name, tcp)).await.unwrap();
    assert!(handshake.is_err(), "a TLS ClientHello is no PROXY header");
}

/// An account's `certificate_name` (config file, mutual TLS): it binds only
/// over a connection whose client certificate is valid for that name; a
/// certificate from the same CA for another name gets ESME_RBINDFAIL (and
/// may still bind as an account without one). Without mutual TLS such an
/// account refuses to start.
#[tokio::test]
async fn a_certificate_name_binds_an_account_to_its_client_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use smpp_proto::session::{BindKind, SessionConfig};
    use smpp_tokio::rustls::pki_types::ServerName;
    let dir = tempfile::tempdir().unwrap();
    let (made, cert, key) = server_cert(dir.path());
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = Issuer::new(ca_params, ca_key);
    let ca_path = dir.path().join("clients.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let for_name = |name: &str| {
        CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&client_key, &ca)
            .unwrap()
    };
    let (esme_cert, other_cert) = (for_name("esme.example"), for_name("other.example"));
    let config = dir.path().join("serve.toml");
    let toml = "[[account]]\nsystem_id = \"bound\"\npassword = \"pw\"\n\
                certificate_name = \"esme.example\"\n\
                [[account]]\nsystem_id = \"free\"\npassword = \"pw\"\n";
    std::fs::write(&config, toml).unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args(["serve", "--listen", "127.0.0.1:0", "--memory", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("certificate_name"),
        "{refused:?}"
    );

    let serve = Serve::spawn(
        &[
            "--memory",
            "--config",
            config.to_str().unwrap(),
            "--tls-only",
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            ca_path.to_str().unwrap(),
        ],
        dir.path(),
    );
    let addr = serve.addr("TLS");
    let bind = |client_cert: &rcgen::Certificate, system_id: &str| {
        let tls = client_tls(&made.cert, Some((client_cert, &client_key)));
        let bind = Bind {
            system_id: system_id.to_owned().into(),
            password: "pw".into(),
            ..Default::default()
        };
        async move {
            let connect = smpp_tokio::Client::connect_tls(
                addr,
                ServerName::try_from("localhost").unwrap(),
                tls,
                BindKind::Transmitter,
                bind,
                SessionConfig::default(),
            );
            match timeout(WAIT, connect).await.expect("an outcome in time") {
                Ok((client, _inbound)) => {
                    client.unbind().await.unwrap();
                    CommandStatus::OK
                }
                Err(smpp_tokio::Error::Status(status)) => status,
                Err(e) => panic!("{e}"),
            }
        }
    };
    assert_eq!(bind(&esme_cert, "bound").await, CommandStatus::OK);
    assert_eq!(bind(&other_cert, "bound").await, CommandStatus::BIND_FAILED);
    assert_eq!(bind(&other_cert, "free").await, CommandStatus::OK);
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
