//! SQS plumbing shared by the queue adapters: batched sends that treat any failed entry as an
//! error, and receive-and-delete for local runs and tests.

use aws_sdk_sqs::types::{Message, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;

use super::AwsError;

/// SendMessageBatch takes at most 10 entries.
pub const MAX_BATCH: usize = 10;

/// Sends `bodies` as one SendMessageBatch (at most [`MAX_BATCH`]); any failed entry is a
/// transient error, so the caller's unit of work is retried.
pub async fn send_batch(
    client: &Client,
    queue_url: &str,
    bodies: Vec<String>,
) -> Result<(), AwsError> {
    let entries = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(body)
                .build()
                .map_err(|e| AwsError::Permanent {
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
    Ok(())
}

/// Receives up to 10 messages and deletes them. Empty when the queue is.
pub async fn receive_and_delete(
    client: &Client,
    queue_url: &str,
) -> Result<Vec<Message>, AwsError> {
    let msgs = client
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("SQS.ReceiveMessage", e))?
        .messages
        .unwrap_or_default();
    for m in &msgs {
        if let Some(h) = &m.receipt_handle {
            client
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(h)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("SQS.DeleteMessage", e))?;
        }
    }
    Ok(msgs)
}
