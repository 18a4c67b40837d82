//! SNS adapter for alerts: PublishBatch (10 per request) with `MessageStructure=json`, so email
//! subscribers get the readable text and every other protocol the JSON document, and the message
//! attributes `severity`, `anomalyType` and `tenantId` that subscription filter policies match,
//! and `alertId`, stable across attempts, for subscribers to deduplicate on. Also the session
//! events topic ([`SnsEvents`]): one JSON message per end, with `eventId`, `reason` and `tenantId`.

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use aws_sdk_sns::Client;

use crate::PortError;
use sessionwarden_core::alert::Alert;
use sessionwarden_core::ports::{AlertSink, EventSink};
use sessionwarden_core::session_event::SessionEvent;

/// PublishBatch takes at most 10 entries.
const MAX_BATCH: usize = 10;

/// The alerts topic.
#[derive(Clone, Debug)]
pub struct SnsAlerts {
    client: Client,
    topic_arn: String,
}

fn attr(v: &str) -> Result<MessageAttributeValue, PortError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .map_err(|e| PortError::Permanent {
            operation: "SNS.PublishBatch",
            source: Box::new(e),
        })
}

impl SnsAlerts {
    /// True for a FIFO topic (`AlertsTopicFifo`): it deduplicates on the alert ID.
    fn fifo(&self) -> bool {
        self.topic_arn.ends_with(".fifo")
    }

    /// A publisher to `topic_arn`.
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        SnsAlerts {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    /// The SNS message of an alert: per-protocol bodies.
    pub fn message(a: &Alert) -> String {
        let doc = a.document.to_string();
        serde_json::json!({ "default": doc, "email": a.text, "sqs": doc, "lambda": doc, "https": doc, "http": doc, "email-json": doc }).to_string()
    }
}

impl AlertSink for SnsAlerts {
    /// Publishes alerts. Entries that SNS reports as failed (even with HTTP 200) are an error.
    async fn publish(&self, alerts: &[Alert]) -> Result<(), PortError> {
        for chunk in alerts.chunks(MAX_BATCH) {
            let mut entries = Vec::new();
            for (i, a) in chunk.iter().enumerate() {
                let mut entry = PublishBatchRequestEntry::builder()
                    .id(format!("a{i}"))
                    .subject(&a.subject)
                    .message(Self::message(a))
                    .message_structure("json");
                // The stable alert ID, for subscribers to drop a message published twice; a FIFO
                // topic drops it itself.
                if !a.id.is_empty() {
                    entry = entry.message_attributes("alertId", attr(&a.id)?);
                    if self.fifo() {
                        entry = entry
                            .message_deduplication_id(&a.id)
                            .message_group_id(&a.kind);
                    }
                }
                entries.push(
                    entry
                        .message_attributes("severity", attr(a.severity.as_str())?)
                        .message_attributes("anomalyType", attr(&a.kind)?)
                        .message_attributes("tenantId", attr(&a.tenant)?)
                        .build()
                        .map_err(|e| PortError::Permanent {
                            operation: "SNS.PublishBatch",
                            source: Box::new(e),
                        })?,
                );
            }
            send_batch(&self.client, &self.topic_arn, entries).await?;
        }
        Ok(())
    }
}

/// Sends one PublishBatch of at most 10 entries. Entries SNS reports as failed (even with HTTP
/// 200) are an error: permanent if SNS blames the sender, transient otherwise.
async fn send_batch(
    client: &Client,
    topic_arn: &str,
    entries: Vec<PublishBatchRequestEntry>,
) -> Result<(), PortError> {
    let n = entries.len();
    let out = client
        .publish_batch()
        .topic_arn(topic_arn)
        .set_publish_batch_request_entries(Some(entries))
        .send()
        .await
        .map_err(|e| crate::sdk_error("SNS.PublishBatch", e))?;
    if let Some(f) = out.failed.as_ref().and_then(|f| f.first()) {
        let source = format!(
            "{} of {n} entries failed, e.g. {}: {}",
            out.failed().len(),
            f.code(),
            f.message().unwrap_or("")
        );
        return Err(if f.sender_fault() {
            PortError::Permanent {
                operation: "SNS.PublishBatch",
                source: source.into(),
            }
        } else {
            PortError::Transient {
                operation: "SNS.PublishBatch",
                source: source.into(),
            }
        });
    }
    Ok(())
}

/// The session events topic (`SESSION_EVENTS_TOPIC_ARN`); without one, nothing is published.
#[derive(Clone, Debug)]
pub struct SnsEvents {
    client: Client,
    topic_arn: Option<String>,
}

impl SnsEvents {
    /// A publisher to `topic_arn`, or none.
    pub fn new(client: Client, topic_arn: Option<String>) -> Self {
        SnsEvents { client, topic_arn }
    }
}

impl EventSink for SnsEvents {
    /// Publishes events, 10 per request, each with the message attributes `eventId` (stable
    /// across attempts; a FIFO topic deduplicates on it), `reason` and `tenantId`.
    async fn publish(&self, events: &[SessionEvent]) -> Result<(), PortError> {
        let Some(topic) = &self.topic_arn else {
            return Ok(());
        };
        let fifo = topic.ends_with(".fifo");
        for chunk in events.chunks(MAX_BATCH) {
            let mut entries = Vec::new();
            for (i, e) in chunk.iter().enumerate() {
                let mut entry = PublishBatchRequestEntry::builder()
                    .id(format!("e{i}"))
                    .message(e.document.to_string())
                    .message_attributes("eventId", attr(&e.id)?)
                    .message_attributes("reason", attr(&e.reason)?)
                    .message_attributes("tenantId", attr(&e.tenant)?);
                if fifo {
                    entry = entry
                        .message_deduplication_id(&e.id)
                        .message_group_id(&e.tenant);
                }
                entries.push(entry.build().map_err(|err| PortError::Permanent {
                    operation: "SNS.PublishBatch",
                    source: Box::new(err),
                })?);
            }
            send_batch(&self.client, topic, entries).await?;
        }
        Ok(())
    }
}
