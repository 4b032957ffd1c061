//! Per-user replication state on the target region: the high-water marks that make the newest
//! state win, and each event's own failed attempts.
//!
//! A mark is kept per *field* of a user (existence, password, confirmation, each attribute,
//! MFA preference, settings, sign-out), not one per user: an older password change that took
//! the fallback path and arrives after a newer attribute change is still newer than the
//! password on the target, and must apply. An event, or the part of it, whose order key is at
//! or below its field's mark is stale and skipped. Existence is the first field of every
//! event: anything at or below the user's last creation or deletion belongs to an earlier
//! life of the account (a redriven sign-up cannot resurrect a deleted user).
//!
//! The proxy advances the marks of its home region for the writes it forwards, so a stale
//! replicated event cannot undo a write made directly on that region after a failover.

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::event::{Attr, Change, Event, OrderKey};

/// What the state store holds for one user (keyed by the hashed user key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Field → the order key of the newest change applied to it.
    #[serde(default)]
    pub marks: BTreeMap<String, OrderKey>,
    /// Event id → failed attempts of that event itself (not deliveries spent waiting behind
    /// another event of the user).
    #[serde(default)]
    pub attempts: BTreeMap<String, u32>,
    /// The attribute the origin sent the sign-up code to (verified on confirmation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_verifies: Option<String>,
    /// The standby sign-in bridge's SRP material for this user (see `SrpMaterial`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srp: Option<SrpMaterial>,
    /// Whether the user's last replicated MFA preference or settings enabled a second factor
    /// (the bridge refuses such users rather than bypass the factor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa: Option<bool>,
    /// A keyed fingerprint (`material_fp`) of the user key and the password the peer region is
    /// known to hold: recorded by this region's proxy when it sent the peer an event setting
    /// that password, and by this region's replicator when it applied one that came from the
    /// peer. A successful USER_PASSWORD_AUTH whose password matches sends nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub material_fp: Option<String>,
    /// A sign-up replicated from the peer and not confirmed there yet: the placeholder this
    /// region holds for it may be finished here (`crate::pending`). Sealed (password and
    /// attributes), bound to the record key; cleared by any later sign-up, confirmation or
    /// deletion of the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_sign_up: Option<String>,
    /// The user's TOTP secret (base32), sealed with `TOTP_PURPOSE` bound to the record key:
    /// replicated from the origin's confirmed enrolment (standby: the bridge answers
    /// `SOFTWARE_TOKEN_MFA` with it), or, at the origin, an enrolment awaiting its
    /// `VerifySoftwareToken` (`totp_pending`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_pending: Option<String>,
}

/// Purpose of the subkey (of the replication keyring) that seals TOTP secrets at rest.
pub const TOTP_PURPOSE: &str = "totp-secret";

/// Seals a TOTP secret for the record `record_key`.
pub fn seal_totp(keys: &wire::seal::Keyring, record_key: &str, secret: &str) -> String {
    keys.derive(TOTP_PURPOSE)
        .seal(secret.as_bytes(), record_key.as_bytes())
}

/// Opens a TOTP secret sealed by `seal_totp` for the record `record_key`.
pub fn open_totp(keys: &wire::seal::Keyring, record_key: &str, sealed: &str) -> Option<String> {
    keys.derive(TOTP_PURPOSE)
        .open(sealed, record_key.as_bytes())
        .ok()
        .and_then(|p| String::from_utf8(p).ok())
}

/// The fingerprint kept in `UserRecord::material_fp`: keyed with the replication keyring (both
/// regions hold it), never an unkeyed hash of a password.
pub fn material_fp(keys: &wire::seal::Keyring, user_key: &str, password: &str) -> String {
    keys.keyed_hash("srp-material-fp", &format!("{user_key}\n{password}"))
}

/// Purpose of the subkey (of the replication keyring) that seals SRP material at rest.
pub const SRP_MATERIAL_PURPOSE: &str = "srp-verifier";

/// A user's SRP verifier for the app pool's name, derived by the replicator from a password the
/// origin saw succeed. Only the salt and verifier are secret-ish (a verifier allows an offline
/// guessing attack, like a password hash): they are sealed under a subkey of the replication
/// keyring, bound to the record key, so the table alone reveals nothing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrpMaterial {
    /// The app pool id the verifier binds (its name part is in x).
    pub pool: String,
    /// USER_ID_FOR_SRP the verifier was computed with (the user key).
    pub user_id: String,
    /// The home (target) pool's internal username, to mint tokens for.
    pub username: String,
    /// `{"salt": hex, "verifier": hex}` sealed with `SRP_MATERIAL_PURPOSE`, aad = record key.
    pub sealed: String,
}

