//! The web dashboard of `smpp gateway`, on the HTTP API's listener, behind
//! the admin token (a browser signs in at `/login`; the token is kept in an
//! `HttpOnly`, `SameSite=Strict` cookie; open when no token is set, which
//! the command line allows on loopback only):
//!
//! - `/`: customers' binds, live counters (accepted and forwarded per
//!   second, receipts, refusals), the chart of the last five minutes;
//! - `/connectors`: each connector's binds up, settings and counters; a
//!   form to add or replace one, a button to remove one;
//! - `/routes`: the route table with the messages each accepted; a form to
//!   add one, a button to remove one;
//! - `/accounts`: accounts with binds, quotas and final states; a form to
//!   add to a balance;
//! - `/messages?id=`: a message's timeline, live while the page is open
//!   (`/ui/events/message?id=`); `/batches?id=`: a batch's progress and
//!   states, with its per-recipient report as CSV.
//!
//! Changes go through the same code as the admin API (stored, in force at
//! once).

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup};
use serde::Deserialize;
use smpp_server::dashboard::{self, given, History};

use crate::config::{RouteConfig, UpstreamConfig};
use crate::http::{batch_report, message_json, quota_json, Api};
use crate::store::{format_id, parse_id, Op};
use crate::topology::{change, Layout};

const PRODUCT: &str = "smpp gateway";

const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/connectors", "Connectors"),
    ("/routes", "Routes"),
    ("/accounts", "Accounts"),
    ("/messages", "Messages"),
    ("/batches", "Batches"),
];

/// What the pages share: the API (its node, its token) and the history.
pub(crate) struct Dashboard {
    api: Arc<Api>,
    history: OnceLock<Arc<History>>,
    rates: dashboard::SessionRates,
    /// Messages forwarded per second, per connector.
    forwarded: dashboard::RateMeter,
}

