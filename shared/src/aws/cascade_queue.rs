//! SQS adapter for the cascade queue: sends cascade messages (new requests, continuations and
//! family sub-cascades) with SendMessageBatch, 10 per request.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

use super::AwsError;
use crate::cascade::message::CascadeMessage;

/// SendMessageBatch takes at most 10 entries.
const MAX_BATCH: usize = 10;

/// The cascade queue.
#[derive(Clone, Debug)]
pub struct SqsCascadeQueue {
    client: Client,
    queue_url: String,
}

impl SqsCascadeQueue {
    /// A sender to `queue_url`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsCascadeQueue {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Sends messages; any failed entry is an error (the caller's unit of work is retried, and
    /// the receiving side is idempotent).
    pub async fn send(&self, messages: &[CascadeMessage]) -> Result<(), AwsError> {
        for chunk in messages.chunks(MAX_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let body = serde_json::to_string(m).map_err(|e| AwsError::Permanent {
                        operation: "SQS.SendMessageBatch",
                        source: Box::new(e),
                    })?;
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("c{i}"))
                        .message_body(body)
                        .build()
                        .map_err(|e| AwsError::Permanent {
                            operation: "SQS.SendMessageBatch",
                            source: Box::new(e),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("SQS.SendMessageBatch", e))?;
            if let Some(f) = out.failed().first() {
                return Err(AwsError::Transient {
                    operation: "SQS.SendMessageBatch",
                    source: format!(
                        "{} entries failed, e.g. {}: {}",
                        out.failed().len(),
                        f.code(),
                        f.message().unwrap_or("")
                    )
                    .into(),
                });
            }
        }
        Ok(())
    }
}

/// Receives up to 10 messages from a queue, deletes them (as Lambda does with the messages of a
/// successful batch), and wraps them in the SQS Lambda event shape. For local runs and tests,
/// which have no event source mapping; `None` when the queue is empty.
pub async fn receive_as_lambda_event(
    client: &Client,
    queue_url: &str,
) -> Result<Option<aws_lambda_events::event::sqs::SqsEvent>, AwsError> {
    let r = client
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("SQS.ReceiveMessage", e))?;
    let msgs = r.messages.unwrap_or_default();
    if msgs.is_empty() {
        return Ok(None);
    }
    let mut records = Vec::new();
    for m in msgs {
        records.push(serde_json::json!({
            "messageId": m.message_id,
            "receiptHandle": m.receipt_handle,
            "body": m.body,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0", "SenderId": "local", "ApproximateFirstReceiveTimestamp": "0"},
            "messageAttributes": {},
            "md5OfBody": m.md5_of_body,
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:cascade",
            "awsRegion": "us-east-1"
        }));
        if let Some(h) = m.receipt_handle {
            client
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(h)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("SQS.DeleteMessage", e))?;
        }
    }
    serde_json::from_value(serde_json::json!({ "Records": records }))
        .map(Some)
        .map_err(|e| AwsError::Permanent {
            operation: "SQS.ReceiveMessage",
            source: Box::new(e),
        })
}
