//! Sessions survive failover, in both directions (issue 10 point 4): a refresh token sealed by
//! the other region's proxy is continued on this region's pool.
//!
//! Both regions' proxies hold the same refresh keyring, so either opens the other's sealed
//! tokens (`wire::session`): `prepare` already did, and `Prepared::refresh` says which pool
//! issued the token, when, its id and the user's key. For a token of the peer pool:
//! - `InitiateAuth REFRESH_TOKEN_AUTH` / `GetTokensFromRefreshToken`: the user's state record
//!   here must not say the session ended since the token's issue (global sign-out, this token
//!   revoked in either region, the user deleted: `UserRecord::session_ended`); then tokens of
//!   the home pool are minted through the bridge's CUSTOM_AUTH (`bridge::mint`, which also
//!   refuses a user missing or disabled here, as Cognito does) and answered in the shape of the
//!   action asked, with a new sealed refresh token of this pool (both client libraries keep a
//!   `RefreshToken` found in a refresh answer), so the session carries on here.
//! - `RevokeToken`: this region cannot reach the other pool's Cognito with it: the revocation
//!   is recorded here and replicated (`revoke_token`), answered `{}` like Cognito.
//!
//! After a successful `RevokeToken` of a home-pool token (forwarded to Cognito as ever), the
//! revocation is replicated too, so the peer never continues that session.
//!
//! A refused session is Cognito's `NotAuthorizedException` "Refresh Token has been revoked"
//! (metric `BridgeRefusals` with the reason); a continued one counts `BridgeRefreshes`.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use replication::UserIdentity;
use serde_json::{json, Value};
use tracing::warn;
use wire::session::SealedRefresh;
use wire::{Mutation, WireError};

use crate::app::{Admitted, AppState, Outcome};
use crate::bridge::{mint, refused};
use crate::ports::Delivery;
use relay_aws::telemetry::names;

/// Cognito's answer to a refresh token that was revoked (or whose user signed out globally).
const REVOKED: &str = "Refresh Token has been revoked";
const CANNOT_CONTINUE: &str =
    "This session was started in the other region and cannot continue here; sign in again.";
/// The largest minted answer read back (tokens are a few KB).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The stage (between `bridge` and `forward`): `Some` answers a request that carries a sealed
/// refresh token of the peer pool; `None` passes everything else on.
pub(crate) async fn stage(
    st: &Arc<AppState>,
    a: &mut Admitted,
) -> Result<Option<Outcome>, WireError> {
    let Some(claims) = a.prepared.refresh.clone() else {
        return Ok(None);
    };
    let home = st.cfg.user_pool_id.as_str();
    if !claims.from_other_pool(home) {
        // A home-pool token that continues a session begun on the peer (minted here by this
        // stage): Cognito knows nothing of that session's revocation or sign-out there.
        if is_refresh(a) && claims.session_pool().is_some_and(|p| p != home) {
            let Some(user) = user_key(st, &claims) else {
                return Err(refused(
                    st,
                    "no_user_key",
                    WireError::not_authorized(CANNOT_CONTINUE),
                ));
            };
            session_alive(st, user, &claims).await?;
        }
        return Ok(None);
    }
    if !is_peer_pool(st, claims.pool.as_deref().unwrap_or_default()) {
        return Err(refused(
            st,
            "unknown_pool",
            WireError::not_authorized("Invalid Refresh Token"),
        ));
    }
    match a.spec.name {
        "InitiateAuth" | "GetTokensFromRefreshToken" => {
            // Closed while the peer serves (`serving.rs`): its sessions continue there.
            if !st.bridge_open().await {
                return Err(refused(
                    st,
                    "not_serving",
                    WireError::not_authorized(CANNOT_CONTINUE),
                ));
            }
            continue_session(st, a, &claims).await.map(Some)
        }
        "RevokeToken" => Ok(Some(revoke_peer_token(st, a, &claims).await)),
        _ => Ok(None),
    }
}

/// The pools whose sessions this proxy continues: the peer's (and the app pool, the peer of a
/// bridging proxy).
fn is_peer_pool(st: &AppState, pool: &str) -> bool {
    st.cfg.peer.as_ref().is_some_and(|p| p.user_pool_id == pool)
        || st.cfg.app_user_pool_id.as_deref() == Some(pool)
}

fn is_refresh(a: &Admitted) -> bool {
    a.spec.name == "GetTokensFromRefreshToken"
        || (a.spec.name == "InitiateAuth"
            && matches!(
                a.body.get("AuthFlow").and_then(Value::as_str),
                Some("REFRESH_TOKEN_AUTH" | "REFRESH_TOKEN")
            ))
}

