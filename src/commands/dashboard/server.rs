//! The web side: the page and its script and style (built into the binary: the page fetches
//! nothing from anywhere else), the board as JSON, and one server-sent event stream per
//! browser, on a small async runtime. Streams end when the dashboard stops, so a stop is
//! never held up by an open page.

use std::convert::Infallible;
use std::future::IntoFuture as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use futures_util::Stream;
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

/// One browser's stream: the board first, then every change.
async fn events(State(app): State<App>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (first, changes) = app.hub.subscribe();
    let stream = Changes {
        hub: app.hub,
        changes,
        closed: app.closed,
        pending: Some(first),
    };
    let events = futures_util::stream::unfold(stream, |mut s| async move {
        let message = s.next().await?;
        Some((
            Ok(Event::default().event(message.kind).data(&message.data)),
            s,
        ))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

struct Changes {
    hub: Arc<Hub>,
    changes: broadcast::Receiver<Arc<Message>>,
    closed: watch::Receiver<bool>,
    pending: Option<Arc<Message>>,
}

impl Changes {
    /// The next event; `None` once the dashboard stops.
    async fn next(&mut self) -> Option<Arc<Message>> {
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
        }
    }
}
