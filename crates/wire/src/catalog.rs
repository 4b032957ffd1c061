//! The action catalog: one row per Cognito user-pool action an app may call through the relay.
//! Adding an action means adding one row here (and one test).

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

/// What a successful call changes about the user, i.e. what must be replicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    SignUp,
    ConfirmSignUp,
    /// A new password in the named request field.
    SetPassword(&'static str),
    /// Only the `NEW_PASSWORD_REQUIRED` answer of RespondToAuthChallenge sets a password.
    ChallengeNewPassword,
    UpdateAttributes,
    DeleteAttributes,
    VerifyAttribute,
    MfaPreference,
    Settings,
    DeleteUser,
    GlobalSignOut,
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
    /// The request carries a refresh token (`AuthParameters.REFRESH_TOKEN`, `Token`, `RefreshToken`).
    pub takes_refresh_token: bool,
}

const fn row(name: &'static str, secret: SecretPlacement) -> ActionSpec {
    ActionSpec {
        name,
        secret,
        client_id: !matches!(secret, SecretPlacement::None),
        user_context: false,
        mutation: None,
        issues_tokens: false,
        takes_refresh_token: false,
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
const fn refresh(mut a: ActionSpec) -> ActionSpec {
    a.takes_refresh_token = true;
    a
}

use Mutation as M;
use SecretPlacement as S;

/// Every non-Admin user-pool action an app can call. Everything else is refused.
pub static CATALOG: &[ActionSpec] = &[
    // Sign-in.
    refresh(tokens(ctx(row("InitiateAuth", S::AuthParameters)))),
    tokens(ctx(mutates(
        row("RespondToAuthChallenge", S::ChallengeResponses),
        M::ChallengeNewPassword,
    ))),
    refresh(tokens(row("GetTokensFromRefreshToken", S::ClientSecret))),
    refresh(row("RevokeToken", S::ClientSecret)),
    // Sign-up and recovery.
    ctx(mutates(row("SignUp", S::TopLevel), M::SignUp)),
    ctx(mutates(row("ConfirmSignUp", S::TopLevel), M::ConfirmSignUp)),
    ctx(row("ResendConfirmationCode", S::TopLevel)),
    ctx(row("ForgotPassword", S::TopLevel)),
    ctx(mutates(
        row("ConfirmForgotPassword", S::TopLevel),
        M::SetPassword("Password"),
    )),
    // The signed-in user (access token).
    row("GetUser", S::None),
    mutates(row("UpdateUserAttributes", S::None), M::UpdateAttributes),
    mutates(row("DeleteUserAttributes", S::None), M::DeleteAttributes),
    mutates(row("VerifyUserAttribute", S::None), M::VerifyAttribute),
    row("GetUserAttributeVerificationCode", S::None),
    mutates(
        row("ChangePassword", S::None),
        M::SetPassword("ProposedPassword"),
    ),
    mutates(row("DeleteUser", S::None), M::DeleteUser),
    mutates(row("GlobalSignOut", S::None), M::GlobalSignOut),
    mutates(row("SetUserMFAPreference", S::None), M::MfaPreference),
    mutates(row("SetUserSettings", S::None), M::Settings),
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

    #[test]
    fn every_secret_bearing_action_takes_a_client_id() {
        for a in CATALOG {
            assert_eq!(a.client_id, a.secret != S::None, "{}", a.name);
        }
    }
}
