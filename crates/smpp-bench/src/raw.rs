//! The ceiling: a pipelined byte mover with SMPP-sized frames (224-octet
//! requests, 25-octet responses) that frames on `command_length` and parses
//! nothing else. What one connection can do on this machine with tokio and
//! no protocol work at all.

use std::time::Instant;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::{listening, until_stdin_closes, Load, Outcome};

const REQUEST: usize = 224;
const RESPONSE: usize = 25;

fn frame(len: usize, command_id: u32) -> Vec<u8> {
    let mut f = vec![b'x'; len];
    f[0..4].copy_from_slice(&(len as u32).to_be_bytes());
    f[4..8].copy_from_slice(&command_id.to_be_bytes());
    f[8..12].copy_from_slice(&0u32.to_be_bytes());
    f[12..16].copy_from_slice(&1u32.to_be_bytes());
    f[len - 1] = 0;
    f
}

/// Complete frames at the start of `buf[..end]`, and the octets they take.
fn frames(buf: &[u8]) -> (usize, usize) {
    let (mut n, mut at) = (0, 0);
    while buf.len() - at >= 4 {
        let len = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
        if len < 16 || buf.len() - at < len {
            break;
        }
        at += len;
        n += 1;
    }
    (n, at)
}

/// Answers every frame with a 25-octet response; serves until stdin closes.
pub(crate) async fn serve(listen: &str) -> Result<(), String> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    listening(listener.local_addr().map_err(|e| e.to_string())?);
    let accept = async {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve_one(tcp));
        }
    };
    tokio::select! {
        _ = accept => {}
        _ = until_stdin_closes() => {}
    }
    Ok(())
}

async fn serve_one(mut tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let response = frame(RESPONSE, 0x8000_0004);
    let mut buf = vec![0u8; 64 * 1024];
    let mut end = 0;
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        match tcp.read(&mut buf[end..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => end += n,
        }
        let (n, used) = frames(&buf[..end]);
        buf.copy_within(used..end, 0);
        end -= used;
        out.clear();
        for _ in 0..n {
            out.extend_from_slice(&response);
        }
        if tcp.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// `window` requests in flight per connection, one more per response.
pub(crate) async fn client(load: Load) -> Result<(), String> {
    let mut conns = Vec::new();
    for _ in 0..load.sessions {
        let tcp = TcpStream::connect(load.addr())
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        conns.push(tcp);
    }
    let start = Instant::now();
    let stop = start + load.duration;
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|tcp| tokio::spawn(client_one(tcp, load.window, stop)))
        .collect();
    let mut outcome = Outcome::default();
    for t in tasks {
        let ok = t.await.map_err(|e| e.to_string())??;
        outcome.ok += ok;
    }
    outcome.elapsed = start.elapsed();
    outcome.print();
    Ok(())
}

async fn client_one(mut tcp: TcpStream, window: usize, stop: Instant) -> Result<u64, String> {
    let request = frame(REQUEST, 0x0000_0004);
    let mut out = Vec::with_capacity(window * REQUEST);
    for _ in 0..window {
        out.extend_from_slice(&request);
    }
    tcp.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut in_flight = window;
    let mut done = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let mut end = 0;
    while in_flight > 0 {
        let n = tcp.read(&mut buf[end..]).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("server closed".into());
        }
        end += n;
        let (n, used) = frames(&buf[..end]);
        buf.copy_within(used..end, 0);
        end -= used;
        done += n as u64;
        in_flight = in_flight.saturating_sub(n);
        if Instant::now() < stop {
            out.clear();
            for _ in 0..n {
                out.extend_from_slice(&request);
            }
            tcp.write_all(&out).await.map_err(|e| e.to_string())?;
            in_flight += n;
        }
    }
    Ok(done)
}
