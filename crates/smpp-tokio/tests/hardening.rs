//! Server hardening: hostile and broken peers get bounded treatment while a
//! well-behaved client on the same server keeps working.
//!
//! Each attack runs next to a normal client that binds and submits through the
//! attack; every test is bounded in time (a hang fails the test).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use smpp_proto::pdu::{
    self, Bind, Body, CommandId, CommandStatus, DecodeConfig, Decoded, Pdu, SequenceNumber,
    SubmitSm, SubmitSmResp,
};
use smpp_proto::session::{BindKind, SessionConfig};
use smpp_tokio::{Client, Connection, Handler, Server, ServerConfig, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

const LIMIT: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Smsc {
    next_id: AtomicU64,
}

impl Handler<Connection> for Smsc {
    async fn bind(&self, _: &Connection, _: BindKind, bind: &Bind) -> Result<(), CommandStatus> {
        if bind.password == "secret" {
            Ok(())
        } else {
            Err(CommandStatus::INVALID_PASSWORD)
        }
    }

    async fn submit_sm(&self, _: &Connection, _: SubmitSm) -> Result<SubmitSmResp, CommandStatus> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Ok(SubmitSmResp {
            message_id: format!("{id:X}").into(),
            ..Default::default()
        })
    }
}

fn session() -> SessionConfig {
    SessionConfig::default()
        .with_session_init_timeout(Some(Duration::from_millis(800)))
        .with_enquire_link_interval(Some(Duration::from_millis(400)))
        .with_enquire_link_timeout(Duration::from_millis(400))
        .with_response_timeout(Duration::from_secs(2))
        .with_max_in_flight(64)
}

async fn server(config: ServerConfig) -> (std::net::SocketAddr, ServerHandle) {
    let server = Server::bind("127.0.0.1:0", Smsc::default(), config)
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    tokio::spawn(server.run());
    (addr, handle)
}

fn bind_body() -> Bind {
    Bind {
        system_id: "esme".into(),
        password: "secret".into(),
        interface_version: 0x34,
        ..Default::default()
    }
}

fn submit() -> SubmitSm {
    SubmitSm {
        source_addr: "447700900123".into(),
        destination_addr: "447700900456".into(),
        short_message: vec![b'x'; 160].into(),
        ..Default::default()
    }
}

/// A well-behaved client: binds and gets `n` submits answered.
async fn good_client(addr: std::net::SocketAddr, n: usize) {
    let (client, _inbound) = Client::connect(addr, BindKind::Transceiver, bind_body(), session())
        .await
        .expect("a normal client binds during the attack");
    let calls = (0..n).map(|_| client.submit(submit()));
    for r in futures_util::future::join_all(calls).await {
        r.expect("a normal client's submit is answered during the attack");
    }
    client.unbind().await.expect("unbind");
}

/// Reads PDUs until the server closes the connection; returns them.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Vec<Pdu> {
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    loop {
        while let Ok(Decoded::Pdu(p)) = pdu::decode(&mut buf, &DecodeConfig::lenient()) {
            got.push(p);
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("the server did not close the connection within {limit:?}"),
        }
    }
}

