//! The Cognito user-pool wire protocol as the relay sees it: the action catalog, where each
//! action takes its secret, the secret hash, client mapping, refresh-token sealing and
//! Cognito-shaped errors. Pure: no I/O, no async runtime, no SDK.
#![forbid(unsafe_code)]

pub mod bridge;
pub mod catalog;
pub mod error;
pub mod hash;
pub mod jwt;
pub mod prepare;
pub mod seal;
pub mod session;
pub mod srp;
pub mod totp;

pub use catalog::{
    lookup, ActionSpec, Mutation, RefreshTokenAt, SecretPlacement, CATALOG, TARGET_PREFIX,
};
pub use error::{ErrorKind, WireError};
pub use hash::secret_hash;
pub use prepare::{
    prepare, seal_response_tokens, ClientMapping, ClientsError, Prepared, RegionalClient,
};
