//! The web dashboard's shared parts, for `smpp serve` and `smpp gateway`:
//! the page shell (navigation, the embedded style sheet and script), the
//! throughput and latency chart (SVG, drawn on the server), the counters,
//! the sessions table, the login form, and the live updates (server-sent
//! events carrying rendered fragments).
//!
//! Pages are complete HTML on their own (they work without JavaScript); the
//! one small script only swaps in the fragments an event stream sends.
//! Every asset is in the binary: nothing is fetched from elsewhere.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::binds::SessionView;
use crate::metrics::Snapshot;

/// The style sheet, served at `/ui/app.css`.
pub const STYLE: &str = include_str!("app.css");
/// The script, served at `/ui/app.js`.
pub const SCRIPT: &str = include_str!("app.js");
/// The cookie the login form sets (the HTTP token, `HttpOnly`, `SameSite=Strict`).
pub const TOKEN_COOKIE: &str = "smpp_token";
/// Samples kept for the chart (one a second: five minutes).
pub const HISTORY: usize = 300;

/// The routes of the assets: `/ui/app.css`, `/ui/app.js`.
pub fn assets<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/ui/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// A page: the product's name and navigation, then `body`. `nav` is
/// (path, label); the item whose path is `active` is marked current. With
/// `live`, the page listens to that event stream for its fragments.
pub fn page(
    product: &str,
    nav: &[(&str, &str)],
    active: &str,
    title: &str,
    live: Option<&str>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (product) }
                link rel="stylesheet" href="/ui/app.css";
            }
            body {
                header {
                    span.product { (product) }
                    nav aria-label="Sections" {
                        @for (path, label) in nav {
                            @if *path == active {
                                a href=(path) aria-current="page" { (label) }
                            } @else {
                                a href=(path) { (label) }
                            }
                        }
                    }
                }
                main data-live=[live] {
                    h1 { (title) }
                    (body)
                }
                script src="/ui/app.js" defer {}
            }
        }
    }
}

/// The login form (`POST /login` with `token`), with an error when the
/// last try failed.
pub fn login_page(product: &str, error: Option<&str>) -> Markup {
    page(
        product,
        &[],
        "",
        "Sign in",
        None,
        html! {
            @if let Some(error) = error {
                p.notice.error role="alert" { (error) }
            }
            form.stack method="post" action="/login" {
                label {
                    "Access token"
                    input type="password" name="token" autocomplete="current-password" required autofocus;
                }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// The token a browser sent in the login cookie.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == TOKEN_COOKIE).then_some(value)
        })
}

/// The `Set-Cookie` value that keeps `token` for the browser's session
/// (`Secure` when served over TLS).
pub fn token_cookie(token: &str, secure: bool) -> Option<HeaderValue> {
    // A token is printable ASCII without ';' (what a cookie value may hold).
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic() && b != b';') {
        return None;
    }
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}"
    ))
    .ok()
}

/// Whether a request comes from a browser that wants a page (an
/// unauthenticated one is sent to the login form rather than a 401).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// One second of traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// Messages received per second.
    pub in_rate: f64,
    /// Messages delivered per second.
    pub out_rate: f64,
    /// Median answer time of message requests in that second, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
}

/// The last [`HISTORY`] samples, taken every second from a snapshot source.
#[derive(Debug, Default)]
pub struct History {
    samples: Mutex<VecDeque<Sample>>,
    last: Mutex<Option<Snapshot>>,
}

impl History {
    /// A history sampled every second from `read` (the task ends when the
    /// history is dropped). Call within a tokio runtime.
    pub fn start(read: impl Fn() -> Snapshot + Send + 'static) -> Arc<History> {
        let history = Arc::new(History::default());
        history.record(read(), now_secs());
        let weak: Weak<History> = Arc::downgrade(&history);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(history) = weak.upgrade() else { break };
                history.record(read(), now_secs());
            }
        });
        history
    }

    /// Adds the second ending at `at` (rates from the previous snapshot).
    pub fn record(&self, snapshot: Snapshot, at: u64) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(before) = last.as_ref() {
            let buckets: Vec<u64> = snapshot
                .latency_buckets
                .iter()
                .zip(before.latency_buckets.iter())
                .map(|(now, then)| now.saturating_sub(*then))
                .collect();
            let sample = Sample {
                at,
                in_rate: snapshot.messages_in.saturating_sub(before.messages_in) as f64,
                out_rate: snapshot.messages_out.saturating_sub(before.messages_out) as f64,
                p50_ms: Snapshot::latency_quantile(&buckets, 0.5),
                p99_ms: Snapshot::latency_quantile(&buckets, 0.99),
            };
            let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
            if samples.len() == HISTORY {
                samples.pop_front();
            }
            samples.push_back(sample);
        }
        *last = Some(snapshot);
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }

    /// The latest snapshot.
    pub fn latest(&self) -> Option<Snapshot> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A round number at least `v` (1, 2 or 5 times a power of ten).
