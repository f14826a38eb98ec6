//! The gateway's HTTP API, as an [`axum::Router`] to serve on any listener
//! (`smpp gateway --http` serves it with its connection limits and TLS):
//!
//! - **Jasmin-compatible** (`GET` or `POST`, query string or form body,
//!   Jasmin's parameters and answers): `/send` (`Success "ID"`,
//!   `Error "..."`), `/balance` and `/rate` (JSON); receipt callbacks in
//!   Jasmin's format to `dlr-url`.
//! - **JSON, v1** (HTTP Basic with the account's credentials):
//!   `POST /api/v1/messages`, `GET /api/v1/messages/{id}`,
//!   `POST /api/v1/batches`, `GET /api/v1/batches/{id}`,
//!   `GET /api/v1/balance`. Described in `docs/gateway-openapi.yaml`.
//! - **Admin** (the admin bearer token, when one is set):
//!   `GET /api/v1/admin/accounts/{id}/balance`,
//!   `POST /api/v1/admin/accounts/{id}/balance` (`{"add": "10.50"}`,
//!   `{"add_sms": 100}`, or `{"set": ...}`); accounts, connectors and
//!   routes (`/api/v1/admin/accounts`, `/connectors`, `/routes`: created,
//!   changed and removed while the gateway runs, stored so that they
//!   survive a restart); and `GET /metrics`.
//!
//! Accounts log in with the same credentials as their SMPP binds: the same
//! allow-lists and the same lockout of addresses that guess.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use smpp_proto::message::{charsets::Charset, Address, DataCoding, ReferenceCounter, ShortMessage};
use smpp_proto::pdu::SubmitSm;
use smpp_server::credentials::Secret;

use crate::accept::{accept, route, Refusal, Submission};
use crate::billing::{format_money, parse_money};
use crate::jasmin::{self, Content, ParamError};
use crate::node::{lock, now_ms, stored_sm, Node};
use crate::store::{
    format_id, parse_id, BatchRecord, HttpMethod, MessageState, Op, Quota, Webhook, WebhookStyle,
};

/// Largest request body accepted, in octets (a batch of a few thousand
/// recipients fits).
pub const MAX_BODY: usize = 1024 * 1024;

/// Recipients of one batch at most.
pub const MAX_BATCH: usize = 10_000;

/// Every route of the API: (method, path), as `docs/gateway-openapi.json`
/// describes them (a test holds the two together).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/send"),
    ("POST", "/send"),
    ("GET", "/balance"),
    ("POST", "/balance"),
    ("GET", "/rate"),
    ("POST", "/rate"),
    ("POST", "/api/v1/messages"),
    ("GET", "/api/v1/messages/{id}"),
    ("POST", "/api/v1/batches"),
    ("GET", "/api/v1/batches/{id}"),
    ("GET", "/api/v1/balance"),
    ("GET", "/api/v1/admin/accounts"),
    ("PUT", "/api/v1/admin/accounts/{id}"),
    ("DELETE", "/api/v1/admin/accounts/{id}"),
    ("GET", "/api/v1/admin/accounts/{id}/balance"),
    ("POST", "/api/v1/admin/accounts/{id}/balance"),
    ("GET", "/api/v1/admin/connectors"),
    ("PUT", "/api/v1/admin/connectors/{name}"),
    ("DELETE", "/api/v1/admin/connectors/{name}"),
    ("GET", "/api/v1/admin/routes"),
    ("PUT", "/api/v1/admin/routes"),
    ("POST", "/api/v1/admin/routes"),
    ("DELETE", "/api/v1/admin/routes/{position}"),
    ("GET", "/metrics"),
];

/// How the HTTP API is protected.
#[derive(Debug, Default)]
pub struct HttpOptions {
    /// The admin token (`Authorization: Bearer`); `None`: the admin routes
    /// and `/metrics` are open (serve them on loopback only).
    pub admin_token: Option<Secret>,
    /// The hosts customers may name as receipt receivers (`dlr-url`,
    /// `webhook`); empty: any. Without it a customer can make the gateway
    /// call any URL it can reach (an internal address included).
    pub webhook_hosts: Vec<String>,
}

/// The host of an `http(s)://` URL, lowercased (no port, no brackets).
fn url_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

