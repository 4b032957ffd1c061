//! The request stages in process (`oneshot`), forwarding to a stub Cognito (a local axum server
//! that checks secret hashes like Cognito does) and capturing what the event sink receives:
//! forwarding, the retry after a client secret rotation, replication and refresh-token sealing.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use proxy::ports::{BoxFut, Delivery, EventSink, LocalLimiter, SecretSource};
use proxy::secrets::SecretCache;
use proxy::AppState;
use replication::{Change, Envelope, Header};
use serde_json::{json, Value};
use tower::ServiceExt;
use wire::seal::Keyring;

mod common;
use common::KEY_B64;

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

/// Secrets Manager whose app client secret can rotate.
struct Rotating(Mutex<String>);
impl SecretSource for Rotating {
    fn fetch<'a>(&'a self, id: &'a str) -> BoxFut<'a, Result<String, proxy::Error>> {
        let v = match id {
            "clients" => json!({"clients": [{"public_client_id": "pub", "client_id": "reg",
                "client_secret": *self.0.lock().unwrap()}]})
            .to_string(),
            _ => format!(r#"{{"current":"k1","keys":{{"k1":"{KEY_B64}"}}}}"#),
        };
        Box::pin(async move { Ok(v) })
    }
}

/// What the stub answers an action: status, error type, body.
type Answer = (u16, &'static str, String);

/// How the stub answers a call whose hash is right.
type Answering = Arc<dyn Fn(&str, &Value) -> Answer + Send + Sync>;

/// A stub Cognito. It refuses a wrong secret hash the way Cognito does (under the secret it
/// currently holds), answers the rest with `answer`, and records each call (action, body).
#[derive(Clone)]
struct Stub {
    secret: Arc<Mutex<String>>,
    answer: Answering,
    calls: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Stub {
    fn new(answer: impl Fn(&str, &Value) -> Answer + Send + Sync + 'static) -> Self {
        Self {
            secret: Arc::new(Mutex::new("s".into())),
            answer: Arc::new(answer),
            calls: Arc::default(),
        }
    }

    fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap().clone()
    }

    /// The secret hash in `body` (top level or in AuthParameters) and the username it covers.
    fn hash_ok(&self, body: &Value) -> bool {
        let (hash, user) = match body.get("AuthParameters") {
            Some(p) => (
                p["SECRET_HASH"].as_str(),
                p.get("USERNAME").and_then(Value::as_str),
            ),
            None => (body["SecretHash"].as_str(), body["Username"].as_str()),
        };
        let secret = self.secret.lock().unwrap().clone();
        match (hash, user) {
            (Some(h), Some(u)) => h == wire::secret_hash(&secret, u, "reg"),
            // REFRESH_TOKEN_AUTH: the test checks the hash itself (the user is in the token).
            (Some(_), None) => true,
            _ => false,
        }
    }

    async fn serve(self) -> String {
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let stub = self.clone();
                async move {
                    let action = headers["x-amz-target"]
                        .to_str()
                        .unwrap()
                        .rsplit('.')
                        .next()
                        .unwrap()
                        .to_owned();
                    let body: Value = serde_json::from_str(&body).unwrap();
                    stub.calls
                        .lock()
                        .unwrap()
                        .push((action.clone(), body.clone()));
                    let (status, kind, text) = if stub.hash_ok(&body) {
                        (stub.answer)(&action, &body)
                    } else {
                        let m = "Unable to verify secret hash for client reg";
                        let e = json!({"__type": "NotAuthorizedException", "message": m});
                        (400, "NotAuthorizedException", e.to_string())
                    };
                    let mut r = axum::response::Response::new(Body::from(text));
                    *r.status_mut() = StatusCode::from_u16(status).unwrap();
                    let h = r.headers_mut();
                    h.insert("x-amzn-requestid", "rid-1".parse().unwrap());
                    h.insert("x-internal", "not for clients".parse().unwrap());
                    if !kind.is_empty() {
                        h.insert("x-amzn-errortype", kind.parse().unwrap());
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
}

/// A replicating proxy forwarding to `stub`, its secrets source and the capturing sink.
async fn proxy(stub: &Stub) -> (Arc<AppState>, Arc<Rotating>, Arc<Capture>) {
    let endpoint = stub.clone().serve().await;
    let cfg = common::config(&[&[
        ("RELAY_USER_POOL_ID", "eu-west-1_a"),
        ("RELAY_PEER_REGION", "eu-central-1"),
        ("RELAY_PEER_QUEUE_URL", "https://sqs/peer.fifo"),
        ("RELAY_PEER_USER_POOL_ID", "eu-central-1_b"),
        ("RELAY_RATE_PER_IP", "0"),
        ("RELAY_COGNITO_ENDPOINT", &endpoint),
    ]]);
    let source = Arc::new(Rotating(Mutex::new("s".into())));
    let secrets = SecretCache::new(
        source.clone(),
        "clients".into(),
        "key".into(),
        Duration::from_secs(60),
    )
    .with_min_refresh(Duration::ZERO);
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
    (Arc::new(st), source, sink)
}

async fn call(st: &Arc<AppState>, target: &str, body: Value) -> (StatusCode, HeaderMap, Value) {
    let req = Request::post("/")
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "x-amz-target",
            format!("AWSCognitoIdentityProviderService.{target}"),
        )
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = proxy::app(st.clone()).oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, parts.headers, json)
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

fn ok(body: Value) -> Answer {
    (200, "", body.to_string())
}

#[tokio::test]
async fn forwarding_maps_the_client_signs_the_hash_and_passes_cognitos_answer_back() {
    let stub = Stub::new(|_, _| ok(json!({"UserConfirmed": false, "UserSub": "sub-bob"})));
    let (st, _, sink) = proxy(&stub).await;
    let sign_up = json!({"ClientId": "pub", "Username": "bob", "Password": "Passw0rd!x"});
    let (status, headers, body) = call(&st, "SignUp", sign_up).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"UserConfirmed": false, "UserSub": "sub-bob"}));
    assert_eq!(headers["x-amzn-requestid"], "rid-1", "Cognito's request id");
    assert!(headers.get("x-internal").is_none(), "only x-amzn-* headers");
    let calls = stub.calls();
    assert_eq!(calls.len(), 1);
    let (action, sent) = &calls[0];
    assert_eq!(action, "SignUp");
    assert_eq!(sent["ClientId"], "reg", "the regional client");
    assert_eq!(sent["SecretHash"], wire::secret_hash("s", "bob", "reg"));

    // The success was replicated: one event, sealed for the peer pool, about bob.
    let got = sink.0.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].0.action.as_str(), got[0].0.target_pool.as_str()),
        ("SignUp", "eu-central-1_b")
    );
    assert!(!got[0].1.contains("Passw0rd"), "the password is sealed");
    let event = Envelope::open(&got[0].1, &keys()).unwrap();
    assert_eq!(
        (event.user_key.as_str(), event.origin_sub.as_deref()),
        ("bob", Some("sub-bob"))
    );
    assert!(matches!(event.change, Change::CreateUser { .. }));
}

