//! The standalone HTTP server: the router over HTTP/1.1, with slow clients bounded.
//!
//! - **Header-read timeout** (`RELAY_HEADER_TIMEOUT_MS`): a connection that does not deliver a
//!   complete request head in time is closed — half-open and trickling connections, and idle
//!   keep-alive connections waiting for their next request.
//! - **Body-read timeout** (`RELAY_BODY_TIMEOUT_MS`, in the router): a body not received in time
//!   is answered with a Cognito-shaped error.
//! - **Connection caps**: at most `RELAY_MAX_CONNECTIONS` connections, at most
//!   `RELAY_MAX_CONNECTIONS_PER_IP` from one socket peer (peers in `RELAY_TRUSTED_PROXIES` are
//!   exempt: a load balancer multiplexes many callers). Past a cap, [`HEALTH_RESERVE`] more
//!   connections are accepted for one request each: `GET /health` is served (so Route 53 still
//!   sees the region while it is saturated), anything else gets `TooManyRequestsException`.
//!   Beyond the reserve, connections are closed at once.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::app::Refusal;
use crate::AppState;

/// Connections accepted past a cap, for one request each (`GET /health` or a refusal).
pub const HEALTH_RESERVE: usize = 32;
/// Largest buffered request head (and read buffer) per connection.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long shutdown waits for open connections to finish.
const DRAIN: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Conns {
    open: usize,
    reserve: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Releases a connection's slots when its task ends.
struct Slot {
    conns: Arc<Mutex<Conns>>,
    state: Arc<AppState>,
    ip: IpAddr,
    reserve: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        if self.reserve {
            c.reserve -= 1;
        } else {
            c.open -= 1;
        }
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
        self.state
            .metrics
            .connections_open
            .set((c.open + c.reserve) as f64);
    }
}

/// Takes a slot for a connection from `ip`: a full one, a reserve one (past a cap: one
/// request, `/health` only), or `None` (close it).
fn admit(st: &Arc<AppState>, conns: &Arc<Mutex<Conns>>, ip: IpAddr) -> Option<Slot> {
    let cfg = &st.cfg;
    let mut c = conns.lock().unwrap_or_else(|p| p.into_inner());
    let from_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
    let ip_capped = cfg.max_connections_per_ip > 0
        && from_ip >= cfg.max_connections_per_ip
        && !cfg.trusted_proxies.contains(ip);
    let reserve = c.open >= cfg.max_connections || ip_capped;
    if reserve {
        if c.reserve >= HEALTH_RESERVE {
            return None;
        }
        c.reserve += 1;
    } else {
        c.open += 1;
    }
    *c.per_ip.entry(ip).or_insert(0) += 1;
    st.metrics.connections_open.set((c.open + c.reserve) as f64);
    Some(Slot {
        conns: conns.clone(),
        state: st.clone(),
        ip,
        reserve,
    })
}

/// Serves `state`'s router on `listener` until `shutdown` completes, then lets open
/// connections finish (at most 10 s).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) {
    let router = crate::app(state.clone());
    let conns = Arc::new(Mutex::new(Conns::default()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = &mut shutdown => break,
        };
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: do not spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ip = addr.ip().to_canonical();
        let Some(slot) = admit(&state, &conns, ip) else {
            state.metrics.connections_refused.increment(1);
            drop(stream);
            continue;
        };
        if slot.reserve {
            state.metrics.connections_refused.increment(1);
        }
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut stop = stop_rx.clone();
        let header_timeout = state.cfg.header_timeout;
        tokio::spawn(async move {
            let limited = slot.reserve;
            let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(addr));
                let router = router.clone();
                async move {
                    if limited && !(req.method() == Method::GET && req.uri().path() == "/health") {
                        return Ok::<_, Infallible>(
                            Refusal(wire::WireError::too_many_requests(
                                "Too many connections; retry",
                            ))
                            .into_response(),
                        );
                    }
                    router.oneshot(req).await
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(MAX_HEAD_BYTES)
                .keep_alive(!limited);
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { drop(stop.wait_for(|s| *s).await) } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(slot);
        });
    }
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + DRAIN;
    while tokio::time::Instant::now() < deadline {
        let open = {
            let c = conns.lock().unwrap_or_else(|p| p.into_inner());
            c.open + c.reserve
        };
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