impl HttpOptions {
    /// Whether `url` may receive callbacks: an http(s) URL whose host is
    /// one of [`HttpOptions::webhook_hosts`] (any host when there are none).
    pub fn webhook_allowed(&self, url: &str) -> bool {
        match url_host(url) {
            None => false,
            Some(host) => {
                self.webhook_hosts.is_empty()
                    || self
                        .webhook_hosts
                        .iter()
                        .any(|h| h.eq_ignore_ascii_case(&host))
            }
        }
    }
}

/// The token of an `Authorization: Bearer` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
}

#[derive(Debug)]
pub(crate) struct Api {
    pub(crate) node: Arc<Node>,
    pub(crate) options: HttpOptions,
    refs: std::sync::Mutex<ReferenceCounter>,
}

/// The router of the API on `node`.
pub(crate) fn router(node: Arc<Node>, options: HttpOptions) -> Router {
    let seed = (now_ms() & 0xFFFF) as u16;
    let api = Arc::new(Api {
        node,
        options,
        refs: std::sync::Mutex::new(ReferenceCounter::new(seed)),
    });
    Router::new()
        .route("/send", get(jasmin_send).post(jasmin_send))
        .route("/balance", get(jasmin_balance).post(jasmin_balance))
        .route("/rate", get(jasmin_rate).post(jasmin_rate))
        .route("/api/v1/messages", post(post_message))
        .route("/api/v1/messages/{id}", get(get_message))
        .route("/api/v1/batches", post(post_batch))
        .route("/api/v1/batches/{id}", get(get_batch))
        .route("/api/v1/balance", get(get_balance))
        .route("/api/v1/admin/accounts", get(admin_list_accounts))
        .route(
            "/api/v1/admin/accounts/{id}",
            axum::routing::put(admin_put_account).delete(admin_delete_account),
        )
        .route(
            "/api/v1/admin/accounts/{id}/balance",
            get(admin_get_balance).post(admin_set_balance),
        )
        .route(
            "/api/v1/admin/connectors",
            get(crate::admin::list_connectors),
        )
        .route(
            "/api/v1/admin/connectors/{name}",
            axum::routing::put(crate::admin::put_connector).delete(crate::admin::delete_connector),
        )
        .route(
            "/api/v1/admin/routes",
            get(crate::admin::list_routes)
                .put(crate::admin::put_routes)
                .post(crate::admin::post_route),
        )
        .route(
            "/api/v1/admin/routes/{position}",
            axum::routing::delete(crate::admin::delete_route),
        )
        .route("/metrics", get(metrics))
        .with_state(api.clone())
        .merge(crate::dashboard::routes(api))
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(time_limit))
}

/// A request answered within this time, body included (408 beyond).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn time_limit(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => json_error(StatusCode::REQUEST_TIMEOUT, "the request took too long"),
    }
}

