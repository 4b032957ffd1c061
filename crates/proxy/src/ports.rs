//! The proxy's ports: what it needs from the outside world, as small object-safe traits so
//! tests (and later, shared stores) can stand in.

use std::future::Future;
use std::pin::Pin;

use replication::{Change, Header, OrderKey};

use crate::Error;

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Secrets Manager (or a test map): a secret's string value.
pub trait SecretSource: Send + Sync {
    fn fetch<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<String, Error>>;
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
    fn advance<'a>(
        &'a self,
        user_key: &'a str,
        change: &'a Change,
        order: &'a OrderKey,
    ) -> BoxFut<'a, Result<(), Error>>;
}

/// What the standby sign-in bridge keeps in this region's state table (`replication::state`).
pub trait BridgeStore: Send + Sync {
    /// The user's record (SRP material, MFA flag, material fingerprint); default when none.
    fn record<'a>(
        &'a self,
        user_key: &'a str,
    ) -> BoxFut<'a, Result<replication::UserRecord, Error>>;
    /// Marks the one-time `id` used until `expires` (seconds since the epoch). `Ok(false)`
    /// when it was used before.
    fn claim_once<'a>(&'a self, id: &'a str, expires: i64) -> BoxFut<'a, Result<bool, Error>>;
    /// Changes the user's record (material written here, the fingerprint of sent material).
    fn update<'a>(
        &'a self,
        user_key: &'a str,
        f: Box<dyn FnMut(&mut replication::UserRecord) + Send + 'a>,
    ) -> BoxFut<'a, Result<(), Error>>;
}

/// The home pool's users as the sign-up finisher sees them (`signups.rs`): Admin reads and the
/// deletion of a placeholder, nothing else.
pub trait Placeholders: Send + Sync {
    /// The user with this key (username, or sign-in e-mail / phone in alias pools).
    fn get<'a>(
        &'a self,
        user_key: &'a str,
    ) -> BoxFut<'a, Result<Option<replication::UserState>, Error>>;
    /// Deletes the user `username` (already gone is success).
    fn delete<'a>(&'a self, username: &'a str) -> BoxFut<'a, Result<(), Error>>;
}

/// The region's switches and home pool, for `/health`.
pub trait Control: Send + Sync {
    fn drained(&self) -> BoxFut<'_, Result<bool, Error>>;
    fn pool_ok(&self) -> BoxFut<'_, Result<(), Error>>;
}

/// Rate limits. Async so that a store shared by all instances (DynamoDB, ElastiCache) can
/// back it; under Lambda each instance sees only a slice of the traffic.
pub trait RateLimiter: Send + Sync {
    /// Counts one request for `key`; false when it is over `per_minute`.
    fn allow<'a>(&'a self, key: &'a str, per_minute: u32) -> BoxFut<'a, bool>;
    /// Whether `key` is locked out now (its failed sign-ins past `max` earned a lock that has
    /// not ended; `lockout.rs`).
    fn locked<'a>(&'a self, _key: &'a str, _max: u32) -> BoxFut<'a, bool> {
        Box::pin(async { false })
    }
    /// Counts one failed sign-in for `key` (`max` free failures, then doubling locks).
    fn fail<'a>(&'a self, _key: &'a str, _max: u32) -> BoxFut<'a, ()> {
        Box::pin(async {})
    }
    /// Requests decided without the shared store because it could not be reached.
    fn store_errors(&self) -> u64 {
        0
    }
}

pub use crate::limiter::LocalLimiter;
