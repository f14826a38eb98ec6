//! The real `smpp gateway` binary in front of a real `smpp serve`: kill -9
//! in the middle of pipelined submissions, restart on the same store, and
//! every accepted message's receipt still reaches the customer with its id.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use smpp_proto::pdu::{Bind, CommandStatus, SubmitSm};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Client, Inbound};

const WAIT: Duration = Duration::from_secs(30);

/// A running `smpp` subcommand; killed (SIGKILL) when dropped.
struct Process {
    child: Child,
    smpp: SocketAddr,
    http: Option<SocketAddr>,
}

impl Process {
    fn spawn(args: &[&str], cwd: &Path) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_smpp"))
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
        let mut smpp = None;
        let mut http = None;
        // The banner ends with the store line.
        loop {
            let line = rx.recv_timeout(WAIT).expect("start-up banner in time");
            if let Some(addr) = line.strip_prefix("SMPP listening on ") {
                smpp = Some(addr.parse().expect("an address"));
            }
            if let Some(addr) = line.strip_prefix("HTTP listening on ") {
                http = Some(addr.parse().expect("an address"));
            }
            if line.starts_with("store:") {
                break;
            }
        }
        Process {
            child,
            smpp: smpp.expect("an SMPP address"),
            http,
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gateway(store: &Path, upstream: SocketAddr) -> Process {
    gateway_on(
        &["--store", store.to_str().expect("a UTF-8 path")],
        upstream,
    )
}

/// The gateway with its store given by `store` (`--store DIR`, `--database URL`).
fn gateway_on(store: &[&str], upstream: SocketAddr) -> Process {
    let upstream = format!("a=smppclient1:password@{upstream},binds=2");
    let mut args = vec!["gateway", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(store);
    args.extend_from_slice(&["--account", "esme:secret", "--upstream", &upstream]);
    Process::spawn(&args, Path::new("."))
}

/// A PostgreSQL database of its own for one test (on the server of
/// `SMPP_TEST_DATABASE_URL`, by default the local one), dropped at the end.
struct TestDatabase {
    url: String,
    name: String,
}

fn test_server_url() -> String {
    std::env::var("SMPP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Runs `sql` on the test server (its own thread and runtime, so that it
/// works in a drop too).
fn on_test_server(sql: String) -> Result<(), String> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let (client, connection) =
                tokio_postgres::connect(&test_server_url(), tokio_postgres::NoTls)
                    .await
                    .map_err(|e| format!("the test PostgreSQL (SMPP_TEST_DATABASE_URL): {e}"))?;
            tokio::spawn(connection);
            client.batch_execute(&sql).await.map_err(|e| e.to_string())
        })
    })
    .join()
    .map_err(|_| "panicked".to_owned())?
}

