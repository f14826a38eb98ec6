//! Server hardening: hostile and broken peers get bounded treatment while a
//! well-behaved client on the same server keeps working.
//!
//! Each attack runs next to a normal client that binds and submits through
//! the attack; every test is bounded in time (a hang fails the test). The
//! attackers are raw sockets on threads of their own.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::future::join_all;
use smpp_async::{Error, ServerConfig};
use smpp_proto::pdu::{
    self, Body, CommandId, CommandStatus, DecodeConfig, Decoded, Pdu, SequenceNumber,
};
use smpp_proto::session::{BindKind, SessionConfig};

use super::{creds, full_submit, local, to};
use crate::adapter::{sleep, timeout, Adapter, ClientOps, ConnOps, ServerOps, Serving, Task};
use crate::Smsc;

const LIMIT: Duration = Duration::from_secs(20);

fn session() -> SessionConfig {
    SessionConfig::default()
        .with_session_init_timeout(Some(Duration::from_millis(800)))
        .with_enquire_link_interval(Some(Duration::from_millis(400)))
        .with_enquire_link_timeout(Duration::from_millis(400))
        .with_response_timeout(Duration::from_secs(2))
        .with_max_in_flight(64)
}

async fn server<A: Adapter>(config: ServerConfig) -> Serving<A> {
    A::serve(local(), Smsc::default(), config, None).await
}

/// A well-behaved client: binds and gets `n` submits answered.
async fn good_client<A: Adapter>(addr: SocketAddr, n: usize) {
    let (client, _inbound) = A::connect(to(addr, BindKind::Transceiver, session()), None)
        .await
        .expect("a normal client binds during the attack");
    for r in join_all((0..n).map(|_| client.submit(full_submit()))).await {
        r.expect("a normal client's submit is answered during the attack");
    }
    client.unbind().await.expect("unbind");
}

/// Reads PDUs until the server closes the connection; returns them. Panics
/// if it is still open after `limit`.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Vec<Pdu> {
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    loop {
        while let Ok(Decoded::Pdu(p)) = pdu::decode(&mut buf, &DecodeConfig::lenient()) {
            got.push(p);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the server did not close the connection within {limit:?}"
        );
        stream.set_read_timeout(Some(left)).unwrap();
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return got,
        }
    }
}

/// A raw connection bound as a transceiver.
fn raw_bound(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let bind = Pdu::request(
        SequenceNumber::new(1),
        Body::BindTransceiver(Box::new(creds("secret"))),
    );
    s.write_all(&bind.to_vec().unwrap()).unwrap();
    let mut header = [0u8; 16];
    s.read_exact(&mut header).unwrap();
    let len = u32::from_be_bytes(header[..4].try_into().unwrap()) as usize;
    let mut rest = vec![0u8; len - 16];
    s.read_exact(&mut rest).unwrap();
    assert_eq!(&header[8..12], &[0, 0, 0, 0], "raw bind accepted");
    s
}

/// Waits (polling) until `done`, at most `limit`; whether it came.
async fn settle(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() && Instant::now() < deadline {
        sleep(Duration::from_millis(20)).await;
    }
    done()
}

pub async fn non_smpp_bytes_get_generic_nack_and_a_close<A: Adapter>() {
    let running = server::<A>(ServerConfig::default().with_session(session())).await;
    let addr = running.addr;
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
        let answered = Task::thread(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(attack).unwrap();
            read_until_closed(&mut s, LIMIT)
        });
        let got = timeout(LIMIT * 2, answered.join()).await.unwrap();
        assert!(
            got.iter()
                .all(|p| p.command_id() == CommandId::GENERIC_NACK),
            "only generic_nack in answer to {attack:02x?}: {got:?}"
        );
        if let Some(nack) = got.first() {
            assert_eq!(nack.command_status, CommandStatus::INVALID_COMMAND_LENGTH);
        }
    }
    timeout(LIMIT, good_client::<A>(addr, 100)).await.unwrap();
}

