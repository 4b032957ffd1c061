//! The replication event, schema v2, and its authenticated envelope. Documented in
//! docs/replication-events.md.
//!
//! On the queue an event travels as an [`Envelope`]: a few routing fields in the clear (no
//! personal data: the user appears only as the hashed FIFO group) and the whole event sealed
//! with AES-256-GCM under a key derived from the replication keyring, with the routing fields
//! as associated data. A replicator opens the envelope before it reads anything else, so an
//! event that anyone but a holder of the replication key wrote, or whose routing was changed,
//! is refused as `unauthenticated`.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use wire::seal::{Keyring, SealError};

pub const EVENT_VERSION: u32 = 2;

/// Purpose string of the subkey that seals whole events (distinct from the password seal and
/// the refresh-token seal, so one can never be replayed as the other).
const EVENT_PURPOSE: &str = "cognito-relay/replication-event/v2";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attr {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Value")]
    pub value: String,
}

/// What changed, in replay terms. Passwords are sealed again on their own (`v1.<key id>.<...>`,
/// the event id as context) inside the sealed event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// SignUp: create the user, set the (sealed) password if the sign-up had one, keep them
    /// unable to sign in. `confirm_verifies` is the attribute the origin sent the confirmation
    /// code to (Cognito's `CodeDeliveryDetails.AttributeName`): the one the origin marks
    /// verified when the sign-up is confirmed.
    CreateUser {
        attributes: Vec<Attr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sealed_password: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirm_verifies: Option<String>,
    },
    /// ConfirmSignUp: let the user sign in.
    Confirm,
    /// ConfirmForgotPassword, ChangePassword, NEW_PASSWORD_REQUIRED.
    SetPassword {
        sealed_password: String,
    },
    /// UpdateUserAttributes. `attributes` includes the `*_verified` values the origin set as a
    /// consequence (an e-mail or phone whose verification code the origin sent is unverified).
    UpdateAttributes {
        attributes: Vec<Attr>,
    },
    DeleteAttributes {
        names: Vec<String>,
    },
    VerifyAttribute {
        name: String,
    },
    /// SetUserMFAPreference as sent (SMS/email/TOTP settings objects).
    MfaPreference {
        settings: Value,
    },
    /// SetUserSettings `MFAOptions` as sent.
    Settings {
        mfa_options: Value,
    },
    Delete,
    GlobalSignOut,
    /// RevokeToken of a relay-sealed refresh token: its id and the pool that issued it. The
    /// target records it (`revoked:<id>` mark) so the bridge never continues that session.
    RevokeToken {
        token_id: String,
        pool: String,
    },
    /// A TOTP authenticator the user confirmed at the origin (its base32 secret, sealed like a
    /// password). No Admin API sets one: the target keeps it sealed in its state table and its
    /// bridge answers `SOFTWARE_TOKEN_MFA` with it.
    TotpSecret {
        sealed_secret: String,
    },
}

impl Change {
    pub fn name(&self) -> &'static str {
        match self {
            Change::CreateUser { .. } => "create_user",
            Change::Confirm => "confirm",
            Change::SetPassword { .. } => "set_password",
            Change::UpdateAttributes { .. } => "update_attributes",
            Change::DeleteAttributes { .. } => "delete_attributes",
            Change::VerifyAttribute { .. } => "verify_attribute",
            Change::MfaPreference { .. } => "mfa_preference",
            Change::Settings { .. } => "settings",
            Change::Delete => "delete",
            Change::GlobalSignOut => "global_sign_out",
            Change::RevokeToken { .. } => "revoke_token",
            Change::TotpSecret { .. } => "totp_secret",
        }
    }
}

/// The order of a user's events: the origin's success time, then the event id (a stable,
/// arbitrary tie-break for two events of the same millisecond). See docs/replication-events.md
/// for the clock-skew bound this accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderKey(pub u64, pub String);

impl Ord for OrderKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0, &self.1).cmp(&(other.0, &other.1))
    }
}
impl PartialOrd for OrderKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub v: u32,
    /// Unique id; also the SQS FIFO deduplication id.
    pub id: String,
    pub origin_region: String,
    pub origin_pool: String,
    /// The pool this event is for (the origin's peer). A replicator refuses any other.
    pub target_pool: String,
    /// The Cognito action the app called at the origin.
    pub action: String,
    /// The user's stable key across pools: the username in username pools, the sign-in
    /// attribute's value (email / phone) in pools that sign in by alias. For a change of that
    /// attribute, this is the value *before* the change; the new value is in `change`.
    pub user_key: String,
    /// The origin pool's internal username (differs per pool in alias pools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_username: Option<String>,
    /// The origin pool's `sub` (can never be set on the target; may be copied to a custom attribute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_sub: Option<String>,
    /// When the origin pool answered success, ms since the Unix epoch. With `id`, the order key.
    pub origin_time_ms: u64,
    /// The origin issued this user tokens on the password alone with this change (a sign-in
    /// step answered with tokens, no MFA challenge): the user had no second factor there. The
    /// target records a known "no MFA" where its MFA state was unknown (backfilled users).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_mfa: bool,
    pub change: Change,
}

