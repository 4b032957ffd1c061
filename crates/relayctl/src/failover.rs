//! `relayctl failover` and `relayctl failback`: a planned move of traffic between the regions,
//! guided step by step, each step with its own exit code ([`exit`]).
//!
//! Failover (primary → standby): preflight (the standby is healthy; nothing bound for it is
//! still waiting in its inbound queue or in the primary's fallback queue; its DLQ is empty;
//! replication lag into it is under the threshold), then the primary's drain switch goes on,
//! then relayctl waits until the primary's `/health` answers 503 and Route 53's health checks
//! see the primary unhealthy and the standby healthy.
//!
//! Failback (standby → primary): preflight (the primary is healthy apart from its drain;
//! nothing bound for it is waiting — its inbound queue and the standby's fallback queue; its
//! DLQ is empty; lag into it is under the threshold), then the primary's drain switch goes off,
//! then relayctl waits for its `/health` to answer 200 and Route 53 to see it healthy.
//!
//! `--dry-run` prints the plan and the preflight results as they are now (no waiting) and
//! changes nothing; its exit code is the one the real run's preflight would give now.

use std::time::{Duration, Instant};

use relay_aws::queue::Queues;
use relay_aws::DrainSwitch;
use serde::Serialize;
use serde_json::json;

use crate::config::{Deployment, Region};
use crate::health::{self, ProxyHealth, Route53View};

/// Exit codes of `failover` / `failback`, one per step that can fail (also in `--help` and
/// `runbooks/README.md`).
pub mod exit {
    /// The region that is to serve is not healthy (its `/health`, or Route 53's check).
    pub const NOT_HEALTHY: i32 = 10;
    /// Replication events bound for the region that is to serve are still waiting.
    pub const BACKLOG: i32 = 11;
    /// The DLQ of the region that is to serve is not empty.
    pub const DLQ: i32 = 12;
    /// Replication lag into the region that is to serve is over `--max-lag-ms`, or unreadable.
    pub const LAG: i32 = 13;
    /// The drain switch could not be set.
    pub const SWITCH: i32 = 14;
    /// The proxies did not take the switch: `/health` did not change within `--timeout`.
    pub const HEALTH_UNCHANGED: i32 = 15;
    /// Route 53's view did not flip within `--timeout`.
    pub const ROUTE53_UNCHANGED: i32 = 16;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Failover,
    Failback,
}

