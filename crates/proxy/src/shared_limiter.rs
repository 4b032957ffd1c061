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
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::limiter::{LocalLimiter, MINUTE};
use crate::lockout::{lock_secs, unix_secs, Lockouts};
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
    /// Sets counter `pk` to `value` unless it already holds more (a lock's end, Unix seconds).
    fn raise<'a>(
        &'a self,
        pk: &'a str,
        value: u64,
        expires_at: u64,
    ) -> BoxFut<'a, Result<(), StoreError>>;
}

/// What a request gets when the counters cannot be reached (`RELAY_LIMITS_ON_STORE_ERROR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnStoreError {
    /// Allowed (per-process limits only). The default.
    Allow,
    /// Refused with `TooManyRequestsException`.
    Refuse,
}

/// Per-process limits: rate windows of a minute and the failed sign-in lockouts
/// (`lockout.rs`: Cognito's schedule, failing closed when the table is full).
pub struct ProcessLimiter {
    pub rate: LocalLimiter,
    pub lockouts: Lockouts,
}

impl ProcessLimiter {
    pub fn new(max_keys: usize, failure_window: Duration, lock_base: Duration) -> Self {
        Self {
            rate: LocalLimiter::with_max_keys(max_keys),
            lockouts: Lockouts::new(max_keys, failure_window.as_secs(), lock_base.as_secs()),
        }
    }
}

impl RateLimiter for ProcessLimiter {
    fn allow<'a>(&'a self, key: &'a str, per_minute: u32) -> BoxFut<'a, bool> {
        let ok = self.rate.check(key, per_minute);
        Box::pin(async move { ok })
    }
    fn locked<'a>(&'a self, key: &'a str, max: u32) -> BoxFut<'a, bool> {
        let locked = self.lockouts.locked_at(key, max, unix_secs());
        Box::pin(async move { locked })
    }
    fn fail<'a>(&'a self, key: &'a str, max: u32) -> BoxFut<'a, ()> {
        self.lockouts.fail_at(key, max, unix_secs());
        Box::pin(async {})
    }
}

pub struct SharedLimiter {
    store: Arc<dyn CounterStore>,
    /// The peer region's table (`RELAY_PEER_LIMITS_TABLE`): failures and locks are written
    /// there too, so an attacker alternating regions gets no more tries than one region gives.
    peer: Option<Arc<dyn CounterStore>>,
    lock_base: Duration,
    local: ProcessLimiter,
    /// Keys this process saw over their limit, per window: refused without a round trip.
    blocked: LocalLimiter,
    failure_window: Duration,
    on_error: OnStoreError,
    pub store_errors: Arc<AtomicU64>,
    /// Emit an EMF line (`LimiterStoreErrors`) per store error (Lambda).
    emf: bool,
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
        lock_base: Duration,
        on_error: OnStoreError,
    ) -> Self {
        let failure_window = failure_window.max(Duration::from_secs(1));
        Self {
            store,
            peer: None,
            lock_base,
            local: ProcessLimiter::new(max_keys, failure_window, lock_base),
            blocked: LocalLimiter::with_max_keys(max_keys),
            failure_window,
            on_error,
            store_errors: Arc::new(AtomicU64::new(0)),
            emf: false,
        }
    }

    /// The peer region's counters, where failures and locks are written too.
    pub fn with_peer(mut self, peer: Option<Arc<dyn CounterStore>>) -> Self {
        self.peer = peer;
        self
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
        let now = unix_secs();
        if self.local.lockouts.locked_at(key, max, now) {
            return true;
        }
        match self.store.get(&pk("lock", key, 0)).await {
            Ok(until) if until > now => {
                self.local.lockouts.raise(key, until, now);
                true
            }
            Ok(_) => false,
            Err(e) => !self.unreachable(&e),
        }
    }

    /// One failure of `key` in `store`: the failures in a row there (this window's and the
    /// last one's: a window's edge is no fresh start) and the lock they earn.
    async fn fail_in(&self, store: &dyn CounterStore, key: &str, max: u32, now: u64) {
        let w = self.failure_window.as_secs();
        let window = now / w;
        let (cur_pk, prev_pk) = (
            pk("fail", key, window),
            pk("fail", key, window.saturating_sub(1)),
        );
        let (cur, prev) =
            tokio::join!(store.add(&cur_pk, 1, (window + 2) * w), store.get(&prev_pk));
        let n = match (cur, prev) {
            (Ok(c), Ok(p)) => c + p,
            (Ok(c), Err(_)) => c,
            (Err(e), _) => {
                self.unreachable(&e);
                return;
            }
        };
        let secs = lock_secs(n, max, self.lock_base.as_secs());
        if secs > 0 {
            let until = now + secs;
            self.local.lockouts.raise(key, until, now);
            if let Err(e) = store
                .raise(&pk("lock", key, 0), until, until + MINUTE.as_secs())
                .await
            {
                self.unreachable(&e);
            }
        }
    }

    async fn fail_shared(&self, key: &str, max: u32) {
        let now = unix_secs();
        self.local.lockouts.fail_at(key, max, now);
        match &self.peer {
            Some(peer) => {
                tokio::join!(
                    self.fail_in(&*self.store, key, max, now),
                    self.fail_in(&**peer, key, max, now)
                );
            }
            None => self.fail_in(&*self.store, key, max, now).await,
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
    fn fail<'a>(&'a self, key: &'a str, max: u32) -> BoxFut<'a, ()> {
        Box::pin(self.fail_shared(key, max))
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
    fn raise<'a>(
        &'a self,
        pk: &'a str,
        value: u64,
        _expires_at: u64,
    ) -> BoxFut<'a, Result<(), StoreError>> {
        let r = self.raise_now(pk, value);
        Box::pin(async move { r })
    }
}

