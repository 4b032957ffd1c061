//! Half-finished sign-ups finish in either region (issue 10 point 5).
//!
//! A user who signed up in one region and was replicated before confirming is a *placeholder*
//! here (`replication::pending`): created by the replicator without a message, disabled, with
//! the password; the state record holds the sealed sign-up (`pending_sign_up`). Cognito alone
//! would answer sign-in "User is disabled.", resend "User is already confirmed." and sign-up
//! "exists". This stage runs after `forward` on exactly those errors and, when the record says
//! the user is such a placeholder, answers as Cognito does for an unconfirmed user:
//!
//! - `InitiateAuth USER_PASSWORD_AUTH`: `UserNotConfirmedException` when the password is the
//!   sign-up's, "Incorrect username or password." otherwise (the failure is counted);
//!   `USER_SRP_AUTH` on a proxy of the app pool: `UserNotConfirmedException` (the bridge, on the
//!   standby, answers it after verifying the proof instead).
//! - `ResendConfirmationCode`: the placeholder is deleted and a real `SignUp` with the replicated
//!   password and attributes is sent in its place: this pool sends the code (to the same
//!   address), answered in Resend's shape. (Not for a passwordless sign-up: the app must sign
//!   up again.)
//! - `SignUp` again: only with the first sign-up's password (a sign-up belongs to whoever
//!   started it). The placeholder is deleted and the sign-up sent again with the *first*
//!   sign-up's attributes; a different password gets Cognito's `UsernameExistsException` and
//!   counts as a failed sign-in of the user.
//! - `ConfirmSignUp` with the other region's code: `CodeMismatchException` (the app offers to
//!   resend).
//!
//! The new sign-up is an ordinary forwarded `SignUp`: it advances this region's marks (which
//! clears the record) and replicates to the peer, whose replicator replaces its unconfirmed user
//! by a placeholder; the confirmation then replicates as usual. Before deleting, the live user is
//! read (AdminGetUser): only a disabled, not-UNCONFIRMED user is a placeholder. A confirmed,
//! enabled user is never touched. Metric `HalfSignUpsFinished` (by `Reason`).

use relay_aws::telemetry::names;
use serde_json::{json, Value};
use tracing::{info, warn};
use wire::WireError;

use crate::app::{forward, Admitted, AppState, Upstream};
use replication::pending::PendingSignUp;

const NOT_CONFIRMED: &str = "User is not confirmed.";
const WRONG_PASSWORD: &str = "Incorrect username or password.";
const CODE_MISMATCH: &str = "Invalid verification code provided, please try again.";

/// Cognito's answer to a sign-in of an unconfirmed user.
pub(crate) fn not_confirmed() -> WireError {
    WireError::new(400, wire::ErrorKind::UserNotConfirmed, NOT_CONFIRMED)
}

/// What `finish` did with Cognito's answer.
pub(crate) struct Finished {
    pub up: Upstream,
    /// The answer is a `SignUp`'s made for a `ResendConfirmationCode`: reshape it
    /// (`as_resend_answer`) after replication.
    pub resent: bool,
}

