//! The standalone driver: long-polls the inbound queue, applies each batch, settles every
//! message (deleted once applied or safely dead-lettered, else left for redelivery), and after
//! a batch in which nothing applied waits for the home pool before taking more events off the
//! queue (so an outage does not use up their deliveries). Generic over its ports, so the whole
//! loop runs in the unit tests against in-memory fakes.

use std::time::Duration;

use relay_aws::liveness::{dep, Liveness};
use replication::{StateStore, UserDirectory};

use crate::ports::{InboundQueue, PoolProbe, PortError};
use crate::{settle, DeadLetterQueue, Disposition, Inbound, Replicator};

/// Retry pacing for dependencies: from 200 ms up to this, with jitter, without end. It bounds
/// how long a waiting process takes to notice that the network is back.
pub const RETRY_MAX: Duration = Duration::from_secs(2);

/// The backoff between attempts at an unreachable dependency.
pub fn retry_policy() -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(RETRY_MAX)
        .with_jitter()
        .without_max_times()
}

/// What one received batch came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Messages that left the queue (applied, or written to the DLQ).
    pub settled: usize,
    /// Messages left on the queue for SQS to deliver again.
    pub left: usize,
    /// Nothing applied and something must be retried: the pool may be unreachable.
    pub stalled: bool,
}

/// Applies one received batch and settles each message.
pub async fn run_batch<D, S, Q>(
    r: &Replicator<D, S>,
    queue: &Q,
    dlq: Option<&dyn DeadLetterQueue>,
    live: &Liveness,
    batch: &[crate::ports::Received],
) -> BatchReport
where
    D: UserDirectory,
    S: StateStore,
    Q: InboundQueue,
{
    let inbound: Vec<Inbound> = batch.iter().map(|m| m.message.clone()).collect();
    let decisions = r.process(&inbound).await;
    let mut report = BatchReport {
        stalled: !decisions.is_empty()
            && decisions.iter().all(|d| matches!(d, Disposition::Retry(_))),
        ..BatchReport::default()
    };
    if decisions.iter().any(|d| matches!(d, Disposition::Done)) {
        live.ready(dep::HOME_POOL);
    }
    for (m, d) in batch.iter().zip(decisions) {
        if !settle(dlq, &m.message, d).await {
            report.left += 1;
            continue;
        }
        report.settled += 1;
        if let Err(e) = queue.delete(&m.receipt).await {
            tracing::warn!(message_id = %m.message.message_id, error = %e, "delete failed; the event will be delivered again (apply is idempotent)");
        }
    }
    report
}

/// Becomes true when the process is asked to stop.
pub type Stop = tokio::sync::watch::Receiver<bool>;

/// Resolves once `stop` turned true.
pub async fn stopped(mut stop: Stop) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Probes the pool with backoff until it answers. Returns false when stopped.
pub async fn wait_for_pool<P: PoolProbe>(pool: &P, live: &Liveness, stop: &Stop) -> bool {
    use backon::BackoffBuilder;
    let mut backoff = retry_policy().build();
    loop {
        let ping = pool.ping().await;
        live.observe(dep::HOME_POOL, &ping);
        if ping.is_ok() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next().unwrap_or(RETRY_MAX)) => {}
            _ = stopped(stop.clone()) => return false,
        }
    }
}

/// Polls until `stop`. Shutdown is only honoured between batches: in-flight events finish and
/// are settled.
pub async fn run<D, S, Q>(
    r: &Replicator<D, S>,
    queue: &Q,
    dlq: Option<&dyn DeadLetterQueue>,
    live: &Liveness,
    stop: Stop,
) where
    D: UserDirectory + PoolProbe,
    S: StateStore,
    Q: InboundQueue,
{
    use backon::BackoffBuilder;
    let mut backoff = retry_policy().build();
    loop {
        let received: Result<_, PortError> = tokio::select! {
            _ = stopped(stop.clone()) => break,
            res = queue.receive() => res,
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
        let report = run_batch(r, queue, dlq, live, &batch).await;
        if report.stalled && !wait_for_pool(&r.dir, live, &stop).await {
            break;
        }
    }
    tracing::info!("replicator worker stopped");
}
