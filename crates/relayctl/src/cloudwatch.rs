//! The relay's numbers on the Lambda deployment: what the proxy and replicator Lambdas publish
//! as CloudWatch Embedded Metric Format lines (namespace `CognitoRelay`), read back with
//! `GetMetricData`.
//!
//! The EMF lines of the proxy (`crates/proxy/src/metrics.rs`) and the replicator
//! (`crates/replicator/src/lib.rs`) declare two dimension sets, `[Action]` and `[]`, so every
//! metric also exists without dimensions: the region's total. That is what is read here, one
//! number per metric over the whole window (Period = window), so nothing is counted twice.
//! A metric with no datapoint in the window is `None` (nothing happened, or nothing emits it
//! in this deployment), never a made-up zero.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::types::{Metric, MetricDataQuery, MetricStat};
use aws_smithy_types::DateTime;
use serde::Serialize;

/// The namespace the EMF lines publish into.
pub const NAMESPACE: &str = "CognitoRelay";

/// What one region's Lambdas reported over the window.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RegionMetrics {
    /// Length of the window, seconds (the window ends at the next full minute).
    pub window_s: u64,
    /// p99 of `ReplicationLagMs`: apply time on this region's pool minus the origin's success.
    pub lag_p99_ms: Option<f64>,
    /// `ReplicationLost`: mutations this region's proxy could neither send nor set aside.
    pub lost: Option<u64>,
    /// `ReplicationFallback`: mutations this region's proxy wrote to its fallback queue.
    pub fallback_sent: Option<u64>,
    /// `FallbackForwarded`: fallback events forwarded to the peer's inbound queue.
    pub fallback_forwarded: Option<u64>,
    /// `CognitoThrottled`: Cognito throttled a call of this region's proxy or replicator (both
    /// emit the same name; the dimensionless series is their sum).
    pub throttled: Option<u64>,
    /// `ApplyRetries`: Cognito calls the replicator's in-process backoff repeated.
    pub apply_retries: Option<u64>,
    /// `ReplicationFailed`: events the replicator could not apply (each attempt).
    pub apply_failed: Option<u64>,
    /// `BridgeSrpSignIns` (standby sign-in bridge), when the deployment has the bridge.
    pub bridge_srp_sign_ins: Option<u64>,
    /// `BridgeRefusals` (standby sign-in bridge), when the deployment has the bridge.
    pub bridge_refusals: Option<u64>,
    /// `BridgeRefreshes`: sessions of the other region continued here (standby sign-in bridge).
    pub bridge_refreshes: Option<u64>,
}

/// One query: (query id, metric name, statistic).
const QUERIES: &[(&str, &str, &str)] = &[
    ("lag", "ReplicationLagMs", "p99"),
    ("lost", "ReplicationLost", "Sum"),
    ("fallback", "ReplicationFallback", "Sum"),
    ("forwarded", "FallbackForwarded", "Sum"),
    ("throttled", "CognitoThrottled", "Sum"),
    ("retries", "ApplyRetries", "Sum"),
    ("failed", "ReplicationFailed", "Sum"),
    ("srp", "BridgeSrpSignIns", "Sum"),
    ("refused", "BridgeRefusals", "Sum"),
    ("refreshes", "BridgeRefreshes", "Sum"),
];

/// Start and end of a window of `minutes` ending at the next full minute.
fn window(minutes: u64) -> (u64, u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let end = (now / 60 + 1) * 60;
    (end - minutes.max(1) * 60, end)
}

/// Reads the region's totals over the last `minutes` (rounded up to whole minutes).
pub async fn read(sdk: &aws_config::SdkConfig, minutes: u64) -> Result<RegionMetrics, String> {
    let client = aws_sdk_cloudwatch::Client::new(sdk);
    let (start, end) = window(minutes);
    let period = i32::try_from(end - start).map_err(|_| "window too long".to_owned())?;
    let queries: Vec<MetricDataQuery> = QUERIES
        .iter()
        .map(|(id, name, stat)| {
            MetricDataQuery::builder()
                .id(*id)
                .metric_stat(
                    MetricStat::builder()
                        .metric(
                            Metric::builder()
                                .namespace(NAMESPACE)
                                .metric_name(*name)
                                .build(),
                        )
                        .period(period)
                        .stat(*stat)
                        .build(),
                )
                .return_data(true)
                .build()
        })
        .collect();
    // One period per query over the whole window: a handful of values, never a second page.
    let page = client
        .get_metric_data()
        .start_time(DateTime::from_secs(start as i64))
        .end_time(DateTime::from_secs(end as i64))
        .set_metric_data_queries(Some(queries))
        .send()
        .await
        .map_err(|e| format!("CloudWatch GetMetricData: {}", relay_aws::describe(&e)))?;
    let mut values: std::collections::HashMap<String, Vec<f64>> = Default::default();
    for r in page.metric_data_results() {
        if let Some(id) = r.id() {
            values
                .entry(id.to_owned())
                .or_default()
                .extend(r.values().iter().copied());
        }
    }
    let sum = |id: &str| -> Option<u64> {
        values
            .get(id)
            .filter(|v| !v.is_empty())
            .map(|v| v.iter().sum::<f64>().max(0.0).round() as u64)
    };
    // One period covers the window, so there is at most one value; if CloudWatch split it,
    // the worst period is the honest p99.
    let lag = values
        .get("lag")
        .filter(|v| !v.is_empty())
        .map(|v| v.iter().copied().fold(f64::MIN, f64::max));
    Ok(RegionMetrics {
        window_s: end - start,
        lag_p99_ms: lag,
        lost: sum("lost"),
        fallback_sent: sum("fallback"),
        fallback_forwarded: sum("forwarded"),
        throttled: sum("throttled"),
        apply_retries: sum("retries"),
        apply_failed: sum("failed"),
        bridge_srp_sign_ins: sum("srp"),
        bridge_refusals: sum("refused"),
        bridge_refreshes: sum("refreshes"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_ends_on_a_full_minute_after_now() {
        let (start, end) = window(15);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        assert_eq!(end % 60, 0);
        assert!(end > now && end - now <= 60);
        assert_eq!(end - start, 900);
    }

    #[test]
    fn query_ids_are_unique_and_lowercase_as_cloudwatch_requires() {
        let mut ids: Vec<_> = QUERIES.iter().map(|q| q.0).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), QUERIES.len());
        assert!(ids
            .iter()
            .all(|i| i.chars().next().is_some_and(|ch| ch.is_ascii_lowercase())));
    }
}