fn nice_ceiling(v: f64) -> f64 {
    if !v.is_finite() || v <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 5.0, 10.0] {
        if v <= step * power {
            return step * power;
        }
    }
    10.0 * power
}

fn format_rate(v: f64) -> String {
    let short = |s: String| {
        s.strip_suffix(".0")
            .map_or_else(|| s.clone(), str::to_owned)
    };
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 1000.0 {
        format!("{}k", short(format!("{:.1}", v / 1000.0)))
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        short(format!("{v:.1}"))
    }
}

/// The chart of `samples`: messages per second in and out, and the median
/// and 99th percentile answer times, over the last five minutes.
pub fn chart(samples: &[Sample]) -> Markup {
    const W: f64 = 800.0;
    const H: f64 = 150.0;
    const LEFT: f64 = 52.0;
    const TOP: f64 = 12.0;
    let end = samples.last().map_or_else(now_secs, |s| s.at);
    let start = end.saturating_sub(HISTORY as u64);
    let x = |at: u64| LEFT + (at.saturating_sub(start) as f64 / HISTORY as f64) * (W - LEFT - 8.0);
    let line = |values: &[(u64, f64)], max: f64, top: f64| -> String {
        values
            .iter()
            .map(|(at, v)| format!("{:.1},{:.1}", x(*at), top + H - (v / max).min(1.0) * H))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let pick = |f: &dyn Fn(&Sample) -> Option<f64>| -> Vec<(u64, f64)> {
        samples.iter().filter_map(|s| Some((s.at, f(s)?))).collect()
    };
    let ins = pick(&|s| Some(s.in_rate));
    let outs = pick(&|s| Some(s.out_rate));
    let p50 = pick(&|s| s.p50_ms);
    let p99 = pick(&|s| s.p99_ms);
    let rate_max = nice_ceiling(ins.iter().chain(&outs).map(|(_, v)| *v).fold(0.0, f64::max));
    let ms_max = nice_ceiling(p50.iter().chain(&p99).map(|(_, v)| *v).fold(0.0, f64::max));
    let second = TOP + H + 34.0;
    let height = second + H + 26.0;
    html! {
        svg viewBox=(format!("0 0 {W} {height}")) role="img"
            aria-label=(format!("Messages per second (up to {}) and answer times (up to {} ms) over the last five minutes", format_rate(rate_max), format_rate(ms_max))) {
            @for (top, max, unit) in [(TOP, rate_max, "/s"), (second, ms_max, " ms")] {
                line x1=(LEFT) y1=(top) x2=(W - 8.0) y2=(top) stroke="#d9dee3" {}
                line x1=(LEFT) y1=(top + H / 2.0) x2=(W - 8.0) y2=(top + H / 2.0) stroke="#eef1f4" {}
                line x1=(LEFT) y1=(top + H) x2=(W - 8.0) y2=(top + H) stroke="#9aa4ae" {}
                text x=(LEFT - 6.0) y=(top + 4.0) text-anchor="end" font-size="11" fill="#5b6672" { (format_rate(max)) (unit) }
                text x=(LEFT - 6.0) y=(top + H + 4.0) text-anchor="end" font-size="11" fill="#5b6672" { "0" }
            }
            text x=(LEFT) y=(second + H + 18.0) font-size="11" fill="#5b6672" { "5 min ago" }
            text x=(W - 8.0) y=(second + H + 18.0) text-anchor="end" font-size="11" fill="#5b6672" { "now" }
            polyline points=(line(&ins, rate_max, TOP)) fill="none" stroke="#0b6bcb" stroke-width="2" {}
            polyline points=(line(&outs, rate_max, TOP)) fill="none" stroke="#1a7f37" stroke-width="2" {}
            polyline points=(line(&p50, ms_max, second)) fill="none" stroke="#8250df" stroke-width="2" {}
            polyline points=(line(&p99, ms_max, second)) fill="none" stroke="#cf222e" stroke-width="2" {}
        }
        div.legend {
            span.in { "received /s" }
            span.out { "delivered /s" }
            span.p50 { "median answer" }
            span.p99 { "99th percentile" }
        }
    }
}

/// Counters as cards: (label, value).
pub fn cards(items: &[(&str, String)]) -> Markup {
    html! {
        div.cards {
            @for (label, value) in items {
                div.card {
                    div.label { (label) }
                    div.value { (value) }
                }
            }
        }
    }
}

/// The cards of a snapshot and the last second's rates.
pub fn traffic_cards(snapshot: &Snapshot, last: Option<&Sample>) -> Markup {
    let rate = |v: Option<f64>| v.map_or_else(|| "0".to_owned(), format_rate);
    let errors: u64 = snapshot.errors.iter().map(|(_, n)| n).sum();
    html! {
        (cards(&[
            ("Sessions", snapshot.sessions_open.to_string()),
            ("Received /s", rate(last.map(|s| s.in_rate))),
            ("Delivered /s", rate(last.map(|s| s.out_rate))),
            ("Messages received", snapshot.messages_in.to_string()),
            ("Receipts sent", snapshot.receipts_sent.to_string()),
            ("Receipts waiting", snapshot.receipts_pending.to_string()),
            ("Errors", errors.to_string()),
        ]))
        @if !snapshot.errors.is_empty() {
            h2 { "Errors by status" }
            div.scroll {
                table {
                    thead { tr { th { "Status" } th { "Requests" } } }
                    tbody {
                        @for (status, n) in &snapshot.errors {
                            tr { td { (status) } td.num { (n) } }
                        }
                    }
                }
            }
        }
    }
}

fn kind_name(kind: smpp_proto::session::BindKind) -> &'static str {
    match kind {
        smpp_proto::session::BindKind::Transmitter => "transmitter",
        smpp_proto::session::BindKind::Receiver => "receiver",
        smpp_proto::session::BindKind::Transceiver => "transceiver",
    }
}

