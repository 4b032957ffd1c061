//! The replicator crate's error: configuration that cannot run, and a start that cannot read
//! what it needs (the replication key). Whether an *event* is retried is decided elsewhere, by
//! `replication::ApplyError`'s variant.

/// Why the replicator cannot start, or a port failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Invalid configuration; the text names the variable.
    #[error("{0}")]
    Config(String),
    /// An AWS adapter call failed.
    #[error(transparent)]
    Aws(#[from] relay_aws::Error),
    /// The replication keyring secret is malformed.
    #[error("replication key: {0}")]
    Keyring(#[from] wire::seal::SealError),
    /// A port (queue, key source, pool probe) failed.
    #[error("{0}")]
    Port(String),
}

impl From<crate::ports::PortError> for Error {
    fn from(e: crate::ports::PortError) -> Self {
        Self::Port(e.0)
    }
}
