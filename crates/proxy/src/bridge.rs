//! The standby sign-in bridge: a stage between `admit` and `forward` (see `app.rs`).
//!
//! Always: app-sent `AuthFlow=CUSTOM_AUTH` (and CUSTOM_CHALLENGE answers) are refused unless
//! `RELAY_ALLOW_APP_CUSTOM_AUTH=true`, so the relay's own client flow cannot be driven by apps.
//!
//! On a proxy whose home pool is not the app pool (`Config::bridging`):
//! - `InitiateAuth USER_SRP_AUTH`: the proxy is the SRP server for the app pool's name. It reads
//!   the user's replicated verifier (state table, sealed under the replication keyring) and
//!   answers `PASSWORD_VERIFIER` with SALT, SRP_B, USER_ID_FOR_SRP (= the user key) and a
//!   SECRET_BLOCK holding its sealed, expiring, one-time state. A user without material gets
//!   decoy values derived from the bridge key (stable per user, so nothing tells them apart)
//!   and always fails at the next step: no user-existence oracle.
//! - `RespondToAuthChallenge PASSWORD_VERIFIER` with one of the bridge's blocks: the claim is
//!   checked (timestamp within 5 min, signature in constant time, the block used once). A wrong
//!   proof is Cognito's `NotAuthorizedException` "Incorrect username or password." and counts
//!   as a failed sign-in for the per-user limiter. A right one is minted into tokens of the
//!   home pool through CUSTOM_AUTH: InitiateAuth → the trigger's nonce → an assertion signed
//!   with the bridge key, bound to pool, user and nonce → RespondToAuthChallenge → tokens,
//!   answered in Cognito's shape with the refresh token sealed.
//! - Users whose replicated MFA preference enables a second factor are refused (never
//!   bypassed): `NotAuthorizedException` with a clear message, metric reason `mfa`.
//!
//! Metrics (EMF, namespace `CognitoRelay`): `BridgeSrpSignIns`, `BridgeRefreshes`,
//! `BridgeRefusals` (by `Reason`, and dimensionless). No SRP value, key or password is logged.

use relay_aws::telemetry::names;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use tracing::{info, warn};
use wire::bridge::{self, SrpBlock};
use wire::seal::Keyring;
use wire::{srp, WireError};

use crate::app::{call_upstream, Admitted, AppState, Outcome, Upstream};

/// How far a claim's TIMESTAMP may be from the proxy's clock.
const TIMESTAMP_SKEW_SECS: i64 = 300;
/// How long an SRP handshake waits for a free slot (`RELAY_SRP_MAX_CONCURRENT`) before it is
/// refused with TooManyRequestsException.
const SRP_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_millis(250);
/// How long a minted assertion lives (the trigger accepts at most 60 s).
const ASSERTION_TTL_SECS: i64 = 30;

const WRONG_PASSWORD: &str = "Incorrect username or password.";
/// Cognito's answer to a wrong (or reused) authenticator code.
const TOTP_MISMATCH: &str = "Invalid code received for user";
/// The `key` of a bridge block that is an MFA session (after a right SRP proof), not a
/// SECRET_BLOCK: neither is accepted in the other's place.
const MFA_BLOCK: &str = "mfa";
const EXPIRED: &str = "Invalid session for the user, session is expired.";
use crate::mfa::MFA_REFUSED;

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// One EMF line for a bridge metric (printed under Lambda; standalone only logs).
fn emf(st: &AppState, metric: &'static str, reason: Option<&str>) {
    use relay_aws::telemetry::{Emf, Unit};
    if st.emf {
        let line = match reason {
            Some(r) => Emf::new(&[&["Reason"], &[]]).with("Reason", r),
            None => Emf::new(&[&[]]),
        };
        line.metric(metric, Unit::Count, 1).print();
    }
}

/// Counts one `metric` (EMF under Lambda; standalone only logs).
pub(crate) fn count(st: &AppState, metric: &'static str) {
    emf(st, metric, None);
}

pub(crate) fn refused(st: &AppState, reason: &str, e: WireError) -> WireError {
    emf(st, names::BRIDGE_REFUSALS, Some(reason));
    info!(reason, "bridge refused");
    e
}

