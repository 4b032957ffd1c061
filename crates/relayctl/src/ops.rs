//! status, drain/undrain, DLQ list and redrive.

use std::time::Duration;

use relay_aws::queue::Queues;
use relay_aws::DrainSwitch;
use replication::Header;
use serde::Serialize;
use serde_json::json;

use crate::config::{Deployment, Region};

#[derive(Debug, Serialize)]
struct RegionStatus {
    region: String,
    role: String,
    health: String,
    health_reason: Option<String>,
    drained: Option<bool>,
    backlog: Option<u64>,
    in_flight: Option<u64>,
    dlq: Option<u64>,
    fallback: Option<u64>,
    lost: Option<u64>,
    lag_p99_ms: Option<f64>,
    /// Where LOST and LAG come from: `prometheus` (standalone processes' `/metrics`) or
    /// `cloudwatch` (the Lambda deployment: the EMF metrics over `--window`).
    metrics_source: &'static str,
    /// The region's CloudWatch numbers (Lambda deployment only).
    cloudwatch: Option<crate::cloudwatch::RegionMetrics>,
    /// What this region's processes wait for (proxy: from /health; standalone replicator: from
    /// its /metrics): a process that is recovering, not a dead one.
    waiting: Vec<ProcessWaiting>,
    errors: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ProcessWaiting {
    process: &'static str,
    dependency: String,
    /// RFC 3339 UTC.
    since: String,
    /// Seconds since then.
    for_s: u64,
    error: Option<String>,
}

impl ProcessWaiting {
    fn new(
        process: &'static str,
        dependency: String,
        since_ms: u64,
        error: Option<String>,
    ) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self {
            process,
            dependency,
            since: relay_aws::liveness::rfc3339(since_ms),
            for_s: now.saturating_sub(since_ms) / 1000,
            error,
        }
    }
    fn line(&self) -> String {
        let last = self
            .error
            .as_deref()
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default();
        format!(
            "{}: waiting for {} since {} ({} s{last})",
            self.process, self.dependency, self.since, self.for_s
        )
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("http client")
}

/// A counter or gauge from a Prometheus text page (first matching line).
pub(crate) fn scrape(text: &str, metric: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(metric))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn region_status(r: &Region, window_minutes: u64) -> RegionStatus {
    let mut s = RegionStatus {
        region: r.name.clone(),
        role: r.role.clone(),
        health: "unknown".into(),
        health_reason: None,
        drained: None,
        backlog: None,
        in_flight: None,
        dlq: None,
        fallback: None,
        lost: None,
        lag_p99_ms: None,
        metrics_source: if r.replicator_metrics_url.is_some() {
            "prometheus"
        } else {
            "cloudwatch"
        },
        cloudwatch: None,
        waiting: vec![],
        errors: vec![],
    };
    let client = http();
    match client.get(&r.health_url).send().await {
        Ok(resp) => {
            let code = resp.status().as_u16();
            let body: serde_json::Value = resp
                .text()
                .await
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            s.health = if code == 200 {
                "ok".into()
            } else {
                format!("UNHEALTHY ({code})")
            };
            s.health_reason = body
                .get("reason")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            for w in body
                .get("waiting")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                let dep = w
                    .get("dependency")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?")
                    .to_owned();
                let since = w.get("since_ms").and_then(|v| v.as_u64()).unwrap_or(0);
                s.waiting.push(ProcessWaiting::new(
                    "proxy",
                    dep,
                    since,
                    w.get("error").and_then(|v| v.as_str()).map(str::to_owned),
                ));
            }
        }
        Err(_) => s.health = "UNREACHABLE".into(),
    }
    let sdk = r.sdk().await;
    if r.replicator_metrics_url.is_none() {
        match crate::cloudwatch::read(&sdk, window_minutes).await {
            Ok(m) => {
                s.lag_p99_ms = m.lag_p99_ms;
                s.lost = m.lost;
                s.cloudwatch = Some(m);
            }
            Err(e) => s.errors.push(e),
        }
    } else if let Some(base) = r.health_url.strip_suffix("/health") {
        if let Ok(resp) = client.get(format!("{base}/metrics")).send().await {
            if let Ok(text) = resp.text().await {
                s.lost = scrape(&text, "relay_replication_lost_total").map(|v| v as u64);
            }
        }
    }
    if let Some(url) = &r.replicator_metrics_url {
        match client.get(url).send().await {
            Ok(resp) => {
                if let Ok(text) = resp.text().await {
                    s.lag_p99_ms = scrape(&text, "relay_replication_lag_ms{quantile=\"0.99\"}");
                    for (dep, since) in relay_aws::liveness::parse_prometheus(&text) {
                        s.waiting.push(ProcessWaiting::new(
                            "replicator",
                            dep,
                            (since * 1000.0) as u64,
                            None,
                        ));
                    }
                }
            }
            // A waiting replicator still answers /metrics: no answer means it is not running.
            Err(_) => s
                .errors
                .push("replicator: /metrics does not answer (not running?)".into()),
        }
    }
    match DrainSwitch::new(&sdk, &r.drain_parameter).get().await {
        Ok(d) => s.drained = Some(d),
        Err(e) => s.errors.push(e.to_string()),
    }
    let q = Queues::new(&sdk);
    match q.depth(&r.inbound_queue_url).await {
        Ok(d) => {
            s.backlog = Some(d.visible);
            s.in_flight = Some(d.in_flight);
        }
        Err(e) => s.errors.push(format!("inbound: {e}")),
    }
    match q.depth(&r.dlq_url).await {
        Ok(d) => s.dlq = Some(d.visible + d.in_flight),
        Err(e) => s.errors.push(format!("dlq: {e}")),
    }
    if let Some(f) = &r.fallback_queue_url {
        match q.depth(f).await {
            Ok(d) => s.fallback = Some(d.visible + d.in_flight),
            Err(e) => s.errors.push(format!("fallback: {e}")),
        }
    }
    s
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or("?".into(), ToString::to_string)
}

