//! The HTTP API over loopback with a fake backend and a raw HTTP/1.1 client.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smpp_cli::obs::http::{
    serve_http, serve_http_with, ApiError, Backend, HttpLimits, MoRequest, MoResponse, MAX_BODY,
};
use smpp_cli::obs::metrics::Metrics;
use smpp_proto::message::ReferenceCounter;
use smpp_proto::pdu::{CommandId, CommandStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Fake {
    metrics: Metrics,
    injected: Mutex<Vec<(MoRequest, usize)>>,
}

impl Backend for Fake {
    async fn inject_mo(&self, mo: MoRequest) -> Result<MoResponse, ApiError> {
        if mo.to == "hang" {
            std::future::pending::<()>().await;
        }
        if !mo.to.starts_with("1234") {
            return Err(ApiError::not_found(format!("no bound ESME for {}", mo.to)));
        }
        let parts = mo
            .short_message()?
            .build(&mut ReferenceCounter::new(1))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        for _ in &parts {
            self.metrics
                .pdu_out(CommandId::DELIVER_SM, CommandStatus::OK);
        }
        let ids = (0..parts.len()).map(|i| format!("mo-{i}")).collect();
        self.injected.lock().unwrap().push((mo, parts.len()));
        Ok(MoResponse { message_ids: ids })
    }

    fn message(&self, id: &str) -> Option<serde_json::Value> {
        (id == "m-1").then(|| serde_json::json!({"id": "m-1", "state": "DELIVRD"}))
    }

    fn metrics(&self) -> String {
        self.metrics.render()
    }
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`).
async fn http(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> Reply {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}\r\n{body}"
    );
    s.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("reply in time");
    // A server refusing a body it did not read may reset the connection after its reply:
    // what was read before the reset is the reply.
    if let Err(e) = read {
        assert!(!raw.is_empty(), "read: {e}");
    }
    let raw = String::from_utf8(raw).expect("UTF-8 reply");
    let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

async fn post_json(addr: SocketAddr, path: &str, body: &str) -> Reply {
    let headers = format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    http(addr, "POST", path, &headers, body).await
}

async fn start() -> (
    SocketAddr,
    Arc<Fake>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let backend = Arc::new(Fake::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_http(listener, backend.clone(), async move {
        let _ = stopped.await;
    }));
    (addr, backend, stop, task)
}

#[tokio::test]
async fn mo_injection() {
    let (addr, backend, _stop, _task) = start().await;
    let r = post_json(
        addr,
        "/api/mo",
        r#"{"from":"447700900123","to":"1234","text":"Hello"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.head.contains("content-type: application/json"),
        "{}",
        r.head
    );
    assert_eq!(r.json(), serde_json::json!({"message_ids": ["mo-0"]}));

    let long = "z".repeat(300);
    let body = serde_json::json!({"from": "4477", "to": "12345", "text": long, "coding": "ucs2"});
    let r = post_json(addr, "/api/mo", &body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["message_ids"].as_array().map(Vec::len), Some(5)); // 600 octets / 134

    let r = post_json(
        addr,
        "/api/mo",
        r#"{"from":"1","to":"1234","hex":"0x0102ff","coding":"binary"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let injected = backend.injected.lock().unwrap().clone();
    assert_eq!(injected.len(), 3);
    assert_eq!(injected[0].0.text.as_deref(), Some("Hello"));
    assert_eq!(
        (injected[1].0.coding.as_deref(), injected[1].1),
        (Some("ucs2"), 5)
    );
}

#[tokio::test]
async fn mo_errors() {
    let (addr, backend, _stop, _task) = start().await;
    let cases = [
        (
            r#"{"from":"1","to":"999","text":"x"}"#,
            404,
            "no bound ESME for 999",
        ),
        (r#"{"from":"1","to":"1234","text":"x""#, 400, ""),
        (r#"not json"#, 400, ""),
        (
            r#"{"from":"1","to":"1234"}"#,
            400,
            "give a text or hex octets",
        ),
        (
            r#"{"from":"1","to":"1234","text":"x","hex":"00"}"#,
            400,
            "not both",
        ),
        (r#"{"from":"1","to":"1234","hex":"0g"}"#, 400, "not hex"),
        (
            r#"{"from":"1","to":"1234","text":"x","coding":"ebcdic"}"#,
            400,
            "unknown coding",
        ),
        (
            r#"{"from":"1","to":"1234","text":"Привет","coding":"gsm7"}"#,
            400,
            "GSM 7-bit",
        ),
        (r#"{"from":"1","to":"","text":"x"}"#, 400, "`to` is empty"),
        (
            r#"{"from":"1","to":"1234","text":"x","extra":1}"#,
            400,
            "unknown field",
        ),
    ];
    for (body, status, message) in cases {
        let r = post_json(addr, "/api/mo", body).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        let error = r.json()["error"]
            .as_str()
            .expect("error message")
            .to_string();
        assert!(error.contains(message), "{body}: {error}");
    }
    assert!(backend.injected.lock().unwrap().is_empty());

    // Wrong content type, wrong method, unknown path.
    let r = http(addr, "POST", "/api/mo", "Content-Length: 2\r\n", "{}").await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = http(addr, "GET", "/api/mo", "", "").await;
    assert_eq!(r.status, 405);
    let r = http(addr, "GET", "/nope", "", "").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn body_limit() {
    let (addr, backend, _stop, _task) = start().await;
    // Announced too large: refused before the body is read.
    let headers = format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n",
        MAX_BODY * 16
    );
    let r = http(addr, "POST", "/api/mo", &headers, "").await;
    assert_eq!(r.status, 413, "{}", r.body);
    // Just too large, sent whole.
    let text = "a".repeat(MAX_BODY);
    let body = serde_json::json!({"from": "1", "to": "1234", "text": text}).to_string();
    let r = post_json(addr, "/api/mo", &body).await;
    assert_eq!(r.status, 413, "{}", r.body);
    // Chunked, so no length is announced: the limit applies as the octets arrive.
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let headers = "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n";
    let r = http(addr, "POST", "/api/mo", headers, &chunked).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(backend.injected.lock().unwrap().is_empty());
}

#[tokio::test]
async fn messages_and_metrics() {
    let (addr, backend, stop, task) = start().await;
    let r = http(addr, "GET", "/api/messages/m-1", "", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["state"], "DELIVRD");
    let r = http(addr, "GET", "/api/messages/m-2", "", "").await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().expect("error").contains("m-2"));

    let sample = |text: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix("smpp_pdus_out_total{command=\"deliver_sm\",status=\"ESME_ROK\"} ")
            })
            .map(|v| v.parse::<u64>().expect("number"))
    };
    let r = http(addr, "GET", "/metrics", "", "").await;
    assert_eq!(r.status, 200);
    assert!(
        r.head.contains("content-type: text/plain; version=0.0.4"),
        "{}",
        r.head
    );
    assert!(r.body.contains("# TYPE smpp_binds_total counter"));
    assert_eq!(sample(&r.body), None);

    let r = post_json(addr, "/api/mo", r#"{"from":"1","to":"1234","text":"x"}"#).await;
    assert_eq!(r.status, 200);
    backend.metrics.throttled();
    let r = http(addr, "GET", "/metrics", "", "").await;
    assert_eq!(sample(&r.body), Some(1));
    assert!(r.body.contains("\nsmpp_throttled_total 1\n"));

    // Graceful shutdown: serve_http returns.
    stop.send(()).expect("stop");
    let result = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stopped in time")
        .expect("task");
    assert!(result.is_ok());
    assert!(TcpStream::connect(addr).await.is_err());
}

#[test]
fn shared_types_are_send_and_sync() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Metrics>();
    shared::<smpp_cli::obs::cdr::CdrWriter>();
    shared::<Fake>();
}

async fn start_limited(
    limits: HttpLimits,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_http_with(
        listener,
        Arc::new(Fake::default()),
        async move {
            let _ = stopped.await;
        },
        limits,
    ));
    (addr, stop, task)
}

fn short_limits() -> HttpLimits {
    HttpLimits {
        max_connections: 8,
        header_timeout: Duration::from_millis(200),
        request_timeout: Duration::from_millis(300),
        shutdown_grace: Duration::from_millis(300),
    }
}

#[tokio::test]
async fn silent_client_is_disconnected() {
    let (addr, _stop, _task) = start_limited(short_limits()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "a silent connection was kept open");
}

#[tokio::test]
async fn slow_body_gets_408() {
    let (addr, _stop, _task) = start_limited(short_limits()).await;
    let headers = "Content-Type: application/json\r\nContent-Length: 100\r\n";
    let r = http(addr, "POST", "/api/mo", headers, "{\"from\":").await;
    assert_eq!(r.status, 408, "{}", r.body);
}

#[tokio::test]
async fn shutdown_does_not_wait_forever_for_a_hung_request() {
    let (addr, stop, task) = start_limited(HttpLimits {
        request_timeout: Duration::from_secs(60),
        ..short_limits()
    })
    .await;
    let hung = tokio::spawn(post_json_owned(
        addr,
        r#"{"from":"1","to":"hang","text":"x"}"#,
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).expect("stop");
    let result = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("serve_http returned after the grace period")
        .expect("task");
    assert!(result.is_ok());
    hung.abort();
}

async fn post_json_owned(addr: SocketAddr, body: &'static str) -> u16 {
    post_json(addr, "/api/mo", body).await.status
}

#[tokio::test]
async fn connections_beyond_the_limit_wait() {
    let (addr, _stop, _task) = start_limited(HttpLimits {
        max_connections: 1,
        header_timeout: Duration::from_secs(30),
        ..short_limits()
    })
    .await;
    let silent = TcpStream::connect(addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waiting = tokio::spawn(async move { http(addr, "GET", "/metrics", "", "").await.status });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "served beyond the connection limit");
    drop(silent);
    let status = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a slot freed")
        .expect("task");
    assert_eq!(status, 200);
}

/// An independent parser of the exposition format reads every sample back.
#[test]
fn metrics_parse_with_an_independent_parser() {
    let m = Metrics::default();
    m.bind(
        smpp_proto::session::BindKind::Transmitter,
        CommandStatus::OK,
    );
    m.session_opened();
    m.request(
        CommandId::SUBMIT_SM,
        CommandStatus::OK,
        Duration::from_millis(3),
    );
    m.request(
        CommandId::SUBMIT_SM,
        CommandStatus::OK,
        Duration::from_millis(70),
    );
    m.pdu_out(CommandId::SUBMIT_SM_RESP, CommandStatus::OK);
    m.receipt_queued();
    m.final_state(smpp_proto::message::MessageState::Expired);
    let text = m.render();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("parses");
    let value = |name: &str, label: Option<(&str, &str)>| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| s.value.clone())
            .unwrap_or_else(|| panic!("{name} {label:?} missing"))
    };
    use prometheus_parse::Value;
    assert!(matches!(
        value("smpp_binds_total", Some(("kind", "transmitter"))),
        Value::Counter(v) if v == 1.0
    ));
    assert!(matches!(value("smpp_sessions_open", None), Value::Gauge(v) if v == 1.0));
    assert!(matches!(value("smpp_receipts_pending", None), Value::Gauge(v) if v == 1.0));
    assert!(matches!(
        value("smpp_messages_final_total", Some(("state", "EXPIRED"))),
        Value::Counter(v) if v == 1.0
    ));
    match value(
        "smpp_request_duration_seconds",
        Some(("command", "submit_sm")),
    ) {
        Value::Histogram(buckets) => {
            let at = |le: f64| {
                buckets
                    .iter()
                    .find(|b| b.less_than == le || (b.less_than - le).abs() < 1e-12)
                    .map(|b| b.count)
            };
            assert_eq!(at(0.005), Some(1.0));
            assert_eq!(at(0.1), Some(2.0));
            assert_eq!(at(f64::INFINITY), Some(2.0), "{buckets:?}");
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert_eq!(
        scrape.docs.get("smpp_throttled_total").map(String::as_str),
        Some("Requests refused with ESME_RTHROTTLED.")
    );
}
