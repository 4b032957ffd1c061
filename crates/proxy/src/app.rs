//! The router: `POST /` (the Cognito protocol), `GET /health`, `GET /metrics`, with CORS
//! (preflights included) from tower-http's `CorsLayer`. One error type, mapped to Cognito's
//! wire shape once, at the edge (`Refusal`).
//!
//! A Cognito request runs through stages (`stages`), each an `async fn` that owns one concern
//! and either passes the request on or ends it with a `WireError` (answered as a `Refusal`):
//! 1. `admit` — everything that can refuse without changing anything; yields `Admitted`;
//! 2. `forward` — the call to Cognito, retried once with reloaded secrets when the client
//!    secret rotated; failed sign-ins and throttling counted; yields Cognito's answer;
//! 3. `replicate_stage` — a successful mutation's event, delivered to the peer before answering;
//! 4. `respond` — Cognito's answer as the client's, refresh tokens sealed; yields `Outcome`.
//!
//! `Outcome` (response, replication delivery, throttled) is what `serve_cognito` reports in the
//! metrics, the log line and the event stream. A new stage is one more `async fn` called from
//! `stages`: one that answers some actions itself (a bridge) sits between `admit` and `forward`
//! and returns `Result<Option<Outcome>, WireError>` (`Some` ends the request, `None` passes);
//! `Outcome::answered` builds the outcome of an answer nothing was replicated for.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use replication::{build_change, Event, EVENT_VERSION};
use serde_json::Value;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::{info, warn, Instrument};
use wire::{ActionSpec, Mutation, SecretPlacement, WireError};

use crate::config::{Config, Origins};
use crate::health::HealthCache;
use crate::metrics::{emf_request, Metrics};
use crate::ports::{Control, Delivery, EventSink, RateLimiter};
use crate::secrets::{Loaded, SecretCache};

pub struct AppState {
    pub cfg: Config,
    pub http: reqwest::Client,
    pub secrets: SecretCache,
    pub sink: Option<Arc<dyn EventSink>>,
    pub limiter: Arc<dyn RateLimiter>,
    pub metrics: Metrics,
    pub health: HealthCache,
    /// This region's high-water marks, advanced for each forwarded write (optional).
    pub marks: Option<Arc<dyn crate::ports::LocalMarks>>,
    /// Emit one EMF line per request (Lambda); standalone serves `/metrics` instead.
    pub emf: bool,
    /// Sign-up policy, evaluated before anything reaches Cognito (`policy.rs`).
    pub policy: Option<Arc<crate::policy::PolicyHandle>>,
    /// Event stream for downstream systems (`stream.rs`).
    pub events: Option<Arc<crate::stream::Publisher>>,
    /// This region's state table as the standby sign-in bridge reads it (`bridge.rs`).
    pub bridge_store: Option<Arc<dyn crate::ports::BridgeStore>>,
    /// The home pool's placeholders of replicated, unconfirmed sign-ups (`signups.rs`).
    pub placeholders: Option<Arc<dyn crate::ports::Placeholders>>,
    /// SRP handshakes computed at once (`RELAY_SRP_MAX_CONCURRENT`; `bridge.rs`).
    pub srp_slots: Arc<tokio::sync::Semaphore>,
    /// The peer's health, which opens the bridge (`serving.rs`); `None`: always open.
    pub peer_watch: Option<crate::serving::PeerWatch>,
    /// Until when (ms since the epoch) the issuing region is not asked about sessions again
    /// after it could not be asked (`sessions.rs`): an outage costs one timeout per 5 s, not one
    /// per refresh.
    pub peer_ask_backoff_until: std::sync::atomic::AtomicU64,
}

impl AppState {
    /// Whether this proxy's bridge is open now: always without a peer health URL, else only
    /// while the peer is not healthy (`serving.rs`).
    pub(crate) async fn bridge_open(&self) -> bool {
        match &self.peer_watch {
            None => true,
            Some(w) => !w.peer_healthy().await,
        }
    }
}

impl AppState {
    pub fn new(
        cfg: Config,
        secrets: SecretCache,
        sink: Option<Arc<dyn EventSink>>,
        control: Option<Arc<dyn Control>>,
        limiter: Arc<dyn RateLimiter>,
        emf: bool,
    ) -> Result<Self, crate::Error> {
        let http = reqwest::Client::builder()
            .timeout(cfg.upstream_timeout)
            .connect_timeout(std::time::Duration::from_secs(2))
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| crate::Error::Setup(format!("cannot build the HTTP client: {e}")))?;
        let health = HealthCache::new(control, cfg.health_cache, cfg.control_cache);
        let srp_slots = Arc::new(tokio::sync::Semaphore::new(cfg.srp_max_concurrent));
        let peer_watch = match &cfg.peer_health_url {
            Some(url) => Some(crate::serving::PeerWatch::new(
                url.clone(),
                cfg.peer_health_cache,
            )?),
            None => None,
        };
        Ok(Self {
            srp_slots,
            peer_watch,
            peer_ask_backoff_until: std::sync::atomic::AtomicU64::new(0),
            cfg,
            http,
            secrets,
            sink,
            limiter,
            metrics: Metrics::default(),
            health,
            marks: None,
            emf,
            policy: None,
            events: None,
            bridge_store: None,
            placeholders: None,
        })
    }
}

