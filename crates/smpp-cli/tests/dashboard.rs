//! The dashboard of the real `smpp serve` over HTTP (the browser tests,
//! `cargo xtask ui`, drive the same pages in Chromium): sign-in with a
//! token, the pages, unbinding a session, injecting an MO from the form,
//! the live event stream.

mod security_support;

use std::net::SocketAddr;

use security_support::{bind_pdu, connect_from, read_pdu, Serve, WAIT};
use smpp_proto::pdu::{Bind, Body, Pdu, SequenceNumber};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One HTTP/1.1 request with extra header lines; the whole answer.
async fn http(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> Reply {
    let mut tcp = timeout(WAIT, tokio::net::TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    timeout(WAIT, tcp.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP answer: {text:?}"));
    Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// `smpp serve --memory` with its HTTP API and dashboard, no token.
fn serve_with_http() -> (Serve, tempfile::TempDir) {
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
    (serve, dir)
}

const BROWSER: &str = "Accept: text/html,application/xhtml+xml\r\n";
const FORM: &str = "Content-Type: application/x-www-form-urlencoded\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_dashboard_asks_to_sign_in_and_the_api_stays_401() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--memory",
            "--http",
            "127.0.0.1:0",
            "--http-token",
            "t0ken-for-the-ui",
        ],
        dir.path(),
    );
    let addr = serve.addr("HTTP");
    // A browser goes to the form; an API client gets 401.
    let page = http(addr, "GET", "/", BROWSER, "").await;
    assert_eq!(page.status, 303, "{}", page.head);
    assert_eq!(page.header("location"), Some("/login"));
    assert_eq!(http(addr, "GET", "/", "", "").await.status, 401);
    assert_eq!(http(addr, "GET", "/sessions", "", "").await.status, 401);
    // The form and its style sheet are open.
    let form = http(addr, "GET", "/login", BROWSER, "").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("name=\"token\""), "{}", form.body);
    assert_eq!(http(addr, "GET", "/ui/app.css", "", "").await.status, 200);
    // A wrong token: the form again, no cookie.
    let wrong = http(addr, "POST", "/login", FORM, "token=nope").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    assert!(wrong.body.contains("Wrong token"), "{}", wrong.body);
    // The right one: a cookie that opens the pages.
    let right = http(addr, "POST", "/login", FORM, "token=t0ken-for-the-ui").await;
    assert_eq!(right.status, 303, "{}", right.head);
    let cookie = right.header("set-cookie").expect("a cookie").to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let overview = http(
        addr,
        "GET",
        "/",
        &format!("{BROWSER}Cookie: {pair}\r\n"),
        "",
    )
    .await;
    assert_eq!(overview.status, 200);
    assert!(
        overview.body.contains("<h1>Overview</h1>"),
        "{}",
        overview.body
    );
    // The bearer token works for the pages too; a stale cookie goes to the form.
    let bearer = http(
        addr,
        "GET",
        "/sessions",
        "Authorization: Bearer t0ken-for-the-ui\r\n",
        "",
    )
    .await;
    assert_eq!(bearer.status, 200);
    let stale = http(
        addr,
        "GET",
        "/",
        &format!("{BROWSER}Cookie: smpp_token=old\r\n"),
        "",
    )
    .await;
    assert_eq!(stale.status, 303);
}

