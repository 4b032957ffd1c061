//! The replicator: applies inbound replication events to this region's pool. One `process`
//! over a batch, two drivers (a Lambda with an SQS event source reporting partial batch
//! failures, and a standalone long-polling worker).
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use replication::pacing::{Category, Pacer};
use replication::{apply, ApplyConfig, ApplyError, Event, Outcome, UserDirectory};
use wire::seal::Keyring;

pub use relay_aws::runtime::{init_logging, Env, ProcessEnv};

#[derive(Debug, Clone)]
pub struct Config {
    pub region: String,
    pub user_pool_id: String,
    pub username_attributes: Vec<String>,
    pub aws_endpoint: Option<String>,
    pub replication_key_secret_id: String,
    pub inbound_queue_url: Option<String>,
    pub dlq_url: Option<String>,
    pub max_receives: u32,
    pub quotas: HashMap<Category, f64>,
    pub apply: ApplyConfig,
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Lambda: records from this region's fallback queue (a second event source) are
    /// forwarded to the peer's inbound queue instead of applied.
    pub forward: Option<Forward>,
}

#[derive(Debug, Clone)]
pub struct Forward {
    /// Queue name of this region's fallback queue (the last segment of its URL).
    pub fallback_queue_name: String,
    pub peer_region: String,
    pub peer_queue_url: String,
    pub peer_aws_endpoint: Option<String>,
}

impl Config {
    pub fn from_env(env: &dyn Env) -> Result<Self, String> {
        let req = |k: &str| env.get(k).ok_or_else(|| format!("{k} is required"));
        let mut quotas = HashMap::new();
        for c in Category::ALL {
            let v = match env.get(c.env_name()) {
                Some(v) => v.parse::<f64>().map_err(|_| format!("{}={v:?} is not a number", c.env_name()))?,
                None => c.default_rps(),
            };
            quotas.insert(c, v);
        }
        let mut apply = ApplyConfig::standard();
        apply.origin_sub_attribute = env.get("RELAY_ORIGIN_SUB_ATTRIBUTE");
        if let Some(r) = env.get("RELAY_MAX_RETRIES") {
            apply.max_retries = r.parse().map_err(|_| format!("RELAY_MAX_RETRIES={r:?} is not a number"))?;
        }
        let max_receives = match env.get("RELAY_MAX_RECEIVES") {
            Some(v) => v.parse().map_err(|_| format!("RELAY_MAX_RECEIVES={v:?} is not a number"))?,
            None => 5,
        };
        let metrics_listen = match env.get("RELAY_METRICS_LISTEN") {
            Some(v) => Some(v.parse().map_err(|_| format!("RELAY_METRICS_LISTEN={v:?} is not address:port"))?),
            None => None,
        };
        let forward = match (env.get("RELAY_FALLBACK_QUEUE_URL"), env.get("RELAY_PEER_REGION"), env.get("RELAY_PEER_QUEUE_URL")) {
            (Some(fb), Some(peer_region), Some(peer_queue_url)) => Some(Forward {
                fallback_queue_name: fb.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_owned(),
                peer_region,
                peer_queue_url,
                peer_aws_endpoint: env.get("RELAY_PEER_AWS_ENDPOINT"),
            }),
            (None, _, _) => None,
            _ => return Err("RELAY_FALLBACK_QUEUE_URL needs RELAY_PEER_REGION and RELAY_PEER_QUEUE_URL (to forward the fallback queue to the peer)".into()),
        };
        Ok(Self {
            forward,
            region: req("RELAY_REGION")?,
            user_pool_id: req("RELAY_USER_POOL_ID")?,
            username_attributes: env.get("RELAY_USERNAME_ATTRIBUTES").unwrap_or_default().split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect(),
            aws_endpoint: env.get("RELAY_AWS_ENDPOINT"),
            replication_key_secret_id: req("RELAY_REPLICATION_KEY_SECRET_ID")?,
            inbound_queue_url: env.get("RELAY_INBOUND_QUEUE_URL"),
            dlq_url: env.get("RELAY_DLQ_URL"),
            max_receives,
            quotas,
            apply,
            metrics_listen,
        })
    }
}

/// One inbound message, whichever driver received it.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
    pub group_id: Option<String>,
}

