//! What a relay-sealed refresh token carries, so that a session can continue on the other
//! region's pool (issue 10 point 4, "sessions survive failover").
//!
//! The sealed form is `crr1.` + an AES-GCM seal (the refresh keyring, shared by both regions)
//! of a small JSON object: the pool's internal username and Cognito's own token (what the
//! home pool needs), and, for the other region, the issuing pool id (from the access token's
//! `iss`), the sign-in e-mail / phone (from the ID token: the user key of alias pools), when it
//! was issued (milliseconds, the proxy's clock) and a random token id. The id is what a
//! `RevokeToken` records and replicates; the issue time is compared with the user's sign-out
//! and re-creation marks. Tokens sealed before this format (a `[username, token]` pair) still
//! open, with no pool: they are used on their home pool only.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::seal::Keyring;
use crate::{jwt, WireError};

/// Prefix of refresh tokens sealed by the relay.
pub const SEALED_REFRESH_PREFIX: &str = "crr1.";
/// Associated data of the seal.
const AAD: &[u8] = b"refresh-token";

/// The opened content of a relay-sealed refresh token.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedRefresh {
    /// The issuing pool's internal username.
    #[serde(rename = "u")]
    pub username: String,
    /// Cognito's refresh token (of the issuing pool).
    #[serde(rename = "t")]
    pub token: String,
    /// The issuing pool id (`None`: sealed by an older relay; home pool only).
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// When the relay sealed it, milliseconds since the epoch (0: unknown).
    #[serde(rename = "iat", default)]
    pub issued_ms: u64,
    /// A random id of this token (empty: unknown).
    #[serde(rename = "id", default)]
    pub id: String,
    /// The user's `email` claim at issue (the user key of pools that sign in by e-mail).
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's `phone_number` claim at issue.
    #[serde(rename = "ph", default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The session this token continues: the id of the token the user signed in with, kept
    /// by every token the bridge mints from it (empty: this token started the session).
    #[serde(rename = "s", default, skip_serializing_if = "String::is_empty")]
    pub session: String,
    /// The pool that issued the session's first token (`None`: this token's `pool`).
    #[serde(rename = "sp", default, skip_serializing_if = "Option::is_none")]
    pub session_pool: Option<String>,
    /// When the session's first token was issued, ms (0: this token started it, or an older
    /// seal). Carried by every continuation and never moved: a session lives at most its
    /// client's refresh validity from its first sign-in, however often it changes region.
    #[serde(rename = "ss", default, skip_serializing_if = "is_zero")]
    pub session_started_ms: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl std::fmt::Debug for SealedRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print Cognito's token.
        f.debug_struct("SealedRefresh")
            .field("pool", &self.pool)
            .field("issued_ms", &self.issued_ms)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SealedRefresh {
    /// The user's replication key: the username in username pools, else the first of the
    /// pool's `UsernameAttributes` the token knows (`None` when it knows none).
    pub fn user_key(&self, username_attributes: &[&str]) -> Option<&str> {
        if username_attributes.is_empty() {
            return Some(&self.username);
        }
        username_attributes.iter().find_map(|a| match *a {
            "email" => self.email.as_deref(),
            "phone_number" => self.phone.as_deref(),
            _ => None,
        })
    }

    /// The id of the session (what a revocation names): revoking any token of a session ends
    /// all of it, in both regions, as revoking Cognito's one refresh token would.
    pub fn session_id(&self) -> &str {
        if self.session.is_empty() {
            &self.id
        } else {
            &self.session
        }
    }

    /// The pool that issued the session's first token.
    pub fn session_pool(&self) -> Option<&str> {
        self.session_pool.as_deref().or(self.pool.as_deref())
    }

    /// When the session began (ms): its first token's issue time.
    pub fn session_started(&self) -> u64 {
        if self.session_started_ms != 0 {
            self.session_started_ms
        } else {
            self.issued_ms
        }
    }

    /// Whether the session, begun at `session_started`, is older than `max_age_ms` at `now_ms`
    /// (a token of unknown age is taken as expired).
    pub fn session_expired(&self, now_ms: u64, max_age_ms: u64) -> bool {
        let start = self.session_started();
        start == 0 || now_ms.saturating_sub(start) > max_age_ms
    }

    /// `self` (a token just minted) made a continuation of `from`'s session: the session's
    /// id, pool and start are `from`'s, never this token's.
    pub fn continuing(mut self, from: &SealedRefresh) -> Self {
        self.session = from.session_id().to_owned();
        self.session_pool = from.session_pool().map(str::to_owned);
        self.session_started_ms = from.session_started();
        self
    }

    /// Whether this token was issued by a pool other than `home` (a legacy token, with no
    /// pool, is taken as the home pool's).
    pub fn from_other_pool(&self, home: &str) -> bool {
        self.pool.as_deref().is_some_and(|p| p != home)
    }
}

