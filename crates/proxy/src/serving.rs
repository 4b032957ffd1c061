//! When the standby bridges (issue 19 point 7). A region's API answers on its own regional name
//! at all times, so a bridge that is always open is a second door at all times. With
//! `RELAY_PEER_HEALTH_URL` set (the other region's `/health`, as Route 53 checks it), a
//! bridging proxy opens its bridge — SRP sign-in for the app pool, continuing the peer's
//! sessions, finishing the peer's half-finished sign-ups — only while the peer is *not*
//! healthy: drained (503), failing, or unreachable. That is exactly when Route 53 sends the
//! global name here. The answer is cached (`RELAY_PEER_HEALTH_CACHE_MS`, 5 s) so an attack
//! costs the peer nothing. While the bridge is closed, SRP sign-ins go to this pool's Cognito
//! as they are (their proof, bound to the app pool, fails there like any wrong password),
//! peer sessions are refused ("sign in again") and Cognito's answers to sign-up retries stand.
//!
//! Unset, the bridge is always open (a standalone or test deployment without a peer URL); the
//! CDK always sets it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct PeerWatch {
    url: String,
    http: reqwest::Client,
    ttl: Duration,
    last: Mutex<Option<(Instant, bool)>>,
}

impl PeerWatch {
    pub fn new(url: String, ttl: Duration) -> Result<Self, crate::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .connect_timeout(Duration::from_secs(1))
            .build()
            .map_err(|e| crate::Error::Setup(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            url,
            http,
            ttl,
            last: Mutex::new(None),
        })
    }

    /// Whether the peer is healthy now (cached for `ttl`).
    pub async fn peer_healthy(&self) -> bool {
        if let Some((at, healthy)) = *self.last.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < self.ttl {
                return healthy;
            }
        }
        let healthy = match self.http.get(&self.url).send().await {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        };
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), healthy));
        healthy
    }
}
