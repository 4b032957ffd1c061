//! The binaries' one metrics facade. Standalone, metrics are recorded through the `metrics`
//! crate and rendered as Prometheus text by `metrics-exporter-prometheus` ([`prometheus`]:
//! latency and lag are distributions, the lag a summary with the p50/p99 quantiles relayctl
//! reads). Under Lambda, each event is one CloudWatch Embedded Metric Format line written by the
//! small exporter [`Emf`] (no maintained crate writes EMF without an agent or a batching
//! runtime of its own). The CloudWatch names live in [`names`]: the CDK alarms and dashboard and
//! relayctl read them, and a test pins them against `cdk/lib` and `crates/relayctl`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

/// The CloudWatch namespace of every EMF metric.
pub const NAMESPACE: &str = "CognitoRelay";

/// The CloudWatch metric names the binaries emit.
pub mod names {
    pub const PROXY_REQUESTS: &str = "ProxyRequests";
    pub const PROXY_ERRORS: &str = "ProxyErrors";
    pub const PROXY_LATENCY_MS: &str = "ProxyLatencyMs";
    pub const COGNITO_THROTTLED: &str = "CognitoThrottled";
    pub const REPLICATION_FALLBACK: &str = "ReplicationFallback";
    pub const REPLICATION_LOST: &str = "ReplicationLost";
    pub const REPLICATION_LAG_MS: &str = "ReplicationLagMs";
    pub const REPLICATION_APPLIED: &str = "ReplicationApplied";
    pub const REPLICATION_FAILED: &str = "ReplicationFailed";
    pub const APPLY_RETRIES: &str = "ApplyRetries";
    pub const FALLBACK_FORWARDED: &str = "FallbackForwarded";
    pub const DEPENDENCY_WAITING_SECONDS: &str = "DependencyWaitingSeconds";
    pub const LIMITER_STORE_ERRORS: &str = "LimiterStoreErrors";
    pub const POLICY_REFUSALS: &str = "PolicyRefusals";
    pub const BRIDGE_SRP_SIGN_INS: &str = "BridgeSrpSignIns";
    pub const BRIDGE_REFRESHES: &str = "BridgeRefreshes";
    pub const BRIDGE_REFUSALS: &str = "BridgeRefusals";
    pub const HALF_SIGN_UPS_FINISHED: &str = "HalfSignUpsFinished";
    pub const EVENTS_DROPPED: &str = "EventsDropped";
    /// A session continued on the replicated marks alone: the issuing region could not be asked.
    pub const BRIDGE_MARKS_FALLBACKS: &str = "BridgeMarksFallbacks";

    /// Every name above.
    pub const ALL: &[&str] = &[
        PROXY_REQUESTS,
        PROXY_ERRORS,
        PROXY_LATENCY_MS,
        COGNITO_THROTTLED,
        REPLICATION_FALLBACK,
        REPLICATION_LOST,
        REPLICATION_LAG_MS,
        REPLICATION_APPLIED,
        REPLICATION_FAILED,
        APPLY_RETRIES,
        FALLBACK_FORWARDED,
        DEPENDENCY_WAITING_SECONDS,
        LIMITER_STORE_ERRORS,
        POLICY_REFUSALS,
        BRIDGE_SRP_SIGN_INS,
        BRIDGE_REFRESHES,
        BRIDGE_REFUSALS,
        HALF_SIGN_UPS_FINISHED,
        EVENTS_DROPPED,
        BRIDGE_MARKS_FALLBACKS,
    ];
}

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

/// One EMF line: the dimension sets, the dimension and property values, the metrics.
#[derive(Debug, Clone)]
pub struct Emf {
    dimensions: Vec<Vec<&'static str>>,
    values: serde_json::Map<String, serde_json::Value>,
    metrics: Vec<serde_json::Value>,
}