fn wrong_password() -> WireError {
    WireError::not_authorized(WRONG_PASSWORD)
}

/// A 200 answer in Cognito's shape.
fn answer(body: &Value) -> Outcome {
    let mut resp = Response::new(Body::from(serde_json::to_vec(body).unwrap_or_default()));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        h.insert("x-amzn-requestid", v);
    }
    Outcome::answered(resp)
}

/// Cognito's answer passed through (an error of the mint, e.g. UserNotConfirmedException).
fn passthrough(up: Upstream) -> Outcome {
    let mut resp = Response::new(Body::from(up.body.clone()));
    *resp.status_mut() = up.status;
    let h = resp.headers_mut();
    for (k, v) in up.headers.iter() {
        if k.as_str().starts_with("x-amzn-") || k == header::CONTENT_TYPE {
            h.insert(k.clone(), v.clone());
        }
    }
    Outcome::answered(resp)
}

fn str_at<'a>(v: &'a Value, obj: &str, key: &str) -> Option<&'a str> {
    v.get(obj)?.get(key)?.as_str()
}

/// The stage: `Some` answers the request, `None` passes it on to `forward`.
pub(crate) async fn bridge(
    st: &Arc<AppState>,
    a: &mut Admitted,
) -> Result<Option<Outcome>, WireError> {
    let name = a.spec.name;
    let flow = a.body.get("AuthFlow").and_then(Value::as_str);
    let challenge = a.body.get("ChallengeName").and_then(Value::as_str);
    if !st.cfg.allow_app_custom_auth
        && ((name == "InitiateAuth" && flow == Some("CUSTOM_AUTH"))
            || (name == "RespondToAuthChallenge" && challenge == Some("CUSTOM_CHALLENGE")))
    {
        return Err(refused(
            st,
            "app_custom_auth",
            WireError::invalid_parameter("CUSTOM_AUTH flow not enabled for this client"),
        ));
    }
    if !st.cfg.bridging() {
        return Ok(None);
    }
    let Some(keys) = a.secrets.bridge_keys.clone() else {
        return Ok(None);
    };
    let srp_step = matches!(
        (name, flow, challenge),
        ("InitiateAuth", Some("USER_SRP_AUTH"), _)
            | (
                "RespondToAuthChallenge",
                _,
                Some("PASSWORD_VERIFIER" | "SOFTWARE_TOKEN_MFA")
            )
    );
    // Closed while the peer serves (`serving.rs`): the request goes to this pool as it is.
    if srp_step && !st.bridge_open().await {
        emf(st, names::BRIDGE_REFUSALS, Some("not_serving"));
        return Ok(None);
    }
    match (name, flow, challenge) {
        ("InitiateAuth", Some("USER_SRP_AUTH"), _) => srp_start(st, a, &keys).await.map(Some),
        ("RespondToAuthChallenge", _, Some("PASSWORD_VERIFIER"))
            if str_at(&a.body, "ChallengeResponses", "PASSWORD_CLAIM_SECRET_BLOCK")
                .is_some_and(bridge::is_bridge_block) =>
        {
            srp_finish(st, a, &keys).await.map(Some)
        }
        ("RespondToAuthChallenge", _, Some("SOFTWARE_TOKEN_MFA"))
            if a.body
                .get("Session")
                .and_then(Value::as_str)
                .is_some_and(bridge::is_bridge_block) =>
        {
            totp_finish(st, a, &keys).await.map(Some)
        }
        _ => Ok(None),
    }
}

/// Decoy salt and verifier for a user without material: derived from the bridge key, stable
/// per user, indistinguishable from real ones without the key. The verifier is expanded from
/// HMAC blocks (any value below N is as good as `g^x` to the handshake, which only computes
/// `k·v + g^b` and `(A·v^u)^b`), so a decoy costs what a real user's handshake costs: no extra
/// exponentiation that would tell an unknown user by the answer's timing.
fn decoy(keys: &Keyring, user: &str) -> (Vec<u8>, Vec<u8>) {
    let (_, s) = keys.sign("bridge-decoy-salt", user.as_bytes());
    let mut salt = s[..16].to_vec();
    salt[0] = (salt[0] & 0x7f) | 0x01;
    let mut verifier = Vec::with_capacity(srp::N_BYTES);
    for i in 0..(srp::N_BYTES / 32) as u8 {
        let mut msg = user.as_bytes().to_vec();
        msg.push(i);
        verifier.extend_from_slice(&keys.sign("bridge-decoy-verifier", &msg).1);
    }
    // N's top byte is 0xff: a value whose top bit is clear is below N; never zero.
    verifier[0] &= 0x7f;
    verifier[srp::N_BYTES - 1] |= 1;
    (salt, verifier)
}

