//! Deep health: the proxy has its secrets, the home pool answers (one cheap call, cached so
//! health checkers cost Cognito about one call per cache period) and the region is not drained.
//! The report also lists what the process is waiting for (`waiting`, from its liveness
//! registry), so a proxy that is recovering tells why.

use std::sync::Arc;
use std::time::{Duration, Instant};

use relay_aws::liveness::{self, dep, Waiting};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::ports::Control;

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub healthy: bool,
    pub pool: &'static str,
    pub drained: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Dependencies the process cannot reach right now, with the time it started waiting.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<Waiting>,
}

/// How long /health waits for each check (they run concurrently): Route 53 wants an answer
/// within 2 s of connecting, also during an outage.
const CHECK_TIMEOUT: Duration = Duration::from_millis(1500);

pub struct HealthCache {
    control: Option<Arc<dyn Control>>,
    pool_ttl: Duration,
    drain_ttl: Duration,
    pool: Mutex<Option<(Instant, Result<(), crate::Error>)>>,
    drain: Mutex<Option<(Instant, Result<bool, crate::Error>)>>,
}

impl HealthCache {
    pub fn new(control: Option<Arc<dyn Control>>, pool_ttl: Duration, drain_ttl: Duration) -> Self {
        Self {
            control,
            pool_ttl,
            drain_ttl,
            pool: Mutex::new(None),
            drain: Mutex::new(None),
        }
    }

    /// The drain switch, cached; `None` when there is no switch or it cannot be read (within
    /// CHECK_TIMEOUT).
    pub async fn drained(&self) -> Option<bool> {
        let control = self.control.as_ref()?;
        let mut d = self.drain.lock().await;
        if !matches!(d.as_ref(), Some((at, _)) if at.elapsed() < self.drain_ttl) {
            let r = tokio::time::timeout(CHECK_TIMEOUT, control.drained())
                .await
                .unwrap_or(Err(crate::Error::Timeout));
            liveness::global().observe(dep::DRAIN_SWITCH, &r);
            *d = Some((Instant::now(), r));
        }
        d.as_ref().and_then(|(_, r)| r.as_ref().ok().copied())
    }

    async fn pool(&self, control: &dyn Control) -> Result<(), crate::Error> {
        let mut p = self.pool.lock().await;
        if !matches!(p.as_ref(), Some((at, _)) if at.elapsed() < self.pool_ttl) {
            let r = tokio::time::timeout(CHECK_TIMEOUT, control.pool_ok())
                .await
                .unwrap_or(Err(crate::Error::Timeout));
            liveness::global().observe(dep::HOME_POOL, &r);
            *p = Some((Instant::now(), r));
        }
        p.as_ref().map(|(_, r)| r.clone()).unwrap_or(Ok(()))
    }

    /// `secrets`: whether the proxy has its secrets (without them it serves nothing); awaited
    /// at most CHECK_TIMEOUT, alongside the pool and drain checks, so the answer comes within
    /// about CHECK_TIMEOUT even during an outage.
    pub async fn report(&self, secrets: impl std::future::Future<Output = bool>) -> HealthReport {
        let secrets = async {
            tokio::time::timeout(CHECK_TIMEOUT, secrets)
                .await
                .unwrap_or(false)
        };
        let checks = async {
            match self.control.as_deref() {
                Some(control) => {
                    let (pool, drained) = tokio::join!(self.pool(control), self.drained());
                    Some((pool, drained))
                }
                None => None,
            }
        };
        let (secrets_loaded, checks) = tokio::join!(secrets, checks);
        let mut reasons = vec![];
        if !secrets_loaded {
            reasons.push(
                liveness::global()
                    .get(dep::SECRETS)
                    .map_or_else(|| format!("waiting for {}", dep::SECRETS), |w| w.line()),
            );
        }
        let (pool_state, drained) = match &checks {
            None => ("unchecked", None),
            Some((pool, drained)) => {
                if let Err(e) = pool {
                    reasons.push(format!("home user pool does not answer: {e}"));
                }
                if *drained == Some(true) {
                    reasons.push("region is drained by the operator".to_owned());
                }
                (if pool.is_ok() { "ok" } else { "unreachable" }, *drained)
            }
        };
        HealthReport {
            healthy: reasons.is_empty(),
            pool: pool_state,
            drained,
            reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
            waiting: liveness::global().snapshot(),
        }
    }
}
