//! The fallback forwarder: moves events from a region's fallback queue to the peer's inbound
//! queue. One forwarder for both drivers: the standalone proxy polls the fallback queue
//! ([`Forwarder`]); the replicator Lambda gets the same records from an SQS event source and
//! turns the [`Fate`]s of [`forward_batch`] into a partial batch response.
//!
//! Order: each user's events (one FIFO message group) are sent strictly in queue order, and a
//! failed send stops that group only: its later messages are held back and retried after it.
//! Different groups are sent concurrently, so one slow or failing group neither delays nor
//! blocks the others. A message is deleted from the fallback queue only once it was sent to the
//! peer (or, when it is not an event at all, set aside in a DLQ).

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use replication::Header as Event;

use crate::liveness::{dep, Liveness};
use crate::queue::Queues;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    #[error("peer inbound queue: {0}")]
    Peer(crate::Error),
    #[error("fallback queue: {0}")]
    Fallback(crate::Error),
    #[error("dead-letter queue: {0}")]
    DeadLetter(crate::Error),
}

/// One message of the fallback queue, whichever driver received it.
#[derive(Debug, Clone)]
pub struct Record {
    pub message_id: String,
    pub body: String,
    pub group_id: Option<String>,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Sent to the peer: it may leave the fallback queue.
    Forwarded,
    /// Not an event; written to the dead-letter queue with the reason: it may leave.
    SetAside(String),
    /// Not an event and there is no dead-letter queue (or it failed): left where it is. It does
    /// not hold back its group (there is nothing to order it against).
    LeftInPlace(String),
    /// The send to the peer failed: retry it.
    Failed(String),
    /// An earlier message of its group failed in this batch: retry it after that one.
    HeldBack,
}

impl Fate {
    /// Whether the message may be deleted from the fallback queue.
    pub fn done(&self) -> bool {
        matches!(self, Fate::Forwarded | Fate::SetAside(_))
    }
    /// Whether the message must come back, in order, for another try.
    pub fn retry(&self) -> bool {
        matches!(self, Fate::Failed(_) | Fate::HeldBack)
    }
}

/// Where the forwarder sends things.
pub trait Ports: Sync {
    /// Sends an event to the peer's inbound queue (FIFO group from the user key, dedup id the
    /// event id, so a resend is not applied twice).
    fn send(
        &self,
        event: &Event,
        body: &str,
    ) -> impl Future<Output = Result<(), ForwardError>> + Send;
    /// Sets aside a message that is not an event. `Ok(false)`: there is nowhere to put it.
    fn set_aside(
        &self,
        record: &Record,
        reason: &str,
    ) -> impl Future<Output = Result<bool, ForwardError>> + Send;
}

/// Forwards one batch, each group in order, groups concurrently. Returns one fate per record,
/// in the records' order.
pub async fn forward_batch<P: Ports>(ports: &P, records: &[Record]) -> Vec<Fate> {
    // Groups in order of first appearance, each with its records in queue order.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        let g = *index
            .entry(r.group_id.as_deref().unwrap_or(""))
            .or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
        groups[g].push(i);
    }
    let per_group = groups.iter().map(|members| async move {
        let mut fates = Vec::with_capacity(members.len());
        let mut failed = false;
        for &i in members {
            let r = &records[i];
            let fate = if failed {
                Fate::HeldBack
            } else {
                match Event::peek(&r.body) {
                    Ok(event) => match ports.send(&event, &r.body).await {
                        Ok(()) => Fate::Forwarded,
                        Err(e) => {
                            tracing::warn!(event_id = %event.id, error = %e, "forwarding failed; this user's later events wait behind it");
                            failed = true;
                            Fate::Failed(e.to_string())
                        }
                    },
                    Err(reason) => {
                        let reason = format!("unreadable message on the fallback queue: {reason}");
                        match ports.set_aside(r, &reason).await {
                            Ok(true) => Fate::SetAside(reason),
                            Ok(false) => {
                                tracing::error!(message_id = %r.message_id, "fallback queue holds a message that is not an event; left in place");
                                Fate::LeftInPlace(reason)
                            }
                            Err(e) => {
                                tracing::error!(message_id = %r.message_id, error = %e, "cannot set aside an unreadable fallback message; left in place");
                                Fate::LeftInPlace(format!("{reason}; {e}"))
                            }
                        }
                    }
                }
            };
            fates.push((i, fate));
        }
        fates
    });
    let mut out: Vec<Option<Fate>> = vec![None; records.len()];
    for (i, fate) in futures_util::future::join_all(per_group)
        .await
        .into_iter()
        .flatten()
    {
        out[i] = Some(fate);
    }
    out.into_iter()
        .map(|f| f.expect("every record has a fate"))
        .collect()
}

/// Records in `liveness` what a batch says about the peer queue: waiting after a failed send,
/// reachable again after a forwarded one.
pub fn note_peer(liveness: &Liveness, fates: &[Fate]) {
    match fates.iter().find_map(|f| {
        if let Fate::Failed(e) = f {
            Some(e)
        } else {
            None
        }
    }) {
        Some(e) => liveness.waiting(dep::PEER_QUEUE, e),
        None if fates.contains(&Fate::Forwarded) => {
            liveness.ready(dep::PEER_QUEUE);
        }
        None => {}
    }
}