/// Why an event body was refused. Never carries the body's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event is not JSON ({0})")]
    NotJson(&'static str),
    #[error("unsupported event version {0}")]
    Version(u64),
    #[error("event has no version")]
    NoVersion,
    #[error("event does not match schema v2 ({0})")]
    Schema(String),
    /// Sealed under a key id this keyring does not list (yet: it may have rotated in).
    #[error("sealed with unknown key id {0}")]
    UnknownKey(String),
    /// The seal does not verify, or the routing fields do not match the sealed event.
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
}

/// The routing fields of an envelope: readable without the key (and so not to be trusted
/// until [`Envelope::open`] verified them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub v: u32,
    pub id: String,
    pub origin_region: String,
    pub origin_pool: String,
    pub target_pool: String,
    pub action: String,
    /// The FIFO group: the hashed user key.
    pub group: String,
    pub origin_time_ms: u64,
}

impl Header {
    /// Reads the routing fields of a queued body without verifying it (for ordering, logs and
    /// forwarding; never for applying).
    pub fn peek(body: &str) -> Result<Self, EventError> {
        let probe: Value =
            serde_json::from_str(body).map_err(|e| EventError::NotJson(classify(&e)))?;
        match probe.get("v").and_then(Value::as_u64) {
            Some(v) if v == u64::from(EVENT_VERSION) => {}
            Some(v) => return Err(EventError::Version(v)),
            None => return Err(EventError::NoVersion),
        }
        serde_json::from_value(probe)
            .map_err(|e| EventError::Schema(format!("line {} col {}", e.line(), e.column())))
    }

    pub fn order(&self) -> OrderKey {
        OrderKey(self.origin_time_ms, self.id.clone())
    }

    /// The associated data: every routing field, in a canonical, unambiguous form.
    fn aad(&self) -> Vec<u8> {
        let fields = [
            EVENT_PURPOSE,
            &self.id,
            &self.origin_region,
            &self.origin_pool,
            &self.target_pool,
            &self.action,
            &self.group,
            &self.origin_time_ms.to_string(),
        ];
        serde_json::to_vec(&fields).unwrap_or_default()
    }
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "io",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "data",
        serde_json::error::Category::Eof => "eof",
    }
}

/// An event as it travels: the header plus the sealed event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(flatten)]
    pub header: Header,
    pub sealed: String,
}

impl Envelope {
    /// Verifies and opens a queued body. Nothing of the event is read before the seal verified.
    pub fn open(body: &str, keys: &Keyring) -> Result<Event, EventError> {
        let probe: Value =
            serde_json::from_str(body).map_err(|e| EventError::NotJson(classify(&e)))?;
        // Whatever its version claims, a body without a seal was written by someone without
        // the key (an unsealed v1 event included).
        let sealed = probe
            .get("sealed")
            .and_then(Value::as_str)
            .ok_or(EventError::Unauthenticated("no seal"))?
            .to_owned();
        let env = Envelope {
            header: Header::peek(body)?,
            sealed,
        };
        let plain = keys
            .derive(EVENT_PURPOSE)
            .open(&env.sealed, &env.header.aad())
            .map_err(|e| match e {
                SealError::UnknownKey(kid) => EventError::UnknownKey(kid),
                SealError::Malformed => EventError::Unauthenticated("malformed seal"),
                _ => EventError::Unauthenticated("seal does not verify"),
            })?;
        let event: Event = serde_json::from_slice(&plain).map_err(|e| {
            EventError::Schema(format!("sealed event line {} col {}", e.line(), e.column()))
        })?;
        if event.header() != env.header {
            return Err(EventError::Unauthenticated(
                "routing fields do not match the sealed event",
            ));
        }
        Ok(event)
    }
}

impl Event {
    /// The FIFO MessageGroupId: one user's events apply in order, different users in parallel.
    /// Hashed so that the group id does not expose the e-mail address.
    pub fn group_id(&self) -> String {
        group_id_for(&self.user_key)
    }

    pub fn order(&self) -> OrderKey {
        OrderKey(self.origin_time_ms, self.id.clone())
    }

    pub fn header(&self) -> Header {
        Header {
            v: self.v,
            id: self.id.clone(),
            origin_region: self.origin_region.clone(),
            origin_pool: self.origin_pool.clone(),
            target_pool: self.target_pool.clone(),
            action: self.action.clone(),
            group: self.group_id(),
            origin_time_ms: self.origin_time_ms,
        }
    }

    /// The queue body: the envelope with the whole event sealed under the current key.
    pub fn seal(&self, keys: &Keyring) -> String {
        let header = self.header();
        let plain = serde_json::to_vec(self).unwrap_or_default();
        let sealed = keys.derive(EVENT_PURPOSE).seal(&plain, &header.aad());
        serde_json::to_string(&Envelope { header, sealed }).unwrap_or_default()
    }
}

