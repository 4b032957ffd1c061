//! The replicator's configuration, declared once: [`Args`] names every `RELAY_*` variable with
//! its type and default (clap, read by `relay_aws::runtime::parse_env` from an `Env`, so tests
//! pass a map), and [`Config::from_args`] checks what spans several variables. Invalid
//! configuration fails before any work, with a message naming the variable.

use std::collections::HashMap;

use replication::pacing::Category;
use replication::ApplyConfig;

use crate::Error;
use relay_aws::runtime::Env;

/// Every variable the replicator reads (see `config/replicator.example.env`).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "replicator",
    about = "cognito-relay's replicator: configured by RELAY_* variables"
)]
pub struct Args {
    #[arg(long, env = "RELAY_REGION")]
    pub region: String,
    #[arg(long, env = "RELAY_USER_POOL_ID")]
    pub user_pool_id: String,
    #[arg(long, env = "RELAY_PEER_USER_POOL_ID")]
    pub peer_user_pool_id: String,
    #[arg(long, env = "RELAY_STATE_TABLE")]
    pub state_table: String,
    #[arg(long, env = "RELAY_USERNAME_ATTRIBUTES")]
    pub username_attributes: Option<String>,
    #[arg(long, env = "RELAY_AWS_ENDPOINT")]
    pub aws_endpoint: Option<String>,
    #[arg(long, env = "RELAY_REPLICATION_KEY_SECRET_ID")]
    pub replication_key_secret_id: String,
    #[arg(long, env = "RELAY_INBOUND_QUEUE_URL")]
    pub inbound_queue_url: Option<String>,
    #[arg(long, env = "RELAY_DLQ_URL")]
    pub dlq_url: Option<String>,
    #[arg(long, env = "RELAY_MAX_RECEIVES", default_value_t = 5)]
    pub max_receives: u32,
    #[arg(long, env = "RELAY_MAX_DELIVERIES", default_value_t = 40)]
    pub max_deliveries: u32,
    /// Events whose origin time is older than this are refused (DLQ, "too old").
    #[arg(long, env = "RELAY_MAX_EVENT_AGE_S", default_value_t = 14 * 86_400)]
    pub max_event_age_s: u64,
    /// Default: `ApplyConfig::standard()`'s.
    #[arg(long, env = "RELAY_MAX_RETRIES")]
    pub max_retries: Option<usize>,
    #[arg(long, env = "RELAY_ORIGIN_SUB_ATTRIBUTE")]
    pub origin_sub_attribute: Option<String>,
    #[arg(long, env = "RELAY_APP_USER_POOL_ID")]
    pub app_user_pool_id: Option<String>,
    #[arg(long, env = "RELAY_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    #[arg(long, env = "RELAY_FALLBACK_QUEUE_URL")]
    pub fallback_queue_url: Option<String>,
    #[arg(long, env = "RELAY_PEER_REGION")]
    pub peer_region: Option<String>,
    #[arg(long, env = "RELAY_PEER_QUEUE_URL")]
    pub peer_queue_url: Option<String>,
    #[arg(long, env = "RELAY_PEER_AWS_ENDPOINT")]
    pub peer_aws_endpoint: Option<String>,
    /// Requests per second per Cognito quota category (defaults: `Category::default_rps`).
    #[arg(long, env = "RELAY_QUOTA_USER_CREATION")]
    pub quota_user_creation: Option<f64>,
    #[arg(long, env = "RELAY_QUOTA_USER_UPDATE")]
    pub quota_user_update: Option<f64>,
    #[arg(long, env = "RELAY_QUOTA_USER_AUTHENTICATION")]
    pub quota_user_authentication: Option<f64>,
    #[arg(long, env = "RELAY_QUOTA_USER_ACCOUNT_RECOVERY")]
    pub quota_user_account_recovery: Option<f64>,
    #[arg(long, env = "RELAY_QUOTA_USER_READ")]
    pub quota_user_read: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub region: String,
    pub user_pool_id: String,
    /// The only pool whose events this replicator accepts (its peer).
    pub peer_user_pool_id: String,
    /// DynamoDB table of per-user high-water marks and attempt counts.
    pub state_table: String,
    pub username_attributes: Vec<replication::SignInAlias>,
    pub aws_endpoint: Option<String>,
    pub replication_key_secret_id: String,
    pub inbound_queue_url: Option<String>,
    pub dlq_url: Option<String>,
    /// An event's own failed attempts before it goes to the DLQ (deliveries spent waiting
    /// behind an earlier event of the same user do not count).
    pub max_receives: u32,
    /// Deliveries of one message after which it goes to the DLQ whatever the reason (the
    /// state store that counts attempts was unreachable all along). Below the queue's own
    /// maxReceiveCount, so the replicator, not SQS, writes the reason.
    pub max_deliveries: u32,
    /// A replicated event older than this (origin time) is refused, not applied: an old
    /// captured event replayed by a key holder, or one that sat in queues past any redrive.
    pub max_event_age: std::time::Duration,
    pub quotas: HashMap<Category, f64>,
    pub apply: ApplyConfig,
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Lambda: records from this region's fallback queue (a second event source) are
    /// forwarded to the peer's inbound queue instead of applied.
    pub forward: Option<Forward>,
}

