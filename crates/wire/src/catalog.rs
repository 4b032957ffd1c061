//! The action catalog: one row per Cognito user-pool action an app may call through the relay,
//! the single source of the action's wire shape (where its secret goes, whether it takes a
//! client id and user context, where a refresh token sits, what it mutates and from which
//! request fields, as JSON pointers).
//!
//! Adding an action that changes nothing: its row here, and its case in this file's tests.
//!
//! Adding a **mutating** action touches exactly these places:
//! 1. its row here, with `mutates(.., Mutation::X)` (a new `Mutation` variant only when no
//!    existing one describes the change; its request fields as JSON pointers);
//! 2. `replication::build_change` — the `Change` built from the request and the answer (only
//!    for a new `Mutation` variant);
//! 3. its replay: `replication::plan` (the Admin steps for the `Change`) and, for a new
//!    `Step`, the adapter call in `relay_aws::cognito` (`UserDirectory::run`);
//! 4. its row in the replay table of `docs/replication-events.md` (a test here checks that
//!    every mutating row is named there);
//! 5. its tests: the row's test here, and `build_change`/`plan` tests for a new variant.

use crate::WireError;

pub const TARGET_PREFIX: &str = "AWSCognitoIdentityProviderService.";

/// Where the action takes the app client's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretPlacement {
    /// No client secret involved (token-authorized actions).
    None,
    /// Top-level `SecretHash`, computed over top-level `Username`.
    TopLevel,
    /// `AuthParameters.SECRET_HASH` (InitiateAuth).
    AuthParameters,
    /// `ChallengeResponses.SECRET_HASH` over `ChallengeResponses.USERNAME`.
    ChallengeResponses,
    /// The raw secret in `ClientSecret` (RevokeToken, GetTokensFromRefreshToken).
    ClientSecret,
}

