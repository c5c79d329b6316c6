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
//! - **HTTP/2.** The same rule for a connection that carries no request: with nothing in
//!   flight for `header` time it is closed; and a peer that stops answering keep-alive
//!   pings (sent after `header` time without a frame, answered within `header` time) is
//!   closed too, as is one that sends its preface and then nothing.
//! - **Request bodies** must arrive within `--body-timeout` (see
//!   [`crate::http::extract`]): a body that trickles gets 408 and the connection is closed.
//! - **Connection cap.** At most `max_connections` connections are open at once (by default
//!   three quarters of the file-descriptor limit, which `serve` first raises to its hard
//!   limit): past it, new connections wait in the kernel's backlog until one closes, and the
//!   connections held are served as usual. Should `accept` still fail (out of descriptors),
//!   the loop backs off and says so at most once every 10 s.
//! - **Bounded shutdown.** When `shutdown` resolves, no new connection is accepted, idle
//!   connections are closed, in-flight requests may finish for up to `grace`, and then the
//!   loop returns regardless.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Limits of the connection loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to send a request's headers, idle time included.
    pub header: Duration,
    /// Time in-flight requests get to finish after the shutdown signal.
    pub shutdown_grace: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// Raises this process's soft file-descriptor limit to its hard limit; the limit then in
/// force.
pub fn raise_descriptor_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(%error, "cannot raise the file-descriptor limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// The default of `--max-connections` under a descriptor limit of `limit`: three quarters of
/// it, leaving the rest for the database, files and the listener.
pub fn default_max_connections(limit: u64) -> usize {
    usize::try_from(limit / 4 * 3).unwrap_or(usize::MAX).max(1)
}

/// Requests in flight on one connection, and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    idle_since: parking_lot::Mutex<Instant>,
}

impl Activity {
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        Some(self.idle_since.lock().elapsed())
    }
}

/// Counts a request in flight until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.idle_since.lock() = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Resolves once `activity` has had nothing in flight for `limit`.
async fn idle(activity: &Activity, limit: Duration) {
    loop {
        let wait = match activity.idle_for() {
            Some(idle) if idle >= limit => return,
            Some(idle) => limit - idle,
            None => limit,
        };
        tokio::time::sleep(wait).await;
    }
}

/// Serves `app` on `listener` until `shutdown` resolves (see the module docs).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(timeouts.header))
        .keep_alive_timeout(timeouts.header);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(timeouts.max_connections));
    let mut last_complaint: Option<Instant> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    // Out of file descriptors, most likely: give connections time to close,
                    // and say so now and then, not once a refusal.
                    if last_complaint.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                        tracing::warn!(%error, "cannot accept a connection (retrying; said at most once every 10 s)");
                        last_complaint = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        stream.set_nodelay(true).ok();
        let activity = Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            idle_since: parking_lot::Mutex::new(Instant::now()),
        });
        let counted = Arc::clone(&activity);
        let service = app
            .clone()
            .map_request(move |request: Request<Incoming>| {
                let mut request = request.map(Body::new);
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request
            })
            .map_future(move |answer| {
                let in_flight = InFlight::new(&counted);
                async move {
                    // In flight until its body is sent (the body is dropped then), so a slow
                    // reader of a long answer is not taken for an idle connection.
                    let response = answer.await?;
                    Ok::<_, std::convert::Infallible>(response.map(|body| {
                        Body::new(http_body_util::BodyExt::map_frame(body, move |frame| {
                            let _held = &in_flight;
                            frame
                        }))
                    }))
                }
            });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let header_timeout = timeouts.header;
        tokio::spawn(async move {
            let _permit = permit;
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
            // HTTP/1 closes an idle connection itself (the header timeout); this closes an
            // idle HTTP/2 one, whose pings a live client answers.
            tokio::select! {
                ended = watcher.watch(connection.into_owned()) => {
                    if let Err(error) = ended {
                        tracing::debug!(%error, %peer, "connection ended with an error");
                    }
                }
                () = idle(&activity, header_timeout) => {
                    tracing::debug!(%peer, "closing an idle connection");
                }
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
