//! The web dashboard of `smpp serve`, on the HTTP API's listener:
//!
//! - `/`: the bound sessions at a glance, live counters, the chart of
//!   messages per second and answer times over the last five minutes;
//! - `/sessions`: every bound session, with a button to unbind it;
//! - `/messages?id=ID`: a message's state and timeline, live until the
//!   page is closed (a receipt shows up without a reload);
//! - `/mo`: a form that injects a mobile-originated message to a bound ESME;
//! - `/login`: the token form (when the API has a token), which keeps the
//!   token in an `HttpOnly`, `SameSite=Strict` cookie.
//!
//! The pages are server-rendered ([`smpp_server::dashboard`]); `/ui/events`
//! streams their live fragments, `/ui/events/message?id=ID` a message's.

use std::sync::{Arc, OnceLock};

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup};
use serde::Deserialize;
use smpp_server::dashboard::{self, given, History};

use super::http::{Backend, MoRequest};

const PRODUCT: &str = "smpp serve";

const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/sessions", "Sessions"),
    ("/messages", "Messages"),
    ("/mo", "Inject MO"),
    ("/simulator", "Simulator"),
];

/// What the dashboard's handlers share.
pub(crate) struct Dashboard<B> {
    pub(crate) backend: Arc<B>,
    history: OnceLock<Arc<History>>,
    rates: dashboard::SessionRates,
}

impl<B: Backend> Dashboard<B> {
    pub(crate) fn new(backend: Arc<B>) -> Arc<Self> {
        let dashboard = Arc::new(Dashboard {
            backend,
            history: OnceLock::new(),
            rates: dashboard::SessionRates::default(),
        });
        // Sampling starts with the server when there is a runtime (the
        // chart covers the time before the first visit), else at the first.
        if tokio::runtime::Handle::try_current().is_ok() {
            dashboard.history();
        }
        dashboard
    }

    fn history(&self) -> &Arc<History> {
        self.history.get_or_init(|| {
            let backend = Arc::downgrade(&self.backend);
            History::start(move || backend.upgrade().map(|b| b.snapshot()).unwrap_or_default())
        })
    }
}

/// The dashboard's routes, to merge into the API's router.
pub(crate) fn routes<B: Backend>(dashboard: Arc<Dashboard<B>>) -> Router {
    Router::new()
        .route("/", get(overview::<B>))
        .route("/sessions", get(sessions::<B>))
        .route("/sessions/{id}/unbind", post(unbind::<B>))
        .route("/messages", get(messages::<B>))
        .route("/mo", get(mo_form).post(mo_send::<B>))
        .route("/simulator", get(simulator::<B>).post(set_simulator::<B>))
        .route("/ui/events", get(events::<B>))
        .route("/ui/events/message", get(message_events::<B>))
        .with_state(dashboard)
        .merge(dashboard::assets())
}

async fn overview_fragments<B: Backend>(d: &Dashboard<B>) -> Vec<(&'static str, Markup)> {
    let history = d.history();
    let samples = history.samples();
    let snapshot = d.backend.snapshot();
    let sessions = d.rates.rows(d.backend.session_connections()).await;
    vec![
        (
            "traffic",
            dashboard::traffic_cards(&snapshot, samples.last()),
        ),
        ("chart", dashboard::chart(&samples)),
        ("sessions", dashboard::sessions_table(&sessions, false)),
        ("sessions-full", dashboard::sessions_table(&sessions, true)),
    ]
}

