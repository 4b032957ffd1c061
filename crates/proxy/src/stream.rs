//! The event stream for downstream systems: one event per request outcome, published to an
//! Amazon EventBridge bus (schema: `docs/event-stream.md`). Publishing never slows or fails a
//! request: events go into a bounded buffer (full → dropped and counted) that a background
//! worker drains in batches of up to 10 (PutEvents' limit) with a bounded number of calls in
//! flight and a timeout per call (failed → dropped and counted). Under Lambda the request waits
//! at most `flush_wait` for its own events to be published before it answers, because a frozen
//! instance publishes nothing (see `docs/event-stream.md`, "Lambda").

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::ports::BoxFut;

pub const SCHEMA_VERSION: u32 = 1;
/// PutEvents takes at most 10 entries per call.
const MAX_BATCH: usize = 10;

/// How the user is named in events (`RELAY_EVENTS_USER`: `hash`, `plain` or `none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UserField {
    /// The username as the request names it.
    Plain,
    /// A keyed hash of it (HMAC-SHA256 under a subkey of the replication key).
    Hash,
    /// Left out.
    #[value(name = "none")]
    Omit,
}

/// Event-stream settings from the environment.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub bus: String,
    pub source: String,
    pub endpoint: Option<String>,
    pub user: UserField,
    pub buffer: usize,
    pub concurrency: usize,
    pub call_timeout: Duration,
    /// Under Lambda: how long a request waits for its events before answering (0 = never).
    pub flush_wait: Duration,
}

impl StreamConfig {
    /// `RELAY_EVENTS_BUS` (name or ARN; unset = no stream) and its companions, all optional.
    pub fn from_args(
        a: &crate::config::EventArgs,
        lambda: bool,
    ) -> Result<Option<Self>, crate::Error> {
        let Some(bus) = a.bus.clone() else {
            return Ok(None);
        };
        let bad = |text: &str| Err(crate::Error::Config(text.to_owned()));
        if a.buffer == 0 || a.concurrency == 0 {
            return bad("RELAY_EVENTS_BUFFER and RELAY_EVENTS_CONCURRENCY must be at least 1");
        }
        if a.timeout_ms == 0 {
            return bad("RELAY_EVENTS_TIMEOUT_MS must be at least 1");
        }
        Ok(Some(Self {
            bus,
            source: a.source.clone(),
            endpoint: a.endpoint.clone(),
            user: a.user,
            buffer: a.buffer,
            concurrency: a.concurrency,
            call_timeout: Duration::from_millis(a.timeout_ms),
            flush_wait: Duration::from_millis(a.flush_ms.unwrap_or(if lambda { 200 } else { 0 })),
        }))
    }
}

/// What happened to a request, as downstream systems see it (schema v1, `docs/event-stream.md`).
/// Holds no password, token, code, secret or secret hash: only these fields exist.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RequestEvent {
    pub v: u32,
    pub id: String,
    pub time_ms: u64,
    pub region: String,
    pub pool: String,
    pub action: String,
    pub status: u16,
    /// `success` (2xx from Cognito), `cognito_error` (Cognito refused), `relay_refused` (the
    /// proxy answered itself: admission, rate limit, policy), `relay_error` (upstream unreachable).
    pub outcome: &'static str,
    pub error_type: Option<String>,
    pub latency_ms: f64,
    /// `peer`, `fallback`, `lost`; null when nothing was replicated.
    pub replication: Option<&'static str>,
    pub caller_ip: Option<String>,
    /// The username the request names, or its keyed hash (`user_hashed`), or null.
    pub user: Option<String>,
    pub user_hashed: bool,
    /// The sign-up policy rule that refused (or in dry-run would have refused) the request.
    pub policy_rule: Option<&'static str>,
    pub policy_dry_run: bool,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Why publishing a batch failed (for logs; never carries an event).
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the bus call failed: {0}")]
    Call(String),
    #[error("the bus call timed out")]
    Timeout,
}

/// A bus that takes batches of event details (JSON). Returns how many entries it refused.
pub trait Bus: Send + Sync {
    fn put(&self, details: Vec<String>) -> BoxFut<'_, Result<usize, BusError>>;
}

/// Amazon EventBridge.
pub struct EventBridge {
    pub client: aws_sdk_eventbridge::Client,
    pub bus: String,
    pub source: String,
}

impl Bus for EventBridge {
    fn put(&self, details: Vec<String>) -> BoxFut<'_, Result<usize, BusError>> {
        Box::pin(async move {
            let entries = details
                .into_iter()
                .map(|d| {
                    aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(&self.source)
                        .detail_type("Cognito request")
                        .detail(d)
                        .build()
                })
                .collect::<Vec<_>>();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| BusError::Call(describe(&e)))?;
            Ok(out.failed_entry_count.max(0) as usize)
        })
    }
}

fn describe<E: aws_sdk_eventbridge::error::ProvideErrorMetadata, R>(
    e: &aws_sdk_eventbridge::error::SdkError<E, R>,
) -> String {
    use aws_sdk_eventbridge::error::SdkError;
    match e {
        SdkError::ServiceError(se) => se.err().code().unwrap_or("ServiceError").to_owned(),
        SdkError::TimeoutError(_) => "timeout".into(),
        SdkError::DispatchFailure(_) => "connection failure".into(),
        _ => "SDK error".into(),
    }
}

