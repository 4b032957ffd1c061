//! `auth-trigger`: the relay's Define / Create / Verify Auth Challenge Lambda. Reads the bridge
//! keyring (`RELAY_BRIDGE_KEY_SECRET_ID`, Secrets Manager) at init and caches it; a Verify that
//! fails on the signature re-reads it at most once a minute (the key rotated).
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_runtime::{service_fn, LambdaEvent};
use relay_aws::runtime::{init_logging, or_exit, Env, ProcessEnv};
use serde_json::Value;
use tokio::sync::RwLock;
use wire::seal::Keyring;

const RELOAD_GATE: Duration = Duration::from_secs(60);

struct Keys {
    secrets: relay_aws::Secrets,
    secret_id: String,
    current: RwLock<(Instant, Arc<Keyring>)>,
    /// `RELAY_TRIGGER_CLIENT_IDS`: the app clients it acts for (empty = any).
    clients: Vec<String>,
}

impl Keys {
    async fn load(secrets: &relay_aws::Secrets, id: &str) -> Result<Keyring, String> {
        let text = secrets.get(id).await?;
        Keyring::from_json(&text).map_err(|e| format!("bridge key secret {id}: {e}"))
    }

    async fn reload_if_stale(&self) {
        if self.current.read().await.0.elapsed() < RELOAD_GATE {
            return;
        }
        match Self::load(&self.secrets, &self.secret_id).await {
            Ok(k) => *self.current.write().await = (Instant::now(), Arc::new(k)),
            Err(e) => {
                tracing::warn!(error = %e, "bridge key reload failed; keeping the loaded keys");
                self.current.write().await.0 = Instant::now();
            }
        }
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

async fn invoke(keys: &Keys, event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    let ring = keys.current.read().await.1.clone();
    let payload = event.payload;
    let (out, outcome) = trigger::handle_for(
        payload.clone(),
        &ring,
        now_secs(),
        trigger::new_nonce(),
        &keys.clients,
    );
    let (out, outcome) = if trigger::may_need_new_key(&payload, &outcome) {
        keys.reload_if_stale().await;
        let ring = keys.current.read().await.1.clone();
        trigger::handle_for(payload, &ring, now_secs(), String::new(), &keys.clients)
    } else {
        (out, outcome)
    };
    tracing::info!(
        trigger = %out["triggerSource"].as_str().unwrap_or_default(),
        pool = %out["userPoolId"].as_str().unwrap_or_default(),
        outcome = ?outcome,
        "auth challenge trigger"
    );
    Ok(out)
}

#[tokio::main]
async fn main() {
    init_logging();
    let env = ProcessEnv;
    let secret_id = or_exit(
        "auth-trigger",
        2,
        env.get("RELAY_BRIDGE_KEY_SECRET_ID").ok_or_else(|| {
            "invalid configuration: RELAY_BRIDGE_KEY_SECRET_ID is required".to_owned()
        }),
    );
    let region = or_exit(
        "auth-trigger",
        2,
        env.get("RELAY_REGION")
            .or_else(|| env.get("AWS_REGION"))
            .ok_or_else(|| {
                "invalid configuration: RELAY_REGION (or AWS_REGION) is required".to_owned()
            }),
    );
    let sdk = relay_aws::sdk_config(
        &region,
        env.get("RELAY_AWS_ENDPOINT").as_deref(),
        3,
        Duration::from_secs(3),
    )
    .await;
    let secrets = relay_aws::Secrets::new(&sdk);
    // Without the key no answer can be right: fail the init, Lambda retries it.
    let ring = or_exit("auth-trigger", 1, Keys::load(&secrets, &secret_id).await);
    let clients = env
        .get("RELAY_TRIGGER_CLIENT_IDS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    let keys = Arc::new(Keys {
        secrets,
        secret_id,
        current: RwLock::new((Instant::now(), Arc::new(ring))),
        clients,
    });
    let run = lambda_runtime::run(service_fn(move |ev| {
        let keys = keys.clone();
        async move { invoke(&keys, ev).await }
    }))
    .await;
    if let Err(e) = run {
        eprintln!("auth-trigger: {e}");
        std::process::exit(1);
    }
}