/// The SQS ports: the peer's inbound queue, and optionally a dead-letter queue in this region.
pub struct SqsPorts<'a> {
    pub peer: &'a Queues,
    pub peer_url: &'a str,
    pub dlq: Option<(&'a Queues, &'a str)>,
}

impl Ports for SqsPorts<'_> {
    async fn send(&self, event: &Event, body: &str) -> Result<(), ForwardError> {
        self.peer
            .send_event(self.peer_url, event, body)
            .await
            .map_err(ForwardError::Peer)
    }
    async fn set_aside(&self, record: &Record, reason: &str) -> Result<bool, ForwardError> {
        let Some((q, url)) = self.dlq else {
            return Ok(false);
        };
        let group = record.group_id.as_deref().unwrap_or("poison");
        q.send(url, &record.body, group, &record.message_id, Some(reason))
            .await
            .map_err(ForwardError::DeadLetter)?;
        Ok(true)
    }
}

/// Counts of one standalone pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub forwarded: usize,
    /// Failed or held back, released for another try.
    pub retried: usize,
}

/// The one fallback forwarder. Standalone (the proxy) it polls the fallback queue and forwards
/// what it finds ([`Forwarder::run`]); the replicator Lambda gets the same records from an SQS
/// event source and forwards them through [`Forwarder::ports`].
pub struct Forwarder {
    pub local: Queues,
    pub fallback_url: String,
    pub peer: Queues,
    pub peer_url: String,
    /// Where to set aside messages that are not events; `None` leaves them in place.
    pub dlq_url: Option<String>,
    /// How long a received batch stays invisible to other consumers while it is forwarded.
    pub visibility: Duration,
}