impl Move {
    fn name(self) -> &'static str {
        match self {
            Move::Failover => "failover",
            Move::Failback => "failback",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub primary: Option<String>,
    pub standby: Option<String>,
    pub dry_run: bool,
    pub allow_backlog: bool,
    pub allow_dlq: bool,
    pub max_lag_ms: f64,
    /// How long the preflight waits for the backlog to reach 0.
    pub catch_up: Duration,
    /// How long each wait after the switch may take (proxies, then Route 53).
    pub timeout: Duration,
    /// CloudWatch window for the lag check, minutes.
    pub metrics_minutes: u64,
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct StepReport {
    step: usize,
    title: String,
    /// ok, failed, acknowledged, planned (dry run: not run).
    outcome: &'static str,
    detail: String,
    seconds: f64,
}

/// The progress display: a numbered line per step on stdout, each observation while waiting
/// (printed when it changes), and a spinner on stderr when that is a terminal.
struct Progress {
    json: bool,
    total: usize,
    n: usize,
    started: Instant,
    steps: Vec<StepReport>,
}

impl Progress {
    fn begin(&mut self, title: &str) {
        self.n += 1;
        self.started = Instant::now();
        if !self.json {
            out!("[{}/{}] {title}", self.n, self.total);
        }
        self.steps.push(StepReport {
            step: self.n,
            title: title.to_owned(),
            outcome: "running",
            detail: String::new(),
            seconds: 0.0,
        });
    }
    fn note(&self, line: &str) {
        if !self.json {
            out!("      {line}");
        }
    }
    fn end(&mut self, outcome: &'static str, detail: String) {
        let secs = self.started.elapsed().as_secs_f64();
        if !self.json {
            let tag = match outcome {
                "ok" => "ok",
                "failed" => "FAILED",
                "acknowledged" => "ACKNOWLEDGED",
                other => other,
            };
            out!("      {tag} ({secs:.1} s): {detail}");
        }
        if let Some(s) = self.steps.last_mut() {
            s.outcome = outcome;
            s.detail = detail;
            s.seconds = (secs * 10.0).round() / 10.0;
        }
    }
}

fn spinner(json: bool) -> indicatif::ProgressBar {
    if json {
        return indicatif::ProgressBar::hidden();
    }
    let pb =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    pb.set_style(
        indicatif::ProgressStyle::with_template("      {spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// Polls `probe` every second until it reports done or `timeout` passes; prints each new
/// observation. Returns the last observation and whether it was done.
async fn wait_for<F, Fut>(p: &Progress, timeout: Duration, mut probe: F) -> (bool, String)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (bool, String)>,
{
    let pb = spinner(p.json);
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let (done, seen) = probe().await;
        if seen != last {
            pb.suspend(|| {
                p.note(&format!(
                    "{:>5.1} s  {seen}",
                    p.started.elapsed().as_secs_f64()
                ))
            });
            pb.set_message(seen.clone());
            last = seen;
        }
        if done || Instant::now() >= deadline {
            pb.finish_and_clear();
            return (done, last);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What is bound for `serving` and not applied yet: its inbound queue (waiting + in flight)
/// and the other region's fallback queue.
async fn backlog(serving: &Region, other: &Region) -> Result<(u64, String), String> {
    let q = Queues::new(&serving.sdk().await);
    let inbound = q
        .depth(&serving.inbound_queue_url)
        .await
        .map_err(|e| format!("{} inbound queue: {e}", serving.name))?;
    let mut total = inbound.visible + inbound.in_flight;
    let mut detail = format!(
        "{} inbound: {} waiting, {} in flight",
        serving.name, inbound.visible, inbound.in_flight
    );
    if let Some(f) = &other.fallback_queue_url {
        let d = Queues::new(&other.sdk().await)
            .depth(f)
            .await
            .map_err(|e| format!("{} fallback queue: {e}", other.name))?;
        total += d.visible + d.in_flight;
        detail += &format!("; {} fallback: {}", other.name, d.visible + d.in_flight);
    }
    Ok((total, detail))
}

async fn dlq(r: &Region) -> Result<u64, String> {
    let d = Queues::new(&r.sdk().await)
        .depth(&r.dlq_url)
        .await
        .map_err(|e| format!("{} DLQ: {e}", r.name))?;
    Ok(d.visible + d.in_flight)
}

/// p99 replication lag into `r`: from its standalone replicator's `/metrics`, else from
/// CloudWatch over the last `minutes`. `Ok(None)`: no event was applied (nothing to measure).
pub async fn lag_p99(r: &Region, minutes: u64) -> Result<(Option<f64>, String), String> {
    if let Some(url) = &r.replicator_metrics_url {
        let text = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| e.to_string())?
            .get(url)
            .send()
            .await
            .map_err(|_| format!("{} replicator /metrics does not answer", r.name))?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let v = crate::ops::scrape(&text, "relay_replication_lag_ms{quantile=\"0.99\"}");
        return Ok((v.filter(|v| v.is_finite()), "replicator /metrics".into()));
    }
    let m = crate::cloudwatch::read(&r.sdk().await, minutes).await?;
    Ok((m.lag_p99_ms, format!("CloudWatch, last {minutes} min")))
}

struct Check {
    code: i32,
    ok: bool,
    detail: String,
}

fn route53_line(v: &Result<Option<Route53View>, String>) -> String {
    match v {
        Ok(Some(v)) => v.line(),
        Ok(None) => "no Route 53 health check configured".into(),
        Err(e) => e.clone(),
    }
}

/// Is `serving` fit to take the traffic? Failover: `/health` 200. Failback: 200, or 503 only
/// because of its drain (the pool answers). And Route 53's check (if configured) must be
/// healthy — for a failback only once the drain is off, so it is not looked at here.
async fn serving_fit(cfg: &Deployment, mv: Move, serving: &Region) -> Check {
    let h = health::proxy(serving).await;
    let proxy_ok = match mv {
        Move::Failover => h.ok(),
        Move::Failback => {
            h.ok()
                || (h.status == Some(503)
                    && h.drained == Some(true)
                    && h.pool.as_deref() == Some("ok"))
        }
    };
    if !proxy_ok {
        return Check {
            code: exit::NOT_HEALTHY,
            ok: false,
            detail: format!("{} {}", serving.name, h.line()),
        };
    }
    if mv == Move::Failback {
        return Check {
            code: 0,
            ok: true,
            detail: format!("{} {} (pool answers)", serving.name, h.line()),
        };
    }
    let r53 = health::route53(cfg, serving).await;
    let ok = matches!(&r53, Ok(None) | Ok(Some(Route53View { healthy: true, .. })));
    Check {
        code: if ok { 0 } else { exit::NOT_HEALTHY },
        ok,
        detail: format!("{} {}; {}", serving.name, h.line(), route53_line(&r53)),
    }
}

fn plan(mv: Move, leaving: &Region, serving: &Region, o: &Options) -> Vec<String> {
    let switch = match mv {
        Move::Failover => format!(
            "drain {}: SSM parameter {} = true in {}",
            leaving.name, leaving.drain_parameter, leaving.name
        ),
        Move::Failback => format!(
            "undrain {}: SSM parameter {} = false in {}",
            serving.name, serving.drain_parameter, serving.name
        ),
    };
    let (health_wait, r53_wait) = match mv {
        Move::Failover => (
            format!("wait until {}'s /health answers 503", leaving.name),
            format!(
                "wait until Route 53 sees {} unhealthy and {} healthy",
                leaving.name, serving.name
            ),
        ),
        Move::Failback => (
            format!("wait until {}'s /health answers 200", serving.name),
            format!("wait until Route 53 sees {} healthy", serving.name),
        ),
    };
    let fit = match mv {
        Move::Failover => format!("preflight: {} is healthy (/health 200, Route 53 check healthy)", serving.name),
        Move::Failback => format!(
            "preflight: {} is healthy apart from its drain (/health 200, or 503 drained with the pool answering)",
            serving.name
        ),
    };
    vec![
        fit,
        format!(
            "preflight: nothing bound for {} is waiting ({}'s inbound queue, {}'s fallback queue){}",
            serving.name,
            serving.name,
            leaving.name,
            if o.allow_backlog { " [--allow-backlog: go on anyway]" } else { "" }
        ),
        format!(
            "preflight: {}'s DLQ is empty{}",
            serving.name,
            if o.allow_dlq { " [--allow-dlq: go on anyway]" } else { "" }
        ),
        format!(
            "preflight: replication lag p99 into {} <= {} ms",
            serving.name, o.max_lag_ms
        ),
        switch,
        format!("{health_wait} (up to {} s)", o.timeout.as_secs()),
        format!("{r53_wait} (up to {} s)", o.timeout.as_secs()),
    ]
}

/// Runs a failover or failback. Returns the exit code.
pub async fn run(cfg: &Deployment, mv: Move, o: &Options) -> Result<i32, String> {
    let primary = match &o.primary {
        Some(n) => cfg.region(n)?,
        None => cfg.by_role("primary")?,
    };
    let standby = match &o.standby {
        Some(n) => cfg.region(n)?,
        None => cfg.by_role("standby")?,
    };
    if primary.name == standby.name {
        return Err(format!("primary and standby are both {}", primary.name));
    }
    let (leaving, serving) = match mv {
        Move::Failover => (primary, standby),
        Move::Failback => (standby, primary),
    };
    let steps = plan(mv, leaving, serving, o);
    let mut p = Progress {
        json: o.json,
        total: steps.len(),
        n: 0,
        started: Instant::now(),
        steps: vec![],
    };
    if !o.json {
        out!(
            "relayctl {}: traffic from {} to {}{}",
            mv.name(),
            leaving.name,
            serving.name,
            if o.dry_run {
                " -- DRY RUN: nothing will be changed"
            } else {
                ""
            }
        );
        out!("plan:");
        for (i, s) in steps.iter().enumerate() {
            out!("  {}. {s}", i + 1);
        }
        if o.dry_run {
            out!("preflight as of now:");
        }
    }
    let code = steps_run(cfg, mv, o, leaving, serving, &steps, &mut p).await;
    if o.json {
        out!(
            "{}",
            json!({"command": mv.name(), "from": leaving.name, "to": serving.name, "dry_run": o.dry_run,
                   "plan": steps, "steps": p.steps, "exit_code": code})
        );
    } else if o.dry_run {
        out!(
            "dry run: {} (exit {code}); nothing was changed",
            if code == 0 {
                "preflight passes"
            } else {
                "preflight FAILS"
            }
        );
    } else if code == 0 {
        out!("{} done: {} serves", mv.name(), serving.name);
    } else {
        out!("{} stopped at step {} (exit {code})", mv.name(), p.n);
    }
    Ok(code)
}

async fn steps_run(
    cfg: &Deployment,
    mv: Move,
    o: &Options,
    leaving: &Region,
    serving: &Region,
    steps: &[String],
    p: &mut Progress,
) -> i32 {
    // 1. The serving region is fit.
    p.begin(&steps[0]);
    let fit = serving_fit(cfg, mv, serving).await;
    if !fit.ok {
        p.end("failed", fit.detail);
        return fit.code;
    }
    p.end("ok", fit.detail);

    // 2. Backlog bound for the serving region (waits up to --catch-up in a real run).
    p.begin(&steps[1]);
    let catch_up = if o.dry_run {
        Duration::ZERO
    } else {
        o.catch_up
    };
    let mut err = None;
    let (empty, seen) = wait_for(p, catch_up, move || async move {
        match backlog(serving, leaving).await {
            Ok((n, d)) => (n == 0, format!("{n} event(s) waiting: {d}")),
            Err(e) => (false, format!("cannot read: {e}")),
        }
    })
    .await;
    if seen.starts_with("cannot read") {
        err = Some(seen.clone());
    }
    if !empty {
        if o.allow_backlog && err.is_none() {
            p.end("acknowledged", format!("{seen} (--allow-backlog)"));
        } else {
            p.end("failed", seen);
            return exit::BACKLOG;
        }
    } else {
        p.end("ok", seen);
    }

    // 3. DLQ.
    p.begin(&steps[2]);
    match dlq(serving).await {
        Ok(0) => p.end("ok", format!("{} DLQ: 0", serving.name)),
        Ok(n) if o.allow_dlq => p.end(
            "acknowledged",
            format!(
                "{} DLQ: {n} event(s) (--allow-dlq; see runbooks/dlq-redrive.md)",
                serving.name
            ),
        ),
        Ok(n) => {
            p.end(
                "failed",
                format!(
                    "{} DLQ: {n} event(s); see runbooks/dlq-redrive.md, or pass --allow-dlq",
                    serving.name
                ),
            );
            return exit::DLQ;
        }
        Err(e) => {
            p.end("failed", format!("cannot read: {e}"));
            return exit::DLQ;
        }
    }

    // 4. Lag.
    p.begin(&steps[3]);
    match lag_p99(serving, o.metrics_minutes).await {
        Ok((Some(ms), src)) if ms <= o.max_lag_ms => {
            p.end("ok", format!("lag p99 {ms:.0} ms ({src})"))
        }
        Ok((None, src)) => p.end(
            "ok",
            format!("no event applied recently, nothing lags ({src})"),
        ),
        Ok((Some(ms), src)) => {
            p.end(
                "failed",
                format!(
                    "lag p99 {ms:.0} ms > {} ms ({src}); wait, or raise --max-lag-ms",
                    o.max_lag_ms
                ),
            );
            return exit::LAG;
        }
        Err(e) => {
            p.end("failed", format!("cannot read the lag: {e}"));
            return exit::LAG;
        }
    }

    if o.dry_run {
        for s in &steps[4..] {
            p.begin(s);
            p.end("planned", "not run (dry run)".into());
        }
        return 0;
    }

    // 5. The switch.
    p.begin(&steps[4]);
    let (target, drained) = match mv {
        Move::Failover => (leaving, true),
        Move::Failback => (serving, false),
    };
    let sw = DrainSwitch::new(&target.sdk().await, &target.drain_parameter);
    let set = async {
        sw.set(drained).await?;
        sw.get().await
    }
    .await;
    match set {
        Ok(now) if now == drained => p.end(
            "ok",
            format!(
                "{}: drain switch {}",
                target.name,
                if drained { "ON" } else { "off" }
            ),
        ),
        Ok(_) => {
            p.end(
                "failed",
                format!("{}: the switch reads back unchanged", target.name),
            );
            return exit::SWITCH;
        }
        Err(e) => {
            p.end("failed", format!("{}: {e}", target.name));
            return exit::SWITCH;
        }
    }

    // 6. The proxies take the switch.
    p.begin(&steps[5]);
    let want = if drained { 503 } else { 200 };
    let (ok, seen) = wait_for(p, o.timeout, move || async move {
        let h: ProxyHealth = health::proxy(target).await;
        (
            h.status == Some(want),
            format!("{} {}", target.name, h.line()),
        )
    })
    .await;
    if !ok {
        p.end(
            "failed",
            format!("{seen}; the switch stays set: check the proxies (control cache, SSM access)"),
        );
        return exit::HEALTH_UNCHANGED;
    }
    p.end("ok", seen);

    // 7. Route 53's view flips.
    p.begin(&steps[6]);
    if leaving.health_check_id.is_none() && serving.health_check_id.is_none() {
        let (ok, seen) = wait_for(p, o.timeout, move || async move {
            let (l, s) = tokio::join!(health::proxy(leaving), health::proxy(serving));
            let done = match mv {
                Move::Failover => !l.ok() && s.ok(),
                Move::Failback => s.ok(),
            };
            (
                done,
                format!(
                    "{} {}; {} {}",
                    leaving.name,
                    l.line(),
                    serving.name,
                    s.line()
                ),
            )
        })
        .await;
        let detail = format!("{seen} (no Route 53 health check configured: judged by /health)");
        if !ok {
            p.end("failed", detail);
            return exit::ROUTE53_UNCHANGED;
        }
        p.end("ok", detail);
        return 0;
    }
    let (ok, seen) = wait_for(p, o.timeout, move || async move {
        let (l, s) = tokio::join!(health::route53(cfg, leaving), health::route53(cfg, serving));
        let healthy = |v: &Result<Option<Route53View>, String>| match v {
            Ok(Some(v)) => Some(v.healthy),
            _ => None,
        };
        let done = match mv {
            Move::Failover => {
                healthy(&l) != Some(true) && healthy(&s) != Some(false) && l.is_ok() && s.is_ok()
            }
            Move::Failback => {
                healthy(&s) == Some(true) || (s.is_ok() && serving.health_check_id.is_none())
            }
        };
        (
            done,
            format!(
                "{}: {}; {}: {}",
                leaving.name,
                route53_line(&l),
                serving.name,
                route53_line(&s)
            ),
        )
    })
    .await;
    if !ok {
        p.end("failed", format!("{seen}; the switch stays set"));
        return exit::ROUTE53_UNCHANGED;
    }
    p.end("ok", seen);
    0
}
