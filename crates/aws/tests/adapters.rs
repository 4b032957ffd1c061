//! The SDK adapters against mocked AWS clients (aws-smithy-mocks): what each adapter sends
//! (queue URL, FIFO group and dedup id, the DLQ reason, the pool id, a message suppressed) and
//! how it reads answers and errors (message attributes, queue depth, a user that is not there,
//! retryable vs permanent). No network: the mock interceptor answers every call.

use aws_sdk_cognitoidentityprovider as cip;
use aws_sdk_sqs as sqs;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use relay_aws::cognito::Pool;
use relay_aws::queue::Queues;
use replication::{Attr, Step, UserDirectory};

fn sqs_client(rules: &[&Rule]) -> sqs::Client {
    let mut mocks = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for r in rules {
        mocks = mocks.with_rule(r);
    }
    let conf = sqs::Config::builder()
        .behavior_version(sqs::config::BehaviorVersion::latest())
        .region(sqs::config::Region::new("eu-west-1"))
        .credentials_provider(sqs::config::Credentials::for_tests())
        .http_client(create_mock_http_client())
        .interceptor(mocks)
        .build();
    sqs::Client::from_conf(conf)
}

fn idp_client(rules: &[&Rule]) -> cip::Client {
    let mut mocks = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for r in rules {
        mocks = mocks.with_rule(r);
    }
    let conf = cip::Config::builder()
        .behavior_version(cip::config::BehaviorVersion::latest())
        .region(cip::config::Region::new("eu-west-1"))
        .credentials_provider(cip::config::Credentials::for_tests())
        .http_client(create_mock_http_client())
        .interceptor(mocks)
        .build();
    cip::Client::from_conf(conf)
}

const Q: &str = "https://sqs.eu-west-1.amazonaws.com/1/inbound.fifo";

#[tokio::test]
async fn send_puts_the_group_dedup_id_and_reason_on_the_message() {
    let send = mock!(sqs::Client::send_message)
        .match_requests(|r| {
            r.queue_url() == Some(Q)
                && r.message_body() == Some("sealed")
                && r.message_group_id() == Some("group-1")
                && r.message_deduplication_id() == Some("event-1")
                && r.message_attributes()
                    .and_then(|a| a.get("reason"))
                    .and_then(|v| v.string_value())
                    == Some("gave up after 5 attempts")
        })
        .then_output(|| {
            sqs::operation::send_message::SendMessageOutput::builder()
                .message_id("m-1")
                .build()
        });
    let q = Queues::from_client(sqs_client(&[&send]));
    q.send(
        Q,
        "sealed",
        "group-1",
        "event-1",
        Some("gave up after 5 attempts"),
    )
    .await
    .expect("the matching rule answers");
    assert_eq!(send.num_calls(), 1);
}

#[tokio::test]
async fn a_refused_send_is_an_error_naming_the_call_and_code() {
    let refused = mock!(sqs::Client::send_message).then_error(|| {
        sqs::operation::send_message::SendMessageError::generic(
            sqs::error::ErrorMetadata::builder()
                .code("AccessDenied")
                .message("not allowed")
                .build(),
        )
    });
    let q = Queues::from_client(sqs_client(&[&refused]));
    let e = q.send(Q, "b", "g", "d", None).await.expect_err("refused");
    let text = e.to_string();
    assert!(
        text.contains("SendMessage") && text.contains("AccessDenied"),
        "{text}"
    );
}

