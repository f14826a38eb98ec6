//! The HTTP control API of `smpp serve`:
//!
//! - `POST /api/mo` with a JSON [`MoRequest`] (`from`, `to`, `text` or `hex`,
//!   `coding`, `tlvs`: `["TAG=HEX", ...]`): sends a mobile-originated `deliver_sm` to the bound ESME that
//!   serves `to`; answers a [`MoResponse`] (`message_ids`, one per part).
//! - `GET /api/messages/{id}`: the message's state as JSON (404 when unknown).
//! - `GET /metrics`: Prometheus text exposition format 0.0.4.
//!
//! With a token ([`HttpAuth`]), every request needs `Authorization: Bearer
//! TOKEN` (compared in constant time, or verified against an argon2id hash,
//! successes cached) and gets 401 without it; `/metrics` too unless
//! [`HttpAuth::metrics_open`]. Too many wrong tokens from one address get
//! it 429 for a while ([`HttpAuth::lockout`]).
//!
//! Errors are JSON `{"error": "..."}` with a 4xx/5xx status. Request bodies
//! are limited to [`MAX_BODY`] octets (413 beyond). What the server does is
//! the [`Backend`]'s business; this module only speaks HTTP.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use clap::ValueEnum as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use smpp_proto::message::ShortMessage;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::send::{message_content, Coding};

/// Largest request body accepted, in octets.
pub const MAX_BODY: usize = 64 * 1024;

/// The `Content-Type` of `GET /metrics`.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the HTTP API asks of the server.
pub trait Backend: Send + Sync + 'static {
    /// Delivers a mobile-originated message to the ESME bound for `mo.to`; the
    /// request has been checked ([`MoRequest::short_message`] succeeds). Fails
    /// with 404 when no bound ESME serves that address.
    fn inject_mo(&self, mo: MoRequest)
        -> impl Future<Output = Result<MoResponse, ApiError>> + Send;

    /// A message's state as JSON, `None` when the id is unknown.
    fn message(&self, id: &str) -> Option<serde_json::Value>;

    /// The metrics in the Prometheus text format (e.g. [`Metrics::render`](super::metrics::Metrics::render)).
    fn metrics(&self) -> String;

    /// The counters the dashboard shows (none by default).
    fn snapshot(&self) -> smpp_server::metrics::Snapshot {
        smpp_server::metrics::Snapshot::default()
    }

    /// The bound sessions, oldest first (none by default).
    fn sessions(&self) -> Vec<smpp_server::SessionView> {
        Vec::new()
    }

    /// The bound sessions with their connections, when the backend has
    /// them (the dashboard asks them for their window use).
    fn session_connections(
        &self,
    ) -> Vec<(smpp_server::SessionView, Option<smpp_tokio::Connection>)> {
        self.sessions().into_iter().map(|s| (s, None)).collect()
    }

    /// Unbinds bound session `id`; `false` when there is none.
    fn unbind_session(&self, id: u64) -> bool {
        let _ = id;
        false
    }

    /// The recent messages `filter` matches, newest first, at most `limit`,
    /// as JSON like [`Backend::message`] (none by default).
    fn search(&self, filter: &smpp_server::MessageFilter, limit: usize) -> Vec<serde_json::Value> {
        let _ = (filter, limit);
        Vec::new()
    }

    /// The outcome rules, weights and receipt delay in force (`None`: not
    /// a simulator).
    fn simulation(&self) -> Option<smpp_server::Simulation> {
        None
    }

    /// Puts other rules, weights and receipt delay in force; `false` when
    /// it cannot.
    fn set_simulation(&self, simulation: smpp_server::Simulation) -> bool {
        let _ = simulation;
        false
    }
}

/// The body of `POST /api/mo`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoRequest {
    /// Originator (the mobile subscriber).
    pub from: String,
    /// Destination (an address a bound ESME serves).
    pub to: String,
    /// The text (exclusive with `hex`).
    #[serde(default)]
    pub text: Option<String>,
    /// The user data as hex octets (exclusive with `text`).
    #[serde(default)]
    pub hex: Option<String>,
    /// `auto` (default), `gsm7`, `ucs2`, `latin1`, `cyrillic`, `hebrew` or `binary`.
    #[serde(default)]
    pub coding: Option<String>,
    /// TLVs every part carries, as `smpp send --tlv` takes them:
    /// `TAG=HEX`, the tag by name or number.
    #[serde(default)]
    pub tlvs: Vec<String>,
}

