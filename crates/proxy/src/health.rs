//! Deep health: the proxy has its secrets, the home pool answers (one cheap call, cached so
//! health checkers cost Cognito about one call per cache period) and the region is not drained.
//! The report also lists what the process is waiting for (`waiting`, from its liveness
//! registry), so a proxy that is recovering tells why.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use relay_aws::liveness::{self, dep, Waiting};
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

pub struct HealthCache {
    control: Option<Arc<dyn Control>>,
    pool_ttl: Duration,
    drain_ttl: Duration,
    pool: Mutex<Option<(Instant, Result<(), String>)>>,
    drain: Mutex<Option<(Instant, Result<bool, String>)>>,
}

impl HealthCache {
    pub fn new(control: Option<Arc<dyn Control>>, pool_ttl: Duration, drain_ttl: Duration) -> Self {
        Self { control, pool_ttl, drain_ttl, pool: Mutex::new(None), drain: Mutex::new(None) }
    }

    /// The drain switch, cached; `None` when there is no switch or it cannot be read.
    pub async fn drained(&self) -> Option<bool> {
        let control = self.control.as_ref()?;
        let mut d = self.drain.lock().await;
        if !matches!(d.as_ref(), Some((at, _)) if at.elapsed() < self.drain_ttl) {
            let r = control.drained().await;
            liveness::global().observe(dep::DRAIN_SWITCH, &r);
            *d = Some((Instant::now(), r));
        }
        d.as_ref().and_then(|(_, r)| r.as_ref().ok().copied())
    }

    /// `secrets_loaded`: whether the proxy has its secrets (without them it serves nothing).
    pub async fn report(&self, secrets_loaded: bool) -> HealthReport {
        let mut reasons = vec![];
        if !secrets_loaded {
            reasons.push(liveness::global().get(dep::SECRETS).map_or_else(|| format!("waiting for {}", dep::SECRETS), |w| w.line()));
        }
        let Some(control) = self.control.as_ref() else {
            return HealthReport { healthy: reasons.is_empty(), pool: "unchecked", drained: None, reason: (!reasons.is_empty()).then(|| reasons.join("; ")), waiting: liveness::global().snapshot() };
        };
        let pool = {
            let mut p = self.pool.lock().await;
            if !matches!(p.as_ref(), Some((at, _)) if at.elapsed() < self.pool_ttl) {
                let r = tokio::time::timeout(Duration::from_secs(3), control.pool_ok()).await.unwrap_or_else(|_| Err("timeout".into()));
                liveness::global().observe(dep::HOME_POOL, &r);
                *p = Some((Instant::now(), r));
            }
            p.as_ref().map(|(_, r)| r.clone()).unwrap_or(Ok(()))
        };
        let drained = self.drained().await;
        if let Err(e) = &pool {
            reasons.push(format!("home user pool does not answer: {e}"));
        }
        if drained == Some(true) {
            reasons.push("region is drained by the operator".to_owned());
        }
        HealthReport {
            healthy: reasons.is_empty(),
            pool: if pool.is_ok() { "ok" } else { "unreachable" },
            drained,
            reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
            waiting: liveness::global().snapshot(),
        }
    }
}