fn message_of(up: &Upstream) -> String {
    serde_json::from_slice::<Value>(&up.body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

/// The stage after `forward`: passes every answer but the placeholder-shaped errors above.
pub(crate) async fn finish(
    st: &AppState,
    a: &mut Admitted,
    up: Upstream,
) -> Result<Finished, WireError> {
    let pass = |up| Ok(Finished { up, resent: false });
    if up.status.is_success() {
        return pass(up);
    }
    // Finishing the peer's sign-ups here is part of the bridge: closed while the peer serves
    // (`serving.rs`), so a resend here never replaces the origin's real unconfirmed user.
    if st.cfg.bridging() && !st.bridge_open().await {
        return pass(up);
    }
    let kind = up.error_type().unwrap_or_default().to_owned();
    let message = message_of(&up);
    match (a.spec.name, kind.as_str()) {
        ("InitiateAuth", "NotAuthorizedException") if message == "User is disabled." => {
            match sign_in(st, a).await {
                Some(e) => Err(e),
                None => pass(up),
            }
        }
        ("SignUp", "UsernameExistsException") => sign_up_again(st, a, up).await,
        ("ResendConfirmationCode", "InvalidParameterException")
            if message.contains("already confirmed") =>
        {
            resend(st, a, up).await
        }
        ("ConfirmSignUp", "NotAuthorizedException") if message.contains("CONFIRMED") => {
            match pending(st, a, username(a)).await {
                Some(_) => Err(WireError::new(
                    400,
                    wire::ErrorKind::CodeMismatch,
                    CODE_MISMATCH,
                )),
                None => pass(up),
            }
        }
        _ => pass(up),
    }
}

/// Resend's answer from the SignUp sent in its place: only `CodeDeliveryDetails`.
pub(crate) fn as_resend_answer(body: &[u8]) -> Vec<u8> {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    let out = match v.get("CodeDeliveryDetails") {
        Some(d) => json!({ "CodeDeliveryDetails": d }),
        None => json!({}),
    };
    serde_json::to_vec(&out).unwrap_or_default()
}

fn username(a: &Admitted) -> Option<String> {
    a.body
        .get("Username")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The user's replicated, unconfirmed sign-up, when the state record holds one.
async fn pending(st: &AppState, a: &Admitted, user: Option<String>) -> Option<PendingSignUp> {
    let user = user.filter(|u| !u.is_empty())?;
    let store = st.bridge_store.as_ref()?;
    let record = match store.record(&user).await {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "cannot read the state table for a half-finished sign-up");
            return None;
        }
    };
    let sealed = record.pending_sign_up?;
    let rk = replication::state::record_key(&user);
    let opened = PendingSignUp::open(&a.secrets.keys, &rk, &sealed);
    if opened.is_none() {
        warn!("a pending sign-up in the state table does not open");
    }
    opened
}

/// A sign-in of a placeholder: Cognito's answer for an unconfirmed user (`None`: not one).
async fn sign_in(st: &AppState, a: &Admitted) -> Option<WireError> {
    let params = a.body.get("AuthParameters")?;
    let user = params.get("USERNAME")?.as_str()?.to_owned();
    let flow = a.body.get("AuthFlow").and_then(Value::as_str)?;
    if !matches!(flow, "USER_PASSWORD_AUTH" | "USER_SRP_AUTH") {
        return None;
    }
    let p = pending(st, a, Some(user)).await?;
    if flow == "USER_SRP_AUTH" {
        return Some(not_confirmed());
    }
    let typed = params.get("PASSWORD").and_then(Value::as_str).unwrap_or("");
    // The failure was counted by `forward` (Cognito answered NotAuthorizedException).
    Some(if p.password_is(typed) {
        not_confirmed()
    } else {
        WireError::not_authorized(WRONG_PASSWORD)
    })
}

/// Deletes the user's placeholder when the live user is one. `Ok(false)`: not a placeholder
/// (confirmed meanwhile, or something else): leave it alone.
async fn delete_placeholder(st: &AppState, user: &str) -> Result<bool, WireError> {
    let Some(pool) = st.placeholders.as_ref() else {
        return Ok(false);
    };
    let unavailable = |e: crate::Error| {
        warn!(error = %e, "cannot finish a half-finished sign-up now");
        WireError::unavailable("The relay cannot complete the sign-up right now; retry")
    };
    let Some(u) = pool.get(user).await.map_err(unavailable)? else {
        return Ok(false);
    };
    if u.enabled || u.status == replication::UserStatus::Unconfirmed {
        return Ok(false);
    }
    pool.delete(&u.username).await.map_err(unavailable)?;
    Ok(true)
}

fn emf(st: &AppState, reason: &str) {
    info!(
        reason,
        "half-finished sign-up replaced by a sign-up of this pool"
    );
    if st.emf {
        use relay_aws::telemetry::{Emf, Unit};
        Emf::new(&[&["Reason"], &[]])
            .with("Reason", reason)
            .metric(names::HALF_SIGN_UPS_FINISHED, Unit::Count, 1)
            .print();
    }
}

/// `SignUp` of a placeholder's user. A sign-up belongs to whoever started it: it is sent again
/// (once the placeholder is gone) only when it proves the first sign-up's password, and then
/// with the *first* sign-up's attributes, never the new request's. Anyone else gets Cognito's
/// `UsernameExistsException`, and the try counts as a failed sign-in of that user (guessing
/// the password this way is bound by the same lockout as signing in).
async fn sign_up_again(
    st: &AppState,
    a: &mut Admitted,
    up: Upstream,
) -> Result<Finished, WireError> {
    let pass = |up| Ok(Finished { up, resent: false });
    let Some(user) = username(a) else {
        return pass(up);
    };
    let Some(p) = pending(st, a, Some(user.clone())).await else {
        return pass(up);
    };
    let key = crate::lockout::canonical_user_key(&user);
    let max = st.cfg.failed_signins_per_username;
    if max > 0 && st.limiter.locked(&key, max).await {
        return pass(up);
    }
    // It must name the first sign-up's delivery address(es) (whoever confirms proves control
    // of the address the first code went to)...
    let alias = &st.cfg.username_attributes;
    let theirs = p.addresses(&user, alias);
    let attrs: Vec<replication::Attr> = a
        .body
        .get("UserAttributes")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    if theirs.is_empty() || theirs != replication::pending::addresses(&attrs, &user, alias) {
        info!("sign-up again refused: it does not name the first sign-up's address");
        return pass(up);
    }
    // ... and prove the first sign-up's password.
    let typed = a.body.get("Password").and_then(Value::as_str).unwrap_or("");
    if p.password.is_none() || !p.password_is(typed) {
        info!("sign-up again refused: it does not prove the first sign-up's password");
        if max > 0 {
            st.limiter.fail(&key, max).await;
        }
        return pass(up);
    }
    // The app's request as it sent it (public ClientId), with the first sign-up's attributes.
    let mut body: Value = serde_json::from_slice(&a.bytes).unwrap_or_default();
    let Some(obj) = body.as_object_mut() else {
        return pass(up);
    };
    obj.insert(
        "UserAttributes".into(),
        serde_json::to_value(&p.attributes).unwrap_or_default(),
    );
    if !delete_placeholder(st, &user).await? {
        return pass(up);
    }
    a.bytes = serde_json::to_vec(&body).unwrap_or_default().into();
    a.reprepare(a.secrets.clone())?;
    let again = forward(st, a).await?;
    if again.status.is_success() {
        emf(st, "sign_up");
    }
    Ok(Finished {
        up: again,
        resent: false,
    })
}

/// `ResendConfirmationCode` of a placeholder's user: the placeholder is replaced by a `SignUp`
/// with the replicated password and attributes (this pool sends the code).
async fn resend(st: &AppState, a: &mut Admitted, up: Upstream) -> Result<Finished, WireError> {
    let pass = |up| Ok(Finished { up, resent: false });
    let Some(user) = username(a) else {
        return pass(up);
    };
    // A passwordless sign-up cannot be sent again without the app (its SignUp would fail after
    // the placeholder is gone): Cognito's answer stands.
    let Some(p) = pending(st, a, Some(user.clone()))
        .await
        .filter(|p| p.password.is_some())
    else {
        return pass(up);
    };
    let sign_up = wire::lookup(Some(&format!("{}SignUp", wire::TARGET_PREFIX)))?;
    // The app's request as it sent it (public ClientId), turned into the SignUp it stands for.
    let mut body: Value = serde_json::from_slice(&a.bytes).unwrap_or_default();
    let Some(obj) = body.as_object_mut() else {
        return pass(up);
    };
    if let Some(pw) = &p.password {
        obj.insert("Password".into(), Value::String(pw.clone()));
    }
    obj.insert(
        "UserAttributes".into(),
        serde_json::to_value(&p.attributes).unwrap_or_default(),
    );
    if !delete_placeholder(st, &user).await? {
        return pass(up);
    }
    a.spec = sign_up;
    a.bytes = serde_json::to_vec(&body).unwrap_or_default().into();
    a.reprepare(a.secrets.clone())?;
    let again = forward(st, a).await?;
    if again.status.is_success() {
        emf(st, "resend");
    } else {
        warn!(error_type = ?again.error_type(), "the sign-up replacing a placeholder failed");
    }
    Ok(Finished {
        up: again,
        resent: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resend_answers_only_the_delivery_details() {
        let body = br#"{"UserConfirmed":false,"UserSub":"s","CodeDeliveryDetails":{"Destination":"a***@x.io","DeliveryMedium":"EMAIL","AttributeName":"email"}}"#;
        let out: Value = serde_json::from_slice(&as_resend_answer(body)).unwrap();
        assert_eq!(
            out,
            json!({"CodeDeliveryDetails":{"Destination":"a***@x.io","DeliveryMedium":"EMAIL","AttributeName":"email"}})
        );
    }
}