async fn raw_bound(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let bind = Pdu::request(
        SequenceNumber::new(1),
        Body::BindTransceiver(Box::new(bind_body())),
    );
    s.write_all(&bind.to_vec().unwrap()).await.unwrap();
    let mut header = [0u8; 16];
    s.read_exact(&mut header).await.unwrap();
    let len = u32::from_be_bytes(header[..4].try_into().unwrap()) as usize;
    let mut rest = vec![0u8; len - 16];
    s.read_exact(&mut rest).await.unwrap();
    assert_eq!(&header[8..12], &[0, 0, 0, 0], "raw bind accepted");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_smpp_bytes_get_generic_nack_and_a_close() {
    let (addr, _h) = server(ServerConfig::default().with_session(session())).await;
    let tls_client_hello: &[u8] = &[
        0x16, 0x03, 0x01, 0x00, 0xf1, 0x01, 0x00, 0x00, 0xed, 0x03, 0x03, 0x11, 0x22, 0x33, 0x44,
        0x55, 0x66, 0x77,
    ];
    let attacks: [&[u8]; 4] = [
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
        tls_client_hello,
        &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1],
        &[0, 0, 0, 8, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1],
    ];
    for attack in attacks {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(attack).await.unwrap();
        let got = timeout(LIMIT, read_until_closed(&mut s, LIMIT))
            .await
            .unwrap();
        assert!(
            got.iter()
                .all(|p| p.command_id() == CommandId::GENERIC_NACK),
            "only generic_nack in answer to {attack:02x?}: {got:?}"
        );
        if let Some(nack) = got.first() {
            assert_eq!(nack.command_status, CommandStatus::INVALID_COMMAND_LENGTH);
        }
    }
    timeout(LIMIT, good_client(addr, 100)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_and_never_binding_connections_are_closed_by_the_init_timer() {
    let (addr, _h) = server(ServerConfig::default().with_session(session())).await;
    // Never binds: closed after session_init_timeout (800 ms).
    let mut idle = TcpStream::connect(addr).await.unwrap();
    // Slowloris: a bind, one byte every 100 ms (it would take 4 s).
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let bytes = Pdu::request(
        SequenceNumber::new(1),
        Body::BindTransceiver(Box::new(bind_body())),
    )
    .to_vec()
    .unwrap();
    let started = Instant::now();
    let dribble = tokio::spawn(async move {
        for b in bytes {
            if slow.write_all(&[b]).await.is_err() {
                return (slow, true);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (slow, false)
    });
    timeout(LIMIT, good_client(addr, 200)).await.unwrap();
    let got = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(
        got.is_empty(),
        "nothing is sent to an unbound idle peer: {got:?}"
    );
    let (mut slow, _cut_while_writing) = dribble.await.unwrap();
    let got = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(
        got.iter()
            .all(|p| p.command_id() != CommandId::BIND_TRANSCEIVER_RESP),
        "the slow bind was never accepted"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "both closed by the init timer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_and_bind_flood() {
    let (addr, handle) = server(
        ServerConfig::default()
            .with_session(session())
            .with_max_connections(50),
    )
    .await;
    // 200 clients bind at once: at most 50 are served at a time; the rest are
    // closed (or their bind fails) rather than queued without bound.
    let attempts = (0..200).map(|_| async move {
        match Client::connect(addr, BindKind::Transmitter, bind_body(), session()).await {
            Ok((client, _inbound)) => {
                let ok = client.submit(submit()).await.is_ok();
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = client.unbind().await;
                ok
            }
            Err(_) => false,
        }
    });
    let results = timeout(LIMIT, futures_util::future::join_all(attempts))
        .await
        .unwrap();
    let served = results.iter().filter(|ok| **ok).count();
    assert!(served >= 50, "at least the limit is served: {served}");
    assert!(served < 200, "the limit refused some: {served}");
    // After the flood, the server is idle again and serves a normal client.
    let settle = Instant::now() + Duration::from_secs(5);
    while !handle.connections().is_empty() && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        handle.connections().is_empty(),
        "every flood connection is gone"
    );
    timeout(LIMIT, good_client(addr, 100)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_disconnected_with_bounded_buffers() {
    let (addr, handle) =
        server(ServerConfig::default().with_session(session().with_max_buffered_output(64 * 1024)))
            .await;
    let mut s = raw_bound(addr).await;
    // Flood submits and never read a response: the server's output fills,
    // it stops reading, its keepalive goes unanswered, and it hangs up.
    let flood = tokio::spawn(async move {
        let mut seq = 2u32;
        let started = Instant::now();
        loop {
            let mut batch = Vec::new();
            for _ in 0..64 {
                batch.extend(
                    Pdu::request(SequenceNumber::new(seq), Body::SubmitSm(Box::new(submit())))
                        .to_vec()
                        .unwrap(),
                );
                seq += 1;
            }
            match timeout(Duration::from_millis(500), s.write_all(&batch)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return (true, seq),
                Err(_) => {
                    // Our writes are blocked (the server stopped reading):
                    // keep waiting for the server to hang up.
                    if started.elapsed() > Duration::from_secs(15) {
                        return (false, seq);
                    }
                }
            }
        }
    });
    timeout(LIMIT, good_client(addr, 500)).await.unwrap();
    let (cut, sent) = timeout(LIMIT, flood).await.unwrap().unwrap();
    assert!(
        cut,
        "the server disconnected the non-reading client (after {sent} submits)"
    );
    let settle = Instant::now() + Duration::from_secs(5);
    while !handle.connections().is_empty() && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(handle.connections().is_empty(), "its connection is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_deliver_sm_gets_timeouts_not_a_hang() {
    let (addr, handle) = server(
        ServerConfig::default().with_session(
            session()
                .with_enquire_link_interval(None)
                .with_response_timeout(Duration::from_millis(500))
                .with_max_in_flight(8),
        ),
    )
    .await;
    // A raw receiver that reads everything and answers nothing.
    let mut s = raw_bound(addr).await;
    let reader = tokio::spawn(async move {
        let mut sink = [0u8; 4096];
        while let Ok(n) = s.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    });
    let conn = loop {
        if let Some(c) = handle.connections().into_iter().next() {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // 40 deliveries through a window of 8: each waits its turn and times out.
    let calls = (0..40).map(|_| {
        let conn = conn.clone();
        async move { conn.deliver(submit()).await }
    });
    let results = timeout(LIMIT, futures_util::future::join_all(calls))
        .await
        .expect("every deliver_sm resolves");
    assert!(results
        .iter()
        .all(|r| matches!(r, Err(smpp_tokio::Error::Timeout))));
    // The server is still fine for others.
    timeout(LIMIT, good_client(addr, 100)).await.unwrap();
    reader.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_idle_connections_are_held_and_released() {
    let (addr, handle) = server(
        ServerConfig::default()
            .with_session(session().with_session_init_timeout(Some(Duration::from_secs(30))))
            .with_max_connections(3000),
    )
    .await;
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let settle = Instant::now() + Duration::from_secs(10);
    while handle.connections().len() < 2000 && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(handle.connections().len(), 2000);
    timeout(LIMIT, good_client(addr, 200)).await.unwrap();
    drop(idle);
    let settle = Instant::now() + Duration::from_secs(10);
    while !handle.connections().is_empty() && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(handle.connections().is_empty(), "closed peers are released");
}
