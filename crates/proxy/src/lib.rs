//! cognito-relay's proxy: one axum router served by Lambda (API Gateway REST events) or as a
//! standalone HTTP server.
//!
//! **Where each call is retried (one layer per call).** The app retries its own Cognito calls
//! (the proxy answers 5xx / `ServiceUnavailableException` "retry" when upstream fails), so
//! the proxy's forward to Cognito is **not** retried, except once after a client-secret
//! rotation (a different request, not a repeat). Event delivery to the peer's queue uses the
//! SDK's retries only (2 attempts within 2 s each), then the fallback queue instead of more
//! retries; the fallback send uses the home SDK's 3 attempts, then the event is counted lost
//! (reconcile repairs it). The state table, Secrets Manager and SSM use the home SDK's 3
//! attempts within 3 s; the shared limiter's DynamoDB 2 attempts within 500 ms (it sits on
//! every sign-in's path); EventBridge 1 attempt (the event stream is best effort and counts
//! what it drops). No call is wrapped in a second, in-process retry loop.
#![forbid(unsafe_code)]

pub mod adapters;
pub mod app;
mod bridge;
pub mod config;
pub mod error;
pub mod health;
pub mod limiter;
pub mod lockout;
pub mod metrics;
mod mfa;
pub mod net;
pub mod policy;
pub mod ports;
pub mod secrets;
pub mod serve;
pub mod serving;
mod sessions;
pub mod shared_limiter;
mod signups;
pub mod stream;
mod totp;

use std::sync::Arc;

pub use app::{app, AppState};
pub use config::{Config, Env, ProcessEnv};
pub use error::Error;

pub use relay_aws::runtime::init_logging;

/// The proxy's SDK configurations, each loaded once per process: its own region's and the
/// peer's. Clients with other limits derive theirs from these (`relay_aws::with_limits`).
#[derive(Clone, Debug)]
pub struct Sdk {
    pub home: relay_aws::SdkConfig,
    /// Bounded: 2 attempts within 2 s each before an event falls back to the local queue.
    pub peer: Option<relay_aws::SdkConfig>,
}

impl Sdk {
    pub async fn load(cfg: &Config) -> Self {
        let home = relay_aws::sdk_config(
            &cfg.region,
            cfg.aws_endpoint.as_deref(),
            3,
            std::time::Duration::from_secs(3),
        )
        .await;
        let peer = match &cfg.peer {
            Some(peer) => Some(
                relay_aws::sdk_config(
                    &peer.region,
                    peer.aws_endpoint.as_deref(),
                    2,
                    std::time::Duration::from_secs(2),
                )
                .await,
            ),
            None => None,
        };
        Self { home, peer }
    }
}

/// The standalone fallback forwarder (the replicator Lambda runs the same one from an event
/// source): this region's fallback queue to the peer's inbound queue, unreadable messages set
/// aside in RELAY_DLQ_URL with the reason. `None` when this proxy has no peer or fallback queue.
pub fn fallback_forwarder(cfg: &Config, sdk: &Sdk) -> Option<relay_aws::forward::Forwarder> {
    let (peer, fallback, peer_sdk) = (
        cfg.peer.as_ref()?,
        cfg.fallback_queue_url.clone()?,
        sdk.peer.as_ref()?,
    );
    Some(relay_aws::forward::Forwarder {
        local: relay_aws::queue::Queues::new(&sdk.home),
        fallback_url: fallback,
        peer: relay_aws::queue::Queues::new(peer_sdk),
        peer_url: peer.queue_url.clone(),
        dlq_url: cfg.dlq_url.clone(),
        visibility: std::time::Duration::from_secs(30),
    })
}

