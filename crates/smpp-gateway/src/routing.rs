//! MT routing: ordered routes, first match by destination prefix; each
//! route is an ordered failover list of connectors.

use crate::config::RouteConfig;

/// The routes, with connector names resolved to indices.
#[derive(Debug, Clone)]
pub(crate) struct Router {
    /// (prefix, failover list, rate per part).
    routes: Vec<(String, Vec<usize>, crate::billing::Micros)>,
}

impl Router {
    /// Resolves `routes` against the connector names (unknown names were
    /// refused by `GatewayConfig::validate`; any left are skipped).
    pub(crate) fn new(routes: &[RouteConfig], connectors: &[String]) -> Router {
        let routes = routes
            .iter()
            .map(|r| {
                let list = r
                    .upstreams
                    .iter()
                    .filter_map(|name| connectors.iter().position(|c| c == name))
                    .collect();
                (r.prefix.clone(), list, r.rate)
            })
            .collect();
        Router { routes }
    }

    /// The failover list of the first route matching `destination`.
    #[cfg(test)]
    pub(crate) fn route(&self, destination: &str) -> Option<&[usize]> {
        self.route_index(destination).map(|i| self.list(i))
    }

    /// The index of the first route matching `destination`.
    pub(crate) fn route_index(&self, destination: &str) -> Option<usize> {
        self.routes
            .iter()
            .position(|(prefix, _, _)| destination.starts_with(prefix.as_str()))
    }

    /// The failover list of route `index`.
    pub(crate) fn list(&self, index: usize) -> &[usize] {
        self.routes
            .get(index)
            .map_or(&[], |(_, list, _)| list.as_slice())
    }

    /// The price of one SMS part on route `index`.
    pub(crate) fn rate(&self, index: usize) -> crate::billing::Micros {
        self.routes.get(index).map_or(0, |(_, _, rate)| *rate)
    }

    /// How many routes there are.
    pub(crate) fn len(&self) -> usize {
        self.routes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_wins_and_star_is_the_default() {
        let routes: Vec<RouteConfig> = ["4470=b,a", "44=a", "*=b"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let router = Router::new(&routes, &["a".into(), "b".into()]);
        assert_eq!(router.route("447012"), Some(&[1, 0][..]));
        assert_eq!(router.route("4420"), Some(&[0][..]));
        assert_eq!(router.route("33"), Some(&[1][..]));
        let narrow = Router::new(&routes[..1], &["a".into(), "b".into()]);
        assert_eq!(narrow.route("33"), None);
    }
}
