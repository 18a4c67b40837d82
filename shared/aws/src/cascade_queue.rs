//! SQS adapter for the cascade queue: sends cascade messages (new requests, continuations and
//! family sub-cascades) with SendMessageBatch, 10 per request.

use aws_sdk_sqs::Client;

use crate::PortError;
use sessionwarden_core::cascade_message::CascadeMessage;
use sessionwarden_core::ports::CascadeQueue;

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
}

impl CascadeQueue for SqsCascadeQueue {
    /// Sends messages, 10 per request; an entry still refused after retries is an error (the
    /// caller's unit of work is retried, and the receiving side is idempotent).
    async fn send(&self, messages: &[CascadeMessage]) -> Result<(), PortError> {
        for chunk in messages.chunks(crate::sqs::MAX_BATCH) {
            let bodies = chunk
                .iter()
                .map(|m| {
                    serde_json::to_string(m)
                        .map(Into::into)
                        .map_err(|e| PortError::Permanent {
                            operation: "SQS.SendMessageBatch",
                            source: Box::new(e),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            crate::sqs::send_batch(&self.client, &self.queue_url, bodies).await?;
        }
        Ok(())
    }
}
