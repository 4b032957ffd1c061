//! The standby sign-in bridge's two small formats, both under the bridge keyring (Secrets
//! Manager `RELAY_BRIDGE_KEY_SECRET_ID`, rotatable: the key id travels with every value and any
//! key still in the ring verifies):
//!
//! - the **assertion** a bridging proxy answers the home pool's CUSTOM_CHALLENGE with, checked
//!   by the Verify Auth Challenge trigger: `cra1.<key id>.<base64url(JSON claims)>.<base64url(
//!   HMAC-SHA256)>`, claims bound to the pool id, the pool's user name (the trigger event's
//!   `userName`), the challenge's nonce and an expiry at most 60 s ahead;
//! - the **SRP secret block** the proxy hands out in its PASSWORD_VERIFIER challenge: its own
//!   sealed (AES-GCM), expiring state of one handshake (session key, user, expiry, a one-time
//!   id), so no server-side state is needed between the two calls.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde::{Deserialize, Serialize};

use crate::seal::Keyring;

pub const ASSERTION_PREFIX: &str = "cra1";
/// The longest an assertion may live.
pub const MAX_ASSERTION_TTL_SECS: i64 = 60;
const ASSERTION_PURPOSE: &str = "bridge-assertion";
/// Prefix of a secret block made by the bridge (real Cognito's are plain base64).
pub const SECRET_BLOCK_PREFIX: &str = "crb1.";
const BLOCK_PURPOSE: &str = "bridge-srp-block";
/// How long a PASSWORD_VERIFIER challenge stays answerable (Cognito's sessions: 3 min).
pub const SECRET_BLOCK_TTL_SECS: i64 = 180;

/// What an assertion says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assertion {
    /// The home pool id the tokens are minted in.
    pub pool: String,
    /// The pool's user name (`userName` of the trigger event).
    pub user: String,
    /// The nonce of the CUSTOM_CHALLENGE being answered.
    pub nonce: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Why it was minted: "srp" or "refresh" (for logs and metrics only).
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error("assertion is malformed")]
    Malformed,
    #[error("assertion signature does not verify")]
    BadSignature,
    #[error("assertion is for another pool")]
    WrongPool,
    #[error("assertion is for another user")]
    WrongUser,
    #[error("assertion is for another challenge")]
    WrongNonce,
    #[error("assertion has expired")]
    Expired,
    #[error("assertion lives longer than allowed")]
    TooLong,
}

impl AssertionError {
    /// A short reason for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadSignature => "bad_signature",
            Self::WrongPool => "wrong_pool",
            Self::WrongUser => "wrong_user",
            Self::WrongNonce => "wrong_nonce",
            Self::Expired => "expired",
            Self::TooLong => "too_long",
        }
    }
}

/// Signs an assertion valid for `ttl_secs` (capped at `MAX_ASSERTION_TTL_SECS`).
pub fn mint_assertion(
    keys: &Keyring,
    pool: &str,
    user: &str,
    nonce: &str,
    now: i64,
    ttl_secs: i64,
    why: &str,
) -> String {
    let claims = Assertion {
        pool: pool.to_owned(),
        user: user.to_owned(),
        nonce: nonce.to_owned(),
        exp: now + ttl_secs.clamp(1, MAX_ASSERTION_TTL_SECS),
        why: why.to_owned(),
    };
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("plain struct"));
    let kid = keys.current_id();
    let signed = format!("{ASSERTION_PREFIX}.{kid}.{body}");
    let (_, tag) = keys.sign(ASSERTION_PURPOSE, signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Checks an assertion against the challenge it answers. The signature is checked first, so
/// nothing an unsigned value says is believed.
pub fn verify_assertion(
    keys: &Keyring,
    token: &str,
    pool: &str,
    user: &str,
    nonce: &str,
    now: i64,
) -> Result<Assertion, AssertionError> {
    let parts: Vec<&str> = token.split('.').collect();
    let [ASSERTION_PREFIX, kid, body, tag] = parts.as_slice() else {
        return Err(AssertionError::Malformed);
    };
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| AssertionError::Malformed)?;
    let signed = format!("{ASSERTION_PREFIX}.{kid}.{body}");
    if !keys.verify(kid, ASSERTION_PURPOSE, signed.as_bytes(), &tag) {
        return Err(AssertionError::BadSignature);
    }
    let claims: Assertion = URL_SAFE_NO_PAD
        .decode(body)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(AssertionError::Malformed)?;
    if claims.pool != pool {
        return Err(AssertionError::WrongPool);
    }
    if claims.user != user {
        return Err(AssertionError::WrongUser);
    }
    if nonce.is_empty() || claims.nonce != nonce {
        return Err(AssertionError::WrongNonce);
    }
    if claims.exp < now {
        return Err(AssertionError::Expired);
    }
    if claims.exp > now + MAX_ASSERTION_TTL_SECS {
        return Err(AssertionError::TooLong);
    }
    Ok(claims)
}

