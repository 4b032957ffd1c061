//! MFA is never downgraded (issue 19 point 3). Cognito challenges a user with a second factor
//! for it on the pool where the factor lives. Replication cannot carry a TOTP authenticator
//! (no Admin API sets one), so on the other pool the same user may get tokens on the password
//! alone — or, in a pool with MFA required, be offered to enrol a new authenticator (an
//! attacker's). This stage runs after `forward` on every successful sign-in answer:
//!
//! - tokens issued on a password (no MFA challenge answered) for a user whose state record
//!   says MFA is on, or — on a bridging proxy (the standby) — whose MFA state this region
//!   never learned (backfilled users, MFA set outside the relay), are withheld and answered
//!   `NotAuthorizedException` with a clear message (metric `BridgeRefusals`, reason `mfa`);
//! - an `MFA_SETUP` challenge for such a user is refused the same way.
//!
//! SMS and e-mail MFA preferences replicate, so the standby pool itself challenges those users
//! and they pass here untouched. Passwordless first factors (passkeys, e-mail/SMS one-time
//! codes) and answers to MFA challenges are not password-only sign-ins and pass too.

use serde_json::Value;
use tracing::warn;
use wire::WireError;

use crate::app::{Admitted, AppState};

pub(crate) const MFA_REFUSED: &str = "This account uses multi-factor authentication, which cannot be completed while the service runs from its standby region. Try again later.";

/// Challenges whose answer is itself a factor other than the password.
const NOT_PASSWORD: [&str; 8] = [
    "SMS_MFA",
    "SOFTWARE_TOKEN_MFA",
    "EMAIL_OTP",
    "SMS_OTP",
    "MFA_SETUP",
    "SELECT_MFA_TYPE",
    "WEB_AUTHN",
    "DEVICE_PASSWORD_VERIFIER",
];

/// Whether the request is a sign-in step whose success could rest on the password alone.
fn password_step(a: &Admitted) -> bool {
    is_password_step(a.spec.name, &a.body)
}

fn is_password_step(action: &str, body: &Value) -> bool {
    match action {
        "InitiateAuth" => !matches!(
            body.get("AuthFlow").and_then(Value::as_str),
            Some("REFRESH_TOKEN_AUTH" | "REFRESH_TOKEN")
        ),
        "RespondToAuthChallenge" => !body
            .get("ChallengeName")
            .and_then(Value::as_str)
            .is_some_and(|c| NOT_PASSWORD.contains(&c)),
        _ => false,
    }
}

/// Whether Cognito's answer `resp` to `action` gave tokens on the password alone: the user
/// has no second factor at this pool (replicated as the event's `no_mfa`).
pub(crate) fn tokens_on_password(action: &str, req: &Value, resp: &Value) -> bool {
    resp.get("AuthenticationResult").is_some() && is_password_step(action, req)
}

/// The user key of a sign-in answer: the ID token's sign-in alias (alias pools) or its
/// `cognito:username`; for a challenge, the name the client signed in with.
fn user_of(st: &AppState, a: &Admitted, answer: &Value) -> Option<String> {
    if let Some(id) = answer
        .pointer("/AuthenticationResult/IdToken")
        .and_then(Value::as_str)
    {
        let claims = wire::jwt::claims(id)?;
        let key = if st.cfg.alias_pool() {
            st.cfg
                .username_attributes
                .iter()
                .find_map(|attr| claims.get(attr.as_str())?.as_str())
        } else {
            claims.get("cognito:username").and_then(Value::as_str)
        };
        return key.map(str::to_owned);
    }
    a.prepared.username.clone()
}

/// The gate: `Err` withholds a password-only success (or an enrolment offer) from a user
/// with a second factor.
pub(crate) async fn gate(
    st: &AppState,
    a: &Admitted,
    answer: Option<&Value>,
) -> Result<(), WireError> {
    let (Some(store), Some(answer)) = (st.bridge_store.as_ref(), answer) else {
        return Ok(());
    };
    let tokens = answer.get("AuthenticationResult").is_some();
    let setup = answer.get("ChallengeName").and_then(Value::as_str) == Some("MFA_SETUP");
    if !(tokens || setup) || !password_step(a) {
        return Ok(());
    }
    let Some(user) = user_of(st, a, answer) else {
        return Ok(());
    };
    let bridging = st.cfg.bridging();
    let mfa = match store.record(&user).await {
        Ok(r) => r.mfa,
        // The standby cannot tell: it withholds; the primary's own Cognito enforces its users'
        // factors, so an unreadable table there is no reason to refuse.
        Err(e) => {
            warn!(error = %e, "cannot read the user's MFA state");
            if bridging {
                None
            } else {
                return Ok(());
            }
        }
    };
    if mfa == Some(true) || (bridging && mfa.is_none()) {
        return Err(crate::bridge::refused(
            st,
            "mfa",
            WireError::not_authorized(MFA_REFUSED),
        ));
    }
    Ok(())
}