/// The order to apply a batch in: groups as they arrived, and within one user's group, by the
/// origin's success time. SQS FIFO already delivers a group in order; this also restores the
/// order when a transport did not (a redelivery after a crash in an emulator, or an event that
/// took the fallback path), so a confirmation never runs before its sign-up in one batch.
pub fn apply_order(batch: &[Inbound]) -> Vec<usize> {
    let time = |m: &Inbound| Event::from_json(&m.body).map(|e| e.origin_time_ms).unwrap_or(0);
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, m) in batch.iter().enumerate() {
        first_seen.entry(m.group_id.as_deref().unwrap_or("")).or_insert(i);
    }
    let mut idx: Vec<usize> = (0..batch.len()).collect();
    idx.sort_by_key(|&i| (first_seen[batch[i].group_id.as_deref().unwrap_or("")], time(&batch[i])));
    idx
}

/// What to do with a message after processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Applied (or nothing to do): delete it.
    Done,
    /// Move to the DLQ with this reason, then delete it.
    DeadLetter(String),
    /// Leave it: it will be delivered again after the visibility timeout.
    Retry(String),
}

/// How many recent lags the Prometheus summary is computed over (a long-running worker must
/// not grow without bound).
const LAG_WINDOW: usize = 4096;

#[derive(Default)]
pub struct Stats {
    pub outcomes: Mutex<BTreeMap<(String, String), u64>>,
    /// The most recent lags (at most LAG_WINDOW), for the quantiles.
    pub lag_ms: Mutex<std::collections::VecDeque<u64>>,
    lag_sum: std::sync::atomic::AtomicU64,
    lag_count: std::sync::atomic::AtomicU64,
}

impl Stats {
    fn count(&self, action: &str, outcome: &str) {
        *self.outcomes.lock().unwrap_or_else(|p| p.into_inner()).entry((action.to_owned(), outcome.to_owned())).or_default() += 1;
    }
    fn record_lag(&self, lag: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let mut w = self.lag_ms.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() == LAG_WINDOW {
            w.pop_front();
        }
        w.push_back(lag);
        self.lag_sum.fetch_add(lag, Relaxed);
        self.lag_count.fetch_add(1, Relaxed);
    }

    pub fn prometheus(&self) -> String {
        let mut s = String::from("# TYPE relay_replication_events_total counter\n");
        for ((a, o), n) in self.outcomes.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            s.push_str(&format!("relay_replication_events_total{{action=\"{a}\",outcome=\"{o}\"}} {n}\n"));
        }
        let mut sorted: Vec<u64> = self.lag_ms.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect();
        sorted.sort_unstable();
        let q = |p: f64| sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0);
        s.push_str("# TYPE relay_replication_lag_ms summary\n");
        s.push_str(&format!("relay_replication_lag_ms{{quantile=\"0.5\"}} {}\nrelay_replication_lag_ms{{quantile=\"0.99\"}} {}\n", q(0.5), q(0.99)));
        use std::sync::atomic::Ordering::Relaxed;
        s.push_str(&format!("relay_replication_lag_ms_sum {}\nrelay_replication_lag_ms_count {}\n", self.lag_sum.load(Relaxed), self.lag_count.load(Relaxed)));
        s
    }
}

