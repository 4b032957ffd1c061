//! The proxy without its secrets, in a test binary of its own: /health reads the process-wide
//! liveness registry, which any other test that loads secrets successfully would clear.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proxy::config::Config;
use proxy::ports::{BoxFut, LocalLimiter, SecretSource};
use proxy::secrets::SecretCache;
use proxy::AppState;

mod common;

use common::{call, cognito, healthy};

/// Secrets Manager unreachable: counts the attempts.
struct Unreachable(std::sync::atomic::AtomicUsize);
impl SecretSource for Unreachable {
    fn fetch<'a>(&'a self, _: &'a str) -> BoxFut<'a, Result<String, proxy::Error>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async {
            Err(proxy::Error::unreachable(
                "GetSecretValue: connection failure (I/O)",
            ))
        })
    }
}

#[tokio::test]
async fn without_its_secrets_the_proxy_answers_cognito_shaped_503s_and_health_says_why() {
    let source = Arc::new(Unreachable(Default::default()));
    let mut env: HashMap<String, String> = HashMap::new();
    for (k, v) in [
        ("RELAY_REGION", "eu-west-1"),
        ("RELAY_USER_POOL_ID", "eu-west-1_x"),
        ("RELAY_CLIENTS_SECRET_ID", "clients"),
        ("RELAY_REPLICATION_KEY_SECRET_ID", "key"),
        ("RELAY_COGNITO_ENDPOINT", "http://127.0.0.1:9/"),
    ] {
        env.insert(k.into(), v.into());
    }
    let secrets = SecretCache::new(
        source.clone(),
        "clients".into(),
        "key".into(),
        Duration::from_secs(60),
    );
    let st = Arc::new(
        AppState::new(
            Config::from_env(&env).unwrap(),
            secrets,
            None,
            Some(Arc::new(healthy())),
            Arc::new(LocalLimiter::default()),
            false,
        )
        .unwrap(),
    );
    let (status, headers, body) = call(
        st.clone(),
        cognito("ForgotPassword", r#"{"ClientId":"pub","Username":"a"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["x-amzn-errortype"], "ServiceUnavailableException");
    assert_eq!(body["__type"], "ServiceUnavailableException");
    // Right after a failure, requests do not wait for Secrets Manager again.
    let attempts = source.0.load(std::sync::atomic::Ordering::SeqCst);
    let (status, _, _) = call(
        st.clone(),
        cognito("ForgotPassword", r#"{"ClientId":"pub","Username":"a"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        source.0.load(std::sync::atomic::Ordering::SeqCst),
        attempts,
        "no new attempt within the retry gate"
    );
    let (status, _, body) = call(st, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .starts_with("waiting for secrets (Secrets Manager) since "),
        "{body}"
    );
    assert!(
        body["waiting"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["dependency"] == "secrets (Secrets Manager)"
                && w["error"].as_str().unwrap().contains("connection failure")),
        "{body}"
    );
}