/// Exit code 0 when all is well, 3 when something needs attention.
pub async fn status(cfg: &Deployment, window_minutes: u64, as_json: bool) -> Result<i32, String> {
    let mut all = vec![];
    for r in &cfg.regions {
        all.push(region_status(r, window_minutes).await);
    }
    let attention = all.iter().any(|s| {
        s.health != "ok"
            || s.dlq.unwrap_or(0) > 0
            || s.lost.unwrap_or(0) > 0
            || s.fallback.unwrap_or(0) > 0
            || !s.errors.is_empty()
            || !s.waiting.is_empty()
    });
    if as_json {
        out!("{}", json!({ "regions": all, "attention": attention }));
    } else {
        out!(
            "{:<16} {:<8} {:<18} {:<6} {:>8} {:>9} {:>5} {:>9} {:>5} {:>12}",
            "REGION",
            "ROLE",
            "HEALTH",
            "DRAIN",
            "BACKLOG",
            "IN-FLIGHT",
            "DLQ",
            "FALLBACK",
            "LOST",
            "LAG p99 ms"
        );
        for s in &all {
            let drain = match s.drained {
                Some(true) => "ON",
                Some(false) => "off",
                None => "?",
            };
            out!(
                "{:<16} {:<8} {:<18} {:<6} {:>8} {:>9} {:>5} {:>9} {:>5} {:>12}",
                s.region,
                s.role,
                s.health,
                drain,
                opt(&s.backlog),
                opt(&s.in_flight),
                opt(&s.dlq),
                opt(&s.fallback),
                opt(&s.lost),
                opt(&s.lag_p99_ms)
            );
        }
        let cw: Vec<_> = all
            .iter()
            .filter_map(|s| s.cloudwatch.as_ref().map(|m| (s.region.as_str(), m)))
            .collect();
        if let Some((_, first)) = cw.first() {
            out!(
                "CloudWatch (namespace {}, last {} min; - = no datapoint):",
                crate::cloudwatch::NAMESPACE,
                first.window_s / 60
            );
            out!(
                "{:<16} {:>10} {:>5} {:>13} {:>18} {:>16} {:>21} {:>12}",
                "REGION",
                "LAG p99 ms",
                "LOST",
                "FALLBACK SENT",
                "FALLBACK FORWARDED",
                "COGNITO THROTTLED",
                "APPLY RETRIES",
                "APPLY FAILED"
            );
            let dash = |v: &Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
            for (region, m) in &cw {
                out!(
                    "{:<16} {:>10} {:>5} {:>13} {:>18} {:>16} {:>21} {:>12}",
                    region,
                    m.lag_p99_ms.map_or("-".to_owned(), |v| format!("{v:.0}")),
                    dash(&m.lost),
                    dash(&m.fallback_sent),
                    dash(&m.fallback_forwarded),
                    dash(&m.throttled),
                    dash(&m.apply_retries),
                    dash(&m.apply_failed)
                );
            }
            for (region, m) in &cw {
                if m.bridge_srp_sign_ins.is_some()
                    || m.bridge_refusals.is_some()
                    || m.bridge_refreshes.is_some()
                {
                    out!(
                        "{region} bridge: {} SRP sign-in(s), {} session(s) continued, {} refusal(s)",
                        dash(&m.bridge_srp_sign_ins),
                        dash(&m.bridge_refreshes),
                        dash(&m.bridge_refusals)
                    );
                }
            }
        }
        for s in &all {
            if let Some(r) = &s.health_reason {
                out!("{}: {r}", s.region);
            }
            for w in &s.waiting {
                out!("{} {}", s.region, w.line());
            }
            for e in &s.errors {
                out!("{}: error: {e}", s.region);
            }
        }
        out!(
            "{}",
            if attention {
                "ATTENTION: see above"
            } else {
                "all good"
            }
        );
    }
    Ok(if attention { 3 } else { 0 })
}

