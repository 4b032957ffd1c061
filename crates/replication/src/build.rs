//! Builds the `Change` of a successful mutating call from the app's original request.

use serde_json::{Map, Value};
use wire::seal::Keyring;
use wire::Mutation;

use crate::event::{Attr, Change};

/// Who the change is about, as the proxy resolved it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserIdentity {
    pub user_key: String,
    pub origin_username: Option<String>,
    pub origin_sub: Option<String>,
}

fn attrs(v: Option<&Value>) -> Vec<Attr> {
    v.and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|a| Some(Attr { name: a.get("Name")?.as_str()?.to_owned(), value: a.get("Value")?.as_str()?.to_owned() }))
                .collect()
        })
        .unwrap_or_default()
}

fn str_of<'a>(req: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = req;
    for p in path {
        v = v.get(*p)?;
    }
    v.as_str()
}

/// `None` when the call changed nothing that replicates (e.g. a challenge other than
/// NEW_PASSWORD_REQUIRED, or a request missing the field Cognito accepted anyway).
pub fn build_change(mutation: Mutation, req: &Value, resp: &Value, keys: &Keyring, event_id: &str) -> Option<Change> {
    let seal = |pw: &str| keys.seal(pw.as_bytes(), event_id.as_bytes());
    Some(match mutation {
        Mutation::SignUp => Change::CreateUser { attributes: attrs(req.get("UserAttributes")), sealed_password: seal(str_of(req, &["Password"])?) },
        Mutation::ConfirmSignUp => Change::Confirm,
        Mutation::SetPassword(field) => Change::SetPassword { sealed_password: seal(str_of(req, &[field])?) },
        Mutation::ChallengeNewPassword => {
            if str_of(req, &["ChallengeName"]) != Some("NEW_PASSWORD_REQUIRED") || resp.get("AuthenticationResult").is_none() {
                return None;
            }
            Change::SetPassword { sealed_password: seal(str_of(req, &["ChallengeResponses", "NEW_PASSWORD"])?) }
        }
        Mutation::UpdateAttributes => Change::UpdateAttributes { attributes: attrs(req.get("UserAttributes")) },
        Mutation::DeleteAttributes => Change::DeleteAttributes {
            names: req.get("UserAttributeNames")?.as_array()?.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect(),
        },
        Mutation::VerifyAttribute => Change::VerifyAttribute { name: str_of(req, &["AttributeName"])?.to_owned() },
        Mutation::MfaPreference => {
            let mut settings = Map::new();
            for k in ["SMSMfaSettings", "SoftwareTokenMfaSettings", "EmailMfaSettings"] {
                if let Some(v) = req.get(k) {
                    settings.insert(k.to_owned(), v.clone());
                }
            }
            Change::MfaPreference { settings: Value::Object(settings) }
        }
        Mutation::Settings => Change::Settings { mfa_options: req.get("MFAOptions").cloned().unwrap_or(Value::Array(vec![])) },
        Mutation::DeleteUser => Change::Delete,
        Mutation::GlobalSignOut => Change::GlobalSignOut,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys() -> Keyring {
        Keyring::single("k1", [3; 32])
    }

    #[test]
    fn sign_up_seals_the_password_under_the_event_id() {
        let req = json!({"Username":"alice","Password":"Sup3r$ecret","UserAttributes":[{"Name":"email","Value":"a@x.io"}]});
        let Some(Change::CreateUser { attributes, sealed_password }) = build_change(Mutation::SignUp, &req, &json!({}), &keys(), "evt-9") else { panic!() };
        assert_eq!(attributes, vec![Attr { name: "email".into(), value: "a@x.io".into() }]);
        assert!(!sealed_password.contains("Sup3r"));
        assert_eq!(keys().open(&sealed_password, b"evt-9").unwrap(), b"Sup3r$ecret");
    }

    #[test]
    fn only_new_password_required_answers_replicate() {
        let resp = json!({"AuthenticationResult":{}});
        let npr = json!({"ChallengeName":"NEW_PASSWORD_REQUIRED","ChallengeResponses":{"USERNAME":"u","NEW_PASSWORD":"N3w!pass"}});
        assert!(matches!(build_change(Mutation::ChallengeNewPassword, &npr, &resp, &keys(), "e"), Some(Change::SetPassword { .. })));
        let srp = json!({"ChallengeName":"PASSWORD_VERIFIER","ChallengeResponses":{"USERNAME":"u"}});
        assert_eq!(build_change(Mutation::ChallengeNewPassword, &srp, &resp, &keys(), "e"), None);
        // A NEW_PASSWORD_REQUIRED answer that led to another challenge (MFA) has not set anything yet.
        assert_eq!(build_change(Mutation::ChallengeNewPassword, &npr, &json!({"ChallengeName":"SMS_MFA"}), &keys(), "e"), None);
    }

    #[test]
    fn each_mutation_carries_what_changed() {
        let k = keys();
        let r = json!({});
        assert_eq!(
            build_change(Mutation::DeleteAttributes, &json!({"UserAttributeNames":["name","custom:x"]}), &r, &k, "e"),
            Some(Change::DeleteAttributes { names: vec!["name".into(), "custom:x".into()] })
        );
        assert_eq!(build_change(Mutation::VerifyAttribute, &json!({"AttributeName":"email","Code":"123456"}), &r, &k, "e"), Some(Change::VerifyAttribute { name: "email".into() }));
        let mfa = build_change(Mutation::MfaPreference, &json!({"AccessToken":"t","SMSMfaSettings":{"Enabled":true}}), &r, &k, "e").unwrap();
        assert_eq!(mfa, Change::MfaPreference { settings: json!({"SMSMfaSettings":{"Enabled":true}}) });
        assert_eq!(build_change(Mutation::SetPassword("ProposedPassword"), &json!({"PreviousPassword":"a"}), &r, &k, "e"), None);
    }
}
