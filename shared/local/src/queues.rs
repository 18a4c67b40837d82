//! Queue and topic tooling for local runs and tests: receive-and-delete, draining, and the SQS
//! Lambda event shape that the cascade worker receives in AWS from its event source mapping.

use aws_sdk_sqs::types::Message;
use aws_sdk_sqs::Client;
use sessionwarden_aws::PortError;

/// Receives up to 10 messages and deletes them. Empty when the queue is.
pub async fn receive_and_delete(
    client: &Client,
    queue_url: &str,
) -> Result<Vec<Message>, PortError> {
    let msgs = client
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .map_err(|e| sessionwarden_aws::sdk_error("SQS.ReceiveMessage", e))?
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
                .map_err(|e| sessionwarden_aws::sdk_error("SQS.DeleteMessage", e))?;
        }
    }
    Ok(msgs)
}

/// Receives up to 10 messages from a queue, deletes them (as Lambda does with the messages of a
/// successful batch), and wraps them in the SQS Lambda event shape. For local runs and tests,
/// which have no event source mapping; `None` when the queue is empty.
pub async fn receive_as_lambda_event(
    client: &Client,
    queue_url: &str,
) -> Result<Option<aws_lambda_events::event::sqs::SqsEvent>, PortError> {
    let msgs = receive_and_delete(client, queue_url).await?;
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
        .map_err(|e| PortError::Permanent {
            operation: "SQS.ReceiveMessage",
            source: Box::new(e),
        })
}
