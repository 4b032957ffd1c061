//! Shared helpers of the cognito-relay benchmark binaries (see `bench/run-all.sh`).
//! Benchmarks live here, never in a test suite.
#![forbid(unsafe_code)]

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};

/// The `q` quantile (0..=1) of an ascending slice, nearest-rank; 0 when empty.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A Cognito-looking access token whose payload carries `username` and `sub`, as the proxy
/// reads them (not signed: the proxy never verifies tokens it received from Cognito).
pub fn fake_access_token(username: &str, sub: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"kid":"bench","alg":"RS256"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::json!({ "username": username, "sub": sub, "token_use": "access", "client_id": "reg" }).to_string());
    let signature = URL_SAFE_NO_PAD.encode([7u8; 64]);
    format!("{header}.{payload}.{signature}")
}

/// An InitiateAuth USER_PASSWORD_AUTH answer shaped like Cognito's.
pub fn initiate_auth_answer() -> String {
    serde_json::json!({
        "ChallengeParameters": {},
        "AuthenticationResult": {
            "AccessToken": fake_access_token("u", "s"),
            "ExpiresIn": 3600,
            "TokenType": "Bearer",
            "RefreshToken": format!("r{}", "x".repeat(400)),
            "IdToken": format!("i{}", "y".repeat(600)),
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&[], 0.5), 0);
    }

    #[test]
    fn the_stub_token_names_its_user() {
        let answer: serde_json::Value = serde_json::from_str(&initiate_auth_answer()).unwrap();
        let token = answer["AuthenticationResult"]["AccessToken"]
            .as_str()
            .unwrap();
        assert_eq!(
            wire::jwt::access_token_user(token),
            Some(("u".into(), "s".into()))
        );
    }
}
