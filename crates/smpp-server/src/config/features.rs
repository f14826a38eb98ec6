//! The settings of the simulator's optional features: outbind to ESMEs,
//! distribution lists for `submit_multi`, the scripted USSD menu and the
//! MO feed from a CSV file.
//!
//! ```toml
//! [[outbind]]                  # connect to this ESME and send outbind
//! system_id = "esme2"          # the account it binds as over that connection
//! password = "secret"          # sent in the outbind (the ESME checks it)
//! address = "10.0.0.5:2776"    # its outbind listener
//! interval = "30s"             # longest wait between attempts while it is not bound
//!
//! [distribution_lists]         # submit_multi dest_flag=2 (dl_name) expands to these
//! staff = ["447700900001", "447700900002"]
//!
//! ussd_menu = "menu.toml"      # scripted USSD menu (see `ussd_menu`)
//! mo_csv = "mo.csv"            # MO messages to deliver: from,to,text[,coding]
//! mo_rate = "10/s"             # at this rate
//! ```

use std::time::Duration;

use serde::Deserialize;

/// Default longest wait between outbind attempts while the ESME is not bound.
pub const DEFAULT_OUTBIND_INTERVAL: Duration = Duration::from_secs(30);

/// An ESME that serve connects to and sends `outbind` (SMPP 3.4 §2.2.1): the
/// ESME then binds (receiver or transceiver) on that connection as
/// `system_id`, and gets what is owed to that account.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OutbindTarget {
    /// The account the ESME binds as (its deliveries and receipts go there).
    pub system_id: String,
    /// The password the outbind carries (for the ESME to check; never logged).
    pub password: String,
    /// `HOST:PORT` of the ESME's outbind listener.
    pub address: String,
    /// Longest wait between attempts while the ESME is not bound (failed
    /// attempts back off from 1 s up to it).
    #[serde(default = "default_interval", with = "humantime_serde_compat")]
    pub interval: Duration,
}

fn default_interval() -> Duration {
    DEFAULT_OUTBIND_INTERVAL
}

/// `interval = "30s"` in TOML.
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::positive_duration(&s).map_err(serde::de::Error::custom)
    }
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| format!("{s:?}: {e}"))?;
    if d.is_zero() {
        return Err(format!("{s:?}: must be positive"));
    }
    Ok(d)
}

impl std::fmt::Debug for OutbindTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutbindTarget")
            .field("system_id", &self.system_id)
            .field("address", &self.address)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl std::str::FromStr for OutbindTarget {
    type Err = String;

    /// `SYSTEM_ID:PASSWORD@HOST:PORT[,interval=DURATION]`: the id ends at
    /// the first ':', the address starts after the last '@' (a password may
    /// contain both).
    fn from_str(s: &str) -> Result<Self, String> {
        const FORM: &str = "expected SYSTEM_ID:PASSWORD@HOST:PORT[,interval=DURATION]";
        let Some((credentials, rest)) = s.rsplit_once('@') else {
            return Err(FORM.into());
        };
        let (address, options) = rest.split_once(',').unwrap_or((rest, ""));
        let Some((id, password)) = credentials.split_once(':').filter(|(id, _)| !id.is_empty())
        else {
            return Err(FORM.into());
        };
        check_host_port(address)?;
        let mut interval = DEFAULT_OUTBIND_INTERVAL;
        for option in options.split(',').filter(|o| !o.trim().is_empty()) {
            match option.split_once('=') {
                Some(("interval", d)) => interval = positive_duration(d)?,
                _ => return Err(format!("unknown option {option:?} ({FORM})")),
            }
        }
        Ok(OutbindTarget {
            system_id: id.into(),
            password: password.into(),
            address: address.into(),
            interval,
        })
    }
}

/// Checks an outbind address: `HOST:PORT`.
pub(super) fn check_host_port(address: &str) -> Result<(), String> {
    let ok = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!("outbind address {address:?} is not HOST:PORT"))
    }
}

/// Longest distribution list name (`dl_name` is a C-Octet String of 21).
pub const MAX_DL_NAME: usize = 20;
/// Addresses a distribution list holds at most.
pub const MAX_DL_ADDRESSES: usize = 1000;