#[tokio::test]
async fn a_refusal_not_about_the_secret_is_passed_on_once_and_not_replicated() {
    let stub = Stub::new(|_, _| {
        let e = json!({"__type": "CodeMismatchException", "message": "Invalid code"});
        (400, "CodeMismatchException", e.to_string())
    });
    let (st, _, sink) = proxy(&stub).await;
    let confirm = json!({"ClientId": "pub", "Username": "bob", "ConfirmationCode": "1",
        "Password": "Passw0rd!x"});
    let (status, headers, body) = call(&st, "ConfirmForgotPassword", confirm).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["x-amzn-errortype"], "CodeMismatchException");
    assert_eq!(body["__type"], "CodeMismatchException");
    assert_eq!(
        stub.calls().len(),
        1,
        "no retry for an error that is not the secret"
    );
    assert!(sink.0.lock().unwrap().is_empty(), "nothing changed");
}

#[tokio::test]
async fn a_rotated_client_secret_is_reloaded_and_the_request_retried_once() {
    let stub = Stub::new(|_, _| ok(json!({})));
    let (st, source, sink) = proxy(&stub).await;
    let forgot = json!({"ClientId": "pub", "Username": "bob"});
    assert_eq!(call(&st, "ForgotPassword", forgot).await.0, StatusCode::OK);

    // The secret rotates: Cognito and Secrets Manager hold the new one, the proxy the old.
    *stub.secret.lock().unwrap() = "s2".into();
    *source.0.lock().unwrap() = "s2".into();
    let confirm = json!({"ClientId": "pub", "Username": "bob", "ConfirmationCode": "123456",
        "Password": "Rotated-Passw0rd!"});
    let (status, _, _) = call(&st, "ConfirmForgotPassword", confirm.clone()).await;
    assert_eq!(status, StatusCode::OK, "answered after one retry");
    let calls = stub.calls();
    let hashes: Vec<&Value> = calls[1..].iter().map(|(_, b)| &b["SecretHash"]).collect();
    assert_eq!(
        hashes,
        [
            &json!(wire::secret_hash("s", "bob", "reg")),
            &json!(wire::secret_hash("s2", "bob", "reg"))
        ]
    );
    let got = sink.0.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one event for the one change");
    let event = Envelope::open(&got[0].1, &keys()).unwrap();
    let Change::SetPassword { sealed_password } = event.change else {
        panic!("{:?}", event.change)
    };
    assert_eq!(
        keys().open(&sealed_password, event.id.as_bytes()).unwrap(),
        b"Rotated-Passw0rd!"
    );

    // Cognito rotates again but Secrets Manager does not have it yet: one retry, no more,
    // and Cognito's refusal is the answer.
    *stub.secret.lock().unwrap() = "s3".into();
    let (status, headers, _) = call(&st, "ConfirmForgotPassword", confirm).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["x-amzn-errortype"], "NotAuthorizedException");
    assert_eq!(
        stub.calls().len(),
        5,
        "the request was sent twice, not more"
    );
    assert_eq!(
        sink.0.lock().unwrap().len(),
        1,
        "a refused change is not replicated"
    );
}