impl Dashboard {
    pub(crate) fn new(api: Arc<Api>) -> Arc<Dashboard> {
        let d = Arc::new(Dashboard {
            api,
            history: OnceLock::new(),
            rates: dashboard::SessionRates::default(),
            forwarded: dashboard::RateMeter::default(),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            d.history();
        }
        d
    }

    fn history(&self) -> &Arc<History> {
        self.history.get_or_init(|| {
            let node = Arc::downgrade(&self.api.node);
            History::start(move || {
                node.upgrade()
                    .map(|n| n.metrics.snapshot(&n))
                    .unwrap_or_default()
            })
        })
    }

    /// `Ok` with the admin token (bearer or the login cookie), or no token
    /// configured; a browser without it is sent to the form.
    async fn allowed(&self, method: &Method, headers: &HeaderMap) -> Result<(), Response> {
        let Some(token) = &self.api.options.admin_token else {
            return Ok(());
        };
        let presented = crate::http::bearer(headers).or_else(|| dashboard::cookie_token(headers));
        if let Some(t) = presented {
            if token.verify(t.as_bytes()).await {
                return Ok(());
            }
        }
        if *method == Method::GET && dashboard::wants_html(headers) {
            return Err(Redirect::to("/login").into_response());
        }
        Err(crate::http::json_error(
            StatusCode::UNAUTHORIZED,
            "the admin token is required (sign in at /login, or Authorization: Bearer)",
        ))
    }
}

/// The dashboard's routes, to merge into the API's router.
pub(crate) fn routes(api: Arc<Api>) -> Router {
    let d = Dashboard::new(api);
    Router::new()
        .route("/", get(overview))
        .route("/ui/events", get(events))
        .route("/ui/events/message", get(message_events))
        .route("/sessions/{id}/unbind", post(unbind))
        .route("/connectors", get(connectors).post(put_connector))
        .route("/connectors/{name}/delete", post(delete_connector))
        .route("/routes", get(routes_page).post(add_route))
        .route("/routes/{position}/delete", post(delete_route))
        .route("/accounts", get(accounts).post(put_account))
        .route("/accounts/{id}/balance", post(add_balance))
        .route("/messages", get(messages))
        .route("/batches", get(batches))
        .route("/batches/{id}/report.csv", get(batch_csv))
        .route("/login", get(login_form).post(login))
        .with_state(d)
        .merge(dashboard::assets())
}

macro_rules! guard {
    ($d:expr, $method:expr, $headers:expr) => {
        if let Err(r) = $d.allowed(&$method, &$headers).await {
            return r;
        }
    };
}

fn page(active: &str, title: &str, live: bool, body: Markup) -> Response {
    page_live(active, title, live.then_some("/ui/events"), body)
}

/// A page whose live fragments come from the event stream `live`.
fn page_live(active: &str, title: &str, live: Option<&str>, body: Markup) -> Response {
    dashboard::page(PRODUCT, NAV, active, title, live, body).into_response()
}

#[derive(Debug, Default, Deserialize)]
struct Notice {
    ok: Option<String>,
    error: Option<String>,
}

impl Notice {
    fn show(&self) -> Markup {
        html! {
            @if let Some(ok) = &self.ok { (dashboard::notice(true, ok)) }
            @if let Some(error) = &self.error { (dashboard::notice(false, error)) }
        }
    }
}

/// Back to `path` with a notice.
fn back(path: &str, ok: bool, text: &str) -> Response {
    let key = if ok { "ok" } else { "error" };
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair(key, text)
        .finish();
    Redirect::to(&format!("{path}?{query}")).into_response()
}

/// Makes a layout change (as the admin API does: stored, in force at once)
/// and goes back to `path` saying `done`, or why not.
async fn change_then_back(
    d: &Dashboard,
    path: &str,
    done: &str,
    edit: impl FnOnce(&mut Layout) -> Result<(), String>,
) -> Response {
    match change(&d.api.node, edit).await {
        Ok(_) => {
            tracing::info!(done, "configuration changed through the dashboard");
            back(path, true, done)
        }
        Err(e) => back(path, false, &e.to_string()),
    }
}

async fn live_fragments(d: &Dashboard) -> Vec<(&'static str, Markup)> {
    let sessions = d.rates.rows(d.api.node.binds.list()).await;
    let node = &d.api.node;
    let samples = d.history().samples();
    let snapshot = node.metrics.snapshot(node);
    let topology = node.topologies.current();
    let up: usize = topology.connectors.iter().filter(|c| c.is_up()).count();
    let rate = |v: Option<f64>| v.map_or_else(|| "0".to_owned(), |v| format!("{v:.0}"));
    let last = samples.last();
    let refused: u64 = snapshot.errors.iter().map(|(_, n)| n).sum();
    vec![
        (
            "traffic",
            html! {
                (dashboard::cards(&[
                    ("Customer binds", snapshot.sessions_open.to_string()),
                    ("Accepted /s", rate(last.map(|s| s.in_rate))),
                    ("Forwarded /s", rate(last.map(|s| s.out_rate))),
                    ("Accepted", snapshot.messages_in.to_string()),
                    ("Queued", node.forwarding_count().to_string()),
                    ("Receipts matched", snapshot.receipts_sent.to_string()),
                    ("Receipts owed", snapshot.receipts_pending.to_string()),
                    ("Connectors up", format!("{up} / {}", topology.connectors.len())),
                    ("Refused", refused.to_string()),
                ]))
                @if !snapshot.errors.is_empty() {
                    h2 { "Refused, by reason" }
                    table {
                        thead { tr { th { "Reason" } th { "Submissions" } } }
                        tbody { @for (r, n) in &snapshot.errors { tr { td { (r) } td.num { (n) } } } }
                    }
                }
            },
        ),
        ("chart", dashboard::chart(&samples)),
        ("sessions", dashboard::sessions_table(&sessions, true)),
        ("connectors", connectors_table(d)),
    ]
}

fn fragment(fragments: &[(&'static str, Markup)], id: &str) -> Markup {
    fragments
        .iter()
        .find(|(i, _)| *i == id)
        .map_or_else(|| html! {}, |(_, m)| m.clone())
}

async fn overview(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
    Query(notice): Query<Notice>,
) -> Response {
    guard!(d, method, headers);
    let f = live_fragments(&d).await;
    page(
        "/",
        "Overview",
        true,
        html! {
            (notice.show())
            section aria-labelledby="traffic-h" {
                h2 #traffic-h { "Traffic" }
                div #traffic { (fragment(&f, "traffic")) }
            }
            section aria-labelledby="chart-h" {
                h2 #chart-h { "Last five minutes" }
                p.muted { "Accepted and forwarded per second; the time a submission takes to be stored (or refused)." }
                div.chart #chart { (fragment(&f, "chart")) }
            }
            section aria-labelledby="sessions-h" {
                h2 #sessions-h { "Customers bound" }
                div #sessions { (fragment(&f, "sessions")) }
            }
        },
    )
}

async fn events(State(d): State<Arc<Dashboard>>, method: Method, headers: HeaderMap) -> Response {
    guard!(d, method, headers);
    let sse = dashboard::live(move || {
        let d = d.clone();
        async move { live_fragments(&d).await }
    });
    ([(header::CACHE_CONTROL, "no-store")], sse).into_response()
}

async fn unbind(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    guard!(d, method, headers);
    if d.api.node.binds.unbind(id) {
        back("/", true, "The bind was sent an unbind.")
    } else {
        back("/", false, "That bind is gone.")
    }
}

fn connectors_table(d: &Dashboard) -> Markup {
    let topology = d.api.node.topologies.current();
    html! {
        @if topology.connectors.is_empty() {
            p.empty { "No connector." }
        } @else {
            div.scroll {
                table {
                    thead { tr {
                        th { "Name" } th { "Address" } th { "Binds up" } th { "Window" } th { "TPS" }
                        th { "Forwarded /s" } th { "Forwarded" } th { "Refused" } th { span.muted { "Action" } }
                    } }
                    tbody {
                        @for c in &topology.connectors {
                            tr data-connector=(c.name) {
                                td { (c.name) }
                                td { (c.config.addr) @if c.config.tls { " (TLS)" } }
                                td.num data-up=(c.bound()) {
                                    (c.bound()) " / " (c.slots())
                                    @if c.config.bind != crate::config::ConnectorBind::Transceiver { " " span.muted { (c.config.bind.as_str()) } }
                                }
                                td.num { (c.config.window) }
                                td.num { (c.config.tps.map_or_else(|| "-".to_owned(), |t| t.to_string())) }
                                @let forwarded = c.forwarded.load(std::sync::atomic::Ordering::Relaxed);
                                td.num { (d.forwarded.rate(&c.name, forwarded).map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"))) }
                                td.num { (forwarded) }
                                td.num { (c.refused.load(std::sync::atomic::Ordering::Relaxed)) }
                                td {
                                    form method="post" action=(format!("/connectors/{}/delete", c.name)) {
                                        button.secondary type="submit" aria-label=(format!("Remove {}", c.name)) { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn connectors(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
    Query(notice): Query<Notice>,
) -> Response {
    guard!(d, method, headers);
    page(
        "/connectors",
        "Connectors",
        true,
        html! {
            (notice.show())
            div #connectors { (connectors_table(&d)) }
            h2 { "Add or replace a connector" }
            form.stack method="post" action="/connectors" {
                label { "Name" input name="name" required pattern="[^/=,:+]+" maxlength="32"; }
                label { "SMSC address (host:port)" input name="address" required placeholder="smsc.example:2775"; }
                label { "system_id" input name="system_id" required maxlength="15"; }
                label { "Password" input name="password" type="password" required maxlength="8"; }
                label { "Binds" input name="binds" type="number" min="1" value="1"; }
                label { "Window" input name="window" type="number" min="1" value="64"; }
                label { "TPS (empty: no limit)" input name="tps" type="number" min="1"; }
                label { "Queue limit (empty: the global one)" input name="queue" type="number" min="1"; }
                label {
                    "Bind kind"
                    select name="bind" {
                        @for kind in ["trx", "tx", "rx", "tx+rx"] { option value=(kind) { (kind) } }
                    }
                }
                label {
                    "Message ids"
                    select name="ids" {
                        @for ids in ["text", "hex", "decimal", "auto", "hex/decimal"] { option value=(ids) { (ids) } }
                    }
                }
                label { "Sender override (empty: the customer's)" input name="source" maxlength="20"; }
                label.check { input name="tls" type="checkbox" value="on"; "TLS" }
                button type="submit" { "Save connector" }
            }
        },
    )
}

/// The connector form's fields (all text, as forms send them).
#[derive(Debug, Deserialize)]
struct ConnectorForm {
    name: String,
    address: String,
    system_id: String,
    password: String,
    #[serde(default)]
    binds: String,
    #[serde(default)]
    window: String,
    #[serde(default)]
    tps: String,
    #[serde(default)]
    ids: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    queue: String,
    #[serde(default)]
    bind: String,
    tls: Option<String>,
}

impl ConnectorForm {
    fn upstream(&self) -> Result<UpstreamConfig, String> {
        UpstreamConfig::from_fields(
            &self.name,
            &self.system_id,
            &self.password,
            &self.address,
            &[
                ("binds", self.binds.clone()),
                ("window", self.window.clone()),
                ("tps", self.tps.clone()),
                ("ids", self.ids.clone()),
                ("source", self.source.clone()),
                ("queue", self.queue.clone()),
                ("bind", self.bind.clone()),
            ],
            self.tls.is_some(),
        )
    }
}

async fn put_connector(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
    Form(form): Form<ConnectorForm>,
) -> Response {
    guard!(d, method, headers);
    let upstream = match form.upstream() {
        Ok(u) => u,
        Err(e) => return back("/connectors", false, &e),
    };
    let done = format!("Connector {} saved.", upstream.name);
    change_then_back(&d, "/connectors", &done, |layout: &mut Layout| {
        layout.put_connector(upstream);
        Ok(())
    })
    .await
}

async fn delete_connector(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    guard!(d, method, headers);
    let done = format!("Connector {name} removed.");
    change_then_back(&d, "/connectors", &done, |layout: &mut Layout| {
        layout.remove_connector(&name)
    })
    .await
}

async fn routes_page(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
    Query(notice): Query<Notice>,
) -> Response {
    guard!(d, method, headers);
    let layout = d.api.node.topologies.layout().await;
    let topology = d.api.node.topologies.current();
    let implicit = layout.routes.is_empty();
    let routes = layout.effective_routes();
    page(
        "/routes",
        "Routes",
        false,
        html! {
            (notice.show())
            p.muted { "First match wins. Each route is a list of tiers that fail over in order; the connectors of a tier share it by weight." }
            div.scroll {
                table {
                    thead { tr { th { "#" } th { "Route" } th { "Accepted" } th { span.muted { "Action" } } } }
                    tbody {
                        @for (i, r) in routes.iter().enumerate() {
                            tr data-route=(r.spec()) {
                                td.num { (i) }
                                td { code { (r.spec()) } @if implicit { " " span.muted { "(the default: no route is set)" } } }
                                td.num { (topology.router.hits(i)) }
                                td {
                                    @if !implicit {
                                        form method="post" action=(format!("/routes/{i}/delete")) {
                                            button.secondary type="submit" aria-label=(format!("Remove route {i}")) { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Add a route" }
            form.stack method="post" action="/routes" {
                label {
                    "Route, as --route takes it"
                    input name="route" required placeholder="447=vip,a:3+b,rate=0.04,hours=08:00-20:00";
                }
                label { "Position (empty: before the catch-all routes)" input name="position" type="number" min="0"; }
                button type="submit" { "Add route" }
            }
        },
    )
}

#[derive(Debug, Deserialize)]
struct RouteForm {
    route: String,
    #[serde(default)]
    position: String,
}

async fn add_route(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
    Form(form): Form<RouteForm>,
) -> Response {
    guard!(d, method, headers);
    let route: RouteConfig = match form.route.trim().parse() {
        Ok(r) => r,
        Err(e) => return back("/routes", false, &format!("Route {:?}: {e}", form.route)),
    };
    let position = form.position.trim().parse::<usize>().ok();
    let done = format!("Route {} saved.", route.spec());
    change_then_back(&d, "/routes", &done, |layout: &mut Layout| {
        layout.add_route(route, position);
        Ok(())
    })
    .await
}

async fn delete_route(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
    Path(position): Path<usize>,
) -> Response {
    guard!(d, method, headers);
    let done = format!("Route {position} removed.");
    change_then_back(&d, "/routes", &done, |layout: &mut Layout| {
        layout.remove_route(position)
    })
    .await
}

async fn accounts(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
    Query(notice): Query<Notice>,
) -> Response {
    guard!(d, method, headers);
    let node = &d.api.node;
    let counters = node.metrics.accounts();
    let (tps, per_sender) = node.rate_limits();
    let limit = |v: Option<String>| v.unwrap_or_else(|| "none".to_owned());
    page(
        "/accounts",
        "Accounts",
        false,
        html! {
            (notice.show())
            p data-limits {
                "Limits per account: binds " (limit(node.max_binds.map(|n| n.to_string())))
                ", SMS parts per second " (limit(tps.map(|n| n.to_string())))
                ", per sender " (limit(per_sender.map(|n| n.to_string())))
                ", receipts owed " (node.max_owed) "."
            }
            div.scroll {
                table {
                    thead { tr {
                        th { "system_id" } th { "Binds" } th { "Balance" } th { "SMS left" }
                        th { "Accepted" } th { "Parts" } th { "Final states" } th { "Allowed from" }
                        th { span.muted { "Add to the balance" } }
                    } }
                    tbody {
                        @for a in node.accounts.list() {
                            @let quota = quota_json(node.billing.quota(&a.system_id));
                            @let c = counters.iter().find(|c| c.account == a.system_id);
                            tr data-account=(a.system_id) {
                                td { (a.system_id) }
                                td.num { (node.binds.count(&a.system_id)) }
                                td.num data-balance { (quota["balance"].as_str().unwrap_or("unlimited")) }
                                td.num { (quota["sms"].as_i64().map_or_else(|| "unlimited".to_owned(), |n| n.to_string())) }
                                td.num { (c.map_or(0, |c| c.accepted)) }
                                td.num { (c.map_or(0, |c| c.parts)) }
                                td {
                                    @if let Some(c) = c {
                                        @for (state, n) in &c.finals { (state) " " (n) " " }
                                    }
                                }
                                td { @if a.allow.is_empty() { "anywhere" } @else { (a.allow.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")) } }
                                td {
                                    form method="post" action=(format!("/accounts/{}/balance", a.system_id)) {
                                        input name="add" size="7" placeholder="10.50" aria-label=(format!("Amount to add to {}", a.system_id));
                                        " "
                                        button.secondary type="submit" { "Add" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Add or replace an account" }
            form.stack method="post" action="/accounts" {
                label { "system_id" input name="system_id" required maxlength="15"; }
                label { "Password (stored as an argon2id hash)" input name="password" type="password" required; }
                label { "Allowed networks (comma-separated; empty: anywhere)" input name="allow" placeholder="10.0.0.0/8, 192.0.2.7"; }
                button type="submit" { "Save account" }
            }
            p.muted { "Removed through the admin API (DELETE /api/v1/admin/accounts/{id})." }
        },
    )
}

#[derive(Debug, Deserialize)]
struct AccountForm {
    system_id: String,
    password: String,
    #[serde(default)]
    allow: String,
}

async fn put_account(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    guard!(d, method, headers);
    let id = form.system_id.trim().to_owned();
    let request = crate::http::AccountRequest {
        password: form.password,
        allow: form
            .allow
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect(),
        certificate_name: None,
    };
    match crate::http::put_account(&d.api.node, &id, request).await {
        Ok(true) => back("/accounts", true, &format!("Account {id} created.")),
        Ok(false) => back("/accounts", true, &format!("Account {id} replaced.")),
        Err((_, e)) => back("/accounts", false, &e),
    }
}

#[derive(Debug, Deserialize)]
struct BalanceForm {
    add: String,
}

async fn add_balance(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
    Path(account): Path<String>,
    Form(form): Form<BalanceForm>,
) -> Response {
    guard!(d, method, headers);
    let node = &d.api.node;
    if !node.accounts.contains(&account) {
        return back("/accounts", false, &format!("No account {account}."));
    }
    let amount = match crate::billing::parse_money(form.add.trim()) {
        Ok(a) if a > 0 => a,
        _ => return back("/accounts", false, "A positive amount, e.g. 10.50."),
    };
    if node.billing.quota(&account).balance.is_none() {
        return back(
            "/accounts",
            false,
            &format!("{account}'s balance is unlimited: set one through the admin API first."),
        );
    }
    let _changing = node.config_lock.lock().await;
    // A charge of minus the amount: applied in commit order, as charges are.
    let op = Op::Charge {
        account: account.clone(),
        balance: -amount,
        sms: 0,
    };
    if let Err(e) = node.store.write(vec![op]).await {
        return back("/accounts", false, &format!("Cannot store it: {e}"));
    }
    node.billing.refund(
        &account,
        &crate::billing::Charge {
            price: 0,
            balance: amount,
            sms: 0,
        },
    );
    tracing::info!(account, "balance added to through the dashboard");
    back(
        "/accounts",
        true,
        &format!(
            "Added {} to {account}.",
            crate::billing::format_money(amount)
        ),
    )
}

#[derive(Debug, Default, Deserialize)]
struct Lookup {
    id: Option<String>,
    address: Option<String>,
    account: Option<String>,
    state: Option<String>,
    /// Minutes back (empty: any time).
    within: Option<String>,
}

/// Messages a search looks at (the newest) and shows, at most.
const SEARCH_SCAN: usize = 50_000;
const SEARCH_LIMIT: usize = 200;

const STATES: &[&str] = &[
    "ACCEPTED", "ENROUTE", "DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "DELETED", "UNKNOWN",
];

async fn messages(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
    Query(lookup): Query<Lookup>,
) -> Response {
    guard!(d, method, headers);
    let id_text = given(&lookup.id);
    let id = id_text.as_deref();
    let found = match id.and_then(parse_id) {
        Some(n) => Some(d.api.node.store.message(n).await.ok().flatten()),
        None => id.map(|_| None),
    };
    let (address, account, state) = (
        given(&lookup.address),
        given(&lookup.account),
        given(&lookup.state),
    );
    let since = given(&lookup.within)
        .and_then(|m| m.parse::<u64>().ok())
        .map(|minutes| crate::node::now_ms().saturating_sub(minutes * 60_000));
    let results = if id.is_none() && lookup.within.is_some() {
        let matches = |r: &crate::store::MessageRecord| {
            if account.as_deref().is_some_and(|a| r.account != a)
                || since.is_some_and(|t| r.accepted_ms < t)
            {
                return false;
            }
            let view = message_json(r);
            state.as_deref().is_none_or(|s| {
                view["state"]
                    .as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case(s))
            }) && address.as_deref().is_none_or(|a| {
                ["from", "to"]
                    .iter()
                    .any(|k| view[*k].as_str().is_some_and(|v| v.contains(a)))
            })
        };
        Some(
            d.api
                .node
                .store
                .recent(SEARCH_SCAN, SEARCH_LIMIT, &matches)
                .await
                .unwrap_or_default(),
        )
    } else {
        None
    };
    let (within, state_word) = (
        given(&lookup.within).unwrap_or_default(),
        state.clone().unwrap_or_default(),
    );
    let time = |ms: u64| {
        smpp_server::cdr::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
    };
    // A message found: its timeline stays live (its receipt may be on the way).
    let live = match (id, &found) {
        (Some(id), Some(Some(_))) => Some(format!(
            "/ui/events/message?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("id", id)
                .finish()
        )),
        _ => None,
    };
    page_live(
        "/messages",
        "Messages",
        live.as_deref(),
        html! {
            form.stack method="get" action="/messages" role="search" {
                label { "Message id (as the customer got it)" input type="search" name="id" value=[id] required; }
                button type="submit" { "Find" }
            }
            h2 { "Search the recent messages" }
            (dashboard::search_form("/messages", &dashboard::Search {
                address: address.as_deref(),
                account: account.as_deref(),
                state: &state_word,
                within: &within,
            }, STATES))
            @if let Some(results) = &results {
                h2 { "Found " (results.len()) @if results.len() == SEARCH_LIMIT { " (the newest " (SEARCH_LIMIT) ")" } }
                @if results.is_empty() {
                    p.empty { "No recent message matches." }
                } @else {
                    div.scroll { table.results {
                        thead { tr { th { "Id" } th { "Account" } th { "From" } th { "To" } th { "State" } th { "Upstream" } th { "Accepted" } } }
                        tbody {
                            @for r in results {
                                @let v = message_json(r);
                                @let mid = v["id"].as_str().unwrap_or("").to_owned();
                                tr data-message=(mid) {
                                    td { a href=(format!("/messages?id={mid}")) { (mid) } }
                                    td { (r.account) }
                                    td { (v["from"].as_str().unwrap_or("")) }
                                    td { (v["to"].as_str().unwrap_or("")) }
                                    td { (v["state"].as_str().unwrap_or("")) }
                                    td { (v["upstream"].as_str().unwrap_or("-")) }
                                    td { (time(r.accepted_ms)) }
                                }
                            }
                        }
                    } }
                }
            }
            @match (id, found) {
                (Some(id), Some(None)) | (Some(id), None) => (dashboard::notice(false, &format!("No message {id}."))),
                (_, Some(Some(record))) => div #message { (message_view(&record)) },
                _ => {}
            }
        },
    )
}

/// A message's fields and its timeline.
fn message_view(record: &crate::store::MessageRecord) -> Markup {
    let time = |ms: u64| {
        smpp_server::cdr::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
    };
    let view = message_json(record);
    html! {
        h2 { "Message " (view["id"].as_str().unwrap_or("")) }
        div.scroll { table.message { tbody {
            @for key in ["account", "from", "to", "state", "parts", "charge", "upstream", "upstream_id", "batch"] {
                tr { th scope="row" { (key) } td data-field=(key) { (match &view[key] { serde_json::Value::String(s) => s.clone(), serde_json::Value::Null => "-".to_owned(), v => v.to_string() }) } }
            }
        } } }
        h2 { "Timeline" }
        ol.timeline {
            @for step in view["history"].as_array().into_iter().flatten() {
                li data-event=(step["state"].as_str().unwrap_or("")) {
                    (step["state"].as_str().unwrap_or("")) " "
                    span.muted { (step["at_ms"].as_u64().map(time).unwrap_or_default()) }
                    @if let Some(up) = step["upstream"].as_str() { " to " (up) " as " (step["upstream_id"].as_str().unwrap_or("?")) }
                    @if let Some(e) = step["error"].as_str() { " error " (e) }
                }
            }
        }
    }
}

/// One message's view, every second, for its page (`/messages?id=ID`).
async fn message_events(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
    Query(lookup): Query<Lookup>,
) -> Response {
    guard!(d, method, headers);
    let Some(id) = given(&lookup.id).as_deref().and_then(parse_id) else {
        return (StatusCode::BAD_REQUEST, "no message id").into_response();
    };
    let sse = dashboard::live(move || {
        let d = d.clone();
        async move {
            match d.api.node.store.message(id).await {
                Ok(Some(record)) => vec![("message", message_view(&record))],
                // Gone, or the store cannot say now: the page keeps what it shows.
                _ => Vec::new(),
            }
        }
    });
    ([(header::CACHE_CONTROL, "no-store")], sse).into_response()
}

async fn batches(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
    Query(lookup): Query<Lookup>,
) -> Response {
    guard!(d, method, headers);
    let id = lookup
        .id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let report = match id.and_then(parse_id) {
        Some(n) => batch_report(&d.api.node, n, None).await.ok().flatten(),
        None => None,
    };
    page(
        "/batches",
        "Batches",
        false,
        html! {
            form.stack method="get" action="/batches" role="search" {
                label { "Batch id (from POST /api/v1/batches)" input type="search" name="id" value=[id] required; }
                button type="submit" { "Show" }
            }
            @if let (Some(id), None) = (id, &report) {
                (dashboard::notice(false, &format!("No batch {id}.")))
            }
            @if let Some(r) = &report {
                @let total = r["messages"].as_u64().unwrap_or(0);
                @let done = r["final"].as_u64().unwrap_or(0);
                h2 { "Batch " (r["batch"].as_str().unwrap_or("")) " of " (r["account"].as_str().unwrap_or("")) }
                (dashboard::cards(&[
                    ("Recipients", r["recipients"].to_string()),
                    ("Messages", total.to_string()),
                    ("Final", format!("{done} ({}%)", (done * 100).checked_div(total).unwrap_or(100))),
                ]))
                p { progress max=(total.max(1)) value=(done) aria-label="Messages final" {} }
                h2 { "States" }
                table {
                    thead { tr { th { "State" } th { "Messages" } } }
                    tbody {
                        @for (state, n) in r["states"].as_object().into_iter().flatten() {
                            tr data-state=(state) { td { (state) } td.num { (n) } }
                        }
                    }
                }
                p { a href=(format!("/batches/{}/report.csv", r["batch"].as_str().unwrap_or(""))) download { "Per-recipient report (CSV)" } }
            }
        },
    )
}

/// A CSV field, quoted when it needs to be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

async fn batch_csv(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    guard!(d, method, headers);
    let Some(report) = (match parse_id(&id) {
        Some(n) => batch_report(&d.api.node, n, None).await.ok().flatten(),
        None => None,
    }) else {
        return crate::http::json_error(StatusCode::NOT_FOUND, "no such batch");
    };
    let mut csv = String::from("to,part,message_id,state\n");
    for recipient in report["report"].as_array().into_iter().flatten() {
        let to = recipient["to"].as_str().unwrap_or("");
        for (i, part) in recipient["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let _ = writeln!(
                csv,
                "{},{},{},{}",
                csv_field(to),
                i + 1,
                csv_field(part["id"].as_str().unwrap_or("")),
                csv_field(part["state"].as_str().unwrap_or(""))
            );
        }
    }
    let name = format!(
        "attachment; filename=\"batch-{}.csv\"",
        format_id(parse_id(&id).unwrap_or(0))
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        csv,
    )
        .into_response()
}

async fn login_form() -> Markup {
    dashboard::login_page(PRODUCT, None)
}

async fn login(State(d): State<Arc<Dashboard>>, body: Bytes) -> Response {
    let token = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let Some(expected) = &d.api.options.admin_token else {
        return Redirect::to("/").into_response();
    };
    if expected.verify(token.as_bytes()).await {
        if let Some(cookie) = dashboard::token_cookie(&token, true) {
            let mut response = Redirect::to("/").into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            return response;
        }
    }
    // Wrong guesses cost time (the token may be a cheap comparison).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    (
        StatusCode::UNAUTHORIZED,
        dashboard::login_page(PRODUCT, Some("Wrong token.")),
    )
        .into_response()
}
