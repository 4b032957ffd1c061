//! The proxy's ports: what it needs from the outside world, as small object-safe traits so
//! tests (and later, shared stores) can stand in.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Instant;

use replication::{Change, Header, OrderKey};

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Secrets Manager (or a test map): a secret's string value.
pub trait SecretSource: Send + Sync {
    fn fetch<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<String, String>>;
}

/// Where a replication event ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Peer,
    Fallback,
    Lost,
}

/// Where sealed replication events go (the peer's queue, with the local fallback queue).
pub trait EventSink: Send + Sync {
    /// Delivers the sealed `body` whose routing fields are `header`.
    fn deliver<'a>(&'a self, header: &'a Header, body: &'a str) -> BoxFut<'a, Delivery>;
}

/// This region's replication high-water marks (see `replication::state`).
pub trait LocalMarks: Send + Sync {
    /// Records that `change` of `user_key` happened here at `order`.
    fn advance<'a>(&'a self, user_key: &'a str, change: &'a Change, order: &'a OrderKey) -> BoxFut<'a, Result<(), String>>;
}

/// The region's switches and home pool, for `/health`.
pub trait Control: Send + Sync {
    fn drained(&self) -> BoxFut<'_, Result<bool, String>>;
    fn pool_ok(&self) -> BoxFut<'_, Result<(), String>>;
}

/// Rate limits. Async so that a store shared by all instances (DynamoDB, ElastiCache) can
/// back it; under Lambda each instance sees only a slice of the traffic.
pub trait RateLimiter: Send + Sync {
    /// Counts one request for `key`; false when it is over `per_minute`.
    fn allow<'a>(&'a self, key: &'a str, per_minute: u32) -> BoxFut<'a, bool>;
}

/// Per-process fixed one-minute windows.
#[derive(Default)]
pub struct LocalLimiter {
    windows: Mutex<HashMap<String, (u64, u32)>>,
    start: std::sync::OnceLock<Instant>,
}

impl LocalLimiter {
    pub fn check(&self, key: &str, per_minute: u32) -> bool {
        if per_minute == 0 {
            return true;
        }
        let minute = self.start.get_or_init(Instant::now).elapsed().as_secs() / 60;
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() > 100_000 {
            w.retain(|_, (m, _)| *m == minute);
        }
        let entry = w.entry(key.to_owned()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        entry.1 <= per_minute
    }
}

impl RateLimiter for LocalLimiter {
    fn allow<'a>(&'a self, key: &'a str, per_minute: u32) -> BoxFut<'a, bool> {
        let ok = self.check(key, per_minute);
        Box::pin(async move { ok })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key() {
        let l = LocalLimiter::default();
        assert!((0..3).all(|_| l.check("ip:1", 3)));
        assert!(!l.check("ip:1", 3));
        assert!(l.check("ip:2", 3));
        assert!((0..10).all(|_| l.check("ip:3", 0)), "0 means unlimited");
    }
}
