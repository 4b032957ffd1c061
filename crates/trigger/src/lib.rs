//! The relay's Cognito custom-authentication triggers (Define / Create / Verify Auth Challenge),
//! one function dispatching on `triggerSource`. They let a bridging proxy mint tokens of its
//! home pool for a user it has authenticated itself (bridged SRP, a session from the other
//! region), and nobody else:
//!
//! - **Define**: no history → one `CUSTOM_CHALLENGE`; exactly one correct `CUSTOM_CHALLENGE`
//!   (the relay's, by its metadata) → issue tokens; anything else (SRP_A or PASSWORD_VERIFIER in
//!   the session, a wrong answer, a second round, an unknown user) → fail.
//! - **Create**: a fresh random nonce, public (for the proxy to bind its assertion to) and
//!   private (for Verify); metadata `RELAY_BRIDGE`.
//! - **Verify**: correct only for an assertion signed with a bridge key, bound to this pool,
//!   this `userName` and this challenge's nonce, and unexpired (≤ 60 s). Single use follows from
//!   the nonce: Cognito creates a new one per challenge and a session answers once.
//!
//! The handler is pure over the event JSON (`handle`); `main.rs` adds the runtime and the key.
#![forbid(unsafe_code)]

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde_json::{json, Value};
use wire::bridge::{verify_assertion, AssertionError};
use wire::seal::Keyring;

pub const CHALLENGE_METADATA: &str = "RELAY_BRIDGE";
pub const DEFINE: &str = "DefineAuthChallenge_Authentication";
pub const CREATE: &str = "CreateAuthChallenge_Authentication";
pub const VERIFY: &str = "VerifyAuthChallengeResponse_Authentication";