impl std::fmt::Debug for SrpMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrpMaterial")
            .field("pool", &self.pool)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// Salt and verifier (big-endian bytes).
pub struct SrpSecret {
    pub salt: Vec<u8>,
    pub verifier: Vec<u8>,
}

impl SrpMaterial {
    /// Derives and seals the material for `password` (one 3072-bit exponentiation).
    pub fn derive(
        keys: &wire::seal::Keyring,
        record_key: &str,
        app_pool: &str,
        user_id: &str,
        username: &str,
        password: &str,
    ) -> Self {
        use wire::srp;
        // USER_ID_FOR_SRP is always the lower-cased key: a real user's challenge then has the
        // same shape as an unknown user's decoy (no case echo that tells who exists).
        let user_id = user_id.to_lowercase();
        let salt = srp::new_salt();
        let v = srp::verifier(srp::pool_name(app_pool), &user_id, password, &salt);
        let plain = serde_json::json!({"salt": srp::int_hex(&salt), "verifier": srp::int_hex(&v)});
        let sealed = keys
            .derive(SRP_MATERIAL_PURPOSE)
            .seal(plain.to_string().as_bytes(), record_key.as_bytes());
        Self {
            pool: app_pool.to_owned(),
            user_id,
            username: username.to_owned(),
            sealed,
        }
    }

    /// Opens the sealed salt and verifier (`None`: tampered, moved to another record, or sealed
    /// under a retired key).
    pub fn open(&self, keys: &wire::seal::Keyring, record_key: &str) -> Option<SrpSecret> {
        let plain = keys
            .derive(SRP_MATERIAL_PURPOSE)
            .open(&self.sealed, record_key.as_bytes())
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&plain).ok()?;
        Some(SrpSecret {
            salt: wire::srp::parse_hex(v.get("salt")?.as_str()?)?,
            verifier: wire::srp::parse_hex(v.get("verifier")?.as_str()?)?,
        })
    }
}

/// Whether MFA settings as the app sent them (SetUserMFAPreference's settings objects, or
/// SetUserSettings' MFAOptions) turn a second factor on.
pub fn enables_mfa(settings: &serde_json::Value) -> bool {
    match settings {
        serde_json::Value::Array(list) => !list.is_empty(),
        serde_json::Value::Object(m) => m.values().any(|s| {
            s.get("Enabled").and_then(serde_json::Value::as_bool) == Some(true)
                || s.get("PreferredMfa").and_then(serde_json::Value::as_bool) == Some(true)
        }),
        _ => false,
    }
}

const EXISTS: &str = "exists";
const SIGNED_OUT: &str = "signed_out";
const REVOKED: &str = "revoked:";
/// Revoked token ids kept per user (the oldest go first; a global sign-out clears those it
/// covers). A refresh token lives 30 days by default: far fewer revocations than this.
pub const MAX_REVOKED_PER_USER: usize = 100;

fn revoked_field(token_id: &str) -> String {
    format!("{REVOKED}{token_id}")
}

/// Why a relay-sealed session may not continue (`UserRecord::session_ended`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnded {
    /// The user signed out globally at or after the token's issue.
    SignedOut,
    /// This token was revoked (RevokeToken) in either region.
    Revoked,
    /// The user was deleted (or deleted and signed up again) since the token's issue.
    Recreated,
    /// The token carries no issue time or id (sealed by an older relay).
    Unknown,
}

impl SessionEnded {
    /// A short reason for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Self::SignedOut => "signed_out",
            Self::Revoked => "revoked",
            Self::Recreated => "recreated",
            Self::Unknown => "legacy_token",
        }
    }
}

fn attr_field(name: &str) -> String {
    format!("attr:{name}")
}

