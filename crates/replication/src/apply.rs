//! Replays an event on the target pool. `plan` is the pure decision (what to call, given the
//! user's current state on the target); `apply` runs it over a `UserDirectory`, paced and with
//! retries. Idempotent: a duplicate, a user that already exists, a delete of a user already
//! gone, are success.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use serde_json::Value;
use wire::seal::Keyring;

use crate::event::{Attr, Change, Event};
use crate::pacing::{Category, Pacer};
use crate::state::{record_key, update, StateStore, StoreError};

/// What the error for a password sealed under a key the replicator does not have yet says.
pub const UNKNOWN_KEY: &str = "sealed with a key this replicator does not have";

/// Why an event was not applied. Retryable or permanent is decided by the variant, never by
/// the message: `Throttled`, `Retryable` and `UnknownKey` are worth another attempt later,
/// `Permanent` goes to the DLQ with its reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Cognito throttled the call (TooManyRequestsException and kin): try again later, paced.
    #[error("retryable: {0}")]
    Throttled(String),
    /// 5xx, timeouts, connection trouble, the state store: try again later.
    #[error("retryable: {0}")]
    Retryable(String),
    /// A password sealed under a key rotated in at the origin: re-read the keyring and retry.
    #[error("retryable: {UNKNOWN_KEY}: {0}")]
    UnknownKey(String),
    /// The event cannot be applied as it is (bad event, unknown pool, missing user).
    #[error("permanent: {0}")]
    Permanent(String),
}

impl ApplyError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ApplyError::Permanent(_))
    }
    pub fn class(&self) -> &'static str {
        if self.is_retryable() {
            "retryable"
        } else {
            "permanent"
        }
    }
    /// The reason without the class prefix (what the DLQ and the logs carry).
    pub fn reason(&self) -> String {
        match self {
            ApplyError::UnknownKey(r) => format!("{UNKNOWN_KEY}: {r}"),
            ApplyError::Throttled(r) | ApplyError::Retryable(r) | ApplyError::Permanent(r) => {
                r.clone()
            }
        }
    }
}

/// What applying one event cost beyond one call per step: read by the replicator's metrics
/// (`ApplyRetries`, `CognitoThrottled`).
#[derive(Debug, Default)]
pub struct Tally {
    /// Calls repeated after a retryable error (the in-process backoff layer).
    pub retries: std::sync::atomic::AtomicU64,
    /// Attempts Cognito answered with throttling (every attempt, the last one included).
    pub throttled: std::sync::atomic::AtomicU64,
}

impl Tally {
    pub fn retries(&self) -> u64 {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }
    pub fn throttled(&self) -> u64 {
        self.throttled.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserState {
    /// The target pool's internal username.
    pub username: String,
    /// Cognito's UserStatus, e.g. CONFIRMED, FORCE_CHANGE_PASSWORD.
    pub status: crate::UserStatus,
    pub enabled: bool,
    pub attributes: Vec<Attr>,
}

impl UserState {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    }
}

/// A password that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);
impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// One Admin API call. Steps after `Create` act on the user just created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create { attributes: Vec<Attr> },
    SetPassword(Password),
    SetEnabled(bool),
    UpdateAttributes(Vec<Attr>),
    DeleteAttributes(Vec<String>),
    SetMfa(Value),
    SetSettings(Value),
    Delete,
    GlobalSignOut,
}

impl Step {
    pub fn category(&self) -> Category {
        match self {
            Step::Create { .. } => Category::UserCreation,
            Step::SetPassword(_) => Category::UserAccountRecovery,
            Step::GlobalSignOut => Category::UserAuthentication,
            _ => Category::UserUpdate,
        }
    }
}

