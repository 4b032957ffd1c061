//! Client secrets and the replication key, fetched once and cached per process with a TTL.
//! Refreshed early, at most once per few seconds, when Cognito rejects a secret hash
//! (the app client secret rotated).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use wire::seal::Keyring;
use wire::{ClientMapping, WireError};

use crate::ports::SecretSource;

pub struct Loaded {
    pub clients: ClientMapping,
    pub keys: Keyring,
    /// Subkeys for sealing refresh tokens.
    pub refresh_keys: Keyring,
}

pub struct SecretCache {
    source: Arc<dyn SecretSource>,
    clients_id: String,
    key_id: String,
    refresh_id: Option<String>,
    ttl: Duration,
    /// Read on every request without waiting; written only by a reload.
    current: std::sync::RwLock<Option<(Instant, Arc<Loaded>)>>,
    /// One reload at a time.
    reload: Mutex<()>,
}

const MIN_REFRESH: Duration = Duration::from_secs(5);

impl SecretCache {
    pub fn new(source: Arc<dyn SecretSource>, clients_id: String, key_id: String, ttl: Duration) -> Self {
        Self { source, clients_id, key_id, refresh_id: None, ttl, current: std::sync::RwLock::new(None), reload: Mutex::new(()) }
    }

    /// Reads the refresh-token keyring from its own secret.
    pub fn with_refresh_secret(mut self, id: Option<String>) -> Self {
        self.refresh_id = id;
        self
    }

    async fn load(&self) -> Result<Arc<Loaded>, String> {
        let clients = ClientMapping::from_json(&self.source.fetch(&self.clients_id).await?)?;
        let keys = Keyring::from_json(&self.source.fetch(&self.key_id).await?).map_err(|e| format!("{}: {e}", self.key_id))?;
        let refresh_keys = match &self.refresh_id {
            Some(id) => Keyring::from_json(&self.source.fetch(id).await?).map_err(|e| format!("{id}: {e}"))?.derive("refresh-token"),
            None => keys.derive("refresh-token"),
        };
        Ok(Arc::new(Loaded { clients, keys, refresh_keys }))
    }

    fn cached(&self) -> Option<(Instant, Arc<Loaded>)> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Loads from the source and, on success, makes it the cached copy. Call with `reload` held.
    async fn reload(&self, why: &str) -> Result<Arc<Loaded>, ()> {
        match self.load().await {
            Ok(loaded) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), loaded.clone()));
                Ok(loaded)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot load secrets ({why})");
                Err(())
            }
        }
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
        if let Some((at, loaded)) = self.cached() {
            if at.elapsed() < self.ttl {
                return Ok(loaded); // another request reloaded meanwhile
            }
        }
        match self.reload("expired or absent").await {
            Ok(loaded) => Ok(loaded),
            Err(()) => match self.cached() {
                Some((_, stale)) => Ok(stale),
                None => Err(WireError::internal("The relay cannot read its configuration secrets")),
            },
        }
    }

    /// After Cognito rejected a hash: reload now unless the copy is only seconds old.
    /// Returns the secrets to retry with, or `None` when there is nothing newer to try.
    pub async fn refresh_after_rejection(&self, used: &Arc<Loaded>) -> Option<Arc<Loaded>> {
        let _one = self.reload.lock().await;
        match self.cached() {
            Some((_, loaded)) if !Arc::ptr_eq(&loaded, used) => return Some(loaded),
            Some((at, _)) if at.elapsed() < MIN_REFRESH => return None,
            _ => {}
        }
        self.reload("after a rejected secret hash").await.ok()
    }
}
