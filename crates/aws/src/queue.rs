//! SQS FIFO queues: the inbound replication queue, its DLQ and the proxy's fallback queue.

use aws_config::SdkConfig;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};

use crate::Error;

#[derive(Clone, Debug)]
pub struct Queues {
    client: aws_sdk_sqs::Client,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub receive_count: u32,
    pub group_id: Option<String>,
    pub sent_ms: Option<u64>,
    /// The `reason` message attribute (DLQ entries).
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Depth {
    pub visible: u64,
    pub in_flight: u64,
}

impl Queues {
    pub fn new(cfg: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_sqs::Client::new(cfg),
        }
    }

    /// Over a given client (tests use a mocked one).
    pub fn from_client(client: aws_sdk_sqs::Client) -> Self {
        Self { client }
    }

    pub async fn send(
        &self,
        url: &str,
        body: &str,
        group_id: &str,
        dedup_id: &str,
        reason: Option<&str>,
    ) -> Result<(), Error> {
        let mut req = self
            .client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .message_group_id(group_id)
            .message_deduplication_id(dedup_id);
        if let Some(r) = reason {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(r)
                .build()
                .map_err(|e| Error::Unexpected(format!("reason attribute: {e}")))?;
            req = req.message_attributes("reason", attr);
        }
        req.send()
            .await
            .map_err(|e| Error::sdk("SendMessage", &e))?;
        Ok(())
    }

    /// Sends a replication event (its sealed `body`): the FIFO group is the hashed user key and
    /// the dedup id is the event id, so a resend of the same event is not applied twice.
    pub async fn send_event(
        &self,
        url: &str,
        header: &replication::Header,
        body: &str,
    ) -> Result<(), Error> {
        self.send(url, body, &header.group, &header.id, None).await
    }

    pub async fn receive(
        &self,
        url: &str,
        max: i32,
        wait_secs: i32,
        visibility: Option<i32>,
    ) -> Result<Vec<Received>, Error> {
        let mut req = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All");
        if let Some(v) = visibility {
            req = req.visibility_timeout(v);
        }
        let out = req
            .send()
            .await
            .map_err(|e| Error::sdk("ReceiveMessage", &e))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| {
                let attrs = m.attributes();
                let get = |k: MessageSystemAttributeName| attrs.and_then(|a| a.get(&k)).cloned();
                Received {
                    message_id: m.message_id().unwrap_or_default().to_owned(),
                    receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    receive_count: get(MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1),
                    group_id: get(MessageSystemAttributeName::MessageGroupId),
                    sent_ms: get(MessageSystemAttributeName::SentTimestamp)
                        .and_then(|v| v.parse().ok()),
                    reason: m
                        .message_attributes()
                        .and_then(|a| a.get("reason"))
                        .and_then(|v| v.string_value())
                        .map(str::to_owned),
                }
            })
            .collect())
    }

    pub async fn delete(&self, url: &str, receipt_handle: &str) -> Result<(), Error> {
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| Error::sdk("DeleteMessage", &e))?;
        Ok(())
    }

    /// Makes a received message visible again at once (for another try, in its group's order).
    pub async fn release(&self, url: &str, receipt_handle: &str) -> Result<(), Error> {
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| Error::sdk("ChangeMessageVisibility", &e))?;
        Ok(())
    }

    pub async fn depth(&self, url: &str) -> Result<Depth, Error> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| Error::sdk("GetQueueAttributes", &e))?;
        let attrs = out.attributes();
        let get = |k: QueueAttributeName| {
            attrs
                .and_then(|a| a.get(&k))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(Depth {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        })
    }
}
