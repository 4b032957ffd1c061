//! Rewrites an app's request for the regional user pool: maps the ClientId, adds the secret
//! where the action takes it (replacing anything the client sent), propagates the caller's IP,
//! and opens refresh tokens that the relay sealed. Also seals refresh tokens in responses so a
//! later REFRESH_TOKEN_AUTH can be hashed over the pool's internal username without any change
//! in the client.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::catalog::{ActionSpec, RefreshTokenAt, SecretPlacement};
use crate::seal::Keyring;
use crate::session::{self, SealedRefresh};
use crate::{hash::secret_hash, WireError};

pub use crate::session::SEALED_REFRESH_PREFIX;

#[derive(Clone, PartialEq, Eq)]
pub struct RegionalClient {
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for RegionalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionalClient")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Public ClientId (what apps are built with) → this region's secret-bearing app client.
/// A request that already names the regional client is accepted as is.
#[derive(Debug, Clone, Default)]
pub struct ClientMapping {
    by_id: HashMap<String, RegionalClient>,
}

impl ClientMapping {
    pub fn new(entries: impl IntoIterator<Item = (String, RegionalClient)>) -> Self {
        let mut by_id = HashMap::new();
        for (public, regional) in entries {
            by_id.insert(regional.client_id.clone(), regional.clone());
            by_id.insert(public, regional);
        }
        Self { by_id }
    }

    /// The secret's JSON: `{"clients":[{"public_client_id","client_id","client_secret"}]}`.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| format!("clients secret is not JSON ({:?})", e.classify()))?;
        let list = v
            .get("clients")
            .and_then(Value::as_array)
            .ok_or("clients secret has no \"clients\" array")?;
        let mut entries = Vec::new();
        for (i, c) in list.iter().enumerate() {
            let field = |k: &str| {
                c.get(k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .ok_or(format!("clients[{i}].{k} is missing"))
            };
            entries.push((
                field("public_client_id")?,
                RegionalClient {
                    client_id: field("client_id")?,
                    client_secret: field("client_secret")?,
                },
            ));
        }
        if entries.is_empty() {
            return Err("clients secret lists no clients".into());
        }
        Ok(Self::new(entries))
    }

    pub fn get(&self, id: &str) -> Option<&RegionalClient> {
        self.by_id.get(id)
    }
}

/// What `prepare` learned about the request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The username the secret hash was computed over (as the client named the user).
    pub username: Option<String>,
    /// The relay-sealed refresh token the request carried, opened (its pool, issue time, id:
    /// what the bridge needs to continue a session of the other region's pool).
    pub refresh: Option<SealedRefresh>,
}

fn obj<'a>(v: &'a mut Value, what: &str) -> Result<&'a mut Map<String, Value>, WireError> {
    v.as_object_mut()
        .ok_or_else(|| WireError::invalid_parameter(format!("{what} must be a JSON object")))
}

fn string_field(m: &Map<String, Value>, key: &str) -> Option<String> {
    m.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn required(m: &Map<String, Value>, key: &str, wire_name: &str) -> Result<String, WireError> {
    string_field(m, key).ok_or_else(|| {
        WireError::invalid_parameter(format!("1 validation error detected: Value null at '{wire_name}' failed to satisfy constraint: Member must not be null"))
    })
}

/// The value at JSON pointer `at` of the request object `top` (`None` when absent). The field's
/// parent, when it has one, must be an object.
fn field_at<'a>(
    top: &'a mut Map<String, Value>,
    at: &str,
) -> Result<Option<&'a mut Value>, WireError> {
    let path = at.strip_prefix('/').unwrap_or(at);
    let Some((parent, rest)) = path.split_once('/') else {
        return Ok(top.get_mut(path));
    };
    let holder = top
        .get_mut(parent)
        .filter(|p| p.is_object())
        .ok_or_else(|| WireError::invalid_parameter(format!("{parent} must be an object")))?;
    Ok(holder.pointer_mut(&format!("/{rest}")))
}