pub fn app(state: Arc<AppState>) -> Router {
    let (cors, vary) = cors(&state.cfg.cors_origins);
    Router::new()
        .route("/", post(cognito).fallback(wrong_method))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(fallback)
        .with_state(state)
        .layer(cors)
        // Outside the CORS layer, so that its preflight answers carry it too.
        .layer(vary)
}

/// An error answered in Cognito's shape.
pub struct Refusal(pub WireError);

impl From<WireError> for Refusal {
    fn from(e: WireError) -> Self {
        Self(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut r = (status, self.0.body()).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        h.insert(
            "x-amzn-errortype",
            HeaderValue::from_static(self.0.kind.as_str()),
        );
        r
    }
}

async fn fallback(method: Method) -> Response {
    let e = if method == Method::POST {
        WireError::unknown_operation("Unknown path; Cognito requests go to POST /")
    } else {
        WireError::new(404, wire::ErrorKind::ResourceNotFound, "Not found")
    };
    Refusal(e).into_response()
}

/// `GET /` (and any method but POST and OPTIONS on `/`): a Cognito-shaped refusal that says
/// what the endpoint takes, never an empty 405.
async fn wrong_method() -> Response {
    let mut r = Refusal(WireError::unknown_operation(
        "Cognito requests are POST / with an X-Amz-Target header",
    ))
    .into_response();
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
    r
}

/// Request headers a browser may send (amplify-js and the AWS SDKs send these).
const ALLOW_HEADERS: [header::HeaderName; 8] = [
    header::CONTENT_TYPE,
    header::HeaderName::from_static("x-amz-target"),
    header::HeaderName::from_static("x-amz-user-agent"),
    header::HeaderName::from_static("amz-sdk-invocation-id"),
    header::HeaderName::from_static("amz-sdk-request"),
    header::CACHE_CONTROL,
    header::HeaderName::from_static("x-amz-date"),
    header::AUTHORIZATION,
];
/// Response headers a browser app may read.
const EXPOSE_HEADERS: [header::HeaderName; 4] = [
    header::HeaderName::from_static("x-amzn-requestid"),
    header::HeaderName::from_static("x-amzn-errortype"),
    header::HeaderName::from_static("x-amzn-errormessage"),
    header::DATE,
];

/// CORS for every response: `Access-Control-Allow-Origin: *`, or the request's `Origin` when it
/// is one of the configured origins (none otherwise). Preflights (`OPTIONS`) are answered here
/// with the methods, headers and a day's max-age. In allow-list mode every answer carries
/// `Vary: Origin`, whether or not this origin is allowed: a shared cache must not serve a
/// refused origin's answer (no CORS headers) to an allowed one.
fn cors(origins: &Origins) -> (CorsLayer, SetResponseHeaderLayer<Option<HeaderValue>>) {
    let allow = match origins {
        Origins::Any => AllowOrigin::any(),
        // `*` is not an origin a browser sends; only `Origins::Any` means "every origin".
        Origins::List(list) => AllowOrigin::list(
            list.iter()
                .filter(|o| o.as_str() != "*")
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        ),
    };
    let layer = CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers(ALLOW_HEADERS)
        .expose_headers(EXPOSE_HEADERS)
        .max_age(std::time::Duration::from_secs(86400))
        // tower-http would name the three preflight headers (lower-case); the answer depends
        // on Origin only, and only in allow-list mode.
        .vary([]);
    let vary = (*origins != Origins::Any).then(|| HeaderValue::from_static("Origin"));
    (layer, SetResponseHeaderLayer::appending(header::VARY, vary))
}

async fn health(State(st): State<Arc<AppState>>) -> Response {
    // Secrets are part of serving: this also loads them (at most once per second while they
    // cannot be read), so a Lambda instance started during an outage recovers on its checks.
    let report = st
        .health
        .report(async { st.secrets.loaded() || st.secrets.get().await.is_ok() })
        .await;
    let status = if report.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        serde_json::to_string(&report).unwrap_or_default(),
    )
        .into_response()
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let mut text = st.metrics.prometheus();
    if let Some(p) = &st.policy {
        text.push_str(&p.metrics.prometheus());
    }
    if let Some(e) = &st.events {
        text.push_str(&e.stats.prometheus());
    }
    text.push_str(&format!(
        "# TYPE relay_limiter_store_errors_total counter\nrelay_limiter_store_errors_total {}\n",
        st.limiter.store_errors()
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// The caller's IP: API Gateway's source IP under Lambda (the truth there: API Gateway sets
/// it from the connection, whatever the client sends); standalone, the socket peer, or the
/// X-Forwarded-For hop a trusted proxy (`RELAY_TRUSTED_PROXIES`) reported. `None` when it
/// cannot be told; the caller is then limited under one shared key.
pub fn caller_ip(req: &Request, trusted: &crate::net::TrustedProxies) -> Option<String> {
    if let Some(ctx) = req
        .extensions()
        .get::<lambda_http::request::RequestContext>()
    {
        let ip = match ctx {
            lambda_http::request::RequestContext::ApiGatewayV1(c) => {
                c.identity.source_ip.as_deref()
            }
            lambda_http::request::RequestContext::ApiGatewayV2(c) => c.http.source_ip.as_deref(),
            _ => None,
        };
        return ip
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            .map(|ip| ip.to_canonical().to_string());
    }
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>()?.0.ip();
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    trusted.caller(peer, forwarded).map(|ip| ip.to_string())
}

/// The per-IP limiter key of requests whose caller IP is not known: they share one budget.
pub const UNKNOWN_IP_KEY: &str = "ip:unknown";

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the upstream answered.
pub(crate) struct Upstream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Upstream {
    pub(crate) fn error_type(&self) -> Option<&str> {
        self.headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(':').next().unwrap_or(v))
    }
    fn throttled(&self) -> bool {
        self.error_type() == Some("TooManyRequestsException")
    }
    fn request_id(&self) -> &str {
        self.headers
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    fn rejected_secret(&self) -> bool {
        self.status == StatusCode::BAD_REQUEST
            && self.error_type() == Some("NotAuthorizedException")
            && std::str::from_utf8(&self.body).is_ok_and(|b| {
                b.contains("SECRET_HASH")
                    || b.contains("secret hash")
                    || b.contains("client secret")
            })
    }
}

pub(crate) async fn call_upstream(
    st: &AppState,
    action: &str,
    body: Vec<u8>,
    user_agent: Option<&HeaderValue>,
) -> Result<Upstream, WireError> {
    let mut req = st
        .http
        .post(&st.cfg.cognito_endpoint)
        .header(header::CONTENT_TYPE, "application/x-amz-json-1.1")
        .header("x-amz-target", format!("{}{action}", wire::TARGET_PREFIX))
        .body(body);
    if let Some(ua) = user_agent {
        req = req.header(header::USER_AGENT, ua.clone());
    }
    let resp = req.send().await.map_err(|e| {
        let why = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "is unreachable"
        } else {
            "failed"
        };
        warn!(action, "upstream {why}");
        WireError::unavailable(format!("The regional Cognito endpoint {why}; retry"))
    })?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(|_| {
        WireError::unavailable("The regional Cognito endpoint closed the connection; retry")
    })?;
    Ok(Upstream {
        status,
        headers,
        body,
    })
}

/// Reads the user's sign-in alias (e-mail / phone) with the user's own access token.
/// `Ok(None)`: Cognito refused the token (the mutation will be refused the same way).
/// `Err`: Cognito could not be asked (unreachable, throttled): the caller cannot tell who the
/// user is right now.
async fn alias_of(st: &AppState, access_token: &str) -> Result<Option<String>, WireError> {
    let body =
        serde_json::to_vec(&serde_json::json!({ "AccessToken": access_token })).unwrap_or_default();
    let up = call_upstream(st, "GetUser", body, None).await?;
    if !up.status.is_success() {
        return match up.error_type() {
            Some(
                "NotAuthorizedException"
                | "UserNotFoundException"
                | "PasswordResetRequiredException"
                | "UserNotConfirmedException",
            ) => Ok(None),
            _ => Err(WireError::unavailable(
                "The relay cannot resolve the user right now; retry",
            )),
        };
    }
    let v: Value = serde_json::from_slice(&up.body).unwrap_or_default();
    let attrs = v
        .get("UserAttributes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let alias = st.cfg.username_attributes.iter().find_map(|want| {
        attrs
            .iter()
            .find(|a| a.get("Name").and_then(Value::as_str) == Some(want.as_str()))
            .and_then(|a| a.get("Value")?.as_str())
            .map(str::to_owned)
    });
    alias.map(Some).ok_or_else(|| {
        WireError::unavailable("The relay cannot resolve the user's sign-in attribute; retry")
    })
}

/// Who a token-authorized mutation is about, resolved *before* forwarding (DeleteUser leaves
/// nothing to ask afterwards; an e-mail change must be keyed on the old address). `Ok(None)`
/// when the token is not one Cognito would accept (nothing will change).
pub(crate) async fn identity_from_token(
    st: &AppState,
    access_token: Option<&str>,
) -> Result<Option<replication::UserIdentity>, WireError> {
    let Some((username, sub)) = access_token.and_then(wire::jwt::access_token_user) else {
        return Ok(None);
    };
    let user_key = if st.cfg.alias_pool() {
        match alias_of(st, access_token.unwrap_or_default()).await? {
            Some(k) => k,
            None => return Ok(None),
        }
    } else {
        username.clone()
    };
    Ok(Some(replication::UserIdentity {
        user_key,
        origin_username: Some(username),
        origin_sub: Some(sub).filter(|s| !s.is_empty()),
    }))
}

/// Who a request-authorized mutation is about, from the request and Cognito's answer.
async fn identity_after(
    st: &AppState,
    spec: &ActionSpec,
    req: &Value,
    resp: &Value,
) -> Option<replication::UserIdentity> {
    match spec.secret {
        SecretPlacement::TopLevel => Some(replication::UserIdentity {
            user_key: req.get("Username")?.as_str()?.to_owned(),
            origin_username: None,
            origin_sub: resp
                .get("UserSub")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }),
        _ => {
            let token = resp
                .get("AuthenticationResult")?
                .get("AccessToken")?
                .as_str()?;
            identity_from_token(st, Some(token)).await.ok().flatten()
        }
    }
}

fn lost(st: &AppState, id: &str, action: &str, why: &str) -> Delivery {
    st.metrics.lost.increment(1);
    tracing::error!(event_id = %id, action, why, "replication event lost; reconcile will repair it");
    Delivery::Lost
}

/// Sends the event of a successful mutation to the peer, sealed for the peer's pool. The change
/// is built first, and the user resolved only when there is one (a PASSWORD_VERIFIER answer
/// changes nothing and must not cost an extra GetUser). Every mutation that changed something
/// ends as exactly one of peer, fallback or lost (counted and logged with the event id).
pub(crate) async fn replicate(
    st: &AppState,
    spec: &ActionSpec,
    mutation: Mutation,
    pre_identity: Option<replication::UserIdentity>,
    req: &Value,
    resp: &Value,
    keys: &wire::seal::Keyring,
) -> Option<Delivery> {
    let sink = st.sink.as_deref()?;
    let target_pool = st
        .cfg
        .peer
        .as_ref()
        .map(|p| p.user_pool_id.clone())
        .unwrap_or_default();
    let id = uuid::Uuid::new_v4().to_string();
    let Some(change) = build_change(mutation, req, resp, keys, &id) else {
        // Only a challenge answer other than NEW_PASSWORD_REQUIRED changes nothing.
        if !matches!(mutation, Mutation::ChallengeNewPassword(_)) {
            return Some(lost(
                st,
                &id,
                spec.name,
                "the request lacks the field the change is read from",
            ));
        }
        return None;
    };
    let who = match pre_identity {
        Some(w) => Some(w),
        None => identity_after(st, spec, req, resp).await,
    };
    let Some(who) = who else {
        return Some(lost(st, &id, spec.name, "cannot tell which user changed"));
    };
    let event = Event {
        v: EVENT_VERSION,
        id,
        origin_region: st.cfg.region.clone(),
        origin_pool: st.cfg.user_pool_id.clone(),
        target_pool,
        action: spec.name.to_owned(),
        user_key: who.user_key,
        origin_username: who.origin_username,
        origin_sub: who.origin_sub,
        origin_time_ms: now_ms(),
        no_mfa: crate::mfa::tokens_on_password(spec.name, req, resp),
        change,
    };
    // This region's marks and the delivery run side by side: the mark costs no latency of its own.
    let header = event.header();
    let body = event.seal(keys);
    let mark = async {
        if let Some(marks) = &st.marks {
            if let Err(e) = marks
                .advance(&event.user_key, &event.change, &event.order())
                .await
            {
                st.metrics.unmarked.increment(1);
                warn!(event_id = %event.id, error = %e, "cannot record this write's high-water mark here");
            }
        }
        follow_alias(st, &event).await;
    };
    let ((), d) = tokio::join!(mark, sink.deliver(&header, &body));
    // A bridging proxy (the standby serving) keeps SRP material for the passwords set here, so
    // users who sign up or change their password on the standby can sign in there by SRP too
    // (after the mark: a sign-up's mark clears old material).
    local_material(st, &event, keys).await;
    if matches!(d, Delivery::Peer | Delivery::Fallback) {
        sent_material(st, &event, keys).await;
    }
    let counter = match d {
        Delivery::Peer => &st.metrics.replicated,
        Delivery::Fallback => &st.metrics.fallback,
        Delivery::Lost => &st.metrics.lost,
    };
    counter.increment(1);
    Some(d)
}

/// A change of the user's sign-in alias made here: the old key's record keeps no verifier or
/// fingerprint (the address may go to someone else) and the new key's record learns the
/// user's MFA state, so the MFA gate (`mfa.rs`) does not take them for an unknown user.
async fn follow_alias(st: &AppState, event: &Event) {
    let Some(store) = st.bridge_store.as_ref() else {
        return;
    };
    let aliases: Vec<String> = st
        .cfg
        .username_attributes
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect();
    let Some(new_key) = replication::state::alias_change(&event.change, &event.user_key, &aliases)
    else {
        return;
    };
    let mfa = match store.record(&event.user_key).await {
        Ok(r) => r.mfa,
        Err(e) => {
            warn!(event_id = %event.id, error = %e, "cannot read the record an alias change leaves");
            return;
        }
    };
    let cleared = store
        .update(
            &event.user_key,
            Box::new(|r: &mut replication::UserRecord| {
                r.srp = None;
                r.material_fp = None;
            }),
        )
        .await;
    let moved = match mfa {
        Some(m) => {
            store
                .update(
                    &new_key,
                    Box::new(move |r: &mut replication::UserRecord| {
                        if r.mfa.is_none() {
                            r.mfa = Some(m);
                        }
                    }),
                )
                .await
        }
        None => Ok(()),
    };
    if let Err(e) = cleared.and(moved) {
        warn!(event_id = %event.id, error = %e, "cannot follow the user's alias change in the state table");
    }
}

/// The password an event sets (sign-up with a password, password change, reset, new password
/// challenge, backfill), opened from its sealed field.
fn password_in(event: &Event, keys: &wire::seal::Keyring) -> Option<String> {
    let sealed = match &event.change {
        replication::Change::CreateUser {
            sealed_password: Some(p),
            ..
        }
        | replication::Change::SetPassword { sealed_password: p } => p,
        _ => return None,
    };
    keys.open(sealed, event.id.as_bytes())
        .ok()
        .and_then(|p| String::from_utf8(p).ok())
}

/// Records that the peer has material for this password: every password-setting event the
/// peer receives gives it the password (and so its SRP verifier), so a later
/// `USER_PASSWORD_AUTH` sign-in with the same password sends nothing.
async fn sent_material(st: &AppState, event: &Event, keys: &wire::seal::Keyring) {
    let Some(store) = st
        .bridge_store
        .as_ref()
        .filter(|_| st.cfg.app_user_pool_id.is_some())
    else {
        return;
    };
    let Some(password) = password_in(event, keys) else {
        return;
    };
    let fp = replication::state::material_fp(keys, &event.user_key, &password);
    if let Err(e) = store
        .update(
            &event.user_key,
            Box::new(move |r: &mut replication::UserRecord| r.material_fp = Some(fp.clone())),
        )
        .await
    {
        warn!(event_id = %event.id, error = %e, "cannot record the material fingerprint");
    }
}

async fn local_material(st: &AppState, event: &Event, keys: &wire::seal::Keyring) {
    let (Some(app), Some(store)) = (
        st.cfg
            .app_user_pool_id
            .as_deref()
            .filter(|_| st.cfg.bridging()),
        st.bridge_store.as_ref(),
    ) else {
        return;
    };
    let Some(password) = password_in(event, keys) else {
        return;
    };
    let rk = replication::state::record_key(&event.user_key);
    let username = event
        .origin_username
        .clone()
        .unwrap_or_else(|| event.user_key.clone());
    let m = replication::state::SrpMaterial::derive(
        keys,
        &rk,
        app,
        &event.user_key,
        &username,
        &password,
    );
    if let Err(e) = store
        .update(
            &event.user_key,
            Box::new(move |r: &mut replication::UserRecord| r.srp = Some(m.clone())),
        )
        .await
    {
        warn!(event_id = %event.id, error = %e, "cannot store SRP material here");
    }
}

/// The whole request runs in a task of its own: a client that goes away mid-request cannot drop
/// the forward, the enqueue of a mutation Cognito already made, nor its log line and metrics.
async fn cognito(State(st): State<Arc<AppState>>, req: Request) -> Response {
    match tokio::spawn(serve_cognito(st, req)).await {
        Ok(r) => r,
        Err(_) => Refusal(WireError::internal(
            "The relay failed while handling the request",
        ))
        .into_response(),
    }
}

/// One request: the stages, then what every request reports (metrics, EMF, the log line and
/// the event stream).
async fn serve_cognito(st: Arc<AppState>, req: Request) -> Response {
    let started = Instant::now();
    let spec = wire::lookup(
        req.headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok()),
    );
    let action = spec.as_ref().map_or("Refused", |s| s.name);
    let span = tracing::info_span!("request", action, request_id = tracing::field::Empty);
    let mut notes = Notes::default();
    let outcome = handle(&st, req, spec, &mut notes)
        .instrument(span.clone())
        .await;
    let Outcome {
        response: resp,
        delivery,
        throttled,
    } = outcome;
    let status = resp.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    st.metrics.record(action, status, latency_ms);
    if st.emf {
        println!(
            "{}",
            emf_request(action, status, latency_ms, delivery, throttled)
        );
    }
    let error_type = resp
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let request_id = resp
        .headers()
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    span.record("request_id", request_id);
    span.in_scope(|| info!(status, latency_ms = format!("{latency_ms:.2}"), error_type, replication = ?delivery, "done"));
    if let Some(events) = &st.events {
        let error_type = (!error_type.is_empty()).then(|| {
            error_type
                .split(':')
                .next()
                .unwrap_or(error_type)
                .to_owned()
        });
        crate::stream::publish_outcome(
            &st, events, action, status, error_type, latency_ms, delivery, notes,
        )
        .await;
    }
    resp
}

