//! The proxy crate's error: configuration that cannot run, and what its ports report when the
//! outside world does not answer. What a *client* gets is always a `wire::WireError`; this type
//! is for the process (start-up, health, logs). Its text is secret-free.

/// Why the proxy cannot start, or why one of its ports failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Invalid configuration; the text names the variable.
    #[error("{0}")]
    Config(String),
    /// An AWS adapter call failed (its retryability is in the variant it carries).
    #[error(transparent)]
    Aws(#[from] relay_aws::Error),
    /// The region's state table (high-water marks, bridge records).
    #[error(transparent)]
    Store(#[from] replication::StoreError),
    /// The clients secret is malformed.
    #[error(transparent)]
    Clients(#[from] wire::ClientsError),
    /// A keyring secret is malformed.
    #[error("{id}: {source}")]
    Keyring {
        id: String,
        source: wire::seal::SealError,
    },
    /// The home pool's Admin API (the sign-up finisher's reads and deletes).
    #[error(transparent)]
    Directory(#[from] replication::ApplyError),
    /// A check that did not answer in time.
    #[error("timeout")]
    Timeout,
    /// The process cannot set itself up (runtime, HTTP client).
    #[error("{0}")]
    Setup(String),
}

impl Error {
    /// A port that cannot reach its service (test stand-ins and transport failures).
    pub fn unreachable(text: impl Into<String>) -> Self {
        Self::Aws(relay_aws::Error::Call {
            failure: relay_aws::Failure::Transient,
            text: text.into(),
        })
    }
}