fn hex16(key: &[u8; 16]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

async fn srp_start(st: &AppState, a: &Admitted, keys: &Keyring) -> Result<Outcome, WireError> {
    let user = str_at(&a.body, "AuthParameters", "USERNAME")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| WireError::invalid_parameter("Missing required parameter USERNAME"))?
        .to_owned();
    let srp_a = str_at(&a.body, "AuthParameters", "SRP_A")
        .ok_or_else(|| WireError::invalid_parameter("Missing required parameter SRP_A"))?
        .to_owned();
    let store = st
        .bridge_store
        .as_ref()
        .ok_or_else(|| WireError::unavailable("The relay cannot sign in right now; retry"))?;
    let record = store.record(&user).await.map_err(|e| {
        warn!(error = %e, "bridge cannot read the state table");
        refused(
            st,
            "store_unavailable",
            WireError::unavailable("The relay cannot sign in right now; retry"),
        )
    })?;
    let app_pool = st.cfg.app_user_pool_id.clone().unwrap_or_default();
    let rk = replication::state::record_key(&user);
    // The record key is the lower-cased user key (as Cognito's default case-insensitive pools
    // compare names): the material matches whatever case the user typed, and the challenge
    // names the user id the verifier was computed with.
    let material = record
        .srp
        .as_ref()
        .filter(|m| m.pool == app_pool && m.user_id.to_lowercase() == user.to_lowercase());
    let opened = material.and_then(|m| m.open(&a.secrets.keys, &rk));
    let (salt, verifier, is_decoy) = match &opened {
        Some(s) => (s.salt.clone(), s.verifier.clone(), false),
        None => {
            let (s, v) = decoy(keys, &user.to_lowercase());
            (s, v, true)
        }
    };
    // The challenge names the user id the verifier was computed with: the lower-cased key for
    // material derived now (`SrpMaterial::derive` lower-cases it), as for a decoy, so the
    // answer's case tells nothing about who exists.
    let user = match material.filter(|_| opened.is_some()) {
        Some(m) => m.user_id.clone(),
        None => user.to_lowercase(),
    };
    // The handshake's CPU is capped per process: unauthenticated handshakes wait their turn
    // briefly, then are refused, and never take every core.
    let permit = tokio::time::timeout(SRP_QUEUE_WAIT, st.srp_slots.clone().acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| {
            refused(
                st,
                "srp_busy",
                WireError::too_many_requests("Rate exceeded"),
            )
        })?;
    let started = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        srp::server_start(&verifier, &srp_a)
    })
    .await
    .map_err(|_| WireError::internal("The relay failed while handling the request"))?
    .map_err(|e| WireError::invalid_parameter(e.to_string()))?;
    let block = SrpBlock {
        id: uuid::Uuid::new_v4().to_string(),
        key: hex16(&started.key),
        user_id: user.clone(),
        pool_name: srp::pool_name(&app_pool).to_owned(),
        username: material.map_or_else(|| user.clone(), |m| m.username.clone()),
        decoy: is_decoy,
        exp: now_secs() + bridge::SECRET_BLOCK_TTL_SECS,
    };
    let secret_block = bridge::seal_block(keys, &block);
    Ok(answer(&json!({
        "ChallengeName": "PASSWORD_VERIFIER",
        "ChallengeParameters": {
            "SALT": srp::int_hex(&salt),
            "SRP_B": started.srp_b_hex,
            "SECRET_BLOCK": secret_block,
            "USER_ID_FOR_SRP": user,
            "USERNAME": user,
        },
    })))
}

