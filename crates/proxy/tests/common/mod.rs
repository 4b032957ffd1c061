//! What the in-process proxy tests share: a configuration built from layers of variables, and
//! an in-memory Secrets Manager with one app client and one replication key.
#![allow(dead_code)] // each test binary uses a part of it

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proxy::config::Config;
use proxy::ports::{BoxFut, SecretSource};
use proxy::secrets::SecretCache;

/// The replication key of `Secrets` (32 bytes of 0x01).
pub const KEY_B64: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

/// A valid minimal configuration. Nothing listens on the Cognito endpoint: a request that got
/// as far as forwarding gets a 503.
pub const BASE: &[(&str, &str)] = &[
    ("RELAY_REGION", "eu-west-1"),
    ("RELAY_USER_POOL_ID", "eu-west-1_x"),
    ("RELAY_CLIENTS_SECRET_ID", "clients"),
    ("RELAY_REPLICATION_KEY_SECRET_ID", "key"),
    ("RELAY_COGNITO_ENDPOINT", "http://127.0.0.1:9/"),
];

/// `BASE` overridden by each layer in turn.
pub fn config(layers: &[&[(&str, &str)]]) -> Config {
    let mut env: HashMap<String, String> = HashMap::new();
    for layer in std::iter::once(&BASE).chain(layers) {
        for (k, v) in layer.iter() {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
    }
    Config::from_env(&env).unwrap()
}

pub struct Secrets;
impl SecretSource for Secrets {
    fn fetch<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<String, String>> {
        let v = match id {
            "clients" => {
                r#"{"clients":[{"public_client_id":"pub","client_id":"reg","client_secret":"s"}]}"#
                    .to_owned()
            }
            _ => format!(r#"{{"current":"k1","keys":{{"k1":"{KEY_B64}"}}}}"#),
        };
        Box::pin(async move { Ok(v) })
    }
}

pub fn secrets() -> SecretCache {
    SecretCache::new(
        Arc::new(Secrets),
        "clients".into(),
        "key".into(),
        Duration::from_secs(60),
    )
}
