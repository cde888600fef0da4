//! The HTTP listener of `exposure watch` (`--metrics-addr`, loopback unless told otherwise):
//! `GET /metrics` (OpenMetrics text, rendered by [`super::metrics`]), `GET /ready` (200 once
//! the inputs are positioned and checkpointed, 503 before), and — only when `[check] endpoint
//! = true` — `POST /v1/check`, which judges a proposed permission change against the live
//! baselines (as of the last checkpoint) exactly as `exposure check` does.
//!
//! Served by axum on hyper, one request per connection. It defends itself as the detector
//! needs: at most [`MAX_CONNECTIONS`] connections at once (the rest wait in the kernel's
//! backlog), [`HEAD_TIMEOUT`] to send a request head and [`EXCHANGE_TIMEOUT`] in all, accept
//! errors (out of descriptors) backed off; a check's body is capped (`max_request_bytes`,
//! 413) and checks at once are capped (`max_concurrent`, 503). Every error is JSON with a
//! message; nothing of the request (headers, body) is echoed back.

use super::metrics::Metrics;
use crate::check::proposal::{self, ProposalOptions};
use crate::check::{CheckPolicy, Knowledge};
use crate::detect::{PermissionSettings, Policies};
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// At most this many connections are held at once; further ones wait in the kernel's backlog,
/// so a flood of connections can hold neither file descriptors nor CPU that detection and
/// delivery need. Far more than scrapers: idle connections (load balancers' probes, a port
/// scan, a client that connects and sends nothing) must not keep a scrape waiting.
pub const MAX_CONNECTIONS: usize = 256;

/// A connection gets this long to send its request head: one that sends nothing is closed
/// quickly, so idle connections free their slots well within a scraper's timeout.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(1);

/// A connection gets this long, in all, to send its request and take the answer.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Accept errors (out of file descriptors, most often) are retried after a pause doubling from
/// this up to [`ACCEPT_BACKOFF_MAX`], instead of spinning.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Where `watch` listens when the check endpoint is on and `--metrics-addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9464";

/// What a check is judged on: the state as of the last checkpoint, and the rules in force.
#[derive(Debug)]
pub struct Judging {
    pub knowledge: Knowledge,
    pub policies: Policies,
    pub permissions: PermissionSettings,
}

/// The check endpoint's shared state: the engine publishes a new [`Judging`] at each
/// checkpoint; requests take the one in place.
#[derive(Debug)]
pub struct CheckEndpoint {
    policy: CheckPolicy,
    judging: RwLock<Option<Arc<Judging>>>,
    slots: Semaphore,
}

impl CheckEndpoint {
    pub fn new(policy: CheckPolicy) -> CheckEndpoint {
        CheckEndpoint {
            slots: Semaphore::new(policy.max_concurrent),
            policy,
            judging: RwLock::new(None),
        }
    }

    /// Puts `judging` in place for the requests that come next.
    pub fn publish(&self, judging: Judging) {
        *self.judging.write().expect("not poisoned") = Some(Arc::new(judging));
    }

    fn current(&self) -> Option<Arc<Judging>> {
        self.judging.read().expect("not poisoned").clone()
    }
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    check: Option<Arc<CheckEndpoint>>,
}

/// The routes (also what the tests and the bench call without a socket).
fn router(metrics: Arc<Metrics>, check: Option<Arc<CheckEndpoint>>) -> Router {
    let mut router = Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/ready", get(ready));
    if check.is_some() {
        router = router.route("/v1/check", post(serve_check));
    }
    router
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "GET /metrics and /ready; POST /v1/check",
            )
        })
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such endpoint: GET /metrics, GET /ready, POST /v1/check (when enabled)",
            )
        })
        .with_state(Shared { metrics, check })
}

/// A JSON error: `{"error": message}`.
fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn serve_metrics(State(shared): State<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.render(),
    )
        .into_response()
}

async fn ready(State(shared): State<Shared>) -> Response {
    if shared.metrics.ready.load(Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

/// `POST /v1/check` query parameters: what `exposure check`'s flags say.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CheckQuery {
    kind: Option<String>,
    dialect: Option<String>,
    object: Option<String>,
    schema: Option<String>,
    database: Option<String>,
}

async fn serve_check(
    State(shared): State<Shared>,
    query: Result<Query<CheckQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Response {
    let Some(endpoint) = shared.check else {
        return error(StatusCode::NOT_FOUND, "the check endpoint is off");
    };
    let Ok(Query(query)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "unknown or bad query parameter (kind, dialect, object, schema, database)",
        );
    };
    let Ok(_slot) = endpoint.slots.try_acquire() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "busy: {} checks at once ([check] max_concurrent); try again",
                endpoint.policy.max_concurrent
            ),
        );
    };
    let limit = endpoint.policy.max_request_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the change is larger than {limit} bytes ([check] max_request_bytes)"),
            );
        }
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return error(StatusCode::BAD_REQUEST, "the change is not UTF-8 text");
    };
    let Some(judging) = endpoint.current() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no state yet: the check endpoint answers after the first checkpoint",
        );
    };
    let mut options = ProposalOptions {
        object: query.object,
        schema: query.schema,
        database: query.database,
        ..Default::default()
    };
    let parsed = (|| -> Result<(), String> {
        if let Some(kind) = &query.kind {
            options.kind = kind.parse()?;
        }
        if let Some(dialect) = &query.dialect {
            options.dialect = dialect.parse()?;
        }
        Ok(())
    })();
    if let Err(message) = parsed {
        return error(StatusCode::BAD_REQUEST, &message);
    }
    let text = text.to_string();
    let policy = endpoint.policy.clone();
    // The judge is CPU work: off the async threads.
    let answer = tokio::task::spawn_blocking(move || {
        let proposal = proposal::read(&text, &options).map_err(|e| e.to_string())?;
        let rules = crate::check::Rules {
            policies: &judging.policies,
            permissions: &judging.permissions,
            check: &policy,
        };
        let report = crate::check::check(&judging.knowledge, &proposal, rules);
        serde_json::to_string(&report).map_err(|e| e.to_string())
    })
    .await;
    match answer {
        Ok(Ok(json)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response(),
        Ok(Err(message)) => error(StatusCode::UNPROCESSABLE_ENTITY, &message),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the check failed"),
    }
}

/// Binds `addr` for [`serve`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves the routes on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    check: Option<Arc<CheckEndpoint>>,
) {
    let service = hyper_util::service::TowerToHyperService::new(router(metrics, check));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = Duration::ZERO;
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                backoff = Duration::ZERO;
                let service = service.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let connection = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(HEAD_TIMEOUT)
                        .keep_alive(false)
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, connection).await;
                });
            }
            Err(e) => {
                if backoff.is_zero() {
                    tracing::warn!(error = %e, "http: cannot accept a connection; backing off");
                }
                backoff = (backoff * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
                tokio::time::sleep(backoff).await;
            }
        }
    }
}