/// The client's address, when the server recorded it (`ConnectInfo`).
struct Peer(Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// Jasmin's error answer: `Error "..."`.
fn jasmin_error(status: StatusCode, message: &str) -> Response {
    (status, format!("Error \"{message}\"")).into_response()
}

impl Api {
    /// Checks an account's credentials from `peer`; the account's name.
    async fn login(&self, user: &str, password: &str, peer: Option<SocketAddr>) -> Option<String> {
        let node = &self.node;
        node.accounts
            .current()
            .authenticate_bind(
                node.lockout.as_ref(),
                now_ms,
                user,
                password.as_bytes(),
                peer,
                None,
            )
            .await
            .ok()
            .map(|()| user.to_owned())
    }

    /// HTTP Basic credentials, checked.
    async fn basic(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Result<String, Response> {
        let unauthorized = || {
            let mut r = json_error(
                StatusCode::UNAUTHORIZED,
                "authentication required (HTTP Basic, the account's SMPP credentials)",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"smpp-gateway\""),
            );
            r
        };
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(unauthorized)?;
        let (scheme, encoded) = value.trim().split_once(' ').ok_or_else(unauthorized)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(unauthorized());
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .ok_or_else(unauthorized)?;
        let (user, password) = decoded.split_once(':').ok_or_else(unauthorized)?;
        self.login(user, password, peer)
            .await
            .ok_or_else(unauthorized)
    }

    /// The admin token, checked (open when none is configured).
    pub(crate) async fn admin(&self, headers: &HeaderMap) -> Result<(), Response> {
        let Some(token) = &self.options.admin_token else {
            return Ok(());
        };
        match bearer(headers) {
            Some(t) if token.verify(t.as_bytes()).await => Ok(()),
            _ => Err(json_error(
                StatusCode::UNAUTHORIZED,
                "the admin token is required (Authorization: Bearer)",
            )),
        }
    }

    /// The parts of a message to `to`, coded per `coding`.
    fn build(&self, m: &Message<'_>) -> Result<Vec<SubmitSm>, String> {
        let message = match m.content {
            Content::Text(text) => match m.coding {
                0 => ShortMessage::text(text.as_str()),
                8 => {
                    if smpp_proto::message::TextEncoding::Gsm7(
                        smpp_proto::message::Gsm7Alphabet::DEFAULT,
                    )
                    .encode(text)
                    .is_ok()
                    {
                        ShortMessage::binary(
                            smpp_proto::message::ucs2::encode(text),
                            DataCoding::UCS2,
                        )
                    } else {
                        // Automatic coding picks UCS-2 for it and splits on characters.
                        ShortMessage::text(text.as_str())
                    }
                }
                1 => ShortMessage::binary(
                    Charset::Ascii.encode(text).map_err(|e| e.to_string())?,
                    DataCoding::IA5,
                ),
                3 => ShortMessage::binary(
                    Charset::Latin1.encode(text).map_err(|e| e.to_string())?,
                    DataCoding::LATIN1,
                ),
                6 => ShortMessage::binary(
                    Charset::Cyrillic.encode(text).map_err(|e| e.to_string())?,
                    DataCoding::CYRILLIC,
                ),
                7 => ShortMessage::binary(
                    Charset::Hebrew.encode(text).map_err(|e| e.to_string())?,
                    DataCoding::LATIN_HEBREW,
                ),
                other => ShortMessage::binary(text.as_bytes().to_vec(), DataCoding(other)),
            },
            Content::Hex(octets) => ShortMessage::binary(octets.clone(), DataCoding(m.coding)),
        };
        let mut message = message.to(Address::guess(m.to)).priority(m.priority);
        if let Some(from) = m.from {
            message = message.from(Address::guess(from));
        }
        if m.receipt {
            message = message.request_receipt();
        }
        if let Some(t) = m.schedule {
            message = message.schedule(t);
        }
        if let Some(t) = m.validity {
            message = message.validity(t);
        }
        message
            .build(&mut lock(&self.refs))
            .map_err(|e| e.to_string())
    }
}

/// A message to build, from either API.
struct Message<'a> {
    from: Option<&'a str>,
    to: &'a str,
    content: &'a Content,
    coding: u8,
    priority: u8,
    receipt: bool,
    schedule: Option<&'a str>,
    validity: Option<&'a str>,
}

/// The fields of a Jasmin request: the query string, and a form body.
fn jasmin_fields(method: &Method, query: Option<&str>, body: &Bytes) -> Vec<(String, String)> {
    let mut fields = jasmin::parse_fields(query.unwrap_or_default().as_bytes());
    if method == Method::POST {
        fields.extend(jasmin::parse_fields(body));
    }
    fields
}

fn param_error(e: &ParamError) -> Response {
    jasmin_error(StatusCode::BAD_REQUEST, &e.message())
}

async fn jasmin_send(
    State(api): State<Arc<Api>>,
    Peer(peer): Peer,
    method: Method,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    body: Bytes,
) -> Response {
    let fields = jasmin_fields(&method, query.as_deref(), &body);
    let request = match jasmin::parse_send(&fields) {
        Ok(r) => r,
        Err(e) => return param_error(&e),
    };
    let Some(account) = api.login(&request.username, &request.password, peer).await else {
        return jasmin_error(
            StatusCode::FORBIDDEN,
            &format!("Authentication failure for username:{}", request.username),
        );
    };
    if let Some(dlr) = &request.dlr {
        if !api.options.webhook_allowed(&dlr.url) {
            return jasmin_error(
                StatusCode::BAD_REQUEST,
                &format!("Argument dlr-url has an invalid value: {}.", dlr.url),
            );
        }
    }
    let validity = request.validity_minutes.and_then(|m| {
        smpp_proto::message::time::relative(std::time::Duration::from_secs(u64::from(m) * 60))
    });
    let parts = match api.build(&Message {
        from: request.from.as_deref(),
        to: &request.to,
        content: &request.content,
        coding: request.coding,
        priority: request.priority,
        receipt: request.dlr.as_ref().is_some_and(|d| d.level >= 2),
        schedule: request.sdt.as_deref(),
        validity: validity.as_deref(),
    }) {
        Ok(parts) => parts,
        Err(e) => {
            return jasmin_error(
                StatusCode::BAD_REQUEST,
                &format!("Argument content has an invalid value: {e}."),
            )
        }
    };
    let webhook = request.dlr.map(|d| Webhook {
        url: d.url,
        method: if d.post {
            HttpMethod::Post
        } else {
            HttpMethod::Get
        },
        style: WebhookStyle::Jasmin { level: d.level },
    });
    let submission = Submission {
        account,
        parts,
        webhook,
        batch: None,
        alias: None,
    };
    match accept(&api.node, submission).await {
        Ok(ids) => match ids.first() {
            Some(id) => (StatusCode::OK, format!("Success \"{}\"", format_id(*id))).into_response(),
            None => jasmin_error(
                StatusCode::BAD_REQUEST,
                "Mandatory argument content is not found.",
            ),
        },
        Err(refusal) => {
            let status = match refusal {
                Refusal::NoRoute | Refusal::Loop => StatusCode::PRECONDITION_FAILED,
                Refusal::Exhausted(_) => {
                    return jasmin_error(
                        StatusCode::FORBIDDEN,
                        "Cannot charge submit_sm, check RouterPB log file for details",
                    )
                }
                Refusal::Throttled => StatusCode::TOO_MANY_REQUESTS,
                Refusal::QueueFull => StatusCode::SERVICE_UNAVAILABLE,
                Refusal::System => StatusCode::SERVICE_UNAVAILABLE,
            };
            jasmin_error(status, refusal.reason())
        }
    }
}

