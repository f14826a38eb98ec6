//! The bound ESMEs: who is connected, as which account and bind kind, with
//! which `address_range`; where receipts and routed messages can go.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use regex::Regex;
use smpp_proto::pdu::CommandStatus;
use smpp_proto::session::BindKind;
use smpp_tokio::Connection;

/// A bound ESME.
#[derive(Debug, Clone)]
pub(crate) struct Esme {
    pub(crate) conn: Connection,
    pub(crate) account: String,
    kind: BindKind,
    range: Option<Regex>,
    /// When it bound.
    since: std::time::SystemTime,
}

impl Esme {
    fn receives(&self) -> bool {
        matches!(self.kind, BindKind::Receiver | BindKind::Transceiver)
    }

    /// The server marks the connection bound once our bind answer is sent.
    pub(crate) fn ready(&self) -> bool {
        self.conn.bind_kind().is_some()
    }

    fn matches(&self, destination: &str) -> bool {
        self.range.as_ref().is_some_and(|r| r.is_match(destination))
    }
}

/// A bind's `address_range` as a pattern: a regular expression per the
/// spec, and a string that is not one taken literally; `None` when empty.
pub(crate) fn address_range(range: &str) -> Result<Option<Regex>, CommandStatus> {
    if range.is_empty() {
        return Ok(None);
    }
    Regex::new(&format!("^(?:{range})$"))
        .or_else(|_| Regex::new(&format!("^{}$", regex::escape(range))))
        .map(Some)
        .map_err(|_| CommandStatus::BIND_FAILED)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The connections that tried to bind (`Some` once bound).
#[derive(Debug, Default)]
pub(crate) struct Binds {
    sessions: Mutex<HashMap<u64, Option<Esme>>>,
    /// Bound receivers that registered an address range.
    ranges: AtomicUsize,
}

impl Binds {
    /// Notes a connection's first bind attempt; `false` if seen before.
    pub(crate) fn opened(&self, connection: u64) -> bool {
        let mut sessions = lock(&self.sessions);
        if sessions.contains_key(&connection) {
            return false;
        }
        sessions.insert(connection, None);
        true
    }

    /// Forgets a closed connection; returns its ESME if it was bound.
    pub(crate) fn closed(&self, connection: u64) -> Option<Esme> {
        let gone = lock(&self.sessions).remove(&connection).flatten();
        if gone
            .as_ref()
            .is_some_and(|e| e.receives() && e.range.is_some())
        {
            self.ranges.fetch_sub(1, Ordering::AcqRel);
        }
        gone
    }

    /// Registers a bind (credentials already checked): `BIND_FAILED` when
    /// the account has `max` binds already, or the connection closed
    /// meanwhile.
    pub(crate) fn register(
        &self,
        conn: &Connection,
        account: &str,
        kind: BindKind,
        range: Option<Regex>,
        max: Option<usize>,
    ) -> Result<(), CommandStatus> {
        let mut sessions = lock(&self.sessions);
        if let Some(max) = max {
            let bound = sessions
                .values()
                .flatten()
                .filter(|e| e.account == account)
                .count();
            if bound >= max {
                return Err(CommandStatus::BIND_FAILED);
            }
        }
        if !sessions.contains_key(&conn.id()) {
            // Closed while binding: the close watcher already ran.
            return Err(CommandStatus::BIND_FAILED);
        }
        let esme = Esme {
            conn: conn.clone(),
            account: account.to_owned(),
            kind,
            range,
            since: std::time::SystemTime::now(),
        };
        if esme.receives() && esme.range.is_some() {
            self.ranges.fetch_add(1, Ordering::AcqRel);
        }
        sessions.insert(conn.id(), Some(esme));
        Ok(())
    }

    /// Whether some bound receiver registered an address range (when none
    /// did, [`by_range`](Binds::by_range) finds nothing without a lock).
    pub(crate) fn any_range(&self) -> bool {
        self.ranges.load(Ordering::Acquire) != 0
    }

    /// The account of a bound receiver whose range matches `destination`.
    pub(crate) fn by_range(&self, destination: &str) -> Option<String> {
        if !self.any_range() {
            return None;
        }
        lock(&self.sessions)
            .values()
            .flatten()
            .find_map(|e| (e.receives() && e.matches(destination)).then(|| e.account.clone()))
    }

    /// The account of a bound receiver that registered no range.
    pub(crate) fn rangeless_receiver(&self) -> Option<String> {
        lock(&self.sessions)
            .values()
            .flatten()
            .find_map(|e| (e.receives() && e.range.is_none()).then(|| e.account.clone()))
    }

    /// A bound receiver of `account` (preferring one whose range matches `destination`).
    pub(crate) fn receiver(&self, account: &str, destination: Option<&str>) -> Option<Esme> {
        let sessions = lock(&self.sessions);
        let mut candidates = sessions
            .values()
            .flatten()
            .filter(|e| e.account == account && e.receives());
        let first = candidates.next()?.clone();
        if let Some(d) = destination {
            if !first.matches(d) {
                if let Some(better) = candidates.find(|e| e.matches(d)) {
                    return Some(better.clone());
                }
            }
        }
        Some(first)
    }

    /// Every bound session, oldest first, with its connection.
    pub(crate) fn list(&self) -> Vec<(SessionView, Connection)> {
        let mut list: Vec<(SessionView, Connection)> = lock(&self.sessions)
            .values()
            .flatten()
            .map(|e| {
                (
                    SessionView {
                        id: e.conn.id(),
                        system_id: e.account.clone(),
                        kind: e.kind,
                        peer: e.conn.peer_addr(),
                        interface_version: e.conn.interface_version(),
                        tls: e.conn.is_tls(),
                        since: e.since,
                        address_range: e.range.as_ref().map(|r| r.as_str().to_owned()),
                    },
                    e.conn.clone(),
                )
            })
            .collect();
        list.sort_by_key(|(s, _)| (s.since, s.id));
        list
    }

    /// The bound session `id`'s connection.
    pub(crate) fn connection(&self, id: u64) -> Option<Connection> {
        lock(&self.sessions)
            .get(&id)
            .and_then(|e| e.as_ref().map(|e| e.conn.clone()))
    }
}

/// A bound session, as a dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// The connection's number.
    pub id: u64,
    /// The account it bound as.
    pub system_id: String,
    /// How it bound.
    pub kind: BindKind,
    /// The client's address (through a PROXY header, the original one).
    pub peer: Option<std::net::SocketAddr>,
    /// The SMPP version it bound with.
    pub interface_version: Option<u8>,
    /// Over TLS.
    pub tls: bool,
    /// When it bound.
    pub since: std::time::SystemTime,
    /// Its `address_range`, as the pattern matched.
    pub address_range: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_ranges_are_patterns_or_literals() {
        let re = address_range("4470[0-9]+").unwrap().unwrap();
        assert!(re.is_match("447012") && !re.is_match("x447012"));
        let literal = address_range("+44(").unwrap().unwrap();
        assert!(literal.is_match("+44(") && !literal.is_match("+44"));
        assert!(address_range("").unwrap().is_none());
    }
}
