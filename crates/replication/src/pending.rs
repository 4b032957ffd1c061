//! Half-finished sign-ups across regions (issue 10 point 5).
//!
//! A sign-up replicated before its user confirmed it is a *placeholder* on the other pool: made
//! with AdminCreateUser (no message), disabled, with the password. The replicator keeps what a
//! real sign-up on that pool needs in the user's state record (`UserRecord::pending_sign_up`):
//! the password and the attributes the app sent, sealed under the replication keyring's subkey
//! [`PENDING_PURPOSE`] and bound to the record key. The proxy of that region uses it to finish
//! the sign-up there (see `proxy::signups`): the placeholder is replaced by a real `SignUp`, so
//! that pool sends its own code and `ConfirmSignUp` confirms the user.
//!
//! The record is cleared by any later sign-up (a local one, or another replicated one, which
//! writes its own), by the confirmation and by the deletion: a placeholder whose origin
//! confirmed is an ordinary user again and is never replaced.

use serde::{Deserialize, Serialize};
use wire::seal::Keyring;

use crate::event::Attr;

/// Purpose of the subkey (of the replication keyring) sealing a pending sign-up at rest.
pub const PENDING_PURPOSE: &str = "pending-sign-up";

/// What finishing a replicated sign-up on this pool needs. Never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignUp {
    /// The password of the origin's sign-up (`None`: a passwordless sign-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The attributes the app sent with the sign-up.
    #[serde(default)]
    pub attributes: Vec<Attr>,
}

impl std::fmt::Debug for PendingSignUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignUp")
            .field("attributes", &self.attributes.len())
            .finish_non_exhaustive()
    }
}

impl PendingSignUp {
    /// Sealed for the state record `record_key`.
    pub fn seal(&self, keys: &Keyring, record_key: &str) -> String {
        let plain = serde_json::to_vec(self).unwrap_or_default();
        keys.derive(PENDING_PURPOSE)
            .seal(&plain, record_key.as_bytes())
    }

    /// Opens what `seal` made for the same record (`None`: another record, tampered, or a key
    /// no longer in the keyring).
    pub fn open(keys: &Keyring, record_key: &str, sealed: &str) -> Option<Self> {
        let plain = keys
            .derive(PENDING_PURPOSE)
            .open(sealed, record_key.as_bytes())
            .ok()?;
        serde_json::from_slice(&plain).ok()
    }

    /// Whether `password` is the sign-up's password (constant time over the bytes).
    pub fn password_is(&self, password: &str) -> bool {
        self.password
            .as_deref()
            .is_some_and(|p| constant_time_eq(p.as_bytes(), password.as_bytes()))
    }

    /// The addresses a code can go to (`email`, `phone_number`), normalised; in pools that sign
    /// in by e-mail or phone, the user key stands for its attribute when the attributes lack it.
    pub fn addresses(
        &self,
        user_key: &str,
        alias_attributes: &[crate::SignInAlias],
    ) -> Vec<(String, String)> {
        addresses(&self.attributes, user_key, alias_attributes)
    }
}

/// The (attribute, normalised value) pairs of `email` and `phone_number` in `attributes`, plus
/// the user key for an alias attribute it stands for. Sorted.
pub fn addresses(
    attributes: &[Attr],
    user_key: &str,
    alias_attributes: &[crate::SignInAlias],
) -> Vec<(String, String)> {
    let norm = |name: &str, v: &str| {
        if name == "email" {
            v.trim().to_lowercase()
        } else {
            v.trim().to_owned()
        }
    };
    let mut out: Vec<(String, String)> = attributes
        .iter()
        .filter(|a| a.name == "email" || a.name == "phone_number")
        .map(|a| (a.name.clone(), norm(&a.name, &a.value)))
        .collect();
    for alias in alias_attributes {
        let name = alias.as_str();
        if alias.looks_like(user_key) && !out.iter().any(|(n, _)| n == name) {
            out.push((name.to_owned(), norm(name, user_key)));
        }
    }
    out.sort();
    out.dedup();
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(n: &str, v: &str) -> Attr {
        Attr {
            name: n.into(),
            value: v.into(),
        }
    }

    #[test]
    fn sealed_for_its_record_only_and_never_printed() {
        let keys = Keyring::single("k1", [3; 32]);
        let p = PendingSignUp {
            password: Some("Secret-Pass1".into()),
            attributes: vec![attr("email", "a@x.io")],
        };
        let sealed = p.seal(&keys, "user#1");
        assert!(!sealed.contains("Secret") && !sealed.contains("a@x.io"));
        assert_eq!(
            PendingSignUp::open(&keys, "user#1", &sealed),
            Some(p.clone())
        );
        assert!(PendingSignUp::open(&keys, "user#2", &sealed).is_none());
        assert!(PendingSignUp::open(&Keyring::single("k1", [4; 32]), "user#1", &sealed).is_none());
        assert!(!format!("{p:?}").contains("Secret"));
        assert!(p.password_is("Secret-Pass1"));
        assert!(!p.password_is("Secret-Pass"));
        assert!(!p.password_is("Secret-Pass12"));
        assert!(!PendingSignUp::default_passwordless().password_is(""));
    }

    impl PendingSignUp {
        fn default_passwordless() -> Self {
            Self {
                password: None,
                attributes: vec![],
            }
        }
    }

    #[test]
    fn addresses_normalise_and_count_the_alias_key() {
        let email = vec![crate::SignInAlias::Email];
        assert_eq!(
            addresses(&[attr("email", " A@X.io")], "bob", &[]),
            vec![("email".into(), "a@x.io".into())]
        );
        assert_eq!(
            addresses(&[], "A@x.io", &email),
            vec![("email".into(), "a@x.io".into())]
        );
        assert_eq!(
            addresses(&[attr("email", "a@x.io")], "a@x.io", &email),
            vec![("email".into(), "a@x.io".into())]
        );
        assert_ne!(
            addresses(&[attr("email", "a@x.io")], "bob", &[]),
            addresses(&[attr("email", "evil@x.io")], "bob", &[])
        );
        assert!(addresses(&[attr("name", "x")], "bob", &email).is_empty());
    }
}
