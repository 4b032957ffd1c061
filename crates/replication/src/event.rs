//! The replication event, schema v1. Documented in docs/replication-events.md.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const EVENT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attr {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Value")]
    pub value: String,
}

/// What changed, in replay terms. Secrets are sealed (`v1.<key id>.<...>`), with the event id
/// as the authenticated context, so a sealed value cannot be moved to another event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// SignUp: create the user, set the (sealed) password, keep them unable to sign in.
    CreateUser { attributes: Vec<Attr>, sealed_password: String },
    /// ConfirmSignUp: let the user sign in.
    Confirm,
    /// ConfirmForgotPassword, ChangePassword, NEW_PASSWORD_REQUIRED.
    SetPassword { sealed_password: String },
    UpdateAttributes { attributes: Vec<Attr> },
    DeleteAttributes { names: Vec<String> },
    VerifyAttribute { name: String },
    /// SetUserMFAPreference as sent (SMS/email/TOTP settings objects).
    MfaPreference { settings: Value },
    /// SetUserSettings `MFAOptions` as sent.
    Settings { mfa_options: Value },
    Delete,
    GlobalSignOut,
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub v: u32,
    /// Unique id; also the SQS FIFO deduplication id.
    pub id: String,
    pub origin_region: String,
    pub origin_pool: String,
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
    /// When the origin pool answered success, ms since the Unix epoch.
    pub origin_time_ms: u64,
    pub change: Change,
}

impl Event {
    /// The FIFO MessageGroupId: one user's events apply in order, different users in parallel.
    /// Hashed so that the group id does not expose the e-mail address.
    pub fn group_id(&self) -> String {
        group_id_for(&self.user_key)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events serialize")
    }

    /// Parses and checks the version. The error names what is wrong, never the content.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let probe: Value = serde_json::from_str(text).map_err(|e| format!("event is not JSON ({:?})", e.classify()))?;
        match probe.get("v").and_then(Value::as_u64) {
            Some(v) if v == u64::from(EVENT_VERSION) => {}
            Some(v) => return Err(format!("unsupported event version {v}")),
            None => return Err("event has no version".into()),
        }
        serde_json::from_value(probe).map_err(|e| format!("event does not match schema v1 (line {} col {})", e.line(), e.column()))
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
            v: 1,
            id: "e1".into(),
            origin_region: "eu-west-1".into(),
            origin_pool: "eu-west-1_A".into(),
            action: "SignUp".into(),
            user_key: "Alice@Example.com".into(),
            origin_username: None,
            origin_sub: Some("sub-1".into()),
            origin_time_ms: 1,
            change: Change::CreateUser { attributes: vec![Attr { name: "email".into(), value: "alice@example.com".into() }], sealed_password: "v1.k1.x".into() },
        }
    }

    #[test]
    fn round_trips() {
        let e = ev();
        assert_eq!(Event::from_json(&e.to_json()).unwrap(), e);
        assert!(e.to_json().contains(r#""op":"create_user""#));
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
    fn rejects_other_versions_and_garbage_without_echoing_it() {
        assert!(Event::from_json(r#"{"v":2}"#).unwrap_err().contains("version 2"));
        assert!(Event::from_json("secret-password").unwrap_err().starts_with("event is not JSON"));
        let err = Event::from_json(r#"{"v":1,"id":"x","secret":"hunter2"}"#).unwrap_err();
        assert!(!err.contains("hunter2"));
    }
}