/// What the handler decided, for the caller's log line (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Challenge,
    IssueTokens,
    Fail(&'static str),
    Created,
    Correct,
    Wrong(&'static str),
    /// Not one of ours: returned unchanged.
    Ignored,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or_default()
}

fn define(event: &Value) -> (Value, Outcome) {
    let session = event["request"]["session"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let not_found = event["request"]["userNotFound"].as_bool().unwrap_or(false);
    let fail = |why| {
        (
            json!({"challengeName": null, "issueTokens": false, "failAuthentication": true}),
            Outcome::Fail(why),
        )
    };
    // An unknown user is asked the same challenge as a known one (no early answer that tells
    // them apart); Verify then fails it.
    match session.as_slice() {
        [_] if not_found => fail("user_not_found"),
        [] => (
            json!({"challengeName": "CUSTOM_CHALLENGE", "issueTokens": false, "failAuthentication": false}),
            Outcome::Challenge,
        ),
        [one] => {
            let ours = one["challengeName"] == "CUSTOM_CHALLENGE"
                && one["challengeMetadata"] == CHALLENGE_METADATA;
            if !ours {
                fail("other_challenge_history")
            } else if one["challengeResult"] == true {
                (
                    json!({"challengeName": null, "issueTokens": true, "failAuthentication": false}),
                    Outcome::IssueTokens,
                )
            } else {
                fail("wrong_answer")
            }
        }
        _ => fail("more_than_one_round"),
    }
}

/// A fresh 256-bit nonce.
pub fn new_nonce() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn create(nonce: String) -> (Value, Outcome) {
    (
        json!({
            "publicChallengeParameters": {"nonce": nonce},
            "privateChallengeParameters": {"nonce": nonce},
            "challengeMetadata": CHALLENGE_METADATA,
        }),
        Outcome::Created,
    )
}

fn verify(event: &Value, keys: &Keyring, now: i64) -> (Value, Outcome) {
    let wrong = |why| (json!({"answerCorrect": false}), Outcome::Wrong(why));
    if event["request"]["userNotFound"].as_bool().unwrap_or(false) {
        return wrong("user_not_found");
    }
    let nonce = str_at(event, &["request", "privateChallengeParameters", "nonce"]);
    let answer = str_at(event, &["request", "challengeAnswer"]);
    let pool = str_at(event, &["userPoolId"]);
    let user = str_at(event, &["userName"]);
    if nonce.is_empty() || pool.is_empty() || user.is_empty() {
        return wrong("incomplete_event");
    }
    match verify_assertion(keys, answer, pool, user, nonce, now) {
        Ok(_) => (json!({"answerCorrect": true}), Outcome::Correct),
        Err(e) => wrong(AssertionError::reason(e)),
    }
}

/// Handles one trigger event: the same event back with `response` filled in, as Cognito
/// expects. `nonce` is used by Create (a parameter so tests are deterministic).
pub fn handle(event: Value, keys: &Keyring, now: i64, nonce: String) -> (Value, Outcome) {
    handle_for(event, keys, now, nonce, &[])
}

/// `handle`, acting only for the app clients in `clients` (the relay's own regional client,
/// `RELAY_TRIGGER_CLIENT_IDS`; empty = any): a custom-auth sign-in through any other client of
/// the pool fails at Define and Verify, whatever it answers.
pub fn handle_for(
    mut event: Value,
    keys: &Keyring,
    now: i64,
    nonce: String,
    clients: &[String],
) -> (Value, Outcome) {
    let source = event["triggerSource"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let client = str_at(&event, &["callerContext", "clientId"]);
    if !clients.is_empty() && !clients.iter().any(|c| c == client) {
        let response = match source.as_str() {
            DEFINE => {
                json!({"challengeName": null, "issueTokens": false, "failAuthentication": true})
            }
            VERIFY => json!({"answerCorrect": false}),
            CREATE => create(nonce).0,
            _ => return (event, Outcome::Ignored),
        };
        if let Some(obj) = event.as_object_mut() {
            obj.insert("response".into(), response);
        }
        return (event, Outcome::Fail("other_client"));
    }
    let (response, outcome) = match source.as_str() {
        DEFINE => define(&event),
        CREATE => create(nonce),
        VERIFY => verify(&event, keys, now),
        _ => return (event, Outcome::Ignored),
    };
    if let Some(obj) = event.as_object_mut() {
        obj.insert("response".into(), response);
    }
    (event, outcome)
}

/// Whether a Verify failure may be due to a key this process has not loaded yet (rotation).
pub fn may_need_new_key(event: &Value, outcome: &Outcome) -> bool {
    event["triggerSource"] == VERIFY && *outcome == Outcome::Wrong("bad_signature")
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::bridge::mint_assertion;

    const POOL: &str = "eu-west-1_B";

    fn keys() -> Keyring {
        Keyring::single("b1", [3; 32])
    }

    // The shape Cognito sends (see the Lambda trigger docs); only the fields we read matter.
    fn event(source: &str, request: Value) -> Value {
        json!({
            "version": "1",
            "region": "eu-west-1",
            "userPoolId": POOL,
            "userName": "u-123",
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "c1"},
            "triggerSource": source,
            "request": request,
            "response": {},
        })
    }

    #[test]
    fn define_asks_once_then_issues_tokens_after_one_correct_answer() {
        let (e, o) = handle(
            event(DEFINE, json!({"userAttributes": {}, "session": []})),
            &keys(),
            0,
            "n".into(),
        );
        assert_eq!(o, Outcome::Challenge);
        assert_eq!(e["response"]["challengeName"], "CUSTOM_CHALLENGE");
        assert_eq!(e["response"]["issueTokens"], false);
        let ok = json!([{"challengeName": "CUSTOM_CHALLENGE", "challengeResult": true, "challengeMetadata": "RELAY_BRIDGE"}]);
        let (e, o) = handle(
            event(DEFINE, json!({"session": ok})),
            &keys(),
            0,
            "n".into(),
        );
        assert_eq!(o, Outcome::IssueTokens);
        assert_eq!(e["response"]["issueTokens"], true);
        assert_eq!(e["userName"], "u-123", "the event is returned whole");
    }

    #[test]
    fn define_fails_on_any_other_history() {
        for session in [
            json!([{"challengeName": "CUSTOM_CHALLENGE", "challengeResult": false, "challengeMetadata": "RELAY_BRIDGE"}]),
            json!([{"challengeName": "SRP_A", "challengeResult": true, "challengeMetadata": null}]),
            json!([{"challengeName": "PASSWORD_VERIFIER", "challengeResult": true}]),
            json!([{"challengeName": "CUSTOM_CHALLENGE", "challengeResult": true, "challengeMetadata": "OTHER"}]),
            json!([{"challengeName": "CUSTOM_CHALLENGE", "challengeResult": false, "challengeMetadata": "RELAY_BRIDGE"},
                   {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": true, "challengeMetadata": "RELAY_BRIDGE"}]),
        ] {
            let (e, o) = handle(
                event(DEFINE, json!({"session": session})),
                &keys(),
                0,
                "n".into(),
            );
            assert!(matches!(o, Outcome::Fail(_)), "{session}");
            assert_eq!(e["response"]["failAuthentication"], true);
            assert_eq!(e["response"]["issueTokens"], false);
        }
        // An unknown user fails after the challenge round, like a wrong answer.
        let asked = json!([{"challengeName": "CUSTOM_CHALLENGE", "challengeResult": false, "challengeMetadata": "RELAY_BRIDGE"}]);
        let (_, o) = handle(
            event(DEFINE, json!({"session": asked, "userNotFound": true})),
            &keys(),
            0,
            "n".into(),
        );
        assert_eq!(o, Outcome::Fail("user_not_found"));
    }

    #[test]
    fn create_puts_the_nonce_in_public_and_private_parameters() {
        let (e, _) = handle(
            event(
                CREATE,
                json!({"challengeName": "CUSTOM_CHALLENGE", "session": []}),
            ),
            &keys(),
            0,
            "abc".into(),
        );
        assert_eq!(e["response"]["publicChallengeParameters"]["nonce"], "abc");
        assert_eq!(e["response"]["privateChallengeParameters"]["nonce"], "abc");
        assert_eq!(e["response"]["challengeMetadata"], CHALLENGE_METADATA);
        assert_ne!(new_nonce(), new_nonce());
    }

    fn verify_event(answer: &str, nonce: &str) -> Value {
        event(
            VERIFY,
            json!({
                "userAttributes": {},
                "privateChallengeParameters": {"nonce": nonce},
                "challengeAnswer": answer,
            }),
        )
    }

    #[test]
    fn verify_accepts_only_a_bound_unexpired_signed_assertion() {
        let k = keys();
        let good = mint_assertion(&k, POOL, "u-123", "n1", 1000, 30, "srp");
        assert_eq!(
            handle(verify_event(&good, "n1"), &k, 1000, String::new()).1,
            Outcome::Correct
        );
        let cases = [
            (good.clone(), "n2", 1000, "wrong_nonce"),
            (good.clone(), "n1", 1031, "expired"),
            (
                mint_assertion(&k, "eu-west-1_A", "u-123", "n1", 1000, 30, "srp"),
                "n1",
                1000,
                "wrong_pool",
            ),
            (
                mint_assertion(&k, POOL, "someone-else", "n1", 1000, 30, "srp"),
                "n1",
                1000,
                "wrong_user",
            ),
            (
                mint_assertion(
                    &Keyring::single("b1", [4; 32]),
                    POOL,
                    "u-123",
                    "n1",
                    1000,
                    30,
                    "srp",
                ),
                "n1",
                1000,
                "bad_signature",
            ),
            (
                "anything a client might type".to_owned(),
                "n1",
                1000,
                "malformed",
            ),
        ];
        for (answer, nonce, now, why) in cases {
            let (e, o) = handle(verify_event(&answer, nonce), &k, now, String::new());
            assert_eq!(o, Outcome::Wrong(why));
            assert_eq!(e["response"]["answerCorrect"], false);
        }
        let (_, o) = handle(verify_event(&good, ""), &k, 1000, String::new());
        assert_eq!(o, Outcome::Wrong("incomplete_event"));
    }

    #[test]
    fn other_sources_are_returned_unchanged() {
        let e = event("PreSignUp_SignUp", json!({}));
        let (out, o) = handle(e.clone(), &keys(), 0, String::new());
        assert_eq!(o, Outcome::Ignored);
        assert_eq!(out, e);
    }

    #[test]
    fn only_the_relays_own_client_may_mint_and_unknown_users_are_asked_like_known_ones() {
        let k = keys();
        let clients = vec!["relay-client".to_owned()];
        let (e, o) = handle_for(
            event(DEFINE, json!({"session": []})),
            &k,
            1000,
            String::new(),
            &clients,
        );
        assert_eq!(o, Outcome::Fail("other_client"), "the event's client is c1");
        assert_eq!(e["response"]["failAuthentication"], true);
        let mut ours = event(DEFINE, json!({"session": []}));
        ours["callerContext"]["clientId"] = json!("relay-client");
        assert_eq!(
            handle_for(ours, &k, 1000, String::new(), &clients).1,
            Outcome::Challenge
        );
        // Unknown users get the same first answer as known users.
        let (e, o) = handle(
            event(DEFINE, json!({"session": [], "userNotFound": true})),
            &k,
            1000,
            String::new(),
        );
        assert_eq!(o, Outcome::Challenge);
        assert_eq!(e["response"]["challengeName"], "CUSTOM_CHALLENGE");
    }
}
