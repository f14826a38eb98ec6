//! Prepaid billing: each account may have a money balance and an SMS count
//! (each unlimited when not set); a message is charged its route's rate per
//! SMS part on the air when it is accepted, in the same store write as the
//! message itself, and refused when a quota would go below zero.
//!
//! The gateway decides here, in memory, under one lock per decision; the
//! store applies the same charges as deltas in commit order
//! ([`Op::Charge`]), so what it holds after a crash is exactly the quotas
//! minus the messages it holds. A charge stands whatever becomes of the
//! message (as with a prepaid SMS bundle); it is written in the CDR.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::node::lock;
use crate::store::{Op, Quota};

/// Money as the store keeps it: millionths of the currency.
pub type Micros = i64;

/// Why a charge was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exhausted {
    /// Not enough money for the message's parts at its route's rate.
    Balance,
    /// Not enough SMS left for its parts.
    Sms,
}

/// What a message was charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Charge {
    /// Its price (rate x parts), whether or not the account has a balance.
    pub(crate) price: Micros,
    /// Taken from the balance (the price, or 0 for an unlimited balance).
    pub(crate) balance: Micros,
    /// Taken from the SMS count (the parts, or 0 when unlimited).
    pub(crate) sms: i64,
}

impl Charge {
    /// The store's record of it.
    pub(crate) fn op(&self, account: &str) -> Option<Op> {
        (self.balance != 0 || self.sms != 0).then(|| Op::Charge {
            account: account.to_owned(),
            balance: self.balance,
            sms: self.sms,
        })
    }
}

/// The accounts' quotas as the gateway decides with them.
#[derive(Debug, Default)]
pub(crate) struct Billing {
    quotas: Mutex<HashMap<String, Quota>>,
}

impl Billing {
    /// Starts from what the store holds.
    pub(crate) fn new(stored: Vec<(String, Quota)>) -> Billing {
        Billing {
            quotas: Mutex::new(stored.into_iter().collect()),
        }
    }

    /// The quotas of `account` (unlimited when it has none).
    pub(crate) fn quota(&self, account: &str) -> Quota {
        lock(&self.quotas).get(account).copied().unwrap_or_default()
    }

    /// Whether the store has quotas for `account`.
    pub(crate) fn has(&self, account: &str) -> bool {
        lock(&self.quotas).contains_key(account)
    }

    /// Sets the quotas of `account` (the caller writes [`Op::SetQuota`]).
    pub(crate) fn set(&self, account: &str, quota: Quota) {
        lock(&self.quotas).insert(account.to_owned(), quota);
    }

    /// Charges `parts` at `rate` each to `account`, or refuses with what
    /// ran out (nothing taken then).
    pub(crate) fn charge(
        &self,
        account: &str,
        rate: Micros,
        parts: u32,
    ) -> Result<Charge, Exhausted> {
        let price = rate.saturating_mul(i64::from(parts));
        let mut quotas = lock(&self.quotas);
        let Some(quota) = quotas.get_mut(account) else {
            return Ok(Charge {
                price,
                balance: 0,
                sms: 0,
            });
        };
        let charge = Charge {
            price,
            balance: if quota.balance.is_some() { price } else { 0 },
            sms: if quota.sms.is_some() {
                i64::from(parts)
            } else {
                0
            },
        };
        if quota.balance.is_some_and(|b| b < charge.balance) {
            return Err(Exhausted::Balance);
        }
        if quota.sms.is_some_and(|n| n < charge.sms) {
            return Err(Exhausted::Sms);
        }
        *quota = quota.minus(charge.balance, charge.sms);
        Ok(charge)
    }

    /// The store says a quota of `account` ran out (other gateways sharing
    /// it spent it): nothing is left of it here until the store says more
    /// (a credit is notified to every node).
    pub(crate) fn exhausted(&self, account: &str, sms: bool) {
        if let Some(quota) = lock(&self.quotas).get_mut(account) {
            if sms {
                quota.sms = quota.sms.map(|_| 0);
            } else {
                quota.balance = quota.balance.map(|_| 0);
            }
        }
    }

    /// Gives back a charge that was not written (the store refused the message).
    pub(crate) fn refund(&self, account: &str, charge: &Charge) {
        if let Some(quota) = lock(&self.quotas).get_mut(account) {
            *quota = quota.minus(-charge.balance, -charge.sms);
        }
    }
}

/// Parses an amount of money (`12`, `0.035`, at most 6 decimals) into
/// millionths.
pub fn parse_money(s: &str) -> Result<Micros, String> {
    let s = s.trim();
    let bad = || format!("bad amount {s:?} (a number with at most 6 decimals, e.g. 0.035)");
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if (whole.is_empty() && fraction.is_empty())
        || fraction.len() > 6
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let fraction: i64 = format!("{fraction:0<6}").parse().map_err(|_| bad())?;
    let value = whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(bad)?;
    Ok(if negative { -value } else { value })
}

/// Millionths as a decimal number (`12.5`, `0.035`, `3`).
pub fn format_money(micros: Micros) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let (whole, fraction) = (abs / 1_000_000, abs % 1_000_000);
    if fraction == 0 {
        format!("{sign}{whole}")
    } else {
        let fraction = format!("{fraction:06}");
        format!("{sign}{whole}.{}", fraction.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_parses_and_formats_exactly() {
        assert_eq!(parse_money("0.035"), Ok(35_000));
        assert_eq!(parse_money("12"), Ok(12_000_000));
        assert_eq!(parse_money(".5"), Ok(500_000));
        assert_eq!(parse_money("-1.25"), Ok(-1_250_000));
        for bad in ["", ".", "1.2345678", "1e3", "abc", "99999999999999999"] {
            assert!(parse_money(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_money(35_000), "0.035");
        assert_eq!(format_money(12_000_000), "12");
        assert_eq!(format_money(-1_250_000), "-1.25");
    }

    #[test]
    fn charges_stop_at_zero_and_unlimited_quotas_are_not_touched() {
        let billing = Billing::new(vec![
            (
                "money".into(),
                Quota {
                    balance: Some(100_000),
                    sms: None,
                },
            ),
            (
                "bundle".into(),
                Quota {
                    balance: None,
                    sms: Some(3),
                },
            ),
        ]);
        let c = billing.charge("money", 30_000, 2).unwrap();
        assert_eq!((c.price, c.balance, c.sms), (60_000, 60_000, 0));
        assert_eq!(billing.charge("money", 30_000, 2), Err(Exhausted::Balance));
        assert_eq!(
            billing.quota("money").balance,
            Some(40_000),
            "nothing taken"
        );
        billing.refund("money", &c);
        assert_eq!(billing.quota("money").balance, Some(100_000));
        assert!(billing.charge("bundle", 30_000, 3).is_ok());
        assert_eq!(billing.charge("bundle", 0, 1), Err(Exhausted::Sms));
        let free = billing.charge("postpaid", 30_000, 1).unwrap();
        assert_eq!((free.price, free.balance), (30_000, 0), "priced, not taken");
        assert_eq!(free.op("postpaid"), None);
    }
}
