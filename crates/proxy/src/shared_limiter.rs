//! Limits that hold across instances: counters in a DynamoDB table shared by every proxy
//! instance of a region (`RELAY_LIMITS_TABLE`), in front of which each process keeps its own
//! bounded [`LocalLimiter`]s.
//!
//! Per request and limited key: the local limiter first (a process already over the limit
//! refuses with no round trip); then, unless this process already saw the key over the limit
//! in this window (cached: an attack costs no round trips once detected), one `UpdateItem`
//! (`ADD`) returns the region-wide count. Sign-ins also read the username's failure counter
//! (one `GetItem`, concurrent with the `UpdateItem`). A failed sign-in adds to it.
//!
//! When the table cannot be reached the choice is [`OnStoreError`]: by default the request is
//! allowed (the per-process limits still apply, Cognito's own lockout and WAF's rate rules
//! still stand), because refusing every sign-in of a region while DynamoDB is impaired would
//! turn a limiter outage into an authentication outage. Every such request is counted in
//! `relay_limiter_store_errors_total` (EMF `LimiterStoreErrors`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::limiter::{LocalLimiter, MINUTE};
use crate::ports::{BoxFut, RateLimiter};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the limits store cannot be reached: {0}")]
    Unavailable(String),
}

/// Region-wide counters (DynamoDB in production, a map in tests).
pub trait CounterStore: Send + Sync {
    /// Adds `n` to counter `pk` (expiring at `expires_at`, Unix seconds); the new total.
    fn add<'a>(
        &'a self,
        pk: &'a str,
        n: u32,
        expires_at: u64,
    ) -> BoxFut<'a, Result<u64, StoreError>>;
    /// Counter `pk`, 0 when absent.
    fn get<'a>(&'a self, pk: &'a str) -> BoxFut<'a, Result<u64, StoreError>>;
}

/// What a request gets when the counters cannot be reached (`RELAY_LIMITS_ON_STORE_ERROR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnStoreError {
    /// Allowed (per-process limits only). The default.
    Allow,
    /// Refused with `TooManyRequestsException`.
    Refuse,
}

/// Per-process limits: rate windows of a minute and a failure window.
pub struct ProcessLimiter {
    pub rate: LocalLimiter,
    pub failures: LocalLimiter,
}

impl ProcessLimiter {
    pub fn new(max_keys: usize, failure_window: Duration) -> Self {
        Self {
            rate: LocalLimiter::with_max_keys(max_keys),
            failures: LocalLimiter::with_window(max_keys, failure_window),
        }
    }
}

impl RateLimiter for ProcessLimiter {
    fn allow<'a>(&'a self, key: &'a str, per_minute: u32) -> BoxFut<'a, bool> {
        let ok = self.rate.check(key, per_minute);
        Box::pin(async move { ok })
    }
    fn locked<'a>(&'a self, key: &'a str, max: u32) -> BoxFut<'a, bool> {
        let locked = max > 0 && self.failures.peek(key) >= max;
        Box::pin(async move { locked })
    }
    fn fail<'a>(&'a self, key: &'a str) -> BoxFut<'a, ()> {
        self.failures.check(key, u32::MAX);
        Box::pin(async {})
    }
}

pub struct SharedLimiter {
    store: Arc<dyn CounterStore>,
    local: ProcessLimiter,
    /// Keys this process saw over their limit, per window: refused without a round trip.
    blocked: LocalLimiter,
    failure_window: Duration,
    on_error: OnStoreError,
    pub store_errors: Arc<AtomicU64>,
    /// Emit an EMF line (`LimiterStoreErrors`) per store error (Lambda).
    emf: bool,
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The stored key: a hash (no usernames at rest, bounded size) and the window it counts.
fn pk(kind: &str, key: &str, window: u64) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{kind}#{hex}#{window}")
}

impl SharedLimiter {
    pub fn new(
        store: Arc<dyn CounterStore>,
        max_keys: usize,
        failure_window: Duration,
        on_error: OnStoreError,
    ) -> Self {
        let failure_window = failure_window.max(Duration::from_secs(1));
        Self {
            store,
            local: ProcessLimiter::new(max_keys, failure_window),
            blocked: LocalLimiter::with_max_keys(max_keys),
            failure_window,
            on_error,
            store_errors: Arc::new(AtomicU64::new(0)),
            emf: false,
        }
    }

    pub fn with_emf(mut self, emf: bool) -> Self {
        self.emf = emf;
        self
    }

    fn unreachable(&self, e: &StoreError) -> bool {
        self.store_errors.fetch_add(1, Relaxed);
        if self.emf {
            use relay_aws::telemetry::{names, Emf, Unit};
            Emf::new(&[&[]])
                .metric(names::LIMITER_STORE_ERRORS, Unit::Count, 1)
                .print();
        }
        tracing::warn!(error = %e, policy = ?self.on_error, "rate-limit counters unreachable");
        self.on_error == OnStoreError::Allow
    }

    async fn allow_shared(&self, key: &str, per_minute: u32) -> bool {
        if per_minute == 0 {
            return true;
        }
        if !self.local.rate.check(key, per_minute) {
            return false;
        }
        if self.blocked.peek(key) > 0 {
            return false;
        }
        let window = unix_secs() / MINUTE.as_secs();
        match self
            .store
            .add(&pk("rate", key, window), 1, (window + 2) * MINUTE.as_secs())
            .await
        {
            Ok(n) if n > u64::from(per_minute) => {
                self.blocked.check(key, u32::MAX);
                false
            }
            Ok(_) => true,
            Err(e) => self.unreachable(&e),
        }
    }

