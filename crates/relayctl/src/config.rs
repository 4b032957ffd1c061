//! The deployment file: one entry per region.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Region {
    pub name: String,
    #[serde(default)]
    pub role: String,
    pub health_url: String,
    pub user_pool_id: String,
    #[serde(default)]
    pub username_attributes: String,
    pub inbound_queue_url: String,
    pub dlq_url: String,
    #[serde(default)]
    pub fallback_queue_url: Option<String>,
    pub drain_parameter: String,
    /// Emulator endpoint (local stack); absent for AWS.
    #[serde(default)]
    pub aws_endpoint: Option<String>,
    /// The replicator's Prometheus endpoint, if it runs standalone. Without it (the Lambda
    /// deployment), `status` reads the region's numbers from CloudWatch (`GetMetricData`).
    #[serde(default)]
    pub replicator_metrics_url: Option<String>,
    /// The Route 53 health check on this region's `/health` (global stack output). Without it,
    /// `failover`/`failback` judge the flip by polling `/health` themselves.
    #[serde(default)]
    pub health_check_id: Option<String>,
}

impl Region {
    /// The pool's sign-in aliases (`username_attributes`; checked when the file is loaded).
    pub fn aliases(&self) -> Vec<replication::SignInAlias> {
        replication::SignInAlias::parse_list(&self.username_attributes).unwrap_or_default()
    }
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        relay_aws::sdk_config(
            &self.name,
            self.aws_endpoint.as_deref(),
            3,
            std::time::Duration::from_secs(10),
        )
        .await
    }
    pub async fn pool(&self) -> relay_aws::cognito::Pool {
        relay_aws::cognito::Pool::new(&self.sdk().await, &self.user_pool_id, self.aliases())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    pub regions: Vec<Region>,
    /// Emulator endpoint for Route 53 (local stack); absent for AWS.
    #[serde(default)]
    pub route53_endpoint: Option<String>,
}

impl Deployment {
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e} (pass --config)", path.display()))?;
        let d: Deployment = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a valid deployment file: {e}", path.display()))?;
        if d.regions.is_empty() {
            return Err(format!("{} lists no regions", path.display()));
        }
        for r in &d.regions {
            if let Err(e) = replication::SignInAlias::parse_list(&r.username_attributes) {
                return Err(format!(
                    "{}: region {}: username_attributes: {e}",
                    path.display(),
                    r.name
                ));
            }
        }
        Ok(d)
    }
    /// SDK configuration for Route 53 (a global service, signed for us-east-1).
    pub async fn route53_sdk(&self) -> aws_config::SdkConfig {
        relay_aws::sdk_config(
            "us-east-1",
            self.route53_endpoint.as_deref(),
            3,
            std::time::Duration::from_secs(10),
        )
        .await
    }
    /// The region with this role, or the first/other region as a fallback: `primary` is the
    /// one whose role is "primary" (else the first), `standby` the other one.
    pub fn by_role(&self, role: &str) -> Result<&Region, String> {
        if let Some(r) = self.regions.iter().find(|r| r.role == role) {
            return Ok(r);
        }
        Err(format!(
            "no region has role {role:?} in the deployment file; name the region explicitly"
        ))
    }
    pub fn region(&self, name: &str) -> Result<&Region, String> {
        self.regions
            .iter()
            .find(|r| r.name == name || r.role == name)
            .ok_or_else(|| {
                format!(
                    "unknown region {name:?}; known: {}",
                    self.regions
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}