/// Jasmin's number-or-"ND" (not defined: unlimited).
fn nd<T: Into<serde_json::Value>>(v: Option<T>) -> serde_json::Value {
    v.map_or_else(|| serde_json::Value::from("ND"), Into::into)
}

fn money_number(micros: i64) -> serde_json::Value {
    // Jasmin answers numbers; the exact decimal is also in the v1 API.
    serde_json::Number::from_f64(micros as f64 / 1_000_000.0)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

async fn jasmin_balance(
    State(api): State<Arc<Api>>,
    Peer(peer): Peer,
    method: Method,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    body: Bytes,
) -> Response {
    let fields = jasmin_fields(&method, query.as_deref(), &body);
    let (user, password) = match jasmin::parse_balance(&fields) {
        Ok(c) => c,
        Err(e) => return param_error(&e),
    };
    let Some(account) = api.login(&user, &password, peer).await else {
        return jasmin_error(
            StatusCode::FORBIDDEN,
            &format!("Authentication failure for username:{user}"),
        );
    };
    let quota = api.node.billing.quota(&account);
    Json(serde_json::json!({
        "balance": nd(quota.balance.map(money_number)),
        "sms_count": nd(quota.sms),
    }))
    .into_response()
}

async fn jasmin_rate(
    State(api): State<Arc<Api>>,
    Peer(peer): Peer,
    method: Method,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    body: Bytes,
) -> Response {
    let fields = jasmin_fields(&method, query.as_deref(), &body);
    let request = match jasmin::parse_rate(&fields) {
        Ok(r) => r,
        Err(e) => return param_error(&e),
    };
    if api
        .login(&request.username, &request.password, peer)
        .await
        .is_none()
    {
        return jasmin_error(
            StatusCode::FORBIDDEN,
            &format!("Authentication failure for username:{}", request.username),
        );
    }
    let Ok((topology, route)) = route(&api.node, &request.username, "", &request.to) else {
        return jasmin_error(StatusCode::PRECONDITION_FAILED, "No route found");
    };
    let parts = match &request.content {
        None => 1,
        Some(content) => match api.build(&Message {
            from: None,
            to: &request.to,
            content,
            coding: request.coding,
            priority: 0,
            receipt: false,
            schedule: None,
            validity: None,
        }) {
            Ok(parts) => parts.len(),
            Err(e) => {
                return jasmin_error(
                    StatusCode::BAD_REQUEST,
                    &format!("Argument content has an invalid value: {e}."),
                )
            }
        },
    };
    Json(serde_json::json!({
        "unit_rate": money_number(topology.router.rate(route)),
        "submit_sm_count": parts,
    }))
    .into_response()
}

/// The body of `POST /api/v1/messages` (and each message of a batch).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageRequest {
    #[serde(default)]
    from: Option<String>,
    to: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    hex: Option<String>,
    /// A `data_coding` number, or auto (0) by default.
    #[serde(default)]
    coding: Option<u8>,
    /// Ask for a receipt (to `webhook`; without one it can be read with GET).
    #[serde(default)]
    receipt: bool,
    /// Where receipts are posted (JSON).
    #[serde(default)]
    webhook: Option<String>,
    /// SMPP time (16 characters) or a duration from now (`10m`).
    #[serde(default)]
    schedule: Option<String>,
    /// SMPP time (16 characters) or a duration from now (`2h`).
    #[serde(default)]
    validity: Option<String>,
    #[serde(default)]
    priority: Option<u8>,
}

