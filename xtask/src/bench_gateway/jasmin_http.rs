//! The HTTP side of the Jasmin runs: a small blocking HTTP client (Jasmin's
//! `/send`, the upstreams' `/metrics`) and the receipt callback server
//! Jasmin's DLR thrower calls (`dlr-method=GET`, answered `ACK/Jasmin` as
//! Jasmin requires, or it retries).

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Sample;

/// `GET path` on 127.0.0.1:port (HTTP/1.0): the status code and the body.
pub(super) fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

/// The id in Jasmin's `/send` answer, `Success "ID"`.
pub(super) fn success_id(body: &str) -> Option<&str> {
    body.trim()
        .strip_prefix("Success \"")?
        .strip_suffix('"')
        .filter(|id| !id.is_empty())
}

/// A query parameter of a request target (`/dlr?id=..&message_status=..`),
/// percent-decoded.
pub(super) fn query_param(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'+', _, _) => out.push(b' '),
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            (c, _, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the callback server saw: receipt arrival instants by Jasmin id.
#[derive(Default)]
struct Receipts {
    arrived: HashMap<String, Instant>,
}

/// Serves Jasmin's receipt callbacks on 127.0.0.1 until `stop`.
fn callback_server(
    receipts: Arc<Mutex<Receipts>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<(u16, std::thread::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let handle = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let receipts = receipts.clone();
                    std::thread::spawn(move || answer_callback(stream, &receipts));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Ok((port, handle))
}

fn answer_callback(mut stream: TcpStream, receipts: &Mutex<Receipts>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65_536 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let now = Instant::now();
    let text = String::from_utf8_lossy(&head);
    let target = text.split_whitespace().nth(1).unwrap_or("");
    // Level 2 (terminal) receipts only: every final state counts.
    if let Some(id) = query_param(target, "id") {
        let mut r = receipts.lock().unwrap_or_else(|e| e.into_inner());
        r.arrived.entry(id).or_insert(now);
    }
    let _ = stream.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nConnection: close\r\n\r\nACK/Jasmin",
    );
}

/// Sends `count` messages to Jasmin's `/send` from `clients` threads (one
/// request at a time each), receipts requested to our callback; waits for
/// the receipts (up to 30 s + count/10 s after the last answer).
pub(super) fn run(http_port: u16, count: u64, clients: u32, dest: &str) -> Sample {
    let receipts = Arc::new(Mutex::new(Receipts::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let Ok((cb_port, server)) = callback_server(receipts.clone(), stop.clone()) else {
        return Sample::default();
    };
    let next = Arc::new(AtomicU64::new(0));
    let text: String = "abcdefghij".repeat(16);
    let prefix = dest.trim_end_matches('#').to_owned();
    let started = Instant::now();
    let workers: Vec<_> = (0..clients.max(1))
        .map(|_| {
            let (next, text, prefix) = (next.clone(), text.clone(), prefix.clone());
            std::thread::spawn(move || {
                let mut sent = Vec::new();
                let mut failed = 0u64;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        break;
                    }
                    let path = format!(
                        "/send?username={}&password={}&to={prefix}{}&from=447700900123&content={text}\
                         &dlr=yes&dlr-level=2&dlr-method=GET&dlr-url=http%3A%2F%2F127.0.0.1%3A{cb_port}%2Fdlr",
                        super::USER,
                        super::PASSWORD,
                        n % 10
                    );
                    let at = Instant::now();
                    match http_get(http_port, &path) {
                        Ok((200, body)) => match success_id(&body) {
                            Some(id) => sent.push((id.to_owned(), at, at.elapsed())),
                            None => failed += 1,
                        },
                        _ => failed += 1,
                    }
                }
                (sent, failed)
            })
        })
        .collect();
    let mut sent = Vec::new();
    let mut failed = 0;
    for w in workers {
        if let Ok((s, f)) = w.join() {
            sent.extend(s);
            failed += f;
        }
    }
    let accepted_at = started.elapsed().as_secs_f64();
    let until = Instant::now() + Duration::from_secs(30 + count / 10);
    let all_back = || {
        let r = receipts.lock().unwrap_or_else(|e| e.into_inner());
        sent.iter().all(|(id, _, _)| r.arrived.contains_key(id))
    };
    while !all_back() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let wall = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = server.join();
    let r = receipts.lock().unwrap_or_else(|e| e.into_inner());
    let mut submit: Vec<f64> = sent.iter().map(|(_, _, d)| d.as_secs_f64() * 1e3).collect();
    let mut receipt: Vec<f64> = sent
        .iter()
        .filter_map(|(id, at, _)| {
            let back = r.arrived.get(id)?;
            Some(back.saturating_duration_since(*at).as_secs_f64() * 1e3)
        })
        .collect();
    let got = receipt.len() as u64;
    if failed > 0 {
        eprintln!("xtask: Jasmin /send: {failed} of {count} requests failed");
    }
    Sample {
        e2e: if wall > 0.0 { got as f64 / wall } else { 0.0 },
        accepted_rate: if accepted_at > 0.0 {
            sent.len() as f64 / accepted_at
        } else {
            0.0
        },
        accepted: sent.len() as u64,
        upstream: 0,
        receipts: got,
        unmatched: 0,
        submit_ms: p50_p99(&mut submit),
        receipt_ms: p50_p99(&mut receipt),
        cpu: Vec::new(),
        wall,
        clean: failed == 0 && got == count,
    }
}

/// (p50, p99) of a list (nearest rank).
pub(super) fn p50_p99(v: &mut [f64]) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    Some((at(0.5), at(0.99)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jasmin_answers_and_callbacks_are_read() {
        assert_eq!(
            success_id("Success \"5d0c2b1f-8f3a-4b9e-a0e1-2c3d4e5f6a7b\""),
            Some("5d0c2b1f-8f3a-4b9e-a0e1-2c3d4e5f6a7b")
        );
        assert_eq!(success_id("Error \"Cannot charge submit_sm\""), None);
        assert_eq!(success_id("Success \"\""), None);
        let target = "/dlr?id=ab%2Dcd&level=2&message_status=DELIVRD&text=hello+world%";
        assert_eq!(query_param(target, "id").as_deref(), Some("ab-cd"));
        assert_eq!(
            query_param(target, "message_status").as_deref(),
            Some("DELIVRD")
        );
        assert_eq!(query_param(target, "text").as_deref(), Some("hello world%"));
        assert_eq!(query_param(target, "nope"), None);
        assert_eq!(query_param("/dlr", "id"), None);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(p50_p99(&mut v), Some((50.0, 99.0)));
        assert_eq!(p50_p99(&mut []), None);
        assert_eq!(p50_p99(&mut [7.0]), Some((7.0, 7.0)));
    }

    #[test]
    fn the_callback_server_records_and_acks() {
        let receipts = Arc::new(Mutex::new(Receipts::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (port, handle) = callback_server(receipts.clone(), stop.clone()).unwrap();
        let (status, body) = http_get(port, "/dlr?id=x1&message_status=DELIVRD").unwrap();
        assert_eq!((status, body.as_str()), (200, "ACK/Jasmin"));
        stop.store(true, Ordering::Relaxed);
        handle.join().unwrap();
        assert!(receipts.lock().unwrap().arrived.contains_key("x1"));
    }
}
