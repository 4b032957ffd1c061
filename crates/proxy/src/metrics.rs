//! The proxy's metrics through the one facade (`relay_aws::telemetry`): recorded with the
//! `metrics` crate into this state's own Prometheus recorder and rendered on `/metrics`
//! (standalone); one CloudWatch EMF line per request under Lambda ([`emf_request`]).
//!
//! Prometheus: `relay_proxy_requests_total` by action and status class,
//! `relay_proxy_latency_ms` (a histogram by action: `_bucket`, `_sum`, `_count`), the
//! replication delivery counters, `relay_cognito_throttled_total`,
//! `relay_connections_refused_total` and the gauge `relay_connections_open`, plus the
//! liveness lines.

use std::sync::OnceLock;

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::PrometheusRecorder;
use relay_aws::telemetry::{names, Emf, Unit};

/// Status classes counted per action.
const CLASSES: [&str; 3] = ["2xx", "4xx", "5xx"];

/// The latency histogram's name (buckets: `relay_aws::telemetry::LATENCY_BUCKETS_MS`).
const LATENCY: &str = "relay_proxy_latency_ms";

/// One action's handles, registered at its first request.
struct ActionMetrics {
    by_class: [Counter; 3],
    latency_ms: Histogram,
}

pub struct Metrics {
    recorder: PrometheusRecorder,
    pub replicated: Counter,
    pub fallback: Counter,
    pub lost: Counter,
    pub throttled: Counter,
    /// Forwarded writes whose high-water mark could not be recorded in this region.
    pub unmarked: Counter,
    /// Standalone: connections open now.
    pub connections_open: Gauge,
    /// Standalone: connections past a cap (closed at once, or served `/health` only).
    pub connections_refused: Counter,
    /// One slot per catalog action plus one for refused requests.
    actions: Vec<OnceLock<ActionMetrics>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let recorder = relay_aws::telemetry::prometheus(&[LATENCY]);
        // Registered now, so that each renders (as 0) before its first event.
        let (
            replicated,
            fallback,
            lost,
            throttled,
            unmarked,
            connections_refused,
            connections_open,
        ) = metrics::with_local_recorder(&recorder, || {
            (
                metrics::counter!("relay_replication_enqueued_total"),
                metrics::counter!("relay_replication_fallback_total"),
                metrics::counter!("relay_replication_lost_total"),
                metrics::counter!("relay_cognito_throttled_total"),
                metrics::counter!("relay_replication_unmarked_total"),
                metrics::counter!("relay_connections_refused_total"),
                metrics::gauge!("relay_connections_open"),
            )
        });
        for c in [
            &replicated,
            &fallback,
            &lost,
            &throttled,
            &unmarked,
            &connections_refused,
        ] {
            c.increment(0);
        }
        connections_open.set(0.0);
        Self {
            recorder,
            replicated,
            fallback,
            lost,
            throttled,
            unmarked,
            connections_open,
            connections_refused,
            actions: (0..=wire::CATALOG.len()).map(|_| OnceLock::new()).collect(),
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
    fn action(&self, slot: usize) -> &ActionMetrics {
        self.actions[slot].get_or_init(|| {
            let action = name(slot);
            metrics::with_local_recorder(&self.recorder, || ActionMetrics {
                by_class: CLASSES.map(|class| {
                    metrics::counter!("relay_proxy_requests_total", "action" => action, "status" => class)
                }),
                latency_ms: metrics::histogram!(LATENCY, "action" => action),
            })
        })
    }

    pub fn record(&self, action: &'static str, status: u16, latency_ms: f64) {
        let m = self.action(slot(action));
        let class = match status {
            500.. => 2,
            400.. => 1,
            _ => 0,
        };
        m.by_class[class].increment(1);
        m.latency_ms.record(latency_ms);
    }

    pub fn prometheus(&self) -> String {
        let handle = self.recorder.handle();
        handle.run_upkeep();
        let mut s = handle.render();
        s.push_str(&relay_aws::liveness::global().prometheus());
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
    let mut line = Emf::new(&[&["Action"], &[]])
        .with("Action", action)
        .metric(names::PROXY_REQUESTS, Unit::Count, 1)
        .metric(names::PROXY_ERRORS, Unit::Count, u8::from(status >= 500))
        .metric(names::PROXY_LATENCY_MS, Unit::Milliseconds, latency_ms)
        .metric(names::COGNITO_THROTTLED, Unit::Count, u8::from(throttled));
    if let Some(d) = delivery {
        line = line
            .metric(
                names::REPLICATION_FALLBACK,
                Unit::Count,
                u8::from(d == Delivery::Fallback),
            )
            .metric(
                names::REPLICATION_LOST,
                Unit::Count,
                u8::from(d == Delivery::Lost),
            );
    }
    line.line()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_keeps_the_names_the_tests_and_relayctl_read() {
        let m = Metrics::default();
        m.record("SignUp", 200, 12.5);
        m.record("SignUp", 503, 2.0);
        m.record("NotAnAction", 400, 1.0);
        for _ in 0..12 {
            m.fallback.increment(1);
        }
        let text = m.prometheus();
        for line in [
            "relay_proxy_requests_total{action=\"SignUp\",status=\"2xx\"} 1\n",
            "relay_proxy_requests_total{action=\"SignUp\",status=\"5xx\"} 1\n",
            "relay_proxy_requests_total{action=\"Refused\",status=\"4xx\"} 1\n",
            "relay_proxy_latency_ms_sum{action=\"SignUp\"} 14.5\n",
            "relay_proxy_latency_ms_count{action=\"SignUp\"} 2\n",
            "relay_proxy_latency_ms_bucket{action=\"SignUp\",le=\"25\"} 2\n",
            "relay_replication_fallback_total 12\n",
            "relay_replication_lost_total 0\n",
            "relay_connections_open 0\n",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
    }

    #[test]
    fn the_emf_line_has_the_names_the_cdk_alarms_read() {
        let line: serde_json::Value = serde_json::from_str(&emf_request(
            "SignUp",
            200,
            3.0,
            Some(crate::ports::Delivery::Fallback),
            true,
        ))
        .unwrap();
        let d = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "CognitoRelay");
        assert_eq!(d["Dimensions"], serde_json::json!([["Action"], []]));
        let declared: Vec<&str> = d["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            declared,
            [
                "ProxyRequests",
                "ProxyErrors",
                "ProxyLatencyMs",
                "CognitoThrottled",
                "ReplicationFallback",
                "ReplicationLost"
            ]
        );
        assert_eq!(
            (&line["ReplicationFallback"], &line["CognitoThrottled"]),
            (&serde_json::json!(1), &serde_json::json!(1))
        );
    }
}