pub fn group_id_for(user_key: &str) -> String {
    let digest = Sha256::digest(user_key.to_lowercase().as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> Event {
        Event {
            v: EVENT_VERSION,
            id: "e1".into(),
            origin_region: "eu-west-1".into(),
            origin_pool: "eu-west-1_A".into(),
            target_pool: "eu-central-1_B".into(),
            action: "SignUp".into(),
            user_key: "Alice@Example.com".into(),
            origin_username: None,
            origin_sub: Some("sub-1".into()),
            origin_time_ms: 1_700_000_000_000,
            no_mfa: false,
            change: Change::CreateUser {
                attributes: vec![Attr {
                    name: "email".into(),
                    value: "alice@example.com".into(),
                }],
                sealed_password: Some("v1.k1.x".into()),
                confirm_verifies: Some("email".into()),
            },
        }
    }
    fn keys() -> Keyring {
        Keyring::single("k1", [7; 32])
    }

    #[test]
    fn seals_and_opens_and_hides_personal_data() {
        let e = ev();
        let body = e.seal(&keys());
        assert_eq!(Envelope::open(&body, &keys()).unwrap(), e);
        assert!(
            !body.to_lowercase().contains("alice"),
            "no user key or attribute in the clear: {body}"
        );
        let h = Header::peek(&body).unwrap();
        assert_eq!(
            (h.id.as_str(), h.group.as_str(), h.origin_time_ms),
            ("e1", e.group_id().as_str(), e.origin_time_ms)
        );
    }

    #[test]
    fn any_change_to_the_routing_or_the_seal_is_refused() {
        let body = ev().seal(&keys());
        let v: Value = serde_json::from_str(&body).unwrap();
        for (field, value) in [
            ("id", Value::from("e2")),
            ("origin_pool", Value::from("eu-west-1_X")),
            ("target_pool", Value::from("eu-central-1_X")),
            ("action", Value::from("DeleteUser")),
            ("group", Value::from(group_id_for("victim"))),
            ("origin_time_ms", Value::from(1)),
            ("origin_region", Value::from("us-east-1")),
        ] {
            let mut t = v.clone();
            t[field] = value;
            assert!(
                matches!(
                    Envelope::open(&t.to_string(), &keys()),
                    Err(EventError::Unauthenticated(_))
                ),
                "{field}"
            );
        }
        let mut t = v.clone();
        t["sealed"] = Value::from(format!("{}A", v["sealed"].as_str().unwrap()));
        assert!(matches!(
            Envelope::open(&t.to_string(), &keys()),
            Err(EventError::Unauthenticated(_))
        ));
        // Another key (an attacker's own) does not verify; an unknown key id says so.
        assert!(matches!(
            Envelope::open(&body, &Keyring::single("k1", [8; 32])),
            Err(EventError::Unauthenticated(_))
        ));
        assert_eq!(
            Envelope::open(&body, &Keyring::single("k2", [7; 32])).unwrap_err(),
            EventError::UnknownKey("k1".into())
        );
    }

    #[test]
    fn an_unsealed_event_is_unauthenticated() {
        let mut plain: Value = serde_json::to_value(ev().header()).unwrap();
        plain["change"] = serde_json::json!({"op":"delete"});
        assert_eq!(
            Envelope::open(&plain.to_string(), &keys()).unwrap_err(),
            EventError::Unauthenticated("no seal")
        );
    }

    #[test]
    fn a_sealed_event_cannot_be_moved_to_another_header() {
        // Seal a genuine event for user A, then present its seal under B's routing.
        let a = ev();
        let mut b = ev();
        b.user_key = "victim@example.com".into();
        let body_a: Value = serde_json::from_str(&a.seal(&keys())).unwrap();
        let mut forged: Value = serde_json::to_value(b.header()).unwrap();
        forged["sealed"] = body_a["sealed"].clone();
        assert!(matches!(
            Envelope::open(&forged.to_string(), &keys()),
            Err(EventError::Unauthenticated(_))
        ));
    }

    #[test]
    fn group_id_is_stable_case_insensitive_and_opaque() {
        let e = ev();
        assert_eq!(e.group_id(), group_id_for("alice@example.com"));
        assert_ne!(e.group_id(), group_id_for("bob@example.com"));
        assert!(!e.group_id().contains("alice"));
        assert_eq!(e.group_id().len(), 32);
    }

    #[test]
    fn order_is_time_then_id() {
        assert!(OrderKey(1, "b".into()) < OrderKey(2, "a".into()));
        assert!(OrderKey(2, "a".into()) < OrderKey(2, "b".into()));
    }

    #[test]
    fn rejects_other_versions_and_garbage_without_echoing_it() {
        assert_eq!(
            Header::peek(r#"{"v":1}"#).unwrap_err(),
            EventError::Version(1)
        );
        assert!(matches!(
            Header::peek("secret-password"),
            Err(EventError::NotJson(_))
        ));
        let err = Header::peek(r#"{"v":2,"id":"x","secret":"hunter2"}"#)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"));
    }
}
