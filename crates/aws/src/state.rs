//! The replication state store on DynamoDB: one item per user (`pk` = hashed user key) with a
//! version number for conditional writes, the record as JSON, and a TTL.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use replication::state::{StateStore, StoreError, UserRecord, Versioned};

/// How long a record outlives its last write. Longer than any event can wait (SQS keeps a
/// message at most 14 days on the inbound queue and 14 more on the DLQ, and a redrive starts
/// those 14 days again once), and as long as the longest session it guards: a continuation is
/// refused when the user's record is missing, and Cognito's refresh tokens live at most
/// 10 years. Records are small (one per user); deleted users' records go with the TTL.
pub const RECORD_TTL: Duration = Duration::from_secs(3650 * 24 * 3600);

#[derive(Clone, Debug)]
pub struct Table {
    client: aws_sdk_dynamodb::Client,
    name: String,
}

impl Table {
    pub fn new(cfg: &SdkConfig, name: &str) -> Self {
        Self {
            client: aws_sdk_dynamodb::Client::new(cfg),
            name: name.to_owned(),
        }
    }
}

fn unavailable<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    what: &str,
    e: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> StoreError {
    use aws_sdk_dynamodb::error::SdkError;
    let why = match e {
        SdkError::ServiceError(se) => format!(
            "{}: {}",
            se.err().code().unwrap_or("ServiceError"),
            se.err().message().unwrap_or("")
        ),
        SdkError::TimeoutError(_) => "timeout".into(),
        SdkError::DispatchFailure(_) => "connection failure".into(),
        _ => "request failed".into(),
    };
    StoreError::Unavailable(format!("{what}: {why}"))
}

impl Table {
    /// Puts `pk` = `key` if absent, expiring at `expires` (seconds since the epoch): a one-time
    /// marker. `Ok(false)` when it already exists.
    pub async fn claim_once(&self, key: &str, expires: i64) -> Result<bool, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.name)
            .item("pk", AttributeValue::S(key.to_owned()))
            .item("ttl", AttributeValue::N(expires.max(0).to_string()))
            .condition_expression("attribute_not_exists(pk)");
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable("PutItem", &e)),
        }
    }
}

impl StateStore for Table {
    async fn load(&self, key: &str) -> Result<Versioned, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .key("pk", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem", &e))?;
        let Some(item) = out.item() else {
            return Ok(Versioned::default());
        };
        let version = item
            .get("ver")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let record: UserRecord = item
            .get("rec")
            .and_then(|v| v.as_s().ok())
            .map(|s| {
                serde_json::from_str(s).map_err(|_| {
                    StoreError::Unavailable(format!("state record {key} is not readable"))
                })
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Versioned { record, version })
    }

    async fn save(&self, key: &str, record: &UserRecord, expected: u64) -> Result<(), StoreError> {
        let ttl = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            + RECORD_TTL;
        let rec = serde_json::to_string(record)
            .map_err(|_| StoreError::Unavailable("record does not serialize".into()))?;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.name)
            .item("pk", AttributeValue::S(key.to_owned()))
            .item("ver", AttributeValue::N((expected + 1).to_string()))
            .item("rec", AttributeValue::S(rec))
            .item("ttl", AttributeValue::N(ttl.as_secs().to_string()));
        put = if expected == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("ver = :v")
                .expression_attribute_values(":v", AttributeValue::N(expected.to_string()))
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict)
            }
            Err(e) => Err(unavailable("PutItem", &e)),
        }
    }
}