/// An SMPP time as given, or one relative to now from a duration.
fn smpp_time(s: &str) -> Result<String, String> {
    if s.len() == 16 {
        return Ok(s.to_owned());
    }
    let d = humantime::parse_duration(s).map_err(|e| format!("bad time {s:?}: {e}"))?;
    smpp_proto::message::time::relative(d).ok_or_else(|| format!("time {s:?} out of range"))
}

impl MessageRequest {
    fn content(&self) -> Result<Content, String> {
        match (&self.text, &self.hex) {
            (Some(t), None) => Ok(Content::Text(t.clone())),
            (None, Some(h)) => jasmin::parse_hex(h)
                .map(Content::Hex)
                .ok_or_else(|| "hex: not an even number of hex digits".to_owned()),
            _ => Err("give exactly one of text and hex".into()),
        }
    }

    fn submission(
        &self,
        api: &Api,
        account: &str,
        batch: Option<u64>,
    ) -> Result<Submission, String> {
        if let Some(url) = &self.webhook {
            if !api.options.webhook_allowed(url) {
                return Err(format!(
                    "webhook {url:?}: an http or https URL on a host this gateway allows"
                ));
            }
        }
        if self.priority.is_some_and(|p| p > 3) {
            return Err("priority: 0 to 3".into());
        }
        let schedule = self.schedule.as_deref().map(smpp_time).transpose()?;
        let validity = self.validity.as_deref().map(smpp_time).transpose()?;
        let content = self.content()?;
        let parts = api.build(&Message {
            from: self.from.as_deref(),
            to: &self.to,
            content: &content,
            coding: self.coding.unwrap_or(0),
            priority: self.priority.unwrap_or(0),
            receipt: self.receipt,
            schedule: schedule.as_deref(),
            validity: validity.as_deref(),
        })?;
        Ok(Submission {
            account: account.to_owned(),
            parts,
            webhook: self
                .webhook
                .as_ref()
                .filter(|_| self.receipt)
                .map(|url| Webhook {
                    url: url.clone(),
                    method: HttpMethod::Post,
                    style: WebhookStyle::Json,
                }),
            batch,
            alias: None,
        })
    }
}

fn refusal_response(refusal: Refusal) -> Response {
    let status = match refusal {
        Refusal::NoRoute | Refusal::Loop => StatusCode::UNPROCESSABLE_ENTITY,
        Refusal::Throttled => StatusCode::TOO_MANY_REQUESTS,
        Refusal::QueueFull => StatusCode::SERVICE_UNAVAILABLE,
        Refusal::Exhausted(_) => StatusCode::PAYMENT_REQUIRED,
        Refusal::System => StatusCode::SERVICE_UNAVAILABLE,
    };
    json_error(status, refusal.reason())
}

/// A JSON body, or the 400 that says what is wrong with it.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(json_error(
            StatusCode::BAD_REQUEST,
            &format!("bad JSON: {e}"),
        ))
    })
}

async fn post_message(
    State(api): State<Arc<Api>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let account = match api.basic(&headers, peer).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let request: MessageRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let submission = match request.submission(&api, &account, None) {
        Ok(s) => s,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e),
    };
    match accept(&api.node, submission).await {
        Ok(ids) => Json(serde_json::json!({
            "ids": ids.iter().map(|id| format_id(*id)).collect::<Vec<_>>(),
            "parts": ids.len(),
        }))
        .into_response(),
        Err(refusal) => refusal_response(refusal),
    }
}