/// Publishing counters.
#[derive(Default)]
pub struct StreamStats {
    pub published: AtomicU64,
    pub dropped_full: AtomicU64,
    pub dropped_failed: AtomicU64,
    /// Drops already reported in an EMF line (Lambda).
    emf_reported: AtomicU64,
    last_warn_s: AtomicU64,
}

impl StreamStats {
    pub fn dropped(&self) -> u64 {
        self.dropped_full.load(Relaxed) + self.dropped_failed.load(Relaxed)
    }
    pub fn prometheus(&self) -> String {
        format!(
            "# TYPE relay_events_published_total counter\nrelay_events_published_total {}\n# TYPE relay_events_dropped_total counter\nrelay_events_dropped_total{{reason=\"buffer_full\"}} {}\nrelay_events_dropped_total{{reason=\"publish_failed\"}} {}\n",
            self.published.load(Relaxed),
            self.dropped_full.load(Relaxed),
            self.dropped_failed.load(Relaxed)
        )
    }
    /// One warning per 10 s at most, so an unreachable bus does not flood the logs.
    fn warn(&self, what: &str, n: usize) {
        let now = now_ms() / 1000;
        let last = self.last_warn_s.load(Relaxed);
        if now >= last + 10
            && self
                .last_warn_s
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            tracing::warn!(
                dropped = n,
                dropped_total = self.dropped(),
                "event stream: {what}; events dropped"
            );
        }
    }
}

/// The publisher: `publish` never waits; a worker drains the buffer.
pub struct Publisher {
    tx: mpsc::Sender<(String, Option<oneshot::Sender<()>>)>,
    pub stats: Arc<StreamStats>,
    flush_wait: Duration,
    pub user: UserField,
}

impl Publisher {
    /// Starts the worker on the current tokio runtime.
    pub fn start(bus: Arc<dyn Bus>, cfg: &StreamConfig) -> Arc<Self> {
        let (tx, mut rx) = mpsc::channel::<(String, Option<oneshot::Sender<()>>)>(cfg.buffer);
        let stats = Arc::new(StreamStats::default());
        let slots = Arc::new(Semaphore::new(cfg.concurrency));
        let (w_stats, timeout) = (stats.clone(), cfg.call_timeout);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let (bus, stats) = (bus.clone(), w_stats.clone());
                tokio::spawn(async move {
                    let n = batch.len();
                    let (batch, acks): (Vec<String>, Vec<_>) = batch.into_iter().unzip();
                    match tokio::time::timeout(timeout, bus.put(batch))
                        .await
                        .unwrap_or(Err(BusError::Timeout))
                    {
                        Ok(failed) => {
                            stats
                                .published
                                .fetch_add((n - failed.min(n)) as u64, Relaxed);
                            if failed > 0 {
                                stats.dropped_failed.fetch_add(failed as u64, Relaxed);
                                stats.warn("the bus refused entries", failed);
                            }
                        }
                        Err(e) => {
                            stats.dropped_failed.fetch_add(n as u64, Relaxed);
                            stats.warn(&e.to_string(), n);
                        }
                    }
                    drop(permit);
                    for ack in acks.into_iter().flatten() {
                        let _ = ack.send(());
                    }
                });
            }
        });
        Arc::new(Self {
            tx,
            stats,
            flush_wait: cfg.flush_wait,
            user: cfg.user,
        })
    }

    /// Queues an event; a full buffer drops it (counted). Never waits. With a flush wait
    /// configured, returns what `flush` waits on.
    pub fn publish(&self, event: &RequestEvent) -> Option<oneshot::Receiver<()>> {
        let detail = serde_json::to_string(event).ok()?;
        let (ack, done) = if self.flush_wait.is_zero() {
            (None, None)
        } else {
            let (a, d) = oneshot::channel();
            (Some(a), Some(d))
        };
        if self.tx.try_send((detail, ack)).is_err() {
            self.stats.dropped_full.fetch_add(1, Relaxed);
            self.stats.warn("buffer full", 1);
            return None;
        }
        done
    }

    /// Waits (at most `flush_wait`) until the event `publish` returned `done` for has been
    /// published or dropped.
    pub async fn flush(&self, done: Option<oneshot::Receiver<()>>) {
        if let Some(done) = done {
            let _ = tokio::time::timeout(self.flush_wait, done).await;
        }
    }

    /// Lambda: an EMF line with the drops since the last line, when there are any.
    pub fn emf_drops(&self) -> Option<String> {
        let total = self.stats.dropped();
        let before = self.stats.emf_reported.swap(total, Relaxed);
        let new = total.saturating_sub(before);
        (new > 0).then(|| serde_json::json!({"EventsDropped": new, "_aws": {"Timestamp": now_ms(), "CloudWatchMetrics": [{"Namespace": "CognitoRelay", "Dimensions": [[]], "Metrics": [{"Name": "EventsDropped", "Unit": "Count"}]}]}}).to_string())
    }
}