impl Emf {
    /// A line with these dimension sets (`&[&[]]`: the dimensionless series only).
    pub fn new(dimensions: &[&[&'static str]]) -> Self {
        Self {
            dimensions: dimensions.iter().map(|d| d.to_vec()).collect(),
            values: serde_json::Map::new(),
            metrics: Vec::new(),
        }
    }

    /// A dimension's value, or a property that is logged but not a dimension.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.values.insert(key.to_owned(), value.into());
        self
    }

    /// A metric (one of [`names`]) and its value.
    pub fn metric(
        mut self,
        name: &'static str,
        unit: Unit,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.metrics
            .push(serde_json::json!({"Name": name, "Unit": unit.as_str()}));
        self.values.insert(name.to_owned(), value.into());
        self
    }

    /// The JSON line, stamped now.
    pub fn line(self) -> String {
        let mut doc = self.values;
        doc.insert(
            "_aws".into(),
            serde_json::json!({
                "Timestamp": now_ms(),
                "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": self.dimensions, "Metrics": self.metrics}],
            }),
        );
        serde_json::Value::Object(doc).to_string()
    }

    /// Writes the line to stdout, where the Lambda runtime's log capture picks it up.
    pub fn print(self) {
        println!("{}", self.line());
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The quantiles every summary renders (relayctl reads `quantile="0.99"`).
pub const QUANTILES: &[f64] = &[0.5, 0.99];

/// How far back the quantiles look: like relayctl's CloudWatch window (15 one-minute buckets).
pub const SUMMARY_WINDOW: (u32, Duration) = (15, Duration::from_secs(60));

/// Bucket bounds (milliseconds) for the latency histograms.
pub const LATENCY_BUCKETS_MS: &[f64] = &[
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// A Prometheus recorder as every binary configures it: summaries (p50, p99 over the last 15
/// minutes; `_sum` and `_count` since start) for distributions, except the metrics named in
/// `histograms`, which get [`LATENCY_BUCKETS_MS`] buckets. Not installed globally: its owner
/// records through it (`metrics::with_local_recorder`) and renders it (`handle().render()`), so
/// that two owners in one test process never share counts.
pub fn prometheus(histograms: &[&str]) -> PrometheusRecorder {
    // Only empty quantiles or buckets and a zero window fail, and the constants are neither.
    configured(histograms)
        .unwrap_or_else(|_| PrometheusBuilder::new())
        .build_recorder()
}

fn configured(
    histograms: &[&str],
) -> Result<PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    let mut b = PrometheusBuilder::new()
        .set_quantiles(QUANTILES)?
        .set_bucket_duration(SUMMARY_WINDOW.1)?;
    if let Some(count) = std::num::NonZeroU32::new(SUMMARY_WINDOW.0) {
        b = b.set_bucket_count(count);
    }
    for name in histograms {
        b = b.set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full((*name).to_owned()),
            LATENCY_BUCKETS_MS,
        )?;
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_declares_its_namespace_dimensions_and_units() {
        let line: serde_json::Value = serde_json::from_str(
            &Emf::new(&[&["Action"], &[]])
                .with("Action", "SignUp")
                .metric(names::PROXY_LATENCY_MS, Unit::Milliseconds, 1.5)
                .line(),
        )
        .unwrap();
        let d = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "CognitoRelay");
        assert_eq!(d["Dimensions"], serde_json::json!([["Action"], []]));
        assert_eq!(
            d["Metrics"],
            serde_json::json!([{"Name": "ProxyLatencyMs", "Unit": "Milliseconds"}])
        );
        assert_eq!(
            (&line["Action"], &line["ProxyLatencyMs"]),
            (&serde_json::json!("SignUp"), &serde_json::json!(1.5))
        );
    }

    /// The CognitoRelay metric names a file of the CDK app or relayctl reads.
    fn read_by(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                read_by(&p, out);
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            let file = p.display().to_string();
            // relayMetric('X' / relay('X' (CDK helpers over METRIC_NAMESPACE), the dashboard's
            // SEARCH MetricName="X", metricName: 'X' next to METRIC_NAMESPACE, relayctl's
            // CloudWatch queries ("id", "X", "stat").
            for (open, close) in [
                ("relayMetric('", "'"),
                ("relay('", "'"),
                ("perAction('", "'"),
                ("MetricName=\\\"", "\\\""),
            ] {
                for part in text.split(open).skip(1) {
                    if let Some(name) = part.split(close).next() {
                        out.push((file.clone(), name.to_owned()));
                    }
                }
            }
            for line in text.lines() {
                if line.contains("METRIC_NAMESPACE") && line.contains("metricName: '") {
                    if let Some(name) = line
                        .split("metricName: '")
                        .nth(1)
                        .and_then(|s| s.split('\'').next())
                    {
                        out.push((file.clone(), name.to_owned()));
                    }
                }
            }
        }
    }

    #[test]
    fn every_metric_the_cdk_app_and_relayctl_read_is_one_the_binaries_emit() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut read = Vec::new();
        read_by(&root.join("cdk/lib"), &mut read);
        let cdk = read.len();
        let relayctl =
            std::fs::read_to_string(root.join("crates/relayctl/src/cloudwatch.rs")).unwrap();
        for line in relayctl.lines() {
            let t = line.trim();
            if t.starts_with("(\"") && t.ends_with("),") {
                if let Some(name) = t.split('"').nth(3) {
                    read.push(("relayctl cloudwatch.rs".into(), name.to_owned()));
                }
            }
        }
        assert!(
            cdk >= 3 && read.len() > cdk,
            "the scan found the readers: {read:?}"
        );
        let unknown: Vec<_> = read
            .iter()
            .filter(|(_, n)| {
                !n.is_empty()
                    && n.chars().all(char::is_alphanumeric)
                    && !names::ALL.contains(&n.as_str())
            })
            .collect();
        assert!(unknown.is_empty(), "read but never emitted: {unknown:?}");
        assert!(relayctl.contains(&format!("NAMESPACE: &str = \"{NAMESPACE}\"")));
        let config = std::fs::read_to_string(root.join("cdk/lib/config.ts")).unwrap();
        assert!(config.contains(&format!("METRIC_NAMESPACE = '{NAMESPACE}'")));
    }

    #[test]
    fn the_prometheus_exposition_keeps_the_names_and_quantiles_relayctl_reads() {
        let rec = prometheus(&["relay_proxy_latency_ms"]);
        metrics::with_local_recorder(&rec, || {
            metrics::counter!("relay_replication_fallback_total").increment(12);
            metrics::histogram!("relay_replication_lag_ms").record(7.0);
            metrics::histogram!("relay_proxy_latency_ms", "action" => "SignUp").record(3.0);
        });
        let text = rec.handle().render();
        for line in [
            "relay_replication_fallback_total 12",
            "relay_replication_lag_ms{quantile=\"0.99\"} ",
            "relay_replication_lag_ms_count 1",
            "relay_proxy_latency_ms_bucket{action=\"SignUp\",le=\"5\"} 1",
            "relay_proxy_latency_ms_sum{action=\"SignUp\"} 3",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
