//! SQS dead-letter adapter: a malformed record goes to `DEAD_LETTER_QUEUE_URL` exactly as it was
//! received, wrapped with its reason and sequence number, so nothing is lost and an operator can
//! replay it after a fix. The queue holds raw records (and so raw session IDs): restrict its access.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

use super::AwsError;
use crate::stream::service::DeadLetter;

/// SendMessageBatch takes at most 10 entries.
const MAX_BATCH: usize = 10;

/// The dead-letter queue.
#[derive(Clone, Debug)]
pub struct SqsDeadLetters {
    client: Client,
    queue_url: String,
    source: &'static str,
}

impl SqsDeadLetters {
    /// A sender to `queue_url`, tagging letters with the worker `source`.
    pub fn new(client: Client, queue_url: impl Into<String>, source: &'static str) -> Self {
        SqsDeadLetters {
            client,
            queue_url: queue_url.into(),
            source,
        }
    }

    /// The message body of one letter.
    pub fn body(&self, l: &DeadLetter) -> String {
        serde_json::json!({
            "source": self.source,
            "reason": l.reason,
            "sequenceNumber": l.seq,
            "record": l.raw,
        })
        .to_string()
    }

    /// Sends letters in batches of 10; any failed entry is an error.
    pub async fn send(&self, letters: &[DeadLetter]) -> Result<(), AwsError> {
        for chunk in letters.chunks(MAX_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .message_body(self.body(l))
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