fn version_name(v: Option<u8>) -> String {
    match v {
        Some(0x50) => "5.0".into(),
        Some(v) if v >= 0x34 => "3.4".into(),
        Some(_) => "3.3".into(),
        None => "-".into(),
    }
}

fn since(t: SystemTime) -> String {
    let secs = SystemTime::now()
        .duration_since(t)
        .map_or(0, |d| d.as_secs());
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// A bound session and what its connection says of itself now.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// Who it is.
    pub view: SessionView,
    /// Requests of ours in flight, and the window (outbound).
    pub outbound: Option<(usize, usize)>,
    /// Requests of the ESME waiting for our answer, and the inbound window.
    pub inbound: Option<(usize, usize)>,
    /// Messages (submit_sm, data_sm, submit_multi) it sent per second,
    /// since the last look.
    pub rate: Option<f64>,
}

/// Rates of counters looked at now and then: per key, the count at the
/// last look (at least half a second before) gives a rate per second.
#[derive(Debug, Default)]
pub struct RateMeter {
    last: Mutex<std::collections::HashMap<String, (std::time::Instant, u64)>>,
}

impl RateMeter {
    /// The rate of `key`'s counter, now `count`, since the last look
    /// (`Some(0.0)` at the first look).
    pub fn rate(&self, key: &str, count: u64) -> Option<f64> {
        let now = std::time::Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let entry = last.entry(key.to_owned()).or_insert((now, count));
        let secs = now.duration_since(entry.0).as_secs_f64();
        if secs >= 0.5 {
            let rate = count.saturating_sub(entry.1) as f64 / secs;
            *entry = (now, count);
            Some(rate)
        } else if entry.1 == count {
            Some(0.0)
        } else {
            None
        }
    }

    /// Forgets the keys not in `keep`.
    pub fn retain(&self, keep: &[String]) {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| keep.contains(k));
    }
}