/// Binds as a receiver from 127.0.0.1 with a raw connection.
/// Opens the event stream `path` and reads it until `needle` shows up
/// (within `WAIT`); returns what was read, the response head included.
async fn stream_until(addr: SocketAddr, path: &str, needle: &str) -> String {
    let mut events = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n");
    events.write_all(request.as_bytes()).await.unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 8192];
    while !seen.contains(needle) {
        let n = timeout(WAIT, events.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{needle} on {path} in time: {seen}"))
            .unwrap();
        assert!(n > 0, "stream closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    seen
}

async fn receiver(smpp: SocketAddr) -> tokio::net::TcpStream {
    let mut tcp = connect_from("127.0.0.1", smpp).await;
    let bind = Bind {
        system_id: "smppclient1".into(),
        password: "password".into(),
        interface_version: 0x34,
        ..Default::default()
    };
    let pdu = Pdu::request(SequenceNumber::new(1), Body::BindReceiver(Box::new(bind)))
        .to_vec()
        .unwrap();
    tcp.write_all(&pdu).await.unwrap();
    let (id, status, _) = read_pdu(&mut tcp).await.expect("bind answered");
    assert_eq!((id, status), (0x8000_0001, 0), "bind_receiver_resp OK");
    tcp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_appear_take_an_mo_from_the_form_and_unbind_from_their_button() {
    let (serve, _dir) = serve_with_http();
    let (addr, smpp) = (serve.addr("HTTP"), serve.smpp());
    let empty = http(addr, "GET", "/sessions", BROWSER, "").await;
    assert!(empty.body.contains("No session is bound"), "{}", empty.body);

    let mut esme = receiver(smpp).await;
    // A transmitter too, so two rows.
    let mut tx = connect_from("127.0.0.1", smpp).await;
    tx.write_all(&bind_pdu("smppclient1", "password"))
        .await
        .unwrap();
    read_pdu(&mut tx).await.expect("bound");
    let listed = http(addr, "GET", "/sessions", BROWSER, "").await;
    assert_eq!(
        listed.body.matches("data-session=\"smppclient1\"").count(),
        2,
        "{}",
        listed.body
    );
    assert!(listed.body.contains(">receiver<") && listed.body.contains(">transmitter<"));
    let overview = http(addr, "GET", "/", BROWSER, "").await;
    assert!(overview.body.contains("<svg"), "the chart");
    assert!(
        overview.body.contains("data-session=\"smppclient1\""),
        "sessions at a glance"
    );

    // The MO form: the receiver gets a deliver_sm; the page says so.
    let sent = http(
        addr,
        "POST",
        "/mo",
        FORM,
        "from=447700900123&to=1234&text=Hi+from+the+form&coding=auto",
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(sent.body.contains("Delivered:"), "{}", sent.body);
    let (id, _, seq) = read_pdu(&mut esme).await.expect("the MO");
    assert_eq!(id, 0x0000_0005, "deliver_sm");
    let resp = Pdu::response(
        SequenceNumber::new(seq),
        smpp_proto::pdu::CommandStatus::OK,
        Body::DeliverSmResp(Default::default()),
    )
    .to_vec()
    .unwrap();
    esme.write_all(&resp).await.unwrap();
    // A form the server cannot deliver: the reason, and a 4xx.
    let nowhere = http(addr, "POST", "/mo", FORM, "from=1&to=&text=x").await;
    assert_eq!(nowhere.status, 400);

    // Unbind the receiver from its button: it is sent an unbind.
    let id = listed
        .body
        .split("action=\"/sessions/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("an unbind button")
        .to_owned();
    let done = http(addr, "POST", &format!("/sessions/{id}/unbind"), FORM, "").await;
    assert_eq!(done.status, 303);
    assert_eq!(done.header("location"), Some("/sessions?done=unbound"));
    // The first button is the oldest session: the receiver.
    let (id, _, _) = read_pdu(&mut esme).await.expect("an unbind");
    assert_eq!(id, 0x0000_0006, "unbind");
    let after = http(addr, "GET", "/sessions?done=unbound", BROWSER, "").await;
    assert!(after.body.contains("was sent an unbind"), "{}", after.body);
    let gone = http(addr, "POST", "/sessions/999999/unbind", FORM, "").await;
    assert_eq!(gone.header("location"), Some("/sessions?done=gone"));

    // The search finds the MO by part of an address, and not by another state.
    let found = http(
        addr,
        "GET",
        "/messages?address=4477009001&account=&state=&within=60",
        BROWSER,
        "",
    )
    .await;
    assert_eq!(
        found.body.matches("<tr data-message=").count(),
        1,
        "{}",
        found.body
    );
    let none = http(
        addr,
        "GET",
        "/messages?address=4477009001&state=UNDELIV&within=",
        BROWSER,
        "",
    )
    .await;
    assert!(
        none.body.contains("No message in memory matches"),
        "{}",
        none.body
    );
    // Messages: an unknown id says so; the live stream sends fragments.
    let unknown = http(addr, "GET", "/messages?id=ZZZ", BROWSER, "").await;
    assert!(unknown.body.contains("No message ZZZ"), "{}", unknown.body);
    let seen = stream_until(addr, "/ui/events", "\"traffic\"").await;
    assert!(seen.contains("text/event-stream"), "{seen}");
    assert!(seen.contains("data: {"), "{seen}");

    // A message's page stays live: its timeline comes again over its own stream.
    let mo = found
        .body
        .split("<tr data-message=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the MO's id")
        .to_owned();
    let page = http(addr, "GET", &format!("/messages?id={mo}"), BROWSER, "").await;
    assert!(
        page.body.contains("data-event=\"submitted\""),
        "{}",
        page.body
    );
    let stream = format!("/ui/events/message?id={mo}");
    assert!(
        page.body.contains(&format!("data-live=\"{stream}\"")),
        "{}",
        page.body
    );
    let seen = stream_until(addr, &stream, "data-event=").await;
    assert!(seen.contains("\"message\""), "{seen}");
    assert!(seen.contains(&mo), "{seen}");
    let no_id = http(addr, "GET", "/ui/events/message", BROWSER, "").await;
    assert_eq!(no_id.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_edited_on_the_simulator_page_apply_to_the_next_submissions() {
    let (serve, _dir) = serve_with_http();
    let (addr, smpp) = (serve.addr("HTTP"), serve.smpp());
    let page = http(addr, "GET", "/simulator", BROWSER, "").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("name=\"dlr_delay\""), "{}", page.body);
    // A broken rule: refused with the reason, nothing changes.
    let broken = form_urlencoded_pairs(&[
        ("rules", "[[rule]]\nprefix = \"1\"\nstate = \"NOPE\"\n"),
        ("outcomes", ""),
        ("dlr_delay", "0s"),
    ]);
    let bad = http(addr, "POST", "/simulator", FORM, &broken).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("unknown message state"), "{}", bad.body);
    // Destinations starting 999 end UNDELIV with error 5, at once.
    let form: String = form_urlencoded_pairs(&[
        (
            "rules",
            "[[rule]]\nprefix = \"999\"\nstate = \"UNDELIV\"\nerror = 5\n",
        ),
        ("outcomes", ""),
        ("dlr_delay", "0s"),
    ]);
    let applied = http(addr, "POST", "/simulator", FORM, &form).await;
    assert_eq!(applied.status, 200, "{}", applied.body);
    assert!(applied.body.contains("Applied"), "{}", applied.body);
    assert!(
        applied.body.contains("prefix = &quot;999&quot;"),
        "shown back: {}",
        applied.body
    );
    let send = |to: &'static str| {
        let port = smpp.port().to_string();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_smpp"))
                .args([
                    "send",
                    "--port",
                    &port,
                    "--from",
                    "1",
                    "--to",
                    to,
                    "--text",
                    "x",
                    "--wait-receipt",
                    "10s",
                ])
                .output()
                .await
                .unwrap()
        }
    };
    let out = send("999123").await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("state UNDELIV") && text.contains("err 005"),
        "{text}"
    );
    let out = send("447700900123").await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("state DELIVRD"), "{text}");
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn form_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mo_from_the_form_carries_the_tlvs_given() {
    use smpp_proto::pdu::TlvTag;
    use smpp_proto::session::{BindKind, SessionConfig};
    let (serve, _dir) = serve_with_http();
    let (addr, smpp) = (serve.addr("HTTP"), serve.smpp());
    let bind = Bind {
        system_id: "smppclient1".into(),
        password: "password".into(),
        interface_version: 0x34,
        ..Default::default()
    };
    let (_client, inbound) = timeout(
        WAIT,
        smpp_tokio::Client::connect(smpp, BindKind::Receiver, bind, SessionConfig::default()),
    )
    .await
    .expect("bound in time")
    .expect("bound");
    let bad = http(
        addr,
        "POST",
        "/mo",
        FORM,
        "from=1&to=2&text=x&tlvs=nonsense%3Dzz",
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("TLV"), "{}", bad.body);
    let form = form_urlencoded_pairs(&[
        ("from", "447700900123"),
        ("to", "1234"),
        ("text", "with a reference"),
        ("tlvs", "user_message_reference=002a\n0x1403=07"),
    ]);
    let sent = http(addr, "POST", "/mo", FORM, &form).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let request = timeout(WAIT, inbound.recv())
        .await
        .expect("the MO in time")
        .expect("open");
    let Body::DeliverSm(sm) = request.body() else {
        panic!("not a deliver_sm: {:?}", request.body());
    };
    assert_eq!(
        sm.tlvs.get(TlvTag::USER_MESSAGE_REFERENCE),
        Some(&[0x00, 0x2a][..])
    );
    assert_eq!(sm.tlvs.get(TlvTag(0x1403)), Some(&[0x07][..]));
}
