//! The request path in process: forwarding to a stub upstream (a local axum server standing in
//! for Cognito) and the events a capturing sink receives. Each test is one way a successful
//! mutation could have gone unreplicated.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use proxy::ports::{BoxFut, Delivery, EventSink, LocalLimiter};
use proxy::AppState;
use replication::{Change, Envelope, Header};
use tower::ServiceExt;

mod common;
use wire::seal::Keyring;

use common::{call, cognito, KEY_B64};

/// Captures what the proxy delivers.
#[derive(Default)]
struct Capture(Mutex<Vec<(Header, String)>>);
impl EventSink for Capture {
    fn deliver<'a>(&'a self, header: &'a Header, body: &'a str) -> BoxFut<'a, Delivery> {
        self.0
            .lock()
            .unwrap()
            .push((header.clone(), body.to_owned()));
        Box::pin(async { Delivery::Peer })
    }
}

/// A stub Cognito: per action, a status, an error type and a body; optionally slow. Counts calls.
#[derive(Clone, Default)]
struct Stub {
    answers: Arc<HashMap<&'static str, (u16, &'static str, &'static str)>>,
    delay: Duration,
    calls: Arc<Mutex<Vec<String>>>,
}

async fn serve(stub: Stub) -> String {
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: HeaderMap| {
            let stub = stub.clone();
            async move {
                let action = headers["x-amz-target"]
                    .to_str()
                    .unwrap()
                    .rsplit('.')
                    .next()
                    .unwrap()
                    .to_owned();
                stub.calls.lock().unwrap().push(action.clone());
                tokio::time::sleep(stub.delay).await;
                let (status, kind, body) = stub
                    .answers
                    .get(action.as_str())
                    .copied()
                    .unwrap_or((200, "", "{}"));
                let mut r = axum::response::Response::new(Body::from(body));
                *r.status_mut() = StatusCode::from_u16(status).unwrap();
                if !kind.is_empty() {
                    r.headers_mut()
                        .insert("x-amzn-errortype", kind.parse().unwrap());
                }
                r
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

async fn state(stub: Stub, extra: &[(&str, &str)]) -> (Arc<AppState>, Arc<Capture>) {
    let endpoint = serve(stub).await;
    let endpoint: &str = &endpoint;
    let replication: &[(&str, &str)] = &[
        ("RELAY_USER_POOL_ID", "eu-west-1_a"),
        ("RELAY_PEER_REGION", "eu-central-1"),
        ("RELAY_PEER_QUEUE_URL", "https://sqs/peer.fifo"),
        ("RELAY_PEER_USER_POOL_ID", "eu-central-1_b"),
        ("RELAY_RATE_PER_IP", "0"),
        ("RELAY_COGNITO_ENDPOINT", endpoint),
    ];
    let cfg = common::config(&[replication, extra]);
    let secrets = common::secrets();
    let sink = Arc::new(Capture::default());
    let st = AppState::new(
        cfg,
        secrets,
        Some(sink.clone() as Arc<dyn EventSink>),
        None,
        Arc::new(LocalLimiter::default()),
        false,
    )
    .unwrap();
    (Arc::new(st), sink)
}

fn keys() -> Keyring {
    Keyring::from_json(&format!(
        r#"{{"current":"k1","keys":{{"k1":"{KEY_B64}"}}}}"#
    ))
    .unwrap()
}

fn access_token(username: &str) -> String {
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!(r#"{{"sub":"sub-1","username":"{username}"}}"#));
    format!("h.{payload}.sig")
}

fn stub(answers: &[(&'static str, (u16, &'static str, &'static str))]) -> Stub {
    Stub {
        answers: Arc::new(answers.iter().copied().collect()),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_empty_success_body_still_replicates_sealed_for_the_peer() {
    let (st, sink) = state(stub(&[("ChangePassword", (200, "", ""))]), &[]).await;
    let body = format!(
        r#"{{"AccessToken":"{}","PreviousPassword":"Old-Passw0rd!","ProposedPassword":"New-Passw0rd!"}}"#,
        access_token("alice")
    );
    let (status, _, _) = call(st.clone(), cognito("ChangePassword", &body)).await;
    assert_eq!(status, StatusCode::OK);
    let got = sink.0.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "exactly one event");
    let (header, sealed) = &got[0];
    assert_eq!(
        (
            header.action.as_str(),
            header.origin_pool.as_str(),
            header.target_pool.as_str()
        ),
        ("ChangePassword", "eu-west-1_a", "eu-central-1_b")
    );
    assert!(
        !sealed.contains("New-Passw0rd") && !sealed.contains("alice"),
        "nothing readable on the queue"
    );
    let event = Envelope::open(sealed, &keys()).unwrap();
    assert_eq!(event.user_key, "alice");
    let Change::SetPassword { sealed_password } = event.change else {
        panic!("{:?}", event.change)
    };
    assert_eq!(
        keys().open(&sealed_password, event.id.as_bytes()).unwrap(),
        b"New-Passw0rd!"
    );
}

#[tokio::test]
async fn a_passwordless_sign_up_replicates() {
    let (st, sink) = state(stub(&[("SignUp", (200, "", r#"{"UserConfirmed":false,"UserSub":"s-1","CodeDeliveryDetails":{"AttributeName":"email","DeliveryMedium":"EMAIL","Destination":"a***@x.io"}}"#))]), &[]).await;
    let (status, _, _) = call(st, cognito("SignUp", r#"{"ClientId":"pub","Username":"bob","UserAttributes":[{"Name":"email","Value":"b@x.io"}]}"#)).await;
    assert_eq!(status, StatusCode::OK);
    let got = sink.0.lock().unwrap().clone();
    let event = Envelope::open(&got[0].1, &keys()).unwrap();
    let Change::CreateUser {
        sealed_password,
        confirm_verifies,
        ..
    } = event.change
    else {
        panic!()
    };
    assert_eq!(
        (sealed_password, confirm_verifies.as_deref()),
        (None, Some("email"))
    );
}

#[tokio::test]
async fn a_token_mutation_whose_user_cannot_be_resolved_is_refused_before_forwarding() {
    let s = stub(&[(
        "GetUser",
        (
            400,
            "TooManyRequestsException",
            r#"{"__type":"TooManyRequestsException","message":"Rate exceeded"}"#,
        ),
    )]);
    let calls = s.calls.clone();
    let (st, sink) = state(s, &[("RELAY_USERNAME_ATTRIBUTES", "email")]).await;
    let body = format!(
        r#"{{"AccessToken":"{}","UserAttributes":[{{"Name":"name","Value":"X"}}]}}"#,
        access_token("uuid-1")
    );
    let (status, headers, json) = call(st, cognito("UpdateUserAttributes", &body)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        headers["x-amzn-errortype"],
        json["__type"].as_str().unwrap()
    );
    assert_eq!(
        calls.lock().unwrap().as_slice(),
        ["GetUser"],
        "the mutation never reached Cognito"
    );
    assert!(sink.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_client_that_goes_away_mid_request_does_not_lose_the_event() {
    let mut s = stub(&[]);
    s.delay = Duration::from_millis(400);
    let (st, sink) = state(s, &[]).await;
    let body = format!(
        r#"{{"AccessToken":"{}","PreviousPassword":"a","ProposedPassword":"Newer-Passw0rd!"}}"#,
        access_token("carol")
    );
    // The client gives up (its request future is dropped) while Cognito is still working.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        call(st.clone(), cognito("ChangePassword", &body)),
    )
    .await;
    assert!(gave_up.is_err());
    let mut waited = 0;
    while sink.0.lock().unwrap().is_empty() && waited < 50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    let got = sink.0.lock().unwrap().clone();
    assert_eq!(
        got.len(),
        1,
        "the mutation Cognito made was still replicated"
    );
    assert_eq!(got[0].0.action, "ChangePassword");
}

#[tokio::test]
async fn an_attribute_change_carries_the_origins_verified_flags() {
    let (st, sink) = state(stub(&[("UpdateUserAttributes", (200, "", r#"{"CodeDeliveryDetailsList":[{"AttributeName":"email","DeliveryMedium":"EMAIL","Destination":"n***@x.io"}]}"#))]), &[]).await;
    let body = format!(
        r#"{{"AccessToken":"{}","UserAttributes":[{{"Name":"email","Value":"new@x.io"}},{{"Name":"phone_number","Value":"+15550100"}}]}}"#,
        access_token("dave")
    );
    call(st, cognito("UpdateUserAttributes", &body)).await;
    let event = Envelope::open(&sink.0.lock().unwrap()[0].1, &keys()).unwrap();
    let Change::UpdateAttributes { attributes } = event.change else {
        panic!()
    };
    let flags: Vec<(String, String)> = attributes
        .into_iter()
        .filter(|a| a.name.ends_with("_verified"))
        .map(|a| (a.name, a.value))
        .collect();
    assert_eq!(
        flags,
        vec![("email_verified".to_owned(), "false".to_owned())]
    );
}

#[tokio::test]
async fn cognito_throttling_is_counted_in_the_metrics() {
    let s = stub(&[(
        "ForgotPassword",
        (
            400,
            "TooManyRequestsException",
            r#"{"__type":"TooManyRequestsException","message":"Rate exceeded"}"#,
        ),
    )]);
    let (st, _) = state(s, &[]).await;
    for _ in 0..2 {
        let (_, headers, _) = call(
            st.clone(),
            cognito("ForgotPassword", r#"{"ClientId":"pub","Username":"bob"}"#),
        )
        .await;
        assert_eq!(
            headers["x-amzn-errortype"], "TooManyRequestsException",
            "Cognito's answer is passed on"
        );
    }
    let resp = proxy::app(st)
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.lines().any(|l| l == "relay_cognito_throttled_total 2"),
        "{text}"
    );
}
