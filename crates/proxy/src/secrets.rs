//! Client secrets and the replication key, fetched once and cached per process with a TTL.
//! Refreshed early, at most once per few seconds, when Cognito rejects a secret hash
//! (the app client secret rotated). While Secrets Manager cannot be reached, requests get a
//! Cognito-shaped 503 (or the last copy, if there is one) without waiting for it: after a failed
//! load the next attempt is at least `RETRY_GATE` away, and a standalone proxy keeps loading in
//! the background (`warm`), so it serves within seconds of the network's return.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use wire::seal::Keyring;
use wire::{ClientMapping, WireError};

use relay_aws::liveness::{self, dep};

use crate::ports::SecretSource;

pub struct Loaded {
    pub clients: ClientMapping,
    pub keys: Keyring,
    /// Subkeys for sealing refresh tokens.
    pub refresh_keys: Keyring,
    /// The bridge keyring (bridging proxies only).
    pub bridge_keys: Option<Keyring>,
}

pub struct SecretCache {
    source: Arc<dyn SecretSource>,
    clients_id: String,
    key_id: String,
    refresh_id: Option<String>,
    bridge_id: Option<String>,
    ttl: Duration,
    /// A rejected hash reloads the secrets only when the copy is at least this old.
    min_refresh: Duration,
    /// Read on every request without waiting; written only by a reload.
    current: std::sync::RwLock<Option<(Instant, Arc<Loaded>)>>,
    /// One reload at a time.
    reload: Mutex<()>,
    /// When the last load failed (cleared by a success).
    failed_at: std::sync::Mutex<Option<Instant>>,
}

const MIN_REFRESH: Duration = Duration::from_secs(5);
/// After a failed load, requests do not try again before this (they get 503 or the last copy).
const RETRY_GATE: Duration = Duration::from_secs(1);
/// `warm` retries from 200 ms up to this apart.
const WARM_MAX: Duration = Duration::from_secs(2);

impl SecretCache {
    pub fn new(
        source: Arc<dyn SecretSource>,
        clients_id: String,
        key_id: String,
        ttl: Duration,
    ) -> Self {
        Self {
            source,
            clients_id,
            key_id,
            refresh_id: None,
            bridge_id: None,
            ttl,
            min_refresh: MIN_REFRESH,
            current: std::sync::RwLock::new(None),
            reload: Mutex::new(()),
            failed_at: std::sync::Mutex::new(None),
        }
    }

    /// A rejected secret hash reloads the secrets only when the copy is at least `min` old
    /// (default 5 s; in-process tests rotate a secret without waiting).
    pub fn with_min_refresh(mut self, min: Duration) -> Self {
        self.min_refresh = min;
        self
    }

    /// Reads the refresh-token keyring from its own secret.
    pub fn with_refresh_secret(mut self, id: Option<String>) -> Self {
        self.refresh_id = id;
        self
    }

    /// Reads the bridge keyring from its own secret (bridging proxies).
    pub fn with_bridge_secret(mut self, id: Option<String>) -> Self {
        self.bridge_id = id;
        self
    }

    async fn load(&self) -> Result<Arc<Loaded>, crate::Error> {
        let clients = ClientMapping::from_json(&self.source.fetch(&self.clients_id).await?)?;
        let keys =
            Keyring::from_json(&self.source.fetch(&self.key_id).await?).map_err(|source| {
                crate::Error::Keyring {
                    id: self.key_id.clone(),
                    source,
                }
            })?;
        let refresh_keys = match &self.refresh_id {
            Some(id) => Keyring::from_json(&self.source.fetch(id).await?)
                .map_err(|source| crate::Error::Keyring {
                    id: id.clone(),
                    source,
                })?
                .derive("refresh-token"),
            None => keys.derive("refresh-token"),
        };
        let bridge_keys = match &self.bridge_id {
            Some(id) => Some(Keyring::from_json(&self.source.fetch(id).await?).map_err(
                |source| crate::Error::Keyring {
                    id: id.clone(),
                    source,
                },
            )?),
            None => None,
        };
        Ok(Arc::new(Loaded {
            clients,
            keys,
            refresh_keys,
            bridge_keys,
        }))
    }

    fn cached(&self) -> Option<(Instant, Arc<Loaded>)> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Loads from the source and, on success, makes it the cached copy. Call with `reload` held.
    async fn reload(&self, why: &str) -> Result<Arc<Loaded>, ()> {
        let loaded = self.load().await;
        liveness::global().observe(dep::SECRETS, &loaded);
        match loaded {
            Ok(loaded) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) =
                    Some((Instant::now(), loaded.clone()));
                *self.failed_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Ok(loaded)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot load secrets ({why})");
                *self.failed_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                Err(())
            }
        }
    }

    /// Whether a load failed less than RETRY_GATE ago.
    fn recently_failed(&self) -> bool {
        self.failed_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() < RETRY_GATE)
    }

    fn unavailable() -> WireError {
        WireError::unavailable("The relay is waiting for its configuration secrets; retry")
    }

    /// Whether secrets are loaded (fresh or not).
    pub fn loaded(&self) -> bool {
        self.cached().is_some()
    }

    /// Loads the secrets until they are in, retrying with backoff (standalone: started with the
    /// server, so a proxy started during an outage needs no request to recover).
    pub async fn warm(&self) {
        use backon::Retryable;
        let policy = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(WARM_MAX)
            .with_jitter()
            .without_max_times();
        let _ = (|| async { self.get().await.map(|_| ()) })
            .retry(policy)
            .await;
    }

    /// The cached secrets, loading them when absent or older than the TTL. When a refresh
    /// fails but an older copy exists, the older copy keeps serving.
    pub async fn get(&self) -> Result<Arc<Loaded>, WireError> {
        if let Some((at, loaded)) = self.cached() {
            if at.elapsed() < self.ttl {
                return Ok(loaded);
            }
        }
        let _one = self.reload.lock().await;
        let cached = self.cached();
        if let Some((at, loaded)) = &cached {
            if at.elapsed() < self.ttl {
                return Ok(loaded.clone()); // another request reloaded meanwhile
            }
        }
        if self.recently_failed() {
            return cached.map(|(_, stale)| stale).ok_or_else(Self::unavailable);
        }
        match self.reload("expired or absent").await {
            Ok(loaded) => Ok(loaded),
            Err(()) => self
                .cached()
                .map(|(_, stale)| stale)
                .ok_or_else(Self::unavailable),
        }
    }

    /// After Cognito rejected a hash: reload now unless the copy is only seconds old.
    /// Returns the secrets to retry with, or `None` when there is nothing newer to try.
    pub async fn refresh_after_rejection(&self, used: &Arc<Loaded>) -> Option<Arc<Loaded>> {
        let _one = self.reload.lock().await;
        match self.cached() {
            Some((_, loaded)) if !Arc::ptr_eq(&loaded, used) => return Some(loaded),
            Some((at, _)) if at.elapsed() < self.min_refresh => return None,
            _ => {}
        }
        self.reload("after a rejected secret hash").await.ok()
    }
}
