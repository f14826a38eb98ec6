//! Secrets a peer presents (bind passwords, the HTTP API's token), kept
//! either as plain text or as an argon2id PHC string (`$argon2id$v=19$...`,
//! made by [`hash_password`] / `smpp hash-password`).
//!
//! Verifying an argon2id hash costs tens of milliseconds of CPU and
//! [`M_COST_KIB`] of memory on purpose, which would make a bind storm a
//! denial-of-service lever. So:
//! - a successful verification is remembered: the secret keeps the keyed
//!   SHA-256 digests of the last [`CACHED`] values that matched (the key is
//!   random per process, so the cache is no unsalted hash table of
//!   passwords), and a repeated correct bind costs one digest, not argon2;
//! - argon2 runs on tokio's blocking threads, at most one per core at once
//!   ([`Secret::verify`]), so wrong passwords cannot starve the runtime;
//! - wrong passwords are not cached: each costs one hash, and the bind
//!   lockout (`--bind-failure-limit`) bounds how many one address may try.

use std::sync::{Mutex, OnceLock};

use argon2::password_hash::rand_core::{OsRng, RngCore as _};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// A configured secret as written (plain text or a PHC string), whose
/// `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Configured(pub String);

impl std::fmt::Debug for Configured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Configured(..)")
    }
}

/// The prefix of the PHC strings we make and accept.
pub const HASH_PREFIX: &str = "$argon2id$";
/// Memory cost of the hashes we make, in KiB (19 MiB: OWASP's argon2id
/// minimum, about 25-40 ms on one core of a current server).
pub const M_COST_KIB: u32 = 19_456;
/// Passes of the hashes we make.
pub const T_COST: u32 = 2;
/// Lanes of the hashes we make.
pub const P_COST: u32 = 1;
/// Values remembered per secret as verified (a password being rotated, a
/// few clients with different spellings of a token).
pub const CACHED: usize = 4;

/// Hashes `password` with argon2id ([`M_COST_KIB`], [`T_COST`], [`P_COST`],
/// a random 16-octet salt) into a PHC string.
pub fn hash_password(password: &[u8]) -> Result<String, String> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).map_err(|e| e.to_string())?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether a configured secret is meant as a hash (`$argon2...`): such a
/// value must then parse as a PHC string, it is never taken as plain text.
pub fn is_hashed(secret: &str) -> bool {
    secret.starts_with("$argon2")
}

/// The process's key for cached digests.
fn cache_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        key
    })
}

/// Argon2 verifications running at once at most (one per core).
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        tokio::sync::Semaphore::new(cores)
    })
}

fn digest(presented: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(cache_key());
    hasher.update(presented);
    hasher.finalize().into()
}

#[derive(Clone)]
enum Kind {
    /// The keyed digest of the plain text: comparing digests in constant
    /// time does not even leak the length.
    Plain([u8; 32]),
    /// A PHC string checked to parse.
    Hashed(String),
}

/// A configured secret: plain text or an argon2id hash, with its cache of
/// verified values. Its `Debug` shows neither.
pub struct Secret {
    kind: Kind,
    verified: Mutex<Vec<[u8; 32]>>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("hashed", &self.is_hashed())
            .finish_non_exhaustive()
    }
}

impl Secret {
    /// A secret from its configured form: a PHC string when it starts with
    /// `$argon2` (an error when that does not parse, or is not argon2id),
    /// plain text otherwise.
    pub fn new(configured: &str) -> Result<Secret, String> {
        let kind = if is_hashed(configured) {
            let hash = PasswordHash::new(configured)
                .map_err(|e| format!("not a valid argon2id PHC string: {e}"))?;
            if hash.algorithm.as_str() != "argon2id" {
                return Err(format!(
                    "hash algorithm {} not accepted: use argon2id (smpp hash-password)",
                    hash.algorithm
                ));
            }
            if hash.hash.is_none() {
                return Err("the PHC string has no hash".into());
            }
            Kind::Hashed(configured.to_owned())
        } else {
            Kind::Plain(digest(configured.as_bytes()))
        };
        Ok(Secret {
            kind,
            verified: Mutex::new(Vec::new()),
        })
    }

    /// Whether it is kept as a hash.
    pub fn is_hashed(&self) -> bool {
        matches!(self.kind, Kind::Hashed(_))
    }

    /// The answer without hashing, when there is one: always for plain
    /// text (constant-time comparison), for a hash when `presented` matched
    /// before.
    pub fn verify_quick(&self, presented: &[u8]) -> Option<bool> {
        match &self.kind {
            Kind::Plain(expected) => Some(bool::from(digest(presented).ct_eq(expected))),
            Kind::Hashed(_) => {
                let d = digest(presented);
                let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
                // Look at every entry: the time says nothing of which matched.
                let hit = verified
                    .iter()
                    .fold(subtle::Choice::from(0), |acc, v| acc | v.ct_eq(&d));
                bool::from(hit).then_some(true)
            }
        }
    }

