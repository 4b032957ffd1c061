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
    ttl: Duration,
    current: Mutex<Option<(Instant, Arc<Loaded>)>>,
}

const MIN_REFRESH: Duration = Duration::from_secs(5);

impl SecretCache {
    pub fn new(source: Arc<dyn SecretSource>, clients_id: String, key_id: String, ttl: Duration) -> Self {
        Self { source, clients_id, key_id, ttl, current: Mutex::new(None) }
    }

    async fn load(&self) -> Result<Arc<Loaded>, String> {
        let clients = ClientMapping::from_json(&self.source.fetch(&self.clients_id).await?)?;
        let keys = Keyring::from_json(&self.source.fetch(&self.key_id).await?).map_err(|e| format!("{}: {e}", self.key_id))?;
        let refresh_keys = keys.derive("refresh-token");
        Ok(Arc::new(Loaded { clients, keys, refresh_keys }))
    }

    /// The cached secrets, loading them when absent or older than the TTL. When a refresh
    /// fails but an older copy exists, the older copy keeps serving.
    pub async fn get(&self) -> Result<Arc<Loaded>, WireError> {
        let mut cur = self.current.lock().await;
        if let Some((at, loaded)) = cur.as_ref() {
            if at.elapsed() < self.ttl {
                return Ok(loaded.clone());
            }
        }
        match self.load().await {
            Ok(loaded) => {
                *cur = Some((Instant::now(), loaded.clone()));
                Ok(loaded)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot load secrets");
                match cur.as_ref() {
                    Some((_, stale)) => Ok(stale.clone()),
                    None => Err(WireError::internal("The relay cannot read its configuration secrets")),
                }
            }
        }
    }

    /// After Cognito rejected a hash: reload now unless the copy is only seconds old.
    /// Returns whether the secrets changed.
    pub async fn refresh_after_rejection(&self, used: &Arc<Loaded>) -> Option<Arc<Loaded>> {
        let mut cur = self.current.lock().await;
        match cur.as_ref() {
            Some((_, loaded)) if !Arc::ptr_eq(loaded, used) => return Some(loaded.clone()),
            Some((at, _)) if at.elapsed() < MIN_REFRESH => return None,
            _ => {}
        }
        match self.load().await {
            Ok(loaded) => {
                *cur = Some((Instant::now(), loaded.clone()));
                Some(loaded)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot reload secrets after a rejected secret hash");
                None
            }
        }
    }
}
