//! Typed proxy configuration, declared once: [`Args`] names every `RELAY_*` variable with its
//! type and default (clap, read by `relay_aws::runtime::parse_env` from an `Env`, so tests pass
//! a map), and [`Config::from_args`] checks what spans several variables. Invalid
//! configuration fails before any port is bound, with a message naming the variable.

use std::net::SocketAddr;
use std::time::Duration;

use crate::shared_limiter::OnStoreError;
use crate::stream::UserField;
use crate::Error;
pub use relay_aws::runtime::{Env, ProcessEnv};

/// Every variable the proxy reads (see `config/proxy.example.env`).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "proxy",
    about = "cognito-relay's proxy: configured by RELAY_* variables"
)]
pub struct Args {
    #[arg(long, env = "RELAY_REGION")]
    pub region: String,
    #[arg(long, env = "RELAY_USER_POOL_ID")]
    pub user_pool_id: String,
    #[arg(long, env = "RELAY_USERNAME_ATTRIBUTES")]
    pub username_attributes: Option<String>,
    #[arg(long, env = "RELAY_COGNITO_ENDPOINT")]
    pub cognito_endpoint: Option<String>,
    #[arg(long, env = "RELAY_AWS_ENDPOINT")]
    pub aws_endpoint: Option<String>,
    #[arg(long, env = "RELAY_CLIENTS_SECRET_ID")]
    pub clients_secret_id: String,
    #[arg(long, env = "RELAY_REPLICATION_KEY_SECRET_ID")]
    pub replication_key_secret_id: String,
    #[arg(long, env = "RELAY_REFRESH_KEY_SECRET_ID")]
    pub refresh_key_secret_id: Option<String>,
    #[arg(long, env = "RELAY_STATE_TABLE")]
    pub state_table: Option<String>,
    #[arg(long, env = "RELAY_PEER_REGION")]
    pub peer_region: Option<String>,
    #[arg(long, env = "RELAY_PEER_QUEUE_URL")]
    pub peer_queue_url: Option<String>,
    #[arg(long, env = "RELAY_PEER_AWS_ENDPOINT")]
    pub peer_aws_endpoint: Option<String>,
    #[arg(long, env = "RELAY_PEER_USER_POOL_ID")]
    pub peer_user_pool_id: Option<String>,
    #[arg(long, env = "RELAY_FALLBACK_QUEUE_URL")]
    pub fallback_queue_url: Option<String>,
    #[arg(long, env = "RELAY_DLQ_URL")]
    pub dlq_url: Option<String>,
    #[arg(long, env = "RELAY_DRAIN_PARAMETER")]
    pub drain_parameter: Option<String>,
    #[arg(long, env = "RELAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[arg(long, env = "RELAY_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: crate::net::TrustedProxies,
    /// Gone (replaced by RELAY_TRUSTED_PROXIES); set, it is refused with an explanation.
    #[arg(long, env = "RELAY_TRUSTED_HOPS", hide = true)]
    pub trusted_hops: Option<String>,
    #[arg(long, env = "RELAY_CORS_ORIGINS")]
    pub cors_origins: Option<String>,
    #[arg(long, env = "RELAY_RATE_PER_IP", default_value_t = 600)]
    pub rate_per_ip: u32,
    #[arg(long, env = "RELAY_RATE_PER_USERNAME", default_value_t = 60)]
    pub rate_per_username: u32,
    #[arg(long, env = "RELAY_LIMITER_MAX_KEYS", default_value_t = crate::limiter::DEFAULT_MAX_KEYS)]
    pub limiter_max_keys: usize,
    #[arg(long, env = "RELAY_LIMITS_TABLE")]
    pub limits_table: Option<String>,
    #[arg(long, env = "RELAY_PEER_LIMITS_TABLE")]
    pub peer_limits_table: Option<String>,
    #[arg(long, env = "RELAY_FAILED_SIGNINS_PER_USERNAME", default_value_t = 10)]
    pub failed_signins_per_username: u32,
    #[arg(long, env = "RELAY_LOCKOUT_BASE_S", default_value_t = 1)]
    pub lockout_base_s: u64,
    #[arg(long, env = "RELAY_IPV6_PREFIX", default_value_t = 64, value_parser = clap::value_parser!(u8).range(1..=128))]
    pub ipv6_prefix: u8,
    #[arg(long, env = "RELAY_SESSION_MAX_AGE_S", default_value_t = 30 * 86_400)]
    pub session_max_age_s: u64,
    #[arg(long, env = "RELAY_PEER_HEALTH_URL")]
    pub peer_health_url: Option<String>,
    #[arg(long, env = "RELAY_PEER_URL")]
    pub peer_url: Option<String>,
    #[arg(long, env = "RELAY_PEER_HEALTH_CACHE_MS", default_value_t = 5_000)]
    pub peer_health_cache_ms: u64,
    #[arg(long, env = "RELAY_SRP_MAX_CONCURRENT", default_value_t = 2)]
    pub srp_max_concurrent: usize,
    #[arg(long, env = "RELAY_FAILED_SIGNIN_WINDOW_S", default_value_t = 900)]
    pub failed_signin_window_s: u64,
    #[arg(
        long,
        env = "RELAY_LIMITS_ON_STORE_ERROR",
        value_enum,
        default_value = "allow"
    )]
    pub limits_on_store_error: OnStoreError,
    #[arg(long, env = "RELAY_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    #[arg(long, env = "RELAY_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    #[arg(long, env = "RELAY_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    pub body_timeout_ms: u64,
    #[arg(long, env = "RELAY_MAX_CONNECTIONS", default_value_t = 2048)]
    pub max_connections: usize,
    #[arg(long, env = "RELAY_MAX_CONNECTIONS_PER_IP", default_value_t = 64)]
    pub max_connections_per_ip: usize,
    #[arg(long, env = "RELAY_UPSTREAM_TIMEOUT_MS", default_value_t = 5_000)]
    pub upstream_timeout_ms: u64,
    #[arg(long, env = "RELAY_SECRET_TTL_MS", default_value_t = 300_000)]
    pub secret_ttl_ms: u64,
    #[arg(long, env = "RELAY_HEALTH_CACHE_MS", default_value_t = 5_000)]
    pub health_cache_ms: u64,
    #[arg(long, env = "RELAY_CONTROL_CACHE_MS", default_value_t = 5_000)]
    pub control_cache_ms: u64,
    #[arg(long, env = "RELAY_APP_USER_POOL_ID")]
    pub app_user_pool_id: Option<String>,
    #[arg(long, env = "RELAY_BRIDGE_KEY_SECRET_ID")]
    pub bridge_key_secret_id: Option<String>,
    #[arg(long, env = "RELAY_ALLOW_APP_CUSTOM_AUTH", action = clap::ArgAction::Set, default_value_t = false)]
    pub allow_app_custom_auth: bool,
    /// Read by `main` before the runtime exists; declared here so it is validated and listed.
    #[arg(long, env = "RELAY_WORKER_THREADS")]
    pub worker_threads: Option<usize>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub events: EventArgs,
}

