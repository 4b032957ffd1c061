//! The Lambda driver's logic: an SQS event either comes from this region's fallback queue (its
//! records are forwarded to the peer's inbound queue with the one forwarder,
//! `relay_aws::forward`) or from the inbound queue (applied and settled). Either way the answer
//! is a partial batch response naming exactly the records SQS must deliver again. The binary
//! only wires the runtime, the SDK clients and the replication key's readiness to this.

use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use relay_aws::forward::{forward_batch, note_peer, Fate, Ports, Record};
use relay_aws::liveness::Liveness;
use replication::{StateStore, UserDirectory};

use crate::{settle_batch, Config, DeadLetterQueue, Inbound, Replicator};

/// Where a Lambda event's records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// From this region's fallback queue: forward to the peer.
    Forward,
    /// From the inbound queue: apply.
    Apply,
}

/// The route of an event: forwarding when any record comes from the configured fallback queue
/// (an event source delivers from one queue per invocation).
pub fn route(cfg: &Config, event: &SqsEvent) -> Route {
    let Some(fwd) = &cfg.forward else {
        return Route::Apply;
    };
    let from_fallback = |arn: Option<&String>| {
        arn.is_some_and(|a| a.rsplit(':').next() == Some(fwd.fallback_queue_name.as_str()))
    };
    if event
        .records
        .iter()
        .any(|m| from_fallback(m.event_source_arn.as_ref()))
    {
        Route::Forward
    } else {
        Route::Apply
    }
}

/// One record as the replicator reads it.
pub fn to_inbound(m: &SqsMessage) -> Inbound {
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

/// The Lambda answer naming the messages SQS must deliver again.
pub fn batch_response(failed: impl IntoIterator<Item = String>) -> SqsBatchResponse {
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

/// Applies an inbound batch and settles it: the failures are the records left for redelivery.
pub async fn apply<D: UserDirectory, S: StateStore>(
    r: &Replicator<D, S>,
    dlq: Option<&dyn DeadLetterQueue>,
    records: &[Inbound],
) -> SqsBatchResponse {
    let decisions = r.process(records).await;
    batch_response(settle_batch(dlq, records, decisions).await)
}

/// The answer when the replication key could not be read in time: every record comes back.
pub fn not_ready(records: &[Inbound], waited: Duration) -> SqsBatchResponse {
    tracing::warn!(
        records = records.len(),
        waited_ms = waited.as_millis() as u64,
        "replication key still unreadable; the batch is left for SQS to deliver again"
    );
    batch_response(records.iter().map(|m| m.message_id.clone()))
}

/// What forwarding a fallback batch came to.
#[derive(Debug)]
pub struct Forwarded {
    pub response: SqsBatchResponse,
    /// Records sent to the peer.
    pub forwarded: usize,
}

/// Forwards fallback-queue records to the peer with the one forwarder: each user's records in
/// order, a failed send stops that user's group only. Reported as failures (SQS delivers them
/// again, in order): the failed record and every later record of its group, and unreadable
/// records that could not be set aside in the DLQ (never dropped).
pub async fn forward<P: Ports>(ports: &P, live: &Liveness, records: &[Inbound]) -> Forwarded {
    let batch: Vec<Record> = records
        .iter()
        .map(|m| Record {
            message_id: m.message_id.clone(),
            body: m.body.clone(),
            group_id: m.group_id.clone(),
        })
        .collect();
    let fates = forward_batch(ports, &batch).await;
    note_peer(live, &fates);
    let forwarded = fates
        .iter()
        .filter(|f| matches!(f, Fate::Forwarded))
        .count();
    let failed = batch
        .into_iter()
        .zip(fates)
        .filter(|(_, f)| !f.done())
        .map(|(r, _)| r.message_id);
    Forwarded {
        response: batch_response(failed),
        forwarded,
    }
}

/// How long an invocation may wait for the replication key: half of what is left of it, at most 20 s.
pub fn key_budget(deadline: SystemTime) -> Duration {
    deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .div_f64(2.0)
        .min(Duration::from_secs(20))
}
