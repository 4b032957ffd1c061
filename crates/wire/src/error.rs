//! Cognito-shaped errors: `{"__type": "...", "message": "..."}`, header `x-amzn-ErrorType`.

use std::fmt;

/// An error the relay answers itself, in Cognito's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// HTTP status (400 for client errors, 5xx for upstream trouble).
    pub status: u16,
    /// Cognito exception name, e.g. `InvalidParameterException`.
    pub kind: &'static str,
    pub message: String,
}

impl WireError {
    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidParameterException", message)
    }
    pub fn not_authorized(message: impl Into<String>) -> Self {
        Self::new(400, "NotAuthorizedException", message)
    }
    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new(400, "UnknownOperationException", message)
    }
    pub fn resource_not_found(message: impl Into<String>) -> Self {
        Self::new(400, "ResourceNotFoundException", message)
    }
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(400, "TooManyRequestsException", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalErrorException", message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailableException", message)
    }

    /// The JSON body Cognito would send.
    pub fn body(&self) -> String {
        serde_json::json!({ "__type": self.kind, "message": self.message }).to_string()
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for WireError {}
