//! The standalone server against slow clients: real sockets on 127.0.0.1, no timing asserted
//! (each wait is bounded only so that a regression fails instead of hanging).
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use proxy::ports::{BoxFut, Control, LocalLimiter};
use proxy::AppState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;

struct Healthy;
impl Control for Healthy {
    fn drained(&self) -> BoxFut<'_, Result<bool, proxy::Error>> {
        Box::pin(async { Ok(false) })
    }
    fn pool_ok(&self) -> BoxFut<'_, Result<(), proxy::Error>> {
        Box::pin(async { Ok(()) })
    }
}

/// A running server with `extra` configuration; its address.
async fn server(extra: &[(&str, &str)]) -> (std::net::SocketAddr, Arc<AppState>) {
    let cfg = common::config(&[extra]);
    let secrets = common::secrets();
    let st = Arc::new(
        AppState::new(
            cfg,
            secrets,
            None,
            Some(Arc::new(Healthy)),
            Arc::new(LocalLimiter::default()),
            false,
        )
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(proxy::serve::serve(
        listener,
        st.clone(),
        std::future::pending(),
    ));
    (addr, st)
}

/// Opens a connection that sends half a request head and stalls.
async fn slow(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: relay\r\nX-Amz-Target: AWSCognitoIdentityProviderService.SignUp\r\n").await.unwrap();
    s
}

/// Whether the server closed `s` (read end of stream, or reset) within a bound that only
/// guards against hanging.
async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// One request on a fresh connection; the raw response.
async fn request(addr: std::net::SocketAddr, raw: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

const HEALTH: &str = "GET /health HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n";
const SIGN_UP: &str = "POST / HTTP/1.1\r\nHost: relay\r\nConnection: close\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: AWSCognitoIdentityProviderService.SignUp\r\nContent-Length: 2\r\n\r\n{}";

#[tokio::test]
async fn slow_connections_are_closed_and_health_is_served_while_the_cap_is_reached() {
    let (addr, st) = server(&[
        ("RELAY_MAX_CONNECTIONS", "8"),
        ("RELAY_MAX_CONNECTIONS_PER_IP", "0"),
        ("RELAY_HEADER_TIMEOUT_MS", "1000"),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(slow(addr).await);
    }
    // The cap is reached: /health is still served, a Cognito request is refused in Cognito's shape.
    let health = request(addr, HEALTH).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains(r#""healthy":true"#));
    let refused = request(addr, SIGN_UP).await;
    assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
    assert!(
        refused
            .to_ascii_lowercase()
            .contains("x-amzn-errortype: toomanyrequestsexception"),
        "{refused}"
    );
    let metrics = request(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        !metrics.contains("relay_connections_refused_total 0"),
        "past-cap connections are counted"
    );
    // The slow ones are closed by the header-read timeout...
    for s in &mut held {
        assert!(
            closed(s).await,
            "a half-sent request head is not held forever"
        );
    }
    // ...which frees the slots.
    let mut deadline = 0;
    let open = |text: String| {
        text.lines()
            .find_map(|l| l.strip_prefix("relay_connections_open "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    while open(st.metrics.prometheus()) > 0.0 && deadline < 300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        deadline += 1;
    }
    let answered = request(addr, SIGN_UP).await;
    assert!(!answered.contains("TooManyRequestsException"), "{answered}");
}

#[tokio::test]
async fn one_peer_cannot_take_every_connection() {
    let (addr, _) = server(&[
        ("RELAY_MAX_CONNECTIONS", "100"),
        ("RELAY_MAX_CONNECTIONS_PER_IP", "3"),
        ("RELAY_HEADER_TIMEOUT_MS", "60000"),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(slow(addr).await);
    }
    let refused = request(addr, SIGN_UP).await;
    assert!(refused.contains("TooManyRequestsException"), "{refused}");
    assert!(request(addr, HEALTH).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_body_that_never_finishes_is_answered_and_closed() {
    let (addr, _) = server(&[("RELAY_BODY_TIMEOUT_MS", "500")]).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: relay\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: AWSCognitoIdentityProviderService.SignUp\r\nContent-Length: 100\r\n\r\n{\"ClientId\"").await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(
        out.contains("InvalidParameterException") && out.contains("not received"),
        "{out}"
    );
}