/// Checks a distribution list: a name that fits `dl_name`, 1 to
/// [`MAX_DL_ADDRESSES`] addresses of at most 20 characters.
pub fn check_distribution_list(name: &str, addresses: &[String]) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_DL_NAME {
        return Err(format!(
            "distribution list name {name:?}: 1 to {MAX_DL_NAME} characters"
        ));
    }
    if addresses.is_empty() || addresses.len() > MAX_DL_ADDRESSES {
        return Err(format!(
            "distribution list {name:?}: 1 to {MAX_DL_ADDRESSES} addresses"
        ));
    }
    if let Some(bad) = addresses.iter().find(|a| a.is_empty() || a.len() > 20) {
        return Err(format!(
            "distribution list {name:?}: address {bad:?} is not 1 to 20 characters"
        ));
    }
    Ok(())
}

/// Parses `NAME=ADDR,ADDR,...` (a `--distribution-list` flag).
pub fn parse_distribution_list(s: &str) -> Result<(String, Vec<String>), String> {
    let Some((name, list)) = s.split_once('=') else {
        return Err("expected NAME=ADDR,ADDR,...".into());
    };
    let name = name.trim().to_owned();
    let addresses: Vec<String> = list.split(',').map(|a| a.trim().to_owned()).collect();
    check_distribution_list(&name, &addresses)?;
    Ok((name, addresses))
}

/// A rate: `count` per `per` (`10/s`, `600/m`, `2.5/s`; a bare number is per second).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Messages per second.
    pub per_second: f64,
}

impl Rate {
    /// The time between two messages.
    pub fn interval(self) -> Duration {
        Duration::from_secs_f64(1.0 / self.per_second)
    }
}

impl Default for Rate {
    /// One per second.
    fn default() -> Self {
        Rate { per_second: 1.0 }
    }
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (count, per) = s.trim().split_once('/').unwrap_or((s.trim(), "s"));
        let count: f64 = count
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: expected N/s, N/m or N/h"))?;
        let seconds = match per.trim() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            other => positive_duration(other)?.as_secs_f64(),
        };
        let per_second = count / seconds;
        // At most 100 000/s, at least one a day.
        if !(per_second.is_finite() && (1.0 / 86_400.0..=100_000.0).contains(&per_second)) {
            return Err(format!("{s:?}: between 1/day and 100000/s"));
        }
        Ok(Rate { per_second })
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbind_flags() {
        let t: OutbindTarget = "esme2:se:c@r@t@127.0.0.1:2776".parse().unwrap();
        assert_eq!(t.system_id, "esme2");
        assert_eq!(t.password, "se:c@r@t");
        assert_eq!(t.address, "127.0.0.1:2776");
        assert_eq!(t.interval, DEFAULT_OUTBIND_INTERVAL);
        let t: OutbindTarget = "e:p@localhost:1,interval=5s".parse().unwrap();
        assert_eq!(
            (t.address.as_str(), t.interval),
            ("localhost:1", Duration::from_secs(5))
        );
        for bad in [
            "",
            "e@h:1",
            ":p@h:1",
            "e:p",
            "e:p@h",
            "e:p@h:x",
            "e:p@:1",
            "e:p@h:1,interval=0s",
            "e:p@h:1,interval=soon",
            "e:p@h:1,colour=red",
        ] {
            assert!(bad.parse::<OutbindTarget>().is_err(), "{bad:?} accepted");
        }
        assert!(
            !format!("{t:?}").contains("\"p\""),
            "Debug hides the password"
        );
    }

    #[test]
    fn distribution_list_flags() {
        let (name, list) = parse_distribution_list("staff=447700900001, 447700900002").unwrap();
        assert_eq!(name, "staff");
        assert_eq!(list, ["447700900001", "447700900002"]);
        for bad in [
            "staff",
            "=1",
            "staff=",
            "staff=1,,2",
            "a-name-longer-than-twenty=1",
        ] {
            assert!(parse_distribution_list(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("x={}", "1".repeat(21));
        assert!(parse_distribution_list(&long).is_err());
    }

    #[test]
    fn rates() {
        let r = |s: &str| s.parse::<Rate>().map(|r| r.per_second);
        assert_eq!(r("10/s"), Ok(10.0));
        assert_eq!(r("10"), Ok(10.0));
        assert_eq!(r("120/m"), Ok(2.0));
        assert_eq!(r("1/2s"), Ok(0.5));
        assert_eq!(
            "4/s".parse::<Rate>().unwrap().interval(),
            Duration::from_millis(250)
        );
        for bad in [
            "",
            "x/s",
            "0/s",
            "-1/s",
            "1/0s",
            "1e9/s",
            "NaN/s",
            "inf",
            "1/fortnight",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?} accepted");
        }
    }
}
