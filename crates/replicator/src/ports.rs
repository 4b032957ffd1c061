//! The replicator's ports beyond the pool and the state table (`replication::UserDirectory`,
//! `replication::StateStore`): the inbound queue the standalone worker polls, the source of the
//! replication keyring, and the cheap probe of the home pool. The SQS / Secrets Manager /
//! Cognito adapters live here too; the tests use in-memory fakes.

use std::future::Future;

use wire::seal::Keyring;

use crate::Inbound;

/// What an adapter behind a port reported (a secret-free description).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PortError(pub String);

impl PortError {
    /// From any displayable adapter error.
    pub fn from_display(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// A message taken off the inbound queue: the message and the handle that deletes it.
#[derive(Debug, Clone)]
pub struct Received {
    pub message: Inbound,
    pub receipt: String,
}

/// The inbound queue, as the standalone worker sees it.
pub trait InboundQueue: Sync {
    /// Up to ten messages, long-polling briefly; empty when there are none.
    fn receive(&self) -> impl Future<Output = Result<Vec<Received>, PortError>> + Send;
    /// Removes a settled message for good.
    fn delete(&self, receipt: &str) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Where the replication keyring is (re-)read from.
pub trait KeySource: Send + Sync {
    fn read(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Keyring, PortError>> + Send + '_>>;
}

/// The cheap call that says whether the home pool answers (before taking more events off the
/// queue after a batch in which nothing applied).
pub trait PoolProbe: Sync {
    fn ping(&self) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// The inbound queue over SQS.
pub struct SqsInbound<'a> {
    pub queues: &'a relay_aws::queue::Queues,
    pub url: &'a str,
}

impl InboundQueue for SqsInbound<'_> {
    async fn receive(&self) -> Result<Vec<Received>, PortError> {
        let batch = self
            .queues
            .receive(self.url, 10, 2, None)
            .await
            .map_err(PortError::from_display)?;
        Ok(batch
            .into_iter()
            .map(|m| Received {
                message: Inbound {
                    message_id: m.message_id,
                    body: m.body,
                    receive_count: m.receive_count,
                    group_id: m.group_id,
                },
                receipt: m.receipt_handle,
            })
            .collect())
    }
    async fn delete(&self, receipt: &str) -> Result<(), PortError> {
        self.queues
            .delete(self.url, receipt)
            .await
            .map_err(PortError::from_display)
    }
}

/// The keyring in a Secrets Manager secret.
pub struct SecretKeys {
    pub secrets: relay_aws::Secrets,
    pub secret_id: String,
}

impl KeySource for SecretKeys {
    fn read(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Keyring, PortError>> + Send + '_>> {
        Box::pin(async move {
            let text = self
                .secrets
                .get(&self.secret_id)
                .await
                .map_err(PortError::from_display)?;
            Keyring::from_json(&text).map_err(PortError::from_display)
        })
    }
}

impl PoolProbe for relay_aws::cognito::Pool {
    async fn ping(&self) -> Result<(), PortError> {
        relay_aws::cognito::Pool::ping(self)
            .await
            .map_err(PortError::from_display)
    }
}
