//! The connection loop: accepts TCP connections and serves the router on each, with the
//! protections `axum::serve` leaves out.
//!
//! - **Header timeout.** A client has `header_timeout` to send a request's headers, counted
//!   from when the connection opens or the previous answer was sent, so a connection that
//!   sends nothing, sends its headers a byte at a time (slowloris), or sits idle between
//!   keep-alive requests is closed. hyper does this once a timer is installed (`axum::serve`
//!   installs none), except before the first byte, which this loop waits for itself.
//! - **Header size.** hyper reads at most 64 KiB of request head and answers larger ones with
//!   `431 Request Header Fields Too Large` (hyper's own, bodiless answer: the router never
//!   sees such a request).
//! - **Bounded shutdown.** When `shutdown` resolves, no new connection is accepted, idle
//!   connections are closed, in-flight requests may finish for up to `grace`, and then the
//!   loop returns regardless.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Largest request head (request line and headers) hyper reads.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Timeouts of the connection loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Time to send a request's headers, idle time included.
    pub header: Duration,
    /// Time in-flight requests get to finish after the shutdown signal.
    pub shutdown_grace: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves (see the module docs).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header)
        .max_buf_size(MAX_HEAD_BYTES);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    // Out of file descriptors, most likely: give connections time to close.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        stream.set_nodelay(true).ok();
        let service = app.clone().map_request(move |request: Request<Incoming>| {
            let mut request = request.map(Body::new);
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            request
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let header_timeout = timeouts.header;
        tokio::spawn(async move {
            // hyper's header timeout starts once it knows the protocol, which takes a first
            // byte: a client that never sends one is closed here.
            let mut first = [0u8; 1];
            match tokio::time::timeout(header_timeout, stream.peek(&mut first)).await {
                Ok(Ok(read)) if read > 0 => {}
                _ => return,
            }
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(service),
            );
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(timeouts.shutdown_grace) => {
            tracing::warn!(
                grace_secs = timeouts.shutdown_grace.as_secs(),
                "requests still in flight after the shutdown grace period; closing them"
            );
        }
    }
}