/// A stored message as the API shows it.
pub(crate) fn message_json(record: &crate::store::MessageRecord) -> serde_json::Value {
    let sm = stored_sm(&record.submit);
    let state = match record.state {
        MessageState::Accepted => "ACCEPTED".to_owned(),
        MessageState::Forwarded => "ENROUTE".to_owned(),
        MessageState::Done { state } => smpp_proto::message::MessageState::from_u8(state)
            .map_or_else(|| format!("STATE{state}"), |s| s.stat_word().to_owned()),
        MessageState::Failed { .. } => "REJECTD".to_owned(),
    };
    let mut history = vec![serde_json::json!({"state": "ACCEPTED", "at_ms": record.accepted_ms})];
    if let Some(at) = record.forwarded_ms {
        history.push(serde_json::json!({
            "state": "FORWARDED",
            "at_ms": at,
            "upstream": record.upstream.as_ref().map(|u| &u.connector),
            "upstream_id": record.upstream.as_ref().map(|u| &u.id),
        }));
    }
    if let Some(at) = record.final_ms {
        let error = match record.state {
            MessageState::Failed { status } => Some(format!("0x{status:08X}")),
            _ => None,
        };
        history.push(serde_json::json!({"state": state, "at_ms": at, "error": error}));
    }
    serde_json::json!({
        "id": record.public_id(),
        "account": record.account,
        "from": sm.as_ref().map(|s| s.source_addr.to_string_lossy().into_owned()),
        "to": sm.as_ref().map(|s| s.destination_addr.to_string_lossy().into_owned()),
        "state": state,
        "final": record.final_ms.is_some(),
        "parts": record.parts,
        "charge": format_money(record.charge),
        "upstream": record.upstream.as_ref().map(|u| &u.connector),
        "upstream_id": record.upstream.as_ref().map(|u| &u.id),
        "batch": record.batch.map(format_id),
        "history": history,
    })
}

async fn get_message(
    State(api): State<Arc<Api>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let account = match api.basic(&headers, peer).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let not_found = || json_error(StatusCode::NOT_FOUND, "no such message");
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    match api.node.store.message(id).await {
        Ok(Some(record)) if record.account == account => {
            Json(message_json(&record)).into_response()
        }
        Ok(_) => not_found(),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub(crate) fn quota_json(quota: Quota) -> serde_json::Value {
    serde_json::json!({
        "balance": quota.balance.map(format_money),
        "sms": quota.sms,
    })
}

async fn get_balance(
    State(api): State<Arc<Api>>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Response {
    match api.basic(&headers, peer).await {
        Ok(account) => Json(quota_json(api.node.billing.quota(&account))).into_response(),
        Err(r) => r,
    }
}

/// The body of `POST /api/v1/batches`: one text to many recipients
/// (`from`, `text`/`hex`, `to: [...]`), or a list of `messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    hex: Option<String>,
    #[serde(default)]
    coding: Option<u8>,
    #[serde(default)]
    receipt: bool,
    #[serde(default)]
    webhook: Option<String>,
    #[serde(default)]
    messages: Vec<MessageRequest>,
}

async fn post_batch(
    State(api): State<Arc<Api>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let account = match api.basic(&headers, peer).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let request: BatchRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let mut messages = request.messages;
    for to in request.to {
        messages.push(MessageRequest {
            from: request.from.clone(),
            to,
            text: request.text.clone(),
            hex: request.hex.clone(),
            coding: request.coding,
            receipt: request.receipt,
            webhook: request.webhook.clone(),
            schedule: None,
            validity: None,
            priority: None,
        });
    }
    if messages.is_empty() || messages.len() > MAX_BATCH {
        return json_error(
            StatusCode::BAD_REQUEST,
            &format!("a batch has 1 to {MAX_BATCH} messages"),
        );
    }
    let batch = api.node.next_id();
    let mut submissions = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        match m.submission(&api, &account, Some(batch)) {
            Ok(s) => submissions.push(s),
            Err(e) => return json_error(StatusCode::BAD_REQUEST, &format!("message {i}: {e}")),
        }
    }
    // Accepted concurrently: the store commits them in a few group commits.
    let results = futures_join_all(submissions.into_iter().map(|s| {
        let node = api.node.clone();
        async move { accept(&node, s).await }
    }))
    .await;
    let mut recipients = Vec::with_capacity(messages.len());
    let mut refused = Vec::new();
    for (m, result) in messages.iter().zip(results) {
        match result {
            Ok(ids) => recipients.push((m.to.clone(), ids)),
            Err(refusal) => {
                refused.push(serde_json::json!({"to": m.to, "error": refusal.reason()}))
            }
        }
    }
    let record = BatchRecord {
        id: batch,
        account,
        created_ms: now_ms(),
        recipients,
    };
    if let Err(e) = api
        .node
        .store
        .write(vec![Op::PutBatch(record.clone())])
        .await
    {
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot store the batch: {e}"),
        );
    }
    Json(serde_json::json!({
        "batch": format_id(batch),
        "accepted": record.recipients.len(),
        "refused": refused,
    }))
    .into_response()
}