/// Builds the state with the AWS adapters over `sdk`. Validates configuration first; no port is
/// bound.
pub async fn build(cfg: Config, sdk: &Sdk, lambda: bool) -> Result<Arc<AppState>, Error> {
    let home = &sdk.home;
    let source: Arc<dyn ports::SecretSource> =
        Arc::new(adapters::SecretsManager(relay_aws::Secrets::new(home)));
    let secrets = secrets::SecretCache::new(
        source,
        cfg.clients_secret_id.clone(),
        cfg.replication_key_secret_id.clone(),
        cfg.secret_ttl,
    )
    .with_refresh_secret(cfg.refresh_key_secret_id.clone())
    // Every proxy with a bridge key mints: a bridging one for SRP sign-ins and sessions, the
    // primary for sessions continued from the standby after a failback (`sessions.rs`).
    .with_bridge_secret(cfg.bridge_key_secret_id.clone());
    let marks: Option<Arc<dyn ports::LocalMarks>> = cfg.state_table.as_deref().map(|t| {
        Arc::new(adapters::StateMarks(relay_aws::state::Table::new(home, t)))
            as Arc<dyn ports::LocalMarks>
    });
    let bridge_store: Option<Arc<dyn ports::BridgeStore>> = cfg.state_table.as_deref().map(|t| {
        Arc::new(adapters::StateMarks(relay_aws::state::Table::new(home, t)))
            as Arc<dyn ports::BridgeStore>
    });
    let sink: Option<Arc<dyn ports::EventSink>> = match (&cfg.peer, &sdk.peer) {
        (Some(peer), Some(peer_sdk)) => Some(Arc::new(adapters::SqsSink::new(
            relay_aws::queue::Queues::new(peer_sdk),
            peer.queue_url.clone(),
            cfg.fallback_queue_url
                .clone()
                .map(|u| (relay_aws::queue::Queues::new(home), u)),
        ))),
        _ => None,
    };
    let control: Arc<dyn ports::Control> = Arc::new(adapters::AwsControl {
        pool: relay_aws::cognito::Pool::new(
            home,
            &cfg.user_pool_id,
            cfg.username_attributes.clone(),
        ),
        drain: cfg
            .drain_parameter
            .as_deref()
            .map(|p| relay_aws::DrainSwitch::new(home, p)),
    });
    let limiter: Arc<dyn ports::RateLimiter> = match cfg.limits_table.as_deref() {
        Some(table) => {
            // The peer region's table: failures and locks are written there too.
            let peer_limits = match (cfg.peer_limits_table.as_deref(), &sdk.peer) {
                (Some(t), Some(peer_sdk)) => {
                    let ddb =
                        relay_aws::with_limits(peer_sdk, 1, std::time::Duration::from_millis(500));
                    Some(Arc::new(shared_limiter::DynamoCounters(
                        relay_aws::limits::Counters::new(&ddb, t),
                    ))
                        as Arc<dyn shared_limiter::CounterStore>)
                }
                _ => None,
            };
            // Short: a limiter that waits long on DynamoDB delays every sign-in.
            let ddb = relay_aws::with_limits(home, 2, std::time::Duration::from_millis(500));
            let store = Arc::new(shared_limiter::DynamoCounters(
                relay_aws::limits::Counters::new(&ddb, table),
            ));
            Arc::new(
                shared_limiter::SharedLimiter::new(
                    store,
                    cfg.limiter_max_keys,
                    cfg.failed_signin_window,
                    cfg.lockout_base,
                    cfg.limits_on_store_error,
                )
                .with_peer(peer_limits)
                .with_emf(lambda),
            )
        }
        None => Arc::new(shared_limiter::ProcessLimiter::new(
            cfg.limiter_max_keys,
            cfg.failed_signin_window,
            cfg.lockout_base,
        )),
    };
    let mut state = AppState::new(cfg, secrets, sink, Some(control), limiter, lambda)?;
    state.marks = marks;
    state.bridge_store = bridge_store;
    // Half-finished sign-ups replicated from the peer finish here (needs the state table).
    state.placeholders = state.cfg.state_table.as_ref().map(|_| {
        Arc::new(adapters::AdminPlaceholders(relay_aws::cognito::Pool::new(
            home,
            &state.cfg.user_pool_id,
            state.cfg.username_attributes.clone(),
        ))) as Arc<dyn ports::Placeholders>
    });
    state.policy =
        match state.cfg.policy.clone() {
            Some(p) => {
                let fetch = Arc::new(policy::Fetcher(Some(aws_sdk_ssm::Client::new(home))));
                Some(policy::PolicyHandle::load(p, fetch).await.map_err(|e| {
                    Error::Config(format!("invalid configuration: RELAY_POLICY: {e}"))
                })?)
            }
            None => None,
        };
    if let Some(ev) = state.cfg.events.clone() {
        let mut eb = relay_aws::with_limits(home, 1, ev.call_timeout).to_builder();
        if let Some(endpoint) = &ev.endpoint {
            eb.set_endpoint_url(Some(endpoint.clone()));
        }
        let eb = eb.build();
        let bus = Arc::new(stream::EventBridge {
            client: aws_sdk_eventbridge::Client::new(&eb),
            bus: ev.bus.clone(),
            source: ev.source.clone(),
        });
        state.events = Some(stream::Publisher::start(bus, &ev));
    }
    Ok(Arc::new(state))
}