impl MoRequest {
    /// The coding asked (`auto` when absent).
    pub fn coding(&self) -> Result<Coding, ApiError> {
        match self.coding.as_deref() {
            None => Ok(Coding::Auto),
            Some(name) => Coding::from_str(name, true).map_err(|_| {
                ApiError::bad_request(format!(
                    "unknown coding {name:?}: use auto, gsm7, ucs2, latin1, cyrillic, hebrew or binary"
                ))
            }),
        }
    }

    /// The TLVs asked, checked.
    pub fn tlvs(&self) -> Result<Vec<(smpp_proto::pdu::TlvTag, Vec<u8>)>, ApiError> {
        self.tlvs
            .iter()
            .map(|t| {
                crate::send::parse_tlv(t.trim())
                    .map(|t| (t.tag, t.value))
                    .map_err(|e| ApiError::bad_request(format!("TLV {t:?}: {e}")))
            })
            .collect()
    }

    /// The message, with `from` and `to` set; build its parts with
    /// [`ShortMessage::build`] (a `deliver_sm` body is a `SubmitSm`). Fails
    /// with 400 on a missing `to`, both or neither of `text`/`hex`, bad hex,
    /// an unknown coding, or a text the coding cannot carry.
    pub fn short_message(&self) -> Result<ShortMessage, ApiError> {
        if self.to.trim().is_empty() {
            return Err(ApiError::bad_request("`to` is empty"));
        }
        let coding = self.coding()?;
        let message = message_content(self.text.as_deref(), self.hex.as_deref(), coding)
            .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
        Ok(message.from(self.from.as_str()).to(self.to.as_str()))
    }
}

/// The answer to `POST /api/mo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoResponse {
    /// One id per `deliver_sm` part sent.
    pub message_ids: Vec<String>,
}

/// An HTTP error: status code and message, sent as `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    /// HTTP status code (400, 404, 503...).
    pub status: u16,
    /// What went wrong.
    pub message: String,
}

impl ApiError {
    /// Any status.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 404: nothing there (no bound ESME for the address, unknown message id).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// 502: the ESME refused or did not answer.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(502, message)
    }

    /// 503: the server cannot take it now (throttled, shutting down).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

/// Who may use the API: requests must carry the token (when there is one).
#[derive(Debug, Default)]
pub struct HttpAuth {
    /// The bearer token (plain or hashed); `None`: no authentication.
    pub token: Option<smpp_server::credentials::Secret>,
    /// `/metrics` answers without the token.
    pub metrics_open: bool,
    /// Wrong tokens per client address: over the limit, the address gets
    /// 429 for the cool-down without its token being checked (a hashed
    /// token costs argon2 per wrong guess). Counted when served by
    /// [`serve_http_secured`], which knows the client's address.
    pub lockout: Option<smpp_server::lockout::Lockout>,
}

/// The client's address, as a request extension.
#[derive(Debug, Clone, Copy)]
struct ClientAddr(std::net::SocketAddr);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl HttpAuth {
    /// No authentication: for loopback addresses and tests.
    pub fn open() -> HttpAuth {
        HttpAuth::default()
    }
}

/// Connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 256;

/// Time a client has to send a request's headers (idle keep-alive connections
/// are closed after it too).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a request may take from its headers to the answer, body included (408 beyond).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Time given to requests in progress at shutdown before their connections are dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The limits that keep slow or silent clients from holding resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections served at once ([`MAX_CONNECTIONS`]).
    pub max_connections: usize,
    /// Time to send a request's headers ([`HEADER_TIMEOUT`]).
    pub header_timeout: Duration,
    /// Time from headers to answer ([`REQUEST_TIMEOUT`]).
    pub request_timeout: Duration,
    /// Time for requests in progress at shutdown ([`SHUTDOWN_GRACE`]).
    pub shutdown_grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            shutdown_grace: SHUTDOWN_GRACE,
        }
    }
}

/// Serves the API on `listener` until `shutdown` completes, then lets the
/// requests in progress finish (at most [`SHUTDOWN_GRACE`]) and returns.
///
/// At most [`MAX_CONNECTIONS`] connections are served at once, headers must
/// arrive within [`HEADER_TIMEOUT`], and a request is answered within
/// [`REQUEST_TIMEOUT`]: a slow or silent client cannot hold resources for long.
pub async fn serve_http<B: Backend>(
    listener: tokio::net::TcpListener,
    backend: Arc<B>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_http_with(listener, backend, shutdown, HttpLimits::default()).await
}

/// [`serve_http`] with other limits.
pub async fn serve_http_with<B: Backend>(
    listener: tokio::net::TcpListener,
    backend: Arc<B>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: HttpLimits,
) -> io::Result<()> {
    serve_http_secured(listener, backend, shutdown, limits, HttpAuth::open(), None).await
}

