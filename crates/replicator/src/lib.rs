//! The replicator: applies inbound replication events to this region's pool. One `process`
//! over a batch, two drivers (a Lambda with an SQS event source reporting partial batch
//! failures: `lambda`; and a standalone long-polling worker: `worker`), both behind ports
//! (`ports`: the inbound queue, the key source, the pool probe; `DeadLetterQueue`) so that
//! settling, dead-lettering, redelivery and the partial batch response are unit-tested here.
//! The binary (`main.rs`) only wires configuration, SDK clients and the runtime.
//!
//! # Retries: one layer per call
//!
//! - **Cognito Admin calls** (`UserDirectory`, the calls that replay an event) are retried by
//!   the in-process backoff in `replication::apply` only: `RELAY_MAX_RETRIES` (default 5)
//!   retries with jittered exponential backoff, each attempt paced by the `Pacer` (Cognito's
//!   per-category quotas), on retryable errors by type (`ApplyError::Throttled`, `Retryable`,
//!   `UnknownKey`; never `Permanent`). The SDK's own retries are off for that client
//!   (`relay_aws::without_retries`): an SDK retry would bypass the pacer and multiply the
//!   attempts. Every repeated call counts in `ApplyRetries`, every throttled attempt in
//!   `CognitoThrottled`.
//! - **State table, Secrets Manager, SQS** (bookkeeping around an event, not the replay) are
//!   retried by the SDK's standard retry only (3 attempts, from the binary's one SDK config);
//!   nothing wraps them in another loop.
//! - **SQS redelivery** is not a per-call retry but the per-event one: an event whose calls
//!   ran out of in-process retries is left on the queue (`Disposition::Retry`) and delivered
//!   again after the visibility timeout; after `RELAY_MAX_RECEIVES` of its own failed attempts
//!   (counted in the state table) it goes to the DLQ with the reason. It is what makes an
//!   outage longer than one invocation lose nothing.
#![forbid(unsafe_code)]

pub mod lambda;
pub mod ports;
pub mod worker;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use replication::pacing::Pacer;
use replication::state::{record_key, update};
use replication::{
    apply_tallied, ApplyError, Envelope, EventError, Header, Outcome, StateStore, Tally,
    UserDirectory,
};
use wire::seal::Keyring;

pub use relay_aws::runtime::{init_logging, Env, ProcessEnv};

pub mod config;
pub mod error;
pub use config::{Config, Forward};
pub use error::Error;

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
    let time = |m: &Inbound| Header::peek(&m.body).map(|h| h.origin_time_ms).unwrap_or(0);
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, m) in batch.iter().enumerate() {
        first_seen
            .entry(m.group_id.as_deref().unwrap_or(""))
            .or_insert(i);
    }
    let mut idx: Vec<usize> = (0..batch.len()).collect();
    idx.sort_by_key(|&i| {
        (
            first_seen[batch[i].group_id.as_deref().unwrap_or("")],
            time(&batch[i]),
        )
    });
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

/// The replicator's Prometheus metrics, recorded through the `metrics` facade into this
/// instance's own recorder (`relay_aws::telemetry::prometheus`): `relay_replication_events_total`
/// by action and outcome, `relay_replication_apply_retries_total` and
/// `relay_replication_cognito_throttled_total` by action, and the lag summary
/// `relay_replication_lag_ms` (p50/p99 over the last 15 minutes, `_sum`/`_count` since start).
pub struct Stats {
    recorder: metrics_exporter_prometheus::PrometheusRecorder,
    /// Lag samples since the last upkeep.
    lags: std::sync::atomic::AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            recorder: relay_aws::telemetry::prometheus(&[]),
            lags: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

/// Lag samples between two upkeeps of the recorder (which folds buffered samples into the
/// summary, so a process nobody scrapes does not buffer without bound).
const UPKEEP_EVERY: u64 = 1024;

impl Stats {
    fn record(&self, f: impl FnOnce()) {
        metrics::with_local_recorder(&self.recorder, f);
    }
    fn count(&self, action: &str, outcome: &str) {
        let labels = [
            ("action", action.to_owned()),
            ("outcome", outcome.to_owned()),
        ];
        self.record(|| metrics::counter!("relay_replication_events_total", &labels).increment(1));
    }
    /// Counts what applying one event of `action` cost in retries and throttled attempts.
    fn count_calls(&self, action: &str, tally: &Tally) {
        let (retries, throttled) = (tally.retries(), tally.throttled());
        if retries + throttled == 0 {
            return;
        }
        let labels = [("action", action.to_owned())];
        self.record(|| {
            metrics::counter!("relay_replication_apply_retries_total", &labels).increment(retries);
            metrics::counter!("relay_replication_cognito_throttled_total", &labels)
                .increment(throttled);
        });
    }
    fn record_lag(&self, lag: u64) {
        self.record(|| metrics::histogram!("relay_replication_lag_ms").record(lag as f64));
        let since_upkeep = self.lags.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if since_upkeep >= UPKEEP_EVERY {
            self.lags.store(0, std::sync::atomic::Ordering::Relaxed);
            self.recorder.handle().run_upkeep();
        }
    }