fn unhex16(s: &str) -> Option<[u8; 16]> {
    srp::parse_hex(s).and_then(|v| {
        let mut out = [0u8; 16];
        (v.len() <= 16).then(|| {
            out[16 - v.len()..].copy_from_slice(&v);
            out
        })
    })
}

/// What every answer to a bridge challenge goes through: the block (a SECRET_BLOCK, or the
/// MFA session when `mfa`) opens and is unexpired; the answer's USERNAME is the block's user
/// (so the lockout and the limits admission applied are that user's); the block is spent, right
/// or wrong (one block, one guess); and a locked user is refused before anything is evaluated.
/// Returns the block and the user's canonical limiter key.
async fn spend_block(
    st: &AppState,
    a: &Admitted,
    keys: &Keyring,
    text: &str,
    mfa: bool,
    now: i64,
) -> Result<(SrpBlock, String), WireError> {
    let Some(block) = bridge::open_block(keys, text, now).filter(|b| (b.key == MFA_BLOCK) == mfa)
    else {
        return Err(refused(st, "expired", WireError::not_authorized(EXPIRED)));
    };
    let named = str_at(&a.body, "ChallengeResponses", "USERNAME").unwrap_or_default();
    if named.to_lowercase() != block.user_id.to_lowercase() {
        return Err(refused(
            st,
            "username_mismatch",
            WireError::not_authorized(EXPIRED),
        ));
    }
    let store = st
        .bridge_store
        .as_ref()
        .ok_or_else(|| WireError::unavailable("The relay cannot sign in right now; retry"))?;
    let kind = if mfa { "mfa" } else { "srp" };
    let fresh = store
        .claim_once(&format!("{kind}#{}", block.id), block.exp + 60)
        .await
        .map_err(|_| WireError::unavailable("The relay cannot sign in right now; retry"))?;
    if !fresh {
        return Err(refused(st, "replayed", WireError::not_authorized(EXPIRED)));
    }
    let user_key = crate::lockout::canonical_user_key(&block.user_id);
    let max = st.cfg.failed_signins_per_username;
    if max > 0 && st.limiter.locked(&user_key, max).await {
        return Err(refused(
            st,
            "locked",
            WireError::too_many_requests(
                "Too many failed sign-in attempts for this user; try again later",
            ),
        ));
    }
    Ok((block, user_key))
}

async fn srp_finish(st: &AppState, a: &Admitted, keys: &Keyring) -> Result<Outcome, WireError> {
    let now = now_secs();
    let answers = a
        .body
        .get("ChallengeResponses")
        .cloned()
        .unwrap_or_default();
    let get = |k: &str| answers.get(k).and_then(Value::as_str).unwrap_or_default();
    let block_text = get("PASSWORD_CLAIM_SECRET_BLOCK");
    let (block, user_key) = spend_block(st, a, keys, block_text, false, now).await?;
    let max = st.cfg.failed_signins_per_username;
    let store = st
        .bridge_store
        .as_ref()
        .ok_or_else(|| WireError::unavailable("The relay cannot sign in right now; retry"))?;
    let key = unhex16(&block.key).unwrap_or_default();
    let ts = get("TIMESTAMP");
    let ts_ok = srp::parse_timestamp(ts).is_some_and(|t| (t - now).abs() <= TIMESTAMP_SKEW_SECS);
    let proof_ok = srp::check_claim(
        &key,
        &block.pool_name,
        &block.user_id,
        block_text,
        ts,
        get("PASSWORD_CLAIM_SIGNATURE"),
    );
    if block.decoy || !ts_ok || !proof_ok {
        if max > 0 {
            st.limiter.fail(&user_key, max).await;
        }
        let reason = if block.decoy {
            "no_material"
        } else if !ts_ok {
            "timestamp"
        } else {
            "wrong_password"
        };
        return Err(refused(st, reason, wrong_password()));
    }
    let record = store
        .record(&block.user_id)
        .await
        .map_err(|_| WireError::unavailable("The relay cannot sign in right now; retry"))?;
    // MFA is never bypassed: a user whose replicated state enables a second factor, or whose
    // state is unknown (no MFA event ever reached this region: backfilled, Admin-set), is
    // refused rather than signed in on the password alone.
    if record.mfa != Some(false) {
        // A TOTP authenticator the relay saw confirmed at the origin: Cognito's challenge,
        // answered here (`totp_finish`). Anything else cannot be carried: refused.
        let rk = replication::state::record_key(&block.user_id);
        let has_totp = record
            .totp
            .as_deref()
            .and_then(|s| replication::state::open_totp(&a.secrets.keys, &rk, s))
            .is_some();
        if !has_totp {
            return Err(refused(st, "mfa", WireError::not_authorized(MFA_REFUSED)));
        }
        if record.pending_sign_up.is_some() {
            return Err(refused(st, "unconfirmed", crate::signups::not_confirmed()));
        }
        let session = SrpBlock {
            id: uuid::Uuid::new_v4().to_string(),
            key: MFA_BLOCK.to_owned(),
            user_id: block.user_id.clone(),
            pool_name: block.pool_name.clone(),
            username: block.username.clone(),
            decoy: false,
            exp: now + bridge::SECRET_BLOCK_TTL_SECS,
        };
        return Ok(answer(&json!({
            "ChallengeName": "SOFTWARE_TOKEN_MFA",
            "ChallengeParameters": {},
            "Session": bridge::seal_block(keys, &session),
        })));
    }
    // A sign-up replicated before its user confirmed it (the proof shows the password is right).
    if record.pending_sign_up.is_some() {
        return Err(refused(st, "unconfirmed", crate::signups::not_confirmed()));
    }
    // Minting names the home pool's internal username the verifier was stored for, never the
    // alias (an e-mail may have moved to another user since).
    let out = mint(st, a, keys, &block.username, "srp").await?;
    Ok(out)
}

