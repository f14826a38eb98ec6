//! The HTTP control API of `smpp serve`:
//!
//! - `POST /api/mo` with a JSON [`MoRequest`] (`from`, `to`, `text` or `hex`,
//!   `coding`): sends a mobile-originated `deliver_sm` to the bound ESME that
//!   serves `to`; answers a [`MoResponse`] (`message_ids`, one per part).
//! - `GET /api/messages/{id}`: the message's state as JSON (404 when unknown).
//! - `GET /metrics`: Prometheus text exposition format 0.0.4.
//!
//! Errors are JSON `{"error": "..."}` with a 4xx/5xx status. Request bodies
//! are limited to [`MAX_BODY`] octets (413 beyond). What the server does is
//! the [`Backend`]'s business; this module only speaks HTTP.

use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::ValueEnum as _;
use serde::{Deserialize, Serialize};
use smpp_proto::message::ShortMessage;

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
    /// `auto` (default), `gsm7`, `ucs2`, `latin1` or `binary`.
    #[serde(default)]
    pub coding: Option<String>,
}

impl MoRequest {
    /// The coding asked (`auto` when absent).
    pub fn coding(&self) -> Result<Coding, ApiError> {
        match self.coding.as_deref() {
            None => Ok(Coding::Auto),
            Some(name) => Coding::from_str(name, true).map_err(|_| {
                ApiError::bad_request(format!(
                    "unknown coding {name:?}: use auto, gsm7, ucs2, latin1 or binary"
                ))
            }),
        }
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

/// Serves the API on `listener` until `shutdown` completes, then finishes the
/// requests in progress and returns.
pub async fn serve_http<B: Backend>(
    listener: tokio::net::TcpListener,
    backend: Arc<B>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router(backend))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The routes, for embedding in another server.
pub fn router<B: Backend>(backend: Arc<B>) -> Router {
    Router::new()
        .route("/api/mo", post(post_mo::<B>))
        .route("/api/messages/{id}", get(get_message::<B>))
        .route("/metrics", get(get_metrics::<B>))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(refuse_large_bodies))
        .with_state(backend)
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
