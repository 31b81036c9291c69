//! The web side: the page and its script and style (built into the binary: the page fetches
//! nothing from anywhere else), the board as JSON, and one server-sent event stream per
//! browser, on a small async runtime. Streams end when the dashboard stops, so a stop is
//! never held up by an open page.

use std::convert::Infallible;
use std::future::IntoFuture as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::sync::{broadcast, watch};

use super::hub::{Hub, Message};
use crate::signals::{Stop, PATIENCE};

const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

#[derive(Clone)]
struct App {
    hub: Arc<Hub>,
    /// Turns true when the dashboard stops: every stream ends.
    closed: watch::Receiver<bool>,
}

/// Serves until `stop`; then ends every stream and waits for the connections to close, at
/// most `PATIENCE`.
pub fn run(listener: std::net::TcpListener, hub: Arc<Hub>, stop: &Stop) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("dashboard-http")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(serve(listener, hub, stop.clone()));
    runtime.shutdown_timeout(Duration::from_millis(100));
    served
}

async fn serve(listener: std::net::TcpListener, hub: Arc<Hub>, stop: Stop) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let (close, closed) = watch::channel(false);
    let app = Router::new()
        .route("/", get(page))
        .route("/app.js", get(script))
        .route("/app.css", get(style))
        .route("/events", get(events))
        .route("/api/state", get(state))
        .with_state(App { hub, closed });
    let stopped = {
        let stop = stop.clone();
        async move {
            while !stop.requested() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = close.send(true);
        }
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(stopped);
    let out_of_patience = async {
        while !stop.out_of_patience() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        served = server.into_future() => served.context("serving the dashboard"),
        () = out_of_patience => {
            tracing::debug!(
                target: super::LOG,
                "connections still open {} after the stop: closed",
                humantime::format_duration(PATIENCE)
            );
            Ok(())
        }
    }
}

fn asset(kind: &'static str, body: &'static str) -> impl IntoResponse {
    ([(CONTENT_TYPE, kind), (CACHE_CONTROL, "no-cache")], body)
}

async fn page() -> impl IntoResponse {
    asset("text/html; charset=utf-8", PAGE)
}

async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE)
}

async fn state(State(app): State<App>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "application/json")],
        app.hub.snapshot().to_string(),
    )
}

/// How often an idle stream says it is alive, so that proxies and browsers keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One browser's stream of server-sent events: the board first, then every change. The
/// events are framed once by the hub and shared by every stream (no per-stream copy).
async fn events(State(app): State<App>) -> impl IntoResponse {
    let (first, changes) = app.hub.subscribe();
    super::metrics::stream_opened();
    let stream = Changes {
        hub: app.hub,
        changes,
        closed: app.closed,
        pending: Some(first),
    };
    let body = futures_util::stream::unfold(stream, |mut s| async move {
        let frame = s.next().await?;
        Some((Ok::<_, Infallible>(frame), s))
    });
    (
        [
            (CONTENT_TYPE, "text/event-stream"),
            (CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
}

struct Changes {
    hub: Arc<Hub>,
    changes: broadcast::Receiver<Message>,
    closed: watch::Receiver<bool>,
    pending: Option<Message>,
}

impl Drop for Changes {
    fn drop(&mut self) {
        super::metrics::stream_closed();
    }
}

impl Changes {
    /// The next event; `None` once the dashboard stops.
    async fn next(&mut self) -> Option<Message> {
        if let Some(first) = self.pending.take() {
            return Some(first);
        }
        tokio::select! {
            change = self.changes.recv() => match change {
                Ok(message) => Some(message),
                // Too slow to follow: a fresh board, and the changes from then on.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let (snapshot, changes) = self.hub.subscribe();
                    self.changes = changes;
                    Some(snapshot)
                }
                Err(broadcast::error::RecvError::Closed) => None,
            },
            _ = self.closed.wait_for(|closed| *closed) => None,
            () = tokio::time::sleep(KEEP_ALIVE) => Some(Bytes::from_static(b": alive\n\n")),
        }
    }
}
