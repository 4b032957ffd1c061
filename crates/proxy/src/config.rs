//! Typed proxy configuration, read through a small trait so tests pass a map. Invalid
//! configuration fails before any port is bound, with a message naming the variable.

use std::net::SocketAddr;
use std::time::Duration;

pub use relay_aws::runtime::{Env, ProcessEnv};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    Any,
    List(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub region: String,
    pub user_pool_id: String,
    /// `UsernameAttributes` of the pool: empty for username pools, e.g. `["email"]`.
    pub username_attributes: Vec<String>,
    pub cognito_endpoint: String,
    /// Endpoint override for this region's AWS services (SQS, Secrets Manager, SSM, Cognito admin).
    pub aws_endpoint: Option<String>,
    pub clients_secret_id: String,
    pub replication_key_secret_id: String,
    /// The refresh-token keyring, kept apart from the replication key so that rotating the
    /// replication key never signs anyone out. Unset: subkeys of the replication keyring (the
    /// older layout; its rotation then ends sessions sealed under a removed key).
    pub refresh_key_secret_id: Option<String>,
    /// DynamoDB table of per-user high-water marks in this region: the proxy advances the
    /// marks of the writes it forwards, so a stale replicated event cannot undo them.
    pub state_table: Option<String>,
    pub peer: Option<Peer>,
    pub fallback_queue_url: Option<String>,
    /// This region's DLQ: the standalone fallback forwarder sets unreadable messages aside
    /// there, with the reason (as the replicator Lambda's forwarder does). Unset: they stay on
    /// the fallback queue (logged, never dropped).
    pub dlq_url: Option<String>,
    pub drain_parameter: Option<String>,
    pub listen: SocketAddr,
    /// Proxies (CIDRs) whose X-Forwarded-For entries are believed, standalone. Empty: none,
    /// the socket peer is the caller.
    pub trusted_proxies: crate::net::TrustedProxies,
    pub cors_origins: Origins,
    pub rate_per_ip_per_min: u32,
    pub rate_per_username_per_min: u32,
    /// Distinct limiter keys counted per one-minute window in this process (memory bound:
    /// ~27 bytes a key at most, so the default 1,048,576 is ≤ 28 MiB).
    pub limiter_max_keys: usize,
    /// DynamoDB table of rate-limit counters shared by every instance of the region. Unset:
    /// per-process limits only (each Lambda instance would count on its own).
    pub limits_table: Option<String>,
    /// Failed sign-ins (NotAuthorizedException) per username per failure window before its
    /// sign-ins get TooManyRequestsException (0 = off).
    pub failed_signins_per_username: u32,
    pub failed_signin_window: Duration,
    /// What a request gets when the limits table cannot be reached.
    pub limits_on_store_error: crate::shared_limiter::OnStoreError,
    pub max_body_bytes: usize,
    /// Standalone: a request head (and the next one on a kept-alive connection) must arrive
    /// within this, or the connection is closed.
    pub header_timeout: Duration,
    /// A request body must arrive within this (both modes; under Lambda it is already read).
    pub body_timeout: Duration,
    /// Standalone: open connections at most (a reserve for `/health` beyond: `serve`).
    pub max_connections: usize,
    /// Standalone: open connections per socket peer at most (0 = no cap; peers in
    /// `trusted_proxies` are exempt).
    pub max_connections_per_ip: usize,
    pub upstream_timeout: Duration,
    pub secret_ttl: Duration,
    pub health_cache: Duration,
    pub control_cache: Duration,
    /// Sign-up policy (`RELAY_POLICY*`, see `policy.rs`); None = every sign-up is forwarded.
    pub policy: Option<crate::policy::PolicyConfig>,
    /// Event stream to EventBridge (`RELAY_EVENTS_*`, see `stream.rs`); None = off.
    pub events: Option<crate::stream::StreamConfig>,
    /// The pool id the apps were built with (`RELAY_APP_USER_POOL_ID`, the primary's). A proxy
    /// whose home pool differs bridges SRP sign-ins and sessions for it (`bridge.rs`).
    pub app_user_pool_id: Option<String>,
    /// The bridge keyring (`RELAY_BRIDGE_KEY_SECRET_ID`): signs the assertions the home pool's
    /// auth-trigger accepts, and seals the bridge's SRP secret blocks.
    pub bridge_key_secret_id: Option<String>,
    /// Forward app-sent `AuthFlow=CUSTOM_AUTH` (`RELAY_ALLOW_APP_CUSTOM_AUTH=true`, for pools
    /// with custom auth of their own); refused by default.
    pub allow_app_custom_auth: bool,
}