/// What the request path learned that the event stream reports.
#[derive(Default)]
pub(crate) struct Notes {
    pub ip: Option<String>,
    pub user: Option<String>,
    pub policy_rule: Option<&'static str>,
    pub policy_dry_run: bool,
    /// The proxy answered itself (nothing reached Cognito, or Cognito could not be reached).
    pub relay_answered: bool,
}

/// What a request came to: the answer, and what the metrics and the log report about it.
pub(crate) struct Outcome {
    pub response: Response,
    /// Where the replication event of a successful mutation went (`None`: nothing to replicate).
    pub delivery: Option<Delivery>,
    /// Cognito answered TooManyRequestsException.
    pub throttled: bool,
}

impl Outcome {
    /// An answer nothing was replicated for (a refusal, or a stage that answered itself).
    pub(crate) fn answered(response: Response) -> Self {
        Self {
            response,
            delivery: None,
            throttled: false,
        }
    }
}

/// Runs the stages; an error from any of them is answered in Cognito's shape by the relay.
async fn handle(
    st: &Arc<AppState>,
    req: Request,
    spec: Result<&'static ActionSpec, WireError>,
    notes: &mut Notes,
) -> Outcome {
    match stages(st, req, spec, notes).await {
        Ok(outcome) => outcome,
        Err(e) => {
            notes.relay_answered = true;
            Outcome::answered(Refusal(e).into_response())
        }
    }
}