/// The fields a change writes.
pub fn fields(change: &Change) -> Vec<String> {
    match change {
        Change::CreateUser { attributes, .. } => {
            let mut f = vec![EXISTS.to_owned(), "password".into(), "confirmed".into()];
            f.extend(attributes.iter().map(|a| attr_field(&a.name)));
            f
        }
        Change::Confirm => vec!["confirmed".into()],
        Change::SetPassword { .. } => vec!["password".into()],
        Change::UpdateAttributes { attributes } => {
            attributes.iter().map(|a| attr_field(&a.name)).collect()
        }
        Change::DeleteAttributes { names } => names.iter().map(|n| attr_field(n)).collect(),
        Change::VerifyAttribute { name } => vec![attr_field(&format!("{name}_verified"))],
        Change::MfaPreference { .. } => vec!["mfa".into()],
        Change::Settings { .. } => vec!["settings".into()],
        Change::Delete => vec![EXISTS.to_owned()],
        Change::GlobalSignOut => vec![SIGNED_OUT.into()],
        Change::RevokeToken { token_id, .. } => vec![revoked_field(token_id)],
        Change::TotpSecret { .. } => vec!["totp".into()],
    }
}

impl UserRecord {
    /// Whether a session whose refresh token has id `token_id`, issued at `issued_ms` (the
    /// issuing proxy's clock), has ended here: signed out globally, revoked, or the user
    /// deleted since. `None`: it may continue (the home pool still checks the user exists and
    /// is enabled when it mints).
    pub fn session_ended(&self, token_id: &str, issued_ms: u64) -> Option<SessionEnded> {
        if token_id.is_empty() || issued_ms == 0 {
            return Some(SessionEnded::Unknown);
        }
        if self.marks.contains_key(&revoked_field(token_id)) {
            return Some(SessionEnded::Revoked);
        }
        let at_or_after = |f: &str| self.marks.get(f).is_some_and(|m| m.0 >= issued_ms);
        if at_or_after(SIGNED_OUT) {
            return Some(SessionEnded::SignedOut);
        }
        if at_or_after(EXISTS) {
            return Some(SessionEnded::Recreated);
        }
        None
    }

    /// Keeps the revocation marks bounded: those a global sign-out covers go, then the oldest
    /// beyond `MAX_REVOKED_PER_USER`.
    fn prune_revoked(&mut self) {
        let signed_out = self.marks.get(SIGNED_OUT).cloned();
        self.marks.retain(|k, m| {
            !(k.starts_with(REVOKED) && signed_out.as_ref().is_some_and(|s| m.0 < s.0))
        });
        let mut revoked: Vec<(OrderKey, String)> = self
            .marks
            .iter()
            .filter(|(k, _)| k.starts_with(REVOKED))
            .map(|(k, m)| (m.clone(), k.clone()))
            .collect();
        if revoked.len() > MAX_REVOKED_PER_USER {
            revoked.sort();
            for (_, k) in &revoked[..revoked.len() - MAX_REVOKED_PER_USER] {
                self.marks.remove(k);
            }
        }
    }

    fn newer(&self, field: &str, order: &OrderKey) -> bool {
        self.marks.get(field).is_none_or(|m| order > m)
    }

    /// The part of `event`'s change that is newer than what the target has, or `None` when
    /// all of it is stale.
    pub fn fresh(&self, event: &Event) -> Option<Change> {
        let order = event.order();
        if !self.newer(EXISTS, &order) {
            return None;
        }
        let keep = |a: &Attr| self.newer(&attr_field(&a.name), &order);
        let part = match &event.change {
            Change::UpdateAttributes { attributes } => {
                let attributes: Vec<Attr> =
                    attributes.iter().filter(|a| keep(a)).cloned().collect();
                (!attributes.is_empty()).then_some(Change::UpdateAttributes { attributes })
            }
            Change::DeleteAttributes { names } => {
                let names: Vec<String> = names
                    .iter()
                    .filter(|n| self.newer(&attr_field(n), &order))
                    .cloned()
                    .collect();
                (!names.is_empty()).then_some(Change::DeleteAttributes { names })
            }
            // Creation and deletion are decided by existence alone (checked above).
            Change::CreateUser { .. } | Change::Delete => Some(event.change.clone()),
            other => fields(other)
                .iter()
                .all(|f| self.newer(f, &order))
                .then(|| other.clone()),
        };
        part
    }