#[tokio::test]
async fn receive_reads_the_system_and_reason_attributes() {
    use sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName as A};
    let recv = mock!(sqs::Client::receive_message)
        .match_requests(|r| r.queue_url() == Some(Q) && r.max_number_of_messages() == Some(10))
        .then_output(|| {
            sqs::operation::receive_message::ReceiveMessageOutput::builder()
                .messages(
                    Message::builder()
                        .message_id("m-1")
                        .receipt_handle("rh-1")
                        .body("sealed")
                        .attributes(A::ApproximateReceiveCount, "3")
                        .attributes(A::MessageGroupId, "group-1")
                        .attributes(A::SentTimestamp, "1700000000000")
                        .message_attributes(
                            "reason",
                            MessageAttributeValue::builder()
                                .data_type("String")
                                .string_value("not JSON")
                                .build()
                                .expect("data type is set"),
                        )
                        .build(),
                )
                .messages(Message::builder().message_id("m-2").body("x").build())
                .build()
        });
    let q = Queues::from_client(sqs_client(&[&recv]));
    let got = q.receive(Q, 10, 0, None).await.expect("answered");
    assert_eq!(got.len(), 2);
    let m = &got[0];
    assert_eq!(
        (
            m.message_id.as_str(),
            m.receipt_handle.as_str(),
            m.body.as_str()
        ),
        ("m-1", "rh-1", "sealed")
    );
    assert_eq!(m.receive_count, 3);
    assert_eq!(m.group_id.as_deref(), Some("group-1"));
    assert_eq!(m.sent_ms, Some(1_700_000_000_000));
    assert_eq!(m.reason.as_deref(), Some("not JSON"));
    let bare = &got[1];
    assert_eq!(
        (
            bare.receive_count,
            bare.group_id.as_deref(),
            bare.reason.as_deref()
        ),
        (1, None, None),
        "absent attributes: first delivery, no group, no reason"
    );
}

#[tokio::test]
async fn depth_counts_visible_and_in_flight_and_absent_means_zero() {
    use sqs::types::QueueAttributeName as N;
    let full = mock!(sqs::Client::get_queue_attributes)
        .match_requests(|r| r.queue_url() == Some(Q))
        .then_output(|| {
            sqs::operation::get_queue_attributes::GetQueueAttributesOutput::builder()
                .attributes(N::ApproximateNumberOfMessages, "7")
                .attributes(N::ApproximateNumberOfMessagesNotVisible, "2")
                .build()
        });
    let empty = mock!(sqs::Client::get_queue_attributes)
        .match_requests(|r| r.queue_url() == Some("other"))
        .then_output(|| {
            sqs::operation::get_queue_attributes::GetQueueAttributesOutput::builder().build()
        });
    let q = Queues::from_client(sqs_client(&[&full, &empty]));
    let d = q.depth(Q).await.expect("answered");
    assert_eq!((d.visible, d.in_flight), (7, 2));
    let d = q.depth("other").await.expect("answered");
    assert_eq!((d.visible, d.in_flight), (0, 0));
}

fn not_found() -> cip::error::ErrorMetadata {
    cip::error::ErrorMetadata::builder()
        .code("UserNotFoundException")
        .message("User does not exist.")
        .build()
}

#[tokio::test]
async fn get_user_reads_the_user_and_a_missing_one_is_none() {
    use cip::operation::admin_get_user::{AdminGetUserError, AdminGetUserOutput};
    use cip::types::{AttributeType, UserStatusType};
    let found = mock!(cip::Client::admin_get_user)
        .match_requests(|r| r.user_pool_id() == Some("eu-west-1_P") && r.username() == Some("ada"))
        .then_output(|| {
            AdminGetUserOutput::builder()
                .username("ada")
                .enabled(false)
                .user_status(UserStatusType::Confirmed)
                .user_attributes(
                    AttributeType::builder()
                        .name("name")
                        .value("Ada")
                        .build()
                        .expect("name is set"),
                )
                .build()
                .expect("username is set")
        });
    let missing = mock!(cip::Client::admin_get_user)
        .match_requests(|r| r.username() == Some("nobody"))
        .then_error(|| AdminGetUserError::generic(not_found()));
    let pool = Pool::from_client(idp_client(&[&found, &missing]), "eu-west-1_P", vec![]);
    let u = pool
        .get_user("ada")
        .await
        .expect("answered")
        .expect("found");
    assert_eq!(
        (u.username.as_str(), u.status.as_str(), u.enabled),
        ("ada", "CONFIRMED", false)
    );
    assert_eq!(u.attr("name"), Some("Ada"));
    assert_eq!(pool.get_user("nobody").await.expect("answered"), None);
}

