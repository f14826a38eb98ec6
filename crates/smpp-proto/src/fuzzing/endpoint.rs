//! The endpoint fuzz driver: an ESME [`Endpoint`] and an MC [`Endpoint`]
//! joined by a byte pipe that the script cuts anywhere, drives, corrupts
//! and breaks. After every step both are drained; the checks: every reply
//! token comes back exactly once (at the latest when the endpoint is
//! abandoned), nothing comes back that was not handed in, and what waits
//! stays bounded.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::endpoint::{bind_answer, Endpoint, Incoming, Output};
use crate::pdu::{Bind, Body, CommandStatus, DecodeConfig, SequenceNumber, SubmitSm};
use crate::session::{BindKind, Role, SessionConfig};

/// Octets a side may hold unread before its peer stops writing.
const PIPE_LIMIT: usize = 16 * 1024;
/// Requests either side may hand in per run (the token space).
const MAX_TOKENS: u32 = 512;

struct Side {
    endpoint: Endpoint<u32>,
    /// Tokens handed in and not back yet.
    open: HashSet<u32>,
    /// Peer requests the application holds, to answer later.
    held: VecDeque<Incoming>,
    /// Octets written by this side, not yet read by the other.
    pipe: Vec<u8>,
    /// Tokens that came back with a response PDU of status 0.
    ok: usize,
}

impl Side {
    fn new(role: Role, config: &Arc<SessionConfig>, now: Instant) -> Side {
        Side {
            endpoint: Endpoint::new(role, config.clone(), now),
            open: HashSet::new(),
            held: VecDeque::new(),
            pipe: Vec::new(),
            ok: 0,
        }
    }

    /// Drains output into the pipe (while the pipe has room) and routes
    /// the outputs; checks each returned token.
    fn drain(&mut self, now: Instant) {
        while self.pipe.len() < PIPE_LIMIT {
            if self.endpoint.poll_transmit(now, &mut self.pipe).is_none() {
                break;
            }
        }
        while let Some(out) = self.endpoint.poll_output() {
            match out {
                Output::Done(token, result) => {
                    assert!(self.open.remove(&token), "token {token} came back twice");
                    if result.is_ok_and(|pdu| pdu.command_status.is_ok()) {
                        self.ok += 1;
                    }
                }
                Output::Incoming(item) => {
                    self.held.push_back(item);
                    // The session's inbound window bounds what waits for us.
                    assert!(self.held.len() <= 64, "unbounded peer requests");
                }
                _ => {}
            }
        }
    }
}

