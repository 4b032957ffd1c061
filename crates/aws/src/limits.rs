//! Shared rate-limit counters on DynamoDB: one item per (key, window), `pk` = the key and the
//! window, a number `c` incremented atomically with `ADD` (no read-modify-write race between
//! instances), and a TTL attribute `ttl` so finished windows expire by themselves.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CounterError {
    /// DynamoDB could not be asked (network, throttling, permissions, missing table).
    #[error("the limits table cannot be reached: {0}")]
    Unavailable(String),
}

#[derive(Clone, Debug)]
pub struct Counters {
    client: aws_sdk_dynamodb::Client,
    name: String,
}

fn unavailable<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    what: &str,
    e: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> CounterError {
    use aws_sdk_dynamodb::error::SdkError;
    let why = match e {
        SdkError::ServiceError(se) => se.err().code().unwrap_or("ServiceError").to_owned(),
        SdkError::TimeoutError(_) => "timeout".into(),
        SdkError::DispatchFailure(_) => "connection failure".into(),
        _ => "request failed".into(),
    };
    CounterError::Unavailable(format!("{what}: {why}"))
}

impl Counters {
    pub fn new(cfg: &SdkConfig, name: &str) -> Self {
        Self {
            client: aws_sdk_dynamodb::Client::new(cfg),
            name: name.to_owned(),
        }
    }

    /// Adds `n` to counter `pk` (which expires at `expires_at`, Unix seconds) and returns the
    /// new total: one `UpdateItem`.
    pub async fn add(&self, pk: &str, n: u32, expires_at: u64) -> Result<u64, CounterError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .update_expression("ADD c :n SET #t = if_not_exists(#t, :ttl)")
            .expression_attribute_names("#t", "ttl")
            .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
            .expression_attribute_values(":ttl", AttributeValue::N(expires_at.to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| unavailable("UpdateItem", &e))?;
        Ok(out
            .attributes()
            .and_then(|a| a.get("c"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(u64::from(n)))
    }

    /// The counter `pk` (0 when absent): one `GetItem` (eventually consistent; a counter read
    /// a moment late is one more attempt, not a hole).
    pub async fn get(&self, pk: &str) -> Result<u64, CounterError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .projection_expression("c")
            .send()
            .await
            .map_err(|e| unavailable("GetItem", &e))?;
        Ok(out
            .item()
            .and_then(|i| i.get("c"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Sets counter `pk` to `value` unless it already holds as much (a lock's end): one
    /// conditional `UpdateItem`; a higher value already there is success.
    pub async fn raise(&self, pk: &str, value: u64, expires_at: u64) -> Result<(), CounterError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .update_expression("SET c = :v, #t = :ttl")
            .condition_expression("attribute_not_exists(c) OR c < :v")
            .expression_attribute_names("#t", "ttl")
            .expression_attribute_values(":v", AttributeValue::N(value.to_string()))
            .expression_attribute_values(":ttl", AttributeValue::N(expires_at.to_string()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable("UpdateItem", &e)),
        }
    }
}