    async fn locked_shared(&self, key: &str, max: u32) -> bool {
        if max == 0 {
            return false;
        }
        if self.local.failures.peek(key) >= max {
            return true;
        }
        let window = unix_secs() / self.failure_window.as_secs();
        match self.store.get(&pk("fail", key, window)).await {
            Ok(n) => n >= u64::from(max),
            Err(e) => !self.unreachable(&e),
        }
    }

    async fn fail_shared(&self, key: &str) {
        self.local.failures.check(key, u32::MAX);
        let w = self.failure_window.as_secs();
        let window = unix_secs() / w;
        if let Err(e) = self
            .store
            .add(&pk("fail", key, window), 1, (window + 2) * w)
            .await
        {
            self.unreachable(&e);
        }
    }
}

impl RateLimiter for SharedLimiter {
    fn allow<'a>(&'a self, key: &'a str, per_minute: u32) -> BoxFut<'a, bool> {
        Box::pin(self.allow_shared(key, per_minute))
    }
    fn locked<'a>(&'a self, key: &'a str, max: u32) -> BoxFut<'a, bool> {
        Box::pin(self.locked_shared(key, max))
    }
    fn fail<'a>(&'a self, key: &'a str) -> BoxFut<'a, ()> {
        Box::pin(self.fail_shared(key))
    }
    fn store_errors(&self) -> u64 {
        self.store_errors.load(Relaxed)
    }
}

/// Counters in a map (tests, and a stand-in that is shared by several limiters in process).
#[derive(Default)]
pub struct MemoryCounters {
    map: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// When set, every call fails (an unreachable table).
    pub down: std::sync::atomic::AtomicBool,
}

impl CounterStore for MemoryCounters {
    fn add<'a>(
        &'a self,
        pk: &'a str,
        n: u32,
        _expires_at: u64,
    ) -> BoxFut<'a, Result<u64, StoreError>> {
        let r = if self.down.load(Relaxed) {
            Err(StoreError::Unavailable("down".into()))
        } else {
            let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
            let c = m.entry(pk.to_owned()).or_insert(0);
            *c += u64::from(n);
            Ok(*c)
        };
        Box::pin(async move { r })
    }
    fn get<'a>(&'a self, pk: &'a str) -> BoxFut<'a, Result<u64, StoreError>> {
        let r = if self.down.load(Relaxed) {
            Err(StoreError::Unavailable("down".into()))
        } else {
            Ok(self
                .map
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(pk)
                .copied()
                .unwrap_or(0))
        };
        Box::pin(async move { r })
    }
}

/// The DynamoDB table (`RELAY_LIMITS_TABLE`).
pub struct DynamoCounters(pub relay_aws::limits::Counters);

impl CounterStore for DynamoCounters {
    fn add<'a>(
        &'a self,
        pk: &'a str,
        n: u32,
        expires_at: u64,
    ) -> BoxFut<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            self.0
                .add(pk, n, expires_at)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        })
    }
    fn get<'a>(&'a self, pk: &'a str) -> BoxFut<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            self.0
                .get(pk)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(on_error: OnStoreError) -> (Arc<MemoryCounters>, SharedLimiter, SharedLimiter) {
        let store = Arc::new(MemoryCounters::default());
        let a = SharedLimiter::new(store.clone(), 1000, Duration::from_secs(900), on_error);
        let b = SharedLimiter::new(store.clone(), 1000, Duration::from_secs(900), on_error);
        (store, a, b)
    }

    #[tokio::test]
    async fn a_limit_holds_across_instances() {
        let (_, a, b) = pair(OnStoreError::Allow);
        assert!(
            a.allow("user:x", 3).await && b.allow("user:x", 3).await && a.allow("user:x", 3).await
        );
        assert!(
            !b.allow("user:x", 3).await,
            "the fourth request, on another instance, is over"
        );
        assert!(b.allow("user:y", 3).await, "other keys are not");
    }

    #[tokio::test]
    async fn failed_sign_ins_lock_a_username_everywhere() {
        let (_, a, b) = pair(OnStoreError::Allow);
        a.fail("user:x").await;
        b.fail("user:x").await;
        assert!(!a.locked("user:x", 3).await);
        b.fail("user:x").await;
        assert!(a.locked("user:x", 3).await && b.locked("user:x", 3).await);
        assert!(!a.locked("user:y", 3).await);
        assert!(!a.locked("user:x", 0).await, "0 = off");
    }

    #[tokio::test]
    async fn an_unreachable_store_follows_the_policy_and_is_counted() {
        let (store, open, _) = pair(OnStoreError::Allow);
        store.down.store(true, Relaxed);
        assert!(open.allow("user:x", 3).await && !open.locked("user:x", 1).await);
        assert_eq!(open.store_errors(), 2);
        assert!(
            (0..5)
                .filter(|_| open.local.rate.check("user:z", 3))
                .count()
                == 3,
            "per-process limits still apply"
        );
        let (store, closed, _) = pair(OnStoreError::Refuse);
        store.down.store(true, Relaxed);
        assert!(!closed.allow("user:x", 3).await && closed.locked("user:x", 1).await);
        assert_eq!(closed.store_errors(), 2);
    }

    #[test]
    fn stored_keys_are_hashed_and_bounded() {
        let k = pk("rate", &format!("user:{}", "é".repeat(128)), 7);
        assert!(k.starts_with("rate#") && k.ends_with("#7") && k.len() == "rate#".len() + 32 + 2);
        assert!(!pk("rate", "user:alice", 1).contains("alice"));
    }
}
