//! SQS plumbing shared by the queue adapters: batched sends that treat any failed entry as an
//! error.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

use crate::PortError;

/// SendMessageBatch takes at most 10 entries.
pub const MAX_BATCH: usize = 10;

/// Sends `bodies` as one SendMessageBatch (at most [`MAX_BATCH`]); any failed entry is a
/// transient error, so the caller's unit of work is retried.
pub async fn send_batch(
    client: &Client,
    queue_url: &str,
    bodies: Vec<String>,
) -> Result<(), PortError> {
    let entries = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(body)
                .build()
                .map_err(|e| PortError::Permanent {
                    operation: "SQS.SendMessageBatch",
                    source: Box::new(e),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let out = client
        .send_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(|e| crate::sdk_error("SQS.SendMessageBatch", e))?;
    if let Some(f) = out.failed().first() {
        return Err(PortError::Transient {
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
    Ok(())
}
