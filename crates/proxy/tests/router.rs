//! The router without a server or network (`oneshot`): admission, refusals, CORS and /health
//! decisions, with in-memory ports. Forwarding is covered end to end in tests/e2e.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proxy::ports::LocalLimiter;
use proxy::AppState;

mod common;

use common::{call, cognito, healthy, Switch};

fn state(extra: &[(&str, &str)], control: Switch) -> Arc<AppState> {
    Arc::new(
        AppState::new(
            common::config(&[extra]),
            common::secrets(),
            None,
            Some(Arc::new(control)),
            Arc::new(LocalLimiter::default()),
            false,
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn refusals_are_cognito_shaped() {
    for (target, body, kind) in [
        ("AdminCreateUser", "{}", "NotAuthorizedException"),
        ("ListUserPools", "{}", "UnknownOperationException"),
        ("SignUp", "{oops", "SerializationException"),
        (
            "SignUp",
            r#"{"ClientId":"nope","Username":"a"}"#,
            "ResourceNotFoundException",
        ),
        (
            "InitiateAuth",
            r#"{"ClientId":"pub","AuthFlow":"REFRESH_TOKEN_AUTH","AuthParameters":{"REFRESH_TOKEN":"crr1.v1.k1.AAAA"}}"#,
            "NotAuthorizedException",
        ),
    ] {
        let (status, headers, body) = call(state(&[], healthy()), cognito(target, body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{target}");
        assert_eq!(headers["x-amzn-errortype"], kind, "{target}");
        assert_eq!(body["__type"], kind);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn oversized_bodies_and_wrong_content_types_are_refused() {
    let big = format!(
        r#"{{"ClientId":"pub","Username":"{}"}}"#,
        "a".repeat(70_000)
    );
    let (status, headers, _) = call(state(&[], healthy()), cognito("SignUp", &big)).await;
    assert_eq!(
        (status, headers["x-amzn-errortype"].to_str().unwrap()),
        (StatusCode::BAD_REQUEST, "InvalidParameterException")
    );
    let req = Request::post("/")
        .header("content-type", "text/plain")
        .header("x-amz-target", "AWSCognitoIdentityProviderService.SignUp")
        .body(Body::from("{}"))
        .unwrap();
    let (status, headers, _) = call(state(&[], healthy()), req).await;
    assert_eq!(
        (status, headers["x-amzn-errortype"].to_str().unwrap()),
        (StatusCode::BAD_REQUEST, "SerializationException")
    );
}

#[tokio::test]
async fn an_unreachable_pool_gets_a_cognito_shaped_5xx() {
    let (status, headers, body) = call(
        state(&[], healthy()),
        cognito("ForgotPassword", r#"{"ClientId":"pub","Username":"a"}"#),
    )
    .await;
    assert!(status.is_server_error());
    assert_eq!(
        headers["x-amzn-errortype"],
        body["__type"].as_str().unwrap()
    );
}

#[tokio::test]
async fn per_username_limit_answers_too_many_requests() {
    let st = state(&[("RELAY_RATE_PER_USERNAME", "2")], healthy());
    let mut kinds = vec![];
    for _ in 0..3 {
        let (_, headers, _) = call(
            st.clone(),
            cognito("ForgotPassword", r#"{"ClientId":"pub","Username":"Same"}"#),
        )
        .await;
        kinds.push(headers["x-amzn-errortype"].to_str().unwrap().to_owned());
    }
    assert_ne!(kinds[0], "TooManyRequestsException");
    assert_eq!(kinds[2], "TooManyRequestsException");
}

#[tokio::test]
async fn cors_follows_the_configured_origins() {
    let st = state(
        &[("RELAY_CORS_ORIGINS", "https://app.example.com")],
        healthy(),
    );
    let pre = |origin: &str| {
        Request::options("/")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(Body::empty())
            .unwrap()
    };
    let (status, headers, _) = call(st.clone(), pre("https://app.example.com")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("x-amz-target"));
    let (_, headers, _) = call(st, pre("https://evil.example.net")).await;
    assert!(headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn health_reports_drain_and_pool_with_a_reason() {
    let get = || Request::get("/health").body(Body::empty()).unwrap();
    let (status, _, body) = call(state(&[], healthy()), get()).await;
    assert_eq!(
        (status, body["healthy"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let (status, _, body) = call(
        state(
            &[],
            Switch {
                drained: true,
                pool_ok: true,
            },
        ),
        get(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["reason"].as_str().unwrap().contains("drained"));
    let (status, _, body) = call(
        state(
            &[],
            Switch {
                drained: false,
                pool_ok: false,
            },
        ),
        get(),
    )
    .await;
    assert_eq!(
        (status, body["pool"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unreachable"))
    );
}

#[tokio::test]
async fn refused_origins_still_vary_on_origin() {
    let st = state(
        &[("RELAY_CORS_ORIGINS", "https://app.example.com")],
        healthy(),
    );
    let post = |origin: &str| {
        let mut r = cognito("ForgotPassword", "{oops");
        r.headers_mut().insert("origin", origin.parse().unwrap());
        r
    };
    let pre = |origin: &str| {
        Request::options("/")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(Body::empty())
            .unwrap()
    };
    for req in [
        post("https://evil.example.net"),
        pre("https://evil.example.net"),
        post("https://app.example.com"),
    ] {
        let (_, headers, _) = call(st.clone(), req).await;
        assert_eq!(
            headers["vary"], "Origin",
            "a shared cache must key this answer on Origin"
        );
    }
    // Any origin: the answer does not depend on Origin.
    let (_, headers, _) = call(state(&[], healthy()), post("https://evil.example.net")).await;
    assert!(headers.get("vary").is_none());
}

#[tokio::test]
async fn get_on_the_endpoint_is_a_cognito_shaped_refusal() {
    for method in ["GET", "PUT", "DELETE"] {
        let req = Request::builder()
            .method(method)
            .uri("/")
            .body(Body::empty())
            .unwrap();
        let (status, headers, body) = call(state(&[], healthy()), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method}");
        assert_eq!(headers["x-amzn-errortype"], "UnknownOperationException");
        assert_eq!(body["__type"], "UnknownOperationException");
        assert!(body["message"].as_str().unwrap().contains("POST"));
        assert_eq!(headers["allow"], "POST, OPTIONS");
    }
}

fn from_peer(peer: &str, xff: Option<&str>) -> Request<Body> {
    let mut r = cognito(
        "ForgotPassword",
        r#"{"ClientId":"pub","Username":"someone"}"#,
    );
    r.extensions_mut().insert(axum::extract::ConnectInfo(
        peer.parse::<std::net::SocketAddr>().unwrap(),
    ));
    if let Some(x) = xff {
        r.headers_mut()
            .insert("x-forwarded-for", x.parse().unwrap());
    }
    r
}

async fn kinds(st: &Arc<AppState>, reqs: Vec<Request<Body>>) -> Vec<String> {
    let mut out = vec![];
    for r in reqs {
        let (_, headers, _) = call(st.clone(), r).await;
        out.push(headers["x-amzn-errortype"].to_str().unwrap().to_owned());
    }
    out
}

#[tokio::test]
async fn rotating_x_forwarded_for_does_not_escape_the_per_ip_limit() {
    let st = state(
        &[("RELAY_RATE_PER_IP", "2"), ("RELAY_RATE_PER_USERNAME", "0")],
        healthy(),
    );
    let reqs = (0..3)
        .map(|i| from_peer("198.51.100.9:5000", Some(&format!("203.0.113.{i}"))))
        .collect();
    assert_eq!(
        kinds(&st, reqs).await[2],
        "TooManyRequestsException",
        "an untrusted peer's header is ignored"
    );
    // Behind a trusted load balancer each forwarded caller has its own budget.
    let st = state(
        &[
            ("RELAY_RATE_PER_IP", "2"),
            ("RELAY_RATE_PER_USERNAME", "0"),
            ("RELAY_TRUSTED_PROXIES", "10.0.0.0/8"),
        ],
        healthy(),
    );
    let reqs = (0..3)
        .map(|i| from_peer("10.0.0.5:5000", Some(&format!("203.0.113.{i}"))))
        .collect();
    assert!(kinds(&st, reqs)
        .await
        .iter()
        .all(|k| k != "TooManyRequestsException"));
}

#[tokio::test]
async fn requests_with_no_known_ip_share_one_limit() {
    let st = state(
        &[("RELAY_RATE_PER_IP", "2"), ("RELAY_RATE_PER_USERNAME", "0")],
        healthy(),
    );
    // No socket address and no API Gateway context: the caller cannot be told.
    let reqs = (0..3)
        .map(|_| cognito("ForgotPassword", r#"{"ClientId":"pub","Username":"x"}"#))
        .collect();
    assert_eq!(kinds(&st, reqs).await[2], "TooManyRequestsException");
}