fn is_refresh_flow(flow: Option<&str>) -> bool {
    matches!(flow, Some("REFRESH_TOKEN_AUTH" | "REFRESH_TOKEN"))
}

/// Opens a relay-sealed refresh token: `(internal username, Cognito's token)`.
/// A token the relay did not seal is returned as is, with no username.
pub fn open_refresh_token(
    keys: &Keyring,
    token: &str,
) -> Result<(Option<String>, String), WireError> {
    Ok(match session::open(keys, token)? {
        Some(c) => (Some(c.username), c.token),
        None => (None, token.to_owned()),
    })
}

/// Seals `token` of `username` with no pool, issue time nor id (tests, benchmarks; the proxy
/// seals through `seal_response_tokens`).
pub fn seal_refresh_token(keys: &Keyring, username: &str, token: &str) -> String {
    session::seal(
        keys,
        &SealedRefresh {
            username: username.to_owned(),
            token: token.to_owned(),
            ..SealedRefresh::default()
        },
    )
}

/// Cognito's maximum username length (characters).
pub const MAX_USERNAME_CHARS: usize = 128;

/// Rewrites `body` in place for the regional pool.
pub fn prepare(
    spec: &ActionSpec,
    body: &mut Value,
    clients: &ClientMapping,
    caller_ip: Option<&str>,
    refresh_keys: &Keyring,
) -> Result<Prepared, WireError> {
    let top = obj(body, "The request body")?;
    let mut out = Prepared::default();

    let client = if spec.client_id {
        let id = required(top, "ClientId", "clientId")?;
        let client = clients.get(&id).ok_or_else(|| {
            WireError::resource_not_found(format!("User pool client {} does not exist.", cap(&id)))
        })?;
        top.insert("ClientId".into(), Value::String(client.client_id.clone()));
        Some(client)
    } else {
        None
    };

    // Refresh tokens the relay sealed carry the internal username; open them here.
    let mut refresh_user = None;
    let at = match spec.refresh_token {
        RefreshTokenAt::Nowhere => None,
        RefreshTokenAt::Always(at) => Some(at),
        RefreshTokenAt::InRefreshFlow(at) => {
            is_refresh_flow(top.get("AuthFlow").and_then(Value::as_str)).then_some(at)
        }
    };
    if let Some(at) = at {
        if let Some(slot) = field_at(top, at)? {
            if let Some(token) = slot.as_str() {
                if let Some(opened) = session::open(refresh_keys, token)? {
                    *slot = Value::String(opened.token.clone());
                    refresh_user = Some(opened.username.clone());
                    out.refresh = Some(opened);
                }
            }
        }
    }

    if let Some(client) = client {
        match spec.secret {
            SecretPlacement::None => {}
            SecretPlacement::TopLevel => {
                let username = required(top, "Username", "username")?;
                top.insert(
                    "SecretHash".into(),
                    Value::String(secret_hash(
                        &client.client_secret,
                        &username,
                        &client.client_id,
                    )),
                );
                out.username = Some(username);
            }
            SecretPlacement::AuthParameters => {
                let refresh = is_refresh_flow(top.get("AuthFlow").and_then(Value::as_str));
                let params = match top.get_mut("AuthParameters") {
                    Some(p) => obj(p, "AuthParameters")?,
                    None => {
                        return Err(WireError::invalid_parameter(
                            "Missing required parameter AuthParameters",
                        ))
                    }
                };
                let username = if refresh {
                    let u = refresh_user
                        .clone()
                        .or_else(|| string_field(params, "USERNAME"));
                    Some(u.ok_or_else(|| WireError::not_authorized("This refresh token was not issued through this endpoint; sign in again."))?)
                } else {
                    string_field(params, "USERNAME")
                };
                if let Some(u) = &username {
                    params.insert(
                        "SECRET_HASH".into(),
                        Value::String(secret_hash(&client.client_secret, u, &client.client_id)),
                    );
                } else {
                    params.remove("SECRET_HASH");
                }
                out.username = username;
            }
            SecretPlacement::ChallengeResponses => {
                let responses = match top.get_mut("ChallengeResponses") {
                    Some(p) => obj(p, "ChallengeResponses")?,
                    None => {
                        return Err(WireError::invalid_parameter(
                            "Missing required parameter ChallengeResponses",
                        ))
                    }
                };
                let username = required(responses, "USERNAME", "challengeResponses.USERNAME")?;
                responses.insert(
                    "SECRET_HASH".into(),
                    Value::String(secret_hash(
                        &client.client_secret,
                        &username,
                        &client.client_id,
                    )),
                );
                out.username = Some(username);
            }
            SecretPlacement::ClientSecret => {
                top.insert(
                    "ClientSecret".into(),
                    Value::String(client.client_secret.clone()),
                );
                out.username = refresh_user;
            }
        }
    }

    // Cognito's own bound: nothing longer is a user, so it is refused before it can become a
    // limiter key or reach Cognito.
    if out
        .username
        .as_deref()
        .is_some_and(|u| u.chars().count() > MAX_USERNAME_CHARS)
    {
        return Err(WireError::invalid_parameter(format!(
            "1 validation error detected: Value at 'username' failed to satisfy constraint: Member must have length less than or equal to {MAX_USERNAME_CHARS}"
        )));
    }

    if spec.user_context {
        // The IP Cognito's threat protection sees is the relay's to state: a client-sent one
        // is always replaced, or removed when the caller's IP is not known.
        match caller_ip {
            Some(ip) => {
                let ctx = top
                    .entry("UserContextData")
                    .or_insert_with(|| Value::Object(Map::new()));
                obj(ctx, "UserContextData")?
                    .insert("IpAddress".into(), Value::String(ip.to_owned()));
            }
            None => {
                if let Some(ctx) = top.get_mut("UserContextData") {
                    let ctx = obj(ctx, "UserContextData")?;
                    ctx.remove("IpAddress");
                    if ctx.is_empty() {
                        top.remove("UserContextData");
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Seals `AuthenticationResult.RefreshToken` in a successful response so that it carries the
/// pool's internal username (from the access token's `username` claim), and what the other
/// region needs to continue the session (`session::claims_for`). Returns whether the body
/// changed.
pub fn seal_response_tokens(
    spec: &ActionSpec,
    response: &mut Value,
    refresh_keys: &Keyring,
    fallback_username: Option<&str>,
) -> bool {
    if !spec.issues_tokens {
        return false;
    }
    let Some(result) = response
        .get_mut("AuthenticationResult")
        .and_then(Value::as_object_mut)
    else {
        return false;
    };
    let Some(token) = result.get("RefreshToken").and_then(Value::as_str) else {
        return false;
    };
    if token.starts_with(SEALED_REFRESH_PREFIX) {
        return false;
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let Some(claims) = session::claims_for(result, token, fallback_username, now_ms) else {
        return false;
    };
    let sealed = session::seal(refresh_keys, &claims);
    result.insert("RefreshToken".into(), Value::String(sealed));
    true
}

fn cap(s: &str) -> &str {
    let end = s.char_indices().nth(128).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::lookup;
    use serde_json::json;

    fn clients() -> ClientMapping {
        ClientMapping::new([(
            "public".to_owned(),
            RegionalClient {
                client_id: "regional".into(),
                client_secret: "s3cr3t".into(),
            },
        )])
    }
    fn keys() -> Keyring {
        Keyring::single("k1", [7; 32])
    }
    fn run(
        action: &str,
        mut body: Value,
        ip: Option<&str>,
    ) -> Result<(Value, Prepared), WireError> {
        let spec = lookup(Some(&format!("AWSCognitoIdentityProviderService.{action}")))?;
        let p = prepare(spec, &mut body, &clients(), ip, &keys())?;
        Ok((body, p))
    }

    #[test]
    fn top_level_hash_replaces_what_the_client_sent() {
        let (b, p) = run(
            "SignUp",
            json!({"ClientId":"public","Username":"alice","Password":"pw","SecretHash":"forged"}),
            None,
        )
        .unwrap();
        assert_eq!(b["ClientId"], "regional");
        assert_eq!(b["SecretHash"], secret_hash("s3cr3t", "alice", "regional"));
        assert_eq!(p.username.as_deref(), Some("alice"));
    }

    #[test]
    fn every_top_level_action_is_signed() {
        for action in [
            "SignUp",
            "ConfirmSignUp",
            "ForgotPassword",
            "ConfirmForgotPassword",
            "ResendConfirmationCode",
        ] {
            let (b, _) = run(action, json!({"ClientId":"public","Username":"bob"}), None).unwrap();
            assert_eq!(
                b["SecretHash"],
                secret_hash("s3cr3t", "bob", "regional"),
                "{action}"
            );
        }
    }

    #[test]
    fn initiate_auth_signs_auth_parameters() {
        for flow in ["USER_PASSWORD_AUTH", "USER_SRP_AUTH"] {
            let (b, _) = run(
                "InitiateAuth",
                json!({"ClientId":"public","AuthFlow":flow,"AuthParameters":{"USERNAME":"a@x.io"}}),
                None,
            )
            .unwrap();
            assert_eq!(
                b["AuthParameters"]["SECRET_HASH"],
                secret_hash("s3cr3t", "a@x.io", "regional")
            );
        }
    }

    #[test]
    fn srp_answer_is_hashed_over_user_id_for_srp() {
        let (b, p) = run("RespondToAuthChallenge", json!({"ClientId":"public","ChallengeName":"PASSWORD_VERIFIER","ChallengeResponses":{"USERNAME":"9f1c-internal","PASSWORD_CLAIM_SIGNATURE":"x"}}), None).unwrap();
        assert_eq!(
            b["ChallengeResponses"]["SECRET_HASH"],
            secret_hash("s3cr3t", "9f1c-internal", "regional")
        );
        assert_eq!(p.username.as_deref(), Some("9f1c-internal"));
    }

    #[test]
    fn refresh_uses_the_internal_username_from_the_sealed_token() {
        let payload = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"username":"uuid-123","sub":"uuid-123"}"#,
        );
        let mut resp = json!({"AuthenticationResult":{"AccessToken":format!("h.{payload}.s"),"RefreshToken":"cognito-refresh"}});
        let spec = lookup(Some("AWSCognitoIdentityProviderService.InitiateAuth")).unwrap();
        assert!(seal_response_tokens(spec, &mut resp, &keys(), None));
        let sealed = resp["AuthenticationResult"]["RefreshToken"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(sealed.starts_with(SEALED_REFRESH_PREFIX) && !sealed.contains("cognito-refresh"));

        let (b, _) = run("InitiateAuth", json!({"ClientId":"public","AuthFlow":"REFRESH_TOKEN_AUTH","AuthParameters":{"REFRESH_TOKEN":sealed}}), None).unwrap();
        assert_eq!(b["AuthParameters"]["REFRESH_TOKEN"], "cognito-refresh");
        assert_eq!(
            b["AuthParameters"]["SECRET_HASH"],
            secret_hash("s3cr3t", "uuid-123", "regional")
        );
    }

    #[test]
    fn unsealed_or_forged_refresh_tokens_get_a_clear_answer() {
        let e = run("InitiateAuth", json!({"ClientId":"public","AuthFlow":"REFRESH_TOKEN_AUTH","AuthParameters":{"REFRESH_TOKEN":"raw"}}), None).unwrap_err();
        assert_eq!(e.kind, "NotAuthorizedException");
        let e = run("InitiateAuth", json!({"ClientId":"public","AuthFlow":"REFRESH_TOKEN_AUTH","AuthParameters":{"REFRESH_TOKEN":"crr1.v1.k1.AAAA"}}), None).unwrap_err();
        assert_eq!(e.kind, "NotAuthorizedException");
    }

    #[test]
    fn revoke_gets_raw_secret_and_opened_token() {
        let sealed = seal_refresh_token(&keys(), "bob", "tok");
        let (b, _) = run(
            "RevokeToken",
            json!({"ClientId":"public","Token":sealed}),
            None,
        )
        .unwrap();
        assert_eq!(b["ClientSecret"], "s3cr3t");
        assert_eq!(b["Token"], "tok");
        let (b, _) = run(
            "GetTokensFromRefreshToken",
            json!({"ClientId":"public","RefreshToken":seal_refresh_token(&keys(), "bob", "t2")}),
            None,
        )
        .unwrap();
        assert_eq!(
            (b["ClientSecret"].as_str(), b["RefreshToken"].as_str()),
            (Some("s3cr3t"), Some("t2"))
        );
    }

    #[test]
    fn caller_ip_is_added_and_encoded_data_kept() {
        let (b, _) = run("InitiateAuth", json!({"ClientId":"public","AuthFlow":"USER_PASSWORD_AUTH","AuthParameters":{"USERNAME":"a"},"UserContextData":{"EncodedData":"fp"}}), Some("203.0.113.9")).unwrap();
        assert_eq!(
            b["UserContextData"],
            json!({"EncodedData":"fp","IpAddress":"203.0.113.9"})
        );
        let forged = json!({"ClientId":"public","AuthFlow":"USER_PASSWORD_AUTH","AuthParameters":{"USERNAME":"a"},"UserContextData":{"EncodedData":"fp","IpAddress":"6.6.6.6"}});
        let (b, _) = run("InitiateAuth", forged.clone(), Some("203.0.113.9")).unwrap();
        assert_eq!(
            b["UserContextData"],
            json!({"EncodedData":"fp","IpAddress":"203.0.113.9"}),
            "a client-sent IP is replaced"
        );
        let (b, _) = run("InitiateAuth", forged, None).unwrap();
        assert_eq!(
            b["UserContextData"],
            json!({"EncodedData":"fp"}),
            "and removed when the caller is not known"
        );
        let long = "é".repeat(MAX_USERNAME_CHARS + 1);
        for (action, body) in [
            (
                "SignUp",
                json!({"ClientId":"public","Username":long,"Password":"pw"}),
            ),
            (
                "InitiateAuth",
                json!({"ClientId":"public","AuthFlow":"USER_PASSWORD_AUTH","AuthParameters":{"USERNAME":long}}),
            ),
            (
                "RespondToAuthChallenge",
                json!({"ClientId":"public","ChallengeName":"X","ChallengeResponses":{"USERNAME":long}}),
            ),
        ] {
            let e = run(action, body, None).unwrap_err();
            assert_eq!(e.kind, "InvalidParameterException", "{action}");
            assert!(e.message.contains("128"));
        }
        assert!(run("SignUp", json!({"ClientId":"public","Username":"é".repeat(MAX_USERNAME_CHARS),"Password":"pw"}), None).is_ok(), "128 characters is a username");
        let (b, _) = run(
            "ForgotPassword",
            json!({"ClientId":"public","Username":"a","UserContextData":{"IpAddress":"6.6.6.6"}}),
            None,
        )
        .unwrap();
        assert!(b.get("UserContextData").is_none());
        let (b, _) = run("GetUser", json!({"AccessToken":"t"}), Some("203.0.113.9")).unwrap();
        assert!(
            b.get("UserContextData").is_none(),
            "GetUser does not accept UserContextData"
        );
    }

    #[test]
    fn bad_shapes_are_refused_not_panicked_on() {
        assert_eq!(
            run("SignUp", json!([1, 2]), None).unwrap_err().kind,
            "InvalidParameterException"
        );
        assert_eq!(
            run("SignUp", json!({"Username":"a"}), None)
                .unwrap_err()
                .kind,
            "InvalidParameterException"
        );
        assert_eq!(
            run("SignUp", json!({"ClientId":"nope","Username":"a"}), None)
                .unwrap_err()
                .kind,
            "ResourceNotFoundException"
        );
        assert_eq!(
            run("SignUp", json!({"ClientId":"public","Username":7}), None)
                .unwrap_err()
                .kind,
            "InvalidParameterException"
        );
        assert_eq!(
            run(
                "InitiateAuth",
                json!({"ClientId":"public","AuthParameters":"x"}),
                None
            )
            .unwrap_err()
            .kind,
            "InvalidParameterException"
        );
        assert_eq!(
            run("RespondToAuthChallenge", json!({"ClientId":"public"}), None)
                .unwrap_err()
                .kind,
            "InvalidParameterException"
        );
        assert_eq!(
            run(
                "SignUp",
                json!({"ClientId":"public","Username":"a","UserContextData":5}),
                Some("1.2.3.4")
            )
            .unwrap_err()
            .kind,
            "InvalidParameterException"
        );
    }

    #[test]
    fn regional_client_id_is_accepted_too() {
        let (b, _) = run(
            "ForgotPassword",
            json!({"ClientId":"regional","Username":"a"}),
            None,
        )
        .unwrap();
        assert_eq!(b["ClientId"], "regional");
    }

    #[test]
    fn client_secret_json_is_validated() {
        assert!(ClientMapping::from_json(
            r#"{"clients":[{"public_client_id":"p","client_id":"c","client_secret":"s"}]}"#
        )
        .unwrap()
        .get("p")
        .is_some());
        assert!(ClientMapping::from_json(r#"{"clients":[]}"#).is_err());
        assert!(ClientMapping::from_json(
            r#"{"clients":[{"public_client_id":"p","client_id":"c"}]}"#
        )
        .unwrap_err()
        .contains("client_secret"));
        let dbg = format!("{:?}", ClientMapping::from_json(r#"{"clients":[{"public_client_id":"p","client_id":"c","client_secret":"TOPSECRET"}]}"#).unwrap());
        assert!(!dbg.contains("TOPSECRET"));
    }
}

#[cfg(test)]
mod odd_input {
    //! Every catalog action against bodies of every wrong shape: an answer, never a panic.
    use super::*;
    use crate::catalog::CATALOG;
    use serde_json::json;

    #[test]
    fn no_body_shape_makes_prepare_or_sealing_panic() {
        let clients = ClientMapping::new([(
            "p".to_owned(),
            RegionalClient {
                client_id: "r".into(),
                client_secret: "s".into(),
            },
        )]);
        let keys = Keyring::single("k1", [5; 32]);
        let odd = [
            json!(null),
            json!(true),
            json!(0),
            json!(""),
            json!([]),
            json!({}),
            json!({"a": {"b": [1, {"c": null}]}}),
            json!("crr1.v1.k1.%%%"),
        ];
        let fields = [
            "ClientId",
            "Username",
            "AuthFlow",
            "AuthParameters",
            "ChallengeResponses",
            "ChallengeName",
            "UserContextData",
            "Token",
            "RefreshToken",
            "AccessToken",
            "SecretHash",
        ];
        let mut bodies: Vec<Value> = odd.to_vec();
        for f in fields {
            for v in &odd {
                bodies.push(json!({ "ClientId": "p", f: v }));
                bodies.push(json!({ "ClientId": "p", "AuthFlow": "REFRESH_TOKEN_AUTH", "AuthParameters": { "REFRESH_TOKEN": v, "USERNAME": v }, f: v }));
                bodies.push(json!({ "ClientId": "p", "ChallengeResponses": { "USERNAME": v }, "UserContextData": { "EncodedData": v }, f: v }));
            }
        }
        let mut answered = 0;
        for spec in CATALOG {
            for body in &bodies {
                let mut b = body.clone();
                let _ = prepare(spec, &mut b, &clients, Some("192.0.2.1"), &keys);
                let mut resp = json!({ "AuthenticationResult": { "AccessToken": body.clone(), "RefreshToken": body.clone() } });
                let _ = seal_response_tokens(spec, &mut resp, &keys, None);
                answered += 1;
            }
        }
        assert_eq!(answered, CATALOG.len() * bodies.len());
    }
}