/// `RespondToAuthChallenge SOFTWARE_TOKEN_MFA` with a session the bridge issued after a right
/// SRP proof: the RFC 6238 code is checked against the replicated secret (±1 step), each
/// session answers once, each code is usable once, a locked user is not evaluated, and a wrong
/// code counts as a failed sign-in. Then the user is minted.
async fn totp_finish(st: &AppState, a: &Admitted, keys: &Keyring) -> Result<Outcome, WireError> {
    let now = now_secs();
    let session = a
        .body
        .get("Session")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (block, user_key) = spend_block(st, a, keys, session, true, now).await?;
    let get = |k: &str| str_at(&a.body, "ChallengeResponses", k).unwrap_or_default();
    let max = st.cfg.failed_signins_per_username;
    let store = st
        .bridge_store
        .as_ref()
        .ok_or_else(|| WireError::unavailable("The relay cannot sign in right now; retry"))?;
    let unavailable = |_| WireError::unavailable("The relay cannot sign in right now; retry");
    let record = store.record(&block.user_id).await.map_err(unavailable)?;
    let rk = replication::state::record_key(&block.user_id);
    let secret = record
        .totp
        .as_deref()
        .and_then(|s| replication::state::open_totp(&a.secrets.keys, &rk, s))
        .ok_or_else(|| refused(st, "mfa", WireError::not_authorized(MFA_REFUSED)))?;
    let step = wire::totp::verify(&secret, get("SOFTWARE_TOKEN_MFA_CODE"), now.max(0) as u64);
    let fresh_code = match step {
        Some(step) => store
            .claim_once(&format!("totp#{rk}#{step}"), now + 120)
            .await
            .map_err(unavailable)?,
        None => false,
    };
    if !fresh_code {
        if max > 0 {
            st.limiter.fail(&user_key, max).await;
        }
        return Err(refused(
            st,
            if step.is_some() {
                "totp_reused"
            } else {
                "totp_wrong"
            },
            WireError::new(400, wire::ErrorKind::CodeMismatch, TOTP_MISMATCH),
        ));
    }
    mint(st, a, keys, &block.username, "srp").await
}