/// The request path, one stage after another (see the stage functions for what each owns).
///
/// A new stage slots in here. One that answers some actions itself (the standby sign-in
/// bridge) goes between `admit` and `forward`, as
/// `if let Some(outcome) = bridge(st, &mut admitted).await? { return Ok(outcome); }`:
/// it sees the admitted request (client mapped, hash signed, limits counted, secrets loaded),
/// answers with an `Outcome` (or a `WireError`, answered in Cognito's shape) or passes.
async fn stages(
    st: &Arc<AppState>,
    req: Request,
    spec: Result<&'static ActionSpec, WireError>,
    notes: &mut Notes,
) -> Result<Outcome, WireError> {
    let mut admitted = admit(st, req, spec?, notes).await?;
    if let Some(outcome) = crate::bridge::bridge(st, &mut admitted).await? {
        notes.relay_answered = true;
        return Ok(outcome);
    }
    if let Some(outcome) = crate::sessions::stage(st, &mut admitted).await? {
        notes.relay_answered = true;
        return Ok(outcome);
    }
    let up = forward(st, &mut admitted).await?;
    // A replicated sign-up its user never confirmed finishes here (`signups.rs`).
    let finished = crate::signups::finish(st, &mut admitted, up).await?;
    let mut answer = Answer::of(&admitted, &st.sink, finished.up);
    // MFA is never downgraded: a password-only success for a user with a second factor is
    // withheld (`mfa.rs`).
    if answer.up.status.is_success() {
        crate::mfa::gate(st, &admitted, answer.json.as_ref()).await?;
    }
    let delivery = replicate_stage(st, &admitted, &answer).await;
    if finished.resent {
        answer.up.body = crate::signups::as_resend_answer(&answer.up.body).into();
    }
    Ok(respond(&admitted, answer, delivery))
}

