//! `GET /metrics`, `/health` and `/health/expiry` over HTTP/1.1 (hyper),
//! for a local scraper: bind it to 127.0.0.1.
//!
//! - `/metrics`: [`super::Metrics::render`] in the OpenMetrics text format
//!   ([`super::CONTENT_TYPE`]);
//! - `/health`: `200 ok`, `200 degraded: WHY` (free space below the store's
//!   reserve: new work is refused, the rest works) or `503 unhealthy: WHY`
//!   (storage is not responding);
//! - `/health/expiry`: one line per expiring item (`ITEM END DAYS`, see
//!   `docs/CONFIG.md`).
//!
//! Anything else is `404`; a method other than GET or HEAD is `405`; a
//! request with a body is `413`. Each connection is served in a task of its
//! own with keep-alive, so a slow or silent client does not hold up a health
//! check; [`Limits`] bounds how many at once (the next is answered `503` at
//! once), how long a request head may take (which also closes an idle
//! keep-alive connection), the head's size and a connection's lifetime. When
//! `stop` turns true (or its sender is dropped) the listener closes, each
//! connection finishes the answer it is writing and closes, and
//! [`serve`] returns once every connection task has ended.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::store::StoreHealth;

/// How much a client may ask of the endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; one more is answered `503` and closed.
    pub max_connections: usize,
    /// How long a client has to send a whole request head, counted from
    /// the connection's start or the end of the previous answer (so an idle
    /// keep-alive connection is closed after it too).
    pub header_timeout: Duration,
    /// After this a connection finishes its current answer and closes (a
    /// scraper reconnects); bounds a client that never reads its answer.
    pub connection_lifetime: Duration,
    /// How long a connection may take to finish its answer once it is told
    /// to close (at shutdown or at the end of its lifetime).
    pub close_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            header_timeout: Duration::from_secs(10),
            connection_lifetime: Duration::from_secs(120),
            close_grace: Duration::from_secs(2),
        }
    }
}

/// Largest request head read (hyper's smallest allowed read buffer).
const MAX_HEAD_BYTES: usize = 8 * 1024;

/// What the endpoint answers with, each read at the moment of the request.
pub struct Endpoints {
    /// The `/metrics` text.
    pub metrics: Box<dyn Fn() -> String + Send + Sync>,
    /// The store's health, for `/health`.
    pub health: Box<dyn Fn() -> StoreHealth + Send + Sync>,
    /// The `/health/expiry` text.
    pub expiry: Box<dyn Fn() -> String + Send + Sync>,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints").finish_non_exhaustive()
    }
}

/// Serves `endpoints` on `listener` until `stop` turns true (or its sender
/// is dropped), then lets each connection finish its answer (within
/// [`Limits::close_grace`]) and returns when all have ended.
pub async fn serve(
    listener: TcpListener,
    endpoints: Endpoints,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "metrics and health endpoint listening");
    }
    let endpoints = Arc::new(endpoints);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    while !*stop.borrow_and_update() {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: do not spin.
                        warn!(error = %e, "metrics endpoint: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        connections.spawn(connection(
                            stream,
                            endpoints.clone(),
                            limits,
                            stop.clone(),
                            slot,
                        ));
                    }
                    Err(_) => {
                        connections.spawn(busy(stream, limits.close_grace));
                    }
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    drop(listener);
    // Each connection sees `stop` and closes within its grace; this bound
    // is only for a task that does not.
    let drained = tokio::time::timeout(limits.close_grace * 2, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

/// Serves one connection: requests one after another (keep-alive) until
/// the client closes, a limit ends it, or the endpoint stops.
async fn connection(
    stream: TcpStream,
    endpoints: Arc<Endpoints>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let service = service_fn(move |req: Request<Incoming>| {
        let endpoints = endpoints.clone();
        async move { Ok::<_, Infallible>(respond(&endpoints, &req)) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .max_buf_size(MAX_HEAD_BYTES);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.wait_for(|stopped| *stopped) => {}
        _ = tokio::time::sleep(limits.connection_lifetime) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(limits.close_grace, conn).await;
}

/// Tells a client over [`Limits::max_connections`] to come back later.
async fn busy(mut stream: TcpStream, grace: Duration) {
    const BUSY: &[u8] =
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
        Content-Length: 5\r\nRetry-After: 1\r\nConnection: close\r\n\r\nbusy\n";
    let _ = tokio::time::timeout(grace, async {
        stream.write_all(BUSY).await?;
        stream.shutdown().await
    })
    .await;
}

/// The answer to one request.
fn respond(endpoints: &Endpoints, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let body = req.body();
    if !body.is_end_stream() || body.size_hint().lower() > 0 {
        // The body is not read: the connection closes after this answer.
        let mut r = text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "requests here carry no body\n".into(),
        );
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    match req.uri().path() {
        "/metrics" => {
            let mut r = Response::new(Full::new(Bytes::from((endpoints.metrics)())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(super::CONTENT_TYPE),
            );
            r
        }
        "/health" => match (endpoints.health)() {
            StoreHealth::Ok => text(StatusCode::OK, "ok\n".into()),
            StoreHealth::Degraded(why) => text(StatusCode::OK, format!("degraded: {why}\n")),
            StoreHealth::Unhealthy(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("unhealthy: {why}\n"),
            ),
        },
        "/health/expiry" => text(StatusCode::OK, (endpoints.expiry)()),
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests;
