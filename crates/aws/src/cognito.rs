//! Cognito Admin APIs: the replicator's `UserDirectory`, the proxy's health call, and the
//! reads `relayctl reconcile` needs.

use aws_config::SdkConfig;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, DeliveryMediumType, EmailMfaSettingsType, MessageActionType, MfaOptionType,
    SmsMfaSettingsType, UserStatusType, UserType,
};
use aws_sdk_cognitoidentityprovider::Client;
use replication::{ApplyError, Attr, SignInAlias, Step, UserDirectory, UserState, UserStatus};
use serde_json::Value;

#[derive(Clone, Debug)]
pub struct Pool {
    client: Client,
    pool_id: String,
    /// `UsernameAttributes` of the pool (e.g. `email`); empty for username pools.
    alias_attributes: Vec<SignInAlias>,
}

fn classify<E: ProvideErrorMetadata, R>(op: &str, e: SdkError<E, R>) -> ApplyError {
    let text = format!("{op}: {}", crate::describe(&e));
    if crate::is_throttling(&e) {
        ApplyError::Throttled(text)
    } else if crate::is_retryable(&e) {
        ApplyError::Retryable(text)
    } else {
        ApplyError::Permanent(text)
    }
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

fn attrs_in(list: &[AttributeType]) -> Vec<Attr> {
    list.iter()
        .map(|a| Attr {
            name: a.name().to_owned(),
            value: a.value().unwrap_or_default().to_owned(),
        })
        .collect()
}

fn attrs_out(list: &[Attr]) -> Vec<AttributeType> {
    list.iter()
        .filter_map(|a| {
            AttributeType::builder()
                .name(&a.name)
                .value(&a.value)
                .build()
                .ok()
        })
        .collect()
}

/// The SDK's `UserStatusType` as the relay's [`UserStatus`] (absent: `Unknown`).
pub fn status(s: Option<&UserStatusType>) -> UserStatus {
    s.map_or(UserStatus::Unknown, |s| UserStatus::parse(s.as_str()))
}

pub fn user_state(u: &UserType) -> UserState {
    UserState {
        username: u.username().unwrap_or_default().to_owned(),
        status: status(u.user_status()),
        enabled: u.enabled(),
        attributes: attrs_in(u.attributes()),
    }
}

impl Pool {
    pub fn new(cfg: &SdkConfig, pool_id: &str, alias_attributes: Vec<SignInAlias>) -> Self {
        Self {
            client: Client::new(cfg),
            pool_id: pool_id.to_owned(),
            alias_attributes,
        }
    }

    /// Over a given client (tests use a mocked one).
    pub fn from_client(client: Client, pool_id: &str, alias_attributes: Vec<SignInAlias>) -> Self {
        Self {
            client,
            pool_id: pool_id.to_owned(),
            alias_attributes,
        }
    }

    pub fn id(&self) -> &str {
        &self.pool_id
    }

    /// The cheap call behind `/health`.
    pub async fn ping(&self) -> Result<(), crate::Error> {
        self.client
            .describe_user_pool()
            .user_pool_id(&self.pool_id)
            .send()
            .await
            .map_err(|e| crate::Error::sdk_bare(&e))?;
        Ok(())
    }

    /// One page of users (for reconcile and backfill).
    pub async fn list_page(
        &self,
        token: Option<String>,
    ) -> Result<(Vec<UserState>, Option<String>), crate::Error> {
        let out = self
            .client
            .list_users()
            .user_pool_id(&self.pool_id)
            .limit(60)
            .set_pagination_token(token)
            .send()
            .await
            .map_err(|e| crate::Error::sdk_bare(&e))?;
        Ok((
            out.users().iter().map(user_state).collect(),
            out.pagination_token().map(str::to_owned),
        ))
    }

    async fn find_by_alias(&self, key: &str) -> Result<Option<UserState>, ApplyError> {
        for attr in &self.alias_attributes {
            let filter = format!("{attr} = \"{}\"", key.replace('"', ""));
            let out = self
                .client
                .list_users()
                .user_pool_id(&self.pool_id)
                .filter(filter)
                .limit(2)
                .send()
                .await
                .map_err(|e| classify("ListUsers", e))?;
            if let Some(u) = out.users().first() {
                return Ok(Some(user_state(u)));
            }
        }
        Ok(None)
    }
}

impl UserDirectory for Pool {
    async fn get_user(&self, key: &str) -> Result<Option<UserState>, ApplyError> {
        match self
            .client
            .admin_get_user()
            .user_pool_id(&self.pool_id)
            .username(key)
            .send()
            .await
        {
            Ok(u) => Ok(Some(UserState {
                username: u.username().to_owned(),
                status: status(u.user_status()),
                enabled: u.enabled(),
                attributes: attrs_in(u.user_attributes()),
            })),
            Err(e) if code(&e) == Some("UserNotFoundException") => {
                if self.alias_attributes.is_empty() {
                    Ok(None)
                } else {
                    self.find_by_alias(key).await
                }
            }
            Err(e) => Err(classify("AdminGetUser", e)),
        }
    }

    async fn create_user(&self, key: &str, attributes: &[Attr]) -> Result<UserState, ApplyError> {
        let mut attributes = attributes.to_vec();
        // In pools that sign in by e-mail or phone, the key is that attribute's value.
        for attr in &self.alias_attributes {
            if attr.looks_like(key) && !attributes.iter().any(|a| a.name == attr.as_str()) {
                attributes.push(Attr {
                    name: attr.as_str().to_owned(),
                    value: key.to_owned(),
                });
            }
        }
        let res = self
            .client
            .admin_create_user()
            .user_pool_id(&self.pool_id)
            .username(key)
            .set_user_attributes(Some(attrs_out(&attributes)))
            .message_action(MessageActionType::Suppress)
            .send()
            .await;
        match res {
            Ok(out) => Ok(out.user().map(user_state).unwrap_or(UserState {
                username: key.to_owned(),
                status: UserStatus::ForceChangePassword,
                enabled: true,
                attributes,
            })),
            Err(e)
                if matches!(
                    code(&e),
                    Some("UsernameExistsException" | "AliasExistsException")
                ) =>
            {
                self.get_user(key).await?.ok_or_else(|| {
                    ApplyError::Retryable("user exists but cannot be read yet".into())
                })
            }
            Err(e) => Err(classify("AdminCreateUser", e)),
        }
    }

    async fn run(&self, username: &str, step: &Step) -> Result<(), ApplyError> {
        let c = &self.client;
        let p = &self.pool_id;
        macro_rules! go {
            ($op:literal, $fut:expr) => {
                match $fut.await {
                    Ok(_) => Ok(()),
                    Err(e)
                        if code(&e) == Some("UserNotFoundException")
                            && matches!(step, Step::Delete | Step::GlobalSignOut) =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(classify($op, e)),
                }
            };
        }
        match step {
            Step::Create { .. } => Err(ApplyError::Permanent(
                "Create is run through create_user".into(),
            )),
            Step::SetPassword(pw) => go!(
                "AdminSetUserPassword",
                c.admin_set_user_password()
                    .user_pool_id(p)
                    .username(username)
                    .password(&pw.0)
                    .permanent(true)
                    .send()
            ),
            Step::SetEnabled(true) => go!(
                "AdminEnableUser",
                c.admin_enable_user()
                    .user_pool_id(p)
                    .username(username)
                    .send()
            ),
            Step::SetEnabled(false) => go!(
                "AdminDisableUser",
                c.admin_disable_user()
                    .user_pool_id(p)
                    .username(username)
                    .send()
            ),
            Step::UpdateAttributes(a) => go!(
                "AdminUpdateUserAttributes",
                c.admin_update_user_attributes()
                    .user_pool_id(p)
                    .username(username)
                    .set_user_attributes(Some(attrs_out(a)))
                    .send()
            ),
            Step::DeleteAttributes(n) => go!(
                "AdminDeleteUserAttributes",
                c.admin_delete_user_attributes()
                    .user_pool_id(p)
                    .username(username)
                    .set_user_attribute_names(Some(n.clone()))
                    .send()
            ),
            Step::SetMfa(s) => {
                let flag =
                    |k: &str, f: &str| s.get(k).and_then(|v| v.get(f)).and_then(Value::as_bool);
                let mut req = c
                    .admin_set_user_mfa_preference()
                    .user_pool_id(p)
                    .username(username);
                if s.get("SMSMfaSettings").is_some() {
                    req = req.sms_mfa_settings(
                        SmsMfaSettingsType::builder()
                            .set_enabled(flag("SMSMfaSettings", "Enabled"))
                            .set_preferred_mfa(flag("SMSMfaSettings", "PreferredMfa"))
                            .build(),
                    );
                }
                if s.get("EmailMfaSettings").is_some() {
                    req = req.email_mfa_settings(
                        EmailMfaSettingsType::builder()
                            .set_enabled(flag("EmailMfaSettings", "Enabled"))
                            .set_preferred_mfa(flag("EmailMfaSettings", "PreferredMfa"))
                            .build(),
                    );
                }
                go!("AdminSetUserMFAPreference", req.send())
            }
            Step::SetSettings(opts) => {
                let list: Vec<MfaOptionType> = opts
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|o| {
                                MfaOptionType::builder()
                                    .set_delivery_medium(
                                        o.get("DeliveryMedium")
                                            .and_then(Value::as_str)
                                            .map(DeliveryMediumType::from),
                                    )
                                    .set_attribute_name(
                                        o.get("AttributeName")
                                            .and_then(Value::as_str)
                                            .map(str::to_owned),
                                    )
                                    .build()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                go!(
                    "AdminSetUserSettings",
                    c.admin_set_user_settings()
                        .user_pool_id(p)
                        .username(username)
                        .set_mfa_options(Some(list))
                        .send()
                )
            }
            Step::Delete => go!(
                "AdminDeleteUser",
                c.admin_delete_user()
                    .user_pool_id(p)
                    .username(username)
                    .send()
            ),
            Step::GlobalSignOut => go!(
                "AdminUserGlobalSignOut",
                c.admin_user_global_sign_out()
                    .user_pool_id(p)
                    .username(username)
                    .send()
            ),
        }
    }
}
