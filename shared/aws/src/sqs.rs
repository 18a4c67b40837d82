//! SQS plumbing shared by the queue adapters: batched sends that send again only the entries SQS
//! refused (so an accepted entry is never sent twice by us), and treat what still fails as an
//! error.

use std::collections::HashMap;

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;

use crate::PortError;

/// SendMessageBatch takes at most 10 entries.
pub const MAX_BATCH: usize = 10;

/// Attempts at the refused part of one batch before giving up (transiently).
const ATTEMPTS: u32 = 4;

/// One message to send: its body and, when it has one, a stable ID as a string message
/// attribute, so a consumer can drop a copy (standard SQS is at-least-once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The message body.
    pub body: String,
    /// `(attribute name, value)` of the message's stable ID.
    pub id: Option<(&'static str, String)>,
}

impl From<String> for Outgoing {
    fn from(body: String) -> Self {
        Outgoing { body, id: None }
    }
}

fn entry(i: usize, m: &Outgoing) -> Result<SendMessageBatchRequestEntry, PortError> {
    let mut e = SendMessageBatchRequestEntry::builder()
        .id(format!("m{i}"))
        .message_body(&m.body);
    if let Some((name, value)) = &m.id {
        let v = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| PortError::Permanent {
                operation: "SQS.SendMessageBatch",
                source: Box::new(e),
            })?;
        e = e.message_attributes(*name, v);
    }
    e.build().map_err(|e| PortError::Permanent {
        operation: "SQS.SendMessageBatch",
        source: Box::new(e),
    })
}

/// Sends `messages` as one SendMessageBatch (at most [`MAX_BATCH`]). The entries SQS refused on
/// its side are sent again, as a smaller batch, a few times; what still fails is a transient
/// error, so the caller's unit of work is retried. An entry refused for the sender's fault (too
/// large, malformed) would be refused again: that is a permanent error at once.
pub async fn send_batch(
    client: &Client,
    queue_url: &str,
    messages: Vec<Outgoing>,
) -> Result<(), PortError> {
    let mut pending: HashMap<String, SendMessageBatchRequestEntry> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| entry(i, m).map(|e| (e.id().to_string(), e)))
        .collect::<Result<_, _>>()?;
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        crate::retry_pause(attempt, 50).await;
        let mut entries: Vec<_> = pending.values().cloned().collect();
        entries.sort_by(|a, b| a.id().cmp(b.id()));
        let out = client
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| crate::sdk_error("SQS.SendMessageBatch", e))?;
        for ok in out.successful() {
            pending.remove(ok.id());
        }
        if pending.is_empty() {
            return Ok(());
        }
        if let Some(f) = out.failed().iter().find(|f| f.sender_fault()) {
            return Err(PortError::Permanent {
                operation: "SQS.SendMessageBatch",
                source: format!("entry refused: {}: {}", f.code(), f.message().unwrap_or(""))
                    .into(),
            });
        }
        if let Some(f) = out.failed().first() {
            last = format!("{}: {}", f.code(), f.message().unwrap_or(""));
        }
    }
    Err(PortError::Transient {
        operation: "SQS.SendMessageBatch",
        source: format!(
            "{} entries refused after retries, e.g. {last}",
            pending.len()
        )
        .into(),
    })
}