    /// Records that `change` (the fresh part of an event) is applied at `order`.
    pub fn advance(&mut self, change: &Change, order: &OrderKey) {
        for f in fields(change) {
            let m = self.marks.entry(f).or_insert_with(|| order.clone());
            if *m < *order {
                *m = order.clone();
            }
        }
        match change {
            Change::CreateUser {
                confirm_verifies, ..
            } => {
                self.confirm_verifies = confirm_verifies.clone();
                self.srp = None;
                self.totp = None;
                // A new account has no second factor until it sets one (a preference event
                // follows); an account this region never saw created stays unknown (`None`).
                self.mfa = Some(false);
                self.pending_sign_up = None;
            }
            Change::Confirm => self.pending_sign_up = None,
            // The verifier and the fingerprint go with the user.
            Change::Delete => {
                self.srp = None;
                self.totp = None;
                self.totp_pending = None;
                self.mfa = None;
                self.material_fp = None;
                self.pending_sign_up = None;
            }
            Change::MfaPreference { settings } => self.mfa = Some(enables_mfa(settings)),
            Change::Settings { mfa_options } => self.mfa = Some(enables_mfa(mfa_options)),
            Change::GlobalSignOut | Change::RevokeToken { .. } => self.prune_revoked(),
            _ => {}
        }
    }
}

/// The user's new key when `change` moves their sign-in alias (an `UpdateAttributes` of one of
/// the pool's `aliases` to another value), else `None`.
pub fn alias_change(change: &Change, user_key: &str, aliases: &[String]) -> Option<String> {
    let Change::UpdateAttributes { attributes } = change else {
        return None;
    };
    attributes
        .iter()
        .find(|a| aliases.contains(&a.name) && !a.value.is_empty())
        .filter(|a| a.value.to_lowercase() != user_key.to_lowercase())
        .map(|a| a.value.clone())
}

/// After an alias change: the record under the new key learns what the user's old record
/// knew of their MFA state, `mfa` (never overwriting what the new record already knows).
pub async fn follow_alias<S: StateStore>(
    store: &S,
    new_user_key: &str,
    mfa: Option<bool>,
) -> Result<(), StoreError> {
    let Some(mfa) = mfa else {
        return Ok(());
    };
    update(store, &record_key(new_user_key), |r| {
        if r.mfa.is_none() {
            r.mfa = Some(mfa);
        }
    })
    .await
}

/// A stored record and the version it was read at (for a conditional write).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versioned {
    pub record: UserRecord,
    /// 0 when the user has no record yet.
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Someone else wrote the record since it was read: read again.
    #[error("the record changed since it was read")]
    Conflict,
    #[error("state store unavailable: {0}")]
    Unavailable(String),
}

