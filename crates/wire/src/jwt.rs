//! Reads claims from Cognito-issued JWTs without verifying them. Only used on tokens that the
//! relay received from Cognito itself, or to learn which user a request is about *before*
//! Cognito verifies it (an invalid token is then refused by Cognito and nothing replicates).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde_json::Value;

pub fn claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The pool's internal username of an access token (`username` claim) and its `sub`.
pub fn access_token_user(token: &str) -> Option<(String, String)> {
    let c = claims(token)?;
    let username = c
        .get("username")
        .or_else(|| c.get("cognito:username"))?
        .as_str()?
        .to_owned();
    let sub = c
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Some((username, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_username_and_sub() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"abc","username":"u-1"}"#);
        let token = format!("h.{payload}.sig");
        assert_eq!(
            access_token_user(&token),
            Some(("u-1".into(), "abc".into()))
        );
        assert_eq!(access_token_user("garbage"), None);
        assert_eq!(access_token_user("a.!!!.c"), None);
    }
}
