//! `replicator`: a Lambda for an SQS event source when `AWS_LAMBDA_RUNTIME_API` is set, else a
//! standalone long-polling worker (with Prometheus `/metrics` on RELAY_METRICS_LISTEN).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use relay_aws::liveness::{self, dep};
use relay_aws::runtime::{lambda_mode, or_exit};
use relay_aws::SdkConfig;
use replicator::{
    build, init_logging, settle, settle_batch, Config, DeadLetterQueue, Disposition, Inbound,
    ProcessEnv, SqsDeadLetters,
};

/// Retry pacing for dependencies: from 200 ms up to this, with jitter, without end. It bounds
/// how long a waiting process takes to notice that the network is back.
const RETRY_MAX: Duration = Duration::from_secs(2);

fn retry_policy() -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(RETRY_MAX)
        .with_jitter()
        .without_max_times()
}

/// Lambda init tries to read the replication key once within this budget; after a failure the
/// read is deferred to the invocations (an init failure would cost a cold start per invocation).
const INIT_BUDGET: Duration = Duration::from_secs(2);

type Replicator = replicator::Live;

/// The replicator, once its replication key has been read.
async fn connect_once(
    cfg: &Config,
    sdk: &SdkConfig,
    lambda: bool,
) -> Result<Replicator, replicator::Error> {
    let r = build(sdk, cfg.clone(), lambda).await;
    liveness::global().observe(dep::REPLICATION_KEY, &r);
    r
}

/// The replicator, retrying (with backoff, without end) until the replication key can be read.
async fn connect(cfg: &Config, sdk: &SdkConfig, lambda: bool) -> Replicator {
    use backon::Retryable;
    (|| connect_once(cfg, sdk, lambda))
        .retry(retry_policy())
        .await
        .expect("retries without end")
}

#[tokio::main]
async fn main() {
    init_logging();
    let cfg = or_exit(
        "replicator",
        2,
        Config::from_env(&ProcessEnv).map_err(|e| format!("invalid configuration: {e}")),
    );
    let lambda = lambda_mode();
    if !lambda && cfg.inbound_queue_url.is_none() {
        or_exit::<(), String>("replicator", 2, Err("invalid configuration: RELAY_INBOUND_QUEUE_URL is required for the standalone worker".into()));
    }
    let sdk = relay_aws::sdk_config(
        &cfg.region,
        cfg.aws_endpoint.as_deref(),
        3,
        std::time::Duration::from_secs(5),
    )
    .await;
    let queues = relay_aws::queue::Queues::new(&sdk);
    if lambda {
        run_lambda(cfg, sdk, queues).await;
        return;
    }
    // Standalone. From here on nothing AWS does makes the process exit: it waits and retries.
    let stop = stop_signal();
    let slot: Arc<OnceLock<Arc<Replicator>>> = Arc::new(OnceLock::new());
    if let Some(addr) = cfg.metrics_listen {
        // Bound before the first AWS call, so a waiting replicator shows what it waits for.
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => or_exit(
                "replicator",
                2,
                Err(format!(
                    "invalid configuration: cannot listen on RELAY_METRICS_LISTEN={addr}: {e}"
                )),
            ),
        };
        let slot = slot.clone();
        tokio::spawn(async move {
            let page = move || {
                let stats = slot.get().map(|r| r.stats.prometheus()).unwrap_or_default();
                async move { format!("{stats}{}", liveness::global().prometheus()) }
            };
            let app = axum::Router::new().route("/metrics", axum::routing::get(page));
            let _ = axum::serve(listener, app).await;
        });
    }
    let r = tokio::select! {
        r = connect(&cfg, &sdk, false) => Arc::new(r),
        _ = stopped(stop.clone()) => return,
    };
    let _ = slot.set(r.clone());
    worker(&r, &queues, stop).await;
}

/// Becomes true on SIGTERM or Ctrl-C.
fn stop_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        let _ = tx.send(true);
    });
    rx
}