pub async fn set_drain(
    cfg: &Deployment,
    region: &str,
    drained: bool,
    as_json: bool,
) -> Result<i32, String> {
    let r = cfg.region(region)?;
    let sw = DrainSwitch::new(&r.sdk().await, &r.drain_parameter);
    sw.set(drained).await?;
    let now = sw.get().await?;
    if as_json {
        out!("{}", json!({"region": r.name, "drained": now}));
    } else {
        out!(
            "{}: drain switch {} (proxies see it within their control cache, 5 s by default; /health then answers {})",
            r.name,
            if now { "ON" } else { "off" },
            if now { 503 } else { 200 }
        );
    }
    Ok(0)
}

pub async fn dlq_list(
    cfg: &Deployment,
    region: &str,
    max: usize,
    as_json: bool,
) -> Result<i32, String> {
    let r = cfg.region(region)?;
    let q = Queues::new(&r.sdk().await);
    let mut rows = vec![];
    // Messages become visible again after the 30 s this listing holds them.
    while rows.len() < max {
        let batch = q.receive(&r.dlq_url, 10, 0, Some(30)).await?;
        if batch.is_empty() {
            break;
        }
        for m in batch {
            // The event itself is sealed; its routing fields name it without personal data.
            let (event_id, action, op) = match Header::peek(&m.body) {
                Ok(h) => (h.id, h.action, "sealed".to_owned()),
                Err(_) => ("-".into(), "-".into(), "unreadable".into()),
            };
            rows.push(json!({"message_id": m.message_id, "event_id": event_id, "action": action, "op": op, "group": m.group_id, "reason": m.reason, "sent_ms": m.sent_ms}));
        }
    }
    if as_json {
        out!("{}", json!({"region": r.name, "events": rows}));
    } else {
        out!("{} DLQ: {} event(s)", r.name, rows.len());
        for row in &rows {
            out!(
                "  {}  {:<24} {:<18} {}",
                row["event_id"].as_str().unwrap_or("-"),
                row["action"].as_str().unwrap_or("-"),
                row["op"].as_str().unwrap_or("-"),
                row["reason"].as_str().unwrap_or("(no reason recorded)")
            );
        }
    }
    Ok(0)
}

pub async fn dlq_redrive(
    cfg: &Deployment,
    region: &str,
    max: usize,
    as_json: bool,
) -> Result<i32, String> {
    let r = cfg.region(region)?;
    let q = Queues::new(&r.sdk().await);
    let (mut moved, mut skipped) = (0usize, 0usize);
    while moved + skipped < max {
        let batch = q.receive(&r.dlq_url, 10, 0, Some(60)).await?;
        if batch.is_empty() {
            break;
        }
        for m in batch {
            match Header::peek(&m.body) {
                Ok(h) => {
                    // The body is resent unchanged (same event id and order key, still sealed),
                    // with a new dedup id: SQS would drop a resend with the original id inside
                    // its 5-minute window. A stale event redriven is skipped by the replicator.
                    q.send(
                        &r.inbound_queue_url,
                        &m.body,
                        &h.group,
                        &format!("{}-redrive-{}", h.id, m.message_id),
                        None,
                    )
                    .await?;
                    q.delete(&r.dlq_url, &m.receipt_handle).await?;
                    moved += 1;
                }
                Err(_) => skipped += 1,
            }
        }
    }
    if as_json {
        out!(
            "{}",
            json!({"region": r.name, "redriven": moved, "left_unreadable": skipped})
        );
    } else {
        out!("{}: redrove {moved} event(s) to the inbound queue; {skipped} unreadable left in the DLQ", r.name);
    }
    Ok(0)
}
