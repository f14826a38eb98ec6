//! The connectors and routes in force, and how they change while the
//! gateway runs.
//!
//! A [`Topology`] is one consistent set: the started connectors, the router
//! over them and one forwarding queue per route. The admin API changes the
//! [`Layout`] (the configuration behind it); a change is checked, written to
//! the store (so it survives a restart), and installed as a new topology:
//! - connectors whose configuration did not change are kept as they are
//!   (their binds stay up); new or changed ones are started, and those
//!   removed or replaced are closed once the new topology is in force;
//! - the old routes' queues are retired: what waits there is routed again
//!   with the new routes, in the order it waited (a message no route
//!   matches any more fails with `ESME_RINVDSTADR`); a submit under way on
//!   an old route that no connector took comes back through the new routes.
//!
//! The store keeps each connector under `connector/NAME` (its text form,
//! as `--upstream` takes it) and the route table under `routes` (a JSON
//! list of route texts, as `--route` takes them). At start the stored
//! layout is read and the configuration given at start is merged in:
//! configured connectors are added or replace the stored one of the same
//! name; a configured route replaces the stored route with the same match
//! (destination prefix, account, source, pattern, window) in place, or is
//! added at the end.

use std::sync::{Arc, RwLock};

use crate::config::{default_route, GatewayConfig, RouteConfig, UpstreamConfig};
use crate::forward::RouteQueue;
use crate::node::Node;
use crate::routing::Router;
use crate::store::{MessageRecord, Op, StoreError};
use crate::upstream::Connector;

/// The store key of a connector.
fn connector_key(name: &str) -> String {
    format!("connector/{name}")
}

/// The store key of the route table.
const ROUTES_KEY: &str = "routes";

/// One consistent set of connectors, routes and queues.
#[derive(Debug)]
pub(crate) struct Topology {
    pub(crate) connectors: Vec<Arc<Connector>>,
    pub(crate) router: Router,
    /// One per route.
    pub(crate) queues: Vec<RouteQueue>,
}

impl Topology {
    /// None: no connector, no route (before the first install).
    pub(crate) fn empty() -> Topology {
        Topology {
            connectors: Vec::new(),
            router: Router::new(&[], &[]),
            queues: Vec::new(),
        }
    }

    /// The connector named `name`.
    pub(crate) fn connector(&self, name: &str) -> Option<&Arc<Connector>> {
        self.connectors.iter().find(|c| c.name == name)
    }

    /// Whether `adding` more messages on route `route` would pass the
    /// queue limit of every connector it leads to. A connector's queue is
    /// what waits in the queues of all the routes that lead to it (a
    /// message of a route with two connectors counts for both); one
    /// connector without a limit leaves the route open.
    pub(crate) fn route_full(&self, route: usize, adding: usize) -> bool {
        let list = self.router.list(route);
        !list.is_empty()
            && list.iter().all(|&c| {
                let Some(limit) = self.connectors[c].config.queue else {
                    return false;
                };
                let waiting: usize = (0..self.queues.len())
                    .filter(|&r| self.router.list(r).contains(&c))
                    .map(|r| self.queues[r].len())
                    .sum();
                waiting.saturating_add(adding) > limit
            })
    }

    /// The route of a stored message (`None`: unreadable, or no route
    /// matches it).
    pub(crate) fn route_of(&self, record: &MessageRecord) -> Option<usize> {
        let sm = crate::node::stored_sm(&record.submit)?;
        self.router.route_index(
            &record.account,
            &sm.source_addr.to_string_lossy(),
            &sm.destination_addr.to_string_lossy(),
        )
    }
}

/// The configuration behind a topology: what the admin API edits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) upstreams: Vec<UpstreamConfig>,
    /// The explicit routes, in order (empty: one default route over every
    /// upstream, in the order given).
    pub(crate) routes: Vec<RouteConfig>,
}

