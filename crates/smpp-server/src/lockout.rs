//! The bind lockout (also used for wrong HTTP tokens): an address whose binds failed more than `limit` times
//! within `window` (wrong system_id or password, or outside an account's
//! allow-list) gets `ESME_RBINDFAIL` to every bind for `cooldown`, whatever
//! the password, and without the password being checked (so a locked-out
//! guesser costs no argon2 either).
//!
//! Only credential and allow-list failures count: disconnects, timeouts,
//! malformed PDUs and binds refused for other reasons (too many binds of
//! the account) do not. A successful bind does not clear the count (or an
//! ESME holding one valid account could interleave guesses at others).
//! IPv6 clients are counted per /64 (what one host usually gets); IPv4 per
//! address (an IPv4-mapped IPv6 address is its IPv4 address). Loopback is
//! not exempt.
//!
//! Memory is bounded: [`MAX_ADDRESSES`] addresses tracked at most; when the
//! table is full, stale entries are swept, and if none is stale the new
//! address is not tracked (a flood from that many addresses is the
//! network's business, see docs/SECURITY.md) while locked ones stay locked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::config::BindFailureLimit;

/// Addresses tracked at once at most (about 40 octets each).
pub const MAX_ADDRESSES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When the current counting window started, ms.
    window_start: u64,
    failures: u32,
    /// Locked out until then (ms; 0: not locked).
    locked_until: u64,
}

/// What one failed bind did to its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Counted; the address may still bind.
    Counted,
    /// This failure crossed the limit: the address is locked out now.
    LockedOut,
    /// Not counted: the table is full.
    Untracked,
}

/// Failed binds per address, and the addresses locked out.
#[derive(Debug)]
pub struct Lockout {
    limit: BindFailureLimit,
    table: Mutex<HashMap<IpAddr, Entry>>,
    capacity: usize,
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
        v4 => v4,
    }
}

impl Lockout {
    /// An empty table counting failures against `limit`.
    pub fn new(limit: BindFailureLimit) -> Lockout {
        Lockout::with_capacity(limit, MAX_ADDRESSES)
    }

    fn with_capacity(limit: BindFailureLimit, capacity: usize) -> Lockout {
        Lockout {
            limit,
            table: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn ms(d: std::time::Duration) -> u64 {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether binds from `ip` are refused at `now` (ms).
    pub fn locked(&self, ip: IpAddr, now: u64) -> bool {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.get(&key(ip)).is_some_and(|e| e.locked_until > now)
    }

    /// Counts a failed bind from `ip` at `now` (ms).
    pub fn failed(&self, ip: IpAddr, now: u64) -> Failure {
        let (window, cooldown) = (Self::ms(self.limit.window), Self::ms(self.limit.cooldown));
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let k = key(ip);
        if !table.contains_key(&k) && table.len() >= self.capacity {
            // Forget what can no longer matter: windows over, cool-downs over.
            table
                .retain(|_, e| e.locked_until > now || now.saturating_sub(e.window_start) < window);
            if table.len() >= self.capacity {
                return Failure::Untracked;
            }
        }
        let entry = table.entry(k).or_insert(Entry {
            window_start: now,
            failures: 0,
            locked_until: 0,
        });
        if entry.locked_until > now {
            return Failure::Counted;
        }
        if entry.locked_until != 0 || now.saturating_sub(entry.window_start) >= window {
            // A new window (the last one, or the cool-down, is over).
            *entry = Entry {
                window_start: now,
                failures: 0,
                locked_until: 0,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
        if entry.failures > self.limit.failures {
            entry.locked_until = now.saturating_add(cooldown).max(1);
            Failure::LockedOut
        } else {
            Failure::Counted
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limit(failures: u32) -> BindFailureLimit {
        BindFailureLimit {
            failures,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(300),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn more_than_the_limit_in_a_window_locks_for_the_cooldown() {
        let l = Lockout::new(limit(10));
        let a = ip("192.0.2.1");
        for i in 0..10 {
            assert_eq!(l.failed(a, 1000 + i), Failure::Counted);
        }
        assert!(!l.locked(a, 1010), "10 failures: not more than 10");
        assert_eq!(l.failed(a, 1011), Failure::LockedOut);
        assert!(l.locked(a, 1011));
        assert!(!l.locked(ip("192.0.2.2"), 1011), "per address");
        assert!(l.locked(a, 1011 + 299_999));
        assert!(!l.locked(a, 1011 + 300_000), "cool-down over");
        assert_eq!(l.failed(a, 1011 + 300_000), Failure::Counted, "counts anew");
    }

    #[test]
    fn failures_spread_over_windows_do_not_lock() {
        let l = Lockout::new(limit(2));
        let a = ip("192.0.2.1");
        for i in 0..10 {
            assert_eq!(l.failed(a, i * 30_000), Failure::Counted, "#{i}");
        }
        assert!(!l.locked(a, 300_000));
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let l = Lockout::new(limit(1));
        l.failed(ip("2001:db8::1"), 0);
        assert_eq!(l.failed(ip("2001:db8::2"), 1), Failure::LockedOut);
        assert!(l.locked(ip("2001:db8::ffff"), 2));
        assert!(!l.locked(ip("2001:db8:0:1::1"), 2));
        l.failed(ip("::ffff:192.0.2.9"), 0);
        l.failed(ip("192.0.2.9"), 0);
        assert!(l.locked(ip("192.0.2.9"), 1));
    }

    #[test]
    fn the_table_is_bounded_and_keeps_locked_addresses() {
        let l = Lockout::with_capacity(limit(0), 2);
        assert_eq!(l.failed(ip("192.0.2.1"), 0), Failure::LockedOut);
        assert_eq!(l.failed(ip("192.0.2.2"), 0), Failure::LockedOut);
        assert_eq!(l.failed(ip("192.0.2.3"), 0), Failure::Untracked);
        assert!(l.locked(ip("192.0.2.1"), 1));
        // Once the cool-downs are over, the stale entries make room.
        assert_eq!(l.failed(ip("192.0.2.3"), 300_000), Failure::LockedOut);
        assert_eq!(l.table.lock().unwrap().len(), 1);
    }
}