#[tokio::test]
async fn in_an_email_pool_a_key_not_found_by_username_is_looked_up_by_the_alias() {
    use cip::operation::admin_get_user::AdminGetUserError;
    use cip::operation::list_users::ListUsersOutput;
    use cip::types::{AttributeType, UserType};
    let by_username =
        mock!(cip::Client::admin_get_user).then_error(|| AdminGetUserError::generic(not_found()));
    let by_alias = mock!(cip::Client::list_users)
        .match_requests(|r| r.filter() == Some("email = \"moved@x.io\""))
        .then_output(|| {
            ListUsersOutput::builder()
                .users(
                    UserType::builder()
                        .username("uuid-1")
                        .enabled(true)
                        .attributes(
                            AttributeType::builder()
                                .name("email")
                                .value("moved@x.io")
                                .build()
                                .expect("name is set"),
                        )
                        .build(),
                )
                .build()
        });
    let pool = Pool::from_client(
        idp_client(&[&by_username, &by_alias]),
        "eu-west-1_P",
        vec![replication::SignInAlias::Email],
    );
    let u = pool
        .get_user("moved@x.io")
        .await
        .expect("answered")
        .expect("found by the alias");
    assert_eq!(u.username, "uuid-1");
    assert_eq!(by_alias.num_calls(), 1);
}

#[tokio::test]
async fn create_user_suppresses_the_invitation_and_adds_the_alias_attribute() {
    use cip::operation::admin_create_user::AdminCreateUserOutput;
    use cip::types::MessageActionType;
    let create = mock!(cip::Client::admin_create_user)
        .match_requests(|r| {
            r.message_action() == Some(&MessageActionType::Suppress)
                && r.username() == Some("ada@x.io")
                && r.user_attributes()
                    .iter()
                    .any(|a| a.name() == "email" && a.value() == Some("ada@x.io"))
                && r.user_attributes()
                    .iter()
                    .any(|a| a.name() == "name" && a.value() == Some("Ada"))
        })
        .then_output(|| AdminCreateUserOutput::builder().build());
    let pool = Pool::from_client(
        idp_client(&[&create]),
        "eu-west-1_P",
        vec![replication::SignInAlias::Email],
    );
    let u = pool
        .create_user(
            "ada@x.io",
            &[Attr {
                name: "name".into(),
                value: "Ada".into(),
            }],
        )
        .await
        .expect("created");
    assert_eq!(create.num_calls(), 1);
    assert_eq!(u.status, replication::UserStatus::ForceChangePassword);
    assert_eq!(u.attr("email"), Some("ada@x.io"));
}

#[tokio::test]
async fn steps_classify_errors_and_deleting_a_missing_user_succeeds() {
    use cip::operation::admin_delete_user::{AdminDeleteUserError, AdminDeleteUserOutput};
    use cip::operation::admin_disable_user::AdminDisableUserError;
    use cip::operation::admin_enable_user::AdminEnableUserError;
    let gone = mock!(cip::Client::admin_delete_user)
        .match_requests(|r| r.username() == Some("gone"))
        .then_error(|| AdminDeleteUserError::generic(not_found()));
    let deleted = mock!(cip::Client::admin_delete_user)
        .match_requests(|r| r.username() == Some("here"))
        .then_output(|| AdminDeleteUserOutput::builder().build());
    let throttled = mock!(cip::Client::admin_enable_user).then_error(|| {
        AdminEnableUserError::generic(
            cip::error::ErrorMetadata::builder()
                .code("TooManyRequestsException")
                .message("Rate exceeded")
                .build(),
        )
    });
    let refused = mock!(cip::Client::admin_disable_user).then_error(|| {
        AdminDisableUserError::generic(
            cip::error::ErrorMetadata::builder()
                .code("InvalidParameterException")
                .message("bad")
                .build(),
        )
    });
    let pool = Pool::from_client(
        idp_client(&[&gone, &deleted, &throttled, &refused]),
        "eu-west-1_P",
        vec![],
    );
    pool.run("gone", &Step::Delete)
        .await
        .expect("a user already gone is deleted");
    pool.run("here", &Step::Delete).await.expect("deleted");
    let e = pool
        .run("u", &Step::SetEnabled(true))
        .await
        .expect_err("throttled");
    assert!(
        e.is_retryable() && e.to_string().contains("AdminEnableUser"),
        "{e}"
    );
    let e = pool
        .run("u", &Step::SetEnabled(false))
        .await
        .expect_err("refused");
    assert!(
        !e.is_retryable() && e.to_string().contains("InvalidParameterException"),
        "{e}"
    );
    let e = pool
        .run("u", &Step::Create { attributes: vec![] })
        .await
        .expect_err("Create goes through create_user");
    assert!(!e.is_retryable());
}