#[derive(Debug, Clone)]
pub struct Forward {
    /// This region's fallback queue.
    pub fallback_queue_url: String,
    /// Its queue name (the last segment of its URL), as the event source's ARN ends.
    pub fallback_queue_name: String,
    pub peer_region: String,
    pub peer_queue_url: String,
    pub peer_aws_endpoint: Option<String>,
}

impl Config {
    /// Reads and checks the `RELAY_*` variables of `env`.
    pub fn from_env(env: &dyn Env) -> Result<Self, Error> {
        Self::from_args(relay_aws::runtime::parse_env(env)?)
    }

    /// Checks what spans several variables and builds the typed configuration.
    pub fn from_args(a: Args) -> Result<Self, Error> {
        let quotas = Category::ALL
            .into_iter()
            .map(|c| {
                let set = match c {
                    Category::UserCreation => a.quota_user_creation,
                    Category::UserUpdate => a.quota_user_update,
                    Category::UserAuthentication => a.quota_user_authentication,
                    Category::UserAccountRecovery => a.quota_user_account_recovery,
                    Category::UserRead => a.quota_user_read,
                };
                (c, set.unwrap_or_else(|| c.default_rps()))
            })
            .collect();
        let mut apply = ApplyConfig::standard();
        apply.origin_sub_attribute = a.origin_sub_attribute;
        apply.app_pool_id = a.app_user_pool_id;
        apply.alias_attributes =
            relay_aws::runtime::username_attributes(a.username_attributes.as_deref())?
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect();
        if let Some(r) = a.max_retries {
            apply.max_retries = r;
        }
        let forward = match (a.fallback_queue_url, a.peer_region, a.peer_queue_url) {
            (Some(fb), Some(peer_region), Some(peer_queue_url)) => Some(Forward {
                fallback_queue_name: fb
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                fallback_queue_url: fb,
                peer_region,
                peer_queue_url,
                peer_aws_endpoint: a.peer_aws_endpoint,
            }),
            (None, _, _) => None,
            _ => return Err(Error::Config("RELAY_FALLBACK_QUEUE_URL needs RELAY_PEER_REGION and RELAY_PEER_QUEUE_URL (to forward the fallback queue to the peer)".into())),
        };
        Ok(Self {
            forward,
            region: a.region,
            user_pool_id: a.user_pool_id,
            peer_user_pool_id: a.peer_user_pool_id,
            state_table: a.state_table,
            username_attributes: relay_aws::runtime::username_attributes(
                a.username_attributes.as_deref(),
            )?,
            aws_endpoint: a.aws_endpoint,
            replication_key_secret_id: a.replication_key_secret_id,
            inbound_queue_url: a.inbound_queue_url,
            dlq_url: a.dlq_url,
            max_receives: a.max_receives,
            max_deliveries: a.max_deliveries,
            max_event_age: std::time::Duration::from_secs(a.max_event_age_s.max(3600)),
            quotas,
            apply,
            metrics_listen: a.metrics_listen,
        })
    }
}
