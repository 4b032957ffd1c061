//! Counters for Prometheus `/metrics` (standalone) and CloudWatch EMF lines (Lambda).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    pub replicated: AtomicU64,
    pub fallback: AtomicU64,
    pub lost: AtomicU64,
    pub throttled: AtomicU64,
    by_action: Mutex<BTreeMap<(&'static str, u16), u64>>,
    latency_ms_sum: Mutex<BTreeMap<&'static str, f64>>,
}

impl Metrics {
    pub fn record(&self, action: &'static str, status: u16, latency_ms: f64) {
        *self.by_action.lock().unwrap_or_else(|p| p.into_inner()).entry((action, status)).or_default() += 1;
        *self.latency_ms_sum.lock().unwrap_or_else(|p| p.into_inner()).entry(action).or_default() += latency_ms;
    }

    pub fn prometheus(&self) -> String {
        let mut s = String::new();
        s.push_str("# TYPE relay_proxy_requests_total counter\n");
        for ((a, st), n) in self.by_action.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(s, "relay_proxy_requests_total{{action=\"{a}\",status=\"{st}\"}} {n}");
        }
        s.push_str("# TYPE relay_proxy_latency_ms_sum counter\n");
        for (a, v) in self.latency_ms_sum.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(s, "relay_proxy_latency_ms_sum{{action=\"{a}\"}} {v:.3}");
        }
        for (name, v) in [("relay_replication_enqueued_total", &self.replicated), ("relay_replication_fallback_total", &self.fallback), ("relay_replication_lost_total", &self.lost), ("relay_cognito_throttled_total", &self.throttled)] {
            let _ = writeln!(s, "# TYPE {name} counter\n{name} {}", v.load(Relaxed));
        }
        s
    }
}

/// One CloudWatch Embedded Metric Format line for a proxied request.
pub fn emf_request(action: &str, status: u16, latency_ms: f64, delivery: Option<crate::ports::Delivery>, throttled: bool) -> String {
    use crate::ports::Delivery;
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
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
        for (name, on) in [("ReplicationFallback", d == Delivery::Fallback), ("ReplicationLost", d == Delivery::Lost)] {
            metrics.push(serde_json::json!({"Name":name,"Unit":"Count"}));
            doc[name] = serde_json::json!(if on { 1 } else { 0 });
        }
    }
    doc["_aws"] = serde_json::json!({"Timestamp": ts, "CloudWatchMetrics": [{"Namespace":"CognitoRelay","Dimensions":[["Action"],[]],"Metrics":metrics}]});
    doc.to_string()
}
