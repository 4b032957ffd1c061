//! `replicator`: a Lambda for an SQS event source when `AWS_LAMBDA_RUNTIME_API` is set, else a
//! standalone long-polling worker (with Prometheus `/metrics` on RELAY_METRICS_LISTEN).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use relay_aws::runtime::{lambda_mode, or_exit};
use replicator::{build, init_logging, Config, Disposition, Inbound, ProcessEnv};

#[tokio::main]
async fn main() {
    init_logging();
    let cfg = or_exit("replicator", 2, Config::from_env(&ProcessEnv).map_err(|e| format!("invalid configuration: {e}")));
    let lambda = lambda_mode();
    if !lambda && cfg.inbound_queue_url.is_none() {
        or_exit::<()>("replicator", 2, Err("invalid configuration: RELAY_INBOUND_QUEUE_URL is required for the standalone worker".into()));
    }
    let r = Arc::new(or_exit("replicator", 2, build(cfg.clone(), lambda).await));
    let sdk = relay_aws::sdk_config(&cfg.region, cfg.aws_endpoint.as_deref(), 3, std::time::Duration::from_secs(5)).await;
    let queues = relay_aws::queue::Queues::new(&sdk);
    if lambda {
        let peer = match &cfg.forward {
            Some(f) => Some(relay_aws::queue::Queues::new(&relay_aws::sdk_config(&f.peer_region, f.peer_aws_endpoint.as_deref(), 2, std::time::Duration::from_secs(3)).await)),
            None => None,
        };
        let handler = service_fn(|ev: LambdaEvent<SqsEvent>| {
            let r = r.clone();
            let queues = queues.clone();
            let peer = peer.clone();
            async move { Ok::<_, lambda_runtime::Error>(handle_lambda(&r, &queues, peer.as_ref(), ev.payload).await) }
        });
        if let Err(e) = lambda_runtime::run(handler).await {
            eprintln!("replicator: lambda runtime failed: {e}");
            std::process::exit(1);
        }
        return;
    }
    if let Some(addr) = cfg.metrics_listen {
        let r = r.clone();
        tokio::spawn(async move {
            let app = axum::Router::new().route("/metrics", axum::routing::get(move || async move { r.stats.prometheus() }));
            if let Ok(l) = tokio::net::TcpListener::bind(addr).await {
                let _ = axum::serve(l, app).await;
            }
        });
    }
    worker(&r, &queues).await;
}

async fn dead_letter(queues: &relay_aws::queue::Queues, dlq: Option<&str>, m: &Inbound, reason: &str) -> bool {
    let Some(dlq) = dlq else {
        tracing::error!(message_id = %m.message_id, "no RELAY_DLQ_URL: event left on the queue for the redrive policy");
        return false;
    };
    let group = m.group_id.clone().unwrap_or_else(|| "poison".into());
    match queues.send(dlq, &m.body, &group, &m.message_id, Some(reason)).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(message_id = %m.message_id, error = %e, "cannot write to the DLQ; event stays on the queue");
            false
        }
    }
}

/// Settles a processed message: true when it may leave the queue (applied, or safely written
/// to the DLQ), false when SQS must deliver it again.
async fn settle(queues: &relay_aws::queue::Queues, dlq: Option<&str>, m: &Inbound, d: Disposition) -> bool {
    match d {
        Disposition::Done => true,
        Disposition::DeadLetter(reason) => dead_letter(queues, dlq, m, &reason).await,
        Disposition::Retry(_) => false,
    }
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

/// Forwards fallback-queue records to the peer's inbound queue, in order per user: after one
/// record of a group fails, the rest of that group fail too (SQS delivers them again).
async fn forward_fallback(peer: &relay_aws::queue::Queues, fwd: &replicator::Forward, local: &relay_aws::queue::Queues, dlq: Option<&str>, records: &[Inbound]) -> Vec<String> {
    let mut failed = Vec::new();
    let mut blocked = std::collections::HashSet::new();
    for m in records {
        let group = m.group_id.clone().unwrap_or_default();
        if blocked.contains(&group) {
            failed.push(m.message_id.clone());
            continue;
        }
        let ok = match replication::Header::peek(&m.body) {
            Ok(e) => match peer.send_event(&fwd.peer_queue_url, &e, &m.body).await {
                Ok(()) => true,
                Err(err) => {
                    tracing::warn!(event_id = %e.id, error = %err, "peer inbound queue unreachable; fallback event stays queued");
                    false
                }
            },
            Err(reason) => dead_letter(local, dlq, m, &format!("unreadable message on the fallback queue: {reason}")).await,
        };
        if !ok {
            blocked.insert(group);
            failed.push(m.message_id.clone());
        }
    }
    failed
}

async fn handle_lambda(r: &replicator::Live, queues: &relay_aws::queue::Queues, peer: Option<&relay_aws::queue::Queues>, event: SqsEvent) -> SqsBatchResponse {
    let is_fallback = |arn: Option<&String>| match (&r.cfg.forward, arn) {
        (Some(f), Some(arn)) => arn.rsplit(':').next() == Some(f.fallback_queue_name.as_str()),
        _ => false,
    };
    if let (Some(fwd), Some(peer)) = (&r.cfg.forward, peer) {
        if event.records.iter().any(|m| is_fallback(m.event_source_arn.as_ref())) {
            let records: Vec<Inbound> = event.records.iter().map(to_inbound).collect();
            return batch_response(forward_fallback(peer, fwd, queues, r.cfg.dlq_url.as_deref(), &records).await);
        }
    }
    let batch: Vec<Inbound> = event.records.iter().map(to_inbound).collect();
    handle_inbound(r, queues, batch).await
}

fn to_inbound(m: &aws_lambda_events::event::sqs::SqsMessage) -> Inbound {
    Inbound {
        message_id: m.message_id.clone().unwrap_or_default(),
        body: m.body.clone().unwrap_or_default(),
        receive_count: m.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1),
        group_id: m.attributes.get("MessageGroupId").cloned(),
    }
}

async fn handle_inbound(r: &replicator::Live, queues: &relay_aws::queue::Queues, batch: Vec<Inbound>) -> SqsBatchResponse {
    let decisions = r.process(&batch).await;
    let mut failed = Vec::new();
    for (m, d) in batch.iter().zip(decisions) {
        if !settle(queues, r.cfg.dlq_url.as_deref(), m, d).await {
            failed.push(m.message_id.clone());
        }
    }
    batch_response(failed)
}

async fn worker(r: &replicator::Live, queues: &relay_aws::queue::Queues) {
    let url = r.cfg.inbound_queue_url.clone().unwrap_or_default();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
    tracing::info!(queue = %url, "replicator worker polling");
    loop {
        // Shutdown is only honoured between batches: in-flight events finish and are deleted.
        let received = tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            res = queues.receive(&url, 10, 2, None) => res,
        };
        let batch = match received {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot receive; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        let inbound: Vec<Inbound> = batch.iter().map(|m| Inbound { message_id: m.message_id.clone(), body: m.body.clone(), receive_count: m.receive_count, group_id: m.group_id.clone() }).collect();
        let decisions = r.process(&inbound).await;
        for ((m, raw), d) in inbound.iter().zip(&batch).zip(decisions) {
            if settle(queues, r.cfg.dlq_url.as_deref(), m, d).await {
                if let Err(e) = queues.delete(&url, &raw.receipt_handle).await {
                    tracing::warn!(message_id = %m.message_id, error = %e, "delete failed; the event will be delivered again (apply is idempotent)");
                }
            }
        }
    }
    tracing::info!("replicator worker stopped");
}