#[derive(Debug, Clone)]
pub struct Peer {
    pub region: String,
    /// The peer's user pool: the target every replication event names (and is sealed for).
    pub user_pool_id: String,
    pub queue_url: String,
    pub aws_endpoint: Option<String>,
}

fn num<T: std::str::FromStr>(env: &dyn Env, key: &str, default: T) -> Result<T, String> {
    match env.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{key}={v:?} is not a valid number")),
    }
}

/// Whether the authority that starts `rest` (`host[:port][/...]`) is a loopback address.
fn loopback_host(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn trusted_proxies(env: &dyn Env) -> Result<crate::net::TrustedProxies, String> {
    if env.get("RELAY_TRUSTED_HOPS").is_some() {
        return Err("RELAY_TRUSTED_HOPS is replaced by RELAY_TRUSTED_PROXIES: the CIDRs of the proxies in front whose X-Forwarded-For entries are believed (a hop count trusts any peer)".into());
    }
    env.get("RELAY_TRUSTED_PROXIES")
        .unwrap_or_default()
        .parse()
        .map_err(|e| format!("RELAY_TRUSTED_PROXIES: {e}"))
}

fn positive(d: Duration, key: &str) -> Result<Duration, String> {
    if d.is_zero() {
        return Err(format!("{key} must be more than 0"));
    }
    Ok(d)
}

fn req(env: &dyn Env, key: &str) -> Result<String, String> {
    env.get(key).ok_or_else(|| format!("{key} is required"))
}

impl Config {
    pub fn from_env(env: &dyn Env) -> Result<Self, String> {
        let region = req(env, "RELAY_REGION")?;
        let user_pool_id = req(env, "RELAY_USER_POOL_ID")?;
        if !user_pool_id.starts_with(&format!("{region}_")) {
            return Err(format!("RELAY_USER_POOL_ID={user_pool_id:?} does not belong to RELAY_REGION={region:?} (expected {region}_...)"));
        }
        let username_attributes = relay_aws::runtime::username_attributes(env)?;
        let cognito_endpoint = env
            .get("RELAY_COGNITO_ENDPOINT")
            .unwrap_or_else(|| format!("https://cognito-idp.{region}.amazonaws.com/"));
        // Client secrets travel in some bodies (RevokeToken, GetTokensFromRefreshToken): plain
        // HTTP only to this host (an emulator or a local stub), never over a network.
        if !(cognito_endpoint.starts_with("https://")
            || cognito_endpoint
                .strip_prefix("http://")
                .is_some_and(loopback_host))
        {
            return Err(format!("RELAY_COGNITO_ENDPOINT={cognito_endpoint:?} must be an https:// URL (http:// only to a loopback address, for emulators)"));
        }
        let peer = match (env.get("RELAY_PEER_REGION"), env.get("RELAY_PEER_QUEUE_URL")) {
            (Some(region), Some(queue_url)) => Some(Peer { region, queue_url, aws_endpoint: env.get("RELAY_PEER_AWS_ENDPOINT"), user_pool_id: req(env, "RELAY_PEER_USER_POOL_ID")? }),
            (None, None) => None,
            _ => return Err("RELAY_PEER_REGION and RELAY_PEER_QUEUE_URL go together (both, or neither to run without replication)".into()),
        };
        let cors_origins = match env.get("RELAY_CORS_ORIGINS").as_deref().map(str::trim) {
            None | Some("*") => Origins::Any,
            Some(list) => Origins::List(
                list.split(',')
                    .map(|s| s.trim().trim_end_matches('/').to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
        };
        let listen = env
            .get("RELAY_LISTEN")
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = listen
            .parse()
            .map_err(|_| format!("RELAY_LISTEN={listen:?} is not an address:port"))?;
        let ms = |key, d| num(env, key, d).map(Duration::from_millis);
        Self {
            region,
            user_pool_id,
            username_attributes,
            cognito_endpoint,
            aws_endpoint: env.get("RELAY_AWS_ENDPOINT"),
            clients_secret_id: req(env, "RELAY_CLIENTS_SECRET_ID")?,
            replication_key_secret_id: req(env, "RELAY_REPLICATION_KEY_SECRET_ID")?,
            refresh_key_secret_id: env.get("RELAY_REFRESH_KEY_SECRET_ID"),
            state_table: env.get("RELAY_STATE_TABLE"),
            peer,
            fallback_queue_url: env.get("RELAY_FALLBACK_QUEUE_URL"),
            dlq_url: env.get("RELAY_DLQ_URL"),
            drain_parameter: env.get("RELAY_DRAIN_PARAMETER"),
            listen,
            trusted_proxies: trusted_proxies(env)?,
            cors_origins,
            rate_per_ip_per_min: num(env, "RELAY_RATE_PER_IP", 600)?,
            rate_per_username_per_min: num(env, "RELAY_RATE_PER_USERNAME", 60)?,
            limiter_max_keys: num(
                env,
                "RELAY_LIMITER_MAX_KEYS",
                crate::limiter::DEFAULT_MAX_KEYS,
            )?,
            limits_table: env.get("RELAY_LIMITS_TABLE"),
            failed_signins_per_username: num(env, "RELAY_FAILED_SIGNINS_PER_USERNAME", 10)?,
            failed_signin_window: positive(
                Duration::from_secs(num(env, "RELAY_FAILED_SIGNIN_WINDOW_S", 900)?),
                "RELAY_FAILED_SIGNIN_WINDOW_S",
            )?,
            limits_on_store_error: match env
                .get("RELAY_LIMITS_ON_STORE_ERROR")
                .as_deref()
                .map(str::trim)
            {
                None | Some("allow") => crate::shared_limiter::OnStoreError::Allow,
                Some("refuse") => crate::shared_limiter::OnStoreError::Refuse,
                Some(v) => {
                    return Err(format!(
                        "RELAY_LIMITS_ON_STORE_ERROR={v:?} is not allow or refuse"
                    ))
                }
            },
            max_body_bytes: num(env, "RELAY_MAX_BODY_BYTES", 64 * 1024)?,
            header_timeout: positive(
                ms("RELAY_HEADER_TIMEOUT_MS", 10_000)?,
                "RELAY_HEADER_TIMEOUT_MS",
            )?,
            body_timeout: positive(
                ms("RELAY_BODY_TIMEOUT_MS", 10_000)?,
                "RELAY_BODY_TIMEOUT_MS",
            )?,
            max_connections: match num(env, "RELAY_MAX_CONNECTIONS", 2048)? {
                0 => return Err("RELAY_MAX_CONNECTIONS must be at least 1".into()),
                n => n,
            },
            max_connections_per_ip: num(env, "RELAY_MAX_CONNECTIONS_PER_IP", 64)?,
            upstream_timeout: ms("RELAY_UPSTREAM_TIMEOUT_MS", 5_000)?,
            secret_ttl: ms("RELAY_SECRET_TTL_MS", 300_000)?,
            health_cache: ms("RELAY_HEALTH_CACHE_MS", 5_000)?,
            control_cache: ms("RELAY_CONTROL_CACHE_MS", 5_000)?,
            policy: crate::policy::PolicyConfig::from_env(env)?,
            events: crate::stream::StreamConfig::from_env(env, relay_aws::runtime::lambda_mode())?,
            app_user_pool_id: env.get("RELAY_APP_USER_POOL_ID"),
            bridge_key_secret_id: env.get("RELAY_BRIDGE_KEY_SECRET_ID"),
            allow_app_custom_auth: match env
                .get("RELAY_ALLOW_APP_CUSTOM_AUTH")
                .as_deref()
                .map(str::trim)
            {
                None | Some("false") => false,
                Some("true") => true,
                Some(v) => {
                    return Err(format!(
                        "RELAY_ALLOW_APP_CUSTOM_AUTH={v:?} is not true or false"
                    ))
                }
            },
        }
        .checked_bridge()
    }

    /// Whether this proxy bridges: an app pool is configured and it is not the home pool.
    pub fn bridging(&self) -> bool {
        self.app_user_pool_id
            .as_deref()
            .is_some_and(|app| app != self.user_pool_id)
    }

    fn checked_bridge(self) -> Result<Self, String> {
        if self.bridging() {
            if self.bridge_key_secret_id.is_none() {
                return Err("RELAY_APP_USER_POOL_ID differs from RELAY_USER_POOL_ID (this proxy bridges): RELAY_BRIDGE_KEY_SECRET_ID is required".into());
            }
            if self.state_table.is_none() {
                return Err("RELAY_APP_USER_POOL_ID differs from RELAY_USER_POOL_ID (this proxy bridges): RELAY_STATE_TABLE is required (it holds the SRP verifiers)".into());
            }
        }
        Ok(self)
    }

    pub fn alias_pool(&self) -> bool {
        !self.username_attributes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<String, String> {
        [
            ("RELAY_REGION", "eu-west-1"),
            ("RELAY_USER_POOL_ID", "eu-west-1_abc"),
            ("RELAY_CLIENTS_SECRET_ID", "cognito-relay/clients"),
            (
                "RELAY_REPLICATION_KEY_SECRET_ID",
                "cognito-relay/replication-key",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn minimal_config_has_sane_defaults() {
        let c = Config::from_env(&base()).unwrap();
        assert_eq!(
            c.cognito_endpoint,
            "https://cognito-idp.eu-west-1.amazonaws.com/"
        );
        assert_eq!(c.cors_origins, Origins::Any);
        assert!(c.peer.is_none());
        assert!(!c.alias_pool());
    }

    #[test]
    fn errors_name_the_variable() {
        let mut e = base();
        e.remove("RELAY_REGION");
        assert!(Config::from_env(&e).unwrap_err().contains("RELAY_REGION"));
        let mut e = base();
        e.insert("RELAY_USER_POOL_ID".into(), "us-east-1_x".into());
        assert!(Config::from_env(&e)
            .unwrap_err()
            .contains("does not belong"));
        let mut e = base();
        e.insert("RELAY_RATE_PER_IP".into(), "lots".into());
        assert!(Config::from_env(&e)
            .unwrap_err()
            .contains("RELAY_RATE_PER_IP"));
        let mut e = base();
        e.insert("RELAY_PEER_REGION".into(), "us-east-1".into());
        assert!(Config::from_env(&e)
            .unwrap_err()
            .contains("RELAY_PEER_QUEUE_URL"));
        e.insert("RELAY_PEER_QUEUE_URL".into(), "https://sqs/q.fifo".into());
        assert!(
            Config::from_env(&e)
                .unwrap_err()
                .contains("RELAY_PEER_USER_POOL_ID"),
            "events must name their target pool"
        );
        let mut e = base();
        e.insert("RELAY_USERNAME_ATTRIBUTES".into(), "nickname".into());
        assert!(Config::from_env(&e).is_err());
        let mut e = base();
        e.insert("RELAY_EVENTS_BUS".into(), "relay".into());
        e.insert("RELAY_EVENTS_USER".into(), "email".into());
        assert!(Config::from_env(&e)
            .unwrap_err()
            .contains("RELAY_EVENTS_USER"));
        let mut e = base();
        e.insert("RELAY_POLICY_DISPOSABLE_DOMAINS".into(), "file:/x".into());
        assert!(Config::from_env(&e).unwrap_err().contains("RELAY_POLICY"));
    }

    #[test]
    fn trusted_proxies_are_cidrs_and_the_hop_count_is_gone() {
        assert!(
            Config::from_env(&base())
                .unwrap()
                .trusted_proxies
                .is_empty(),
            "nothing is trusted by default"
        );
        let mut e = base();
        e.insert(
            "RELAY_TRUSTED_PROXIES".into(),
            "10.0.0.0/8, 2001:db8::/32".into(),
        );
        assert!(Config::from_env(&e)
            .unwrap()
            .trusted_proxies
            .contains("10.1.2.3".parse().unwrap()));
        e.insert("RELAY_TRUSTED_PROXIES".into(), "10.0.0.0/40".into());
        assert!(Config::from_env(&e)
            .unwrap_err()
            .contains("RELAY_TRUSTED_PROXIES"));
        let mut e = base();
        e.insert("RELAY_TRUSTED_HOPS".into(), "1".into());
        assert!(Config::from_env(&e)
            .unwrap_err()
            .contains("RELAY_TRUSTED_PROXIES"));
    }

    #[test]
    fn the_cognito_endpoint_is_https_except_to_this_host() {
        let with = |url: &str| {
            let mut e = base();
            e.insert("RELAY_COGNITO_ENDPOINT".into(), url.into());
            Config::from_env(&e)
        };
        for ok in [
            "https://cognito-idp.eu-west-1.amazonaws.com/",
            "http://127.0.0.1:5101/",
            "http://localhost:9/",
            "http://[::1]:80/",
        ] {
            assert!(with(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://cognito-idp.eu-west-1.amazonaws.com/",
            "http://10.0.0.5:8080/",
            "http://127.0.0.1.evil.example/",
            "http://127.0.0.1@evil.example/",
            "ftp://x/",
        ] {
            assert!(
                with(bad).unwrap_err().contains("RELAY_COGNITO_ENDPOINT"),
                "{bad}"
            );
        }
    }
}