async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The Lambda: the replication key is read at init if it can be within INIT_BUDGET, else at the
/// first invocation that needs it (fallback forwarding does not).
async fn run_lambda(cfg: Config, sdk: SdkConfig, queues: relay_aws::queue::Queues) {
    let peer = match &cfg.forward {
        Some(f) => Some(relay_aws::queue::Queues::new(
            &relay_aws::sdk_config(
                &f.peer_region,
                f.peer_aws_endpoint.as_deref(),
                2,
                std::time::Duration::from_secs(3),
            )
            .await,
        )),
        None => None,
    };
    let cell: Arc<tokio::sync::OnceCell<Arc<Replicator>>> = Arc::new(tokio::sync::OnceCell::new());
    match tokio::time::timeout(INIT_BUDGET, connect_once(&cfg, &sdk, true)).await {
        Ok(Ok(r)) => {
            let _ = cell.set(Arc::new(r));
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "replication key not read at init; reading it at the first invocation")
        }
        Err(_) => {
            liveness::global().waiting(dep::REPLICATION_KEY, "timeout at init");
            tracing::warn!("replication key not read within the init budget; reading it at the first invocation");
        }
    }
    let (cfg, sdk, queues) = (Arc::new(cfg), Arc::new(sdk), Arc::new(queues));
    let handler = service_fn(move |ev: LambdaEvent<SqsEvent>| {
        let (cfg, sdk, queues, peer, cell) = (
            cfg.clone(),
            sdk.clone(),
            queues.clone(),
            peer.clone(),
            cell.clone(),
        );
        async move {
            Ok::<_, lambda_runtime::Error>(
                handle_lambda(&cfg, &sdk, &cell, &queues, peer.as_ref(), ev).await,
            )
        }
    });
    if let Err(e) = lambda_runtime::run(handler).await {
        eprintln!("replicator: lambda runtime failed: {e}");
        std::process::exit(1);
    }
}

/// This region's DLQ over SQS, when configured.
fn dlq<'a>(queues: &'a relay_aws::queue::Queues, cfg: &'a Config) -> Option<SqsDeadLetters<'a>> {
    cfg.dlq_url
        .as_deref()
        .map(|url| SqsDeadLetters { queues, url })
}

/// The Lambda answer naming the messages SQS must deliver again.
fn batch_response(failed: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    resp
}

/// Forwards fallback-queue records to the peer's inbound queue with the one forwarder
/// (`relay_aws::forward`): each user's records in order, a failed send stops that user's group
/// only. Reported as failures (SQS delivers them again, in order): the failed record and every
/// later record of its group, and unreadable records that could not be set aside in the DLQ.
async fn forward_fallback(
    peer: &relay_aws::queue::Queues,
    fwd: &replicator::Forward,
    local: &relay_aws::queue::Queues,
    dlq: Option<&str>,
    records: &[Inbound],
) -> Vec<String> {
    use relay_aws::forward::{forward_batch, Record, SqsPorts};
    let ports = SqsPorts {
        peer,
        peer_url: &fwd.peer_queue_url,
        dlq: dlq.map(|u| (local, u)),
    };
    let batch: Vec<Record> = records
        .iter()
        .map(|m| Record {
            message_id: m.message_id.clone(),
            body: m.body.clone(),
            group_id: m.group_id.clone(),
        })
        .collect();
    let fates = forward_batch(&ports, &batch).await;
    relay_aws::forward::note_peer(liveness::global(), &fates);
    let forwarded = fates
        .iter()
        .filter(|f| matches!(f, relay_aws::forward::Fate::Forwarded))
        .count();
    if forwarded > 0 {
        println!("{}", emf_forwarded(forwarded));
    }
    batch
        .into_iter()
        .zip(fates)
        .filter(|(_, f)| !f.done())
        .map(|(r, _)| r.message_id)
        .collect()
}

/// How long an invocation may wait for the replication key: half of what is left of it, at most 20 s.
fn key_budget(deadline: std::time::SystemTime) -> Duration {
    deadline
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default()
        .div_f64(2.0)
        .min(Duration::from_secs(20))
}

async fn handle_lambda(
    cfg: &Config,
    sdk: &SdkConfig,
    cell: &tokio::sync::OnceCell<Arc<Replicator>>,
    queues: &relay_aws::queue::Queues,
    peer: Option<&relay_aws::queue::Queues>,
    ev: LambdaEvent<SqsEvent>,
) -> SqsBatchResponse {
    let event = ev.payload;
    let is_fallback = |arn: Option<&String>| match (&cfg.forward, arn) {
        (Some(f), Some(arn)) => arn.rsplit(':').next() == Some(f.fallback_queue_name.as_str()),
        _ => false,
    };
    let records: Vec<Inbound> = event.records.iter().map(to_inbound).collect();
    let resp = if let (Some(fwd), Some(peer), true) = (
        &cfg.forward,
        peer,
        event
            .records
            .iter()
            .any(|m| is_fallback(m.event_source_arn.as_ref())),
    ) {
        batch_response(forward_fallback(peer, fwd, queues, cfg.dlq_url.as_deref(), &records).await)
    } else {
        let budget = key_budget(ev.context.deadline());
        let ready = tokio::time::timeout(
            budget,
            cell.get_or_init(|| async { Arc::new(connect(cfg, sdk, true).await) }),
        )
        .await;
        match ready {
            Ok(r) => handle_inbound(r, queues, records).await,
            Err(_) => {
                tracing::warn!(
                    records = records.len(),
                    waited_ms = budget.as_millis() as u64,
                    "replication key still unreadable; the batch is left for SQS to deliver again"
                );
                batch_response(records.into_iter().map(|m| m.message_id))
            }
        }
    };
    for w in liveness::global().snapshot() {
        println!("{}", emf_waiting(&w));
    }
    resp
}