/// The state of one bridged SRP handshake, sealed into SECRET_BLOCK.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrpBlock {
    /// One-time id (the bridge refuses a second answer with the same id).
    pub id: String,
    /// The session key (hex) from `srp::server_start`.
    pub key: String,
    /// USER_ID_FOR_SRP (the relay's user key).
    pub user_id: String,
    /// The app pool's name the proof binds.
    pub pool_name: String,
    /// The home pool user name to mint for, when known (else the user key is used).
    pub username: String,
    /// Material unknown: the handshake is answered with decoy values and always fails.
    pub decoy: bool,
    pub exp: i64,
}

impl std::fmt::Debug for SrpBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrpBlock")
            .field("user_id", &self.user_id)
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}

/// The SECRET_BLOCK plaintext's length is a multiple of this.
pub const BLOCK_PAD: usize = 512;

/// Seals a handshake's state as SECRET_BLOCK (standard base64, as clients decode it).
///
/// The plaintext is padded with trailing spaces (valid JSON whitespace) to a multiple of
/// [`BLOCK_PAD`] bytes, so the block's length does not tell a real user (whose block names
/// a long internal username) from an unknown one.
pub fn seal_block(keys: &Keyring, block: &SrpBlock) -> String {
    let mut plain = serde_json::to_vec(block).expect("plain struct");
    plain.resize(plain.len().div_ceil(BLOCK_PAD) * BLOCK_PAD, b' ');
    let sealed = keys
        .derive(BLOCK_PURPOSE)
        .seal(&plain, BLOCK_PURPOSE.as_bytes());
    // Clients base64-decode SECRET_BLOCK to sign it: keep it valid standard base64.
    base64::engine::general_purpose::STANDARD.encode(format!("{SECRET_BLOCK_PREFIX}{sealed}"))
}

/// Opens a SECRET_BLOCK made by `seal_block`. `None` if it is not the bridge's (a real
/// Cognito block), tampered, under a retired key or expired.
pub fn open_block(keys: &Keyring, secret_block: &str, now: i64) -> Option<SrpBlock> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(secret_block)
        .ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let sealed = text.strip_prefix(SECRET_BLOCK_PREFIX)?;
    let plain = keys
        .derive(BLOCK_PURPOSE)
        .open(sealed, BLOCK_PURPOSE.as_bytes())
        .ok()?;
    let block: SrpBlock = serde_json::from_slice(&plain).ok()?;
    (block.exp >= now).then_some(block)
}