/// Refuses a session that ended here since it began (`UserRecord::session_ended`, compared
/// with the session's *start*: a continuation minted during replication lag cannot outlive a
/// sign-out made before it), one older than the client's refresh validity
/// (`RELAY_SESSION_MAX_AGE_S`, from its first sign-in, never extended by a continuation), and
/// one whose user this region holds no record of (the records that guard sessions are kept as
/// long as the sessions they guard: a missing one is not "alive").
async fn session_alive(
    st: &AppState,
    user: &str,
    claims: &SealedRefresh,
) -> Result<replication::UserRecord, WireError> {
    let now_ms = crate::app::now_ms();
    if claims.session_expired(now_ms, st.cfg.session_max_age.as_millis() as u64) {
        return Err(refused(
            st,
            "expired",
            WireError::not_authorized("Refresh Token has expired"),
        ));
    }
    let store = st.bridge_store.as_ref().ok_or_else(|| {
        refused(
            st,
            "not_configured",
            WireError::not_authorized(CANNOT_CONTINUE),
        )
    })?;
    let record = store.record(user).await.map_err(|e| {
        warn!(error = %e, "cannot read the state table to continue a session");
        refused(
            st,
            "store_unavailable",
            WireError::unavailable("The relay cannot refresh the session right now; retry"),
        )
    })?;
    if record.marks.is_empty() {
        return Err(refused(st, "no_record", WireError::not_authorized(REVOKED)));
    }
    match record.session_ended(claims.session_id(), claims.session_started()) {
        Some(ended) => Err(refused(
            st,
            ended.reason(),
            WireError::not_authorized(REVOKED),
        )),
        None => Ok(record),
    }
}

fn user_key<'a>(st: &AppState, claims: &'a SealedRefresh) -> Option<&'a str> {
    let aliases: Vec<&str> = st
        .cfg
        .username_attributes
        .iter()
        .map(|a| a.as_str())
        .collect();
    claims.user_key(&aliases)
}

/// Continues a peer-pool session with tokens of the home pool.
async fn continue_session(
    st: &Arc<AppState>,
    a: &Admitted,
    claims: &SealedRefresh,
) -> Result<Outcome, WireError> {
    let Some(keys) = a.secrets.bridge_keys.clone() else {
        return Err(refused(
            st,
            "not_configured",
            WireError::not_authorized(CANNOT_CONTINUE),
        ));
    };
    let Some(user) = user_key(st, claims) else {
        return Err(refused(
            st,
            "no_user_key",
            WireError::not_authorized(CANNOT_CONTINUE),
        ));
    };
    let record = session_alive(st, user, claims).await?;
    ask_issuing_region(st, a).await?;
    // Mint the home pool's internal username this region stored for the user (with their SRP
    // material) rather than the alias the token carried, which may have moved to someone else;
    // the alias only when no such name is known here.
    let mint_as = record
        .srp
        .as_ref()
        .map(|m| m.username.as_str())
        .filter(|u| !u.is_empty())
        .unwrap_or(user);
    let minted = match mint(st, a, &keys, mint_as, "refresh").await {
        Ok(o) => o,
        // `mint` answers a user missing here like a wrong password (sign-in: no oracle); a
        // refresh token of a deleted user is revoked.
        Err(e) if e.kind == "NotAuthorizedException" => {
            return Err(WireError::not_authorized(REVOKED))
        }
        Err(e) => return Err(e),
    };
    reshape(minted, a, claims).await
}