/// Where a request carries a refresh token (which the relay may have sealed: `prepare` opens
/// it there). Locations are JSON pointers into the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshTokenAt {
    /// The action takes no refresh token.
    Nowhere,
    /// Always at this pointer (`/Token`, `/RefreshToken`).
    Always(&'static str),
    /// At this pointer when `AuthFlow` is a refresh flow (InitiateAuth's
    /// `/AuthParameters/REFRESH_TOKEN`).
    InRefreshFlow(&'static str),
}

/// What a successful call changes about the user, i.e. what must be replicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// A new user: its attributes (a list of `{Name, Value}`) and its password (absent in
    /// passwordless sign-ups) at these JSON pointers.
    SignUp {
        attributes: &'static str,
        password: &'static str,
    },
    ConfirmSignUp,
    /// A new password at the JSON pointer (into the request).
    SetPassword(&'static str),
    /// Only the `NEW_PASSWORD_REQUIRED` answer of RespondToAuthChallenge sets a password: the
    /// new password at the JSON pointer.
    ChallengeNewPassword(&'static str),
    /// Attributes set (a list of `{Name, Value}`) at the JSON pointer.
    UpdateAttributes(&'static str),
    /// Attribute names deleted (a list of strings) at the JSON pointer.
    DeleteAttributes(&'static str),
    /// The name of the attribute verified at the JSON pointer.
    VerifyAttribute(&'static str),
    /// MFA preference objects, each at its JSON pointer (the last segment names it).
    MfaPreference(&'static [&'static str]),
    /// The legacy MFA options list at the JSON pointer.
    Settings(&'static str),
    DeleteUser,
    GlobalSignOut,
    /// A refresh token revoked (RevokeToken). Not on a catalog row: the token id is inside the
    /// relay-sealed token, so the proxy builds this change itself (`{"TokenId","Pool"}`).
    RevokeToken,
    /// A TOTP authenticator confirmed (VerifySoftwareToken after AssociateSoftwareToken). Not
    /// on a catalog row: the secret is in Associate's *answer*, kept sealed until Verify
    /// succeeds, so the proxy builds this change itself (`{"SecretCode"}`).
    TotpSecret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionSpec {
    pub name: &'static str,
    pub secret: SecretPlacement,
    /// Takes `ClientId` (which the relay maps to the regional client).
    pub client_id: bool,
    /// Accepts `UserContextData` (so the caller's IP is propagated).
    pub user_context: bool,
    pub mutation: Option<Mutation>,
    /// The response may carry `AuthenticationResult.RefreshToken`.
    pub issues_tokens: bool,
    /// Where the request carries a refresh token.
    pub refresh_token: RefreshTokenAt,
}

const fn row(name: &'static str, secret: SecretPlacement) -> ActionSpec {
    ActionSpec {
        name,
        secret,
        client_id: !matches!(secret, SecretPlacement::None),
        user_context: false,
        mutation: None,
        issues_tokens: false,
        refresh_token: RefreshTokenAt::Nowhere,
    }
}
const fn ctx(mut a: ActionSpec) -> ActionSpec {
    a.user_context = true;
    a
}
const fn mutates(mut a: ActionSpec, m: Mutation) -> ActionSpec {
    a.mutation = Some(m);
    a
}
const fn tokens(mut a: ActionSpec) -> ActionSpec {
    a.issues_tokens = true;
    a
}
const fn refresh(mut a: ActionSpec, at: RefreshTokenAt) -> ActionSpec {
    a.refresh_token = at;
    a
}

use Mutation as M;
use RefreshTokenAt as R;
use SecretPlacement as S;

/// Every non-Admin user-pool action an app can call. Everything else is refused.
pub static CATALOG: &[ActionSpec] = &[
    // Sign-in.
    refresh(
        tokens(ctx(row("InitiateAuth", S::AuthParameters))),
        R::InRefreshFlow("/AuthParameters/REFRESH_TOKEN"),
    ),
    tokens(ctx(mutates(
        row("RespondToAuthChallenge", S::ChallengeResponses),
        M::ChallengeNewPassword("/ChallengeResponses/NEW_PASSWORD"),
    ))),
    refresh(
        tokens(row("GetTokensFromRefreshToken", S::ClientSecret)),
        R::Always("/RefreshToken"),
    ),
    refresh(row("RevokeToken", S::ClientSecret), R::Always("/Token")),
    // Sign-up and recovery.
    ctx(mutates(
        row("SignUp", S::TopLevel),
        M::SignUp {
            attributes: "/UserAttributes",
            password: "/Password",
        },
    )),
    ctx(mutates(row("ConfirmSignUp", S::TopLevel), M::ConfirmSignUp)),
    ctx(row("ResendConfirmationCode", S::TopLevel)),
    ctx(row("ForgotPassword", S::TopLevel)),
    ctx(mutates(
        row("ConfirmForgotPassword", S::TopLevel),
        M::SetPassword("/Password"),
    )),
    // The signed-in user (access token).
    row("GetUser", S::None),
    mutates(
        row("UpdateUserAttributes", S::None),
        M::UpdateAttributes("/UserAttributes"),
    ),
    mutates(
        row("DeleteUserAttributes", S::None),
        M::DeleteAttributes("/UserAttributeNames"),
    ),
    mutates(
        row("VerifyUserAttribute", S::None),
        M::VerifyAttribute("/AttributeName"),
    ),
    row("GetUserAttributeVerificationCode", S::None),
    mutates(
        row("ChangePassword", S::None),
        M::SetPassword("/ProposedPassword"),
    ),
    mutates(row("DeleteUser", S::None), M::DeleteUser),
    mutates(row("GlobalSignOut", S::None), M::GlobalSignOut),
    mutates(
        row("SetUserMFAPreference", S::None),
        M::MfaPreference(&[
            "/SMSMfaSettings",
            "/SoftwareTokenMfaSettings",
            "/EmailMfaSettings",
        ]),
    ),
    mutates(row("SetUserSettings", S::None), M::Settings("/MFAOptions")),
    row("GetUserAuthFactors", S::None),
    // TOTP: per pool, cannot be replicated (no Admin API sets a TOTP secret).
    row("AssociateSoftwareToken", S::None),
    row("VerifySoftwareToken", S::None),
    // Devices: remembered per pool.
    row("ConfirmDevice", S::None),
    row("ForgetDevice", S::None),
    row("GetDevice", S::None),
    row("ListDevices", S::None),
    row("UpdateDeviceStatus", S::None),
    // Passkeys: bound to the pool's relying party, cannot be replicated.
    row("StartWebAuthnRegistration", S::None),
    row("CompleteWebAuthnRegistration", S::None),
    row("ListWebAuthnCredentials", S::None),
    row("DeleteWebAuthnCredential", S::None),
];

/// Finds the catalog row for an `X-Amz-Target` header value.
pub fn lookup(target: Option<&str>) -> Result<&'static ActionSpec, WireError> {
    let target =
        target.ok_or_else(|| WireError::unknown_operation("Missing X-Amz-Target header"))?;
    let action = target.strip_prefix(TARGET_PREFIX).ok_or_else(|| {
        WireError::unknown_operation("X-Amz-Target is not a Cognito user pool operation")
    })?;
    CATALOG.iter().find(|a| a.name == action).ok_or_else(|| {
        if action.starts_with("Admin") {
            WireError::not_authorized(format!(
                "{action} is an administrative action and is not served by this endpoint"
            ))
        } else {
            WireError::unknown_operation(format!(
                "Operation {} is not supported by this endpoint",
                truncate(action)
            ))
        }
    })
}

fn truncate(s: &str) -> &str {
    let end = s.char_indices().nth(64).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        for (i, a) in CATALOG.iter().enumerate() {
            assert!(
                CATALOG[i + 1..].iter().all(|b| b.name != a.name),
                "duplicate {}",
                a.name
            );
        }
    }

    #[test]
    fn refuses_admin_unknown_and_missing_targets() {
        let admin = lookup(Some("AWSCognitoIdentityProviderService.AdminCreateUser")).unwrap_err();
        assert_eq!(admin.kind, "NotAuthorizedException");
        let pool = lookup(Some("AWSCognitoIdentityProviderService.DeleteUserPool")).unwrap_err();
        assert_eq!(pool.kind, "UnknownOperationException");
        assert!(lookup(Some("AmazonSQS.SendMessage")).is_err());
        assert!(lookup(None).is_err());
        assert_eq!(
            lookup(Some("AWSCognitoIdentityProviderService.SignUp"))
                .unwrap()
                .secret,
            S::TopLevel
        );
    }

    #[test]
    fn user_context_only_where_cognito_accepts_it() {
        let with: Vec<_> = CATALOG
            .iter()
            .filter(|a| a.user_context)
            .map(|a| a.name)
            .collect();
        assert_eq!(
            with,
            [
                "InitiateAuth",
                "RespondToAuthChallenge",
                "SignUp",
                "ConfirmSignUp",
                "ResendConfirmationCode",
                "ForgotPassword",
                "ConfirmForgotPassword"
            ]
        );
    }

    /// The request fields a mutation reads, as the catalog names them.
    fn pointers(m: Mutation) -> Vec<&'static str> {
        match m {
            Mutation::SignUp {
                attributes,
                password,
            } => vec![attributes, password],
            Mutation::SetPassword(p)
            | Mutation::ChallengeNewPassword(p)
            | Mutation::UpdateAttributes(p)
            | Mutation::DeleteAttributes(p)
            | Mutation::VerifyAttribute(p)
            | Mutation::Settings(p) => vec![p],
            Mutation::MfaPreference(ps) => ps.to_vec(),
            Mutation::ConfirmSignUp | Mutation::DeleteUser | Mutation::GlobalSignOut => vec![],
            // Built by the proxy (not read from the app's request): fixed fields.
            Mutation::RevokeToken => vec!["/TokenId", "/Pool"],
            Mutation::TotpSecret => vec!["/SecretCode"],
        }
    }

    #[test]
    fn mutations_read_their_request_fields_through_json_pointers() {
        for row in CATALOG {
            for p in row.mutation.map(pointers).unwrap_or_default() {
                assert!(
                    p.starts_with('/') && p.len() > 1 && !p.ends_with('/'),
                    "{}: {p:?} is not a JSON pointer to a field",
                    row.name
                );
            }
        }
    }

    /// The "from" column of the replay table in `docs/replication-events.md` (the table whose
    /// header starts "| `op` | from |").
    fn documented_sources() -> Vec<String> {
        let doc = include_str!("../../../docs/replication-events.md");
        let table = doc
            .split("| `op` | from |")
            .nth(1)
            .expect("docs/replication-events.md has the replay table");
        table
            .lines()
            .skip(2) // the rest of the header line, and the |---| line
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| l.split('|').nth(2).map(str::to_owned))
            .collect()
    }

    #[test]
    fn the_replay_table_names_every_mutating_action() {
        let sources = documented_sources();
        assert!(sources.len() >= 10, "{sources:?}");
        for a in CATALOG.iter().filter(|a| a.mutation.is_some()) {
            assert!(
                sources.iter().any(|from| from
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|word| word == a.name)),
                "docs/replication-events.md does not say how {} replays",
                a.name
            );
        }
    }

    #[test]
    fn refresh_tokens_sit_where_the_actions_take_them() {
        let at: Vec<_> = CATALOG
            .iter()
            .filter(|a| a.refresh_token != R::Nowhere)
            .map(|a| (a.name, a.refresh_token))
            .collect();
        assert_eq!(
            at,
            [
                (
                    "InitiateAuth",
                    R::InRefreshFlow("/AuthParameters/REFRESH_TOKEN")
                ),
                ("GetTokensFromRefreshToken", R::Always("/RefreshToken")),
                ("RevokeToken", R::Always("/Token")),
            ]
        );
    }

    #[test]
    fn every_secret_bearing_action_takes_a_client_id() {
        for a in CATALOG {
            assert_eq!(a.client_id, a.secret != S::None, "{}", a.name);
        }
    }
}