/// True when `secret_block` looks like one of the bridge's (without opening it).
pub fn is_bridge_block(secret_block: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(secret_block)
        .map(|raw| raw.starts_with(SECRET_BLOCK_PREFIX.as_bytes()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::single("b1", [7; 32])
    }

    #[test]
    fn blocks_of_short_and_long_user_names_have_one_length() {
        let k = ring();
        let block = |user: &str, username: &str| SrpBlock {
            id: "00000000-0000-0000-0000-000000000000".into(),
            key: "ab".repeat(16),
            user_id: user.into(),
            pool_name: "AbCdEf123".into(),
            username: username.into(),
            decoy: false,
            exp: 1_900_000_000,
        };
        let short = seal_block(&k, &block("a@x.io", "a@x.io"));
        let long = seal_block(&k, &block("a@x.io", "4f1c2a7e-91b2-4c3d-8e5f-0a1b2c3d4e5f"));
        assert_eq!(short.len(), long.len());
        assert_eq!(open_block(&k, &long, 0).unwrap().username.len(), 36);
    }

    #[test]
    fn assertion_round_trips_bound_to_pool_user_nonce() {
        let k = ring();
        let a = mint_assertion(&k, "eu-west-1_B", "u1", "n1", 1000, 30, "srp");
        let ok = verify_assertion(&k, &a, "eu-west-1_B", "u1", "n1", 1010).unwrap();
        assert_eq!(ok.why, "srp");
        use AssertionError as E;
        assert_eq!(
            verify_assertion(&k, &a, "eu-west-1_A", "u1", "n1", 1010),
            Err(E::WrongPool)
        );
        assert_eq!(
            verify_assertion(&k, &a, "eu-west-1_B", "u2", "n1", 1010),
            Err(E::WrongUser)
        );
        assert_eq!(
            verify_assertion(&k, &a, "eu-west-1_B", "u1", "n2", 1010),
            Err(E::WrongNonce)
        );
        assert_eq!(
            verify_assertion(&k, &a, "eu-west-1_B", "u1", "n1", 1031),
            Err(E::Expired)
        );
    }

    #[test]
    fn forged_or_other_key_assertions_fail() {
        let k = ring();
        let other = Keyring::single("b1", [8; 32]);
        let a = mint_assertion(&other, "p", "u", "n", 1000, 30, "srp");
        assert_eq!(
            verify_assertion(&k, &a, "p", "u", "n", 1000),
            Err(AssertionError::BadSignature)
        );
        // Changing the claims breaks the signature.
        let good = mint_assertion(&k, "p", "u", "n", 1000, 30, "srp");
        let parts: Vec<&str> = good.split('.').collect();
        let forged_body = URL_SAFE_NO_PAD
            .encode(br#"{"pool":"p","user":"admin","nonce":"n","exp":1030,"why":"srp"}"#);
        let forged = format!("{}.{}.{}.{}", parts[0], parts[1], forged_body, parts[3]);
        assert_eq!(
            verify_assertion(&k, &forged, "p", "admin", "n", 1000),
            Err(AssertionError::BadSignature)
        );
        assert_eq!(
            verify_assertion(&k, "garbage", "p", "u", "n", 1000),
            Err(AssertionError::Malformed)
        );
        assert_eq!(
            verify_assertion(&k, "", "p", "u", "", 1000),
            Err(AssertionError::Malformed)
        );
        // A ttl beyond 60 s is capped when minting and refused when verifying a forged one.
        let long = mint_assertion(&k, "p", "u", "n", 1000, 3600, "srp");
        assert!(
            verify_assertion(&k, &long, "p", "u", "n", 1000)
                .unwrap()
                .exp
                <= 1060
        );
    }

    #[test]
    fn rotation_keeps_assertions_of_the_previous_key_valid() {
        let old = Keyring::single("b1", [7; 32]);
        let a = mint_assertion(&old, "p", "u", "n", 1000, 30, "refresh");
        use base64::engine::general_purpose::STANDARD;
        let both = Keyring::from_json(&format!(
            r#"{{"current":"b2","keys":{{"b1":"{}","b2":"{}"}}}}"#,
            STANDARD.encode([7u8; 32]),
            STANDARD.encode([9u8; 32])
        ))
        .unwrap();
        assert!(verify_assertion(&both, &a, "p", "u", "n", 1000).is_ok());
        assert!(mint_assertion(&both, "p", "u", "n", 1000, 30, "srp").starts_with("cra1.b2."));
    }

    #[test]
    fn secret_block_round_trips_and_expires() {
        let k = ring();
        let b = SrpBlock {
            id: "x".into(),
            key: "deadbeef".into(),
            user_id: "alice".into(),
            pool_name: "A".into(),
            username: "alice".into(),
            decoy: false,
            exp: 2000,
        };
        let s = seal_block(&k, &b);
        assert!(is_bridge_block(&s));
        assert!(!is_bridge_block("AAAA"));
        assert_eq!(open_block(&k, &s, 1999).unwrap(), b);
        assert!(open_block(&k, &s, 2001).is_none());
        assert!(open_block(&Keyring::single("b1", [1; 32]), &s, 1999).is_none());
        assert!(!format!("{b:?}").contains("deadbeef"));
    }
}
