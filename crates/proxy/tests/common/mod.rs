//! What the in-process proxy tests share: a configuration built from layers of variables, and
//! an in-memory Secrets Manager with one app client and one replication key.
#![allow(dead_code)] // each test binary uses a part of it

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use proxy::config::Config;
use proxy::ports::{BoxFut, Control, SecretSource};
use proxy::secrets::SecretCache;
use proxy::AppState;
use tower::ServiceExt;

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
    fn fetch<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<String, proxy::Error>> {
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

// The router driven in process (`oneshot`).

pub struct Switch {
    pub drained: bool,
    pub pool_ok: bool,
}
impl Control for Switch {
    fn drained(&self) -> BoxFut<'_, Result<bool, proxy::Error>> {
        let d = self.drained;
        Box::pin(async move { Ok(d) })
    }
    fn pool_ok(&self) -> BoxFut<'_, Result<(), proxy::Error>> {
        let ok = self.pool_ok;
        Box::pin(async move {
            if ok {
                Ok(())
            } else {
                Err(proxy::Error::unreachable("connection failure"))
            }
        })
    }
}

pub fn healthy() -> Switch {
    Switch {
        drained: false,
        pool_ok: true,
    }
}

pub async fn call(
    st: Arc<AppState>,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let resp = proxy::app(st).oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

pub fn cognito(target: &str, body: &str) -> Request<Body> {
    Request::post("/")
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "x-amz-target",
            format!("AWSCognitoIdentityProviderService.{target}"),
        )
        .body(Body::from(body.to_owned()))
        .unwrap()
}