/// The target pool, as the replicator needs it (an adapter over Cognito's Admin APIs).
pub trait UserDirectory: Sync {
    /// Finds a user by key (username, or the sign-in e-mail / phone in alias pools).
    fn get_user(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<UserState>, ApplyError>> + Send;
    /// Creates the user with no message sent; an existing user is returned as is.
    fn create_user(
        &self,
        key: &str,
        attributes: &[Attr],
    ) -> impl Future<Output = Result<UserState, ApplyError>> + Send;
    /// Runs one step (other than `Create`) on `username`. A user already gone is success for
    /// `Delete` and `GlobalSignOut`.
    fn run(
        &self,
        username: &str,
        step: &Step,
    ) -> impl Future<Output = Result<(), ApplyError>> + Send;
}

#[derive(Debug, Clone, Default)]
pub struct ApplyConfig {
    /// Custom attribute that receives the origin pool's `sub`, e.g. `custom:origin_sub`.
    pub origin_sub_attribute: Option<String>,
    /// Retries per call for retryable errors (exponential backoff with jitter).
    pub max_retries: usize,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// The pool id the apps were built with (`RELAY_APP_USER_POOL_ID`). When set and different
    /// from the target pool, every replicated password also yields an SRP verifier for it.
    pub app_pool_id: Option<String>,
    /// The pool's sign-in aliases (`email`, `phone_number`; empty in username pools): a change
    /// of one moves the user's key.
    pub alias_attributes: Vec<String>,
}

impl ApplyConfig {
    pub fn standard() -> Self {
        Self {
            alias_attributes: Vec::new(),
            origin_sub_attribute: None,
            max_retries: 5,
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            app_pool_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Nothing to do: the target already had this change.
    AlreadyApplied,
    /// Applied, but some part cannot be replicated (named).
    Partial(&'static str),
    /// Every part of the event is at or below the user's high-water marks: skipped.
    Stale,
}

/// A change for a user the target does not have (yet): its sign-up may still be on the way
/// (e.g. through the proxy's fallback queue), so it is retried by redelivery and dead-lettered
/// with this reason only when the event's own attempts run out.
fn missing(event: &Event) -> ApplyError {
    ApplyError::Retryable(format!(
        "user of event {} ({}) does not exist on the target",
        event.id,
        event.change.name()
    ))
}

/// What the target's state store knows of the user's sign-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmVerifies<'a> {
    /// The origin sent the sign-up code to this attribute: confirmation verifies it.
    Attribute(&'a str),
    /// The origin sent no code (nothing is verified by confirming).
    Nothing,
    /// The sign-up was not replicated through this pipeline (backfill, older events).
    Unknown,
}

/// Decides the Admin calls for `change` (the fresh part of `event`) given the target's
/// current state of the user.
pub fn plan(
    event: &Event,
    change: &Change,
    state: Option<&UserState>,
    password: Option<Password>,
    verifies: ConfirmVerifies<'_>,
    cfg: &ApplyConfig,
) -> Result<(Vec<Step>, Outcome), ApplyError> {
    use Step as S;
    let pw = || {
        password
            .clone()
            .ok_or_else(|| ApplyError::Permanent(format!("event {} carries no password", event.id)))
    };
    let applied = |steps: Vec<Step>| Ok((steps, Outcome::Applied));
    match (change, state) {
        (
            Change::CreateUser {
                attributes,
                sealed_password,
                ..
            },
            None,
        ) => {
            let mut attributes = attributes.clone();
            if let (Some(attr), Some(sub)) = (&cfg.origin_sub_attribute, &event.origin_sub) {
                attributes.push(Attr {
                    name: attr.clone(),
                    value: sub.clone(),
                });
            }
            // Disabled before it has a password, and until the origin confirms the sign-up:
            // there is no moment when the user can sign in here before that. A passwordless
            // sign-up gets no password here either.
            let mut steps = vec![S::Create { attributes }, S::SetEnabled(false)];
            if sealed_password.is_some() {
                steps.push(S::SetPassword(pw()?));
            }
            applied(steps)
        }
        // Created by an earlier, interrupted delivery: finish it.
        (
            Change::CreateUser {
                sealed_password, ..
            },
            Some(u),
        ) if u.status == crate::UserStatus::ForceChangePassword => {
            let mut steps = vec![S::SetEnabled(false)];
            if sealed_password.is_some() {
                steps.push(S::SetPassword(pw()?));
            }
            applied(steps)
        }
        // This pool's own sign-up, never confirmed, and a newer one finished on the peer (a
        // half-finished sign-up completed there): the newer sign-up wins. The unconfirmed user
        // is replaced by the peer's placeholder (its password, disabled until it confirms).
        // A confirmed user is never replaced.
        (
            Change::CreateUser {
                attributes,
                sealed_password,
                ..
            },
            Some(u),
        ) if u.status == crate::UserStatus::Unconfirmed => {
            let mut attributes = attributes.clone();
            if let (Some(attr), Some(sub)) = (&cfg.origin_sub_attribute, &event.origin_sub) {
                attributes.push(Attr {
                    name: attr.clone(),
                    value: sub.clone(),
                });
            }
            let mut steps = vec![S::Delete, S::Create { attributes }, S::SetEnabled(false)];
            if sealed_password.is_some() {
                steps.push(S::SetPassword(pw()?));
            }
            applied(steps)
        }
        (Change::CreateUser { .. }, Some(_)) => Ok((vec![], Outcome::AlreadyApplied)),
        (Change::Delete | Change::GlobalSignOut, None) => Ok((vec![], Outcome::AlreadyApplied)),
        // A token of the target's own pool revoked through the other region's proxy (which
        // cannot reach this pool's Cognito with it): no Admin API revokes one refresh token, so
        // the user is signed out here (fail closed; their other sessions sign in again).
        (Change::RevokeToken { pool, .. }, Some(_)) if *pool == event.target_pool => {
            applied(vec![S::GlobalSignOut])
        }
        // A token of the origin's pool: recording its id (the mark) is the whole change.
        (Change::RevokeToken { .. }, _) => Ok((vec![], Outcome::Applied)),
        // No Admin API sets a TOTP secret: keeping it sealed in the state table is the whole
        // change (`apply` stores it after the plan).
        (Change::TotpSecret { .. }, Some(_)) => Ok((vec![], Outcome::Applied)),
        (_, None) => Err(missing(event)),
        (Change::Confirm, Some(u)) => {
            // Verify exactly what the origin verified: the attribute its code went to.
            let (verify, outcome) = match verifies {
                ConfirmVerifies::Attribute(a)
                    if u.attr(a).is_some() && u.attr(&format!("{a}_verified")) != Some("true") =>
                {
                    (
                        vec![Attr {
                            name: format!("{a}_verified"),
                            value: "true".into(),
                        }],
                        Outcome::Applied,
                    )
                }
                ConfirmVerifies::Unknown => (vec![], Outcome::Partial("verified-flags-unknown")),
                _ => (vec![], Outcome::Applied),
            };
            let mut steps = vec![];
            if !verify.is_empty() {
                steps.push(S::UpdateAttributes(verify));
            }
            if !u.enabled {
                steps.push(S::SetEnabled(true));
            }
            let outcome = if steps.is_empty() && outcome == Outcome::Applied {
                Outcome::AlreadyApplied
            } else {
                outcome
            };
            Ok((steps, outcome))
        }
        (Change::SetPassword { .. }, Some(_)) => applied(vec![S::SetPassword(pw()?)]),
        // The origin's own `*_verified` consequences travel in `attributes`: nothing invented.
        (Change::UpdateAttributes { attributes }, Some(_)) => {
            applied(updates_without_a_message(attributes))
        }
        (Change::DeleteAttributes { names }, Some(_)) => {
            applied(vec![S::DeleteAttributes(names.clone())])
        }
        (Change::VerifyAttribute { name }, Some(_)) => {
            applied(vec![S::UpdateAttributes(vec![Attr {
                name: format!("{name}_verified"),
                value: "true".into(),
            }])])
        }
        (Change::MfaPreference { settings }, Some(_)) => {
            // A TOTP secret cannot be copied (no Admin API sets one): TOTP preference is left out.
            let mut s = settings.clone();
            let had_totp = s
                .as_object_mut()
                .and_then(|m| m.remove("SoftwareTokenMfaSettings"))
                .is_some();
            let empty = s.as_object().is_none_or(|m| m.is_empty());
            let steps = if empty { vec![] } else { vec![S::SetMfa(s)] };
            Ok((
                steps,
                if had_totp {
                    Outcome::Partial("totp")
                } else {
                    Outcome::Applied
                },
            ))
        }
        (Change::Settings { mfa_options }, Some(_)) => {
            applied(vec![S::SetSettings(mfa_options.clone())])
        }
        (Change::Delete, Some(_)) => applied(vec![S::Delete]),
        (Change::GlobalSignOut, Some(_)) => applied(vec![S::GlobalSignOut]),
    }
}

/// AdminUpdateUserAttributes messages the new address of an auto-verified e-mail / phone
/// unless the same call sets its `*_verified` to "true". Where the origin un-verified a changed
/// e-mail / phone (it sent its user a code), replay that in two calls: the value with the flag
/// "true" (so this pool sends nothing), then the origin's flag. A failure between the two is
/// retried like any step (the event is replayed whole).
pub fn updates_without_a_message(attributes: &[Attr]) -> Vec<Step> {
    let mut first = attributes.to_vec();
    let mut then = vec![];
    for a in &mut first {
        let changed = a.name.strip_suffix("_verified").is_some_and(|base| {
            (base == "email" || base == "phone_number") && attributes.iter().any(|b| b.name == base)
        });
        if changed && a.value != "true" {
            then.push(a.clone());
            a.value = "true".into();
        }
    }
    let mut steps = vec![Step::UpdateAttributes(first)];
    if !then.is_empty() {
        steps.push(Step::UpdateAttributes(then));
    }
    steps
}

fn sealed_password(change: &Change) -> Option<&str> {
    match change {
        Change::CreateUser {
            sealed_password: Some(sealed),
            ..
        }
        | Change::SetPassword {
            sealed_password: sealed,
        } => Some(sealed),
        _ => None,
    }
}

/// The sealed `PendingSignUp` of a sign-up just replayed as a placeholder (`None` when the
/// steps made none: the user was already there, confirmed).
fn pending_sign_up(
    change: &Change,
    steps: &[Step],
    password: Option<&Password>,
    keys: &Keyring,
    record_key: &str,
) -> Option<String> {
    let Change::CreateUser { attributes, .. } = change else {
        return None;
    };
    steps.contains(&Step::SetEnabled(false)).then(|| {
        crate::pending::PendingSignUp {
            password: password.map(|p| p.0.clone()),
            attributes: attributes.clone(),
        }
        .seal(keys, record_key)
    })
}

/// The key to look the user up by when the event's key is not (or no longer) there: after an
/// e-mail change was applied, the user is found under the new value.
fn alternate_key(event: &Event) -> Option<&str> {
    match &event.change {
        Change::UpdateAttributes { attributes } => attributes
            .iter()
            .find(|a| (a.name == "email" || a.name == "phone_number") && a.value != event.user_key)
            .map(|a| a.value.as_str()),
        _ => None,
    }
}

async fn with_retry<T, F, Fut>(
    cfg: &ApplyConfig,
    pacer: &Pacer,
    tally: &Tally,
    category: Category,
    f: F,
) -> Result<T, ApplyError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApplyError>>,
{
    let mut f = f;
    let policy = ExponentialBuilder::default()
        .with_min_delay(cfg.min_backoff)
        .with_max_delay(cfg.max_backoff)
        .with_max_times(cfg.max_retries)
        .with_jitter();
    use std::sync::atomic::Ordering::Relaxed;
    (|| {
        let fut = f();
        async move {
            pacer.acquire(category).await;
            let r = fut.await;
            if matches!(r, Err(ApplyError::Throttled(_))) {
                tally.throttled.fetch_add(1, Relaxed);
            }
            r
        }
    })
    .retry(policy)
    .sleep(tokio::time::sleep)
    .when(ApplyError::is_retryable)
    .notify(|_, _| {
        tally.retries.fetch_add(1, Relaxed);
    })
    .await
}

fn store_error(e: StoreError) -> ApplyError {
    ApplyError::Retryable(e.to_string())
}

/// Applies one (verified) event to the target pool: only the part newer than the user's
/// high-water marks, which advance once it is applied.
pub async fn apply<D: UserDirectory, S: StateStore>(
    event: &Event,
    dir: &D,
    store: &S,
    keys: &Keyring,
    pacer: &Pacer,
    cfg: &ApplyConfig,
) -> Result<Outcome, ApplyError> {
    apply_tallied(event, dir, store, keys, pacer, cfg, &Tally::default()).await
}

/// `apply`, counting its retries and throttled attempts in `tally`.
pub async fn apply_tallied<D: UserDirectory, S: StateStore>(
    event: &Event,
    dir: &D,
    store: &S,
    keys: &Keyring,
    pacer: &Pacer,
    cfg: &ApplyConfig,
    tally: &Tally,
) -> Result<Outcome, ApplyError> {
    let key = record_key(&event.user_key);
    let record = store.load(&key).await.map_err(store_error)?.record;
    let Some(change) = record.fresh(event) else {
        return Ok(Outcome::Stale);
    };
    let password = match sealed_password(&change) {
        Some(sealed) => {
            let plain = keys
                .open(sealed, event.id.as_bytes())
                .map_err(|e| match e {
                    // A key rotated in at the origin: retryable, the keyring is re-read.
                    wire::seal::SealError::UnknownKey(_) => ApplyError::UnknownKey(e.to_string()),
                    other => ApplyError::Permanent(format!("cannot open sealed password: {other}")),
                })?;
            Some(Password(String::from_utf8(plain).map_err(|_| {
                ApplyError::Permanent("sealed password is not UTF-8".into())
            })?))
        }
        None => None,
    };
    let verifies = match (
        &record.confirm_verifies,
        record.marks.contains_key("exists"),
    ) {
        (Some(a), _) => ConfirmVerifies::Attribute(a),
        (None, true) => ConfirmVerifies::Nothing,
        (None, false) => ConfirmVerifies::Unknown,
    };
    let mut state = with_retry(cfg, pacer, tally, Category::UserRead, || {
        dir.get_user(&event.user_key)
    })
    .await?;
    if state.is_none() {
        if let Some(alt) = alternate_key(event) {
            state = with_retry(cfg, pacer, tally, Category::UserRead, || dir.get_user(alt)).await?;
        }
    }
    let srp_password = password.clone();
    let (steps, outcome) = plan(event, &change, state.as_ref(), password, verifies, cfg)?;
    let mut username = state.map(|s| s.username);
    for step in &steps {
        match step {
            Step::Create { attributes } => {
                let created = with_retry(cfg, pacer, tally, step.category(), || {
                    dir.create_user(&event.user_key, attributes)
                })
                .await?;
                username = Some(created.username);
            }
            other => {
                let user = username.as_deref().ok_or_else(|| missing(event))?;
                with_retry(cfg, pacer, tally, other.category(), || dir.run(user, other)).await?;
            }
        }
    }
    let order = event.order();
    // The standby sign-in bridge's verifier, from the password just set (derived once, outside
    // the conditional-write loop).
    let material = match (&srp_password, &cfg.app_pool_id, &username) {
        (Some(pw), Some(app), Some(user)) if *app != event.target_pool => Some(
            crate::state::SrpMaterial::derive(keys, &key, app, &event.user_key, user, &pw.0),
        ),
        _ => None,
    };
    // A placeholder for a sign-up the origin has not confirmed: what finishing it here needs.
    let pending = pending_sign_up(&change, &steps, srp_password.as_ref(), keys, &key);
    // The origin holds the password it sent: a sign-in with it here need not send it back.
    let fp = srp_password
        .as_ref()
        .map(|pw| crate::state::material_fp(keys, &event.user_key, &pw.0));
    // Material sent from a sign-in: the origin issued tokens on the password alone, so the
    // user had no second factor there (an unknown MFA state becomes a known "off").
    // A replicated TOTP secret, re-sealed at rest for this record.
    let totp = match &change {
        Change::TotpSecret { sealed_secret } => {
            let plain = keys.open(sealed_secret, event.id.as_bytes()).map_err(|e| {
                ApplyError::Permanent(format!("cannot open the sealed TOTP secret: {e}"))
            })?;
            let secret = String::from_utf8(plain)
                .map_err(|_| ApplyError::Permanent("the TOTP secret is not UTF-8".into()))?;
            Some(crate::state::seal_totp(keys, &key, &secret))
        }
        _ => None,
    };
    let signed_in_without_mfa = event.no_mfa
        || (event.action == "InitiateAuth" && matches!(change, Change::SetPassword { .. }));
    // A change of the sign-in alias (alias pools): the record under the old key keeps no
    // verifier or fingerprint (the address may go to someone else), and the new key's record
    // learns the user's MFA state (`follow_alias` below).
    let new_alias_key = crate::state::alias_change(&change, &event.user_key, &cfg.alias_attributes);
    update(store, &key, |r| {
        r.advance(&change, &order);
        if signed_in_without_mfa && r.mfa.is_none() {
            r.mfa = Some(false);
        }
        if new_alias_key.is_some() {
            r.srp = None;
            r.material_fp = None;
        }
        if totp.is_some() {
            r.totp.clone_from(&totp);
        }
        if let Some(m) = &material {
            r.srp = Some(m.clone());
        }
        if fp.is_some() {
            r.material_fp.clone_from(&fp);
        }
        if pending.is_some() {
            r.pending_sign_up.clone_from(&pending);
        }
        r.attempts.remove(&event.id);
    })
    .await
    .map_err(|e| {
        ApplyError::Retryable(format!(
            "applied, but the high-water mark was not recorded: {e}"
        ))
    })?;
    if let Some(new_key) = new_alias_key {
        // An attribute change leaves the MFA state as it was loaded above: no second read.
        crate::state::follow_alias(store, &new_key, record.mfa)
            .await
            .map_err(|e| {
                ApplyError::Retryable(format!(
                    "applied, but the new sign-in alias's record was not written: {e}"
                ))
            })?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EVENT_VERSION;
    use crate::state::MemoryStore;
    use serde_json::json;
    use std::collections::HashMap;
    use std::sync::Mutex;

    fn event(change: Change) -> Event {
        Event {
            v: EVENT_VERSION,
            id: "e1".into(),
            origin_region: "a".into(),
            origin_pool: "a_1".into(),
            target_pool: "b_1".into(),
            action: "X".into(),
            user_key: "alice".into(),
            origin_username: None,
            origin_sub: Some("sub-a".into()),
            origin_time_ms: 0,
            no_mfa: false,
            change,
        }
    }
    fn user(status: &str, enabled: bool, attrs: &[(&str, &str)]) -> UserState {
        UserState {
            username: "alice".into(),
            status: crate::UserStatus::parse(status),
            enabled,
            attributes: attrs
                .iter()
                .map(|(n, v)| Attr {
                    name: (*n).into(),
                    value: (*v).into(),
                })
                .collect(),
        }
    }
    fn pw() -> Option<Password> {
        Some(Password("pw".into()))
    }
    /// `plan` over the whole change of `ev`.
    fn plan_all(
        ev: &Event,
        state: Option<&UserState>,
        password: Option<Password>,
        verifies: ConfirmVerifies<'_>,
        cfg: &ApplyConfig,
    ) -> Result<(Vec<Step>, Outcome), ApplyError> {
        plan(ev, &ev.change, state, password, verifies, cfg)
    }
    fn create(sealed: Option<String>) -> Change {
        Change::CreateUser {
            attributes: vec![],
            sealed_password: sealed,
            confirm_verifies: None,
        }
    }

    #[test]
    fn a_revoked_token_is_recorded_and_signs_out_only_when_it_is_of_this_pool() {
        let cfg = ApplyConfig::standard();
        let revoke = |pool: &str| {
            event(Change::RevokeToken {
                token_id: "t1".into(),
                pool: pool.into(),
            })
        };
        let alice = user("CONFIRMED", true, &[]);
        for state in [None, Some(&alice)] {
            let got = plan_all(&revoke("a_1"), state, None, ConfirmVerifies::Unknown, &cfg);
            assert_eq!(got.unwrap(), (vec![], Outcome::Applied));
        }
        let got = plan_all(
            &revoke("b_1"),
            Some(&alice),
            None,
            ConfirmVerifies::Unknown,
            &cfg,
        );
        assert_eq!(got.unwrap(), (vec![Step::GlobalSignOut], Outcome::Applied));
    }

    #[test]
    fn sign_up_creates_a_disabled_user_with_the_password_and_origin_sub() {
        let cfg = ApplyConfig {
            origin_sub_attribute: Some("custom:origin_sub".into()),
            ..ApplyConfig::standard()
        };
        let ev = event(create(Some(String::new())));
        let (steps, _) = plan_all(&ev, None, pw(), ConfirmVerifies::Nothing, &cfg).unwrap();
        assert_eq!(
            steps,
            vec![
                Step::Create {
                    attributes: vec![Attr {
                        name: "custom:origin_sub".into(),
                        value: "sub-a".into()
                    }]
                },
                Step::SetEnabled(false),
                Step::SetPassword(Password("pw".into()))
            ]
        );
        // Re-delivered after the confirmation applied: nothing may undo it.
        let (steps, outcome) = plan_all(
            &ev,
            Some(&user("CONFIRMED", true, &[])),
            pw(),
            ConfirmVerifies::Nothing,
            &cfg,
        )
        .unwrap();
        assert_eq!((steps, outcome), (vec![], Outcome::AlreadyApplied));
        // Interrupted after AdminCreateUser: finish it.
        let (steps, _) = plan_all(
            &ev,
            Some(&user("FORCE_CHANGE_PASSWORD", true, &[])),
            pw(),
            ConfirmVerifies::Nothing,
            &cfg,
        )
        .unwrap();
        assert_eq!(
            steps,
            vec![
                Step::SetEnabled(false),
                Step::SetPassword(Password("pw".into()))
            ]
        );
    }

    #[test]
    fn a_newer_sign_up_from_the_peer_replaces_an_unconfirmed_user_never_a_confirmed_one() {
        let cfg = ApplyConfig::standard();
        let ev = event(create(Some(String::new())));
        let (steps, outcome) = plan_all(
            &ev,
            Some(&user("UNCONFIRMED", true, &[])),
            pw(),
            ConfirmVerifies::Nothing,
            &cfg,
        )
        .unwrap();
        assert_eq!(
            (steps, outcome),
            (
                vec![
                    Step::Delete,
                    Step::Create { attributes: vec![] },
                    Step::SetEnabled(false),
                    Step::SetPassword(Password("pw".into()))
                ],
                Outcome::Applied
            )
        );
        for confirmed in [user("CONFIRMED", true, &[]), user("CONFIRMED", false, &[])] {
            assert_eq!(
                plan_all(&ev, Some(&confirmed), pw(), ConfirmVerifies::Nothing, &cfg).unwrap(),
                (vec![], Outcome::AlreadyApplied),
                "a sign-up never changes a confirmed user (nor its password)"
            );
        }
    }

    #[test]
    fn a_passwordless_sign_up_is_created_disabled_without_a_password() {
        let cfg = ApplyConfig::standard();
        let (steps, _) = plan_all(
            &event(create(None)),
            None,
            None,
            ConfirmVerifies::Nothing,
            &cfg,
        )
        .unwrap();
        assert_eq!(
            steps,
            vec![Step::Create { attributes: vec![] }, Step::SetEnabled(false)]
        );
    }

    #[test]
    fn confirm_enables_and_verifies_only_what_the_origin_verified() {
        let cfg = ApplyConfig::standard();
        let ev = event(Change::Confirm);
        let both = user(
            "CONFIRMED",
            false,
            &[("email", "a@x.io"), ("phone_number", "+15550100")],
        );
        let (steps, _) = plan_all(
            &ev,
            Some(&both),
            None,
            ConfirmVerifies::Attribute("email"),
            &cfg,
        )
        .unwrap();
        assert_eq!(
            steps,
            vec![
                Step::UpdateAttributes(vec![Attr {
                    name: "email_verified".into(),
                    value: "true".into()
                }]),
                Step::SetEnabled(true)
            ]
        );
        let (steps, _) = plan_all(
            &ev,
            Some(&both),
            None,
            ConfirmVerifies::Attribute("phone_number"),
            &cfg,
        )
        .unwrap();
        assert_eq!(
            steps,
            vec![
                Step::UpdateAttributes(vec![Attr {
                    name: "phone_number_verified".into(),
                    value: "true".into()
                }]),
                Step::SetEnabled(true)
            ]
        );
        // The origin sent no code: nothing verified; not known: nothing invented, and said so.
        assert_eq!(
            plan_all(&ev, Some(&both), None, ConfirmVerifies::Nothing, &cfg).unwrap(),
            (vec![Step::SetEnabled(true)], Outcome::Applied)
        );
        assert_eq!(
            plan_all(&ev, Some(&both), None, ConfirmVerifies::Unknown, &cfg).unwrap(),
            (
                vec![Step::SetEnabled(true)],
                Outcome::Partial("verified-flags-unknown")
            )
        );
        let done = user(
            "CONFIRMED",
            true,
            &[("email", "a@x.io"), ("email_verified", "true")],
        );
        assert_eq!(
            plan_all(
                &ev,
                Some(&done),
                None,
                ConfirmVerifies::Attribute("email"),
                &cfg
            )
            .unwrap(),
            (vec![], Outcome::AlreadyApplied)
        );
    }

    #[test]
    fn deletes_of_missing_users_succeed_other_changes_wait_for_the_user() {
        let cfg = ApplyConfig::standard();
        assert_eq!(
            plan_all(
                &event(Change::Delete),
                None,
                None,
                ConfirmVerifies::Nothing,
                &cfg
            )
            .unwrap()
            .1,
            Outcome::AlreadyApplied
        );
        assert!(
            matches!(plan_all(&event(Change::Confirm), None, None, ConfirmVerifies::Nothing, &cfg), Err(ApplyError::Retryable(r)) if r.contains("does not exist"))
        );
    }

    #[test]
    fn totp_preference_is_not_copied_and_says_so() {
        let cfg = ApplyConfig::standard();
        let ev = event(Change::MfaPreference {
            settings: json!({"SoftwareTokenMfaSettings":{"Enabled":true},"SMSMfaSettings":{"Enabled":true}}),
        });
        let (steps, outcome) = plan_all(
            &ev,
            Some(&user("CONFIRMED", true, &[])),
            None,
            ConfirmVerifies::Nothing,
            &cfg,
        )
        .unwrap();
        assert_eq!(
            steps,
            vec![Step::SetMfa(json!({"SMSMfaSettings":{"Enabled":true}}))]
        );
        assert_eq!(outcome, Outcome::Partial("totp"));
    }

    #[test]
    fn attribute_changes_replay_exactly_what_the_origin_did() {
        let cfg = ApplyConfig::standard();
        let now = user(
            "CONFIRMED",
            true,
            &[
                ("email", "old@x.io"),
                ("email_verified", "true"),
                ("phone_number", "+1"),
            ],
        );
        let attrs = vec![Attr {
            name: "phone_number".into(),
            value: "+2".into(),
        }];
        let ev = event(Change::UpdateAttributes {
            attributes: attrs.clone(),
        });
        let (steps, _) = plan_all(&ev, Some(&now), None, ConfirmVerifies::Nothing, &cfg).unwrap();
        assert_eq!(
            steps,
            vec![Step::UpdateAttributes(attrs)],
            "no phone_number_verified invented"
        );
    }

    #[test]
    fn an_unverified_address_change_is_replayed_without_a_message_from_this_pool() {
        let cfg = ApplyConfig::standard();
        let now = user(
            "CONFIRMED",
            true,
            &[("email", "old@x.io"), ("email_verified", "true")],
        );
        let attr = |n: &str, v: &str| Attr {
            name: n.into(),
            value: v.into(),
        };
        let ev = event(Change::UpdateAttributes {
            attributes: vec![
                attr("email", "new@x.io"),
                attr("name", "Grace"),
                attr("email_verified", "false"),
            ],
        });
        let (steps, _) = plan_all(&ev, Some(&now), None, ConfirmVerifies::Nothing, &cfg).unwrap();
        assert_eq!(
            steps,
            vec![
                Step::UpdateAttributes(vec![
                    attr("email", "new@x.io"),
                    attr("name", "Grace"),
                    attr("email_verified", "true"),
                ]),
                Step::UpdateAttributes(vec![attr("email_verified", "false")]),
            ],
            "the first call carries the flag \"true\" (Cognito sends no code), the second the origin's"
        );
        // A flag alone (no address in the call) never triggers a message: one call.
        let ev = event(Change::UpdateAttributes {
            attributes: vec![attr("email_verified", "false")],
        });
        let (steps, _) = plan_all(&ev, Some(&now), None, ConfirmVerifies::Nothing, &cfg).unwrap();
        assert_eq!(
            steps,
            vec![Step::UpdateAttributes(vec![attr(
                "email_verified",
                "false"
            )])]
        );
    }

    #[test]
    fn password_debug_is_redacted() {
        assert!(
            !format!("{:?}", Step::SetPassword(Password("hunter2".into()))).contains("hunter2")
        );
    }

    /// An in-memory pool that throttles the first `throttle` calls.
    #[derive(Default)]
    struct Fake {
        users: Mutex<HashMap<String, UserState>>,
        calls: Mutex<Vec<String>>,
        throttle: Mutex<usize>,
    }
    impl Fake {
        fn gate(&self, what: &str) -> Result<(), ApplyError> {
            self.calls.lock().unwrap().push(what.into());
            let mut t = self.throttle.lock().unwrap();
            if *t > 0 {
                *t -= 1;
                return Err(ApplyError::Throttled("TooManyRequestsException".into()));
            }
            Ok(())
        }
    }
    impl UserDirectory for Fake {
        async fn get_user(&self, key: &str) -> Result<Option<UserState>, ApplyError> {
            self.gate("get")?;
            Ok(self.users.lock().unwrap().get(key).cloned())
        }
        async fn create_user(
            &self,
            key: &str,
            attributes: &[Attr],
        ) -> Result<UserState, ApplyError> {
            self.gate("create")?;
            let u = UserState {
                username: key.into(),
                status: crate::UserStatus::ForceChangePassword,
                enabled: true,
                attributes: attributes.to_vec(),
            };
            Ok(self
                .users
                .lock()
                .unwrap()
                .entry(key.into())
                .or_insert(u)
                .clone())
        }
        async fn run(&self, username: &str, step: &Step) -> Result<(), ApplyError> {
            self.gate("run")?;
            let mut users = self.users.lock().unwrap();
            let u = users.get_mut(username).unwrap();
            match step {
                Step::SetPassword(_) => u.status = crate::UserStatus::Confirmed,
                Step::SetEnabled(e) => u.enabled = *e,
                _ => {}
            }
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn apply_retries_throttling_and_is_idempotent() {
        let keys = Keyring::single("k1", [1; 32]);
        let ev = event(create(Some(keys.seal(b"pw", b"e1"))));
        let fake = Fake {
            throttle: Mutex::new(3),
            ..Default::default()
        };
        let pacer = Pacer::defaults();
        let cfg = ApplyConfig::standard();
        let store = MemoryStore::default();
        assert_eq!(
            apply(&ev, &fake, &store, &keys, &pacer, &cfg)
                .await
                .unwrap(),
            Outcome::Applied
        );
        let u = fake.users.lock().unwrap()["alice"].clone();
        assert_eq!((u.status.as_str(), u.enabled), ("CONFIRMED", false));
        assert_eq!(
            apply(&ev, &fake, &store, &keys, &pacer, &cfg)
                .await
                .unwrap(),
            Outcome::Stale,
            "a duplicate is skipped by the mark"
        );
        assert_eq!(
            apply(&ev, &fake, &MemoryStore::default(), &keys, &pacer, &cfg)
                .await
                .unwrap(),
            Outcome::AlreadyApplied,
            "and idempotent without it"
        );
        // A password sealed for another event is refused.
        let mut forged = ev.clone();
        forged.id = "e2".into();
        forged.origin_time_ms = 5;
        let fresh = MemoryStore::default();
        fake.users.lock().unwrap().clear();
        assert!(matches!(
            apply(&forged, &fake, &fresh, &keys, &pacer, &cfg).await,
            Err(ApplyError::Permanent(_))
        ));
        // Sealed under a key rotated in after this keyring was read: retryable, names the cause.
        let newer = Keyring::single("k2", [9; 32]);
        let rotated = event(create(Some(newer.seal(b"pw", b"e1"))));
        assert!(matches!(
            apply(&rotated, &fake, &fresh, &keys, &pacer, &cfg).await,
            Err(ApplyError::UnknownKey(_))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn apply_gives_up_after_bounded_retries() {
        let keys = Keyring::single("k1", [1; 32]);
        let fake = Fake {
            throttle: Mutex::new(1000),
            ..Default::default()
        };
        let err = apply(
            &event(Change::Delete),
            &fake,
            &MemoryStore::default(),
            &keys,
            &Pacer::defaults(),
            &ApplyConfig::standard(),
        )
        .await
        .unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(fake.calls.lock().unwrap().len(), 6, "1 try + 5 retries");
    }
}

#[cfg(test)]
mod stale_tests {
    use super::*;
    use crate::event::EVENT_VERSION;
    use crate::state::MemoryStore;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A pool that records passwords and attributes, to see which value wins.
    #[derive(Default)]
    struct Pool(Mutex<HashMap<String, (UserState, String)>>);
    impl UserDirectory for Pool {
        async fn get_user(&self, key: &str) -> Result<Option<UserState>, ApplyError> {
            Ok(self.0.lock().unwrap().get(key).map(|(u, _)| u.clone()))
        }
        async fn create_user(
            &self,
            key: &str,
            attributes: &[Attr],
        ) -> Result<UserState, ApplyError> {
            let u = UserState {
                username: key.into(),
                status: crate::UserStatus::ForceChangePassword,
                enabled: true,
                attributes: attributes.to_vec(),
            };
            Ok(self
                .0
                .lock()
                .unwrap()
                .entry(key.into())
                .or_insert((u, String::new()))
                .0
                .clone())
        }
        async fn run(&self, username: &str, step: &Step) -> Result<(), ApplyError> {
            let mut m = self.0.lock().unwrap();
            match step {
                Step::Delete => {
                    m.remove(username);
                }
                Step::SetPassword(p) => m.get_mut(username).unwrap().1 = p.0.clone(),
                _ => {}
            }
            Ok(())
        }
    }

    fn ev(ms: u64, change: impl Fn(&str) -> Change) -> Event {
        let id = format!("e{ms}");
        Event {
            v: EVENT_VERSION,
            change: change(&id),
            id,
            origin_region: "a".into(),
            origin_pool: "a_1".into(),
            target_pool: "b_1".into(),
            action: "X".into(),
            user_key: "alice".into(),
            origin_username: None,
            origin_sub: None,
            origin_time_ms: ms,
            no_mfa: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_password_or_sign_up_never_wins() {
        let keys = Keyring::single("k1", [1; 32]);
        let (pool, store, pacer, cfg) = (
            Pool::default(),
            MemoryStore::default(),
            Pacer::defaults(),
            ApplyConfig::standard(),
        );
        let sign_up = ev(10, |id| Change::CreateUser {
            attributes: vec![],
            sealed_password: Some(keys.seal(b"first", id.as_bytes())),
            confirm_verifies: None,
        });
        let old = ev(20, |id| Change::SetPassword {
            sealed_password: keys.seal(b"compromised", id.as_bytes()),
        });
        let new = ev(30, |id| Change::SetPassword {
            sealed_password: keys.seal(b"fresh", id.as_bytes()),
        });
        for e in [&sign_up, &old, &new] {
            apply(e, &pool, &store, &keys, &pacer, &cfg).await.unwrap();
        }
        assert_eq!(
            apply(&old, &pool, &store, &keys, &pacer, &cfg)
                .await
                .unwrap(),
            Outcome::Stale
        );
        assert_eq!(pool.0.lock().unwrap()["alice"].1, "fresh");
        apply(
            &ev(40, |_| Change::Delete),
            &pool,
            &store,
            &keys,
            &pacer,
            &cfg,
        )
        .await
        .unwrap();
        assert_eq!(
            apply(&sign_up, &pool, &store, &keys, &pacer, &cfg)
                .await
                .unwrap(),
            Outcome::Stale
        );
        assert!(
            pool.0.lock().unwrap().is_empty(),
            "a redriven sign-up does not resurrect a deleted user"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn passwords_yield_a_sealed_srp_verifier_for_the_app_pool_gone_with_the_user() {
        use crate::state::{record_key, StateStore};
        let keys = Keyring::single("k1", [1; 32]);
        let (pool, store, pacer) = (Pool::default(), MemoryStore::default(), Pacer::defaults());
        let mut cfg = ApplyConfig::standard();
        cfg.app_pool_id = Some("eu-west-1_AppPool".into());
        let sign_up = ev(10, |id| Change::CreateUser {
            attributes: vec![],
            sealed_password: Some(keys.seal(b"first-Pass1", id.as_bytes())),
            confirm_verifies: None,
        });
        apply(&sign_up, &pool, &store, &keys, &pacer, &cfg)
            .await
            .unwrap();
        let rk = record_key("alice");
        let rec = store.load(&rk).await.unwrap().record;
        let m = rec.srp.clone().expect("material after sign-up");
        assert_eq!(
            (m.pool.as_str(), m.user_id.as_str(), m.username.as_str()),
            ("eu-west-1_AppPool", "alice", "alice")
        );
        assert!(!m.sealed.contains("first"), "sealed at rest");
        let secret = m
            .open(&keys, &rk)
            .expect("opens with the replication keyring");
        let expect = wire::srp::verifier("AppPool", "alice", "first-Pass1", &secret.salt);
        assert_eq!(
            wire::srp::int_hex(&secret.verifier),
            wire::srp::int_hex(&expect)
        );
        assert!(
            m.open(&keys, &record_key("bob")).is_none(),
            "bound to its record"
        );
        assert!(m.open(&Keyring::single("k1", [2; 32]), &rk).is_none());
        // A password change replaces it.
        let change = ev(20, |id| Change::SetPassword {
            sealed_password: keys.seal(b"second-Pass2", id.as_bytes()),
        });
        apply(&change, &pool, &store, &keys, &pacer, &cfg)
            .await
            .unwrap();
        let rec2 = store.load(&rk).await.unwrap().record;
        assert_eq!(
            rec2.material_fp.as_deref(),
            Some(crate::state::material_fp(&keys, "alice", "second-Pass2").as_str()),
            "a sign-in here with the password the origin sent is not sent back"
        );
        let m2 = rec2.srp.unwrap();
        let s2 = m2.open(&keys, &rk).unwrap();
        let expect2 = wire::srp::verifier("AppPool", "alice", "second-Pass2", &s2.salt);
        assert_eq!(
            wire::srp::int_hex(&s2.verifier),
            wire::srp::int_hex(&expect2)
        );
        // MFA turned on is remembered; deletion removes the material.
        let mfa = ev(25, |_| Change::MfaPreference {
            settings: serde_json::json!({"SMSMfaSettings": {"Enabled": true}}),
        });
        apply(&mfa, &pool, &store, &keys, &pacer, &cfg)
            .await
            .unwrap();
        assert_eq!(store.load(&rk).await.unwrap().record.mfa, Some(true));
        // A confirmed TOTP enrolment is kept sealed for the bridge (no Admin API sets one).
        let totp = ev(27, |id| Change::TotpSecret {
            sealed_secret: keys.seal(b"JBSWY3DPEHPK3PXP", id.as_bytes()),
        });
        apply(&totp, &pool, &store, &keys, &pacer, &cfg)
            .await
            .unwrap();
        let sealed = store.load(&rk).await.unwrap().record.totp.expect("kept");
        assert!(!sealed.contains("JBSWY3DP"), "sealed at rest");
        assert_eq!(
            crate::state::open_totp(&keys, &rk, &sealed).as_deref(),
            Some("JBSWY3DPEHPK3PXP")
        );
        assert!(crate::state::open_totp(&keys, &record_key("bob"), &sealed).is_none());
        apply(
            &ev(30, |_| Change::Delete),
            &pool,
            &store,
            &keys,
            &pacer,
            &cfg,
        )
        .await
        .unwrap();
        let gone = store.load(&rk).await.unwrap().record;
        assert!(gone.srp.is_none() && gone.mfa.is_none() && gone.material_fp.is_none());
        assert!(gone.totp.is_none(), "the authenticator goes with the user");
        assert!(gone.pending_sign_up.is_none());
        // Without an app pool (or when the target is the app pool) nothing is derived.
        let store2 = MemoryStore::default();
        apply(
            &sign_up,
            &Pool::default(),
            &store2,
            &keys,
            &pacer,
            &ApplyConfig::standard(),
        )
        .await
        .unwrap();
        assert!(store2.load(&rk).await.unwrap().record.srp.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_replicated_sign_up_keeps_what_finishing_it_needs_until_it_is_confirmed() {
        use crate::pending::PendingSignUp;
        use crate::state::{record_key, StateStore};
        let keys = Keyring::single("k1", [1; 32]);
        let (pool, store, pacer, cfg) = (
            Pool::default(),
            MemoryStore::default(),
            Pacer::defaults(),
            ApplyConfig::standard(),
        );
        let email = Attr {
            name: "email".into(),
            value: "a@x.io".into(),
        };
        let sign_up = ev(10, |id| Change::CreateUser {
            attributes: vec![email.clone()],
            sealed_password: Some(keys.seal(b"first-Pass1", id.as_bytes())),
            confirm_verifies: Some("email".into()),
        });
        apply(&sign_up, &pool, &store, &keys, &pacer, &cfg)
            .await
            .unwrap();
        let rk = record_key("alice");
        let sealed = store
            .load(&rk)
            .await
            .unwrap()
            .record
            .pending_sign_up
            .expect("a placeholder keeps its sign-up");
        assert!(!sealed.contains("first-Pass1") && !sealed.contains("a@x.io"));
        let p = PendingSignUp::open(&keys, &rk, &sealed).unwrap();
        assert!(p.password_is("first-Pass1"));
        assert_eq!(p.attributes, vec![email]);
        // The origin confirms: an ordinary user again, never to be replaced.
        apply(
            &ev(20, |_| Change::Confirm),
            &pool,
            &store,
            &keys,
            &pacer,
            &cfg,
        )
        .await
        .unwrap();
        assert!(store
            .load(&rk)
            .await
            .unwrap()
            .record
            .pending_sign_up
            .is_none());
        // A local sign-up (the proxy's marks) clears it too.
        let mut r = crate::state::UserRecord {
            pending_sign_up: Some(sealed),
            ..Default::default()
        };
        r.advance(&sign_up.change, &ev(30, |_| Change::Confirm).order());
        assert!(r.pending_sign_up.is_none());
    }
}
