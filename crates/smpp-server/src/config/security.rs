//! The security settings of the configuration that need more than a
//! field: the bind lockout's limit.

use std::time::Duration;

use anyhow::{bail, Context as _};

/// The bind lockout: more than `failures` failed binds (credential or
/// allow-list errors) from one address within `window` lock it out for
/// `cooldown` (every bind then gets ESME_RBINDFAIL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindFailureLimit {
    /// Failed binds allowed within the window (one more locks).
    pub failures: u32,
    /// The counting window.
    pub window: Duration,
    /// How long an address stays locked out.
    pub cooldown: Duration,
}

impl Default for BindFailureLimit {
    /// More than 10 in a minute: locked for 5 minutes.
    fn default() -> Self {
        BindFailureLimit {
            failures: 10,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(300),
        }
    }
}

/// Parses `N[/WINDOW[/COOLDOWN]]` (`10/1m/5m`; omitted parts keep their
/// defaults), or `off` (`None`: no lockout).
pub fn parse_bind_failure_limit(s: &str) -> anyhow::Result<Option<BindFailureLimit>> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let mut limit = BindFailureLimit::default();
    let mut parts = s.split('/');
    let n = parts.next().unwrap_or_default().trim();
    limit.failures = n.parse().with_context(|| {
        format!("bind failure limit {s:?}: {n:?} is not a number (N[/WINDOW[/COOLDOWN]] or off)")
    })?;
    if let Some(w) = parts.next() {
        limit.window = humantime::parse_duration(w.trim())
            .with_context(|| format!("bind failure limit {s:?}: bad window {w:?}"))?;
    }
    if let Some(c) = parts.next() {
        limit.cooldown = humantime::parse_duration(c.trim())
            .with_context(|| format!("bind failure limit {s:?}: bad cool-down {c:?}"))?;
    }
    if parts.next().is_some() {
        bail!("bind failure limit {s:?}: N[/WINDOW[/COOLDOWN]] or off");
    }
    if limit.window.is_zero() || limit.cooldown.is_zero() {
        bail!("bind failure limit {s:?}: window and cool-down must be positive");
    }
    Ok(Some(limit))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::{Cidr, FileConfig, ServeConfig};
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_security_settings() {
        let file: FileConfig = toml::from_str(
            r#"
            http = "127.0.0.1:8080"
            http_token = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA"
            metrics_open = true
            http_tls = true
            proxy_protocol = ["10.0.0.0/8", "127.0.0.1"]
            bind_failure_limit = "5/30s/1h"
            [tls]
            listen = "127.0.0.1:0"
            cert = "c.pem"
            key = "k.pem"
            client_ca = "ca.pem"
            [[account]]
            system_id = "a"
            password = "p"
            certificate_name = "a.example"
            "#,
        )
        .unwrap();
        let mut config = ServeConfig::default();
        config.apply(file).unwrap();
        assert!(config
            .http_token
            .as_ref()
            .unwrap()
            .0
            .starts_with("$argon2id$"));
        assert!(
            !format!("{config:?}").contains("argon2id"),
            "Debug hides the token"
        );
        assert!(config.metrics_open && config.http_tls);
        assert_eq!(
            config.proxy_protocol,
            [cidr("10.0.0.0/8"), cidr("127.0.0.1")]
        );
        let limit = config.bind_failure_limit.unwrap();
        assert_eq!(
            (limit.failures, limit.cooldown),
            (5, Duration::from_secs(3600))
        );
        assert_eq!(config.tls.unwrap().client_ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(
            config.accounts[0].certificate_name.as_deref(),
            Some("a.example")
        );
        let off: FileConfig = toml::from_str("bind_failure_limit = \"off\"").unwrap();
        let mut config = ServeConfig::default();
        config.apply(off).unwrap();
        assert_eq!(config.bind_failure_limit, None);
    }

    #[test]
    fn parses_bind_failure_limits() {
        let p = |s| parse_bind_failure_limit(s).unwrap();
        assert_eq!(p("off"), None);
        assert_eq!(p("10"), Some(BindFailureLimit::default()));
        let l = p("3/30s/1h").unwrap();
        assert_eq!(
            (l.failures, l.window, l.cooldown),
            (3, Duration::from_secs(30), Duration::from_secs(3600))
        );
        assert_eq!(p("5/2m").unwrap().cooldown, Duration::from_secs(300));
        for bad in ["", "x", "-1", "3/0s", "3/1m/0s", "3/1m/5m/1", "3/soon"] {
            assert!(parse_bind_failure_limit(bad).is_err(), "{bad:?}");
        }
    }
}