/// A password (or challenge) attempt whose NotAuthorizedException counts as a failed sign-in:
/// InitiateAuth but for refresh flows, and RespondToAuthChallenge.
fn is_signin(spec: &ActionSpec, body: &Value) -> bool {
    match spec.name {
        "InitiateAuth" => !matches!(
            body.get("AuthFlow").and_then(Value::as_str),
            Some("REFRESH_TOKEN_AUTH" | "REFRESH_TOKEN")
        ),
        "RespondToAuthChallenge" => true,
        _ => false,
    }
}

/// Counts one request for `key` against a per-minute limit (0 = no limit).
async fn limit(st: &AppState, key: String, per_minute: u32) -> Result<(), WireError> {
    if per_minute > 0 && !st.limiter.allow(&key, per_minute).await {
        return Err(WireError::too_many_requests("Rate exceeded"));
    }
    Ok(())
}

fn not_json() -> WireError {
    WireError::serialization("Request body is not valid JSON")
}

/// A request that passed admission, ready to forward.
pub(crate) struct Admitted {
    pub spec: &'static ActionSpec,
    /// The body as the client sent it (prepared again when the client secret rotated).
    pub bytes: Bytes,
    /// The body to forward: client mapped, secret hash and caller IP added.
    pub body: Value,
    pub secrets: Arc<Loaded>,
    pub prepared: wire::Prepared,
    /// Who a token-authorized mutation is about, resolved before forwarding.
    pub pre_identity: Option<replication::UserIdentity>,
    pub ip: Option<String>,
    pub user_agent: Option<HeaderValue>,
}

