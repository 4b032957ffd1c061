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
    /// The AWS profile (in `~/.aws/config`) whose credentials relayctl uses in this region:
    /// typically one that assumes this region's operator role (`role_arn` = the regional
    /// stack's `OperatorRoleArn` output, with a `source_profile` or SSO). Absent: the default
    /// credential chain, for both regions.
    #[serde(default)]
    pub profile: Option<String>,
}

impl Region {
    pub fn aliases(&self) -> Vec<String> {
        self.username_attributes
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        let sdk = relay_aws::sdk_config(
            &self.name,
            self.aws_endpoint.as_deref(),
            3,
            std::time::Duration::from_secs(10),
        )
        .await;
        with_profile(sdk, self.profile.as_deref(), None)
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
    /// The AWS profile for Route 53 reads (health check status); absent: the primary's
    /// `profile`, else the default chain. Either region's operator role may read them.
    #[serde(default)]
    pub route53_profile: Option<String>,
}

/// `sdk` with its credentials from the named profile (`files`: the profile files to read
/// instead of `~/.aws/config` and `~/.aws/credentials`, for tests).
pub fn with_profile(
    sdk: aws_config::SdkConfig,
    profile: Option<&str>,
    files: Option<aws_runtime::env_config::file::EnvConfigFiles>,
) -> aws_config::SdkConfig {
    let Some(profile) = profile else {
        return sdk;
    };
    let mut provider =
        aws_config::profile::ProfileFileCredentialsProvider::builder().profile_name(profile);
    if let Some(files) = files {
        provider = provider.profile_files(files);
    }
    sdk.into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider.build()),
        )
        .build()
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
        Ok(d)
    }
    /// SDK configuration for Route 53 (a global service, signed for us-east-1).
    pub async fn route53_sdk(&self) -> aws_config::SdkConfig {
        let sdk = relay_aws::sdk_config(
            "us-east-1",
            self.route53_endpoint.as_deref(),
            3,
            std::time::Duration::from_secs(10),
        )
        .await;
        let profile = self.route53_profile.as_deref().or_else(|| {
            self.by_role("primary")
                .ok()
                .or(self.regions.first())
                .and_then(|r| r.profile.as_deref())
        });
        with_profile(sdk, profile, None)
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::ProvideCredentials;
    use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};

    async fn key_id(sdk: &aws_config::SdkConfig) -> String {
        sdk.credentials_provider()
            .expect("a credentials provider")
            .provide_credentials()
            .await
            .expect("credentials")
            .access_key_id()
            .to_owned()
    }

    #[tokio::test]
    async fn each_region_can_use_its_own_profile() {
        let dir = std::env::temp_dir().join(format!("relayctl-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let creds = dir.join("credentials");
        std::fs::write(
            &creds,
            "[ops-a]\naws_access_key_id = AKIAOPSA\naws_secret_access_key = a\n\
             [ops-b]\naws_access_key_id = AKIAOPSB\naws_secret_access_key = b\n",
        )
        .unwrap();
        let files = || {
            EnvConfigFiles::builder()
                .with_file(EnvConfigFileKind::Credentials, &creds)
                .build()
        };
        let base = relay_aws::sdk_config(
            "eu-west-1",
            Some("http://127.0.0.1:9"),
            1,
            Default::default(),
        )
        .await;
        let a = with_profile(base.clone(), Some("ops-a"), Some(files()));
        let b = with_profile(base.clone(), Some("ops-b"), Some(files()));
        assert_eq!(key_id(&a).await, "AKIAOPSA");
        assert_eq!(key_id(&b).await, "AKIAOPSB");
        // Without a profile the configuration is left as it was.
        assert_eq!(
            key_id(&with_profile(base.clone(), None, None)).await,
            key_id(&base).await
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_deployment_file_takes_a_profile_per_region() {
        let d: Deployment = serde_json::from_str(
            r#"{"route53_profile": "ops-global", "regions": [
                {"name": "eu-west-1", "role": "primary", "health_url": "h", "user_pool_id": "p",
                 "inbound_queue_url": "q", "dlq_url": "d", "drain_parameter": "s", "profile": "ops-a"},
                {"name": "eu-central-1", "role": "standby", "health_url": "h", "user_pool_id": "p",
                 "inbound_queue_url": "q", "dlq_url": "d", "drain_parameter": "s"}]}"#,
        )
        .unwrap();
        assert_eq!(d.regions[0].profile.as_deref(), Some("ops-a"));
        assert_eq!(d.regions[1].profile, None);
        assert_eq!(d.route53_profile.as_deref(), Some("ops-global"));
    }
}