impl Forwarder {
    /// The ports both drivers forward through: the peer's inbound queue, and this region's DLQ
    /// for messages that are not events (set aside there with the reason, never dropped).
    pub fn ports(&self) -> SqsPorts<'_> {
        SqsPorts {
            peer: &self.peer,
            peer_url: &self.peer_url,
            dlq: self.dlq_url.as_deref().map(|u| (&self.local, u)),
        }
    }

    /// Receives and forwards batches until the fallback queue is empty or a send failed. After
    /// a batch, forwarded messages are deleted and the ones to retry are released at once
    /// (visibility 0), in place, so their group's order is kept and nothing waits for a timeout.
    /// A pass ends at the first batch with a failure (the peer is probably unreachable).
    pub async fn pass(&self, liveness: &Liveness) -> Result<Pass, ForwardError> {
        let mut pass = Pass::default();
        let ports = self.ports();
        loop {
            let received = self
                .local
                .receive(
                    &self.fallback_url,
                    10,
                    0,
                    Some(self.visibility.as_secs().max(1) as i32),
                )
                .await
                .map_err(ForwardError::Fallback);
            liveness.observe(dep::FALLBACK_QUEUE, &received);
            let batch = received?;
            if batch.is_empty() {
                return Ok(pass);
            }
            let records: Vec<Record> = batch
                .iter()
                .map(|m| Record {
                    message_id: m.message_id.clone(),
                    body: m.body.clone(),
                    group_id: m.group_id.clone(),
                })
                .collect();
            let fates = forward_batch(&ports, &records).await;
            note_peer(liveness, &fates);
            let mut failed = false;
            for (m, fate) in batch.iter().zip(&fates) {
                if fate.done() {
                    if let Err(e) = self
                        .local
                        .delete(&self.fallback_url, &m.receipt_handle)
                        .await
                    {
                        // Sent but still queued: it is sent again later and the peer drops the
                        // duplicate (same dedup id) within SQS's five-minute window.
                        tracing::warn!(message_id = %m.message_id, error = %e, "forwarded but not deleted from the fallback queue");
                    }
                    pass.forwarded += usize::from(matches!(fate, Fate::Forwarded));
                } else if fate.retry() {
                    failed |= matches!(fate, Fate::Failed(_));
                    if let Err(e) = self
                        .local
                        .release(&self.fallback_url, &m.receipt_handle)
                        .await
                    {
                        tracing::warn!(message_id = %m.message_id, error = %e, "cannot release a message to retry; it returns after its visibility timeout");
                    }
                    pass.retried += 1;
                }
            }
            if failed {
                return Ok(pass);
            }
        }
    }

    /// Forwards forever: a pass every `idle` while all is well, and with exponential backoff
    /// (jittered, at most `idle`) while the fallback or the peer queue cannot be reached.
    pub async fn run(self, idle: Duration, liveness: &Liveness) {
        use backon::BackoffBuilder;
        let builder = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(idle)
            .with_jitter()
            .without_max_times();
        let mut backoff = builder.build();
        loop {
            let wait = match self.pass(liveness).await {
                Ok(p) if p.retried == 0 => {
                    if p.forwarded > 0 {
                        tracing::info!(
                            moved = p.forwarded,
                            "forwarded fallback events to the peer queue"
                        );
                    }
                    backoff = builder.build();
                    idle
                }
                Ok(p) => {
                    tracing::warn!(
                        moved = p.forwarded,
                        retried = p.retried,
                        "fallback forwarding paused: the peer queue did not take every event"
                    );
                    backoff.next().unwrap_or(idle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "fallback forwarding paused");
                    backoff.next().unwrap_or(idle)
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A peer that fails the sends of chosen event ids and records what it got, in order.
    struct Peer {
        fail: Vec<&'static str>,
        got: Mutex<Vec<String>>,
        dlq: Option<Mutex<Vec<String>>>,
    }

    impl Ports for Peer {
        async fn send(&self, event: &Event, _: &str) -> Result<(), ForwardError> {
            // Yield, so that groups really interleave.
            tokio::task::yield_now().await;
            if self.fail.contains(&event.id.as_str()) {
                return Err(ForwardError::Peer(crate::Error::Call {
                    failure: crate::Failure::Transient,
                    text: "connection failure (I/O)".into(),
                }));
            }
            self.got.lock().unwrap().push(event.id.clone());
            Ok(())
        }
        async fn set_aside(&self, record: &Record, _: &str) -> Result<bool, ForwardError> {
            Ok(match &self.dlq {
                Some(d) => {
                    d.lock().unwrap().push(record.message_id.clone());
                    true
                }
                None => false,
            })
        }
    }

    fn rec(user: &str, n: u32) -> Record {
        let id = format!("{user}{n}");
        // The envelope's routing fields are all the forwarder reads (the seal is the replicator's).
        let body = format!(
            r#"{{"v":2,"id":"{id}","origin_region":"a","origin_pool":"a_1","target_pool":"b_1","action":"X","group":"g-{user}","origin_time_ms":{n},"sealed":"v1.k1.x"}}"#
        );
        Record {
            message_id: format!("m-{id}"),
            body,
            group_id: Some(format!("g-{user}")),
        }
    }

    #[tokio::test]
    async fn a_failed_send_stops_its_group_only_and_keeps_every_group_in_order() {
        // u1, u2, u3 interleaved; u2's second event fails.
        let batch = vec![
            rec("u1", 1),
            rec("u2", 1),
            rec("u3", 1),
            rec("u1", 2),
            rec("u2", 2),
            rec("u3", 2),
            rec("u2", 3),
            rec("u1", 3),
            rec("u3", 3),
        ];
        let peer = Peer {
            fail: vec!["u22"],
            got: Mutex::new(vec![]),
            dlq: None,
        };
        let fates = forward_batch(&peer, &batch).await;
        let by_id: Vec<(String, Fate)> = batch
            .iter()
            .map(|r| r.message_id.clone())
            .zip(fates)
            .collect();
        for (id, fate) in &by_id {
            match id.as_str() {
                "m-u22" => assert!(
                    matches!(fate, Fate::Failed(e) if e.contains("peer inbound queue")),
                    "{id}: {fate:?}"
                ),
                "m-u23" => assert_eq!(fate, &Fate::HeldBack),
                _ => assert_eq!(fate, &Fate::Forwarded, "{id}"),
            }
        }
        let got = peer.got.into_inner().unwrap();
        for user in ["u1", "u3"] {
            let order: Vec<&String> = got.iter().filter(|id| id.starts_with(user)).collect();
            assert_eq!(
                order,
                [format!("{user}1"), format!("{user}2"), format!("{user}3")]
                    .iter()
                    .collect::<Vec<_>>()
            );
        }
        assert_eq!(
            got.iter()
                .filter(|id| id.starts_with("u2"))
                .collect::<Vec<_>>(),
            vec!["u21"],
            "nothing of u2 after its failure"
        );
    }

    #[tokio::test]
    async fn unreadable_messages_are_set_aside_or_left_but_never_count_as_forwarded() {
        let garbage = Record {
            message_id: "m-bad".into(),
            body: "not json".into(),
            group_id: Some("g-u1".into()),
        };
        let batch = vec![rec("u1", 1), garbage, rec("u1", 2)];
        let peer = Peer {
            fail: vec![],
            got: Mutex::new(vec![]),
            dlq: None,
        };
        let fates = forward_batch(&peer, &batch).await;
        assert!(matches!(&fates[1], Fate::LeftInPlace(r) if r.contains("unreadable")));
        assert!(!fates[1].done() && !fates[1].retry());
        assert_eq!(
            (&fates[0], &fates[2]),
            (&Fate::Forwarded, &Fate::Forwarded),
            "an unreadable message does not hold back its group"
        );
        let peer = Peer {
            fail: vec![],
            got: Mutex::new(vec![]),
            dlq: Some(Mutex::new(vec![])),
        };
        let fates = forward_batch(&peer, &batch).await;
        assert!(matches!(&fates[1], Fate::SetAside(_)) && fates[1].done());
        assert_eq!(peer.dlq.unwrap().into_inner().unwrap(), vec!["m-bad"]);
    }
}