pub struct Replicator<D> {
    pub dir: D,
    /// The replication keyring; re-read from Secrets Manager when an event names a key it
    /// does not have (a key rotated in at the origin).
    pub keys: std::sync::RwLock<Keyring>,
    pub key_source: Option<(relay_aws::Secrets, String)>,
    pub pacer: Pacer,
    pub cfg: Config,
    pub stats: Stats,
    /// Print one EMF line per event (Lambda).
    pub emf: bool,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl<D: UserDirectory> Replicator<D> {
    /// Processes a batch in order. After a message of a FIFO group fails, the later messages
    /// of that group are left for redelivery so that one user's events never apply out of order.
    pub async fn process(&self, batch: &[Inbound]) -> Vec<Disposition> {
        let mut blocked: HashSet<String> = HashSet::new();
        let mut out: Vec<Option<Disposition>> = vec![None; batch.len()];
        for i in apply_order(batch) {
            let m = &batch[i];
            let group = m.group_id.clone().unwrap_or_default();
            if blocked.contains(&group) {
                out[i] = Some(Disposition::Retry("an earlier event of this user failed in the same batch".into()));
                continue;
            }
            let d = self.one(m).await;
            if matches!(d, Disposition::Retry(_)) {
                blocked.insert(group);
            }
            out[i] = Some(d);
        }
        out.into_iter().map(|d| d.expect("every message has a disposition")).collect()
    }

    async fn reload_keys(&self) -> Option<Keyring> {
        let (secrets, id) = self.key_source.as_ref()?;
        match secrets.get(id).await.map_err(|e| e.to_string()).and_then(|t| Keyring::from_json(&t).map_err(|e| e.to_string())) {
            Ok(k) => {
                tracing::info!(current = k.current_id(), "replication keyring re-read");
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = k.clone();
                Some(k)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot re-read the replication keyring");
                None
            }
        }
    }

    async fn one(&self, m: &Inbound) -> Disposition {
        let event = match Event::from_json(&m.body) {
            Ok(e) => e,
            Err(reason) => {
                self.stats.count("unknown", "permanent");
                tracing::error!(message_id = %m.message_id, %reason, "unreadable event sent to the DLQ");
                return Disposition::DeadLetter(reason);
            }
        };
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut result = apply(&event, &self.dir, &keys, &self.pacer, &self.cfg.apply).await;
        if matches!(&result, Err(ApplyError::Retryable(r)) if r.starts_with(replication::apply::UNKNOWN_KEY)) {
            if let Some(fresh) = self.reload_keys().await {
                result = apply(&event, &self.dir, &fresh, &self.pacer, &self.cfg.apply).await;
            }
        }
        let lag = now_ms().saturating_sub(event.origin_time_ms);
        let (disposition, outcome) = match &result {
            Ok(Outcome::Applied) => (Disposition::Done, "applied"),
            Ok(Outcome::AlreadyApplied) => (Disposition::Done, "already_applied"),
            Ok(Outcome::Partial(what)) => {
                tracing::warn!(event_id = %event.id, part = what, "applied without a part that cannot be replicated");
                (Disposition::Done, "partial")
            }
            Err(ApplyError::Permanent(r)) => (Disposition::DeadLetter(r.clone()), "permanent"),
            Err(ApplyError::Retryable(r)) if m.receive_count >= self.cfg.max_receives => (Disposition::DeadLetter(format!("gave up after {} deliveries: {r}", m.receive_count)), "retryable"),
            Err(ApplyError::Retryable(r)) => (Disposition::Retry(r.clone()), "retryable"),
        };
        self.stats.count(&event.action, outcome);
        if matches!(disposition, Disposition::Done) {
            self.stats.record_lag(lag);
        }
        match &disposition {
            Disposition::Done => tracing::info!(event_id = %event.id, action = %event.action, outcome, lag_ms = lag, "event applied"),
            Disposition::DeadLetter(r) => tracing::error!(event_id = %event.id, action = %event.action, reason = %r, "event sent to the DLQ"),
            Disposition::Retry(r) => tracing::warn!(event_id = %event.id, action = %event.action, reason = %r, "event will be retried"),
        }
        if self.emf {
            println!("{}", emf_event(&event.action, outcome, lag, matches!(disposition, Disposition::Done)));
        }
        disposition
    }
}

fn emf_event(action: &str, outcome: &str, lag_ms: u64, applied: bool) -> String {
    serde_json::json!({
        "_aws": {"Timestamp": now_ms(), "CloudWatchMetrics": [{"Namespace": "CognitoRelay", "Dimensions": [["Action"], []], "Metrics": [
            {"Name": "ReplicationLagMs", "Unit": "Milliseconds"}, {"Name": "ReplicationApplied", "Unit": "Count"}, {"Name": "ReplicationFailed", "Unit": "Count"}]}]},
        "Action": action,
        "Outcome": outcome,
        "ReplicationLagMs": lag_ms,
        "ReplicationApplied": u8::from(applied),
        "ReplicationFailed": u8::from(!applied),
    })
    .to_string()
}

/// Builds a replicator over this region's pool. Fails (before any work) on bad config or an
/// unreadable replication key.
pub async fn build(cfg: Config, emf: bool) -> Result<Replicator<relay_aws::cognito::Pool>, String> {
    let sdk = relay_aws::sdk_config(&cfg.region, cfg.aws_endpoint.as_deref(), 2, Duration::from_secs(5)).await;
    let secrets = relay_aws::Secrets::new(&sdk);
    let keys = Keyring::from_json(&secrets.get(&cfg.replication_key_secret_id).await?).map_err(|e| e.to_string())?;
    let dir = relay_aws::cognito::Pool::new(&sdk, &cfg.user_pool_id, cfg.username_attributes.clone());
    let pacer = Pacer::new(&cfg.quotas);
    let key_source = Some((secrets, cfg.replication_key_secret_id.clone()));
    Ok(Replicator { dir, keys: std::sync::RwLock::new(keys), key_source, pacer, cfg, stats: Stats::default(), emf })
}


#[cfg(test)]
mod tests {
    use super::*;
    use replication::{Attr, Step, UserState};

