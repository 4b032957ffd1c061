//! The failed sign-in lockout, shaped like Cognito's own: a handful of free failures
//! (`RELAY_FAILED_SIGNINS_PER_USERNAME`, default 10; Cognito's is 5), then each further failure
//! locks the user for twice as long as the one before (`RELAY_LOCKOUT_BASE_S`, default 1 s as Cognito's,
//! doubling up to 15 minutes). While locked, every password check of the user is refused
//! *without being evaluated* (the attempt neither reaches Cognito nor the bridge's SRP check,
//! and does not count). Failures are forgotten after `window` (15 minutes) without one.
//!
//! The key is always the one canonical user key (`canonical_user_key`), whatever the client
//! typed. This module holds the pure schedule and the per-process table; the region-wide
//! (and cross-region) store is `shared_limiter`.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

/// The longest lock, as Cognito's ("approximately 15 minutes").
pub const MAX_LOCK_SECS: u64 = 900;

/// How long a user is locked after their `failures`-th failure in a row (0: not locked).
/// `free` failures are allowed; the next locks for `base_secs`, then twice as long each time.
pub fn lock_secs(failures: u64, free: u32, base_secs: u64) -> u64 {
    if free == 0 || failures < u64::from(free) {
        return 0;
    }
    let doublings = (failures - u64::from(free)).min(20) as u32;
    base_secs
        .max(1)
        .saturating_mul(1u64 << doublings)
        .min(MAX_LOCK_SECS)
}

/// The limiter key of a user: `user:` + the name lower-cased and in Unicode NFC-equivalent
/// form (compatibility characters folded by lower-casing), so `Alice`, `ALICE` and `alice`
/// are one key, as in Cognito's default case-insensitive pools.
pub fn canonical_user_key(name: &str) -> String {
    format!("user:{}", name.trim().to_lowercase())
}

#[derive(Clone, Copy)]
struct Entry {
    failures: u64,
    last_fail: u64,
    until: u64,
}

/// Per-process lockouts, bounded: at most `max_keys` users. When the table is full of live
/// entries a user it does not hold is treated as locked (fails closed): a flood of fresh
/// usernames cannot push real ones out and reset their count.
pub struct Lockouts {
    map: Mutex<HashMap<u64, Entry>>,
    hasher: RandomState,
    max_keys: usize,
    window_secs: u64,
    base_secs: u64,
    /// When a full table was last swept of stale entries (Unix seconds): at most once a
    /// second, so a flood against a full table does not scan it on every request.
    last_sweep: std::sync::atomic::AtomicU64,
}

impl Lockouts {
    pub fn new(max_keys: usize, window_secs: u64, base_secs: u64) -> Self {
        Self {
            map: Mutex::default(),
            hasher: RandomState::new(),
            max_keys: max_keys.max(1),
            window_secs: window_secs.max(1),
            base_secs,
            last_sweep: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Makes room in a full table by dropping entries neither locked nor recent (at most once a
    /// second); whether there is room now.
    fn make_room(&self, m: &mut HashMap<u64, Entry>, now: u64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        if m.len() < self.max_keys {
            return true;
        }
        if self.last_sweep.swap(now, Relaxed) != now {
            let window = self.window_secs;
            m.retain(|_, e| e.until > now || e.last_fail + window > now);
        }
        m.len() < self.max_keys
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `key` is locked at `now` (Unix seconds).
    pub fn locked_at(&self, key: &str, free: u32, now: u64) -> bool {
        if free == 0 {
            return false;
        }
        let h = self.hasher.hash_one(key);
        let mut m = self.lock();
        match m.get(&h) {
            Some(e) => e.until > now,
            None => !self.make_room(&mut m, now),
        }
    }

    /// Counts a failure of `key` at `now`; the failures in a row so far.
    pub fn fail_at(&self, key: &str, free: u32, now: u64) -> u64 {
        let h = self.hasher.hash_one(key);
        let mut m = self.lock();
        if !m.contains_key(&h) && !self.make_room(&mut m, now) {
            return u64::MAX;
        }
        let e = m.entry(h).or_insert(Entry {
            failures: 0,
            last_fail: now,
            until: 0,
        });
        if e.last_fail + self.window_secs <= now && e.until <= now {
            e.failures = 0;
        }
        e.failures += 1;
        e.last_fail = now;
        e.until = e
            .until
            .max(now + lock_secs(e.failures, free, self.base_secs));
        e.failures
    }

    /// Raises `key`'s lock to `until` (a lock learned from the shared store).
    pub fn raise(&self, key: &str, until: u64, now: u64) {
        let h = self.hasher.hash_one(key);
        let mut m = self.lock();
        if m.len() >= self.max_keys && !m.contains_key(&h) {
            return;
        }
        let e = m.entry(h).or_insert(Entry {
            failures: 0,
            last_fail: now,
            until: 0,
        });
        e.until = e.until.max(until);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_gives_a_handful_of_tries_then_doubling_waits_up_to_15_minutes() {
        let s: Vec<u64> = (1..=14).map(|n| lock_secs(n, 5, 1)).collect();
        assert_eq!(s, [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512]);
        assert_eq!(lock_secs(15, 5, 1), 900);
        assert_eq!(lock_secs(1000, 5, 1), 900);
        assert_eq!(lock_secs(1000, 0, 1), 0, "0 = off");
        assert_eq!(lock_secs(5, 5, 5), 5);
    }

    #[test]
    fn a_locked_user_is_refused_until_the_lock_ends_and_failures_in_a_row_grow_it() {
        let l = Lockouts::new(100, 900, 5);
        let t = 1_000_000;
        for i in 0..4 {
            assert!(!l.locked_at("user:a", 5, t + i));
            l.fail_at("user:a", 5, t + i);
        }
        assert!(!l.locked_at("user:a", 5, t + 4));
        assert_eq!(l.fail_at("user:a", 5, t + 4), 5);
        assert!(l.locked_at("user:a", 5, t + 5));
        assert!(!l.locked_at("user:a", 5, t + 9), "5 s lock ended");
        l.fail_at("user:a", 5, t + 9);
        assert!(l.locked_at("user:a", 5, t + 18) && !l.locked_at("user:a", 5, t + 19));
        assert!(
            !l.locked_at("user:b", 5, t + 9),
            "other users are not locked"
        );
        // 15 quiet minutes forget the failures.
        assert_eq!(l.fail_at("user:a", 5, t + 9 + 901), 1);
    }

    #[test]
    fn a_full_table_fails_closed_for_users_it_does_not_hold() {
        let l = Lockouts::new(3, 900, 5);
        let t = 50_000;
        for k in ["user:1", "user:2", "user:3"] {
            l.fail_at(k, 5, t);
        }
        assert!(
            l.locked_at("user:new", 5, t + 1),
            "no room to count this user: locked"
        );
        assert!(
            !l.locked_at("user:1", 5, t + 1),
            "held users are judged as ever"
        );
        // Once the entries are stale, room is made again.
        assert!(!l.locked_at("user:new", 5, t + 1000));
    }

    #[test]
    fn the_canonical_key_ignores_case_and_surrounding_space() {
        assert_eq!(canonical_user_key("Alice"), canonical_user_key(" ALICE "));
        assert_eq!(
            canonical_user_key("ÉLodie@X.io"),
            canonical_user_key("élodie@x.io")
        );
    }
}
