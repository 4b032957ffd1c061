//! Cognito-shaped errors: `{"__type": "...", "message": "..."}`, header `x-amzn-ErrorType`.

use std::fmt;

/// The Cognito exception names the relay answers itself (`__type` / `x-amzn-ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidParameter,
    NotAuthorized,
    UnknownOperation,
    ResourceNotFound,
    TooManyRequests,
    InternalError,
    ServiceUnavailable,
    Serialization,
    UserLambdaValidation,
    CodeMismatch,
    UserNotConfirmed,
}

impl ErrorKind {
    /// The exception name exactly as Cognito spells it on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidParameter => "InvalidParameterException",
            Self::NotAuthorized => "NotAuthorizedException",
            Self::UnknownOperation => "UnknownOperationException",
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::TooManyRequests => "TooManyRequestsException",
            Self::InternalError => "InternalErrorException",
            Self::ServiceUnavailable => "ServiceUnavailableException",
            Self::Serialization => "SerializationException",
            Self::UserLambdaValidation => "UserLambdaValidationException",
            Self::CodeMismatch => "CodeMismatchException",
            Self::UserNotConfirmed => "UserNotConfirmedException",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lets tests and logs compare a kind with its wire name.
impl PartialEq<&str> for ErrorKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An error the relay answers itself, in Cognito's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// HTTP status (400 for client errors, 5xx for upstream trouble).
    pub status: u16,
    /// Cognito exception, e.g. [`ErrorKind::InvalidParameter`].
    pub kind: ErrorKind,
    pub message: String,
}

impl WireError {
    pub fn new(status: u16, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(400, ErrorKind::InvalidParameter, message)
    }
    pub fn not_authorized(message: impl Into<String>) -> Self {
        Self::new(400, ErrorKind::NotAuthorized, message)
    }
    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new(400, ErrorKind::UnknownOperation, message)
    }
    pub fn resource_not_found(message: impl Into<String>) -> Self {
        Self::new(400, ErrorKind::ResourceNotFound, message)
    }
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(400, ErrorKind::TooManyRequests, message)
    }
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(400, ErrorKind::Serialization, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, ErrorKind::InternalError, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, ErrorKind::ServiceUnavailable, message)
    }

    /// The JSON body Cognito would send.
    pub fn body(&self) -> String {
        serde_json::json!({ "__type": self.kind.as_str(), "message": self.message }).to_string()
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for WireError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_cognito_shaped_and_byte_stable() {
        let e = WireError::invalid_parameter("bad \"x\"");
        assert_eq!(
            e.body(),
            r#"{"__type":"InvalidParameterException","message":"bad \"x\""}"#
        );
        assert_eq!(e.to_string(), "InvalidParameterException: bad \"x\"");
    }
}
