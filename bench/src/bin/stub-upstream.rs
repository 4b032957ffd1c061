//! `stub-upstream`: a fast stand-in for a regional Cognito endpoint, for load benchmarks only.
//! `POST /` with `X-Amz-Target: ...InitiateAuth` answers a Cognito-shaped token set (the
//! access token's payload names user `u`), `...SignUp` a new-user answer, and `AWSEvents.PutEvents`
//! (so the proxy's event stream can publish here) an all-accepted answer, `AmazonSQS.SendMessage`
//! (the peer replication queue, for sustained-load runs) a sent answer; anything else gets a
//! Cognito-shaped 400.
//! `GET /stats` counts requests and how many carried a `SECRET_HASH` (the proxy signs them).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9400")]
    listen: SocketAddr,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Exit by itself after this many seconds (a safety bound).
    #[arg(long, default_value_t = 600)]
    max_seconds: u64,
}

struct Stub {
    answer: Bytes,
    requests: AtomicU64,
    signed: AtomicU64,
    events: AtomicU64,
    /// Replication events sent to the stub's SQS SendMessage.
    queued: AtomicU64,
}

async fn cognito(State(st): State<Arc<Stub>>, headers: HeaderMap, body: Bytes) -> Response {
    let n = st.requests.fetch_add(1, Ordering::Relaxed);
    if body.windows(11).any(|w| w == b"SECRET_HASH") {
        st.signed.fetch_add(1, Ordering::Relaxed);
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let request_id =
        HeaderValue::from_str(&format!("00000000-0000-4000-8000-{n:012x}")).expect("ascii");
    let json = HeaderValue::from_static("application/x-amz-json-1.1");
    if target == "AWSEvents.PutEvents" {
        let n = body.windows(8).filter(|w| w == b"\"Detail\"").count();
        st.events.fetch_add(n as u64, Ordering::Relaxed);
        let entries = vec![r#"{"EventId":"e"}"#; n].join(",");
        return (
            [("content-type", json), ("x-amzn-requestid", request_id)],
            format!(r#"{{"FailedEntryCount":0,"Entries":[{entries}]}}"#),
        )
            .into_response();
    }
    if target == "AmazonSQS.SendMessage" {
        // The peer's replication queue, for load runs with replication on.
        st.queued.fetch_add(1, Ordering::Relaxed);
        let sqs = HeaderValue::from_static("application/x-amz-json-1.0");
        return (
            [("content-type", sqs), ("x-amzn-requestid", request_id)],
            format!(r#"{{"MessageId":"00000000-0000-4000-8000-{n:012x}","SequenceNumber":"{n}"}}"#),
        )
            .into_response();
    }
    if target == "AWSCognitoIdentityProviderService.SignUp" {
        return (
            [("content-type", json), ("x-amzn-requestid", request_id)],
            r#"{"UserConfirmed":false,"UserSub":"5f2b8c1e-0000-4000-8000-000000000001"}"#,
        )
            .into_response();
    }
    if target != "AWSCognitoIdentityProviderService.InitiateAuth" {
        let body = r#"{"__type":"UnknownOperationException","message":"the stub only answers InitiateAuth"}"#;
        return (
            StatusCode::BAD_REQUEST,
            [
                ("content-type", json),
                ("x-amzn-requestid", request_id),
                (
                    "x-amzn-errortype",
                    HeaderValue::from_static("UnknownOperationException"),
                ),
            ],
            body,
        )
            .into_response();
    }
    (
        [("content-type", json), ("x-amzn-requestid", request_id)],
        st.answer.clone(),
    )
        .into_response()
}

async fn stats(State(st): State<Arc<Stub>>) -> String {
    serde_json::json!({ "requests": st.requests.load(Ordering::Relaxed), "signed": st.signed.load(Ordering::Relaxed), "events": st.events.load(Ordering::Relaxed), "queued": st.queued.load(Ordering::Relaxed) }).to_string()
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let st = Arc::new(Stub { answer: Bytes::from(bench::initiate_auth_answer()), requests: AtomicU64::new(0), signed: AtomicU64::new(0), events: AtomicU64::new(0), queued: AtomicU64::new(0) });
        let app = Router::new().route("/", post(cognito)).route("/stats", get(stats)).with_state(st);
        let listener = tokio::net::TcpListener::bind(args.listen).await.unwrap_or_else(|e| panic!("cannot listen on {}: {e}", args.listen));
        println!("stub-upstream listening on {}", args.listen);
        let limit = tokio::time::sleep(std::time::Duration::from_secs(args.max_seconds));
        tokio::select! {
            r = axum::serve(listener, app) => { if let Err(e) = r { eprintln!("stub-upstream: {e}"); } }
            _ = limit => eprintln!("stub-upstream: --max-seconds reached, exiting"),
        }
    });
}