/// Per session: when it was last looked at and how many messages it had
/// sent (for its messages per second).
#[derive(Debug, Default)]
pub struct SessionRates {
    meter: RateMeter,
}

impl SessionRates {
    /// The rows of `sessions`, each asked for its stats (a connection that
    /// does not answer within 200 ms shows none).
    pub async fn rows(
        &self,
        sessions: Vec<(SessionView, Option<smpp_tokio::Connection>)>,
    ) -> Vec<SessionRow> {
        use smpp_proto::pdu::CommandId;
        let mut rows = Vec::with_capacity(sessions.len());
        let mut seen = Vec::with_capacity(sessions.len());
        for (view, conn) in sessions {
            let stats = match conn {
                Some(conn) => tokio::time::timeout(Duration::from_millis(200), conn.stats())
                    .await
                    .ok()
                    .and_then(Result::ok),
                None => None,
            };
            let mut row = SessionRow {
                view,
                outbound: None,
                inbound: None,
                rate: None,
            };
            if let Some(stats) = stats {
                row.outbound = Some((stats.window_in_flight, stats.max_in_flight));
                row.inbound = Some((stats.pending_inbound, stats.max_inbound));
                let messages = [
                    CommandId::SUBMIT_SM,
                    CommandId::DATA_SM,
                    CommandId::SUBMIT_MULTI,
                ]
                .into_iter()
                .map(|id| stats.received(id))
                .sum::<u64>();
                row.rate = self.meter.rate(&row.view.id.to_string(), messages);
            }
            seen.push(row.view.id.to_string());
            rows.push(row);
        }
        // Sessions gone are forgotten.
        self.meter.retain(&seen);
        rows
    }
}