/// Where the records live (DynamoDB in AWS; a map in tests). Keys are hashed user keys.
pub trait StateStore: Send + Sync {
    fn load(&self, key: &str) -> impl Future<Output = Result<Versioned, StoreError>> + Send;
    /// Writes `record` as version `expected + 1` if the stored version is still `expected`.
    fn save(
        &self,
        key: &str,
        record: &UserRecord,
        expected: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The record key of a user: the hashed user key (the same hash as the FIFO group), so the
/// table holds no e-mail address.
pub fn record_key(user_key: &str) -> String {
    format!("user#{}", crate::event::group_id_for(user_key))
}

/// Reads, changes and conditionally writes a record, reading again on a conflict.
pub async fn update<S: StateStore + ?Sized, T>(
    store: &S,
    key: &str,
    mut f: impl FnMut(&mut UserRecord) -> T,
) -> Result<T, StoreError> {
    let mut last = StoreError::Conflict;
    for _ in 0..5 {
        let mut v = store.load(key).await?;
        let out = f(&mut v.record);
        match store.save(key, &v.record, v.version).await {
            Ok(()) => return Ok(out),
            Err(StoreError::Conflict) => last = StoreError::Conflict,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// An in-memory store (tests, benchmarks).
#[derive(Default)]
pub struct MemoryStore {
    pub records: std::sync::Mutex<std::collections::HashMap<String, (u64, UserRecord)>>,
}

impl StateStore for MemoryStore {
    async fn load(&self, key: &str) -> Result<Versioned, StoreError> {
        let m = self.records.lock().unwrap_or_else(|p| p.into_inner());
        Ok(m.get(key)
            .map(|(v, r)| Versioned {
                record: r.clone(),
                version: *v,
            })
            .unwrap_or_default())
    }
    async fn save(&self, key: &str, record: &UserRecord, expected: u64) -> Result<(), StoreError> {
        let mut m = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let current = m.get(key).map_or(0, |(v, _)| *v);
        if current != expected {
            return Err(StoreError::Conflict);
        }
        m.insert(key.to_owned(), (expected + 1, record.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_alias_change_names_the_new_key_only_in_alias_pools() {
        let change = Change::UpdateAttributes {
            attributes: vec![Attr {
                name: "email".into(),
                value: "new@x.io".into(),
            }],
        };
        let email = vec!["email".to_owned()];
        assert_eq!(
            alias_change(&change, "old@x.io", &email).as_deref(),
            Some("new@x.io")
        );
        assert_eq!(alias_change(&change, "NEW@x.io", &email), None, "same key");
        assert_eq!(alias_change(&change, "alice", &[]), None, "username pool");
        assert_eq!(alias_change(&Change::Confirm, "old@x.io", &email), None);
    }

    use super::*;
    use crate::event::EVENT_VERSION;

    fn at(ms: u64, change: Change) -> Event {
        Event {
            v: EVENT_VERSION,
            id: format!("e{ms}"),
            origin_region: "a".into(),
            origin_pool: "a_1".into(),
            target_pool: "b_1".into(),
            action: "X".into(),
            user_key: "alice".into(),
            origin_username: None,
            origin_sub: None,
            origin_time_ms: ms,
            no_mfa: false,
            change,
        }
    }
    fn attrs(list: &[(&str, &str)]) -> Vec<Attr> {
        list.iter()
            .map(|(n, v)| Attr {
                name: (*n).into(),
                value: (*v).into(),
            })
            .collect()
    }
    fn applied(rec: &mut UserRecord, e: &Event) -> Option<Change> {
        let part = rec.fresh(e)?;
        rec.advance(&part, &e.order());
        Some(part)
    }

    #[test]
    fn an_old_password_redelivered_after_a_newer_one_is_stale() {
        let mut rec = UserRecord::default();
        let old = at(
            10,
            Change::SetPassword {
                sealed_password: "old".into(),
            },
        );
        let new = at(
            20,
            Change::SetPassword {
                sealed_password: "new".into(),
            },
        );
        assert!(applied(&mut rec, &old).is_some());
        assert!(applied(&mut rec, &new).is_some());
        assert_eq!(
            rec.fresh(&old),
            None,
            "redelivery / redrive of the old password"
        );
        assert_eq!(rec.fresh(&new), None, "a duplicate is stale too");
    }

    #[test]
    fn marks_are_per_field_so_a_late_older_password_still_applies() {
        let mut rec = UserRecord::default();
        applied(
            &mut rec,
            &at(
                20,
                Change::UpdateAttributes {
                    attributes: attrs(&[("name", "B")]),
                },
            ),
        );
        assert!(rec
            .fresh(&at(
                10,
                Change::SetPassword {
                    sealed_password: "p".into()
                }
            ))
            .is_some());
    }

    #[test]
    fn attributes_are_filtered_one_by_one() {
        let mut rec = UserRecord::default();
        applied(
            &mut rec,
            &at(
                20,
                Change::UpdateAttributes {
                    attributes: attrs(&[("name", "new")]),
                },
            ),
        );
        let older = at(
            10,
            Change::UpdateAttributes {
                attributes: attrs(&[("name", "old"), ("nickname", "n")]),
            },
        );
        assert_eq!(
            rec.fresh(&older),
            Some(Change::UpdateAttributes {
                attributes: attrs(&[("nickname", "n")])
            })
        );
        assert_eq!(
            rec.fresh(&at(
                5,
                Change::DeleteAttributes {
                    names: vec!["name".into()]
                }
            )),
            None
        );
    }

    #[test]
    fn a_stale_confirmation_from_the_origin_never_confirms_a_sign_up_made_here_later() {
        // Signed up at the origin (10), replicated here as a placeholder; the origin confirms
        // (20) but that event is late; meanwhile the user signs up again here (30, this
        // proxy's marks). The late confirmation must not confirm the new sign-up (its code was
        // sent by this pool).
        let sign_up = |ms| {
            at(
                ms,
                Change::CreateUser {
                    attributes: vec![],
                    sealed_password: None,
                    confirm_verifies: Some("email".into()),
                },
            )
        };
        let mut rec = UserRecord::default();
        applied(&mut rec, &sign_up(10));
        rec.pending_sign_up = Some("sealed".into());
        applied(&mut rec, &sign_up(30));
        assert!(
            rec.pending_sign_up.is_none(),
            "the sign-up here replaced the placeholder"
        );
        assert_eq!(rec.fresh(&at(20, Change::Confirm)), None);
        assert_eq!(rec.fresh(&at(40, Change::Confirm)), Some(Change::Confirm));
    }

    #[test]
    fn a_deleted_user_is_not_resurrected_by_an_older_event() {
        let mut rec = UserRecord::default();
        let sign_up = at(
            10,
            Change::CreateUser {
                attributes: vec![],
                sealed_password: None,
                confirm_verifies: Some("email".into()),
            },
        );
        applied(&mut rec, &sign_up);
        assert_eq!(rec.confirm_verifies.as_deref(), Some("email"));
        applied(&mut rec, &at(30, Change::Delete));
        assert_eq!(rec.fresh(&sign_up), None);
        assert_eq!(rec.fresh(&at(20, Change::Confirm)), None);
        // Signing up again later is a new life of the account.
        assert!(rec
            .fresh(&at(
                40,
                Change::CreateUser {
                    attributes: vec![],
                    sealed_password: None,
                    confirm_verifies: None
                }
            ))
            .is_some());
        // Delete delivered before its (older) sign-up: the sign-up stays out.
        let mut rec = UserRecord::default();
        applied(&mut rec, &at(30, Change::Delete));
        assert_eq!(rec.fresh(&sign_up), None);
    }

    fn revoke(ms: u64, id: &str) -> Event {
        at(
            ms,
            Change::RevokeToken {
                token_id: id.into(),
                pool: "a_1".into(),
            },
        )
    }

    #[test]
    fn a_session_ends_with_a_sign_out_a_revocation_or_a_new_life_of_the_account() {
        let mut rec = UserRecord::default();
        assert_eq!(rec.session_ended("t1", 100), None);
        assert_eq!(rec.session_ended("", 100), Some(SessionEnded::Unknown));
        assert_eq!(rec.session_ended("t1", 0), Some(SessionEnded::Unknown));
        applied(&mut rec, &revoke(150, "t1"));
        assert_eq!(rec.session_ended("t1", 100), Some(SessionEnded::Revoked));
        assert_eq!(rec.session_ended("t2", 100), None, "only that token");
        applied(&mut rec, &at(200, Change::GlobalSignOut));
        assert_eq!(rec.session_ended("t2", 100), Some(SessionEnded::SignedOut));
        assert_eq!(rec.session_ended("t2", 200), Some(SessionEnded::SignedOut));
        assert_eq!(
            rec.session_ended("t3", 201),
            None,
            "issued after the sign-out"
        );
        assert!(
            !rec.marks.contains_key("revoked:t1"),
            "the sign-out covers the revocation"
        );
        applied(&mut rec, &at(300, Change::Delete));
        assert_eq!(rec.session_ended("t3", 201), Some(SessionEnded::Recreated));
        assert_eq!(
            rec.fresh(&revoke(250, "t9")),
            None,
            "older than the deletion"
        );
    }

    #[test]
    fn revocations_are_bounded_per_user() {
        let mut rec = UserRecord::default();
        for i in 0..(MAX_REVOKED_PER_USER as u64 + 5) {
            applied(&mut rec, &revoke(10 + i, &format!("t{i}")));
        }
        let kept = rec.marks.keys().filter(|k| k.starts_with(REVOKED)).count();
        assert_eq!(kept, MAX_REVOKED_PER_USER);
        assert_eq!(rec.session_ended("t0", 1), None, "the oldest went first");
        assert_eq!(
            rec.session_ended(&format!("t{}", MAX_REVOKED_PER_USER + 4), 1),
            Some(SessionEnded::Revoked)
        );
        assert_eq!(
            rec.fresh(&revoke(114, "t104")),
            None,
            "a duplicate is stale"
        );
    }

    #[tokio::test]
    async fn update_retries_a_conflicting_write() {
        let store = MemoryStore::default();
        update(&store, "k", |r| r.attempts.insert("e".into(), 1))
            .await
            .unwrap();
        // Simulate a concurrent writer between load and save once.
        let v = store.load("k").await.unwrap();
        store.save("k", &v.record, v.version).await.unwrap();
        assert_eq!(
            store.save("k", &v.record, v.version).await,
            Err(StoreError::Conflict)
        );
        let n = update(&store, "k", |r| {
            let n = r.attempts.entry("e".into()).or_default();
            *n += 1;
            *n
        })
        .await
        .unwrap();
        assert_eq!(n, 2);
    }
}