/// A fresh random token id (128 bits, base64url).
pub fn new_token_id() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// The pool id of a Cognito issuer URL (`https://cognito-idp.<region>.amazonaws.com/<pool>`).
pub fn pool_of_issuer(iss: &str) -> Option<&str> {
    let (base, pool) = iss.rsplit_once('/')?;
    (base.starts_with("https://") && pool.contains('_') && !pool.is_empty()).then_some(pool)
}

/// Seals `claims`: `crr1.v1.<key id>.<...>`.
pub fn seal(keys: &Keyring, claims: &SealedRefresh) -> String {
    let plain = serde_json::to_vec(claims).expect("plain struct serializes");
    format!("{SEALED_REFRESH_PREFIX}{}", keys.seal(&plain, AAD))
}

/// Opens a relay-sealed refresh token. `Ok(None)`: the token is not one the relay sealed.
/// Anything that carries the prefix but does not open (tampered, another key, garbage) is
/// Cognito's `NotAuthorizedException` "Invalid Refresh Token".
pub fn open(keys: &Keyring, token: &str) -> Result<Option<SealedRefresh>, WireError> {
    let Some(sealed) = token.strip_prefix(SEALED_REFRESH_PREFIX) else {
        return Ok(None);
    };
    let invalid = || WireError::not_authorized("Invalid Refresh Token");
    let plain = keys.open(sealed, AAD).map_err(|_| invalid())?;
    if let Ok((username, token)) = serde_json::from_slice::<(String, String)>(&plain) {
        return Ok(Some(SealedRefresh {
            username,
            token,
            ..SealedRefresh::default()
        }));
    }
    serde_json::from_slice(&plain)
        .map(Some)
        .map_err(|_| invalid())
}