impl TestDatabase {
    fn new(tag: &str) -> TestDatabase {
        let name = format!("t_{}_{tag}", std::process::id());
        on_test_server(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).unwrap();
        on_test_server(format!("CREATE DATABASE {name}")).unwrap();
        let server = test_server_url();
        let (main, query) = server.split_at(server.find('?').unwrap_or(server.len()));
        let base = main.rsplit_once('/').map_or(main, |(base, _)| base);
        TestDatabase {
            url: format!("{base}/{name}{query}"),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let dropped = on_test_server(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        if let Err(e) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

async fn customer(addr: SocketAddr, kind: BindKind) -> (Client, Inbound) {
    let bind = Bind {
        system_id: "esme".into(),
        password: "secret".into(),
        interface_version: 0x34,
        ..Default::default()
    };
    Client::connect(addr, kind, bind, SessionConfig::default())
        .await
        .expect("bound to the gateway")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_gateway_loses_no_accepted_message_and_no_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("gateway-store");
    kill_9_loses_nothing(&["--store", store.to_str().unwrap()], dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_gateway_on_postgres_loses_no_accepted_message_and_no_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new("kill9");
    kill_9_loses_nothing(&["--database", &db.url], dir.path()).await;
}

/// Two gateways on one database; the one holding the upstream binds is
/// killed (-9) in the middle of pipelined submissions made through it; the
/// customer's receiver is bound to the other. The other takes the bind
/// slots and the killed node's work over: every accepted message's receipt
/// arrives, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_node_holding_the_upstream_binds_loses_nothing_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new("cluster9");
    let upstream = Process::spawn(
        &[
            "serve",
            "--memory",
            "--listen",
            "127.0.0.1:0",
            "--dlr-delay",
            "300ms",
        ],
        dir.path(),
    );
    let store = ["--database", db.url.as_str(), "--takeover", "3s"];
    let first = gateway_on(&store, upstream.smpp);
    // The first node takes both bind slots before the second starts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = gateway_on(&store, upstream.smpp);
    let (receiver, inbound) = customer(second.smpp, BindKind::Receiver).await;

    let accepted = submit_then_kill(first).await;
    let started = std::time::Instant::now();
    let mut missing = accepted.clone();
    let mut seen = HashSet::new();
    while !missing.is_empty() {
        let request = tokio::time::timeout(WAIT, inbound.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {} receipts missing", missing.len(), accepted.len()))
            .expect("the session is open");
        let receipt = request.receipt().expect("a receipt");
        assert!(
            seen.insert(receipt.id.clone()),
            "receipt for {} twice",
            receipt.id
        );
        missing.remove(&receipt.id);
    }
    eprintln!(
        "{} receipts, the last {:?} after the kill",
        accepted.len(),
        started.elapsed()
    );
    // Nothing comes twice later either.
    while let Ok(Some(request)) = tokio::time::timeout(Duration::from_secs(2), inbound.recv()).await
    {
        let receipt = request.receipt().expect("a receipt");
        assert!(
            seen.insert(receipt.id.clone()),
            "receipt for {} twice",
            receipt.id
        );
    }
    unbind_answering(receiver, inbound).await;
}

/// Unbinds `client` while answering (by dropping) whatever still arrives
/// on `inbound`: the gateway answers an unbind only once its own requests
/// (receipts of messages the test did not wait for) are answered.
async fn unbind_answering(client: Client, inbound: Inbound) {
    let answering = tokio::spawn(async move { while inbound.recv().await.is_some() {} });
    tokio::time::timeout(WAIT, client.unbind())
        .await
        .expect("unbound in time")
        .expect("unbound");
    answering.await.expect("the answering task");
}

/// 400 submissions pipelined through `gateway`, killed (-9) once half are
/// answered; the ids the customer was given.
async fn submit_then_kill(mut gateway: Process) -> HashSet<String> {
    let (client, _) = customer(gateway.smpp, BindKind::Transmitter).await;
    let (ids, answered) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for n in 0..400 {
        let (client, ids) = (client.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let sm = SubmitSm {
                source_addr: "12345".into(),
                destination_addr: format!("4477009{n:05}").into(),
                short_message: "hello".into(),
                registered_delivery: 1,
                ..Default::default()
            };
            if let Ok(id) = client.submit(sm).await {
                let _ = ids.send(id.to_string_lossy().into_owned());
            }
        }));
    }
    drop(ids);
    let mut answered = answered;
    let mut accepted = HashSet::new();
    while accepted.len() < 200 {
        let id = tokio::time::timeout(WAIT, answered.recv())
            .await
            .expect("answers in time")
            .expect("more answers");
        accepted.insert(id);
    }
    gateway.child.kill().unwrap();
    gateway.child.wait().unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    // Answers that arrived before the kill count too.
    while let Ok(id) = answered.try_recv() {
        accepted.insert(id);
    }
    accepted
}

/// `smpp gateway --database URL migrate` makes the schema once; a gateway
/// then starts on it (and would have made it itself).
#[test]
fn migrate_applies_the_schema_once() {
    let db = TestDatabase::new("migrate");
    let (ok, out) = smpp_output(&["gateway", "--database", &db.url, "migrate"]);
    assert!(ok && out.contains("migration 1 applied"), "{out}");
    let (ok, out) = smpp_output(&["gateway", "--database", &db.url, "migrate"]);
    assert!(ok && out.contains("up to date"), "{out}");
}

/// Kills the gateway (its store given by `store`) in the middle of
/// pipelined submissions and starts it again on the same store.
async fn kill_9_loses_nothing(store: &[&str], dir: &Path) {
    let upstream = Process::spawn(
        &[
            "serve",
            "--memory",
            "--listen",
            "127.0.0.1:0",
            "--dlr-delay",
            "300ms",
        ],
        dir,
    );
    let first = gateway_on(store, upstream.smpp);
    let accepted = submit_then_kill(first).await;

    let second = gateway_on(store, upstream.smpp);
    let (receiver, inbound) = customer(second.smpp, BindKind::Receiver).await;
    // Every id the customer was given gets its receipt. A submission cut
    // by the kill after it was stored but before its answer got out is
    // delivered too: its receipt carries an id the customer never saw.
    let mut missing = accepted.clone();
    while !missing.is_empty() {
        let request = tokio::time::timeout(WAIT, inbound.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {} receipts missing", missing.len(), accepted.len()))
            .expect("the session is open");
        let receipt = request.receipt().expect("a receipt");
        missing.remove(&receipt.id);
    }
    unbind_answering(receiver, inbound).await;
}

/// One HTTP/1.1 GET over a fresh connection: (status, body).
async fn http_get(addr: SocketAddr, path_and_query: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("HTTP connects");
    let request =
        format!("GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jasmin_http_api_sends_through_the_binary() {
    let serve = Process::spawn(
        &["serve", "--memory", "--listen", "127.0.0.1:0"],
        Path::new("."),
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let upstream = format!("a=smppclient1:password@{},binds=1", serve.smpp);
    let gateway = Process::spawn(
        &[
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--http",
            "127.0.0.1:0",
            "--account",
            "esme:secret",
            "--upstream",
            &upstream,
            "--balance",
            "esme=5",
            "--route",
            "*=a,rate=0.25",
        ],
        dir.path(),
    );
    let http = gateway.http.expect("the HTTP address in the banner");
    let mut sent = None;
    // The upstream bind comes up shortly after the start; until then the
    // message is accepted and queued anyway.
    for _ in 0..50 {
        let (status, body) = http_get(
            http,
            "/send?username=esme&password=secret&to=447700900123&content=Hello",
        )
        .await;
        if status == 200 {
            sent = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = sent.expect("a Success answer");
    assert!(body.starts_with("Success \""), "{body}");
    let (status, body) = http_get(http, "/balance?username=esme&password=secret").await;
    assert_eq!(status, 200);
    assert_eq!(body, r#"{"balance":4.75,"sms_count":"ND"}"#);
    let (status, body) = http_get(http, "/balance?username=esme&password=nope").await;
    assert_eq!(
        (status, body.as_str()),
        (403, "Error \"Authentication failure for username:esme\"")
    );
    drop(gateway);
    drop(serve);
}

#[test]
fn a_public_http_address_without_a_token_refuses_to_start() {
    let output = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args([
            "gateway",
            "--memory",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "0.0.0.0:0",
            "--account",
            "esme:secret",
            "--upstream",
            "a=s:p@127.0.0.1:9",
        ])
        .env_remove("SMPP_HTTP_TOKEN")
        .output()
        .expect("smpp runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs a token"), "{stderr}");
}

/// `smpp` with `args`, to completion (killed after 60 s): (exit ok, stdout).
fn smpp_output(args: &[&str]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smpp"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("smpp runs");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("waits") {
            let mut out = String::new();
            std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut out)
                .expect("stdout read");
            return (status.success(), out);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "smpp {args:?} took too long"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The customer's own tools through the gateway binary: `smpp send
/// --wait-receipt` gets its id and receipt, `smpp bench --receipt` gets
/// every receipt back matched to its id.
#[test]
fn smpp_send_and_smpp_bench_as_customers_of_the_gateway() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let serve = Process::spawn(
        &[
            "serve",
            "--memory",
            "--listen",
            "127.0.0.1:0",
            "--dlr-delay",
            "50ms",
        ],
        dir.path(),
    );
    let gateway = gateway(&dir.path().join("store"), serve.smpp);
    let port = gateway.smpp.port().to_string();
    let connect = [
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--system-id",
        "esme",
        "--password",
        "secret",
    ];
    let mut send = vec!["send"];
    send.extend(connect);
    send.extend([
        "--from",
        "447700900123",
        "--to",
        "447700900456",
        "--text",
        "hi",
        "--wait-receipt",
        "20s",
    ]);
    let (ok, out) = smpp_output(&send);
    assert!(ok, "smpp send: {out}");
    assert!(out.contains("DELIVRD"), "{out}");

    let mut bench = vec!["bench"];
    bench.extend(connect);
    bench.extend([
        "--count",
        "300",
        "--window",
        "32",
        "--receipt",
        "--wait-receipts",
        "20s",
        "--json",
    ]);
    let (ok, out) = smpp_output(&bench);
    assert!(ok, "smpp bench: {out}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("bench JSON");
    assert_eq!(report["ok"], 300, "{report}");
    assert_eq!(report["receipts"]["received"], 300, "{report}");
    assert_eq!(report["receipts"]["unmatched"], 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_over_tls_with_the_smpp_certificate() {
    use smpp_tokio::rustls::{self, pki_types::ServerName, RootCertStore};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let dir = tempfile::tempdir().expect("a temporary directory");
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let gateway = Process::spawn(
        &[
            "gateway",
            "--memory",
            "--listen",
            "127.0.0.1:0",
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
            "--http-tls",
            "--account",
            "esme:secret",
            "--upstream",
            "a=s:p@127.0.0.1:9",
        ],
        dir.path(),
    );
    let http = gateway.http.expect("the HTTP address");
    let mut roots = RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(http).await.unwrap();
    let mut stream = smpp_tokio::tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("HTTPS");
    stream
        .write_all(b"GET /balance?username=esme&password=secret HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with(r#"{"balance":"ND","sms_count":"ND"}"#),
        "{response}"
    );
}

/// One HTTP/1.1 POST of a JSON body over a fresh connection: the status.
async fn http_post_json(addr: SocketAddr, path: &str, body: &str) -> u16 {
    http_json(addr, "POST", path, body).await
}

/// One HTTP/1.1 request with a JSON body over a fresh connection: the status.
async fn http_json(addr: SocketAddr, method: &str, path: &str, body: &str) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("HTTP connects");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response read");
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line")
}

/// An upstream's `smpp_sessions_open` (its binds now).
async fn sessions_open(upstream: &Process) -> u64 {
    let (_, metrics) = http_get(upstream.http.expect("--http"), "/metrics").await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("smpp_sessions_open "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// A gateway node of a cluster on `url`: both upstreams with two binds
/// each (for the whole cluster), one route sharing them, MO to `esme`.
fn node(url: &str, a: SocketAddr, b: SocketAddr) -> Process {
    node_with(url, a, b, &[])
}

/// [`node`] with more arguments.
fn node_with(url: &str, a: SocketAddr, b: SocketAddr, extra: &[&str]) -> Process {
    let (a, b) = (
        format!("a=smppclient1:password@{a},binds=2"),
        format!("b=smppclient1:password@{b},binds=2"),
    );
    let mut args = vec![
        "gateway",
        "--listen",
        "127.0.0.1:0",
        "--database",
        url,
        "--takeover",
        "3s",
        "--account",
        "esme:secret",
        "--upstream",
        &a,
        "--upstream",
        &b,
        "--route",
        "*=a+b",
        "--mo-route",
        "7000=esme",
    ];
    args.extend_from_slice(extra);
    Process::spawn(&args, Path::new("."))
}

/// Three `smpp gateway` processes on one database, two `smpp serve`
/// upstreams: the upstreams never see more than the connectors' two binds
/// each; a customer bound as receiver on the third node gets the receipt
/// of every message it sent through the first, once, and an MO from
/// either upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateway_processes_share_two_upstreams_and_every_receipt_reaches_the_customer_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new("cluster3");
    let upstream = |_| {
        Process::spawn(
            &[
                "serve",
                "--memory",
                "--listen",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--dlr-delay",
                "0ms",
            ],
            dir.path(),
        )
    };
    let (up_a, up_b) = (upstream(0), upstream(1));
    let nodes: Vec<Process> = (0..3)
        .map(|_| node(&db.url, up_a.smpp, up_b.smpp))
        .collect();
    // The binds settle: two per upstream, shared among the nodes.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (a, b) = (sessions_open(&up_a).await, sessions_open(&up_b).await);
        assert!(
            a <= 2 && b <= 2,
            "more binds than the connectors have: {a}, {b}"
        );
        if a == 2 && b == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "binds up: {a}, {b}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (receiver, inbound) = customer(nodes[2].smpp, BindKind::Receiver).await;
    let (transmitter, _) = customer(nodes[0].smpp, BindKind::Transmitter).await;
    let mut sent = HashSet::new();
    for n in 0..60 {
        let sm = SubmitSm {
            source_addr: "12345".into(),
            destination_addr: format!("4477009{n:05}").into(),
            short_message: "hello".into(),
            registered_delivery: 1,
            ..Default::default()
        };
        let id = transmitter.submit(sm).await.expect("accepted");
        sent.insert(id.to_string_lossy().into_owned());
    }
    let mut seen = HashSet::new();
    while seen.len() < sent.len() {
        let request = tokio::time::timeout(WAIT, inbound.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {} receipts", seen.len(), sent.len()))
            .expect("the session is open");
        let receipt = request.receipt().expect("a receipt");
        assert!(sent.contains(&receipt.id), "a receipt for {}", receipt.id);
        assert!(
            seen.insert(receipt.id.clone()),
            "receipt for {} twice",
            receipt.id
        );
    }
    // An MO from each upstream reaches the customer on the third node.
    for up in [&up_a, &up_b] {
        let status = http_post_json(
            up.http.expect("--http"),
            "/api/mo",
            r#"{"from": "447700900013", "to": "70001", "text": "STOP"}"#,
        )
        .await;
        assert_eq!(status, 200);
        let request = tokio::time::timeout(WAIT, inbound.recv())
            .await
            .expect("the MO in time")
            .expect("the session is open");
        assert!(request.receipt().is_none(), "an MO, not a receipt");
    }
    assert!(sessions_open(&up_a).await <= 2 && sessions_open(&up_b).await <= 2);
    transmitter.unbind().await.unwrap();
    unbind_answering(receiver, inbound).await;
}

/// Two gateway processes on one database under load while PostgreSQL
/// itself restarts (`SMPP_TEST_PG_RESTART`: the command, e.g.
/// `pg_ctlcluster --skip-systemctl-redirect 15 main restart`; `cargo xtask
/// ci` runs this alone, as it stops the server every test uses). Customers
/// get a success only for what is stored and a temporary error otherwise;
/// every success gets its receipt (at least once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts the PostgreSQL server: cargo xtask ci runs it alone"]
async fn a_cluster_under_load_survives_a_postgresql_restart() {
    let restart = std::env::var("SMPP_TEST_PG_RESTART")
        .expect("SMPP_TEST_PG_RESTART: the command that restarts the test server");
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new("pgrestart");
    // Two upstreams: a connector's receipts come back on its own binds.
    let upstream_at = || {
        Process::spawn(
            &[
                "serve",
                "--memory",
                "--listen",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--dlr-delay",
                "0ms",
            ],
            dir.path(),
        )
    };
    let (upstream, other) = (upstream_at(), upstream_at());
    let first = node(&db.url, upstream.smpp, other.smpp);
    let second = node(&db.url, upstream.smpp, other.smpp);
    let (receiver, inbound) = customer(second.smpp, BindKind::Receiver).await;
    let (transmitter, _) = customer(first.smpp, BindKind::Transmitter).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sending = tokio::spawn(async move {
        let (mut accepted, mut refused) = (HashSet::new(), 0u32);
        let until = tokio::time::Instant::now() + Duration::from_secs(12);
        let mut n = 0u32;
        while tokio::time::Instant::now() < until {
            n += 1;
            let sm = SubmitSm {
                source_addr: "12345".into(),
                destination_addr: format!("4477{n:08}").into(),
                short_message: "hello".into(),
                registered_delivery: 1,
                ..Default::default()
            };
            match transmitter.submit(sm).await {
                Ok(id) => {
                    accepted.insert(id.to_string_lossy().into_owned());
                }
                Err(smpp_tokio::Error::Status(status)) => {
                    assert!(status.is_transient(), "a temporary error, not {status}");
                    refused += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{e}"),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        transmitter.unbind().await.unwrap();
        (accepted, refused)
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restarted = tokio::task::spawn_blocking(move || {
        Command::new("sh")
            .args(["-c", &restart])
            .status()
            .expect("the restart command runs")
    })
    .await
    .unwrap();
    assert!(restarted.success(), "PostgreSQL restarted");
    let (accepted, refused) = sending.await.unwrap();
    eprintln!(
        "{} accepted, {refused} refused with a temporary error",
        accepted.len()
    );
    // At least once: a receipt whose first delivery to a node hung while
    // the server restarted may come again from the upstream through the
    // other node (counted, not refused: see docs/SCALE-OUT.md).
    let (mut seen, mut again) = (HashSet::new(), 0);
    while seen.len() < accepted.len() {
        let Ok(request) = tokio::time::timeout(WAIT, inbound.recv()).await else {
            panic!(
                "{} of {} receipts; the upstreams have {} and {} binds",
                seen.len(),
                accepted.len(),
                sessions_open(&upstream).await,
                sessions_open(&other).await
            );
        };
        let request = request.expect("the session is open");
        let receipt = request.receipt().expect("a receipt");
        assert!(
            accepted.contains(&receipt.id),
            "a receipt for {}",
            receipt.id
        );
        if !seen.insert(receipt.id.clone()) {
            again += 1;
        }
    }
    eprintln!("every receipt arrived; {again} of them twice");
    unbind_answering(receiver, inbound).await;
}

/// A transmitter of `id` on `addr` when it binds.
async fn try_transmitter(addr: SocketAddr, id: &str, password: &str) -> Option<Client> {
    let bind = Bind {
        system_id: id.to_owned().into(),
        password: password.to_owned().into(),
        interface_version: 0x34,
        ..Default::default()
    };
    Client::connect(addr, BindKind::Transmitter, bind, SessionConfig::default())
        .await
        .ok()
        .map(|(client, _)| client)
}

fn numbered(n: u32) -> SubmitSm {
    SubmitSm {
        source_addr: "12345".into(),
        destination_addr: format!("4477{n:08}").into(),
        short_message: "hello".into(),
        registered_delivery: 1,
        ..Default::default()
    }
}

/// Two gateway processes on one database: a balance of 25 SMS spent from
/// both at once accepts exactly 25; an account made through one node's
/// admin API binds on the other without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateway_processes_spend_a_balance_once_and_share_an_admin_change() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new("cluster2");
    let up = Process::spawn(
        &[
            "serve",
            "--memory",
            "--listen",
            "127.0.0.1:0",
            "--dlr-delay",
            "0ms",
        ],
        dir.path(),
    );
    let extra = ["--balance", "esme=25sms", "--http", "127.0.0.1:0"];
    let first = node_with(&db.url, up.smpp, up.smpp, &extra);
    let second = node_with(&db.url, up.smpp, up.smpp, &extra);
    let (one, two) = (
        try_transmitter(first.smpp, "esme", "secret").await.unwrap(),
        try_transmitter(second.smpp, "esme", "secret")
            .await
            .unwrap(),
    );
    let send = |client: Client, base: u32| async move {
        let mut accepted = 0;
        for n in base..base + 20 {
            match client.submit(numbered(n)).await {
                Ok(_) => accepted += 1,
                Err(smpp_tokio::Error::Status(status)) => {
                    assert_ne!(status, CommandStatus::SYSTEM_ERROR, "refused as exhausted")
                }
                Err(e) => panic!("{e}"),
            }
        }
        client.unbind().await.unwrap();
        accepted
    };
    let (a, b) = tokio::join!(send(one, 0), send(two, 100));
    assert_eq!(a + b, 25, "accepted {a} + {b}");

    let status = http_json(
        first.http.expect("--http"),
        "PUT",
        "/api/v1/admin/accounts/newcomer",
        r#"{"password": "pw2"}"#,
    )
    .await;
    assert!((200..300).contains(&status), "account made: {status}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(client) = try_transmitter(second.smpp, "newcomer", "pw2").await {
            client.unbind().await.unwrap();
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the account on the other node"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Two gateway processes on one database, an account limited to 100 SMS a
/// second bound to both: together they accept 100 a second, within 10 %.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_s_rate_limit_holds_across_two_gateway_processes() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new("clustertps");
    let up = Process::spawn(
        &[
            "serve",
            "--memory",
            "--listen",
            "127.0.0.1:0",
            "--dlr-delay",
            "0ms",
        ],
        dir.path(),
    );
    let first = node_with(&db.url, up.smpp, up.smpp, &["--tps", "100"]);
    let second = node_with(&db.url, up.smpp, up.smpp, &["--tps", "100"]);
    let one = try_transmitter(first.smpp, "esme", "secret").await.unwrap();
    let two = try_transmitter(second.smpp, "esme", "secret")
        .await
        .unwrap();
    // Each node hears of the other's bind (a beat a second).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(
        1000 - u64::from(now.subsec_millis()) + 50,
    ))
    .await;
    let until = tokio::time::Instant::now() + Duration::from_millis(2900);
    let send = |client: Client, base: u32| async move {
        let (mut accepted, mut n) = (0, base);
        while tokio::time::Instant::now() < until {
            n += 1;
            match client.submit(numbered(n)).await {
                Ok(_) => accepted += 1,
                Err(smpp_tokio::Error::Status(CommandStatus::THROTTLED)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        client.unbind().await.unwrap();
        accepted
    };
    let (a, b) = tokio::join!(send(one, 0), send(two, 1_000_000));
    assert!(
        (270..=330).contains(&(a + b)),
        "accepted {a} + {b} in three seconds"
    );
}
