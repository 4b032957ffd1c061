//! The per-process rate limiter: fixed one-minute windows, bounded in key size and number.
//!
//! - A key is never stored: it is hashed (SipHash under a per-process random key, so a client
//!   cannot aim collisions) to 64 bits, stored as two `u32` so an entry is 12 bytes.
//! - Keys are spread over [`SHARDS`] independently locked shards; each holds at most
//!   `max_keys / SHARDS` keys per window. A key first seen in a full shard is counted in that
//!   shard's *overflow* counter, shared by every such key (a flood of fresh keys is limited
//!   as one caller; keys already counted keep their own counters).
//! - A shard is reset when the first request of a new window touches it: its table is cleared
//!   (a memset of one control byte per bucket; entries need no drop), never scanned, and keeps
//!   its allocation, reserved whole when the shard first sees a key (no doubling).
//!
//! Memory: ~13 bytes a bucket (12-byte entry + 1 control byte) at most 1.75 buckets per key
//! (hashbrown's 7/8 load factor, power-of-two growth): the default cap of 1,048,576 keys is
//! ≤ 28 MiB (BENCHMARKS.md, `bench/limiter_memory.sh`).

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ports::{BoxFut, RateLimiter};

pub const SHARDS: usize = 16;
/// Default cap on keys counted per window, all shards together.
pub const DEFAULT_MAX_KEYS: usize = 1 << 20;
/// The rate limits' window.
pub const MINUTE: Duration = Duration::from_secs(60);

/// A hashed key: the 64-bit hash as two `u32` (12-byte entries with a `u32` count).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key([u32; 2]);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64((u64::from(self.0[0]) << 32) | u64::from(self.0[1]));
    }
}

/// The key is already a keyed hash: use it as is.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type Table = HashMap<Key, u32, BuildHasherDefault<PreHashed>>;

#[derive(Default)]
struct Shard {
    window: u64,
    counts: Table,
    overflow: u32,
}

pub struct LocalLimiter {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    start: Instant,
    per_shard: usize,
    window: Duration,
}

impl Default for LocalLimiter {
    fn default() -> Self {
        Self::with_max_keys(DEFAULT_MAX_KEYS)
    }
}

impl LocalLimiter {
    /// A limiter that counts at most `max_keys` distinct keys per window (rounded up to a
    /// multiple of [`SHARDS`]).
    pub fn with_max_keys(max_keys: usize) -> Self {
        Self::with_window(max_keys, MINUTE)
    }

    /// Fixed windows of `window` (at least a second) instead of a minute.
    pub fn with_window(max_keys: usize, window: Duration) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            start: Instant::now(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
            window: window.max(Duration::from_secs(1)),
        }
    }

    /// `key`'s count in the current window, without counting.
    pub fn peek(&self, key: &str) -> u32 {
        let (shard, key) = self.slot(key);
        let window = self.start.elapsed().as_secs() / self.window.as_secs();
        let s = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
        if s.window != window {
            return 0;
        }
        s.counts.get(&key).copied().unwrap_or(0)
    }

    fn slot(&self, key: &str) -> (usize, Key) {
        let h = self.hasher.hash_one(key);
        // Shard on bits hashbrown does not use for a table this size (it takes the low bits
        // for the bucket and the top 7 for the tag).
        (
            ((h >> 32) as usize) % SHARDS,
            Key([(h >> 32) as u32, h as u32]),
        )
    }

    /// Keys counted in the current windows (all shards), for tests and benchmarks.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).counts.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn check(&self, key: &str, per_minute: u32) -> bool {
        self.check_at(key, per_minute, self.start.elapsed())
    }

    /// `check` at `elapsed` since the limiter started (tests step time without sleeping).
    pub fn check_at(&self, key: &str, per_minute: u32, elapsed: Duration) -> bool {
        if per_minute == 0 {
            return true;
        }
        let (shard, key) = self.slot(key);
        let window = elapsed.as_secs() / self.window.as_secs();
        let mut s = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
        if s.window != window {
            // Clearing marks every bucket empty (one byte each, a memset) and keeps the
            // allocation: no per-entry work, and no regrowth next window.
            s.window = window;
            s.overflow = 0;
            s.counts.clear();
        }
        if s.counts.capacity() == 0 {
            // The whole shard at once, when it first sees a key: growing by doubling would leave
            // the smaller tables' pages with the allocator (RSS) on top of the final one.
            s.counts.reserve(self.per_shard);
        }
        let full = s.counts.len() >= self.per_shard;
        let count = match s.counts.get_mut(&key) {
            Some(c) => c,
            None if full => &mut s.overflow,
            None => s.counts.entry(key).or_insert(0),
        };
        *count = count.saturating_add(1);
        let ok = *count <= per_minute;
        drop(s);
        ok
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

    #[test]
    fn a_new_window_starts_every_key_afresh_and_drops_the_old_ones() {
        let l = LocalLimiter::default();
        let t0 = Duration::from_secs(5);
        assert!((0..2).all(|_| l.check_at("user:a", 2, t0)));
        assert!(!l.check_at("user:a", 2, t0));
        for i in 0..1000 {
            l.check_at(&format!("user:{i}"), 2, t0);
        }
        let t1 = Duration::from_secs(65);
        assert!(l.check_at("user:a", 2, t1), "a new minute");
        // Every shard touched once in the new window holds only this window's keys.
        for i in 0..200 {
            l.check_at(&format!("fresh:{i}"), 2, t1);
        }
        assert!(l.len() <= 201, "{} keys after the window turned", l.len());
    }

    #[test]
    fn the_number_of_keys_is_capped_and_fresh_keys_past_it_share_one_counter() {
        let l = LocalLimiter::with_max_keys(SHARDS * 4);
        let t = Duration::from_secs(1);
        let mut refused = 0;
        for i in 0..10_000 {
            if !l.check_at(&format!("user:{i}"), 5, t) {
                refused += 1;
            }
        }
        assert!(l.len() <= SHARDS * 4, "{} keys", l.len());
        assert!(
            refused >= 10_000 - SHARDS * 4 - SHARDS * 5,
            "a flood of fresh keys is limited as one caller per shard ({refused} refused)"
        );
    }
}
