//! The admin API's connectors and routes: listed, created, changed and
//! removed while the gateway runs (see [`crate::topology`] for what a change
//! does to the binds and the queues). Every change is stored before it is
//! answered, so it survives a restart.
//!
//! - `GET /api/v1/admin/connectors`: each connector's settings (no
//!   password), binds up and counters.
//! - `PUT /api/v1/admin/connectors/{name}`: creates or replaces one
//!   (`{"system_id", "password", "address": "HOST:PORT", "binds", "window",
//!   "tps", "ids", "system_type", "tls", "ca", "source", "queue", "bind"}`, the options of
//!   `--upstream`); a connector whose settings do not change keeps its binds.
//! - `DELETE /api/v1/admin/connectors/{name}`: refused (409) while a route
//!   names it.
//! - `GET /api/v1/admin/routes`: the route table in order (with
//!   `"implicit": true` for the default route when none is set).
//! - `PUT /api/v1/admin/routes` (`{"routes": ["44=a,b", "*=c"]}`): the whole
//!   table, in `--route`'s text form; `POST` (`{"route": "...",
//!   "position": N}`) adds one (replacing the route with the same match in
//!   place, else at `position`, by default before the catch-all routes at
//!   the end; the implicit default route is kept as an explicit one); `DELETE
//!   /api/v1/admin/routes/{position}` removes one.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::config::{RouteConfig, UpstreamConfig};
use crate::http::{json_error, parse_json, Api};
use crate::topology::{change, ChangeError, Layout};

fn change_error(e: &ChangeError) -> Response {
    match e {
        ChangeError::Invalid(message) => json_error(StatusCode::BAD_REQUEST, message),
        ChangeError::Store(_) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn connector_json(api: &Api, u: &UpstreamConfig) -> serde_json::Value {
    let topology = api.node.topologies.current();
    let live = topology.connector(&u.name);
    let ids = u.spec();
    let ids = ids
        .split(',')
        .find_map(|o| o.strip_prefix("ids="))
        .unwrap_or("text/text");
    serde_json::json!({
        "name": u.name,
        "system_id": u.system_id,
        "address": u.addr,
        "binds": u.binds,
        "binds_up": live.map_or(0, |c| c.bound()),
        "window": u.window,
        "tps": u.tps,
        "ids": ids,
        "system_type": u.system_type,
        "tls": u.tls,
        "ca": u.ca.as_ref().map(|p| p.display().to_string()),
        "source": u.source,
        "queue": u.queue,
        "bind": u.bind.as_str(),
        "forwarded": live.map_or(0, |c| c.forwarded.load(std::sync::atomic::Ordering::Relaxed)),
        "refused": live.map_or(0, |c| c.refused.load(std::sync::atomic::Ordering::Relaxed)),
    })
}

pub(crate) async fn list_connectors(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Err(r) = api.admin(&headers).await {
        return r;
    }
    let layout = api.node.topologies.layout().await;
    let connectors: Vec<serde_json::Value> = layout
        .upstreams
        .iter()
        .map(|u| connector_json(&api, u))
        .collect();
    Json(serde_json::json!({ "connectors": connectors })).into_response()
}

/// The body of `PUT /api/v1/admin/connectors/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectorRequest {
    system_id: String,
    password: String,
    /// `HOST:PORT`.
    address: String,
    binds: Option<u32>,
    window: Option<u32>,
    tps: Option<u32>,
    /// `text`, `hex`, `decimal`, `auto`, or `SUBMIT/RECEIPT`.
    ids: Option<String>,
    system_type: Option<String>,
    #[serde(default)]
    tls: bool,
    ca: Option<String>,
    source: Option<String>,
    /// The most messages that may wait for this connector.
    queue: Option<u32>,
    /// `trx` (default), `tx`, `rx` or `tx+rx`.
    bind: Option<String>,
}

impl ConnectorRequest {
    fn upstream(&self, name: &str) -> Result<UpstreamConfig, String> {
        let number = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        UpstreamConfig::from_fields(
            name,
            &self.system_id,
            &self.password,
            &self.address,
            &[
                ("binds", number(self.binds)),
                ("window", number(self.window)),
                ("tps", number(self.tps)),
                ("ids", text(&self.ids)),
                ("system_type", text(&self.system_type)),
                ("ca", text(&self.ca)),
                ("source", text(&self.source)),
                ("queue", number(self.queue)),
                ("bind", text(&self.bind)),
            ],
            self.tls,
        )
    }
}

pub(crate) async fn put_connector(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = api.admin(&headers).await {
        return r;
    }
    let request: ConnectorRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let upstream = match request.upstream(&name) {
        Ok(u) => u,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e),
    };
    let mut created = false;
    let result = change(&api.node, |layout: &mut Layout| {
        created = layout.put_connector(upstream.clone());
        Ok(())
    })
    .await;
    match result {
        Ok(_) => {
            tracing::info!(
                connector = name,
                created,
                "connector set through the admin API"
            );
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(connector_json(&api, &upstream))).into_response()
        }
        Err(e) => change_error(&e),
    }
}

