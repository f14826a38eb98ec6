//! MT routing: ordered routes, first match wins, by destination prefix and
//! optionally the account, the source address, a regular expression on the
//! destination and a time window. A route is a list of
//! tiers tried in order (failover: the next tier only when no connector of
//! the one before has a bind up, or none took the message); the connectors
//! of one tier share its traffic by weight (smooth weighted round-robin
//! among those up).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::billing::Micros;
use crate::config::{RouteConfig, TimeWindow};

/// One route, with connector names resolved to indices.
#[derive(Debug)]
struct Route {
    prefix: String,
    account: Option<String>,
    source: Option<String>,
    pattern: Option<regex::Regex>,
    window: Option<TimeWindow>,
    /// Tiers of (connector, weight).
    tiers: Vec<Vec<(usize, u32)>>,
    /// Every connector of the route, tiers in order.
    all: Vec<usize>,
    rate: Micros,
    /// Messages routed so far (picks the weighted turn).
    turns: AtomicU64,
    /// Messages accepted on this route.
    hits: AtomicU64,
}

/// The routes.
#[derive(Debug)]
pub(crate) struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Resolves `routes` against the connector names (unknown names were
    /// refused by `GatewayConfig::validate`; any left are skipped).
    pub(crate) fn new(routes: &[RouteConfig], connectors: &[String]) -> Router {
        let routes = routes
            .iter()
            .map(|r| {
                let tiers: Vec<Vec<(usize, u32)>> = r
                    .tiers
                    .iter()
                    .map(|tier| {
                        tier.iter()
                            .filter_map(|(name, weight)| {
                                Some((connectors.iter().position(|c| c == name)?, *weight))
                            })
                            .collect::<Vec<_>>()
                    })
                    .filter(|t| !t.is_empty())
                    .collect();
                Route {
                    prefix: r.prefix.clone(),
                    account: r.account.clone(),
                    source: r.source.clone(),
                    // Checked when the route was parsed.
                    pattern: r.pattern.as_deref().and_then(|p| regex::Regex::new(p).ok()),
                    window: r.window,
                    all: tiers.iter().flatten().map(|(c, _)| *c).collect(),
                    tiers,
                    rate: r.rate,
                    turns: AtomicU64::new(0),
                    hits: AtomicU64::new(0),
                }
            })
            .collect();
        Router { routes }
    }

    /// The index of the first route matching a message of `account` from
    /// `source` to `destination`.
    pub(crate) fn route_index(
        &self,
        account: &str,
        source: &str,
        destination: &str,
    ) -> Option<usize> {
        let now = crate::node::now_ms() / 1000;
        self.route_index_at(account, source, destination, now as i64)
    }

    /// [`Router::route_index`] at `unix_seconds`.
    pub(crate) fn route_index_at(
        &self,
        account: &str,
        source: &str,
        destination: &str,
        unix_seconds: i64,
    ) -> Option<usize> {
        self.routes.iter().position(|r| {
            destination.starts_with(r.prefix.as_str())
                && r.account.as_deref().is_none_or(|a| a == account)
                && r.source.as_deref().is_none_or(|s| source.starts_with(s))
                && r.pattern.as_ref().is_none_or(|p| p.is_match(destination))
                && r.window.is_none_or(|w| w.contains(unix_seconds))
        })
    }

    /// Every connector of route `index` (tiers in order).
    pub(crate) fn list(&self, index: usize) -> &[usize] {
        self.routes.get(index).map_or(&[], |r| r.all.as_slice())
    }

    /// The connectors to offer the next message of route `index` to, in
    /// order: tier by tier; within a tier, the one whose weighted turn it
    /// is among those `up`, then the others of the tier.
    pub(crate) fn candidates(&self, index: usize, up: impl Fn(usize) -> bool) -> Vec<usize> {
        let Some(route) = self.routes.get(index) else {
            return Vec::new();
        };
        let turn = route.turns.fetch_add(1, Ordering::Relaxed);
        let mut order = Vec::with_capacity(route.all.len());
        let mut down = Vec::new();
        for tier in &route.tiers {
            let live: Vec<(usize, u32)> = tier.iter().copied().filter(|(c, _)| up(*c)).collect();
            let total: u64 = live.iter().map(|(_, w)| u64::from(*w)).sum();
            if total > 0 {
                // The connector whose share of the weights holds this turn.
                let mut at = turn % total;
                let first = live
                    .iter()
                    .find(|(_, w)| {
                        if at < u64::from(*w) {
                            true
                        } else {
                            at -= u64::from(*w);
                            false
                        }
                    })
                    .map(|(c, _)| *c);
                order.extend(first);
                order.extend(live.iter().map(|(c, _)| *c).filter(|c| Some(*c) != first));
            }
            down.extend(tier.iter().map(|(c, _)| *c).filter(|c| !up(*c)));
        }
        // Those down after everything up, in case one came up meanwhile.
        order.extend(down);
        order
    }

    /// Counts `n` messages accepted on route `index`.
    pub(crate) fn hit(&self, index: usize, n: usize) {
        if let Some(r) = self.routes.get(index) {
            r.hits.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Messages accepted on route `index` since the routes were last changed.
    pub(crate) fn hits(&self, index: usize) -> u64 {
        self.routes
            .get(index)
            .map_or(0, |r| r.hits.load(Ordering::Relaxed))
    }

    /// The price of one SMS part on route `index`.
    pub(crate) fn rate(&self, index: usize) -> Micros {
        self.routes.get(index).map_or(0, |r| r.rate)
    }

    /// How many routes there are.
    pub(crate) fn len(&self) -> usize {
        self.routes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[&str]) -> Router {
        let routes: Vec<RouteConfig> = routes.iter().map(|s| s.parse().unwrap()).collect();
        Router::new(&routes, &["a".into(), "b".into(), "c".into()])
    }

    #[test]
    fn first_match_wins_by_destination_account_and_source() {
        let r = router(&["4470=b,a", "44=a,account=vip", "44=c,from=Acme", "*=b"]);
        assert_eq!(r.route_index("x", "1", "447012"), Some(0));
        assert_eq!(r.list(0), [1, 0]);
        assert_eq!(r.route_index("vip", "1", "4420"), Some(1));
        assert_eq!(r.route_index("other", "AcmeShop", "4420"), Some(2));
        assert_eq!(r.route_index("other", "Zeta", "4420"), Some(3));
        let narrow = router(&["4470=b,a"]);
        assert_eq!(narrow.route_index("x", "", "33"), None);
    }

    #[test]
    fn patterns_and_time_windows_narrow_a_route() {
        let r = router(&[
            "*=a,re=^33[67]\\d{8}$",
            "*=b,hours=22:00-06:00,days=fri,tz=+01:00",
            "*=c",
        ]);
        // 2026-12-04 was a Friday; 21:30 UTC is 22:30 at +01:00.
        let friday_2130_utc = 1_796_420_000 - 1_796_420_000 % 86_400 + 21 * 3600 + 1800;
        assert_eq!(r.route_index_at("x", "", "33612345678", 0), Some(0));
        assert_eq!(r.route_index_at("x", "", "3361234567", 0), Some(2));
        assert_eq!(r.route_index_at("x", "", "44", friday_2130_utc), Some(1));
        // Saturday 04:00 local is still Friday's night window ...
        assert_eq!(
            r.route_index_at("x", "", "44", friday_2130_utc + 5 * 3600 + 1800),
            Some(1)
        );
        // ... Saturday 22:30 local is not (Friday only), nor Friday 20:00.
        assert_eq!(
            r.route_index_at("x", "", "44", friday_2130_utc + 86_400),
            Some(2)
        );
        assert_eq!(
            r.route_index_at("x", "", "44", friday_2130_utc - 2 * 3600),
            Some(2)
        );
    }

    #[test]
    fn weights_share_a_tier_and_tiers_fail_over() {
        let r = router(&["*=a:3+b:1,c"]);
        let mut firsts = [0; 3];
        for _ in 0..400 {
            let order = r.candidates(0, |_| true);
            assert_eq!(order.len(), 3);
            assert_eq!(order[2], 2, "the failover tier last");
            firsts[order[0]] += 1;
        }
        assert_eq!(firsts, [300, 100, 0]);
        // a down: b takes the tier; both down: c first.
        let order = r.candidates(0, |c| c != 0);
        assert_eq!(order, [1, 2, 0]);
        let order = r.candidates(0, |c| c == 2);
        assert_eq!(order[0], 2);
    }
}
