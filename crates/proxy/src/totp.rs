//! TOTP authenticators replicate (issue 19 point 3, beyond Cognito's own multi-region
//! replication, whose secondary has no TOTP). No Admin API sets a TOTP secret, but the proxy
//! sees it: `AssociateSoftwareToken` answers the secret (`SecretCode`), kept sealed in this
//! region's state record (`totp_pending`) until `VerifySoftwareToken` confirms it; then it is
//! replicated like a password (`totp_secret`, sealed in the event). On the standby the bridge
//! answers a TOTP user's SRP sign-in with Cognito's `SOFTWARE_TOKEN_MFA` challenge, verifies
//! the RFC 6238 code (±1 step, each code once: `wire::totp`) and only then mints.
//!
//! Only enrolments made with an access token (a signed-in user adding an authenticator) are
//! seen; an enrolment during an `MFA_SETUP` challenge (Session, no token) is not, and neither
//! is one made before the relay was deployed: those users are refused on the standby with the
//! MFA message (`mfa.rs`, reason `mfa`).

use serde_json::{json, Value};
use tracing::warn;
use wire::Mutation;

use crate::app::{Admitted, AppState};
use crate::ports::Delivery;

/// After a successful `AssociateSoftwareToken` / `VerifySoftwareToken` (`body`: Cognito's
/// answer): keeps the secret, or replicates it once confirmed.
pub(crate) async fn after(st: &AppState, a: &Admitted, body: &[u8]) -> Option<Delivery> {
    let store = st.bridge_store.as_ref()?;
    let token = a.body.get("AccessToken").and_then(Value::as_str)?;
    let answer: Value = serde_json::from_slice(body).ok()?;
    let who = match crate::app::identity_from_token(st, Some(token)).await {
        Ok(Some(w)) => w,
        _ => {
            warn!(
                action = a.spec.name,
                "cannot tell whose authenticator this is; not replicated"
            );
            return None;
        }
    };
    let rk = replication::state::record_key(&who.user_key);
    let keys = &a.secrets.keys;
    match a.spec.name {
        "AssociateSoftwareToken" => {
            let secret = answer.get("SecretCode").and_then(Value::as_str)?;
            let sealed = replication::state::seal_totp(keys, &rk, secret);
            if let Err(e) = store
                .update(
                    &who.user_key,
                    Box::new(move |r: &mut replication::UserRecord| {
                        r.totp_pending = Some(sealed.clone())
                    }),
                )
                .await
            {
                warn!(error = %e, "cannot keep the TOTP enrolment until it is verified");
            }
            None
        }
        "VerifySoftwareToken" => {
            if answer.get("Status").and_then(Value::as_str) != Some("SUCCESS") {
                return None;
            }
            let record = store.record(&who.user_key).await.ok()?;
            let secret = record
                .totp_pending
                .as_deref()
                .and_then(|s| replication::state::open_totp(keys, &rk, s))?;
            let req = json!({ "SecretCode": secret });
            let d = crate::app::replicate(
                st,
                a.spec,
                Mutation::TotpSecret,
                Some(who.clone()),
                &req,
                &answer,
                keys,
            )
            .await;
            if let Err(e) = store
                .update(
                    &who.user_key,
                    Box::new(|r: &mut replication::UserRecord| r.totp_pending = None),
                )
                .await
            {
                warn!(error = %e, "cannot clear the verified TOTP enrolment");
            }
            d
        }
        _ => None,
    }
}