/// The sign-up policy's variables (`policy.rs`).
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// JSON, `file:` or `ssm:`; unset = every sign-up is forwarded.
    #[arg(long = "policy", env = "RELAY_POLICY")]
    pub document: Option<String>,
    #[arg(
        long = "policy-disposable-domains",
        env = "RELAY_POLICY_DISPOSABLE_DOMAINS"
    )]
    pub disposable: Option<String>,
    #[arg(
        long = "policy-reload-ms",
        env = "RELAY_POLICY_RELOAD_MS",
        default_value_t = 30_000
    )]
    pub reload_ms: u64,
}

/// The event stream's variables (`stream.rs`).
#[derive(Debug, Clone, clap::Args)]
pub struct EventArgs {
    /// Name or ARN; unset = no stream.
    #[arg(long = "events-bus", env = "RELAY_EVENTS_BUS")]
    pub bus: Option<String>,
    #[arg(
        long = "events-user",
        env = "RELAY_EVENTS_USER",
        value_enum,
        default_value = "hash"
    )]
    pub user: UserField,
    #[arg(
        long = "events-buffer",
        env = "RELAY_EVENTS_BUFFER",
        default_value_t = 10_000
    )]
    pub buffer: usize,
    #[arg(
        long = "events-concurrency",
        env = "RELAY_EVENTS_CONCURRENCY",
        default_value_t = 4
    )]
    pub concurrency: usize,
    #[arg(
        long = "events-timeout-ms",
        env = "RELAY_EVENTS_TIMEOUT_MS",
        default_value_t = 2_000
    )]
    pub timeout_ms: u64,
    #[arg(
        long = "events-source",
        env = "RELAY_EVENTS_SOURCE",
        default_value = "cognito-relay.proxy"
    )]
    pub source: String,
    #[arg(long = "events-endpoint", env = "RELAY_EVENTS_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Default: 200 under Lambda, 0 standalone.
    #[arg(long = "events-flush-ms", env = "RELAY_EVENTS_FLUSH_MS")]
    pub flush_ms: Option<u64>,
}

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
    pub username_attributes: Vec<replication::SignInAlias>,
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
    /// The first lock after the free failures (doubling from there, at most 15 minutes).
    pub lockout_base: Duration,
    /// The peer region's limits table: failures and locks are written there too.
    pub peer_limits_table: Option<String>,
    /// Per-IP budgets key IPv6 callers by this prefix (/64: one subscriber's network).
    pub ipv6_prefix: u8,
    /// The longest a session lives from its first sign-in, across every continuation (the app
    /// client's refresh-token validity; Cognito's default is 30 days).
    pub session_max_age: Duration,
    /// The other region's `/health`: a bridging proxy bridges only while it is not healthy
    /// (`serving.rs`). Unset: always.
    pub peer_health_url: Option<String>,
    pub peer_health_cache: Duration,
    /// The other region's proxy (`RELAY_PEER_URL`; default: `RELAY_PEER_HEALTH_URL` without
    /// its `/health`): asked about a session before it is continued here (`sessions.rs`).
    pub peer_url: Option<String>,
    /// SRP handshakes computed at once by this process (more wait their turn, briefly, then
    /// get TooManyRequestsException): unauthenticated handshakes cannot take every core.
    pub srp_max_concurrent: usize,
    /// What a request gets when the limits table cannot be reached.
    pub limits_on_store_error: OnStoreError,
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