impl Admitted {
    /// Prepares the client's body again with `secrets` (after a client secret rotation).
    pub(crate) fn reprepare(&mut self, secrets: Arc<Loaded>) -> Result<(), WireError> {
        let mut body = serde_json::from_slice::<Value>(&self.bytes).map_err(|_| not_json())?;
        self.prepared = wire::prepare(
            self.spec,
            &mut body,
            &secrets.clients,
            self.ip.as_deref(),
            &secrets.refresh_keys,
        )?;
        self.body = body;
        self.secrets = secrets;
        Ok(())
    }

    /// The per-username limiter key, when the request names its user: the one canonical key
    /// (`lockout::canonical_user_key`), whatever case the client typed.
    pub(crate) fn user_limit_key(&self) -> Option<String> {
        self.prepared
            .username
            .as_deref()
            .map(crate::lockout::canonical_user_key)
    }
}

/// Stage 1, admit: everything that can refuse the request without changing anything (content
/// type, per-IP limit, body size and time, JSON, secrets, the client mapping and hash, the
/// sign-up policy, per-username limit and lockout, and resolving the user of a token mutation).
async fn admit(
    st: &AppState,
    req: Request,
    spec: &'static ActionSpec,
    notes: &mut Notes,
) -> Result<Admitted, WireError> {
    let ip = caller_ip(&req, &st.cfg.trusted_proxies);
    notes.ip = ip.clone();
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(ct.starts_with("application/x-amz-json-1.1") || ct.starts_with("application/json")) {
        return Err(WireError::serialization(
            "Content-Type must be application/x-amz-json-1.1",
        ));
    }
    let user_agent = req.headers().get(header::USER_AGENT).cloned();
    if st.cfg.rate_per_ip_per_min > 0 {
        let key = ip.as_ref().map_or_else(
            || UNKNOWN_IP_KEY.to_owned(),
            |ip| crate::net::ip_limit_key(ip, st.cfg.ipv6_prefix),
        );
        limit(st, key, st.cfg.rate_per_ip_per_min).await?;
    }
    let bytes = tokio::time::timeout(
        st.cfg.body_timeout,
        axum::body::to_bytes(req.into_body(), st.cfg.max_body_bytes),
    )
    .await
    .map_err(|_| {
        WireError::invalid_parameter(format!(
            "Request body was not received within {} ms",
            st.cfg.body_timeout.as_millis()
        ))
    })?
    .map_err(|_| {
        WireError::invalid_parameter(format!(
            "Request body is larger than {} bytes",
            st.cfg.max_body_bytes
        ))
    })?;
    let mut body = serde_json::from_slice::<Value>(&bytes).map_err(|_| not_json())?;
    // Who the request is about, known before the policy runs: a refused attribute change
    // names the token's user in the event stream (a fraud analyst can tie refusals to someone).
    notes.user = body
        .get("Username")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            body.get("AccessToken")
                .and_then(Value::as_str)
                .and_then(wire::jwt::access_token_user)
                .map(|(u, _)| u)
        });
    let secrets: Arc<Loaded> = st.secrets.get().await?;

    let prepared = wire::prepare(
        spec,
        &mut body,
        &secrets.clients,
        ip.as_deref(),
        &secrets.refresh_keys,
    )?;
    notes.user = prepared
        .username
        .clone()
        .or_else(|| {
            body.get("AccessToken")
                .and_then(Value::as_str)
                .and_then(wire::jwt::access_token_user)
                .map(|(u, _)| u)
        })
        .or(notes.user.take());
    if let Some(policy) = &st.policy {
        // Before anything reaches Cognito, and after the relay's own validation (`prepare`):
        // a malformed or junk request is refused before it can count against a sign-up rule's
        // per-domain or per-IP budget (junk must not block a whole e-mail domain).
        use crate::policy::Verdict;
        match policy
            .evaluate(spec.name, &body, ip.as_deref(), &*st.limiter)
            .await
        {
            Verdict::Pass => {}
            Verdict::DryRun(rule) => (notes.policy_rule, notes.policy_dry_run) = (Some(rule), true),
            Verdict::Refuse(rule, e) => {
                notes.policy_rule = Some(rule);
                if st.emf {
                    println!("{}", crate::policy::emf_refusal(rule, false));
                }
                return Err(e);
            }
        }
        if let (true, Some(rule)) = (st.emf, notes.policy_rule) {
            println!("{}", crate::policy::emf_refusal(rule, notes.policy_dry_run));
        }
    }
    let mut admitted = Admitted {
        spec,
        bytes,
        body,
        secrets,
        prepared,
        pre_identity: None,
        ip,
        user_agent,
    };
    if let Some(key) = admitted.user_limit_key() {
        let signin = is_signin(spec, &admitted.body) && st.cfg.failed_signins_per_username > 0;
        // One round trip for both (concurrent) when the limits are shared.
        let (rate, locked) = tokio::join!(
            limit(st, key.clone(), st.cfg.rate_per_username_per_min),
            async {
                signin
                    && st
                        .limiter
                        .locked(&key, st.cfg.failed_signins_per_username)
                        .await
            }
        );
        rate?;
        if locked {
            return Err(WireError::too_many_requests(
                "Too many failed sign-in attempts for this user; try again later",
            ));
        }
    }
    // A token mutation whose user cannot be resolved now is refused before anything changes
    // (it could not be replicated); a token Cognito will refuse anyway is forwarded as is.
    if let (Some(_), SecretPlacement::None, Some(_)) = (spec.mutation, spec.secret, &st.sink) {
        let token = admitted.body.get("AccessToken").and_then(Value::as_str);
        admitted.pre_identity = identity_from_token(st, token).await?;
    }
    Ok(admitted)
}

