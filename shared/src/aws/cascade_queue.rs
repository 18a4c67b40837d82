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
