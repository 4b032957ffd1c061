//! How healthy a region looks, from two sources: its proxy's deep `GET /health` (what the
//! health checkers fetch), and Route 53's own view of it (`GetHealthCheckStatus` on the
//! region's health check), which is what actually moves the failover record.
//!
//! Route 53 counts a health check healthy when more than 18% of its checkers report success;
//! [`route53`] applies the same rule to the observations it gets back.

use std::time::Duration;

use serde::Serialize;

use crate::config::{Deployment, Region};

/// A region's `/health` answer.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyHealth {
    /// HTTP status, or `None` when the proxy did not answer.
    pub status: Option<u16>,
    /// `drained` from the body, when the proxy said.
    pub drained: Option<bool>,
    /// `pool` from the body (`ok` / `unreachable`), when the proxy said.
    pub pool: Option<String>,
    pub reason: Option<String>,
}

impl ProxyHealth {
    pub fn ok(&self) -> bool {
        self.status == Some(200)
    }
    /// One line for the progress display.
    pub fn line(&self) -> String {
        match self.status {
            None => "/health does not answer".into(),
            Some(code) => format!(
                "/health {code}{}",
                self.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
        }
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap_or_default()
}

pub async fn proxy(r: &Region) -> ProxyHealth {
    match http().get(&r.health_url).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp
                .text()
                .await
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            ProxyHealth {
                status: Some(status),
                drained: body.get("drained").and_then(|v| v.as_bool()),
                pool: body.get("pool").and_then(|v| v.as_str()).map(str::to_owned),
                reason: body
                    .get("reason")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
            }
        }
        Err(_) => ProxyHealth {
            status: None,
            drained: None,
            pool: None,
            reason: None,
        },
    }
}

/// Route 53's view of one health check.
#[derive(Debug, Clone, Serialize)]
pub struct Route53View {
    pub health_check_id: String,
    pub healthy: bool,
    pub checkers: usize,
    pub reporting_success: usize,
    /// One checker's status line (for example `Failure: HTTP Status Code 503, ...`).
    pub sample: Option<String>,
}

impl Route53View {
    pub fn line(&self) -> String {
        format!(
            "Route 53 {}: {} ({}/{} checkers report success)",
            self.health_check_id,
            if self.healthy { "healthy" } else { "UNHEALTHY" },
            self.reporting_success,
            self.checkers
        )
    }
}

/// Route 53's rule: healthy when more than 18% of the checkers report success.
pub fn route53_healthy(success: usize, total: usize) -> bool {
    total > 0 && success * 100 > total * 18
}

/// `GetHealthCheckStatus` for the region's health check; `Ok(None)` when none is configured.
pub async fn route53(cfg: &Deployment, r: &Region) -> Result<Option<Route53View>, String> {
    let Some(id) = r.health_check_id.as_deref() else {
        return Ok(None);
    };
    let client = aws_sdk_route53::Client::new(&cfg.route53_sdk().await);
    let out = client
        .get_health_check_status()
        .health_check_id(id)
        .send()
        .await
        .map_err(|e| {
            format!(
                "Route 53 GetHealthCheckStatus {id}: {}",
                relay_aws::describe(&e)
            )
        })?;
    let obs = out.health_check_observations();
    let statuses: Vec<&str> = obs
        .iter()
        .filter_map(|o| o.status_report().and_then(|s| s.status()))
        .collect();
    let success = statuses.iter().filter(|s| s.starts_with("Success")).count();
    Ok(Some(Route53View {
        health_check_id: id.to_owned(),
        healthy: route53_healthy(success, statuses.len()),
        checkers: statuses.len(),
        reporting_success: success,
        sample: statuses
            .iter()
            .find(|s| !s.starts_with("Success"))
            .or(statuses.first())
            .map(|s| (*s).to_owned()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route53_counts_a_check_healthy_above_18_percent_of_checkers() {
        assert!(!route53_healthy(0, 0));
        assert!(!route53_healthy(0, 3));
        assert!(route53_healthy(1, 3));
        assert!(!route53_healthy(2, 16)); // 12.5%
        assert!(!route53_healthy(3, 18)); // 16.7%
        assert!(route53_healthy(4, 18)); // 22%
        assert!(route53_healthy(16, 16));
    }
}