#[tokio::test]
async fn refresh_tokens_are_sealed_on_the_way_out_and_opened_on_the_way_in() {
    let token = access_token("internal-7");
    let issued = json!({"AuthenticationResult": {"AccessToken": token, "IdToken": "id",
        "RefreshToken": "cognito-refresh-token", "ExpiresIn": 3600, "TokenType": "Bearer"}});
    let answer = issued.clone();
    let stub = Stub::new(move |_, _| ok(answer.clone()));
    let (st, _, sink) = proxy(&stub).await;
    let sign_in = json!({"ClientId": "pub", "AuthFlow": "USER_PASSWORD_AUTH",
        "AuthParameters": {"USERNAME": "alice@example.com", "PASSWORD": "Passw0rd!x"}});
    let (status, _, body) = call(&st, "InitiateAuth", sign_in).await;
    assert_eq!(status, StatusCode::OK);
    let result = &body["AuthenticationResult"];
    assert_eq!(
        result["AccessToken"],
        issued["AuthenticationResult"]["AccessToken"]
    );
    let sealed = result["RefreshToken"].as_str().unwrap();
    assert!(sealed.starts_with(wire::prepare::SEALED_REFRESH_PREFIX));
    assert!(!sealed.contains("cognito-refresh-token"));

    // The sealed token refreshes: Cognito gets its own token, hashed for the internal user.
    let refresh = json!({"ClientId": "pub", "AuthFlow": "REFRESH_TOKEN_AUTH",
        "AuthParameters": {"REFRESH_TOKEN": sealed}});
    let (status, _, _) = call(&st, "InitiateAuth", refresh).await;
    assert_eq!(status, StatusCode::OK);
    let (_, sent) = stub.calls().pop().unwrap();
    assert_eq!(
        sent["AuthParameters"]["REFRESH_TOKEN"],
        "cognito-refresh-token"
    );
    assert_eq!(
        sent["AuthParameters"]["SECRET_HASH"],
        wire::secret_hash("s", "internal-7", "reg")
    );
    assert!(
        sink.0.lock().unwrap().is_empty(),
        "a sign-in changes nothing"
    );
}