/// What to seal for Cognito's `AuthenticationResult` (its `RefreshToken` is `token`): the
/// username from the access token (else `fallback_username`), the pool from its issuer, the
/// e-mail / phone from the ID token, issued `now_ms` under a fresh id.
pub fn claims_for(
    result: &serde_json::Map<String, Value>,
    token: &str,
    fallback_username: Option<&str>,
    now_ms: u64,
) -> Option<SealedRefresh> {
    let access = result
        .get("AccessToken")
        .and_then(Value::as_str)
        .and_then(jwt::claims);
    let id_claims = result
        .get("IdToken")
        .and_then(Value::as_str)
        .and_then(jwt::claims);
    let claim = |c: &Option<Value>, k: &str| {
        c.as_ref()
            .and_then(|c| c.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let username = claim(&access, "username")
        .or_else(|| claim(&access, "cognito:username"))
        .or_else(|| fallback_username.map(str::to_owned))?;
    let pool = claim(&access, "iss")
        .or_else(|| claim(&id_claims, "iss"))
        .and_then(|iss| pool_of_issuer(&iss).map(str::to_owned));
    Some(SealedRefresh {
        username,
        token: token.to_owned(),
        pool,
        issued_ms: now_ms,
        id: new_token_id(),
        email: claim(&id_claims, "email"),
        phone: claim(&id_claims, "phone_number"),
        session: String::new(),
        session_pool: None,
        session_started_ms: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys() -> Keyring {
        Keyring::single("r1", [9; 32])
    }
    fn jwt(claims: Value) -> String {
        format!(
            "h.{}.s",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        )
    }

    #[test]
    fn claims_come_from_the_tokens_cognito_issued() {
        let result = json!({
            "AccessToken": jwt(json!({"username":"uuid-1","iss":"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AAA"})),
            "IdToken": jwt(json!({"email":"a@x.io","cognito:username":"uuid-1"})),
        });
        let c = claims_for(result.as_object().unwrap(), "raw", None, 1_000).unwrap();
        assert_eq!(c.username, "uuid-1");
        assert_eq!(c.pool.as_deref(), Some("eu-west-1_AAA"));
        assert_eq!(c.email.as_deref(), Some("a@x.io"));
        assert_eq!((c.issued_ms, c.id.len()), (1_000, 22));
        assert_ne!(
            c.id,
            claims_for(result.as_object().unwrap(), "raw", None, 1)
                .unwrap()
                .id
        );
        assert_eq!(c.user_key(&[]), Some("uuid-1"));
        assert_eq!(c.user_key(&["email"]), Some("a@x.io"));
        assert_eq!(c.user_key(&["phone_number"]), None);
        assert!(c.from_other_pool("eu-central-1_BBB"));
        assert!(!c.from_other_pool("eu-west-1_AAA"));
    }

    #[test]
    fn round_trips_without_showing_the_token() {
        let c = SealedRefresh {
            username: "bob".into(),
            token: "cognito-secret-token".into(),
            pool: Some("eu-west-1_AAA".into()),
            issued_ms: 5,
            id: new_token_id(),
            email: None,
            phone: None,
            session: String::new(),
            session_pool: None,
            session_started_ms: 0,
        };
        let sealed = seal(&keys(), &c);
        assert!(sealed.starts_with(SEALED_REFRESH_PREFIX) && !sealed.contains("cognito-secret"));
        assert_eq!(open(&keys(), &sealed).unwrap(), Some(c.clone()));
        assert!(!format!("{c:?}").contains("cognito-secret"));
        assert_eq!(open(&keys(), "raw-cognito-token").unwrap(), None);
    }

    #[test]
    fn tampered_or_foreign_tokens_are_invalid() {
        let sealed = seal(&keys(), &SealedRefresh::default());
        let mut t = sealed.clone();
        let last = t.pop().unwrap();
        t.push(if last == 'A' { 'B' } else { 'A' });
        for bad in [
            t.as_str(),
            "crr1.v1.r1.AAAA",
            "crr1.",
            "crr1.v1.r9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            let e = open(&keys(), bad).unwrap_err();
            assert_eq!(
                (e.kind.as_str(), e.message.as_str()),
                ("NotAuthorizedException", "Invalid Refresh Token")
            );
        }
        let other = Keyring::single("r1", [8; 32]);
        assert!(open(&other, &sealed).is_err());
    }

    #[test]
    fn legacy_pairs_open_as_home_pool_tokens() {
        let plain = serde_json::to_vec(&("alice", "tok")).unwrap();
        let legacy = format!("{SEALED_REFRESH_PREFIX}{}", keys().seal(&plain, AAD));
        let c = open(&keys(), &legacy).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.token.as_str()), ("alice", "tok"));
        assert_eq!((c.pool, c.issued_ms, c.id.as_str()), (None, 0, ""));
        assert!(!SealedRefresh::default().from_other_pool("any_pool"));
    }

    #[test]
    fn a_session_never_outlives_its_first_sign_in_however_often_it_is_continued() {
        let day = 86_400_000;
        let first = SealedRefresh {
            id: "t1".into(),
            issued_ms: 10 * day,
            ..SealedRefresh::default()
        };
        // Continued on the other region on day 25, and back again on day 29.
        let second = SealedRefresh {
            id: "t2".into(),
            issued_ms: 25 * day,
            ..SealedRefresh::default()
        }
        .continuing(&first);
        let third = SealedRefresh {
            id: "t3".into(),
            issued_ms: 29 * day,
            ..SealedRefresh::default()
        }
        .continuing(&second);
        assert_eq!(third.session_started(), 10 * day);
        assert!(!third.session_expired(39 * day, 30 * day));
        assert!(
            third.session_expired(41 * day, 30 * day),
            "30 days from the first sign-in, not from the last continuation"
        );
        assert!(
            SealedRefresh::default().session_expired(day, 30 * day),
            "unknown age"
        );
    }

    #[test]
    fn a_continued_token_keeps_the_session_it_continues() {
        let first = SealedRefresh {
            id: "t1".into(),
            pool: Some("a_1".into()),
            ..SealedRefresh::default()
        };
        assert_eq!(
            (first.session_id(), first.session_pool()),
            ("t1", Some("a_1"))
        );
        let second = SealedRefresh {
            id: "t2".into(),
            pool: Some("b_1".into()),
            ..SealedRefresh::default()
        }
        .continuing(&first);
        assert_eq!(
            (second.session_id(), second.session_pool()),
            ("t1", Some("a_1"))
        );
        let third = SealedRefresh {
            id: "t3".into(),
            pool: Some("a_1".into()),
            ..SealedRefresh::default()
        }
        .continuing(&second);
        assert_eq!(
            (third.session_id(), third.session_pool()),
            ("t1", Some("a_1"))
        );
        let reopened = open(&keys(), &seal(&keys(), &third)).unwrap().unwrap();
        assert_eq!(reopened, third);
    }

    #[test]
    fn issuers_name_their_pool() {
        assert_eq!(
            pool_of_issuer("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_x1"),
            Some("eu-west-1_x1")
        );
        assert_eq!(pool_of_issuer("nope"), None);
        assert_eq!(pool_of_issuer("https://example.com/"), None);
    }
}