/// Runs futures at once (the few a batch needs; `tokio::spawn` would copy
/// the node for each).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in set.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|v| v.expect("every future finished"))
        .collect()
}

async fn get_batch(
    State(api): State<Arc<Api>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let account = match api.basic(&headers, peer).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let not_found = || json_error(StatusCode::NOT_FOUND, "no such batch");
    let Some(id) = parse_id(&id) else {
        return not_found();
    };
    match batch_report(&api.node, id, Some(&account)).await {
        Ok(Some(report)) => Json(report).into_response(),
        Ok(None) => not_found(),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// Batch `id`'s counts by state and per-recipient report (`None`: no such
/// batch, or not `account`'s when one is given).
pub(crate) async fn batch_report(
    node: &Node,
    id: u64,
    account: Option<&str>,
) -> Result<Option<serde_json::Value>, String> {
    let batch = match node.store.batch(id).await {
        Ok(Some(b)) if account.is_none_or(|a| b.account == a) => b,
        Ok(_) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    let mut report = Vec::with_capacity(batch.recipients.len());
    let mut done = 0;
    for (to, ids) in &batch.recipients {
        let mut parts = Vec::with_capacity(ids.len());
        for id in ids {
            let state = match node.store.message(*id).await {
                Ok(Some(record)) => {
                    if record.final_ms.is_some() {
                        done += 1;
                    }
                    message_json(&record)["state"]
                        .as_str()
                        .unwrap_or("UNKNOWN")
                        .to_owned()
                }
                Ok(None) => "EXPIRED_FROM_STORE".to_owned(),
                Err(e) => return Err(e.to_string()),
            };
            *states.entry(state.clone()).or_default() += 1;
            parts.push(serde_json::json!({"id": format_id(*id), "state": state}));
        }
        report.push(serde_json::json!({"to": to, "parts": parts}));
    }
    let total: usize = batch.recipients.iter().map(|(_, ids)| ids.len()).sum();
    Ok(Some(serde_json::json!({
        "batch": format_id(batch.id),
        "account": batch.account,
        "created_ms": batch.created_ms,
        "recipients": batch.recipients.len(),
        "messages": total,
        "final": done,
        "states": states,
        "report": report,
    })))
}

async fn admin_list_accounts(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Err(r) = api.admin(&headers).await {
        return r;
    }
    let accounts: Vec<serde_json::Value> = api
        .node
        .accounts
        .list()
        .iter()
        .map(|a| {
            serde_json::json!({
                "system_id": a.system_id,
                "password_hashed": smpp_server::credentials::is_hashed(&a.password),
                "allow": a.allow.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "certificate_name": a.certificate_name,
                "binds": api.node.binds.count(&a.system_id),
                "quota": quota_json(api.node.billing.quota(&a.system_id)),
            })
        })
        .collect();
    Json(serde_json::json!({ "accounts": accounts })).into_response()
}

/// The body of `PUT /api/v1/admin/accounts/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountRequest {
    /// Plain text (stored as an argon2id hash) or a PHC string.
    pub(crate) password: String,
    #[serde(default)]
    pub(crate) allow: Vec<String>,
    #[serde(default)]
    pub(crate) certificate_name: Option<String>,
}

async fn admin_put_account(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = api.admin(&headers).await {
        return r;
    }
    let request: AccountRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    match put_account(&api.node, &id, request).await {
        Ok(created) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(serde_json::json!({ "system_id": id }))).into_response()
        }
        Err((status, message)) => json_error(status, &message),
    }
}

/// Creates or replaces account `id` (stored, in force at once; a plain
/// password is stored as an argon2id hash); `true` when created.
pub(crate) async fn put_account(
    node: &Node,
    id: &str,
    request: AccountRequest,
) -> Result<bool, (StatusCode, String)> {
    let _changing = node.config_lock.lock().await;
    if id.is_empty() || id.len() > 15 || request.password.is_empty() {
        return Err((
            StatusCode::BAD_REQUEST,
            "a system_id of 1 to 15 characters and a password".into(),
        ));
    }
    let password = if smpp_server::credentials::is_hashed(&request.password) {
        request.password
    } else {
        let plain = request.password;
        match tokio::task::spawn_blocking(move || {
            smpp_server::credentials::hash_password(plain.as_bytes())
        })
        .await
        {
            Ok(Ok(phc)) => phc,
            _ => {
                return Err((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot hash the password".into(),
                ))
            }
        }
    };
    let stored = crate::store::StoredAccount {
        system_id: id.to_owned(),
        password,
        allow: request.allow,
        certificate_name: request.certificate_name,
    };
    let account =
        crate::accounts::from_stored(&stored).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    if let Err(e) = node.store.write(vec![Op::PutAccount(stored)]).await {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot store the account: {e}"),
        ));
    }
    let created = !node.accounts.contains(id);
    node.accounts
        .put(account)
        .map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    tracing::info!(account = id, created, "account set through the admin API");
    Ok(created)
}

