//! Accounts: who may bind (system_id, password, client networks) and how
//! fast each may send (requests per second).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use smpp_proto::pdu::CommandStatus;

use crate::config::Account;
use crate::credentials::Secret;
use crate::lockout::{Failure, Lockout};

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
    account: Account,
    secret: Secret,
    window: Window,
}

/// The configured accounts and their request rates: who may bind
/// (credentials, allow-lists, client certificates) and how fast each may
/// send. Shared by `smpp serve` and the gateway.
#[derive(Debug)]
pub struct Accounts {
    by_id: HashMap<String, AccountState>,
    /// Requests per second per account at most.
    tps: Option<u32>,
}

impl Accounts {
    /// The accounts; an error names an account whose password looks like
    /// a hash (`$argon2...`) but is not a valid argon2id PHC string. An
    /// account with a plain-text password is logged at warn level.
    pub fn new(accounts: &[Account], tps: Option<u32>) -> Result<Accounts, String> {
        let mut by_id = HashMap::new();
        for a in accounts {
            let secret = Secret::new(&a.password)
                .map_err(|e| format!("account {}: password: {e}", a.system_id))?;
            if !secret.is_hashed() {
                tracing::warn!(
                    system_id = a.system_id,
                    "account password is plain text: configure an argon2id hash (smpp hash-password)"
                );
            }
            let state = AccountState {
                account: a.clone(),
                secret,
                window: Window::default(),
            };
            by_id.insert(a.system_id.clone(), state);
        }
        Ok(Accounts { by_id, tps })
    }

    /// Checks a bind's credentials from `peer`: `INVALID_SYSTEM_ID` for an
    /// unknown account, `BIND_FAILED` from outside its allow-list (checked
    /// first, so the answer says nothing about the password),
    /// `INVALID_PASSWORD` (compared in constant time, or verified against
    /// the argon2id hash: see [`Secret::verify`]).
    pub async fn authenticate(
        &self,
        system_id: &str,
        password: &[u8],
        peer: Option<SocketAddr>,
        certificate: Option<&[u8]>,
        may_hash: impl FnOnce() -> bool,
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
        if let Some(name) = &state.account.certificate_name {
            if !certificate.is_some_and(|der| certificate_names(der, name)) {
                tracing::warn!(
                    system_id,
                    name,
                    "bind refused: no client certificate for the account's certificate_name"
                );
                return Err(CommandStatus::BIND_FAILED);
            }
        }
        match state.secret.verify_gated(password, may_hash).await {
            Some(true) => Ok(()),
            Some(false) => Err(CommandStatus::INVALID_PASSWORD),
            // Locked out while it waited to be hashed.
            None => Err(CommandStatus::BIND_FAILED),
        }
    }

    /// Whether requests are limited per second at all (when not, nobody
    /// needs to read the clock for [`admit`](Accounts::admit)).
    pub fn limited(&self) -> bool {
        self.tps.is_some()
    }

    /// Counts one request of `account` at `now_ms`; `false` when it is over
    /// the limit (answer `ESME_RTHROTTLED`).
    pub fn admit(&self, account: &str, now_ms: u64) -> bool {
        let (Some(limit), Some(state)) = (self.tps, self.by_id.get(account)) else {
            return true;
        };
        state.window.admit(now_ms, limit)
    }
}

/// Why a bind was refused, and what the lockout did about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// The bind answer's status.
    pub status: CommandStatus,
    /// What the lockout did: refused an address already locked out, or
    /// locked it out with this failure.
    pub lockout: Option<LockoutEvent>,
}

/// What the bind lockout did with a refused bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockoutEvent {
    /// The address was locked out: the password was not looked at.
    AlreadyLocked(IpAddr),
    /// This failure locked the address out.
    Engaged(IpAddr),
}