/// [`serve_http_with`], requests authenticated by `auth`, over TLS with
/// `tls` (the handshake within [`HttpLimits::header_timeout`]).
pub async fn serve_http_secured<B: Backend>(
    listener: tokio::net::TcpListener,
    backend: Arc<B>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: HttpLimits,
    auth: HttpAuth,
    tls: Option<Arc<smpp_tokio::rustls::ServerConfig>>,
) -> io::Result<()> {
    let app = router_with(backend, limits.request_timeout, Arc::new(auth));
    serve_router(listener, app, shutdown, limits, tls).await
}

/// Serves any `app` with the same connection handling as the API: at most
/// [`HttpLimits::max_connections`] at once, header and handshake time
/// limits, optional TLS, a graceful stop. Each request carries the client's
/// address as `axum::extract::ConnectInfo<SocketAddr>`. (The request time
/// limit is the router's own business.)
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: HttpLimits,
    tls: Option<Arc<smpp_tokio::rustls::ServerConfig>>,
) -> io::Result<()> {
    let acceptor = tls.map(smpp_tokio::tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break, // never closed
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_per_connection(&e) => {
                    tracing::debug!("accept: {e}");
                    continue;
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("http accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(
            app.clone()
                .layer(Extension(ClientAddr(peer)))
                .layer(Extension(axum::extract::ConnectInfo(peer))),
        );
        let stopping = stopping.clone();
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            let _slot = slot;
            let Some(acceptor) = acceptor else {
                return serve_connection(stream, service, limits, stopping, peer).await;
            };
            match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve_connection(tls, service, limits, stopping, peer).await,
                Ok(Err(e)) => tracing::debug!(%peer, "https handshake: {e}"),
                Err(_) => tracing::debug!(%peer, "https handshake timed out"),
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
    Ok(())
}

/// Serves one connection (plain or TLS) until it ends, or gracefully once
/// `stopping` turns true.
async fn serve_connection<S>(
    stream: S,
    service: TowerToHyperService<Router>,
    limits: HttpLimits,
    mut stopping: watch::Receiver<bool>,
    peer: std::net::SocketAddr,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, "http connection: {e}");
            }
            return;
        }
        _ = stopping.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
    }
    if let Err(e) = conn.await {
        tracing::debug!(%peer, "http connection: {e}");
    }
}

/// Accept errors that concern one connection only.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The routes, for embedding in another server.
pub fn router<B: Backend>(backend: Arc<B>) -> Router {
    router_with(backend, REQUEST_TIMEOUT, Arc::new(HttpAuth::open()))
}

/// The routes, each request authenticated by `auth`.
pub fn router_secured<B: Backend>(backend: Arc<B>, auth: HttpAuth) -> Router {
    router_with(backend, REQUEST_TIMEOUT, Arc::new(auth))
}

fn router_with<B: Backend>(
    backend: Arc<B>,
    request_timeout: Duration,
    auth: Arc<HttpAuth>,
) -> Router {
    let secure_cookie = auth.token.is_some();
    Router::new()
        .route("/api/mo", post(post_mo::<B>))
        .route("/api/messages/{id}", get(get_message::<B>))
        .route("/metrics", get(get_metrics::<B>))
        .with_state(backend.clone())
        .merge(super::dashboard::routes(super::dashboard::Dashboard::new(
            backend,
        )))
        .merge(
            Router::new()
                .route("/login", get(login_form).post(login))
                .with_state(LoginState {
                    auth: auth.clone(),
                    secure: secure_cookie,
                }),
        )
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(refuse_large_bodies))
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            time_limit,
        ))
        // Outermost: nothing else (not even the body limits) for a stranger.
        .layer(axum::middleware::from_fn_with_state(auth, require_token))
}

async fn login_form() -> maud::Markup {
    smpp_server::dashboard::login_page("smpp serve", None)
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
}

#[derive(Debug, Clone)]
struct LoginState {
    auth: Arc<HttpAuth>,
    /// The cookie is marked `Secure` (a token is only configured with TLS
    /// or on loopback; browsers keep `Secure` cookies of `http://localhost`).
    secure: bool,
}