/// How long the issuing region is given to answer about a session.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Before a session of the other region's pool is continued here, that region is asked when it
/// can be (its proxy, `RELAY_PEER_URL`): the client's own refresh request is replayed there, so
/// the issuing pool's Cognito itself judges the token (revoked, user disabled, deleted or
/// signed out there — by any path, the console included). Its `NotAuthorizedException` is
/// the answer here too. Only when it cannot be asked (unreachable, throttled, 5xx) does the
/// continuation rest on the replicated marks alone, counted in `BridgeMarksFallbacks`.
async fn ask_issuing_region(st: &AppState, a: &Admitted) -> Result<(), WireError> {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(url) = st.cfg.peer_url.as_deref() else {
        return Ok(());
    };
    let now_ms = crate::app::now_ms();
    if st.peer_ask_backoff_until.load(Relaxed) > now_ms {
        crate::bridge::count(st, names::BRIDGE_MARKS_FALLBACKS);
        return Ok(());
    }
    let req = st
        .http
        .post(url)
        .header(
            axum::http::header::CONTENT_TYPE,
            "application/x-amz-json-1.1",
        )
        .header(
            "x-amz-target",
            format!("{}{}", wire::TARGET_PREFIX, a.spec.name),
        )
        .body(a.bytes.clone())
        .send();
    let answer = match tokio::time::timeout(ASK_TIMEOUT, req).await {
        Ok(Ok(r)) => Some((
            r.status(),
            r.headers()
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(':').next().unwrap_or(v).to_owned()),
            r.bytes().await.unwrap_or_default(),
        )),
        _ => None,
    };
    match answer {
        Some((status, _, _)) if status.is_success() => Ok(()),
        Some((_, Some(kind), body)) if kind == "NotAuthorizedException" => {
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| REVOKED.to_owned());
            Err(refused(
                st,
                "issuer_refused",
                WireError::not_authorized(message),
            ))
        }
        _ => {
            st.peer_ask_backoff_until.store(now_ms + 5_000, Relaxed);
            warn!("the issuing region cannot be asked about this session; continuing on the replicated marks");
            crate::bridge::count(st, names::BRIDGE_MARKS_FALLBACKS);
            Ok(())
        }
    }
}

/// The minted answer (RespondToAuthChallenge's shape) in the shape of the refresh action:
/// InitiateAuth `{AuthenticationResult, ChallengeParameters: {}}`, GetTokensFromRefreshToken
/// `{AuthenticationResult}`, its refresh token sealed as a continuation of `from`'s session.
/// Errors (Cognito's, passed through by `mint`) are kept as they are.
async fn reshape(
    minted: Outcome,
    a: &Admitted,
    from: &SealedRefresh,
) -> Result<Outcome, WireError> {
    if !minted.response.status().is_success() {
        return Ok(minted);
    }
    let (parts, body) = minted.response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ANSWER_BYTES)
        .await
        .map_err(|_| WireError::internal("The relay failed while handling the request"))?;
    let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let mut result = v.get("AuthenticationResult").cloned().unwrap_or_default();
    let keys = &a.secrets.refresh_keys;
    if let Some(slot) = result.get_mut("RefreshToken") {
        if let Ok(Some(minted)) = wire::session::open(keys, slot.as_str().unwrap_or_default()) {
            *slot = Value::String(wire::session::seal(keys, &minted.continuing(from)));
        }
    }
    let out = if a.spec.name == "InitiateAuth" {
        json!({ "AuthenticationResult": result, "ChallengeParameters": {} })
    } else {
        json!({ "AuthenticationResult": result })
    };
    let body = Body::from(serde_json::to_vec(&out).unwrap_or_default());
    Ok(Outcome::answered(Response::from_parts(parts, body)))
}

/// RevokeToken of a peer-pool token: recorded here and sent to the peer; `{}` like Cognito.
async fn revoke_peer_token(st: &AppState, a: &Admitted, claims: &SealedRefresh) -> Outcome {
    let delivery = replicate_revocation(st, a, claims, None).await;
    let mut resp = Response::new(Body::from("{}"));
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    let mut out = Outcome::answered(resp);
    out.delivery = delivery;
    out
}

/// After Cognito revoked a home-pool token (`ok`): the revocation goes to the peer, so its
/// bridge never continues that session. Tokens sealed before token ids existed have nothing to
/// send (the peer does not continue those either).
pub(crate) async fn after_revoke(st: &AppState, a: &Admitted, ok: bool) -> Option<Delivery> {
    let claims = a.prepared.refresh.as_ref().filter(|_| ok)?;
    (!claims.session_id().is_empty()).then_some(())?;
    let username = Some(claims.username.clone());
    replicate_revocation(st, a, claims, username).await
}

/// The `revoke_token` event (this region's mark advances with it).
async fn replicate_revocation(
    st: &AppState,
    a: &Admitted,
    claims: &SealedRefresh,
    origin_username: Option<String>,
) -> Option<Delivery> {
    let Some(user) = user_key(st, claims) else {
        // The bridge cannot continue a session it cannot name the user of either.
        warn!("a revoked refresh token names no user key; nothing to replicate");
        return None;
    };
    let who = UserIdentity {
        user_key: user.to_owned(),
        origin_username,
        origin_sub: None,
    };
    let req = json!({
        "TokenId": claims.session_id(),
        "Pool": claims.session_pool().unwrap_or(&st.cfg.user_pool_id),
    });
    crate::app::replicate(
        st,
        a.spec,
        Mutation::RevokeToken,
        Some(who),
        &req,
        &json!({}),
        &a.secrets.keys,
    )
    .await
}