pub(crate) async fn delete_connector(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if let Err(r) = api.admin(&headers).await {
        return r;
    }
    let layout = api.node.topologies.layout().await;
    if !layout.upstreams.iter().any(|u| u.name == name) {
        return json_error(StatusCode::NOT_FOUND, "no such connector");
    }
    if let Some(route) = layout.route_to(&name) {
        return json_error(
            StatusCode::CONFLICT,
            &format!(
                "route {:?} sends to this connector: change the route first",
                route.spec()
            ),
        );
    }
    let result = change(&api.node, |layout: &mut Layout| {
        layout.remove_connector(&name)
    })
    .await;
    match result {
        Ok(_) => {
            tracing::info!(connector = name, "connector removed through the admin API");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => change_error(&e),
    }
}

fn routes_json(layout: &Layout) -> serde_json::Value {
    let implicit = layout.routes.is_empty();
    let routes: Vec<serde_json::Value> = layout
        .effective_routes()
        .iter()
        .enumerate()
        .map(|(position, r)| {
            serde_json::json!({
                "position": position,
                "route": r.spec(),
                "implicit": implicit,
            })
        })
        .collect();
    serde_json::json!({ "routes": routes })
}

pub(crate) async fn list_routes(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Err(r) = api.admin(&headers).await {
        return r;
    }
    Json(routes_json(&api.node.topologies.layout().await)).into_response()
}

fn parse_routes(texts: &[String]) -> Result<Vec<RouteConfig>, String> {
    texts
        .iter()
        .map(|t| t.parse().map_err(|e| format!("route {t:?}: {e}")))
        .collect()
}

/// The body of `PUT /api/v1/admin/routes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesRequest {
    routes: Vec<String>,
}

pub(crate) async fn put_routes(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = api.admin(&headers).await {
        return r;
    }
    let request: RoutesRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let routes = match parse_routes(&request.routes) {
        Ok(r) => r,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e),
    };
    let result = change(&api.node, |layout: &mut Layout| {
        layout.routes = routes;
        Ok(())
    })
    .await;
    match result {
        Ok(layout) => {
            tracing::info!(
                routes = layout.routes.len(),
                "route table set through the admin API"
            );
            Json(routes_json(&layout)).into_response()
        }
        Err(e) => change_error(&e),
    }
}

/// The body of `POST /api/v1/admin/routes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteRequest {
    route: String,
    position: Option<usize>,
}

pub(crate) async fn post_route(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = api.admin(&headers).await {
        return r;
    }
    let request: RouteRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let route: RouteConfig = match request.route.parse() {
        Ok(r) => r,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e),
    };
    let mut created = false;
    let result = change(&api.node, |layout: &mut Layout| {
        created = layout.add_route(route.clone(), request.position);
        Ok(())
    })
    .await;
    match result {
        Ok(layout) => {
            tracing::info!(
                route = route.spec(),
                created,
                "route set through the admin API"
            );
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(routes_json(&layout))).into_response()
        }
        Err(e) => change_error(&e),
    }
}

pub(crate) async fn delete_route(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(position): Path<usize>,
) -> Response {
    if let Err(r) = api.admin(&headers).await {
        return r;
    }
    let mut found = false;
    let result = change(&api.node, |layout: &mut Layout| {
        if position < layout.routes.len() {
            found = true;
            layout.routes.remove(position);
        }
        Ok(())
    })
    .await;
    match result {
        Ok(_) if !found => json_error(StatusCode::NOT_FOUND, "no route at that position"),
        Ok(layout) => {
            tracing::info!(position, "route removed through the admin API");
            Json(routes_json(&layout)).into_response()
        }
        Err(e) => change_error(&e),
    }
}
