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
                .filter_map(|a| {
                    Some(Attr {
                        name: a.get("Name")?.as_str()?.to_owned(),
                        value: a.get("Value")?.as_str()?.to_owned(),
                    })
                })
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
pub fn build_change(
    mutation: Mutation,
    req: &Value,
    resp: &Value,
    keys: &Keyring,
    event_id: &str,
) -> Option<Change> {
    let seal = |pw: &str| keys.seal(pw.as_bytes(), event_id.as_bytes());
    Some(match mutation {
        // A passwordless sign-up (a pool with passwordless sign-in) replicates without one. The
        // attribute the code went to is the one the origin verifies on confirmation.
        Mutation::SignUp {
            attributes,
            password,
        } => Change::CreateUser {
            attributes: attrs(req.pointer(attributes)),
            sealed_password: req.pointer(password).and_then(Value::as_str).map(seal),
            confirm_verifies: str_of(resp, &["CodeDeliveryDetails", "AttributeName"])
                .map(str::to_owned),
        },
        Mutation::ConfirmSignUp => Change::Confirm,
        Mutation::SetPassword(at) => Change::SetPassword {
            sealed_password: seal(req.pointer(at)?.as_str()?),
        },
        Mutation::ChallengeNewPassword(at) => {
            if str_of(req, &["ChallengeName"]) != Some("NEW_PASSWORD_REQUIRED")
                || resp.get("AuthenticationResult").is_none()
            {
                return None;
            }
            Change::SetPassword {
                sealed_password: seal(req.pointer(at)?.as_str()?),
            }
        }
        Mutation::UpdateAttributes(at) => {
            // Where the origin sent a verification code, it marked that attribute unverified
            // (unless the request set the flag itself): carry exactly that, invent nothing.
            let mut attributes = attrs(req.pointer(at));
            for sent in resp
                .get("CodeDeliveryDetailsList")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = sent.get("AttributeName").and_then(Value::as_str) {
                    let flag = format!("{name}_verified");
                    if !attributes.iter().any(|a| a.name == flag) {
                        attributes.push(Attr {
                            name: flag,
                            value: "false".into(),
                        });
                    }
                }
            }
            Change::UpdateAttributes { attributes }
        }
        Mutation::DeleteAttributes(at) => Change::DeleteAttributes {
            names: req
                .pointer(at)?
                .as_array()?
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect(),
        },
        Mutation::VerifyAttribute(at) => Change::VerifyAttribute {
            name: req.pointer(at)?.as_str()?.to_owned(),
        },
        Mutation::MfaPreference(at) => {
            let mut settings = Map::new();
            for p in at {
                if let Some(v) = req.pointer(p) {
                    let name = p.rsplit('/').next().unwrap_or(p);
                    settings.insert(name.to_owned(), v.clone());
                }
            }
            Change::MfaPreference {
                settings: Value::Object(settings),
            }
        }
        Mutation::Settings(at) => Change::Settings {
            mfa_options: req.pointer(at).cloned().unwrap_or(Value::Array(vec![])),
        },
        Mutation::DeleteUser => Change::Delete,
        Mutation::GlobalSignOut => Change::GlobalSignOut,
        Mutation::RevokeToken => Change::RevokeToken {
            token_id: str_of(req, &["TokenId"])?.to_owned(),
            pool: str_of(req, &["Pool"])?.to_owned(),
        },
        // Sealed like a password (bound to the event id).
        Mutation::TotpSecret => Change::TotpSecret {
            sealed_secret: seal(str_of(req, &["SecretCode"])?),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The catalog row's mutation (so these tests read the request fields the catalog names).
    fn of(action: &str) -> Mutation {
        wire::lookup(Some(&format!("{}{action}", wire::catalog::TARGET_PREFIX)))
            .ok()
            .and_then(|spec| spec.mutation)
            .expect("a mutating catalog row")
    }

    fn keys() -> Keyring {
        Keyring::single("k1", [3; 32])
    }

    #[test]
    fn sign_up_seals_the_password_under_the_event_id() {
        let req = json!({"Username":"alice","Password":"Sup3r$ecret","UserAttributes":[{"Name":"email","Value":"a@x.io"}]});
        let resp = json!({"UserSub":"s","CodeDeliveryDetails":{"AttributeName":"email","DeliveryMedium":"EMAIL"}});
        let Some(Change::CreateUser {
            attributes,
            sealed_password: Some(sealed_password),
            confirm_verifies,
        }) = build_change(of("SignUp"), &req, &resp, &keys(), "evt-9")
        else {
            panic!()
        };
        assert_eq!(
            attributes,
            vec![Attr {
                name: "email".into(),
                value: "a@x.io".into()
            }]
        );
        assert_eq!(confirm_verifies.as_deref(), Some("email"));
        assert!(!sealed_password.contains("Sup3r"));
        assert_eq!(
            keys().open(&sealed_password, b"evt-9").unwrap(),
            b"Sup3r$ecret"
        );
    }

    #[test]
    fn a_passwordless_sign_up_replicates_without_a_password() {
        let req = json!({"Username":"bob","UserAttributes":[{"Name":"email","Value":"b@x.io"}]});
        let change = build_change(of("SignUp"), &req, &json!({}), &keys(), "e").unwrap();
        assert_eq!(
            change,
            Change::CreateUser {
                attributes: vec![Attr {
                    name: "email".into(),
                    value: "b@x.io".into()
                }],
                sealed_password: None,
                confirm_verifies: None
            }
        );
    }

    #[test]
    fn an_attribute_change_carries_the_origins_verified_flags() {
        let req = json!({"UserAttributes":[{"Name":"email","Value":"new@x.io"},{"Name":"phone_number","Value":"+15550100"}]});
        let resp =
            json!({"CodeDeliveryDetailsList":[{"AttributeName":"email","DeliveryMedium":"EMAIL"}]});
        let Some(Change::UpdateAttributes { attributes }) =
            build_change(of("UpdateUserAttributes"), &req, &resp, &keys(), "e")
        else {
            panic!()
        };
        let names: Vec<&str> = attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            ["email", "phone_number", "email_verified"],
            "phone not auto-verified at the origin: no flag invented"
        );
        assert_eq!(attributes[2].value, "false");
    }

    #[test]
    fn only_new_password_required_answers_replicate() {
        let resp = json!({"AuthenticationResult":{}});
        let npr = json!({"ChallengeName":"NEW_PASSWORD_REQUIRED","ChallengeResponses":{"USERNAME":"u","NEW_PASSWORD":"N3w!pass"}});
        assert!(matches!(
            build_change(of("RespondToAuthChallenge"), &npr, &resp, &keys(), "e"),
            Some(Change::SetPassword { .. })
        ));
        let srp =
            json!({"ChallengeName":"PASSWORD_VERIFIER","ChallengeResponses":{"USERNAME":"u"}});
        assert_eq!(
            build_change(of("RespondToAuthChallenge"), &srp, &resp, &keys(), "e"),
            None
        );
        // A NEW_PASSWORD_REQUIRED answer that led to another challenge (MFA) has not set anything yet.
        assert_eq!(
            build_change(
                of("RespondToAuthChallenge"),
                &npr,
                &json!({"ChallengeName":"SMS_MFA"}),
                &keys(),
                "e"
            ),
            None
        );
    }

    #[test]
    fn each_mutation_carries_what_changed() {
        let k = keys();
        let r = json!({});
        assert_eq!(
            build_change(
                of("DeleteUserAttributes"),
                &json!({"UserAttributeNames":["name","custom:x"]}),
                &r,
                &k,
                "e"
            ),
            Some(Change::DeleteAttributes {
                names: vec!["name".into(), "custom:x".into()]
            })
        );
        assert_eq!(
            build_change(
                of("VerifyUserAttribute"),
                &json!({"AttributeName":"email","Code":"123456"}),
                &r,
                &k,
                "e"
            ),
            Some(Change::VerifyAttribute {
                name: "email".into()
            })
        );
        let mfa = build_change(
            of("SetUserMFAPreference"),
            &json!({"AccessToken":"t","SMSMfaSettings":{"Enabled":true}}),
            &r,
            &k,
            "e",
        )
        .unwrap();
        assert_eq!(
            mfa,
            Change::MfaPreference {
                settings: json!({"SMSMfaSettings":{"Enabled":true}})
            }
        );
        assert_eq!(
            build_change(
                of("ChangePassword"),
                &json!({"PreviousPassword":"a"}),
                &r,
                &k,
                "e"
            ),
            None
        );
    }
}