async fn admin_delete_account(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = api.admin(&headers).await {
        return r;
    }
    let _changing = api.node.config_lock.lock().await;
    if !api.node.accounts.contains(&id) {
        return json_error(StatusCode::NOT_FOUND, "no such account");
    }
    if let Err(e) = api
        .node
        .store
        .write(vec![Op::DeleteAccount(id.clone())])
        .await
    {
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot store the change: {e}"),
        );
    }
    api.node.accounts.delete(&id);
    let closed = api.node.binds.close_account(&id);
    tracing::info!(
        account = id,
        closed,
        "account removed through the admin API"
    );
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_get_balance(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(account): Path<String>,
) -> Response {
    if let Err(r) = api.admin(&headers).await {
        return r;
    }
    if !api.node.accounts.contains(&account) {
        return json_error(StatusCode::NOT_FOUND, "no such account");
    }
    Json(quota_json(api.node.billing.quota(&account))).into_response()
}

/// The body of `POST /api/v1/admin/accounts/{id}/balance`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BalanceChange {
    /// Money to add (a decimal string or number; negative takes).
    #[serde(default)]
    add: Option<serde_json::Value>,
    /// SMS to add.
    #[serde(default)]
    add_sms: Option<i64>,
    /// Sets the money balance (`null`: unlimited).
    #[serde(default, deserialize_with = "some")]
    set: Option<Option<serde_json::Value>>,
    /// Sets the SMS count (`null`: unlimited).
    #[serde(default, deserialize_with = "some")]
    set_sms: Option<Option<i64>>,
}

/// Tells a `null` that was given from a field that was not.
fn some<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn money_value(v: &serde_json::Value) -> Result<i64, String> {
    match v {
        serde_json::Value::String(s) => parse_money(s),
        serde_json::Value::Number(n) => parse_money(&n.to_string()),
        other => Err(format!("not an amount: {other}")),
    }
}

async fn admin_set_balance(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(account): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = api.admin(&headers).await {
        return r;
    }
    if !api.node.accounts.contains(&account) {
        return json_error(StatusCode::NOT_FOUND, "no such account");
    }
    let change: BalanceChange = match parse_json(&body) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let add = match change.add.as_ref().map(money_value).transpose() {
        Ok(a) => a.unwrap_or(0),
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e),
    };
    let set = match change
        .set
        .map(|v| v.as_ref().map(money_value).transpose())
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e),
    };
    let _changing = api.node.config_lock.lock().await;
    let billing = &api.node.billing;
    // Additions go as deltas (they commute with charges in flight); a set
    // is written outright.
    let mut ops = Vec::new();
    if set.is_some() || change.set_sms.is_some() {
        let mut quota = billing.quota(&account);
        if let Some(set) = set {
            quota.balance = set;
        }
        if let Some(set) = change.set_sms {
            quota.sms = set;
        }
        billing.set(&account, quota);
        ops.push(Op::SetQuota {
            account: account.clone(),
            quota,
        });
    }
    let add_sms = change.add_sms.unwrap_or(0);
    let quota = billing.quota(&account);
    if (add != 0 && quota.balance.is_none()) || (add_sms != 0 && quota.sms.is_none()) {
        return json_error(
            StatusCode::CONFLICT,
            "that quota is unlimited: give it a value with \"set\" or \"set_sms\" first",
        );
    }
    if add != 0 || add_sms != 0 {
        billing.refund(
            &account,
            &crate::billing::Charge {
                price: 0,
                balance: add,
                sms: add_sms,
            },
        );
        ops.push(Op::Charge {
            account: account.clone(),
            balance: -add,
            sms: -add_sms,
        });
    }
    if let Err(e) = api.node.store.write(ops).await {
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot store the balance: {e}"),
        );
    }
    tracing::info!(account, "balance changed through the admin API");
    Json(quota_json(billing.quota(&account))).into_response()
}

async fn metrics(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Err(r) = api.admin(&headers).await {
        return r;
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        api.node.metrics.render(&api.node),
    )
        .into_response()
}