    /// The Prometheus text exposition.
    pub fn prometheus(&self) -> String {
        self.recorder.handle().render()
    }
}

pub struct Replicator<D, S> {
    pub dir: D,
    /// Per-user high-water marks and attempt counts.
    pub store: S,
    /// The replication keyring; re-read from Secrets Manager when an event names a key it
    /// does not have (a key rotated in at the origin).
    pub keys: std::sync::RwLock<Keyring>,
    pub key_source: Option<Box<dyn ports::KeySource>>,
    /// When the keyring was last re-read for an unknown key id (at most once a minute, so a
    /// stream of events naming made-up key ids cannot hammer Secrets Manager).
    pub last_reload: Mutex<Option<std::time::Instant>>,
    pub pacer: Pacer,
    pub cfg: Config,
    pub stats: Stats,
    /// Print one EMF line per event (Lambda).
    pub emf: bool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How often an unknown key id may trigger a re-read of the keyring.
const KEY_RELOAD_EVERY: Duration = Duration::from_secs(60);

impl<D: UserDirectory, S: StateStore> Replicator<D, S> {
    /// Processes a batch in order. After an event of a user fails retryably, the user's later
    /// events in the batch are left for redelivery (without counting against their own
    /// attempts) so that one user's events never apply out of order. An event dead-lettered
    /// for good does not hold the user's later events back.
    pub async fn process(&self, batch: &[Inbound]) -> Vec<Disposition> {
        let mut blocked: HashMap<String, String> = HashMap::new();
        let mut out: Vec<Option<Disposition>> = vec![None; batch.len()];
        for i in apply_order(batch) {
            let m = &batch[i];
            let group = m.group_id.clone().unwrap_or_default();
            if let Some(head) = blocked.get(&group) {
                out[i] = Some(Disposition::Retry(format!(
                    "waiting behind event {head} of the same user"
                )));
                continue;
            }
            let d = self.one(m).await;
            if matches!(d, Disposition::Retry(_)) {
                blocked.insert(
                    group,
                    Header::peek(&m.body)
                        .map(|h| h.id)
                        .unwrap_or_else(|_| m.message_id.clone()),
                );
            }
            out[i] = Some(d);
        }
        out.into_iter()
            .map(|d| d.unwrap_or_else(|| Disposition::Retry("not processed".into())))
            .collect()
    }