/// The bound sessions; with `unbind`, a button per session posting to
/// `/sessions/{id}/unbind`.
pub fn sessions_table(sessions: &[SessionRow], unbind: bool) -> Markup {
    let pair =
        |p: Option<(usize, usize)>| p.map_or_else(|| "-".to_owned(), |(a, b)| format!("{a} / {b}"));
    html! {
        @if sessions.is_empty() {
            p.empty { "No session is bound." }
        } @else {
            div.scroll {
                table {
                    thead {
                        tr {
                            th { "system_id" } th { "Bind" } th { "Peer" } th { "TLS" } th { "Version" }
                            th { "Bound for" } th { "Messages /s" } th { "In flight (out)" } th { "Waiting (in)" }
                            th { "Address range" }
                            @if unbind { th { span.muted { "Action" } } }
                        }
                    }
                    tbody {
                        @for row in sessions {
                            @let s = &row.view;
                            tr data-session=(s.system_id) {
                                td { (s.system_id) }
                                td { (kind_name(s.kind)) }
                                td { (s.peer.map_or_else(|| "-".to_owned(), |p| p.to_string())) }
                                td { @if s.tls { "yes" } @else { "no" } }
                                td { (version_name(s.interface_version)) }
                                td { (since(s.since)) }
                                td.num { (row.rate.map_or_else(|| "-".to_owned(), format_rate)) }
                                td.num { (pair(row.outbound)) }
                                td.num { (pair(row.inbound)) }
                                td { (s.address_range.as_deref().unwrap_or("-")) }
                                @if unbind {
                                    td {
                                        form method="post" action=(format!("/sessions/{}/unbind", s.id)) {
                                            button.secondary type="submit" aria-label=(format!("Unbind {}", s.system_id)) { "Unbind" }
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
}

/// An event stream: every second, the fragments `render` returns
/// ((element id, markup) pairs) as one event.
pub fn live<F>(
    render: impl Fn() -> F + Send + Sync + 'static,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>
where
    F: std::future::Future<Output = Vec<(&'static str, Markup)>> + Send,
{
    let render = Arc::new(render);
    let ticks = futures_util::stream::unfold(
        (tokio::time::interval(Duration::from_secs(1)), render),
        |(mut tick, render)| async move {
            tick.tick().await;
            let fragments: serde_json::Map<String, serde_json::Value> = render()
                .await
                .into_iter()
                .map(|(id, markup)| {
                    (
                        id.to_owned(),
                        serde_json::Value::String(markup.into_string()),
                    )
                })
                .collect();
            let event = Event::default().data(serde_json::Value::Object(fragments).to_string());
            Some((Ok(event), (tick, render)))
        },
    );
    Sse::new(ticks).keep_alive(KeepAlive::default())
}

/// What a message search asks (each field as the form sent it).
#[derive(Debug, Clone, Default)]
pub struct Search<'a> {
    /// Part of an address.
    pub address: Option<&'a str>,
    /// The account.
    pub account: Option<&'a str>,
    /// A stat word, or "" for any.
    pub state: &'a str,
    /// Minutes back, or "" for any time.
    pub within: &'a str,
}

/// A query field as given, trimmed; `None` when absent or empty (the
/// message pages' id and search fields).
pub fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The message search form (GET `action` with `address`, `account`,
/// `state` among `states`, `within` minutes).
pub fn search_form(action: &str, search: &Search<'_>, states: &[&str]) -> Markup {
    html! {
        form.stack method="get" action=(action) role="search" aria-label="Search messages" {
            label { "Address (source or destination, part of it)" input name="address" value=[search.address]; }
            label { "Account" input name="account" value=[search.account]; }
            label {
                "State"
                select name="state" {
                    option value="" { "any" }
                    @for s in states { option value=(s) selected[*s == search.state] { (s) } }
                }
            }
            label {
                "Within"
                select name="within" {
                    @for (value, label) in [("", "any time"), ("5", "5 minutes"), ("60", "an hour"), ("1440", "a day")] {
                        option value=(value) selected[value == search.within] { (label) }
                    }
                }
            }
            button type="submit" { "Search" }
        }
    }
}

/// A notice above a page's content.
pub fn notice(ok: bool, text: &str) -> Markup {
    let class = if ok { "notice ok" } else { "notice error" };
    html! { p class=(class) role="status" { (text) } }
}

/// Marks `text` as already-escaped HTML.
pub fn raw(text: String) -> PreEscaped<String> {
    PreEscaped(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_percentiles_come_from_successive_snapshots() {
        let history = History::default();
        let mut s = Snapshot::default();
        history.record(s.clone(), 10);
        s.messages_in = 500;
        s.messages_out = 200;
        s.latency_buckets[0] = 98; // <= 0.5 ms
        s.latency_buckets[3] = 2; // <= 5 ms
        history.record(s.clone(), 11);
        let samples = history.samples();
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].in_rate, 500.0);
        assert_eq!(samples[0].out_rate, 200.0);
        assert_eq!(samples[0].p50_ms, Some(0.5));
        assert_eq!(samples[0].p99_ms, Some(5.0));
        for at in 12..(12 + HISTORY as u64 + 5) {
            history.record(s.clone(), at);
        }
        assert_eq!(history.samples().len(), HISTORY, "bounded");
    }

    #[test]
    fn the_chart_scales_to_round_numbers_and_escapes_nothing_it_should_not() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(1234.0), 2000.0);
        let samples: Vec<Sample> = (0..10)
            .map(|i| Sample {
                at: 1000 + i,
                in_rate: 100.0 * i as f64,
                out_rate: 50.0,
                p50_ms: Some(1.0),
                p99_ms: None,
            })
            .collect();
        let svg = chart(&samples).into_string();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("1k/s"), "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 4);
    }

    #[test]
    fn cookies_carry_the_token_and_a_bad_one_is_not_set() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; smpp_token=s3cret"),
        );
        assert_eq!(cookie_token(&headers), Some("s3cret"));
        assert!(token_cookie("s3cret", true)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("HttpOnly; SameSite=Strict; Secure"));
        assert!(token_cookie("a;b", false).is_none());
        // Markup escapes what it shows.
        let page = sessions_table(
            &[SessionRow {
                view: SessionView {
                    id: 1,
                    system_id: "<b>".into(),
                    kind: smpp_proto::session::BindKind::Receiver,
                    peer: None,
                    interface_version: Some(0x34),
                    tls: false,
                    since: SystemTime::now(),
                    address_range: None,
                },
                outbound: Some((1, 64)),
                inbound: None,
                rate: Some(12.0),
            }],
            true,
        )
        .into_string();
        assert!(page.contains("&lt;b&gt;") && !page.contains("<b>"));
    }
}