impl Layout {
    /// The stored layout (items that do not read back are skipped, with an
    /// error in the log).
    pub(crate) fn from_settings(settings: &[(String, String)]) -> Layout {
        let mut layout = Layout::default();
        for (key, value) in settings {
            if let Some(name) = key.strip_prefix("connector/") {
                match value.parse::<UpstreamConfig>() {
                    Ok(u) if u.name == name => layout.upstreams.push(u),
                    Ok(_) => tracing::error!(key, "stored connector under another name: skipped"),
                    Err(e) => {
                        tracing::error!(key, error = %e, "stored connector unreadable: skipped")
                    }
                }
            } else if key == ROUTES_KEY {
                match serde_json::from_str::<Vec<String>>(value) {
                    Ok(texts) => {
                        for text in texts {
                            match text.parse::<RouteConfig>() {
                                Ok(r) => layout.routes.push(r),
                                Err(e) => {
                                    tracing::error!(route = text, error = %e, "stored route unreadable: skipped")
                                }
                            }
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "stored route table unreadable: skipped"),
                }
            }
        }
        layout
    }

    /// `self` with the configuration given at start merged in (see the
    /// module's documentation).
    pub(crate) fn merged(mut self, config: &GatewayConfig) -> Layout {
        for u in &config.upstreams {
            match self.upstreams.iter_mut().find(|s| s.name == u.name) {
                Some(stored) => *stored = u.clone(),
                None => self.upstreams.push(u.clone()),
            }
        }
        for r in &config.routes {
            let key = r.key();
            match self.routes.iter_mut().find(|s| s.key() == key) {
                Some(stored) => *stored = r.clone(),
                None => self.routes.push(r.clone()),
            }
        }
        self
    }

    /// Adds `route`: in place of the route with the same match, else at
    /// `position`, else before the catch-all routes at the end (so that it
    /// can match at all). The implicit default route becomes an explicit
    /// one first (adding a route does not take it away). `true`: added,
    /// `false`: replaced.
    pub(crate) fn add_route(&mut self, route: RouteConfig, position: Option<usize>) -> bool {
        if self.routes.is_empty() {
            self.routes = self.effective_routes();
        }
        let key = route.key();
        if let Some(at) = self.routes.iter().position(|r| r.key() == key) {
            self.routes[at] = route;
            return false;
        }
        let catch_all = |r: &RouteConfig| r.key() == "*";
        let at = position.unwrap_or_else(|| {
            let mut at = self.routes.len();
            while at > 0 && catch_all(&self.routes[at - 1]) {
                at -= 1;
            }
            at
        });
        self.routes.insert(at.min(self.routes.len()), route);
        true
    }

    /// Adds `upstream`, or replaces the connector of its name; `true`: added.
    pub(crate) fn put_connector(&mut self, upstream: UpstreamConfig) -> bool {
        match self.upstreams.iter_mut().find(|u| u.name == upstream.name) {
            Some(existing) => {
                *existing = upstream;
                false
            }
            None => {
                self.upstreams.push(upstream);
                true
            }
        }
    }

    /// The route that sends to connector `name`, if one does.
    pub(crate) fn route_to(&self, name: &str) -> Option<&RouteConfig> {
        self.routes
            .iter()
            .find(|r| r.upstreams().any(|u| u == name))
    }

    /// Removes connector `name`; refused while a route sends to it.
    pub(crate) fn remove_connector(&mut self, name: &str) -> Result<(), String> {
        if let Some(route) = self.route_to(name) {
            return Err(format!(
                "route {} sends to {name}: change the route first",
                route.spec()
            ));
        }
        if !self.upstreams.iter().any(|u| u.name == name) {
            return Err(format!("no connector {name}"));
        }
        self.upstreams.retain(|u| u.name != name);
        Ok(())
    }

    /// Removes the route at `position`.
    pub(crate) fn remove_route(&mut self, position: usize) -> Result<(), String> {
        if position >= self.routes.len() {
            return Err(format!("no route {position}"));
        }
        self.routes.remove(position);
        Ok(())
    }

    /// The routes in force.
    pub(crate) fn effective_routes(&self) -> Vec<RouteConfig> {
        if self.routes.is_empty() {
            vec![default_route(&self.upstreams)]
        } else {
            self.routes.clone()
        }
    }

    /// Unique connector names that the store can keep, routes that name
    /// known connectors.
    pub(crate) fn validate(&self) -> Result<(), String> {
        for (i, u) in self.upstreams.iter().enumerate() {
            if u.name.is_empty() || u.name.contains(['/', '=', ',', ':', '+']) {
                return Err(format!(
                    "bad connector name {:?} (no '/', '=', ',', ':' or '+')",
                    u.name
                ));
            }
            if self.upstreams[..i].iter().any(|o| o.name == u.name) {
                return Err(format!("connector {:?} is given twice", u.name));
            }
            u.check_spec()?;
        }
        for route in &self.routes {
            for name in route.upstreams() {
                if !self.upstreams.iter().any(|u| u.name == name) {
                    return Err(format!(
                        "route {:?} names an unknown connector {name:?}",
                        route.spec()
                    ));
                }
            }
            match route.spec().parse::<RouteConfig>() {
                Ok(back) if back == *route => {}
                _ => {
                    return Err(format!(
                        "route {:?}: a value holds a character the configuration cannot keep",
                        route.spec()
                    ))
                }
            }
        }
        Ok(())
    }

    /// The store writes that turn `before` into `self`.
    pub(crate) fn ops_from(&self, before: &Layout) -> Vec<Op> {
        let mut ops = Vec::new();
        for u in &self.upstreams {
            if !before.upstreams.contains(u) {
                ops.push(Op::PutSetting {
                    key: connector_key(&u.name),
                    value: u.spec(),
                });
            }
        }
        for u in &before.upstreams {
            if !self.upstreams.iter().any(|n| n.name == u.name) {
                ops.push(Op::DeleteSetting(connector_key(&u.name)));
            }
        }
        if self.routes != before.routes {
            let texts: Vec<String> = self.routes.iter().map(RouteConfig::spec).collect();
            ops.push(Op::PutSetting {
                key: ROUTES_KEY.to_owned(),
                value: serde_json::to_string(&texts).unwrap_or_else(|_| "[]".to_owned()),
            });
        }
        ops
    }
}

/// The current layout and topology of a node, and the lock that orders
/// changes.
#[derive(Debug)]
pub(crate) struct Topologies {
    current: RwLock<Arc<Topology>>,
    layout: tokio::sync::Mutex<Layout>,
    /// The tasks of installed topologies (dispatchers, upstream servers).
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Our customers' listeners, once listening (the loop guard).
    pub(crate) listeners: std::sync::OnceLock<Vec<std::net::SocketAddr>>,
}

impl Default for Topologies {
    fn default() -> Self {
        Topologies {
            current: RwLock::new(Arc::new(Topology::empty())),
            layout: tokio::sync::Mutex::default(),
            tasks: std::sync::Mutex::default(),
            listeners: std::sync::OnceLock::new(),
        }
    }
}

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChangeError {
    /// The change does not make a valid layout (nothing changed).
    #[error("{0}")]
    Invalid(String),
    /// The store refused it (nothing changed).
    #[error("cannot store the change: {0}")]
    Store(#[from] StoreError),
}

impl Topologies {
    /// The topology in force.
    pub(crate) fn current(&self) -> Arc<Topology> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The layout in force.
    pub(crate) async fn layout(&self) -> Layout {
        self.layout.lock().await.clone()
    }

    /// Stops the tasks of every installed topology.
    pub(crate) fn abort_tasks(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let tasks = std::mem::take(&mut *crate::node::lock(&self.tasks));
        for t in &tasks {
            t.abort();
        }
        tasks
    }
}

/// Refuses a layout with a connector that binds to this gateway itself
/// (one of `ours`, with one of our accounts): see [`crate::hops`].
pub(crate) fn check_not_self(
    node: &Node,
    layout: &Layout,
    ours: &[std::net::SocketAddr],
) -> Result<(), String> {
    match layout
        .upstreams
        .iter()
        .find(|u| crate::hops::points_at_self(u, ours, |id| node.accounts.contains(id)))
    {
        Some(u) => Err(format!(
            "connector {:?} points at this gateway itself ({} with our account {:?}): a routing loop",
            u.name, u.addr, u.system_id
        )),
        None => Ok(()),
    }
}

/// Changes the layout with `edit`: checked, stored, then in force.
pub(crate) async fn change(
    node: &Arc<Node>,
    edit: impl FnOnce(&mut Layout) -> Result<(), String>,
) -> Result<Layout, ChangeError> {
    let _changing = node.config_lock.lock().await;
    let mut layout = node.topologies.layout.lock().await;
    let mut next = layout.clone();
    edit(&mut next).map_err(ChangeError::Invalid)?;
    next.validate().map_err(ChangeError::Invalid)?;
    if let Some(ours) = node.topologies.listeners.get() {
        check_not_self(node, &next, ours).map_err(ChangeError::Invalid)?;
    }
    // Started before anything is stored: a connector that cannot start
    // (its TLS settings) refuses the change.
    let staged = stage(node, &next).map_err(|e| ChangeError::Invalid(format!("{e:#}")))?;
    let ops = next.ops_from(&layout);
    if !ops.is_empty() {
        if let Err(e) = node.store.write(ops).await {
            discard(staged);
            return Err(e.into());
        }
    }
    install(node, staged);
    *layout = next.clone();
    Ok(next)
}

/// Puts in force a layout another node stored (nothing is written): only
/// when it differs from the one in force.
pub(crate) async fn adopt(node: &Arc<Node>, next: Layout) -> anyhow::Result<()> {
    let mut layout = node.topologies.layout.lock().await;
    if *layout == next {
        return Ok(());
    }
    next.validate().map_err(anyhow::Error::msg)?;
    let staged = stage(node, &next)?;
    install(node, staged);
    tracing::info!("connectors and routes changed on another node: in force here");
    *layout = next;
    Ok(())
}

/// Installs the first layout (at start; it is already stored).
pub(crate) async fn install_first(node: &Arc<Node>, layout: Layout) -> anyhow::Result<()> {
    let mut current = node.topologies.layout.lock().await;
    let staged = stage(node, &layout)?;
    install(node, staged);
    *current = layout;
    Ok(())
}

/// A topology built and not yet in force.
struct Staged {
    topology: Topology,
    /// Connectors started for it, with their inbound requests.
    started: Vec<(Arc<Connector>, Vec<smpp_tokio::Inbound>)>,
}

/// Builds the topology of `layout`: keeps the current connectors whose
/// configuration is the same, starts the others.
fn stage(node: &Node, layout: &Layout) -> anyhow::Result<Staged> {
    let current = node.topologies.current();
    let mut connectors = Vec::with_capacity(layout.upstreams.len());
    let mut started = Vec::new();
    for u in &layout.upstreams {
        match current.connector(&u.name).filter(|c| c.config == *u) {
            Some(kept) => connectors.push(kept.clone()),
            None => match Connector::start(u, node.cluster.as_ref().map(|c| c.slots.clone())) {
                Ok((connector, inbound)) => {
                    let connector = Arc::new(connector);
                    connectors.push(connector.clone());
                    started.push((connector, inbound));
                }
                Err(e) => {
                    discard(Staged {
                        topology: Topology::empty(),
                        started,
                    });
                    return Err(e);
                }
            },
        }
    }
    let names: Vec<String> = connectors.iter().map(|c| c.name.clone()).collect();
    let routes = layout.effective_routes();
    let router = Router::new(&routes, &names);
    let queues = (0..router.len()).map(|_| RouteQueue::default()).collect();
    Ok(Staged {
        topology: Topology {
            connectors,
            router,
            queues,
        },
        started,
    })
}

/// Closes what a staged topology started.
fn discard(staged: Staged) {
    for (connector, _) in staged.started {
        tokio::spawn(async move { connector.close().await });
    }
}

/// Puts `staged` in force: its dispatchers and upstream servers start, the
/// old queues' messages move over, the connectors no longer used close.
fn install(node: &Arc<Node>, staged: Staged) {
    let Staged { topology, started } = staged;
    let topology = Arc::new(topology);
    let old = std::mem::replace(
        &mut *node
            .topologies
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner()),
        topology.clone(),
    );
    let mut tasks = crate::node::lock(&node.topologies.tasks);
    tasks.retain(|t| !t.is_finished());
    for (connector, inbounds) in started {
        for inbound in inbounds {
            tasks.push(tokio::spawn(crate::receipts::serve_upstream(
                node.clone(),
                connector.clone(),
                inbound,
            )));
        }
    }
    for route in 0..topology.queues.len() {
        tasks.push(tokio::spawn(crate::forward::dispatch(
            node.clone(),
            topology.clone(),
            route,
        )));
    }
    drop(tasks);
    // What waited on the old routes, in the order it waited.
    for queue in &old.queues {
        for record in queue.retire() {
            crate::forward::requeue(node, record);
        }
    }
    for connector in &old.connectors {
        if !topology
            .connectors
            .iter()
            .any(|c| Arc::ptr_eq(c, connector))
        {
            tracing::info!(
                connector = connector.name,
                "connector closed (removed or changed)"
            );
            let connector = connector.clone();
            tokio::spawn(async move { connector.close().await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(s: &str) -> UpstreamConfig {
        s.parse().unwrap()
    }

    fn route(s: &str) -> RouteConfig {
        s.parse().unwrap()
    }

    #[test]
    fn configuration_merges_into_what_is_stored() {
        let stored = Layout {
            upstreams: vec![upstream("a=x:y@h:1"), upstream("b=x:y@h:2")],
            routes: vec![route("44=a"), route("*=b")],
        };
        let config = GatewayConfig {
            upstreams: vec![upstream("b=x:z@h:3"), upstream("c=x:y@h:4")],
            routes: vec![route("*=c"), route("33=b")],
            ..GatewayConfig::default()
        };
        let merged = stored.merged(&config);
        assert_eq!(
            merged.upstreams,
            [
                upstream("a=x:y@h:1"),
                upstream("b=x:z@h:3"),
                upstream("c=x:y@h:4")
            ]
        );
        assert_eq!(merged.routes, [route("44=a"), route("*=c"), route("33=b")]);
        merged.validate().unwrap();
    }

    #[test]
    fn the_store_gets_only_what_changed_and_reads_it_back() {
        let before = Layout {
            upstreams: vec![upstream("a=x:y@h:1"), upstream("b=x:y@h:2")],
            routes: Vec::new(),
        };
        let after = Layout {
            upstreams: vec![upstream("a=x:y@h:1"), upstream("c=x:y@h:3,tps=5,tls")],
            routes: vec![
                route("44=a:2+c,rate=0.5,hours=08:00-20:00,days=mon-fri,re=^44\\d{3,}$"),
                route("*=c,a,account=bank,from=INFO"),
            ],
        };
        after.validate().unwrap();
        let ops = after.ops_from(&before);
        assert_eq!(ops.len(), 3, "{ops:?}");
        let mut settings = vec![("connector/a".to_owned(), upstream("a=x:y@h:1").spec())];
        for op in ops {
            match op {
                Op::PutSetting { key, value } => settings.push((key, value)),
                Op::DeleteSetting(key) => assert_eq!(key, "connector/b"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(Layout::from_settings(&settings), after);
    }

    #[test]
    fn an_added_route_keeps_the_default_and_goes_before_the_catch_all() {
        let mut layout = Layout {
            upstreams: vec![upstream("a=x:y@h:1"), upstream("b=x:y@h:2")],
            routes: Vec::new(),
        };
        assert!(layout.add_route(route("44=b"), None));
        assert_eq!(layout.routes, [route("44=b"), route("*=a,b")]);
        assert!(layout.add_route(route("33=a"), None));
        assert_eq!(layout.routes[1], route("33=a"));
        assert!(
            !layout.add_route(route("44=a"), None),
            "the same match: replaced"
        );
        assert_eq!(layout.routes[0], route("44=a"));
        assert!(layout.add_route(route("1=b"), Some(99)));
        assert_eq!(layout.routes.last(), Some(&route("1=b")));
    }

    #[test]
    fn a_route_to_an_unknown_connector_or_a_bad_name_is_refused() {
        let layout = Layout {
            upstreams: vec![upstream("a=x:y@h:1")],
            routes: vec![route("44=b")],
        };
        assert!(layout.validate().unwrap_err().contains("unknown connector"));
        let layout = Layout {
            upstreams: vec![upstream("a/b=x:y@h:1")],
            routes: Vec::new(),
        };
        assert!(layout.validate().is_err());
    }
}