    /// Re-reads the keyring, at most once per KEY_RELOAD_EVERY.
    async fn reload_keys(&self) -> Option<Keyring> {
        let source = self.key_source.as_ref()?;
        {
            let mut last = self.last_reload.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < KEY_RELOAD_EVERY) {
                return None;
            }
            *last = Some(std::time::Instant::now());
        }
        match source.read().await {
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

    fn refuse(&self, m: &Inbound, outcome: &str, reason: String) -> Disposition {
        self.stats.count("unknown", outcome);
        tracing::error!(message_id = %m.message_id, %reason, "event refused and sent to the DLQ, not applied");
        if self.emf {
            println!(
                "{}",
                emf_event("unknown", outcome, 0, false, &Tally::default())
            );
        }
        Disposition::DeadLetter(reason)
    }

    /// Verifies the envelope; an unknown key id re-reads the keyring (rate-limited) once.
    async fn open(&self, m: &Inbound) -> Result<replication::Event, Disposition> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut opened = Envelope::open(&m.body, &keys);
        if matches!(opened, Err(EventError::UnknownKey(_))) {
            if let Some(fresh) = self.reload_keys().await {
                opened = Envelope::open(&m.body, &fresh);
            }
        }
        let event = match opened {
            Ok(e) => e,
            // After one reload of the keyring (above) an unknown key id is not a key this
            // deployment holds: dead-lettered with the reason, never retried for days.
            Err(e @ (EventError::UnknownKey(_) | EventError::Unauthenticated(_))) => {
                return Err(self.refuse(m, "unauthenticated", format!("unauthenticated: {e}")))
            }
            Err(e) => return Err(self.refuse(m, "permanent", e.to_string())),
        };
        if event.origin_pool != self.cfg.peer_user_pool_id
            || event.target_pool != self.cfg.user_pool_id
        {
            let reason = format!("wrong-pool: event {} is from {} for {}; this replicator takes events from {} for {}", event.id, event.origin_pool, event.target_pool, self.cfg.peer_user_pool_id, self.cfg.user_pool_id);
            return Err(self.refuse(m, "wrong_pool", reason));
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let max_ms = self.cfg.max_event_age.as_millis() as u64;
        if now_ms.saturating_sub(event.origin_time_ms) > max_ms {
            let reason = format!(
                "too-old: event {} is from {} ms ago, past the {} s bound; relayctl reconcile repairs what it carried",
                event.id,
                now_ms.saturating_sub(event.origin_time_ms),
                max_ms / 1000
            );
            return Err(self.refuse(m, "too_old", reason));
        }
        Ok(event)
    }

    /// Counts one failed attempt of the event itself; returns the count so far, or `None`
    /// when the state store cannot be reached.
    async fn failed_attempt(&self, event: &replication::Event) -> Option<u32> {
        let key = record_key(&event.user_key);
        update(&self.store, &key, |r| {
            let n = r.attempts.entry(event.id.clone()).or_default();
            *n += 1;
            *n
        })
        .await
        .map_err(|e| tracing::warn!(event_id = %event.id, error = %e, "cannot count the attempt"))
        .ok()
    }

    async fn forget_attempts(&self, event: &replication::Event) {
        let key = record_key(&event.user_key);
        if let Err(e) = update(&self.store, &key, |r| r.attempts.remove(&event.id)).await {
            tracing::warn!(event_id = %event.id, error = %e, "cannot clear the attempt count");
        }
    }

    async fn one(&self, m: &Inbound) -> Disposition {
        let event = match self.open(m).await {
            Ok(e) => e,
            Err(d) => return d,
        };
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
        let tally = Tally::default();
        let (dir, store, pacer, cfg) = (&self.dir, &self.store, &self.pacer, &self.cfg.apply);
        let mut result = apply_tallied(&event, dir, store, &keys, pacer, cfg, &tally).await;
        if matches!(&result, Err(ApplyError::UnknownKey(_))) {
            if let Some(fresh) = self.reload_keys().await {
                result = apply_tallied(&event, dir, store, &fresh, pacer, cfg, &tally).await;
            }
        }
        self.stats.count_calls(&event.action, &tally);
        let lag = now_ms().saturating_sub(event.origin_time_ms);
        let (disposition, outcome) = match &result {
            Ok(Outcome::Applied) => (Disposition::Done, "applied"),
            Ok(Outcome::AlreadyApplied) => (Disposition::Done, "already_applied"),
            Ok(Outcome::Stale) => (Disposition::Done, "stale"),
            Ok(Outcome::Partial(what)) => {
                tracing::warn!(event_id = %event.id, part = what, "applied without a part that cannot be replicated");
                (Disposition::Done, "partial")
            }
            Err(e @ ApplyError::Permanent(_)) => (Disposition::DeadLetter(e.reason()), "permanent"),
            Err(e) => match (self.failed_attempt(&event).await, e.reason()) {
                (Some(n), r) if n >= self.cfg.max_receives => (
                    Disposition::DeadLetter(format!("gave up after {n} attempts: {r}")),
                    "retryable",
                ),
                (None, r) if m.receive_count >= self.cfg.max_deliveries => (
                    Disposition::DeadLetter(format!(
                        "gave up after {} deliveries: {r}",
                        m.receive_count
                    )),
                    "retryable",
                ),
                (_, r) => (Disposition::Retry(r), "retryable"),
            },
        };
        if matches!(disposition, Disposition::DeadLetter(_)) {
            // A redriven event starts its attempts afresh.
            self.forget_attempts(&event).await;
        }
        self.stats.count(&event.action, outcome);
        if matches!(disposition, Disposition::Done) && outcome != "stale" {
            self.stats.record_lag(lag);
        }
        match &disposition {
            Disposition::Done => {
                tracing::info!(event_id = %event.id, action = %event.action, outcome, lag_ms = lag, "event applied")
            }
            Disposition::DeadLetter(r) => {
                tracing::error!(event_id = %event.id, action = %event.action, reason = %r, "event sent to the DLQ")
            }
            Disposition::Retry(r) => {
                tracing::warn!(event_id = %event.id, action = %event.action, reason = %r, "event will be retried")
            }
        }
        if self.emf {
            println!(
                "{}",
                emf_event(
                    &event.action,
                    outcome,
                    lag,
                    matches!(disposition, Disposition::Done),
                    &tally,
                )
            );
        }
        disposition
    }
}

/// One CloudWatch EMF line per event, namespace `CognitoRelay`, dimension sets `[["Action"], []]`.
/// `CognitoThrottled` counts every attempt Cognito throttled (the proxy emits the same metric
/// for the requests it forwards: the dimensionless series sums both); `ApplyRetries` counts
/// calls the in-process backoff repeated.
fn emf_event(action: &str, outcome: &str, lag_ms: u64, applied: bool, tally: &Tally) -> String {
    use relay_aws::telemetry::{names, Emf, Unit};
    Emf::new(&[&["Action"], &[]])
        .with("Action", action)
        .with("Outcome", outcome)
        .metric(names::REPLICATION_LAG_MS, Unit::Milliseconds, lag_ms)
        .metric(names::REPLICATION_APPLIED, Unit::Count, u8::from(applied))
        .metric(names::REPLICATION_FAILED, Unit::Count, u8::from(!applied))
        .metric(names::COGNITO_THROTTLED, Unit::Count, tally.throttled())
        .metric(names::APPLY_RETRIES, Unit::Count, tally.retries())
        .line()
}

/// One CloudWatch EMF line per forwarding batch (metric `FallbackForwarded`, no dimensions):
/// fallback events this region's replicator moved to the peer's inbound queue.
pub fn emf_forwarded(n: usize) -> String {
    use relay_aws::telemetry::{names, Emf, Unit};
    Emf::new(&[&[]])
        .metric(names::FALLBACK_FORWARDED, Unit::Count, n)
        .line()
}

/// One CloudWatch EMF line per dependency the Lambda waits for (metric `DependencyWaitingSeconds`).
pub fn emf_waiting(w: &relay_aws::liveness::Waiting) -> String {
    use relay_aws::telemetry::{names, Emf, Unit};
    Emf::new(&[&["Dependency"]])
        .with("Dependency", w.dependency.clone())
        .metric(
            names::DEPENDENCY_WAITING_SECONDS,
            Unit::Seconds,
            now_ms().saturating_sub(w.since_ms) / 1000,
        )
        .with("message", w.line())
        .line()
}

/// This region's dead-letter queue, as a port so that settling is unit-tested.
pub trait DeadLetterQueue: Send + Sync {
    /// Sends `body` with its `reason` (a message attribute), in `group_id`, deduplicated by
    /// `dedup_id`.
    fn send<'a>(
        &'a self,
        body: &'a str,
        group_id: &'a str,
        dedup_id: &'a str,
        reason: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send + 'a>>;
}

/// The DLQ over SQS.
pub struct SqsDeadLetters<'a> {
    pub queues: &'a relay_aws::queue::Queues,
    pub url: &'a str,
}

impl DeadLetterQueue for SqsDeadLetters<'_> {
    fn send<'a>(
        &'a self,
        body: &'a str,
        group_id: &'a str,
        dedup_id: &'a str,
        reason: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send + 'a>> {
        Box::pin(async move {
            Ok(self
                .queues
                .send(self.url, body, group_id, dedup_id, Some(reason))
                .await?)
        })
    }
}

/// Writes `m` to the DLQ with its `reason`. True when it is safely there (it may leave the
/// inbound queue); false when there is no DLQ or the write failed (it stays on the queue, for
/// the redrive policy or the next delivery: never dropped).
pub async fn dead_letter(dlq: Option<&dyn DeadLetterQueue>, m: &Inbound, reason: &str) -> bool {
    let Some(dlq) = dlq else {
        tracing::error!(message_id = %m.message_id, "no RELAY_DLQ_URL: event left on the queue for the redrive policy");
        return false;
    };
    let group = m.group_id.clone().unwrap_or_else(|| "poison".into());
    match dlq.send(&m.body, &group, &m.message_id, reason).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(message_id = %m.message_id, error = %e, "cannot write to the DLQ; event stays on the queue");
            false
        }
    }
}

