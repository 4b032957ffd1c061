//! Memory benchmark of the per-process limiter: RSS growth for N distinct keys, each a
//! 128-character username (the longest Cognito accepts). Run by `bench/limiter_memory.sh`.
//!
//! `cargo run --release -p bench --bin limiter-memory -- 1000000`

use proxy::limiter::LocalLimiter;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let max_keys: usize = std::env::args()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(proxy::limiter::DEFAULT_MAX_KEYS);
    let limiter = LocalLimiter::with_max_keys(max_keys);
    let mut key = String::with_capacity(160);
    let before = rss_kib();
    let started = std::time::Instant::now();
    for i in 0..n {
        key.clear();
        use std::fmt::Write as _;
        let _ = write!(key, "user:{i:0>123}");
        limiter.check(&key, 60);
    }
    let elapsed = started.elapsed();
    let after = rss_kib();
    println!(
        "keys_sent={n} keys_held={} max_keys={max_keys} rss_before_mib={:.1} rss_after_mib={:.1} growth_mib={:.1} ns_per_check={:.0}",
        limiter.len(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / 1024.0,
        elapsed.as_nanos() as f64 / n as f64
    );
}