/// Runs one script; returns how many requests of the ESME and of the MC
/// ended with a status-0 response.
pub(super) fn run(data: &[u8]) -> (usize, usize) {
    let mut script = data.iter().copied();
    let mut next = move || script.next();
    let setup = next().unwrap_or(0);
    let config = Arc::new(
        SessionConfig::default()
            .with_decode(DecodeConfig::default().with_max_pdu_len(2048))
            .with_max_in_flight(usize::from(setup & 7) + 1)
            .with_max_inbound(usize::from((setup >> 3) & 7) + 1)
            .with_max_buffered_output(4096)
            .with_response_timeout(Duration::from_secs(5))
            .with_enquire_link_interval(Some(Duration::from_secs(3)))
            .with_enquire_link_timeout(Duration::from_secs(2))
            .with_session_init_timeout(Some(Duration::from_secs(20)))
            .with_unbind_timeout(Duration::from_secs(2)),
    );
    #[allow(clippy::disallowed_methods)] // the virtual clock's epoch; only differences matter
    let mut now = Instant::now();
    let mut esme = Side::new(Role::Esme, &config, now);
    let mut mc = Side::new(Role::Mc, &config, now);
    let mut token = 0u32;
    let mut new_token = |side: &mut Side| -> Option<u32> {
        if token >= MAX_TOKENS {
            return None;
        }
        token += 1;
        side.open.insert(token);
        Some(token)
    };
    while let Some(op) = next() {
        let arg = next().unwrap_or(0);
        match op % 16 {
            0 => {
                let kind = BindKind::ALL[usize::from(arg) % BindKind::ALL.len()];
                if let Some(t) = new_token(&mut esme) {
                    esme.endpoint.bind(now, kind, Bind::default(), t);
                }
            }
            1 | 2 => {
                let body = if arg & 1 == 0 {
                    Body::SubmitSm(Box::new(SubmitSm {
                        short_message: vec![b'x'; usize::from(arg)].into(),
                        ..Default::default()
                    }))
                } else {
                    Body::QuerySm(Box::default())
                };
                if let Some(t) = new_token(&mut esme) {
                    esme.endpoint.request(now, body, t);
                }
            }
            3 => {
                if let Some(t) = new_token(&mut mc) {
                    let body = Body::DeliverSm(Box::default());
                    mc.endpoint.request(now, body, t);
                }
            }
            4 | 5 => {
                // The application answers (or drops) its oldest peer request.
                let side = if op % 16 == 4 { &mut mc } else { &mut esme };
                if let Some(item) = side.held.pop_front() {
                    answer(&mut side.endpoint, now, item, arg);
                }
            }
            6..=8 => {
                // Octets cross, `arg` of them at most (all when 0).
                let (from, to) = if op % 16 == 8 {
                    (&mut mc, &mut esme)
                } else {
                    (&mut esme, &mut mc)
                };
                let n = if arg == 0 {
                    from.pipe.len()
                } else {
                    usize::from(arg)
                };
                let n = n.min(from.pipe.len());
                let taken = to.endpoint.handle_input(now, &from.pipe[..n]);
                assert!(taken <= n);
                from.pipe.drain(..taken);
            }
            9 => {
                now += Duration::from_millis(u64::from(arg) * 50);
                esme.endpoint.handle_timeout(now);
                mc.endpoint.handle_timeout(now);
            }
            10 => {
                if let Some(t) = new_token(&mut esme) {
                    esme.endpoint.unbind(now, t);
                }
            }
            11 => match arg % 4 {
                0 => esme.endpoint.release(now),
                1 => mc.endpoint.release(now),
                2 => esme.endpoint.close(now),
                _ => mc.endpoint.close(now),
            },
            12 => {
                // A corrupted octet in flight.
                let side = if arg & 1 == 0 { &mut esme } else { &mut mc };
                if !side.pipe.is_empty() {
                    let at = usize::from(arg) % side.pipe.len();
                    side.pipe[at] ^= next().unwrap_or(0xFF);
                }
            }
            13 => {
                // The connection breaks for one side.
                if arg & 1 == 0 {
                    esme.endpoint.handle_eof(now);
                } else {
                    mc.endpoint.handle_eof(now);
                }
            }
            14 => {
                let _ = esme.endpoint.flush(now);
                let _ = mc.endpoint.flush(now);
            }
            _ => {}
        }
        esme.drain(now);
        mc.drain(now);
        assert!(esme.pipe.len() <= PIPE_LIMIT + 4096 && mc.pipe.len() <= PIPE_LIMIT + 4096);
    }
    // The end: whatever is still open comes back once the endpoints are
    // closed and abandoned.
    for side in [&mut esme, &mut mc] {
        side.endpoint.close(now);
        side.drain(now);
        side.endpoint.abandon();
        side.drain(now);
        assert!(
            side.open.is_empty(),
            "tokens never returned: {:?}",
            side.open
        );
    }
    (esme.ok, mc.ok)
}

/// The application's answer to a peer request: accept or refuse a bind, a
/// status (0 or an error) for a request, or nothing (answered by default).
fn answer(endpoint: &mut Endpoint<u32>, now: Instant, item: Incoming, arg: u8) {
    match item {
        Incoming::Bind { seq, kind, bind } => {
            let result = if arg & 1 == 0 {
                Ok(())
            } else {
                Err(CommandStatus::INVALID_PASSWORD)
            };
            let (status, body) = bind_answer(kind, result, "SMSC", bind.interface_version);
            let _ = endpoint.respond(now, seq, status, body);
        }
        Incoming::Request(pdu) if arg % 3 == 0 => {
            endpoint.answer_default(now, Incoming::Request(pdu))
        }
        Incoming::Request(pdu) => {
            let status = if arg % 3 == 1 {
                CommandStatus::OK
            } else {
                CommandStatus::SYSTEM_ERROR
            };
            let seq: SequenceNumber = pdu.sequence_number;
            let (_, _, body) = crate::endpoint::default_answer(&pdu);
            let _ = endpoint.respond(now, seq, status, body);
        }
        other => endpoint.answer_default(now, other),
    }
}

#[cfg(test)]
mod tests {
    use super::run;

    #[test]
    fn a_scripted_bind_submit_and_delivery_succeed() {
        let script = [
            0x3F, // windows of 8
            0, 2, // bind as transceiver
            6, 0, // the bind reaches the MC
            4, 0, // which accepts it
            8, 0, // the bind_resp reaches the ESME
            1, 10, // a submit_sm
            3, 0, // a deliver_sm from the MC
            6, 0, 8, 0, // both cross
            4, 1, // the MC answers the submit: OK
            5, 1, // the ESME answers the deliver: OK
            6, 0, 8, 0, // the answers cross
            10, 0, 6, 0, 8, 0, // unbind, answered by the MC's session
        ];
        let (esme, mc) = run(&script);
        assert_eq!((esme, mc), (3, 1), "bind, submit, unbind; deliver");
    }
}
