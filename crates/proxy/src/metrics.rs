//! Counters for Prometheus `/metrics` (standalone) and CloudWatch EMF lines (Lambda).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Status classes counted per action.
const CLASSES: [&str; 3] = ["2xx", "4xx", "5xx"];

/// One slot per catalog action plus one for refused requests; lock-free on the hot path.
struct ActionCounters {
    by_class: [AtomicU64; 3],
    latency_us: AtomicU64,
}

pub struct Metrics {
    pub replicated: AtomicU64,
    pub fallback: AtomicU64,
    pub lost: AtomicU64,
    pub throttled: AtomicU64,
    /// Forwarded writes whose high-water mark could not be recorded in this region.
    pub unmarked: AtomicU64,
    /// Standalone: connections open now (gauge).
    pub connections_open: AtomicU64,
    /// Standalone: connections past a cap (closed at once, or served `/health` only).
    pub connections_refused: AtomicU64,
    actions: Vec<ActionCounters>,
}

impl Default for Metrics {
    fn default() -> Self {
        let actions = (0..=wire::CATALOG.len())
            .map(|_| ActionCounters {
                by_class: Default::default(),
                latency_us: AtomicU64::new(0),
            })
            .collect();
        Self {
            replicated: AtomicU64::new(0),
            fallback: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            unmarked: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            actions,
        }
    }
}

fn slot(action: &str) -> usize {
    wire::CATALOG
        .iter()
        .position(|a| a.name == action)
        .unwrap_or(wire::CATALOG.len())
}

fn name(slot: usize) -> &'static str {
    wire::CATALOG.get(slot).map_or("Refused", |a| a.name)
}

impl Metrics {
    pub fn record(&self, action: &'static str, status: u16, latency_ms: f64) {
        let c = &self.actions[slot(action)];
        let class = match status {
            500.. => 2,
            400.. => 1,
            _ => 0,
        };
        c.by_class[class].fetch_add(1, Relaxed);
        c.latency_us
            .fetch_add((latency_ms * 1000.0) as u64, Relaxed);
    }

    pub fn prometheus(&self) -> String {
        let mut s = String::new();
        s.push_str("# TYPE relay_proxy_requests_total counter\n");
        for (i, c) in self.actions.iter().enumerate() {
            for (k, class) in CLASSES.iter().enumerate() {
                let n = c.by_class[k].load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        s,
                        "relay_proxy_requests_total{{action=\"{}\",status=\"{class}\"}} {n}",
                        name(i)
                    );
                }
            }
        }
        s.push_str("# TYPE relay_proxy_latency_ms_sum counter\n");
        for (i, c) in self.actions.iter().enumerate() {
            let v = c.latency_us.load(Relaxed);
            if v > 0 {
                let _ = writeln!(
                    s,
                    "relay_proxy_latency_ms_sum{{action=\"{}\"}} {:.3}",
                    name(i),
                    v as f64 / 1000.0
                );
            }
        }
        for (name, v) in [
            ("relay_replication_enqueued_total", &self.replicated),
            ("relay_replication_fallback_total", &self.fallback),
            ("relay_replication_lost_total", &self.lost),
            ("relay_cognito_throttled_total", &self.throttled),
            ("relay_replication_unmarked_total", &self.unmarked),
            ("relay_connections_refused_total", &self.connections_refused),
        ] {
            let _ = writeln!(s, "# TYPE {name} counter\n{name} {}", v.load(Relaxed));
        }
        s.push_str(&relay_aws::liveness::global().prometheus());
        let _ = writeln!(
            s,
            "# TYPE relay_connections_open gauge\nrelay_connections_open {}",
            self.connections_open.load(Relaxed)
        );
        s
    }
}

/// One CloudWatch Embedded Metric Format line for a proxied request.
pub fn emf_request(
    action: &str,
    status: u16,
    latency_ms: f64,
    delivery: Option<crate::ports::Delivery>,
    throttled: bool,
) -> String {
    use crate::ports::Delivery;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut metrics = vec![
        serde_json::json!({"Name":"ProxyRequests","Unit":"Count"}),
        serde_json::json!({"Name":"ProxyErrors","Unit":"Count"}),
        serde_json::json!({"Name":"ProxyLatencyMs","Unit":"Milliseconds"}),
        serde_json::json!({"Name":"CognitoThrottled","Unit":"Count"}),
    ];
    let mut doc = serde_json::json!({
        "Action": action,
        "ProxyRequests": 1,
        "ProxyErrors": if status >= 500 { 1 } else { 0 },
        "ProxyLatencyMs": latency_ms,
        "CognitoThrottled": if throttled { 1 } else { 0 },
    });
    if let Some(d) = delivery {
        for (name, on) in [
            ("ReplicationFallback", d == Delivery::Fallback),
            ("ReplicationLost", d == Delivery::Lost),
        ] {
            metrics.push(serde_json::json!({"Name":name,"Unit":"Count"}));
            doc[name] = serde_json::json!(if on { 1 } else { 0 });
        }
    }
    doc["_aws"] = serde_json::json!({"Timestamp": ts, "CloudWatchMetrics": [{"Namespace":"CognitoRelay","Dimensions":[["Action"],[]],"Metrics":metrics}]});
    doc.to_string()
}