    /// Verifies `presented` on the calling thread (argon2 for a hash not in
    /// the cache), remembering a match.
    pub fn verify_blocking(&self, presented: &[u8]) -> bool {
        if let Some(answer) = self.verify_quick(presented) {
            return answer;
        }
        let Kind::Hashed(phc) = &self.kind else {
            return false;
        };
        let ok = argon2_verify(phc, presented);
        if ok {
            self.remember(presented);
        }
        ok
    }

    /// Verifies `presented`: at once when [`verify_quick`](Secret::verify_quick)
    /// can, else argon2 on a blocking thread (one per core at most at once),
    /// remembering a match. Needs a tokio runtime.
    pub async fn verify(&self, presented: &[u8]) -> bool {
        self.verify_gated(presented, || true).await.unwrap_or(false)
    }

    /// [`verify`](Secret::verify), asking `may_hash` once a hashing slot is
    /// free whether the hash is still worth computing: `None` when it says
    /// no. The bind lockout is asked there, so that a burst of concurrent
    /// guesses from one address, all queued before the lockout engaged, is
    /// not hashed once it has.
    pub async fn verify_gated(
        &self,
        presented: &[u8],
        may_hash: impl FnOnce() -> bool,
    ) -> Option<bool> {
        if let Some(answer) = self.verify_quick(presented) {
            return Some(answer);
        }
        let Kind::Hashed(phc) = &self.kind else {
            return Some(false);
        };
        let Ok(_slot) = hashing_slots().acquire().await else {
            return Some(false);
        };
        if !may_hash() {
            return None;
        }
        let (phc, owned) = (phc.clone(), presented.to_vec());
        let ok = tokio::task::spawn_blocking(move || argon2_verify(&phc, &owned))
            .await
            .unwrap_or(false);
        if ok {
            self.remember(presented);
        }
        Some(ok)
    }

    fn remember(&self, presented: &[u8]) {
        let d = digest(presented);
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if !verified.contains(&d) {
            if verified.len() >= CACHED {
                verified.remove(0);
            }
            verified.push(d);
        }
    }
}

/// Argon2 verification with the parameters the PHC string carries.
fn argon2_verify(phc: &str, presented: &[u8]) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|hash| Argon2::default().verify_password(presented, &hash).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_secrets_compare_exactly() {
        let s = Secret::new("secret").unwrap();
        assert!(!s.is_hashed());
        assert_eq!(s.verify_quick(b"secret"), Some(true));
        assert_eq!(s.verify_quick(b"secreT"), Some(false));
        assert_eq!(s.verify_quick(b"secret2"), Some(false));
        assert!(!format!("{s:?}").contains("secret\""));
    }

    #[test]
    fn hashes_verify_and_matches_are_cached() {
        let phc = hash_password(b"pw").unwrap();
        assert!(phc.starts_with(HASH_PREFIX), "{phc}");
        assert!(phc.contains(&format!("m={M_COST_KIB},t={T_COST},p={P_COST}")));
        let s = Secret::new(&phc).unwrap();
        assert!(s.is_hashed());
        assert_eq!(s.verify_quick(b"pw"), None, "not verified yet");
        assert!(!s.verify_blocking(b"wrong"));
        assert_eq!(s.verify_quick(b"wrong"), None, "failures are not cached");
        assert!(s.verify_blocking(b"pw"));
        assert_eq!(s.verify_quick(b"pw"), Some(true), "cached");
        assert_ne!(hash_password(b"pw").unwrap(), phc, "salted");
    }

    #[test]
    fn the_cache_is_bounded() {
        let s = Secret::new(&hash_password(b"pw").unwrap()).unwrap();
        for i in 0..10u8 {
            s.remember(&[i]);
        }
        assert_eq!(s.verified.lock().unwrap().len(), CACHED);
        assert_eq!(s.verify_quick(&[9]), Some(true));
        assert_eq!(s.verify_quick(&[0]), None);
    }

    #[test]
    fn bad_hashes_are_refused() {
        assert!(Secret::new("$argon2id$nonsense").is_err());
        assert!(Secret::new("$argon2i$v=19$m=16,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo").is_err());
        assert!(Secret::new("plain$argon2id$").is_ok());
    }

    #[tokio::test]
    async fn a_closed_gate_skips_the_hash_but_not_the_cache() {
        let s = Secret::new(&hash_password(b"pw").unwrap()).unwrap();
        assert_eq!(s.verify_gated(b"pw", || false).await, None);
        assert_eq!(s.verify_gated(b"pw", || true).await, Some(true));
        assert_eq!(s.verify_gated(b"pw", || false).await, Some(true), "cached");
        let plain = Secret::new("pw").unwrap();
        assert_eq!(plain.verify_gated(b"no", || false).await, Some(false));
    }

    #[tokio::test]
    async fn async_verification_runs_off_the_runtime() {
        let s = Secret::new(&hash_password(b"pw").unwrap()).unwrap();
        assert!(!s.verify(b"no").await);
        assert!(s.verify(b"pw").await);
        assert_eq!(s.verify_quick(b"pw"), Some(true));
    }
}