/// One CloudWatch EMF line per forwarding batch (metric `FallbackForwarded`, no dimensions):
/// fallback events this region's replicator moved to the peer's inbound queue.
fn emf_forwarded(n: usize) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    serde_json::json!({
        "_aws": {"Timestamp": now, "CloudWatchMetrics": [{"Namespace": "CognitoRelay", "Dimensions": [[]], "Metrics": [{"Name": "FallbackForwarded", "Unit": "Count"}]}]},
        "FallbackForwarded": n,
    })
    .to_string()
}

/// One CloudWatch EMF line per dependency the Lambda waits for (metric `DependencyWaitingSeconds`).
fn emf_waiting(w: &relay_aws::liveness::Waiting) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    serde_json::json!({
        "_aws": {"Timestamp": now, "CloudWatchMetrics": [{"Namespace": "CognitoRelay", "Dimensions": [["Dependency"]], "Metrics": [{"Name": "DependencyWaitingSeconds", "Unit": "Seconds"}]}]},
        "Dependency": w.dependency,
        "DependencyWaitingSeconds": now.saturating_sub(w.since_ms) / 1000,
        "message": w.line(),
    })
    .to_string()
}

fn to_inbound(m: &aws_lambda_events::event::sqs::SqsMessage) -> Inbound {
    Inbound {
        message_id: m.message_id.clone().unwrap_or_default(),
        body: m.body.clone().unwrap_or_default(),
        receive_count: m
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        group_id: m.attributes.get("MessageGroupId").cloned(),
    }
}

async fn handle_inbound(
    r: &Replicator,
    queues: &relay_aws::queue::Queues,
    batch: Vec<Inbound>,
) -> SqsBatchResponse {
    let decisions = r.process(&batch).await;
    let dlq = dlq(queues, &r.cfg);
    let dlq = dlq.as_ref().map(|d| d as &dyn DeadLetterQueue);
    batch_response(settle_batch(dlq, &batch, decisions).await)
}

/// After a batch in which nothing applied and something must be retried: the pool may be
/// unreachable. Probe it (a cheap DescribeUserPool) with backoff before taking more events off
/// the queue, so an outage does not use up their deliveries. Returns false when stopped.
async fn wait_for_pool(r: &Replicator, stop: &tokio::sync::watch::Receiver<bool>) -> bool {
    use backon::BackoffBuilder;
    let mut backoff = retry_policy().build();
    loop {
        let ping = r.dir.ping().await;
        liveness::global().observe(dep::HOME_POOL, &ping);
        if ping.is_ok() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next().unwrap_or(RETRY_MAX)) => {}
            _ = stopped(stop.clone()) => return false,
        }
    }
}

async fn worker(
    r: &Replicator,
    queues: &relay_aws::queue::Queues,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    use backon::BackoffBuilder;
    let url = r.cfg.inbound_queue_url.clone().unwrap_or_default();
    let live = liveness::global();
    let mut backoff = retry_policy().build();
    tracing::info!(queue = %url, "replicator worker polling");
    loop {
        // Shutdown is only honoured between batches: in-flight events finish and are deleted.
        let received = tokio::select! {
            _ = stopped(stop.clone()) => break,
            res = queues.receive(&url, 10, 2, None) => res,
        };
        live.observe(dep::INBOUND_QUEUE, &received);
        let batch = match received {
            Ok(b) => {
                backoff = retry_policy().build();
                b
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot receive; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next().unwrap_or(RETRY_MAX)) => continue,
                    _ = stopped(stop.clone()) => break,
                }
            }
        };
        let inbound: Vec<Inbound> = batch
            .iter()
            .map(|m| Inbound {
                message_id: m.message_id.clone(),
                body: m.body.clone(),
                receive_count: m.receive_count,
                group_id: m.group_id.clone(),
            })
            .collect();
        let decisions = r.process(&inbound).await;
        let stalled =
            !decisions.is_empty() && decisions.iter().all(|d| matches!(d, Disposition::Retry(_)));
        if decisions.iter().any(|d| matches!(d, Disposition::Done)) {
            live.ready(dep::HOME_POOL);
        }
        for ((m, raw), d) in inbound.iter().zip(&batch).zip(decisions) {
            let dlq = dlq(queues, &r.cfg);
            if settle(dlq.as_ref().map(|d| d as &dyn DeadLetterQueue), m, d).await {
                if let Err(e) = queues.delete(&url, &raw.receipt_handle).await {
                    tracing::warn!(message_id = %m.message_id, error = %e, "delete failed; the event will be delivered again (apply is idempotent)");
                }
            }
        }
        if stalled && !wait_for_pool(r, &stop).await {
            break;
        }
    }
    tracing::info!("replicator worker stopped");
}
