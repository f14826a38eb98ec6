//! Accounts: who may bind (system_id, password, client networks) and how
//! fast each may send (requests per second).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use smpp_proto::pdu::CommandStatus;
use subtle::ConstantTimeEq;

use crate::config::Account;

/// Requests per second of one account: a fixed one-second window.
#[derive(Debug, Default)]
struct Window {
    second: AtomicU64,
    count: AtomicU32,
}

impl Window {
    fn admit(&self, now_ms: u64, limit: u32) -> bool {
        let second = now_ms / 1000;
        let current = self.second.load(Ordering::Relaxed);
        if current != second
            && self
                .second
                .compare_exchange(current, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.count.store(0, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed) < limit
    }
}

#[derive(Debug)]
struct AccountState {
    /// The system_id, shared by the account's records.
    name: Arc<str>,
    account: Account,
    window: Window,
}

/// The configured accounts and their request rates.
#[derive(Debug)]
pub(crate) struct Accounts {
    by_id: HashMap<String, AccountState>,
    /// Requests per second per account at most.
    tps: Option<u32>,
}

impl Accounts {
    pub(crate) fn new(accounts: &[Account], tps: Option<u32>) -> Accounts {
        let by_id = accounts
            .iter()
            .map(|a| {
                (
                    a.system_id.clone(),
                    AccountState {
                        name: Arc::from(a.system_id.as_str()),
                        account: a.clone(),
                        window: Window::default(),
                    },
                )
            })
            .collect();
        Accounts { by_id, tps }
    }

    /// The account's name as its records share it (a new one for an
    /// unknown account: injected messages have none).
    pub(crate) fn name(&self, system_id: &str) -> Arc<str> {
        self.by_id
            .get(system_id)
            .map_or_else(|| Arc::from(system_id), |a| a.name.clone())
    }

    /// Checks a bind's credentials from `peer`: `INVALID_SYSTEM_ID` for an
    /// unknown account, `BIND_FAILED` from outside its allow-list (checked
    /// first, so the answer says nothing about the password),
    /// `INVALID_PASSWORD` (compared in constant time).
    pub(crate) fn authenticate(
        &self,
        system_id: &str,
        password: &[u8],
        peer: Option<SocketAddr>,
    ) -> Result<(), CommandStatus> {
        let state = self
            .by_id
            .get(system_id)
            .ok_or(CommandStatus::INVALID_SYSTEM_ID)?;
        if !state.account.allows(peer.map(|p| p.ip())) {
            let peer = peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
            tracing::warn!(
                system_id,
                peer,
                "bind refused: address not in the account's allow-list"
            );
            return Err(CommandStatus::BIND_FAILED);
        }
        let expected = state.account.password.as_bytes();
        if password.len() == expected.len() && bool::from(password.ct_eq(expected)) {
            Ok(())
        } else {
            Err(CommandStatus::INVALID_PASSWORD)
        }
    }

    /// Whether requests are limited per second at all (when not, nobody
    /// needs to read the clock for [`admit`](Accounts::admit)).
    pub(crate) fn limited(&self) -> bool {
        self.tps.is_some()
    }

    /// Counts one request of `account` at `now_ms`; `false` when it is over
    /// the limit (answer `ESME_RTHROTTLED`).
    pub(crate) fn admit(&self, account: &str, now_ms: u64) -> bool {
        let (Some(limit), Some(state)) = (self.tps, self.by_id.get(account)) else {
            return true;
        };
        state.window.admit(now_ms, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_allow_list_then_password() {
        let mut esme = Account::new("esme", "secret");
        esme.allow = vec!["10.0.0.0/8".parse().unwrap()];
        let accounts = Accounts::new(&[esme], None);
        let inside = Some("10.1.2.3:5000".parse().unwrap());
        let outside = Some("192.0.2.1:5000".parse().unwrap());
        assert_eq!(accounts.authenticate("esme", b"secret", inside), Ok(()));
        assert_eq!(
            accounts.authenticate("esme", b"wrong!", inside),
            Err(CommandStatus::INVALID_PASSWORD)
        );
        assert_eq!(
            accounts.authenticate("esme", b"secret", outside),
            Err(CommandStatus::BIND_FAILED)
        );
        assert_eq!(
            accounts.authenticate("other", b"secret", inside),
            Err(CommandStatus::INVALID_SYSTEM_ID)
        );
    }

    #[test]
    fn the_rate_limit_counts_per_second() {
        let accounts = Accounts::new(&[Account::new("a", "p")], Some(2));
        assert!(accounts.limited());
        assert!(accounts.admit("a", 1_000));
        assert!(accounts.admit("a", 1_999));
        assert!(!accounts.admit("a", 1_999));
        assert!(accounts.admit("a", 2_000), "a new second");
        assert!(accounts.admit("unknown", 2_000));
        assert!(!Accounts::new(&[], None).limited());
    }
}