fn fragment(fragments: &[(&'static str, Markup)], id: &str) -> Markup {
    fragments
        .iter()
        .find(|(i, _)| *i == id)
        .map_or_else(|| html! {}, |(_, m)| m.clone())
}

async fn overview<B: Backend>(State(d): State<Arc<Dashboard<B>>>) -> Markup {
    let f = overview_fragments(&d).await;
    dashboard::page(
        PRODUCT,
        NAV,
        "/",
        "Overview",
        Some("/ui/events"),
        html! {
            section aria-labelledby="traffic-h" {
                h2 #traffic-h { "Traffic" }
                div #traffic { (fragment(&f, "traffic")) }
            }
            section aria-labelledby="chart-h" {
                h2 #chart-h { "Last five minutes" }
                div.chart #chart { (fragment(&f, "chart")) }
            }
            section aria-labelledby="sessions-h" {
                h2 #sessions-h { "Bound sessions" }
                div #sessions { (fragment(&f, "sessions")) }
            }
        },
    )
}

#[derive(Debug, Deserialize)]
struct Done {
    done: Option<String>,
}

async fn sessions<B: Backend>(
    State(d): State<Arc<Dashboard<B>>>,
    Query(done): Query<Done>,
) -> Markup {
    let f = overview_fragments(&d).await;
    dashboard::page(
        PRODUCT,
        NAV,
        "/sessions",
        "Sessions",
        Some("/ui/events"),
        html! {
            @match done.done.as_deref() {
                Some("unbound") => (dashboard::notice(true, "The session was sent an unbind.")),
                Some("gone") => (dashboard::notice(false, "That session is no longer bound.")),
                _ => {}
            }
            div #sessions-full { (fragment(&f, "sessions-full")) }
        },
    )
}

async fn unbind<B: Backend>(State(d): State<Arc<Dashboard<B>>>, Path(id): Path<u64>) -> Redirect {
    if d.backend.unbind_session(id) {
        Redirect::to("/sessions?done=unbound")
    } else {
        Redirect::to("/sessions?done=gone")
    }
}

/// The messages page's query: an id, or a search.
#[derive(Debug, Default, Deserialize)]
struct Lookup {
    id: Option<String>,
    address: Option<String>,
    account: Option<String>,
    state: Option<String>,
    /// Minutes back (empty: any time).
    within: Option<String>,
}

/// Results shown at most.
const SEARCH_LIMIT: usize = 200;

const STATES: &[&str] = &[
    "ENROUTE", "DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "DELETED", "ACCEPTD", "UNKNOWN",
];

async fn messages<B: Backend>(
    State(d): State<Arc<Dashboard<B>>>,
    Query(lookup): Query<Lookup>,
) -> Markup {
    let id = given(&lookup.id);
    let found = id
        .as_deref()
        .map(|id| (id.to_owned(), d.backend.message(id)));
    let filter = smpp_server::MessageFilter {
        address: given(&lookup.address),
        account: given(&lookup.account),
        state: given(&lookup.state),
        since_ms: given(&lookup.within)
            .and_then(|m| m.parse::<u64>().ok())
            .map(|minutes| now_ms().saturating_sub(minutes * 60_000)),
        until_ms: None,
    };
    // A search was asked (the search form sends `within`, maybe empty).
    let searching = id.is_none()
        && (filter != smpp_server::MessageFilter::default() || lookup.within.is_some());
    let results = searching.then(|| d.backend.search(&filter, SEARCH_LIMIT));
    let time = |ms: Option<u64>| {
        ms.map(|ms| {
            smpp_server::cdr::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        })
        .unwrap_or_default()
    };
    let within = given(&lookup.within).unwrap_or_default();
    let state = given(&lookup.state).unwrap_or_default();
    // A message found: its timeline stays live (its receipt may be on the way).
    let live = match &found {
        Some((id, Some(_))) => Some(format!(
            "/ui/events/message?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("id", id)
                .finish()
        )),
        _ => None,
    };
    dashboard::page(
        PRODUCT,
        NAV,
        "/messages",
        "Messages",
        live.as_deref(),
        html! {
            form.stack method="get" action="/messages" role="search" {
                label { "Message id" input type="search" name="id" value=[id.as_deref()]; }
                button type="submit" { "Find" }
            }
            h2 { "Search the recent messages" }
            (dashboard::search_form("/messages", &dashboard::Search {
                address: filter.address.as_deref(),
                account: filter.account.as_deref(),
                state: &state,
                within: &within,
            }, STATES))
            @if let Some((id, found)) = found {
                @match found {
                    None => (dashboard::notice(false, &format!("No message {id}."))),
                    Some(view) => div #message { (message_view(&view)) },
                }
            }
            @if let Some(results) = results {
                h2 { "Found " (results.len()) @if results.len() == SEARCH_LIMIT { " (the newest " (SEARCH_LIMIT) ")" } }
                @if results.is_empty() {
                    p.empty { "No message in memory matches." }
                } @else {
                    div.scroll {
                        table.results {
                            thead { tr { th { "Id" } th { "Account" } th { "From" } th { "To" } th { "State" } th { "Submitted" } } }
                            tbody {
                                @for m in &results {
                                    @let mid = m["id"].as_str().unwrap_or("");
                                    tr data-message=(mid) {
                                        td { a href=(format!("/messages?id={mid}")) { (mid) } }
                                        td { (m["account"].as_str().unwrap_or("")) }
                                        td { (m["source"]["addr"].as_str().unwrap_or("")) }
                                        td { (m["destinations"].as_array().map(|d| d.iter().filter_map(|a| a["addr"].as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                                        td { (m["state"].as_str().unwrap_or("")) }
                                        td { (time(m["submit_time_ms"].as_u64())) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A message's fields and its timeline (from `smpp serve`'s message view).
fn message_view(view: &serde_json::Value) -> Markup {
    let text = |key: &str| match &view[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let addr = |v: &serde_json::Value| v["addr"].as_str().unwrap_or("-").to_owned();
    let time = |key: &str| {
        view[key].as_u64().map(|ms| {
            smpp_server::cdr::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        })
    };
    let destinations: Vec<String> = view["destinations"]
        .as_array()
        .map(|d| d.iter().map(addr).collect())
        .unwrap_or_default();
    let state = text("state");
    let receipts = view["receipts_sent"].as_u64().unwrap_or(0);
    html! {
        h2 { "Message " (text("id")) }
        div.scroll {
            table.message {
                tbody {
                    tr { th scope="row" { "Account" } td data-field="account" { (text("account")) } }
                    tr { th scope="row" { "From" } td data-field="from" { (addr(&view["source"])) } }
                    tr { th scope="row" { "To" } td data-field="to" { (destinations.join(", ")) } }
                    tr { th scope="row" { "State" } td data-field="state" { (state) } }
                    tr { th scope="row" { "Error" } td data-field="error" { (format!("{:03X}", view["error"].as_u64().unwrap_or(0))) } }
                    tr { th scope="row" { "Parts" } td data-field="parts" { (text("parts")) } }
                }
            }
        }
        h2 { "Timeline" }
        ol.timeline {
            @if let Some(at) = time("submit_time_ms") {
                li data-event="submitted" { "Submitted " span.muted { (at) } }
            }
            @if let Some(at) = time("done_time_ms") {
                li data-event="final" { "Final: " (state) " " span.muted { (at) } }
            } @else {
                li data-event="pending" { "Not final yet (" (state) ")" }
            }
            @if receipts > 0 {
                li data-event="receipt" { "Receipt delivered to the ESME" @if receipts > 1 { " (" (receipts) " times)" } }
            }
        }
    }
}

/// The MO form's fields.
#[derive(Debug, Default, Deserialize)]
struct MoForm {
    from: String,
    to: String,
    text: String,
    coding: Option<String>,
    /// `TAG=HEX` lines.
    #[serde(default)]
    tlvs: String,
}

fn mo_page(form: &MoForm, result: Option<Markup>) -> Markup {
    let coding = form.coding.as_deref().unwrap_or("auto");
    dashboard::page(
        PRODUCT,
        NAV,
        "/mo",
        "Inject an MO message",
        None,
        html! {
            @if let Some(result) = result { (result) }
            p.muted { "Sends a mobile-originated message (deliver_sm) to the bound ESME that receives for the destination." }
            form.stack method="post" action="/mo" {
                label { "From (the mobile)" input name="from" value=(form.from) required maxlength="20"; }
                label { "To (an address a bound ESME serves)" input name="to" value=(form.to) required maxlength="20"; }
                label { "Text" textarea name="text" rows="3" required { (form.text) } }
                label {
                    "TLVs, one per line (TAG=HEX, the tag by name or number; optional)"
                    textarea name="tlvs" rows="2" spellcheck="false" placeholder="user_message_reference=0001" { (form.tlvs) }
                }
                label {
                    "Coding"
                    select name="coding" {
                        @for c in ["auto", "gsm7", "ucs2", "latin1"] {
                            option value=(c) selected[c == coding] { (c) }
                        }
                    }
                }
                button type="submit" { "Send" }
            }
        },
    )
}

async fn mo_form() -> Markup {
    mo_page(&MoForm::default(), None)
}

async fn mo_send<B: Backend>(
    State(d): State<Arc<Dashboard<B>>>,
    Form(form): Form<MoForm>,
) -> Response {
    let request = MoRequest {
        from: form.from.clone(),
        to: form.to.clone(),
        text: Some(form.text.clone()),
        hex: None,
        coding: form.coding.clone().filter(|c| c != "auto"),
        tlvs: form
            .tlvs
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    let result = match request.short_message().and_then(|_| request.tlvs()) {
        Err(e) => Err(e),
        Ok(_) => d.backend.inject_mo(request).await,
    };
    let (status, notice) = match result {
        Ok(sent) => (
            StatusCode::OK,
            dashboard::notice(true, &format!("Delivered: {}", sent.message_ids.join(", "))),
        ),
        Err(e) => (
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            dashboard::notice(false, &e.message),
        ),
    };
    (status, mo_page(&form, Some(notice))).into_response()
}

/// The simulator form's fields.
#[derive(Debug, Default, Deserialize)]
struct SimulatorForm {
    rules: String,
    outcomes: String,
    dlr_delay: String,
}

fn simulator_page(form: &SimulatorForm, notice: Option<Markup>) -> Markup {
    dashboard::page(
        PRODUCT,
        NAV,
        "/simulator",
        "Simulator",
        None,
        html! {
            @if let Some(n) = notice { (n) }
            p.muted {
                "What the simulated SMSC answers, for the submissions that come next. "
                "Rules are checked in order (the first whose prefix and text marker match decides); "
                "messages no rule matches get a final state drawn from the weights."
            }
            form.stack method="post" action="/simulator" {
                label {
                    "Rules (the configuration file's [[rule]] tables: prefix, contains, state, error, status, delay)"
                    textarea name="rules" rows="12" spellcheck="false" { (form.rules) }
                }
                label {
                    "Final-state weights (empty: all DELIVRD)"
                    input name="outcomes" value=(form.outcomes) placeholder="DELIVRD=90,UNDELIV=8,EXPIRED=2";
                }
                label {
                    "Receipt delay (receipts come within 0 and this)"
                    input name="dlr_delay" value=(form.dlr_delay) required;
                }
                button type="submit" { "Apply" }
            }
        },
    )
}

fn simulator_form(s: &smpp_server::Simulation) -> SimulatorForm {
    SimulatorForm {
        rules: s.rules_toml(),
        outcomes: s.outcomes_text(),
        dlr_delay: humantime::format_duration(s.dlr_delay).to_string(),
    }
}

async fn simulator<B: Backend>(State(d): State<Arc<Dashboard<B>>>) -> Response {
    match d.backend.simulation() {
        Some(s) => simulator_page(&simulator_form(&s), None).into_response(),
        None => (StatusCode::NOT_FOUND, "not a simulator").into_response(),
    }
}

async fn set_simulator<B: Backend>(
    State(d): State<Arc<Dashboard<B>>>,
    Form(form): Form<SimulatorForm>,
) -> Response {
    match smpp_server::Simulation::parse(&form.rules, &form.outcomes, &form.dlr_delay) {
        Err(e) => (
            StatusCode::BAD_REQUEST,
            simulator_page(&form, Some(dashboard::notice(false, &format!("{e:#}")))),
        )
            .into_response(),
        Ok(simulation) => {
            let shown = simulator_form(&simulation);
            if d.backend.set_simulation(simulation) {
                simulator_page(
                    &shown,
                    Some(dashboard::notice(
                        true,
                        "Applied: the next submissions follow these rules.",
                    )),
                )
                .into_response()
            } else {
                (StatusCode::NOT_FOUND, "not a simulator").into_response()
            }
        }
    }
}

/// One message's view, every second, for its page (`/messages?id=ID`).
async fn message_events<B: Backend>(
    State(d): State<Arc<Dashboard<B>>>,
    Query(lookup): Query<Lookup>,
) -> Response {
    let Some(id) = given(&lookup.id) else {
        return (StatusCode::BAD_REQUEST, "no message id").into_response();
    };
    let sse = dashboard::live(move || {
        let view = d.backend.message(&id);
        async move {
            match view {
                Some(view) => vec![("message", message_view(&view))],
                // Gone from memory: the page keeps what it shows.
                None => Vec::new(),
            }
        }
    });
    ([(header::CACHE_CONTROL, "no-store")], sse).into_response()
}

async fn events<B: Backend>(State(d): State<Arc<Dashboard<B>>>) -> Response {
    let sse = dashboard::live(move || {
        let d = d.clone();
        async move { overview_fragments(&d).await }
    });
    ([(header::CACHE_CONTROL, "no-store")], sse).into_response()
}
