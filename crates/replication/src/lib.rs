//! Replication events (schema v2, authenticated), how the proxy builds them from a successful call, and the
//! pure apply rules the replicator follows over a `UserDirectory` port.
#![forbid(unsafe_code)]

pub mod apply;
pub mod build;
pub mod event;
pub mod pacing;
pub mod pending;
pub mod state;
pub mod user;

pub use apply::{
    apply, apply_tallied, plan, ApplyConfig, ApplyError, ConfirmVerifies, Outcome, Step, Tally,
    UserDirectory, UserState,
};
pub use build::{build_change, UserIdentity};
pub use event::{Attr, Change, Envelope, Event, EventError, Header, OrderKey, EVENT_VERSION};
pub use state::{MemoryStore, StateStore, StoreError, UserRecord};
pub use user::{SignInAlias, UnknownAlias, UserStatus};