/// Stage 2, forward: sends the admitted request to Cognito, once more with reloaded secrets
/// when Cognito rejected the secret hash (the app client secret rotated; `admitted` then holds
/// what was sent the second time). Counts failed sign-ins and Cognito's throttling.
pub(crate) async fn forward(st: &AppState, admitted: &mut Admitted) -> Result<Upstream, WireError> {
    async fn send(st: &AppState, a: &Admitted) -> Result<Upstream, WireError> {
        let body = serde_json::to_vec(&a.body).unwrap_or_default();
        call_upstream(st, a.spec.name, body, a.user_agent.as_ref()).await
    }
    let mut up = send(st, admitted).await?;
    if admitted.spec.secret != SecretPlacement::None && up.rejected_secret() {
        // The app client secret may have rotated: reload once and try again.
        if let Some(fresh) = st.secrets.refresh_after_rejection(&admitted.secrets).await {
            admitted.reprepare(fresh)?;
            up = send(st, admitted).await?;
        }
    }
    if up.error_type() == Some("NotAuthorizedException")
        && !up.rejected_secret()
        && st.cfg.failed_signins_per_username > 0
        && is_signin(admitted.spec, &admitted.body)
    {
        if let Some(key) = admitted.user_limit_key() {
            st.limiter
                .fail(&key, st.cfg.failed_signins_per_username)
                .await;
        }
    }
    if up.throttled() {
        st.metrics.throttled.increment(1);
    }
    tracing::Span::current().record("request_id", up.request_id());
    Ok(up)
}

