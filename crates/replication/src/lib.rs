//! Replication events (schema v1), how the proxy builds them from a successful call, and the
//! pure apply rules the replicator follows over a `UserDirectory` port.
#![forbid(unsafe_code)]

pub mod apply;
pub mod build;
pub mod event;
pub mod pacing;

pub use apply::{apply, plan, ApplyConfig, ApplyError, Outcome, Step, UserDirectory, UserState};
pub use build::{build_change, UserIdentity};
pub use event::{Attr, Change, Event, EVENT_VERSION};
