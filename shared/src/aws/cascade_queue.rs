//! SQS adapter for the cascade queue: sends cascade messages (new requests, continuations and
//! family sub-cascades) with SendMessageBatch, 10 per request.

use aws_sdk_sqs::Client;

use super::AwsError;
use crate::cascade::message::CascadeMessage;

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

    /// Sends messages, 10 per request; any failed entry is an error (the caller's unit of work
    /// is retried, and the receiving side is idempotent).
    pub async fn send(&self, messages: &[CascadeMessage]) -> Result<(), AwsError> {
        for chunk in messages.chunks(super::sqs::MAX_BATCH) {
            let bodies = chunk
                .iter()
                .map(|m| {
                    serde_json::to_string(m).map_err(|e| AwsError::Permanent {
                        operation: "SQS.SendMessageBatch",
                        source: Box::new(e),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            super::sqs::send_batch(&self.client, &self.queue_url, bodies).await?;
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
    let msgs = super::sqs::receive_and_delete(client, queue_url).await?;
    if msgs.is_empty() {
        return Ok(None);
    }
    let records: Vec<serde_json::Value> = msgs
        .into_iter()
        .map(|m| {
            serde_json::json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0", "SenderId": "local", "ApproximateFirstReceiveTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:cascade",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records }))
        .map(Some)
        .map_err(|e| AwsError::Permanent {
            operation: "SQS.ReceiveMessage",
            source: Box::new(e),
        })
}