/// Checks the token of the login form; keeps it in a cookie and goes to
/// the overview, or shows the form again. Wrong tokens count towards the
/// lockout as bearer tokens do.
async fn login(
    State(state): State<LoginState>,
    client: Option<Extension<ClientAddr>>,
    axum::extract::Form(form): axum::extract::Form<LoginForm>,
) -> Response {
    let Some(token) = &state.auth.token else {
        return axum::response::Redirect::to("/").into_response();
    };
    let page = |status: StatusCode, error: &str| {
        (
            status,
            smpp_server::dashboard::login_page("smpp serve", Some(error)),
        )
            .into_response()
    };
    let lockout = state
        .auth
        .lockout
        .as_ref()
        .zip(client.map(|Extension(c)| c.0.ip()));
    if lockout.is_some_and(|(l, ip)| l.locked(ip, now_ms())) {
        return page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong tokens from this address: wait.",
        );
    }
    if token.verify(form.token.as_bytes()).await {
        if let Some(cookie) = smpp_server::dashboard::token_cookie(&form.token, state.secure) {
            let mut response = axum::response::Redirect::to("/").into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            return response;
        }
    }
    if let Some((lockout, ip)) = lockout {
        if lockout.failed(ip, now_ms()) == smpp_server::lockout::Failure::LockedOut {
            tracing::warn!(%ip, "too many wrong HTTP tokens: address locked out");
        }
    }
    page(StatusCode::UNAUTHORIZED, "Wrong token.")
}

/// The token after `Bearer ` (the scheme is case-insensitive).
fn bearer(request: &axum::extract::Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

/// Answers 401 to a request without the right bearer token.
async fn require_token(
    State(auth): State<Arc<HttpAuth>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(token) = &auth.token else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    // The login form and what it needs to look right are open.
    if (auth.metrics_open && path == "/metrics")
        || path == "/login"
        || path == "/ui/app.css"
        || path == "/ui/app.js"
    {
        return next.run(request).await;
    }
    // A browser that is not signed in is sent to the form (API clients get 401).
    let browser = request.method() == axum::http::Method::GET
        && smpp_server::dashboard::wants_html(request.headers());
    let client = request.extensions().get::<ClientAddr>().map(|c| c.0.ip());
    let lockout = auth.lockout.as_ref().zip(client);
    if let Some((lockout, ip)) = lockout {
        if lockout.locked(ip, now_ms()) {
            return ApiError::new(429, "too many wrong tokens from this address: wait")
                .into_response();
        }
    }
    // The lockout is asked again just before hashing (a burst of guesses).
    let may_hash = || lockout.is_none_or(|(l, ip)| !l.locked(ip, now_ms()));
    let presented =
        bearer(&request).or_else(|| smpp_server::dashboard::cookie_token(request.headers()));
    let verified = match presented {
        Some(presented) => token.verify_gated(presented.as_bytes(), may_hash).await,
        None if browser => {
            return axum::response::Redirect::to("/login").into_response();
        }
        None => Some(false),
    };
    match verified {
        Some(true) => next.run(request).await,
        None => ApiError::new(429, "too many wrong tokens from this address: wait").into_response(),
        Some(false) => {
            if let Some((lockout, ip)) = lockout {
                if lockout.failed(ip, now_ms()) == smpp_server::lockout::Failure::LockedOut {
                    tracing::warn!(%ip, "too many wrong HTTP tokens: address locked out");
                }
            }
            if browser {
                return axum::response::Redirect::to("/login").into_response();
            }
            let mut response = ApiError::new(401, "missing or wrong bearer token").into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            response
        }
    }
}

/// Answers 408 when a request (reading its body included) takes longer than the limit.
async fn time_limit(
    State(limit): State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(408, "request took too long").into_response(),
    }
}

/// Refuses a body announced larger than [`MAX_BODY`] before reading it (the
/// body limit alone would wait for the octets to arrive).
async fn refuse_large_bodies(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY as u64) {
        return ApiError::new(413, format!("body larger than {MAX_BODY} octets")).into_response();
    }
    next.run(request).await
}

async fn post_mo<B: Backend>(
    State(backend): State<Arc<B>>,
    body: Result<Json<MoRequest>, JsonRejection>,
) -> Result<Json<MoResponse>, ApiError> {
    let Json(mo) = body.map_err(|e| {
        let status = e.status();
        let message = e.body_text();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(413, format!("body larger than {MAX_BODY} octets"))
        } else {
            ApiError::bad_request(message)
        }
    })?;
    mo.short_message()?;
    backend.inject_mo(mo).await.map(Json)
}

async fn get_message<B: Backend>(
    State(backend): State<Arc<B>>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    backend
        .message(&id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no message {id:?}")))
}

async fn get_metrics<B: Backend>(State(backend): State<Arc<B>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        backend.metrics(),
    )
}