/// Settles a processed message: true when it may leave the queue (applied, or safely written
/// to the DLQ), false when SQS must deliver it again.
pub async fn settle(dlq: Option<&dyn DeadLetterQueue>, m: &Inbound, d: Disposition) -> bool {
    match d {
        Disposition::Done => true,
        Disposition::DeadLetter(reason) => dead_letter(dlq, m, &reason).await,
        Disposition::Retry(_) => false,
    }
}

/// Settles a processed batch; the ids of the messages SQS must deliver again (the Lambda's
/// partial batch failures).
pub async fn settle_batch(
    dlq: Option<&dyn DeadLetterQueue>,
    batch: &[Inbound],
    decisions: Vec<Disposition>,
) -> Vec<String> {
    let mut failed = Vec::new();
    for (m, d) in batch.iter().zip(decisions) {
        if !settle(dlq, m, d).await {
            failed.push(m.message_id.clone());
        }
    }
    failed
}

/// The replicator over AWS: this region's pool and state table.
pub type Live = Replicator<relay_aws::cognito::Pool, relay_aws::state::Table>;

/// Builds a replicator over this region's pool with the binary's one SDK configuration `sdk`
/// (SDK retries on for the state table and Secrets Manager; off for Cognito, whose calls the
/// in-process backoff retries: see the module doc). Fails (before any work) on an unreadable
/// replication key.
pub async fn build(sdk: &relay_aws::SdkConfig, cfg: Config, emf: bool) -> Result<Live, Error> {
    use ports::KeySource as _;
    let source = ports::SecretKeys {
        secrets: relay_aws::Secrets::new(sdk),
        secret_id: cfg.replication_key_secret_id.clone(),
    };
    let keys = source.read().await?;
    let dir = relay_aws::cognito::Pool::new(
        &relay_aws::without_retries(sdk),
        &cfg.user_pool_id,
        cfg.username_attributes.clone(),
    );
    let pacer = Pacer::new(&cfg.quotas);
    let key_source: Option<Box<dyn ports::KeySource>> = Some(Box::new(source));
    let store = relay_aws::state::Table::new(sdk, &cfg.state_table);
    Ok(Replicator {
        dir,
        store,
        keys: std::sync::RwLock::new(keys),
        key_source,
        last_reload: Mutex::new(None),
        pacer,
        cfg,
        stats: Stats::default(),
        emf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use replication::{Attr, Change, Event, MemoryStore, Step, UserState, EVENT_VERSION};

    /// A pool where the user "throttled" always throttles and "flaky" throttles `flaky` times.
    #[derive(Default)]
    struct Pool {
        users: Mutex<HashMap<String, UserState>>,
        flaky: Mutex<u32>,
        applied: Mutex<Vec<String>>,
    }
    impl UserDirectory for Pool {
        async fn get_user(&self, key: &str) -> Result<Option<UserState>, ApplyError> {
            if key == "throttled" {
                return Err(ApplyError::Throttled("TooManyRequestsException".into()));
            }
            if key == "flaky" {
                let mut f = self.flaky.lock().unwrap();
                if *f > 0 {
                    *f -= 1;
                    return Err(ApplyError::Throttled("TooManyRequestsException".into()));
                }
            }
            Ok(self.users.lock().unwrap().get(key).cloned())
        }
        async fn create_user(&self, key: &str, a: &[Attr]) -> Result<UserState, ApplyError> {
            let u = UserState {
                username: key.into(),
                status: replication::UserStatus::ForceChangePassword,
                enabled: true,
                attributes: a.to_vec(),
            };
            self.users.lock().unwrap().insert(key.into(), u.clone());
            Ok(u)
        }
        async fn run(&self, user: &str, step: &Step) -> Result<(), ApplyError> {
            self.applied
                .lock()
                .unwrap()
                .push(format!("{user}:{step:?}"));
            Ok(())
        }
    }

    const KEYS: [u8; 32] = [5; 32];

    fn replicator() -> Replicator<Pool, MemoryStore> {
        let env: HashMap<String, String> = [
            ("RELAY_REGION", "b"),
            ("RELAY_USER_POOL_ID", "b_1"),
            ("RELAY_PEER_USER_POOL_ID", "a_1"),
            ("RELAY_STATE_TABLE", "t"),
            ("RELAY_REPLICATION_KEY_SECRET_ID", "k"),
            ("RELAY_MAX_RETRIES", "0"),
            // The fixtures' events are timed near the epoch (t = 1, 2, ...).
            ("RELAY_MAX_EVENT_AGE_S", "9000000000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        let cfg = Config::from_env(&env).unwrap();
        Replicator {
            dir: Pool::default(),
            store: MemoryStore::default(),
            keys: std::sync::RwLock::new(Keyring::single("k1", KEYS)),
            key_source: None,
            last_reload: Mutex::new(None),
            pacer: Pacer::new(&HashMap::new()),
            cfg,
            stats: Stats::default(),
            emf: false,
        }
    }

    fn event(key: &str, change: Change, t: u64) -> Event {
        Event {
            v: EVENT_VERSION,
            id: format!("{key}-{}-{t}", change.name()),
            origin_region: "a".into(),
            origin_pool: "a_1".into(),
            target_pool: "b_1".into(),
            action: "X".into(),
            user_key: key.into(),
            origin_username: None,
            origin_sub: None,
            origin_time_ms: t,
            no_mfa: false,
            change,
        }
    }
    fn sealed(e: &Event, count: u32) -> Inbound {
        Inbound {
            message_id: format!("m-{}", e.id),
            body: e.seal(&Keyring::single("k1", KEYS)),
            receive_count: count,
            group_id: Some(e.group_id()),
        }
    }
    fn msg(key: &str, change: Change, count: u32) -> Inbound {
        sealed(&event(key, change, 1), count)
    }

    #[test]
    fn lag_is_a_summary_with_the_quantiles_relayctl_reads_and_counts_everything() {
        let s = Stats::default();
        for i in 0..(UPKEEP_EVERY + 100) {
            s.record_lag(i % 10);
        }
        let text = s.prometheus();
        assert!(
            text.contains(&format!(
                "relay_replication_lag_ms_count {}\n",
                UPKEEP_EVERY + 100
            )),
            "{text}"
        );
        let p99: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("relay_replication_lag_ms{quantile=\"0.99\"} "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0);
        assert!((8.5..=9.5).contains(&p99), "{text}");
    }

    #[test]
    fn a_users_events_apply_in_origin_time_order() {
        let batch = vec![
            sealed(&event("a", Change::Confirm, 20), 1),
            sealed(&event("b", Change::Delete, 5), 1),
            sealed(&event("a", Change::Delete, 10), 1),
        ];
        assert_eq!(apply_order(&batch), vec![2, 0, 1]);
    }

    #[tokio::test]
    async fn a_failure_holds_back_the_rest_of_its_group_only() {
        let r = replicator();
        let batch = vec![
            msg("throttled", Change::Delete, 1),
            sealed(&event("throttled", Change::GlobalSignOut, 2), 1),
            msg("bob", Change::Delete, 1),
        ];
        let d = r.process(&batch).await;
        assert!(matches!(d[0], Disposition::Retry(_)));
        assert!(matches!(&d[1], Disposition::Retry(r) if r.contains("waiting behind")));
        assert_eq!(d[2], Disposition::Done);
    }

    #[tokio::test]
    async fn forged_unsealed_and_foreign_events_are_refused_not_applied() {
        let r = replicator();
        let genuine = event("victim", Change::Delete, 1);
        // An unsealed delete (the v1 shape), an event sealed with another key, a tampered header.
        let unsealed = Inbound {
            message_id: "u".into(),
            body: serde_json::to_string(&genuine).unwrap(),
            receive_count: 1,
            group_id: None,
        };
        let other_key = Inbound {
            body: genuine.seal(&Keyring::single("k1", [6; 32])),
            ..sealed(&genuine, 1)
        };
        let mut tampered: serde_json::Value =
            serde_json::from_str(&genuine.seal(&Keyring::single("k1", KEYS))).unwrap();
        tampered["origin_time_ms"] = 1_000_000_000_000_000u64.into();
        let tampered = Inbound {
            body: tampered.to_string(),
            ..sealed(&genuine, 1)
        };
        let mut foreign = event("victim", Change::Delete, 1);
        foreign.origin_pool = "c_9".into();
        let mut elsewhere = event("victim", Change::Delete, 1);
        elsewhere.target_pool = "c_9".into();
        let d = r.process(&[unsealed]).await;
        assert!(
            matches!(&d[0], Disposition::DeadLetter(x) if x.starts_with("unauthenticated")),
            "{d:?}"
        );
        for m in [other_key, tampered] {
            assert!(
                matches!(&r.process(&[m]).await[0], Disposition::DeadLetter(x) if x.starts_with("unauthenticated"))
            );
        }
        for e in [foreign, elsewhere] {
            assert!(
                matches!(&r.process(&[sealed(&e, 1)]).await[0], Disposition::DeadLetter(x) if x.starts_with("wrong-pool"))
            );
        }
        assert!(r.dir.applied.lock().unwrap().is_empty());
        let text = r.stats.prometheus();
        assert!(
            text.contains("outcome=\"unauthenticated\"} 3")
                && text.contains("outcome=\"wrong_pool\"} 2"),
            "{text}"
        );
        assert!(
            !text.contains("relay_replication_lag_ms"),
            "a forged origin time never reaches the lag metric: {text}"
        );
    }

    #[tokio::test]
    async fn an_unknown_key_id_dead_letters_at_once_as_unauthenticated() {
        let r = replicator();
        let e = event("carol", Change::Delete, 1);
        let m = Inbound {
            body: e.seal(&Keyring::single("k9", KEYS)),
            ..sealed(&e, 1)
        };
        assert!(
            matches!(&r.process(std::slice::from_ref(&m)).await[0], Disposition::DeadLetter(x) if x.starts_with("unauthenticated") && x.contains("k9")),
            "the keyring was re-read and still lacks k9: not a key of this deployment"
        );
        assert!(r.dir.applied.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_event_older_than_the_bound_is_refused_not_applied() {
        let mut r = replicator();
        r.cfg.max_event_age = std::time::Duration::from_secs(14 * 86_400);
        let mut e = event("dave", Change::Delete, 1);
        e.origin_time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            - 15 * 86_400_000;
        let m = sealed(&e, 1);
        assert!(
            matches!(&r.process(&[m]).await[0], Disposition::DeadLetter(x) if x.starts_with("too-old")),
        );
        assert!(r.dir.applied.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_stale_event_is_skipped_and_counted() {
        let r = replicator();
        r.dir.users.lock().unwrap().insert(
            "dave".into(),
            UserState {
                username: "dave".into(),
                status: replication::UserStatus::Confirmed,
                enabled: true,
                attributes: vec![],
            },
        );
        let new = event(
            "dave",
            Change::UpdateAttributes {
                attributes: vec![Attr {
                    name: "name".into(),
                    value: "new".into(),
                }],
            },
            20,
        );
        let old = event(
            "dave",
            Change::UpdateAttributes {
                attributes: vec![Attr {
                    name: "name".into(),
                    value: "old".into(),
                }],
            },
            10,
        );
        assert_eq!(r.process(&[sealed(&new, 1)]).await, vec![Disposition::Done]);
        // Redelivered later (or redriven from the DLQ with the same event): skipped.
        assert_eq!(r.process(&[sealed(&old, 1)]).await, vec![Disposition::Done]);
        let applied = r.dir.applied.lock().unwrap().clone();
        assert_eq!(applied.len(), 1, "{applied:?}");
        assert!(applied[0].contains("new"));
        assert!(r.stats.prometheus().contains("outcome=\"stale\"} 1"));
    }

    #[tokio::test]
    async fn a_permanent_head_does_not_take_the_users_later_events_with_it() {
        let r = replicator();
        r.dir.users.lock().unwrap().insert(
            "erin".into(),
            UserState {
                username: "erin".into(),
                status: replication::UserStatus::Confirmed,
                enabled: true,
                attributes: vec![],
            },
        );
        // A password that does not open (permanent), then a later attribute change.
        let bad = event(
            "erin",
            Change::SetPassword {
                sealed_password: "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
            },
            1,
        );
        let later = event(
            "erin",
            Change::UpdateAttributes {
                attributes: vec![Attr {
                    name: "name".into(),
                    value: "E".into(),
                }],
            },
            2,
        );
        let d = r.process(&[sealed(&bad, 1), sealed(&later, 1)]).await;
        assert!(matches!(&d[0], Disposition::DeadLetter(x) if x.contains("cannot open")));
        assert_eq!(d[1], Disposition::Done);
    }

    #[tokio::test]
    async fn only_the_event_that_failed_its_own_attempts_dead_letters() {
        let r = replicator();
        // The head fails on every delivery; the later event waits behind it. Deliveries spent
        // waiting (even past the head's own limit) never count against the later event.
        let head = event("throttled", Change::Delete, 1);
        let later = event("throttled", Change::GlobalSignOut, 2);
        for delivery in 1..=4 {
            let d = r
                .process(&[sealed(&head, delivery), sealed(&later, delivery)])
                .await;
            assert!(
                matches!(&d[0], Disposition::Retry(_)),
                "delivery {delivery}: {d:?}"
            );
            assert!(matches!(&d[1], Disposition::Retry(x) if x.contains("waiting behind")));
        }
        let d = r.process(&[sealed(&head, 5), sealed(&later, 5)]).await;
        assert!(
            matches!(&d[0], Disposition::DeadLetter(x) if x.contains("gave up after 5 attempts")),
            "{d:?}"
        );
        // With the head gone, the later event gets its own tries: a retryable failure of its
        // sixth delivery is only its first attempt.
        assert!(
            matches!(&d[1], Disposition::Retry(x) if !x.contains("waiting")),
            "{d:?}"
        );
        // A user whose event recovers within its attempts is applied, never dead-lettered.
        *r.dir.flaky.lock().unwrap() = 3;
        let flaky = event("flaky", Change::Delete, 1);
        let outcomes: Vec<Disposition> = {
            let mut v = vec![];
            for delivery in 1..=4 {
                v.push(r.process(&[sealed(&flaky, delivery)]).await.remove(0));
            }
            v
        };
        assert_eq!(outcomes[3], Disposition::Done, "{outcomes:?}");
    }

    #[tokio::test]
    async fn throttled_attempts_and_in_process_retries_are_counted_per_action() {
        let mut r = replicator();
        r.cfg.apply.max_retries = 2;
        r.cfg.apply.min_backoff = Duration::from_millis(1);
        r.cfg.apply.max_backoff = Duration::from_millis(2);
        // Throttled once, then through: one retry, one throttled attempt, applied.
        *r.dir.flaky.lock().unwrap() = 1;
        let d = r.process(&[msg("flaky", Change::Delete, 1)]).await;
        assert_eq!(d[0], Disposition::Done);
        // Throttled on every attempt: 3 attempts (2 retries), all throttled, retried later.
        let d = r.process(&[msg("throttled", Change::Delete, 1)]).await;
        assert!(matches!(&d[0], Disposition::Retry(x) if x.contains("TooManyRequests")));
        // Not throttled at all: nothing counted.
        r.process(&[msg("bob", Change::Delete, 1)]).await;
        let text = r.stats.prometheus();
        assert!(
            text.contains("relay_replication_apply_retries_total{action=\"X\"} 3\n")
                && text.contains("relay_replication_cognito_throttled_total{action=\"X\"} 4\n"),
            "{text}"
        );
    }

    #[test]
    fn the_emf_line_has_the_names_namespace_and_dimensions_the_cdk_alarms_read() {
        let tally = Tally::default();
        tally.retries.store(2, std::sync::atomic::Ordering::Relaxed);
        tally
            .throttled
            .store(3, std::sync::atomic::Ordering::Relaxed);
        let line: serde_json::Value =
            serde_json::from_str(&emf_event("SignUp", "retryable", 7, false, &tally)).unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "CognitoRelay");
        assert_eq!(directive["Dimensions"], serde_json::json!([["Action"], []]));
        let declared: Vec<(&str, &str)> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
            .collect();
        assert_eq!(
            declared,
            [
                ("ReplicationLagMs", "Milliseconds"),
                ("ReplicationApplied", "Count"),
                ("ReplicationFailed", "Count"),
                ("CognitoThrottled", "Count"),
                ("ApplyRetries", "Count"),
            ]
        );
        assert_eq!(
            (
                &line["Action"],
                &line["CognitoThrottled"],
                &line["ApplyRetries"],
                &line["ReplicationFailed"]
            ),
            (
                &serde_json::json!("SignUp"),
                &serde_json::json!(3),
                &serde_json::json!(2),
                &serde_json::json!(1)
            )
        );
    }

    /// A DLQ that records what it got, or refuses every write.
    #[derive(Default)]
    struct Dlq {
        sent: Mutex<Vec<(String, String, String, String)>>,
        down: bool,
    }
    impl DeadLetterQueue for Dlq {
        fn send<'a>(
            &'a self,
            body: &'a str,
            group_id: &'a str,
            dedup_id: &'a str,
            reason: &'a str,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send + 'a>>
        {
            let r = if self.down {
                Err(Error::Aws(relay_aws::Error::Call {
                    failure: relay_aws::Failure::Transient,
                    text: "unreachable".into(),
                }))
            } else {
                self.sent.lock().unwrap().push((
                    body.into(),
                    group_id.into(),
                    dedup_id.into(),
                    reason.into(),
                ));
                Ok(())
            };
            Box::pin(async move { r })
        }
    }

    #[tokio::test]
    async fn a_message_leaves_the_queue_only_when_applied_or_safely_dead_lettered() {
        let m = |id: &str, group: Option<&str>| Inbound {
            message_id: id.into(),
            body: format!("body-{id}"),
            receive_count: 1,
            group_id: group.map(str::to_owned),
        };
        let batch = [
            m("done", Some("g1")),
            m("dead", Some("g2")),
            m("retry", Some("g3")),
            m("poison", None),
        ];
        let decisions = || {
            vec![
                Disposition::Done,
                Disposition::DeadLetter("permanent: bad event".into()),
                Disposition::Retry("throttled".into()),
                Disposition::DeadLetter("event is not JSON".into()),
            ]
        };
        let dlq = Dlq::default();
        let failed = settle_batch(Some(&dlq), &batch, decisions()).await;
        assert_eq!(failed, ["retry"], "only the retry stays for redelivery");
        assert_eq!(
            dlq.sent.lock().unwrap().clone(),
            [
                (
                    "body-dead".to_owned(),
                    "g2".to_owned(),
                    "dead".to_owned(),
                    "permanent: bad event".to_owned()
                ),
                (
                    "body-poison".to_owned(),
                    "poison".to_owned(),
                    "poison".to_owned(),
                    "event is not JSON".to_owned()
                ),
            ],
            "each with its reason, its group kept (or the poison group)"
        );
        // A DLQ that cannot be written, or none at all: nothing dead-lettered leaves the queue.
        let down = Dlq {
            down: true,
            ..Default::default()
        };
        for dlq in [Some(&down as &dyn DeadLetterQueue), None] {
            let failed = settle_batch(dlq, &batch, decisions()).await;
            assert_eq!(failed, ["dead", "retry", "poison"]);
        }
    }

    #[tokio::test]
    async fn garbage_goes_to_the_dlq_with_a_reason() {
        let r = replicator();
        let d = r
            .process(&[Inbound {
                message_id: "m".into(),
                body: "not json".into(),
                receive_count: 1,
                group_id: None,
            }])
            .await;
        assert!(matches!(&d[0], Disposition::DeadLetter(r) if r.contains("not JSON")));
        assert!(r.stats.prometheus().contains("outcome=\"permanent\""));
    }

    impl ports::PoolProbe for Pool {
        async fn ping(&self) -> Result<(), ports::PortError> {
            Ok(())
        }
    }

    /// An inbound queue in memory: what is queued, and the receipts deleted.
    #[derive(Default)]
    struct Queue {
        queued: Mutex<Vec<ports::Received>>,
        deleted: Mutex<Vec<String>>,
    }
    impl ports::InboundQueue for Queue {
        async fn receive(&self) -> Result<Vec<ports::Received>, ports::PortError> {
            let batch: Vec<_> = self.queued.lock().unwrap().drain(..).collect();
            if batch.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(batch)
        }
        async fn delete(&self, receipt: &str) -> Result<(), ports::PortError> {
            self.deleted.lock().unwrap().push(receipt.to_owned());
            Ok(())
        }
    }
    fn received(m: Inbound) -> ports::Received {
        ports::Received {
            receipt: format!("r-{}", m.message_id),
            message: m,
        }
    }
    fn garbage(id: &str) -> Inbound {
        Inbound {
            message_id: id.into(),
            body: "not json".into(),
            receive_count: 1,
            group_id: None,
        }
    }

    #[tokio::test]
    async fn the_worker_leaves_a_failing_event_for_redelivery_then_dead_letters_it_with_the_reason()
    {
        let r = replicator();
        let (queue, dlq) = (Queue::default(), Dlq::default());
        let live = relay_aws::liveness::Liveness::default();
        let head = event("throttled", Change::Delete, 1);
        for delivery in 1..=4 {
            let batch = [received(sealed(&head, delivery))];
            let report = worker::run_batch(&r, &queue, Some(&dlq), &live, &batch).await;
            assert_eq!(
                report,
                worker::BatchReport {
                    settled: 0,
                    left: 1,
                    stalled: true
                },
                "delivery {delivery}"
            );
        }
        assert!(queue.deleted.lock().unwrap().is_empty() && dlq.sent.lock().unwrap().is_empty());
        let batch = [received(sealed(&head, 5))];
        let report = worker::run_batch(&r, &queue, Some(&dlq), &live, &batch).await;
        assert_eq!((report.settled, report.left), (1, 0));
        let sent = dlq.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert!(
            sent[0].3.starts_with("gave up after 5 attempts: ")
                && sent[0].3.contains("TooManyRequests"),
            "{sent:?}"
        );
        assert_eq!(
            sent[0].1,
            head.group_id(),
            "dead-lettered in its user's group"
        );
        assert_eq!(*queue.deleted.lock().unwrap(), [format!("r-m-{}", head.id)]);
    }

    #[tokio::test]
    async fn the_worker_dead_letters_an_unreadable_message_and_keeps_it_without_a_dlq() {
        let r = replicator();
        let live = relay_aws::liveness::Liveness::default();
        let (queue, dlq) = (Queue::default(), Dlq::default());
        let batch = [
            received(garbage("g")),
            received(msg("bob", Change::Delete, 1)),
        ];
        let report = worker::run_batch(&r, &queue, Some(&dlq), &live, &batch).await;
        assert_eq!((report.settled, report.left, report.stalled), (2, 0, false));
        let sent = dlq.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (sent[0].0.as_str(), sent[0].1.as_str()),
            ("not json", "poison")
        );
        assert!(sent[0].3.contains("not JSON"), "{sent:?}");
        // No DLQ, or one that cannot be written: the message stays on the queue, never dropped.
        let down = Dlq {
            down: true,
            ..Default::default()
        };
        for dlq in [None, Some(&down as &dyn DeadLetterQueue)] {
            let queue = Queue::default();
            let report =
                worker::run_batch(&r, &queue, dlq, &live, &[received(garbage("g2"))]).await;
            assert_eq!((report.settled, report.left), (0, 1));
            assert!(queue.deleted.lock().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn the_worker_loop_settles_what_it_receives_and_stops_when_asked() {
        let r = replicator();
        let live = relay_aws::liveness::Liveness::default();
        let (queue, dlq) = (Queue::default(), Dlq::default());
        queue.queued.lock().unwrap().extend([
            received(msg("bob", Change::Delete, 1)),
            received(garbage("g")),
        ]);
        let (tx, rx) = tokio::sync::watch::channel(false);
        let run = worker::run(&r, &queue, Some(&dlq), &live, rx);
        let stop = async {
            while queue.deleted.lock().unwrap().len() < 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tx.send(true).unwrap();
        };
        tokio::time::timeout(Duration::from_secs(10), futures_join(run, stop))
            .await
            .expect("the worker stops once asked");
        assert_eq!(
            dlq.sent.lock().unwrap().len(),
            1,
            "the unreadable one, in the DLQ"
        );
        let text = r.stats.prometheus();
        assert!(
            text.contains("action=\"X\"") && !text.contains("retryable"),
            "bob's event settled without a retry: {text}"
        );
    }

    async fn futures_join(
        a: impl std::future::Future<Output = ()>,
        b: impl std::future::Future<Output = ()>,
    ) {
        tokio::join!(a, b);
    }

    #[tokio::test]
    async fn the_lambda_reports_exactly_the_records_to_deliver_again() {
        let r = replicator();
        let dlq = Dlq::default();
        let records = [
            msg("bob", Change::Delete, 1),
            msg("throttled", Change::Delete, 1),
            garbage("g"),
            sealed(&event("throttled", Change::GlobalSignOut, 2), 1),
        ];
        let resp = lambda::apply(&r, Some(&dlq), &records).await;
        let failed: Vec<&str> = resp
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                records[1].message_id.as_str(),
                records[3].message_id.as_str()
            ]
        );
        assert_eq!(
            dlq.sent.lock().unwrap().len(),
            1,
            "the unreadable one is set aside"
        );
        let resp = lambda::not_ready(&records, Duration::from_secs(1));
        assert_eq!(
            resp.batch_item_failures.len(),
            4,
            "no key: everything comes back"
        );
    }

    /// A peer queue and a DLQ in memory, for the forwarder.
    #[derive(Default)]
    struct Peer {
        got: Mutex<Vec<String>>,
        dlq: Option<Mutex<Vec<(String, String)>>>,
    }
    impl relay_aws::forward::Ports for Peer {
        async fn send(
            &self,
            event: &Header,
            _: &str,
        ) -> Result<(), relay_aws::forward::ForwardError> {
            self.got.lock().unwrap().push(event.id.clone());
            Ok(())
        }
        async fn set_aside(
            &self,
            record: &relay_aws::forward::Record,
            reason: &str,
        ) -> Result<bool, relay_aws::forward::ForwardError> {
            Ok(match &self.dlq {
                Some(d) => {
                    d.lock()
                        .unwrap()
                        .push((record.message_id.clone(), reason.to_owned()));
                    true
                }
                None => false,
            })
        }
    }

    #[tokio::test]
    async fn the_lambda_forwards_fallback_records_and_never_drops_an_unreadable_one() {
        let live = relay_aws::liveness::Liveness::default();
        let records = [msg("bob", Change::Delete, 1), garbage("g")];
        let peer = Peer {
            dlq: Some(Mutex::new(vec![])),
            ..Default::default()
        };
        let out = lambda::forward(&peer, &live, &records).await;
        assert_eq!(out.forwarded, 1);
        assert!(out.response.batch_item_failures.is_empty());
        let set_aside = peer.dlq.unwrap().into_inner().unwrap();
        assert_eq!(set_aside.len(), 1);
        assert!(
            set_aside[0].0 == "g" && set_aside[0].1.contains("unreadable"),
            "{set_aside:?}"
        );
        // Without a DLQ it is reported as a failure: SQS keeps it (its redrive policy decides).
        let peer = Peer::default();
        let out = lambda::forward(&peer, &live, &records).await;
        let failed: Vec<&str> = out
            .response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["g"]);
    }

    #[test]
    fn only_records_from_the_fallback_queue_are_forwarded() {
        let mut cfg = replicator().cfg;
        let event = |arn: &str| {
            let mut m = aws_lambda_events::event::sqs::SqsMessage::default();
            m.event_source_arn = Some(arn.into());
            let mut e = aws_lambda_events::event::sqs::SqsEvent::default();
            e.records = vec![m];
            e
        };
        let fallback = event("arn:aws:sqs:b:1:relay-fallback.fifo");
        assert_eq!(
            lambda::route(&cfg, &fallback),
            lambda::Route::Apply,
            "not configured"
        );
        cfg.forward = Some(Forward {
            fallback_queue_url: "http://q/1/relay-fallback.fifo".into(),
            fallback_queue_name: "relay-fallback.fifo".into(),
            peer_region: "a".into(),
            peer_queue_url: "http://q/1/inbound.fifo".into(),
            peer_aws_endpoint: None,
        });
        assert_eq!(lambda::route(&cfg, &fallback), lambda::Route::Forward);
        assert_eq!(
            lambda::route(&cfg, &event("arn:aws:sqs:b:1:inbound.fifo")),
            lambda::Route::Apply
        );
    }
}