pub async fn slowloris_and_never_binding_connections_are_closed_by_the_init_timer<A: Adapter>() {
    let running = server::<A>(ServerConfig::default().with_session(session())).await;
    let addr = running.addr;
    // Never binds: closed after session_init_timeout (800 ms).
    let mut idle = TcpStream::connect(addr).unwrap();
    // Slowloris: a bind, one byte every 100 ms (it would take 4 s).
    let mut slow = TcpStream::connect(addr).unwrap();
    let bytes = Pdu::request(
        SequenceNumber::new(1),
        Body::BindTransceiver(Box::new(creds("secret"))),
    )
    .to_vec()
    .unwrap();
    let started = Instant::now();
    let dribble = Task::thread(move || {
        for b in bytes {
            if slow.write_all(&[b]).is_err() {
                return (slow, true);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        (slow, false)
    });
    timeout(LIMIT, good_client::<A>(addr, 200)).await.unwrap();
    let idle = Task::thread(move || read_until_closed(&mut idle, Duration::from_secs(5)));
    let got = timeout(LIMIT, idle.join()).await.unwrap();
    assert!(
        got.is_empty(),
        "nothing is sent to an unbound idle peer: {got:?}"
    );
    let (mut slow, _cut_while_writing) = timeout(LIMIT, dribble.join()).await.unwrap();
    let slow = Task::thread(move || read_until_closed(&mut slow, Duration::from_secs(5)));
    let got = timeout(LIMIT, slow.join()).await.unwrap();
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

pub async fn connection_limit_and_bind_flood<A: Adapter>() {
    let config = ServerConfig::default()
        .with_session(session())
        .with_max_connections(50);
    let running = server::<A>(config).await;
    let addr = running.addr;
    // 200 clients bind at once: at most 50 are served at a time; the rest are
    // closed (or their bind fails) rather than queued without bound.
    let attempts = (0..200).map(|_| async move {
        match A::connect(to(addr, BindKind::Transmitter, session()), None).await {
            Ok((client, _inbound)) => {
                let ok = client.submit(full_submit()).await.is_ok();
                sleep(Duration::from_millis(200)).await;
                let _ = client.unbind().await;
                ok
            }
            Err(_) => false,
        }
    });
    let results = timeout(LIMIT, join_all(attempts)).await.unwrap();
    let served = results.iter().filter(|ok| **ok).count();
    assert!(served >= 50, "at least the limit is served: {served}");
    assert!(served < 200, "the limit refused some: {served}");
    // After the flood, the server is idle again and serves a normal client.
    let server = &running.server;
    let idle = settle(Duration::from_secs(5), || server.connections().is_empty()).await;
    assert!(idle, "every flood connection is gone");
    timeout(LIMIT, good_client::<A>(addr, 100)).await.unwrap();
}

pub async fn a_client_that_never_reads_is_disconnected_with_bounded_buffers<A: Adapter>() {
    let session = session().with_max_buffered_output(64 * 1024);
    let running = server::<A>(ServerConfig::default().with_session(session)).await;
    let addr = running.addr;
    let mut s = raw_bound(addr);
    // Flood submits and never read a response: the server's output fills,
    // it stops reading, its keepalive goes unanswered, and it hangs up.
    let flood = Task::thread(move || {
        s.set_write_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut seq = 2u32;
        let started = Instant::now();
        loop {
            let mut batch = Vec::new();
            for _ in 0..64 {
                let body = Body::SubmitSm(Box::new(full_submit()));
                batch.extend(
                    Pdu::request(SequenceNumber::new(seq), body)
                        .to_vec()
                        .unwrap(),
                );
                seq += 1;
            }
            match s.write_all(&batch) {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    // Our writes are blocked (the server stopped reading):
                    // keep waiting for the server to hang up.
                    if started.elapsed() > Duration::from_secs(15) {
                        return (false, seq);
                    }
                }
                Err(_) => return (true, seq),
            }
        }
    });
    timeout(LIMIT, good_client::<A>(addr, 500)).await.unwrap();
    let (cut, sent) = timeout(LIMIT, flood.join()).await.unwrap();
    assert!(
        cut,
        "the server disconnected the non-reading client (after {sent} submits)"
    );
    let server = &running.server;
    let gone = settle(Duration::from_secs(5), || server.connections().is_empty()).await;
    assert!(gone, "its connection is gone");
}

pub async fn a_receiver_that_never_answers_deliver_sm_gets_timeouts_not_a_hang<A: Adapter>() {
    let session = session()
        .with_enquire_link_interval(None)
        .with_response_timeout(Duration::from_millis(500))
        .with_max_in_flight(8);
    let running = server::<A>(ServerConfig::default().with_session(session)).await;
    // A raw receiver that reads everything and answers nothing.
    let s = raw_bound(running.addr);
    let hang_up = s.try_clone().unwrap();
    let reader = Task::thread(move || {
        let mut s = s;
        s.set_read_timeout(None).unwrap();
        let mut sink = [0u8; 4096];
        while let Ok(n) = s.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
    });
    let server = &running.server;
    let bound = settle(LIMIT, || !server.connections().is_empty()).await;
    assert!(bound, "the raw receiver's connection");
    let conn = server.connections().remove(0);
    // 40 deliveries through a window of 8: each waits its turn and times out.
    let calls = (0..40).map(|_| conn.deliver(full_submit()));
    let results = timeout(LIMIT, join_all(calls))
        .await
        .expect("every deliver_sm resolves");
    assert!(
        results.iter().all(|r| matches!(r, Err(Error::Timeout))),
        "{results:?}"
    );
    // The server is still fine for others.
    timeout(LIMIT, good_client::<A>(running.addr, 100))
        .await
        .unwrap();
    hang_up.shutdown(Shutdown::Both).unwrap();
    timeout(LIMIT, reader.join()).await.unwrap();
}

pub async fn many_idle_connections_are_held_and_released<A: Adapter>() {
    let session = session().with_session_init_timeout(Some(Duration::from_secs(30)));
    let config = ServerConfig::default()
        .with_session(session)
        .with_max_connections(3000);
    let running = server::<A>(config).await;
    let addr = running.addr;
    let connecting = Task::thread(move || {
        (0..2000)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect::<Vec<_>>()
    });
    let idle = timeout(LIMIT, connecting.join()).await.unwrap();
    let server = &running.server;
    settle(Duration::from_secs(10), || {
        server.connections().len() >= 2000
    })
    .await;
    assert_eq!(server.connections().len(), 2000);
    timeout(LIMIT, good_client::<A>(addr, 200)).await.unwrap();
    drop(idle);
    let released = settle(Duration::from_secs(10), || server.connections().is_empty()).await;
    assert!(released, "closed peers are released");
}
