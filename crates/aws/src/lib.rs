//! Adapters from the relay's ports to AWS SDK clients: Secrets Manager, SQS, SSM (drain
//! switch) and Cognito's Admin APIs (the replicator's `UserDirectory`). Every client can be
//! pointed at an emulator with an endpoint override.
#![forbid(unsafe_code)]

pub mod cognito;
pub mod error;
pub mod forward;
pub mod limits;
pub mod liveness;
pub mod permissions;
pub mod queue;
pub mod runtime;
pub mod state;
pub mod telemetry;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};

pub use aws_config::SdkConfig;
pub use error::{Error, Failure};

pub use aws_sdk_cognitoidentityprovider as cognito_sdk;
pub use aws_sdk_sqs as sqs_sdk;

/// Shared SDK configuration for one region. `endpoint` overrides every service's endpoint
/// (the local stack's emulator); `None` uses AWS.
pub async fn sdk_config(
    region: &str,
    endpoint: Option<&str>,
    max_attempts: u32,
    operation_timeout: Duration,
) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .retry_config(RetryConfig::standard().with_max_attempts(max_attempts))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_timeout(operation_timeout)
                .build(),
        );
    if let Some(ep) = endpoint {
        loader = loader.endpoint_url(ep);
        // An emulator takes any credentials; use the environment's if set, else dummies.
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(aws_credential_types::Credentials::from_keys(
                "emulator", "emulator", None,
            ));
        }
    }
    loader.load().await
}

/// A short, secret-free description of an SDK error: the service's error code, or the kind
/// of transport failure.
pub fn describe<E, R>(e: &aws_sdk_sqs::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata,
{
    use aws_sdk_sqs::error::SdkError;
    match e {
        SdkError::ServiceError(se) => format!(
            "{}: {}",
            se.err().code().unwrap_or("ServiceError"),
            se.err().message().unwrap_or("")
        ),
        SdkError::TimeoutError(_) => "timeout".into(),
        SdkError::DispatchFailure(d) => {
            if d.is_timeout() {
                "connection timeout".into()
            } else if d.is_io() {
                "connection failure (I/O)".into()
            } else if d.is_user() {
                "connection failure (request setup: credentials or endpoint)".into()
            } else {
                "connection failure".into()
            }
        }
        SdkError::ResponseError(_) => "unreadable response".into(),
        SdkError::ConstructionFailure(_) => "request construction failure".into(),
        _ => "unknown SDK error".into(),
    }
}

/// `sdk` with the SDK's own retries off (one attempt per call), for clients whose calls the
/// caller retries itself (the replicator's paced backoff around Cognito).
pub fn without_retries(sdk: &SdkConfig) -> SdkConfig {
    sdk.to_builder()
        .retry_config(RetryConfig::disabled())
        .build()
}

/// `sdk` with other retry and time limits (a client whose calls must fail fast, e.g. the
/// proxy's rate limiter): derived from the binary's one SDK configuration, not loaded again.
pub fn with_limits(sdk: &SdkConfig, max_attempts: u32, operation_timeout: Duration) -> SdkConfig {
    sdk.to_builder()
        .retry_config(RetryConfig::standard().with_max_attempts(max_attempts))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_timeout(operation_timeout)
                .build(),
        )
        .build()
}

/// The error codes AWS services throttle with.
const THROTTLING: &[&str] = &[
    "TooManyRequestsException",
    "ThrottlingException",
    "Throttling",
    "RequestThrottled",
];

/// Whether an SDK error is the service throttling the caller.
pub fn is_throttling<E, R>(e: &aws_sdk_sqs::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata,
{
    match e {
        aws_sdk_sqs::error::SdkError::ServiceError(se) => {
            THROTTLING.contains(&se.err().code().unwrap_or_default())
        }
        _ => false,
    }
}

/// Whether an SDK error is worth retrying (throttling, 5xx, transport).
pub fn is_retryable<E, R>(e: &aws_sdk_sqs::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata,
{
    use aws_sdk_sqs::error::SdkError;
    match e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or_default();
            THROTTLING.contains(&code)
                || matches!(
                    code,
                    "InternalErrorException" | "InternalFailure" | "ServiceUnavailable"
                )
                || code.is_empty()
        }
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    }
}

/// Secrets Manager: the secret's string value.
#[derive(Clone, Debug)]
pub struct Secrets {
    client: aws_sdk_secretsmanager::Client,
}

impl Secrets {
    pub fn new(cfg: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(cfg),
        }
    }
    pub async fn get(&self, id: &str) -> Result<String, Error> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| Error::sdk(format!("GetSecretValue {id}"), &e))?;
        out.secret_string()
            .map(str::to_owned)
            .ok_or_else(|| Error::Unexpected(format!("secret {id} has no string value")))
    }
}

/// The drain switch: an SSM parameter holding `true` or `false`.
#[derive(Clone, Debug)]
pub struct DrainSwitch {
    client: aws_sdk_ssm::Client,
    name: String,
}

impl DrainSwitch {
    pub fn new(cfg: &SdkConfig, name: &str) -> Self {
        Self {
            client: aws_sdk_ssm::Client::new(cfg),
            name: name.to_owned(),
        }
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub async fn get(&self) -> Result<bool, Error> {
        let out = self
            .client
            .get_parameter()
            .name(&self.name)
            .send()
            .await
            .map_err(|e| Error::sdk(format!("GetParameter {}", self.name), &e))?;
        Ok(out
            .parameter()
            .and_then(|p| p.value())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")))
    }
    pub async fn set(&self, drained: bool) -> Result<(), Error> {
        self.client
            .put_parameter()
            .name(&self.name)
            .value(if drained { "true" } else { "false" })
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| Error::sdk(format!("PutParameter {}", self.name), &e))?;
        Ok(())
    }
}