    struct Pool(Mutex<HashMap<String, UserState>>);
    impl UserDirectory for Pool {
        async fn get_user(&self, key: &str) -> Result<Option<UserState>, ApplyError> {
            if key == "throttled" {
                return Err(ApplyError::Retryable("TooManyRequestsException".into()));
            }
            Ok(self.0.lock().unwrap().get(key).cloned())
        }
        async fn create_user(&self, key: &str, a: &[Attr]) -> Result<UserState, ApplyError> {
            let u = UserState { username: key.into(), status: "FORCE_CHANGE_PASSWORD".into(), enabled: true, attributes: a.to_vec() };
            self.0.lock().unwrap().insert(key.into(), u.clone());
            Ok(u)
        }
        async fn run(&self, _: &str, _: &Step) -> Result<(), ApplyError> {
            Ok(())
        }
    }

    fn replicator() -> Replicator<Pool> {
        let env: HashMap<String, String> = [("RELAY_REGION", "b"), ("RELAY_USER_POOL_ID", "b_1"), ("RELAY_REPLICATION_KEY_SECRET_ID", "k"), ("RELAY_MAX_RETRIES", "0")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let cfg = Config::from_env(&env).unwrap();
        Replicator { dir: Pool(Mutex::new(HashMap::new())), keys: std::sync::RwLock::new(Keyring::single("k1", [0; 32])), key_source: None, pacer: Pacer::new(&HashMap::new()), cfg, stats: Stats::default(), emf: false }
    }

    fn msg(key: &str, group: &str, change: &str, count: u32) -> Inbound {
        let body = format!(r#"{{"v":1,"id":"{key}-{change}","origin_region":"a","origin_pool":"a_1","action":"X","user_key":"{key}","origin_time_ms":0,"change":{{"op":"{change}"}}}}"#);
        Inbound { message_id: "m".into(), body, receive_count: count, group_id: Some(group.into()) }
    }

    #[test]
    fn lag_memory_is_bounded_but_counts_everything() {
        let s = Stats::default();
        for i in 0..(LAG_WINDOW as u64 + 100) {
            s.record_lag(i);
        }
        assert_eq!(s.lag_ms.lock().unwrap().len(), LAG_WINDOW);
        let text = s.prometheus();
        assert!(text.contains(&format!("relay_replication_lag_ms_count {}", LAG_WINDOW + 100)), "{text}");
        assert!(text.contains("quantile=\"0.99\"} 4"), "quantiles come from the recent window: {text}");
    }

    #[test]
    fn a_users_events_apply_in_origin_time_order() {
        let at = |key: &str, group: &str, op: &str, t: u64| {
            let mut m = msg(key, group, op, 1);
            m.body = m.body.replace(r#""origin_time_ms":0"#, &format!(r#""origin_time_ms":{t}"#));
            m
        };
        let batch = vec![at("a", "g1", "confirm", 20), at("b", "g2", "delete", 5), at("a", "g1", "delete", 10)];
        assert_eq!(apply_order(&batch), vec![2, 0, 1]);
    }

    #[tokio::test]
    async fn a_failure_holds_back_the_rest_of_its_group_only() {
        let r = replicator();
        let batch = vec![msg("throttled", "g1", "delete", 1), msg("throttled", "g1", "global_sign_out", 1), msg("bob", "g2", "delete", 1)];
        let d = r.process(&batch).await;
        assert!(matches!(d[0], Disposition::Retry(_)));
        assert!(matches!(&d[1], Disposition::Retry(r) if r.contains("earlier event")));
        assert_eq!(d[2], Disposition::Done);
    }

    #[tokio::test]
    async fn poison_and_exhausted_events_go_to_the_dlq_with_a_reason() {
        let r = replicator();
        let d = r.process(&[Inbound { message_id: "m".into(), body: "not json".into(), receive_count: 1, group_id: None }, msg("carol", "g3", "confirm", 5), msg("throttled", "g4", "delete", 5)]).await;
        assert!(matches!(&d[0], Disposition::DeadLetter(r) if r.contains("not JSON")));
        assert!(matches!(&d[1], Disposition::DeadLetter(r) if r.contains("does not exist")));
        assert!(matches!(&r.process(&[msg("carol", "g3", "confirm", 1)]).await[0], Disposition::Retry(_)));
        assert!(matches!(&d[2], Disposition::DeadLetter(r) if r.contains("gave up after 5")));
        assert!(r.stats.prometheus().contains("outcome=\"permanent\""));
    }
}