/// Builds the event of a finished request and queues it; under Lambda, waits (bounded) for it
/// to be published before the response is returned.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn publish_outcome(
    st: &crate::AppState,
    events: &Publisher,
    action: &str,
    status: u16,
    error_type: Option<String>,
    latency_ms: f64,
    delivery: Option<crate::ports::Delivery>,
    notes: crate::app::Notes,
) {
    use crate::ports::Delivery;
    let (user, user_hashed) = match (events.user, notes.user) {
        (UserField::Plain, Some(u)) => (Some(u), false),
        (UserField::Hash, Some(u)) => match st.secrets.get().await {
            Ok(s) => (Some(s.keys.keyed_hash("event-stream-user", &u)), true),
            Err(_) => (None, false),
        },
        _ => (None, false),
    };
    let outcome = match (notes.relay_answered, status) {
        (false, 200..=299) => "success",
        (false, _) => "cognito_error",
        (true, 500..) => "relay_error",
        (true, _) => "relay_refused",
    };
    let event = RequestEvent {
        v: SCHEMA_VERSION,
        id: uuid::Uuid::new_v4().to_string(),
        time_ms: now_ms(),
        region: st.cfg.region.clone(),
        pool: st.cfg.user_pool_id.clone(),
        action: action.to_owned(),
        status,
        outcome,
        error_type,
        latency_ms: (latency_ms * 1000.0).round() / 1000.0,
        replication: delivery.map(|d| match d {
            Delivery::Peer => "peer",
            Delivery::Fallback => "fallback",
            Delivery::Lost => "lost",
        }),
        caller_ip: notes.ip,
        user,
        user_hashed,
        policy_rule: notes.policy_rule,
        policy_dry_run: notes.policy_dry_run,
    };
    let done = events.publish(&event);
    events.flush(done).await;
    if st.emf {
        if let Some(line) = events.emf_drops() {
            println!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Recorder(Mutex<Vec<String>>, Option<Duration>);
    impl Bus for Recorder {
        fn put(&self, details: Vec<String>) -> BoxFut<'_, Result<usize, BusError>> {
            Box::pin(async move {
                if let Some(d) = self.1 {
                    tokio::time::sleep(d).await;
                }
                assert!(details.len() <= MAX_BATCH);
                self.0.lock().unwrap().extend(details);
                Ok(0)
            })
        }
    }
    struct Down;
    impl Bus for Down {
        fn put(&self, _: Vec<String>) -> BoxFut<'_, Result<usize, BusError>> {
            Box::pin(async { Err(BusError::Call("connection failure".into())) })
        }
    }

    fn cfg(buffer: usize, flush_ms: u64) -> StreamConfig {
        StreamConfig {
            bus: "b".into(),
            source: "s".into(),
            endpoint: None,
            user: UserField::Hash,
            buffer,
            concurrency: 2,
            call_timeout: Duration::from_millis(500),
            flush_wait: Duration::from_millis(flush_ms),
        }
    }

    fn event(i: u16) -> RequestEvent {
        RequestEvent {
            v: 1,
            id: format!("e{i}"),
            time_ms: 1,
            region: "eu-west-1".into(),
            pool: "p".into(),
            action: "SignUp".into(),
            status: 200,
            outcome: "success",
            error_type: None,
            latency_ms: 1.0,
            replication: Some("peer"),
            caller_ip: None,
            user: None,
            user_hashed: false,
            policy_rule: None,
            policy_dry_run: false,
        }
    }

    #[tokio::test]
    async fn publishes_in_batches_and_flush_waits_for_them() {
        let bus = Arc::new(Recorder(Mutex::new(vec![]), None));
        let p = Publisher::start(bus.clone(), &cfg(100, 5_000));
        let done: Vec<_> = (0..25).map(|i| p.publish(&event(i))).collect();
        for d in done {
            p.flush(d).await;
        }
        assert_eq!(bus.0.lock().unwrap().len(), 25);
        assert_eq!(p.stats.published.load(Relaxed), 25);
        assert!(bus.0.lock().unwrap()[0].contains(r#""action":"SignUp""#));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_buffer_or_a_dead_bus_drops_and_counts() {
        let slow = Arc::new(Recorder(Mutex::new(vec![]), Some(Duration::from_secs(60))));
        let p = Publisher::start(slow, &cfg(5, 0));
        for i in 0..200 {
            p.publish(&event(i));
        }
        assert!(
            p.stats.dropped_full.load(Relaxed) > 0,
            "publish never waits for a slow bus"
        );

        let p = Publisher::start(Arc::new(Down), &cfg(100, 1_000));
        let done = p.publish(&event(1));
        p.flush(done).await;
        assert_eq!(p.stats.dropped_failed.load(Relaxed), 1);
        assert!(p.emf_drops().unwrap().contains(r#""EventsDropped":1"#));
        assert_eq!(p.emf_drops(), None, "each drop is reported once");
        assert!(p
            .stats
            .prometheus()
            .contains(r#"relay_events_dropped_total{reason="publish_failed"} 1"#));
    }
}