impl MemoryCounters {
    fn raise_now(&self, pk: &str, value: u64) -> Result<(), StoreError> {
        if self.down.load(Relaxed) {
            return Err(StoreError::Unavailable("down".into()));
        }
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let c = m.entry(pk.to_owned()).or_insert(0);
        *c = (*c).max(value);
        Ok(())
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
    fn raise<'a>(
        &'a self,
        pk: &'a str,
        value: u64,
        expires_at: u64,
    ) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.0
                .raise(pk, value, expires_at)
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
        let a = SharedLimiter::new(
            store.clone(),
            1000,
            Duration::from_secs(900),
            Duration::from_secs(5),
            on_error,
        );
        let b = SharedLimiter::new(
            store.clone(),
            1000,
            Duration::from_secs(900),
            Duration::from_secs(5),
            on_error,
        );
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
        a.fail("user:x", 3).await;
        b.fail("user:x", 3).await;
        assert!(!a.locked("user:x", 3).await);
        b.fail("user:x", 3).await;
        assert!(a.locked("user:x", 3).await && b.locked("user:x", 3).await);
        assert!(!a.locked("user:y", 3).await);
        assert!(!a.locked("user:x", 0).await, "0 = off");
    }

    #[tokio::test]
    async fn failures_in_either_region_count_in_both() {
        let (home_a, home_b) = (
            Arc::new(MemoryCounters::default()),
            Arc::new(MemoryCounters::default()),
        );
        let w = Duration::from_secs(900);
        let base = Duration::from_secs(5);
        let a = SharedLimiter::new(home_a.clone(), 1000, w, base, OnStoreError::Allow)
            .with_peer(Some(home_b.clone()));
        let b = SharedLimiter::new(home_b.clone(), 1000, w, base, OnStoreError::Allow)
            .with_peer(Some(home_a.clone()));
        // An attacker alternating regions: 2 failures at A, 1 at B.
        a.fail("user:x", 3).await;
        b.fail("user:x", 3).await;
        a.fail("user:x", 3).await;
        // A fresh process of each region (nothing local) sees the lock from its own table.
        let a2 = SharedLimiter::new(home_a, 1000, w, base, OnStoreError::Allow);
        let b2 = SharedLimiter::new(home_b, 1000, w, base, OnStoreError::Allow);
        assert!(
            a2.locked("user:x", 3).await,
            "region A's table holds the lock"
        );
        assert!(
            b2.locked("user:x", 3).await,
            "region B's table holds it too"
        );
        assert!(!b2.locked("user:y", 3).await);
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