/// Cognito's answer, with its body parsed when a later stage reads it.
struct Answer {
    up: Upstream,
    /// The JSON of a success that issues tokens or is replicated (`None` otherwise, or when the
    /// body is not JSON).
    json: Option<Value>,
}

impl Answer {
    fn of(a: &Admitted, sink: &Option<Arc<dyn EventSink>>, up: Upstream) -> Self {
        let read = up.status.is_success()
            && (a.spec.issues_tokens || (a.spec.mutation.is_some() && sink.is_some()));
        let json = read
            .then(|| serde_json::from_slice::<Value>(&up.body).ok())
            .flatten();
        Self { up, json }
    }
}

/// Stage 3, replicate: a successful mutation's event, sealed for the peer and delivered before
/// the client is answered. `None` when there is nothing to replicate.
async fn replicate_stage(st: &AppState, a: &Admitted, answer: &Answer) -> Option<Delivery> {
    if a.spec.name == "InitiateAuth" {
        return material_from_sign_in(st, a, answer).await;
    }
    if a.spec.name == "RevokeToken" {
        return crate::sessions::after_revoke(st, a, answer.up.status.is_success()).await;
    }
    if matches!(
        a.spec.name,
        "AssociateSoftwareToken" | "VerifySoftwareToken"
    ) {
        if !answer.up.status.is_success() || st.sink.is_none() {
            return None;
        }
        return crate::totp::after(st, a, &answer.up.body).await;
    }
    let mutation = a.spec.mutation.filter(|_| st.sink.is_some())?;
    if !answer.up.status.is_success() {
        return None;
    }
    // AWS documents empty bodies for actions without output: a success whose body is empty
    // (or not JSON) replicates as if it were `{}`.
    let empty = Value::Object(Default::default());
    let resp = answer.json.as_ref().unwrap_or(&empty);
    replicate(
        st,
        a.spec,
        mutation,
        a.pre_identity.clone(),
        &a.body,
        resp,
        &a.secrets.keys,
    )
    .await
}

/// Credential material for the standby sign-in bridge from a successful `USER_PASSWORD_AUTH`
/// (how backfilled users, who have no password on the standby, stop needing a reset): the
/// password goes to the peer as a SetPassword event (its replicator sets it and derives the
/// SRP verifier) only when this region has not sent material for this user and password
/// before (a keyed fingerprint in this region's state table). SRP sign-ins never reveal the
/// password; their users get material from sign-up, password changes and resets only.
async fn material_from_sign_in(st: &AppState, a: &Admitted, answer: &Answer) -> Option<Delivery> {
    st.cfg.app_user_pool_id.as_ref()?;
    let store = st.bridge_store.as_ref()?;
    st.sink.as_ref()?;
    if a.body.get("AuthFlow").and_then(Value::as_str) != Some("USER_PASSWORD_AUTH") {
        return None;
    }
    let resp = answer.json.as_ref()?;
    resp.get("AuthenticationResult")?;
    let params = a.body.get("AuthParameters")?;
    let user = params.get("USERNAME")?.as_str()?;
    let password = params.get("PASSWORD")?.as_str()?;
    let fp = replication::state::material_fp(&a.secrets.keys, user, password);
    match store.record(user).await {
        Ok(r) if r.material_fp.as_deref() == Some(fp.as_str()) => return None,
        Ok(_) => {}
        Err(e) => {
            // Cannot tell: send (a duplicate costs one idempotent event).
            warn!(error = %e, "cannot read the material fingerprint");
        }
    }
    let req = serde_json::json!({ "PASSWORD": password });
    let d = replicate(
        st,
        a.spec,
        Mutation::SetPassword("/PASSWORD"),
        None,
        &req,
        resp,
        &a.secrets.keys,
    )
    .await?;
    // `replicate` recorded the fingerprint under the user's key; the name the user typed may
    // differ from it (an alias, another case), so it is recorded under that name too.
    if matches!(d, Delivery::Peer | Delivery::Fallback) {
        let fp2 = fp.clone();
        if let Err(e) = store
            .update(
                user,
                Box::new(move |r: &mut replication::UserRecord| r.material_fp = Some(fp2.clone())),
            )
            .await
        {
            warn!(error = %e, "cannot record the material fingerprint");
        }
    }
    Some(d)
}

/// Stage 4, respond: Cognito's status, body and `x-amzn-*` / `Date` headers, with the refresh
/// tokens of a token-issuing success sealed.
fn respond(a: &Admitted, answer: Answer, delivery: Option<Delivery>) -> Outcome {
    let Answer { up, json } = answer;
    let mut out_body = up.body.clone();
    if let Some(mut json) = json.filter(|_| a.spec.issues_tokens) {
        if wire::seal_response_tokens(
            a.spec,
            &mut json,
            &a.secrets.refresh_keys,
            a.prepared.username.as_deref(),
        ) {
            out_body = Bytes::from(serde_json::to_vec(&json).unwrap_or_default());
        }
    }
    let throttled = up.throttled();
    let mut resp = Response::new(Body::from(out_body));
    *resp.status_mut() = up.status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        up.headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/x-amz-json-1.1")),
    );
    for (k, v) in up.headers.iter() {
        if k.as_str().starts_with("x-amzn-") || k == header::DATE {
            h.insert(k.clone(), v.clone());
        }
    }
    Outcome {
        response: resp,
        delivery,
        throttled,
    }
}