fn positive(ms: u64, key: &str) -> Result<Duration, Error> {
    if ms == 0 {
        return Err(Error::Config(format!("{key} must be more than 0")));
    }
    Ok(Duration::from_millis(ms))
}

impl Config {
    /// Reads and checks the `RELAY_*` variables of `env`.
    pub fn from_env(env: &dyn Env) -> Result<Self, Error> {
        Self::from_args(
            relay_aws::runtime::parse_env(env)?,
            relay_aws::runtime::lambda_mode(),
        )
    }

    /// Checks what spans several variables and builds the typed configuration.
    pub fn from_args(a: Args, lambda: bool) -> Result<Self, Error> {
        let bad = |text: String| Err(Error::Config(text));
        let region = a.region;
        let user_pool_id = a.user_pool_id;
        if !user_pool_id.starts_with(&format!("{region}_")) {
            return bad(format!("RELAY_USER_POOL_ID={user_pool_id:?} does not belong to RELAY_REGION={region:?} (expected {region}_...)"));
        }
        let username_attributes =
            relay_aws::runtime::username_attributes(a.username_attributes.as_deref())?;
        let cognito_endpoint = a
            .cognito_endpoint
            .unwrap_or_else(|| format!("https://cognito-idp.{region}.amazonaws.com/"));
        // Client secrets travel in some bodies (RevokeToken, GetTokensFromRefreshToken): plain
        // HTTP only to this host (an emulator or a local stub), never over a network.
        if !(cognito_endpoint.starts_with("https://")
            || cognito_endpoint
                .strip_prefix("http://")
                .is_some_and(loopback_host))
        {
            return bad(format!("RELAY_COGNITO_ENDPOINT={cognito_endpoint:?} must be an https:// URL (http:// only to a loopback address, for emulators)"));
        }
        let peer = match (a.peer_region, a.peer_queue_url) {
            (Some(region), Some(queue_url)) => Some(Peer {
                region,
                queue_url,
                aws_endpoint: a.peer_aws_endpoint,
                user_pool_id: a.peer_user_pool_id.ok_or_else(|| {
                    Error::Config("RELAY_PEER_USER_POOL_ID is required".into())
                })?,
            }),
            (None, None) => None,
            _ => return bad("RELAY_PEER_REGION and RELAY_PEER_QUEUE_URL go together (both, or neither to run without replication)".into()),
        };
        if a.trusted_hops.is_some() {
            return bad("RELAY_TRUSTED_HOPS is replaced by RELAY_TRUSTED_PROXIES: the CIDRs of the proxies in front whose X-Forwarded-For entries are believed (a hop count trusts any peer)".into());
        }
        let cors_origins = match a.cors_origins.as_deref().map(str::trim) {
            None | Some("*") => Origins::Any,
            Some(list) => Origins::List(
                list.split(',')
                    .map(|s| s.trim().trim_end_matches('/').to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
        };
        if a.max_connections == 0 {
            return bad("RELAY_MAX_CONNECTIONS must be at least 1".into());
        }
        Self {
            region,
            user_pool_id,
            username_attributes,
            cognito_endpoint,
            aws_endpoint: a.aws_endpoint,
            clients_secret_id: a.clients_secret_id,
            replication_key_secret_id: a.replication_key_secret_id,
            refresh_key_secret_id: a.refresh_key_secret_id,
            state_table: a.state_table,
            peer,
            fallback_queue_url: a.fallback_queue_url,
            dlq_url: a.dlq_url,
            drain_parameter: a.drain_parameter,
            listen: a.listen,
            trusted_proxies: a.trusted_proxies,
            cors_origins,
            rate_per_ip_per_min: a.rate_per_ip,
            rate_per_username_per_min: a.rate_per_username,
            limiter_max_keys: a.limiter_max_keys,
            limits_table: a.limits_table,
            failed_signins_per_username: a.failed_signins_per_username,
            failed_signin_window: positive(
                a.failed_signin_window_s.saturating_mul(1000),
                "RELAY_FAILED_SIGNIN_WINDOW_S",
            )?,
            lockout_base: Duration::from_secs(a.lockout_base_s.max(1)),
            peer_limits_table: a.peer_limits_table,
            ipv6_prefix: a.ipv6_prefix,
            session_max_age: Duration::from_secs(a.session_max_age_s.max(60)),
            srp_max_concurrent: a.srp_max_concurrent.max(1),
            peer_url: a.peer_url.or_else(|| {
                a.peer_health_url
                    .as_deref()
                    .and_then(|u| u.strip_suffix("/health"))
                    .map(|b| format!("{b}/"))
            }),
            peer_health_url: a.peer_health_url,
            peer_health_cache: Duration::from_millis(a.peer_health_cache_ms),
            limits_on_store_error: a.limits_on_store_error,
            max_body_bytes: a.max_body_bytes,
            header_timeout: positive(a.header_timeout_ms, "RELAY_HEADER_TIMEOUT_MS")?,
            body_timeout: positive(a.body_timeout_ms, "RELAY_BODY_TIMEOUT_MS")?,
            max_connections: a.max_connections,
            max_connections_per_ip: a.max_connections_per_ip,
            upstream_timeout: Duration::from_millis(a.upstream_timeout_ms),
            secret_ttl: Duration::from_millis(a.secret_ttl_ms),
            health_cache: Duration::from_millis(a.health_cache_ms),
            control_cache: Duration::from_millis(a.control_cache_ms),
            policy: crate::policy::PolicyConfig::from_args(&a.policy)?,
            events: crate::stream::StreamConfig::from_args(&a.events, lambda)?,
            app_user_pool_id: a.app_user_pool_id,
            bridge_key_secret_id: a.bridge_key_secret_id,
            allow_app_custom_auth: a.allow_app_custom_auth,
        }
        .checked_bridge()
    }

    /// Whether this proxy bridges: an app pool is configured and it is not the home pool.
    pub fn bridging(&self) -> bool {
        self.app_user_pool_id
            .as_deref()
            .is_some_and(|app| app != self.user_pool_id)
    }

    fn checked_bridge(self) -> Result<Self, Error> {
        if self.bridging() {
            if self.bridge_key_secret_id.is_none() {
                return Err(Error::Config("RELAY_APP_USER_POOL_ID differs from RELAY_USER_POOL_ID (this proxy bridges): RELAY_BRIDGE_KEY_SECRET_ID is required".into()));
            }
            if self.state_table.is_none() {
                return Err(Error::Config("RELAY_APP_USER_POOL_ID differs from RELAY_USER_POOL_ID (this proxy bridges): RELAY_STATE_TABLE is required (it holds the SRP verifiers)".into()));
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
        assert!(Config::from_env(&e)
            .unwrap_err()
            .to_string()
            .contains("RELAY_REGION"));
        let mut e = base();
        e.insert("RELAY_USER_POOL_ID".into(), "us-east-1_x".into());
        assert!(Config::from_env(&e)
            .unwrap_err()
            .to_string()
            .contains("does not belong"));
        let mut e = base();
        e.insert("RELAY_RATE_PER_IP".into(), "lots".into());
        assert!(Config::from_env(&e)
            .unwrap_err()
            .to_string()
            .contains("RELAY_RATE_PER_IP"));
        let mut e = base();
        e.insert("RELAY_PEER_REGION".into(), "us-east-1".into());
        assert!(Config::from_env(&e)
            .unwrap_err()
            .to_string()
            .contains("RELAY_PEER_QUEUE_URL"));
        e.insert("RELAY_PEER_QUEUE_URL".into(), "https://sqs/q.fifo".into());
        assert!(
            Config::from_env(&e)
                .unwrap_err()
                .to_string()
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
            .to_string()
            .contains("RELAY_EVENTS_USER"));
        let mut e = base();
        e.insert("RELAY_POLICY_DISPOSABLE_DOMAINS".into(), "file:/x".into());
        assert!(Config::from_env(&e)
            .unwrap_err()
            .to_string()
            .contains("RELAY_POLICY"));
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
            .to_string()
            .contains("RELAY_TRUSTED_PROXIES"));
        let mut e = base();
        e.insert("RELAY_TRUSTED_HOPS".into(), "1".into());
        assert!(Config::from_env(&e)
            .unwrap_err()
            .to_string()
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
                with(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("RELAY_COGNITO_ENDPOINT"),
                "{bad}"
            );
        }
    }
}