impl Accounts {
    /// [`authenticate`](Accounts::authenticate) behind the bind lockout
    /// (when there is one): an address locked out gets `BIND_FAILED`
    /// without its password being looked at (nor hashed), and a refused
    /// bind counts against its address. The lockout is asked again just
    /// before hashing, so guesses queued before it engaged are not hashed
    /// after it did.
    pub async fn authenticate_bind(
        &self,
        lockout: Option<&Lockout>,
        now_ms: impl Fn() -> u64,
        system_id: &str,
        password: &[u8],
        peer: Option<SocketAddr>,
        certificate: Option<&[u8]>,
    ) -> Result<(), Refused> {
        let lockout = lockout.zip(peer.map(|p| p.ip()));
        if let Some((lockout, ip)) = lockout {
            if lockout.locked(ip, now_ms()) {
                return Err(Refused {
                    status: CommandStatus::BIND_FAILED,
                    lockout: Some(LockoutEvent::AlreadyLocked(ip)),
                });
            }
        }
        let checked = self
            .authenticate(system_id, password, peer, certificate, || {
                lockout.is_none_or(|(l, ip)| !l.locked(ip, now_ms()))
            })
            .await;
        match (checked, lockout) {
            (Ok(()), _) => Ok(()),
            (Err(status), Some((lockout, ip))) => {
                let engaged = lockout.failed(ip, now_ms()) == Failure::LockedOut;
                if engaged {
                    tracing::warn!(
                        %ip,
                        "too many failed binds: address locked out (--bind-failure-limit)"
                    );
                }
                Err(Refused {
                    status,
                    lockout: engaged.then_some(LockoutEvent::Engaged(ip)),
                })
            }
            (Err(status), None) => Err(Refused {
                status,
                lockout: None,
            }),
        }
    }

    /// Whether `system_id` is an account here.
    pub fn contains(&self, system_id: &str) -> bool {
        self.by_id.contains_key(system_id)
    }
}

/// Whether the certificate (DER; its chain already checked by the TLS
/// handshake against the client CAs) is valid for the DNS name `name`.
fn certificate_names(der: &[u8], name: &str) -> bool {
    use smpp_tokio::rustls::pki_types::{CertificateDer, ServerName};
    let der = CertificateDer::from(der);
    let (Ok(cert), Ok(name)) = (
        webpki::EndEntityCert::try_from(&der),
        ServerName::try_from(name),
    ) else {
        return false;
    };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn credentials_allow_list_then_password() {
        let mut esme = Account::new("esme", "secret");
        esme.allow = vec!["10.0.0.0/8".parse().unwrap()];
        let hashed = Account::new(
            "hashed",
            crate::credentials::hash_password(b"secret").unwrap(),
        );
        let accounts = Accounts::new(&[esme, hashed], None).unwrap();
        let inside = Some("10.1.2.3:5000".parse().unwrap());
        let outside = Some("192.0.2.1:5000".parse().unwrap());
        let check = |id, pw, peer| accounts.authenticate(id, pw, peer, None, || true);
        assert_eq!(check("esme", b"secret", inside).await, Ok(()));
        assert_eq!(
            check("esme", b"wrong!", inside).await,
            Err(CommandStatus::INVALID_PASSWORD)
        );
        assert_eq!(
            check("esme", b"secret", outside).await,
            Err(CommandStatus::BIND_FAILED)
        );
        assert_eq!(
            check("other", b"secret", inside).await,
            Err(CommandStatus::INVALID_SYSTEM_ID)
        );
        assert_eq!(check("hashed", b"secret", outside).await, Ok(()));
        assert_eq!(
            check("hashed", b"secreT", outside).await,
            Err(CommandStatus::INVALID_PASSWORD)
        );
        let gated = accounts.authenticate("hashed", b"other", None, None, || false);
        assert_eq!(gated.await, Err(CommandStatus::BIND_FAILED), "not hashed");
    }

    #[test]
    fn a_bad_hash_is_refused_at_start() {
        let bad = Account::new("esme", "$argon2id$v=19$garbage");
        let e = Accounts::new(&[bad], None).unwrap_err();
        assert!(e.contains("account esme"), "{e}");
    }

    #[test]
    fn the_rate_limit_counts_per_second() {
        let accounts = Accounts::new(&[Account::new("a", "p")], Some(2)).unwrap();
        assert!(accounts.limited());
        assert!(accounts.admit("a", 1_000));
        assert!(accounts.admit("a", 1_999));
        assert!(!accounts.admit("a", 1_999));
        assert!(accounts.admit("a", 2_000), "a new second");
        assert!(accounts.admit("unknown", 2_000));
        assert!(!Accounts::new(&[], None).unwrap().limited());
    }
}