/// Tokens of the home pool for `user` (the user key; Cognito resolves an alias) through the
/// relay's CUSTOM_AUTH: two calls to Cognito.
pub(crate) async fn mint(
    st: &AppState,
    a: &Admitted,
    keys: &Keyring,
    user: &str,
    why: &'static str,
) -> Result<Outcome, WireError> {
    let client_id = a
        .body
        .get("ClientId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let client = a
        .secrets
        .clients
        .get(client_id)
        .ok_or_else(|| WireError::resource_not_found("User pool client does not exist."))?
        .clone();
    let mut init = json!({
        "AuthFlow": "CUSTOM_AUTH",
        "ClientId": client.client_id,
        "AuthParameters": {
            "USERNAME": user,
            "SECRET_HASH": wire::secret_hash(&client.client_secret, user, &client.client_id),
        },
    });
    if let (Some(ucd), Some(obj)) = (a.body.get("UserContextData"), init.as_object_mut()) {
        obj.insert("UserContextData".into(), ucd.clone());
    }
    let up = call_upstream(
        st,
        "InitiateAuth",
        serde_json::to_vec(&init).unwrap_or_default(),
        a.user_agent.as_ref(),
    )
    .await?;
    if !up.status.is_success() {
        let kind = up.error_type().unwrap_or_default().to_owned();
        // No oracle: a user missing here answers like a wrong password.
        if kind == "UserNotFoundException" {
            return Err(refused(st, "user_not_found", wrong_password()));
        }
        emf(st, names::BRIDGE_REFUSALS, Some("mint_refused"));
        info!(error_type = %kind, why, "bridge mint refused by the home pool");
        return Ok(passthrough(up));
    }
    let first: Value = serde_json::from_slice(&up.body).unwrap_or_default();
    let nonce = str_at(&first, "ChallengeParameters", "nonce").unwrap_or_default();
    let username = str_at(&first, "ChallengeParameters", "USERNAME").unwrap_or(user);
    let session = first
        .get("Session")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if first.get("ChallengeName").and_then(Value::as_str) != Some("CUSTOM_CHALLENGE")
        || nonce.is_empty()
    {
        warn!("the home pool's custom auth did not ask the relay's challenge (triggers missing?)");
        return Err(refused(
            st,
            "mint_failed",
            WireError::unavailable("The relay cannot sign in right now; retry"),
        ));
    }
    let assertion = bridge::mint_assertion(
        keys,
        &st.cfg.user_pool_id,
        username,
        nonce,
        now_secs(),
        ASSERTION_TTL_SECS,
        why,
    );
    let respond = json!({
        "ChallengeName": "CUSTOM_CHALLENGE",
        "ClientId": client.client_id,
        "Session": session,
        "ChallengeResponses": {
            "USERNAME": username,
            "ANSWER": assertion,
            "SECRET_HASH": wire::secret_hash(&client.client_secret, username, &client.client_id),
        },
    });
    let up = call_upstream(
        st,
        "RespondToAuthChallenge",
        serde_json::to_vec(&respond).unwrap_or_default(),
        a.user_agent.as_ref(),
    )
    .await?;
    if !up.status.is_success() {
        emf(st, names::BRIDGE_REFUSALS, Some("mint_failed"));
        warn!(error_type = ?up.error_type(), "bridge assertion refused by the home pool's trigger");
        return Ok(passthrough(up));
    }
    let mut out: Value = serde_json::from_slice(&up.body).unwrap_or_default();
    // The tokens must be the proven user's: the access token names the internal username the
    // mint asked for (an alias resolved by Cognito must not have moved to someone else).
    let minted_user = out
        .pointer("/AuthenticationResult/AccessToken")
        .and_then(Value::as_str)
        .and_then(wire::jwt::access_token_user)
        .map(|(u, _)| u);
    let asked_internal = !user.contains('@') && !user.starts_with('+');
    let same = |u: &str| u.to_lowercase() == username.to_lowercase();
    if !minted_user.as_deref().is_some_and(same)
        || (asked_internal && user.to_lowercase() != username.to_lowercase())
    {
        warn!(
            why,
            "the minted tokens name another user than the one proven; withheld"
        );
        return Err(refused(
            st,
            "mint_mismatch",
            WireError::not_authorized(WRONG_PASSWORD),
        ));
    }
    let username = username.to_owned();
    wire::seal_response_tokens(a.spec, &mut out, &a.secrets.refresh_keys, Some(&username));
    emf(
        st,
        if why == "srp" {
            names::BRIDGE_SRP_SIGN_INS
        } else {
            names::BRIDGE_REFRESHES
        },
        None,
    );
    info!(why, "bridged sign-in minted");
    Ok(answer(&out))
}
