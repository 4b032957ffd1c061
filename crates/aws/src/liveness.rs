//! Liveness: which dependencies a process is waiting for, and since when, so an SRE can tell a
//! process that is recovering from one that is dead. Every process keeps one registry
//! ([`global`]); its components report failures (`waiting`) and successes (`ready`), and the
//! process shows the registry on `/metrics` (`relay_waiting_since_seconds{dependency=...}`),
//! in `/health` (proxy) and in its logs. `relayctl status` prints it per process.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The dependencies the relay's processes wait for, named as `relayctl status` prints them.
pub mod dep {
    pub const SECRETS: &str = "secrets (Secrets Manager)";
    pub const REPLICATION_KEY: &str = "replication key (Secrets Manager)";
    pub const DRAIN_SWITCH: &str = "drain switch (SSM)";
    pub const HOME_POOL: &str = "home user pool (Cognito)";
    pub const INBOUND_QUEUE: &str = "inbound queue (SQS)";
    pub const FALLBACK_QUEUE: &str = "fallback queue (SQS)";
    pub const PEER_QUEUE: &str = "peer inbound queue (SQS)";
}

/// One dependency the process cannot reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub dependency: String,
    /// When the first failure of this outage happened (Unix milliseconds).
    pub since_ms: u64,
    /// The same instant, RFC 3339 UTC.
    pub since: String,
    /// The latest failure: an error code or transport kind, never a secret.
    pub error: String,
    /// Failed attempts since `since`.
    pub attempts: u64,
}

impl Waiting {
    /// `waiting for <dependency> since <time> (<attempts> attempts; last: <error>)`.
    pub fn line(&self) -> String {
        format!(
            "waiting for {} since {} ({} attempt{}; last: {})",
            self.dependency,
            self.since,
            self.attempts,
            if self.attempts == 1 { "" } else { "s" },
            self.error
        )
    }
}

/// What a process waits for. Cheap: one short lock per report.
#[derive(Debug, Default)]
pub struct Liveness {
    waiting: Mutex<BTreeMap<String, Waiting>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// RFC 3339 UTC with seconds, e.g. `2026-11-26T21:03:04Z`.
pub fn rfc3339(ms: u64) -> String {
    use aws_smithy_types::date_time::{DateTime, Format};
    DateTime::from_secs((ms / 1000) as i64)
        .fmt(Format::DateTime)
        .unwrap_or_else(|_| format!("{ms} ms"))
}

impl Liveness {
    /// Records a failed attempt to reach `dependency`. The first failure starts the wait (and
    /// logs a warning); later ones only update the error and the count.
    pub fn waiting(&self, dependency: &str, error: &str) {
        self.waiting_at(dependency, error, now_ms());
    }

    fn waiting_at(&self, dependency: &str, error: &str, at_ms: u64) {
        let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let entry = w.entry(dependency.to_owned()).or_insert_with(|| Waiting {
            dependency: dependency.to_owned(),
            since_ms: at_ms,
            since: rfc3339(at_ms),
            error: String::new(),
            attempts: 0,
        });
        entry.attempts += 1;
        entry.error = error.to_owned();
        // The first failure and then every power of two: alive in the logs, without a line per retry.
        if entry.attempts.is_power_of_two() {
            tracing::warn!(dependency, since = %entry.since, attempts = entry.attempts, error, "waiting for {dependency}");
        }
    }

    /// Records that `dependency` answered. Returns how long the wait lasted, if there was one.
    pub fn ready(&self, dependency: &str) -> Option<Duration> {
        let gone = self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(dependency)?;
        let waited = Duration::from_millis(now_ms().saturating_sub(gone.since_ms));
        tracing::info!(dependency, since = %gone.since, attempts = gone.attempts, waited_s = waited.as_secs_f64(), "{dependency} reachable again");
        Some(waited)
    }

    /// Records the outcome of one attempt.
    pub fn observe<T, E: std::fmt::Display>(&self, dependency: &str, r: &Result<T, E>) {
        match r {
            Ok(_) => {
                self.ready(dependency);
            }
            Err(e) => self.waiting(dependency, &e.to_string()),
        }
    }

    pub fn get(&self, dependency: &str) -> Option<Waiting> {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(dependency)
            .cloned()
    }

    /// Everything the process waits for, by dependency name.
    pub fn snapshot(&self) -> Vec<Waiting> {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Prometheus text: one `relay_waiting_since_seconds` gauge per dependency waited for (Unix
    /// seconds of the first failure) and `relay_waiting_dependencies`, their number.
    pub fn prometheus(&self) -> String {
        let all = self.snapshot();
        let mut s = String::from("# TYPE relay_waiting_dependencies gauge\n");
        s.push_str(&format!(
            "relay_waiting_dependencies {}\n# TYPE relay_waiting_since_seconds gauge\n",
            all.len()
        ));
        for w in &all {
            let dep = w.dependency.replace('\\', "\\\\").replace('"', "\\\"");
            s.push_str(&format!(
                "relay_waiting_since_seconds{{dependency=\"{dep}\"}} {:.3}\n",
                w.since_ms as f64 / 1000.0
            ));
        }
        s
    }
}

/// Parses what [`Liveness::prometheus`] printed (for `relayctl status`): (dependency, since in
/// Unix seconds).
pub fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("relay_waiting_since_seconds{dependency=\"")?;
            let (dep, value) = rest.rsplit_once("\"} ")?;
            Some((
                dep.replace("\\\"", "\"").replace("\\\\", "\\"),
                value.trim().parse().ok()?,
            ))
        })
        .collect()
}

/// The process's registry.
pub fn global() -> &'static Liveness {
    static G: OnceLock<Liveness> = OnceLock::new();
    G.get_or_init(Liveness::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_keeps_its_start_counts_attempts_and_ends_on_success() {
        let l = Liveness::default();
        l.waiting_at(dep::SECRETS, "connection failure (I/O)", 1_795_000_000_000);
        l.waiting_at(dep::SECRETS, "timeout", 1_795_000_005_000);
        let w = l.get(dep::SECRETS).unwrap();
        assert_eq!(
            (w.since_ms, w.attempts, w.error.as_str()),
            (1_795_000_000_000, 2, "timeout")
        );
        assert_eq!(w.since, "2026-11-18T11:06:40Z");
        assert_eq!(w.line(), "waiting for secrets (Secrets Manager) since 2026-11-18T11:06:40Z (2 attempts; last: timeout)");
        assert!(l.ready(dep::SECRETS).is_some());
        assert!(l.ready(dep::SECRETS).is_none(), "nothing to end twice");
        assert!(l.snapshot().is_empty());
    }

    #[test]
    fn prometheus_lines_round_trip_for_relayctl() {
        let l = Liveness::default();
        assert!(l.prometheus().contains("relay_waiting_dependencies 0\n"));
        l.waiting_at(dep::REPLICATION_KEY, "x", 1_795_000_000_500);
        l.waiting_at(dep::INBOUND_QUEUE, "y", 1_795_000_001_000);
        let text = l.prometheus();
        assert!(text.contains("relay_waiting_dependencies 2\n"), "{text}");
        let parsed = parse_prometheus(&format!("other_metric 1\n{text}"));
        assert_eq!(
            parsed,
            vec![
                (dep::INBOUND_QUEUE.to_owned(), 1_795_000_001.0),
                (dep::REPLICATION_KEY.to_owned(), 1_795_000_000.5)
            ]
        );
    }
}
