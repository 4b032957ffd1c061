//! The proxy's ports over AWS: Secrets Manager, the peer's SQS queue (with the local fallback
//! queue), and the home pool + drain switch for `/health`.

use relay_aws::cognito::Pool;
use relay_aws::queue::Queues;
use relay_aws::{DrainSwitch, Secrets};
use replication::Header;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tracing::{error, warn};

use crate::ports::{BoxFut, Control, Delivery, EventSink, SecretSource};

pub struct SecretsManager(pub Secrets);

impl SecretSource for SecretsManager {
    fn fetch<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<String, crate::Error>> {
        Box::pin(async move { Ok(self.0.get(id).await?) })
    }
}

pub struct SqsSink {
    peer: Queues,
    peer_url: String,
    fallback: Option<(Queues, String)>,
    /// Set once an event went to the fallback queue: later events follow it there until that
    /// queue is empty, so a user's newer event cannot overtake an older one still waiting to
    /// be forwarded (a stale password replayed last would win).
    sticky: AtomicBool,
    /// When the fallback queue was last seen still holding events.
    checked: Mutex<Option<Instant>>,
}

/// How often a sticky sink asks whether the fallback queue has drained.
const DRAIN_CHECK: Duration = Duration::from_secs(1);

impl SqsSink {
    pub fn new(peer: Queues, peer_url: String, fallback: Option<(Queues, String)>) -> Self {
        Self {
            peer,
            peer_url,
            fallback,
            sticky: AtomicBool::new(false),
            checked: Mutex::new(None),
        }
    }

    /// Whether new events must still go to the fallback queue.
    async fn stay_on_fallback(&self, q: &Queues, url: &str) -> bool {
        if !self.sticky.load(Relaxed) {
            return false;
        }
        let mut checked = self.checked.lock().await;
        if checked.is_some_and(|at| at.elapsed() < DRAIN_CHECK) {
            return true;
        }
        match q.depth(url).await {
            Ok(d) if d.visible + d.in_flight == 0 => {
                self.sticky.store(false, Relaxed);
                *checked = None;
                tracing::info!("fallback queue drained; events go to the peer directly again");
                false
            }
            _ => {
                *checked = Some(Instant::now());
                true
            }
        }
    }
}

impl EventSink for SqsSink {
    fn deliver<'a>(&'a self, event: &'a Header, body: &'a str) -> BoxFut<'a, Delivery> {
        Box::pin(async move {
            let sticky = match &self.fallback {
                Some((q, url)) => self.stay_on_fallback(q, url).await,
                None => false,
            };
            // The peer first, unless earlier events still wait in the fallback queue.
            if !sticky {
                match self.peer.send_event(&self.peer_url, event, body).await {
                    Ok(()) => return Delivery::Peer,
                    Err(e) => {
                        warn!(event_id = %event.id, error = %e, "peer queue unreachable; trying the fallback queue")
                    }
                }
            }
            if let Some((q, url)) = &self.fallback {
                match q.send_event(url, event, body).await {
                    Ok(()) => {
                        self.sticky.store(true, Relaxed);
                        return Delivery::Fallback;
                    }
                    Err(e) => warn!(event_id = %event.id, error = %e, "fallback queue unreachable"),
                }
            }
            if sticky {
                match self.peer.send_event(&self.peer_url, event, body).await {
                    Ok(()) => return Delivery::Peer,
                    Err(e) => warn!(event_id = %event.id, error = %e, "peer queue unreachable"),
                }
            }
            error!(event_id = %event.id, action = %event.action, "replication event lost; reconcile will repair it");
            Delivery::Lost
        })
    }
}

/// The region's state table, advanced for the writes this proxy forwards.
pub struct StateMarks(pub relay_aws::state::Table);

impl crate::ports::LocalMarks for StateMarks {
    fn advance<'a>(
        &'a self,
        user_key: &'a str,
        change: &'a replication::Change,
        order: &'a replication::OrderKey,
    ) -> BoxFut<'a, Result<(), crate::Error>> {
        Box::pin(async move {
            replication::state::update(&self.0, &replication::state::record_key(user_key), |r| {
                r.advance(change, order)
            })
            .await
            .map_err(crate::Error::from)
        })
    }
}

pub struct AwsControl {
    pub pool: Pool,
    pub drain: Option<DrainSwitch>,
}

impl Control for AwsControl {
    fn drained(&self) -> BoxFut<'_, Result<bool, crate::Error>> {
        Box::pin(async move {
            match &self.drain {
                Some(d) => Ok(d.get().await?),
                None => Ok(false),
            }
        })
    }
    fn pool_ok(&self) -> BoxFut<'_, Result<(), crate::Error>> {
        Box::pin(async move { Ok(self.pool.ping().await?) })
    }
}

impl crate::ports::BridgeStore for StateMarks {
    fn record<'a>(
        &'a self,
        user_key: &'a str,
    ) -> BoxFut<'a, Result<replication::UserRecord, crate::Error>> {
        use replication::StateStore;
        Box::pin(async move {
            self.0
                .load(&replication::state::record_key(user_key))
                .await
                .map(|v| v.record)
                .map_err(crate::Error::from)
        })
    }

    fn claim_once<'a>(
        &'a self,
        id: &'a str,
        expires: i64,
    ) -> BoxFut<'a, Result<bool, crate::Error>> {
        Box::pin(async move {
            self.0
                .claim_once(&format!("once#{id}"), expires)
                .await
                .map_err(crate::Error::from)
        })
    }

    fn update<'a>(
        &'a self,
        user_key: &'a str,
        mut f: Box<dyn FnMut(&mut replication::UserRecord) + Send + 'a>,
    ) -> BoxFut<'a, Result<(), crate::Error>> {
        Box::pin(async move {
            replication::state::update(&self.0, &replication::state::record_key(user_key), |r| f(r))
                .await
                .map_err(crate::Error::from)
        })
    }
}

/// The home pool's Admin API for the sign-up finisher (AdminGetUser, AdminDeleteUser).
pub struct AdminPlaceholders(pub Pool);

impl crate::ports::Placeholders for AdminPlaceholders {
    fn get<'a>(
        &'a self,
        user_key: &'a str,
    ) -> BoxFut<'a, Result<Option<replication::UserState>, crate::Error>> {
        use replication::UserDirectory;
        Box::pin(async move { Ok(self.0.get_user(user_key).await?) })
    }

    fn delete<'a>(&'a self, username: &'a str) -> BoxFut<'a, Result<(), crate::Error>> {
        use replication::UserDirectory;
        Box::pin(async move { Ok(self.0.run(username, &replication::Step::Delete).await?) })
    }
}
