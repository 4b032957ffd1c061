//! Typed user facts shared by every crate: a user's status in a pool (Cognito's
//! `UserStatusType`) and the attributes a pool lets users sign in with (`UsernameAttributes`).

use std::fmt;

/// Cognito's `UserStatus` (the SDK's `UserStatusType`, mirrored here so `replication` stays
/// free of the SDK). A status this code does not know is kept by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserStatus {
    Unconfirmed,
    Confirmed,
    Archived,
    Compromised,
    Unknown,
    ResetRequired,
    ForceChangePassword,
    ExternalProvider,
    /// A status name newer than this code.
    Other(String),
}

impl UserStatus {
    /// The status's wire name, e.g. `FORCE_CHANGE_PASSWORD`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Unconfirmed => "UNCONFIRMED",
            Self::Confirmed => "CONFIRMED",
            Self::Archived => "ARCHIVED",
            Self::Compromised => "COMPROMISED",
            Self::Unknown => "UNKNOWN",
            Self::ResetRequired => "RESET_REQUIRED",
            Self::ForceChangePassword => "FORCE_CHANGE_PASSWORD",
            Self::ExternalProvider => "EXTERNAL_PROVIDER",
            Self::Other(s) => s,
        }
    }

    /// The status named `s` (as Cognito spells it).
    pub fn parse(s: &str) -> Self {
        match s {
            "UNCONFIRMED" => Self::Unconfirmed,
            "CONFIRMED" => Self::Confirmed,
            "ARCHIVED" => Self::Archived,
            "COMPROMISED" => Self::Compromised,
            "UNKNOWN" => Self::Unknown,
            "RESET_REQUIRED" => Self::ResetRequired,
            "FORCE_CHANGE_PASSWORD" => Self::ForceChangePassword,
            "EXTERNAL_PROVIDER" => Self::ExternalProvider,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An attribute a pool lets users sign in with instead of a username (`UsernameAttributes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignInAlias {
    Email,
    PhoneNumber,
}

impl SignInAlias {
    /// The attribute's name, `email` or `phone_number`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::PhoneNumber => "phone_number",
        }
    }

    /// Whether `key` has this alias's shape (an address has `@`, a phone number starts `+`).
    pub fn looks_like(self, key: &str) -> bool {
        match self {
            Self::Email => key.contains('@'),
            Self::PhoneNumber => key.starts_with('+'),
        }
    }

    /// The comma-separated list (`RELAY_USERNAME_ATTRIBUTES`, relayctl's `username_attributes`):
    /// trimmed, blanks skipped; `Err` names the first entry that is not an alias.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, UnknownAlias> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| match s {
                "email" => Ok(Self::Email),
                "phone_number" => Ok(Self::PhoneNumber),
                bad => Err(UnknownAlias(bad.to_owned())),
            })
            .collect()
    }
}

/// An entry of a sign-in alias list that is neither `email` nor `phone_number`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not email or phone_number")]
pub struct UnknownAlias(pub String);

impl fmt::Display for SignInAlias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_by_name() {
        for s in [
            "CONFIRMED",
            "FORCE_CHANGE_PASSWORD",
            "UNCONFIRMED",
            "NEW_ONE",
        ] {
            assert_eq!(UserStatus::parse(s).as_str(), s);
        }
        assert_eq!(
            UserStatus::parse("NEW_ONE"),
            UserStatus::Other("NEW_ONE".into())
        );
    }

    #[test]
    fn alias_lists_are_split_trimmed_and_checked() {
        assert_eq!(
            SignInAlias::parse_list(" email , phone_number,"),
            Ok(vec![SignInAlias::Email, SignInAlias::PhoneNumber])
        );
        assert_eq!(SignInAlias::parse_list("  "), Ok(vec![]));
        assert_eq!(
            SignInAlias::parse_list("email,nickname"),
            Err(UnknownAlias("nickname".into()))
        );
    }
}
