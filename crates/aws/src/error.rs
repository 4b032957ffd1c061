//! The adapters' error: what failed, and whether another attempt may succeed, decided from the
//! SDK error's type and code (never from its text).

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

/// Whether a failed call is worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The service throttled the caller: retry later, paced.
    Throttled,
    /// 5xx, timeouts, connection trouble: retry later.
    Transient,
    /// The request itself is wrong (validation, access, missing resource): retrying will not help.
    Permanent,
}

/// An adapter call that did not give the relay what it needs. The text is secret-free.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An AWS call failed; `text` names the operation and the service's code or transport failure.
    #[error("{text}")]
    Call { failure: Failure, text: String },
    /// The call succeeded but its answer is not usable (e.g. a secret with no string value).
    #[error("{0}")]
    Unexpected(String),
    /// Configuration from the environment is invalid; the text names the variable.
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// A failed SDK call of operation `op` (`"{op}: {code}: {message}"`).
    pub fn sdk<E: ProvideErrorMetadata, R>(op: impl std::fmt::Display, e: &SdkError<E, R>) -> Self {
        Self::Call {
            failure: Failure::of(e),
            text: format!("{op}: {}", crate::describe(e)),
        }
    }

    /// A failed SDK call described without the operation's name (the health check's reason).
    pub fn sdk_bare<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Self {
        Self::Call {
            failure: Failure::of(e),
            text: crate::describe(e),
        }
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Call {
                failure: Failure::Throttled | Failure::Transient,
                ..
            }
        )
    }
}

impl Failure {
    /// The class of an SDK error (see [`crate::is_throttling`], [`crate::is_retryable`]).
    pub fn of<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Self {
        if crate::is_throttling(e) {
            Self::Throttled
        } else if crate::is_retryable(e) {
            Self::Transient
        } else {
            Self::Permanent
        }
    }
}

/// For callers whose errors are only messages (the `relayctl` CLI reports and exits).
impl From<Error> for String {
    fn from(e: Error) -> Self {
        e.to_string()
    }
}
