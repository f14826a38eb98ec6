//! Shared by the security tests: the real `smpp serve` binary on
//! 127.0.0.1:0, raw binds from a chosen loopback address, HTTP requests,
//! PROXY headers and TLS certificates.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use smpp_proto::pdu::{Bind, Body, CommandStatus, Pdu, SequenceNumber};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

pub const WAIT: Duration = Duration::from_secs(20);

/// A running `smpp serve`; killed when dropped.
pub struct Serve {
    child: Child,
    pub lines: Vec<String>,
}

impl Serve {
    pub fn spawn(args: &[&str], cwd: &Path) -> Serve {
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

    pub fn addr(&self, label: &str) -> SocketAddr {
        let prefix = format!("{label} listening on ");
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in {:?}", self.lines))
            .parse()
            .expect("an address")
    }

    pub fn smpp(&self) -> SocketAddr {
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
pub async fn connect_from(from: &str, server: SocketAddr) -> tokio::net::TcpStream {
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
pub async fn read_pdu(tcp: &mut tokio::net::TcpStream) -> Option<(u32, u32, u32)> {
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

pub fn bind_pdu(system_id: &str, password: &str) -> Vec<u8> {
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
pub async fn bind_status(
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

pub fn hash_password(password: &str) -> String {
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

/// `GET path` over HTTP/1.1 with an optional bearer token: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
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
pub fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

pub fn proxy_v1(client: &str, port: u16) -> Vec<u8> {
    format!("PROXY TCP4 {client} 127.0.0.1 {port} 2775\r\n").into_bytes()
}

pub fn proxy_v2(client: [u8; 4], port: u16) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend([0x21, 0x11, 0, 12]);
    header.extend(client);
    header.extend([127, 0, 0, 1]);
    header.extend(port.to_be_bytes());
    header.extend(2775u16.to_be_bytes());
    header
}

/// A self-signed certificate for localhost, written as PEM files in `dir`.
pub fn server_cert(dir: &Path) -> (rcgen::CertifiedKey<rcgen::KeyPair>, String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let path = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();
    (made, path(cert), path(key))
}

pub fn client_tls(
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
