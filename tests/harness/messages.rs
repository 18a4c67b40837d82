//! What leaves the workers through queues and topics, read back as a subscriber or another
//! service sees it: alerts on an SQS inbox subscribed to the topic, dead letters, and the cascade
//! queue in the SQS Lambda event shape.

use std::collections::HashMap;

use crate::TestEnv;

/// An alert as an on-call subscriber receives it through an SQS subscription.
#[derive(Debug, Clone)]
pub struct ReceivedAlert {
    /// SNS subject.
    pub subject: String,
    /// The JSON document (the `sqs` body of the message).
    pub doc: serde_json::Value,
    /// Message attributes (`severity`, `anomalyType`, `tenantId`).
    pub attributes: HashMap<String, String>,
    /// The whole SNS envelope, as text.
    pub raw: String,
}

impl ReceivedAlert {
    /// Asserts the alert's type (in its document) and severity (in its message attributes).
    pub fn assert_kind(&self, kind: &str, severity: &str) {
        assert_eq!(self.doc["type"], kind, "{self:#?}");
        assert_eq!(self.attributes["severity"], severity, "{self:#?}");
    }
}

impl TestEnv {
    /// Creates a queue subscribed to the alerts topic and returns its URL.
    pub async fn subscribe_alerts(&self) -> String {
        let url = sessionwarden_local::provision::subscribe_inbox(
            &self.clients,
            &self.resources.alerts_topic_arn,
            &format!("{}-alerts-inbox", self.prefix),
        )
        .await
        .expect("subscribe an inbox to the alerts topic");
        self.counter.reset();
        url
    }

    /// Creates a queue subscribed to the session events topic and returns its URL; read it with
    /// [`TestEnv::alerts`] (the same SNS envelope: `doc` is the event, `attributes` its message
    /// attributes).
    pub async fn subscribe_events(&self) -> String {
        let url = sessionwarden_local::provision::subscribe_inbox(
            &self.clients,
            &self.resources.events_topic_arn,
            &format!("{}-events-inbox", self.prefix),
        )
        .await
        .expect("subscribe an inbox to the session events topic");
        self.counter.reset();
        url
    }

    /// A FIFO alerts topic (as `AlertsTopicFifo` makes it) with a FIFO inbox queue subscribed:
    /// `(topic ARN, inbox URL)`. A message published twice with one deduplication ID (the alert
    /// ID) reaches the inbox once.
    pub async fn fifo_alerts(&self) -> (String, String) {
        self.fifo_topic("alerts").await
    }

    /// A FIFO topic `<prefix>-<name>.fifo` with a FIFO inbox queue subscribed: `(topic ARN,
    /// inbox URL)`. A message published twice with one deduplication ID reaches the inbox once.
    pub async fn fifo_topic(&self, name: &str) -> (String, String) {
        let topic = self
            .clients
            .sns
            .create_topic()
            .name(format!("{}-{name}.fifo", self.prefix))
            .attributes("FifoTopic", "true")
            .send()
            .await
            .expect("CreateTopic")
            .topic_arn
            .unwrap_or_default();
        let inbox = sessionwarden_local::provision::subscribe_inbox(
            &self.clients,
            &topic,
            &format!("{}-{name}-inbox", self.prefix),
        )
        .await
        .expect("subscribe a FIFO inbox to the FIFO topic");
        (topic, inbox)
    }

    /// The cascade job record of `root` (strongly consistent), with its `status` and `ended`
    /// as strings ("-" when absent).
    pub async fn cascade_job(&self, root: &str) -> HashMap<String, String> {
        let job = self
            .clients
            .dynamodb
            .query()
            .table_name(&self.resources.state_table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("cascade#{root}")),
            )
            .consistent_read(true)
            .send()
            .await
            .expect("Query the job record");
        let item = job.items().first().cloned().unwrap_or_default();
        let field = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_n().or_else(|_| v.as_s()).ok())
                .cloned()
                .unwrap_or_else(|| "-".into())
        };
        HashMap::from([
            ("status".to_string(), field("status")),
            ("ended".to_string(), field("ended")),
        ])
    }

    /// Drains every message currently in a queue.
    pub async fn drain(&self, queue_url: &str) -> Vec<String> {
        sessionwarden_local::provision::drain_queue(&self.clients, queue_url)
            .await
            .expect("drain queue")
    }

    /// Alerts received so far on an inbox queue from [`TestEnv::subscribe_alerts`].
    pub async fn alerts(&self, inbox: &str) -> Vec<ReceivedAlert> {
        self.drain(inbox)
            .await
            .into_iter()
            .map(|raw| {
                let env: serde_json::Value =
                    serde_json::from_str(&raw).expect("SNS envelope is JSON");
                let doc = serde_json::from_str(env["Message"].as_str().unwrap_or("null"))
                    .unwrap_or(serde_json::Value::Null);
                let attributes = env["MessageAttributes"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    v["Value"].as_str().unwrap_or_default().to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                ReceivedAlert {
                    subject: env["Subject"].as_str().unwrap_or_default().to_string(),
                    doc,
                    attributes,
                    raw,
                }
            })
            .collect()
    }

    /// Messages in the dead-letter queue, parsed.
    pub async fn dead_letters(&self) -> Vec<serde_json::Value> {
        self.drain(&self.resources.dead_letter_queue_url)
            .await
            .iter()
            .map(|b| serde_json::from_str(b).expect("dead letter is JSON"))
            .collect()
    }
}

impl TestEnv {
    /// Sends raw bodies to the cascade queue, as another service would.
    pub async fn send_cascade(&self, bodies: &[String]) {
        for b in bodies {
            self.clients
                .sqs
                .send_message()
                .queue_url(&self.resources.cascade_queue_url)
                .message_body(b)
                .send()
                .await
                .expect("send cascade message");
        }
    }

    /// The next batch of the cascade queue in the SQS Lambda event shape (messages deleted, as
    /// Lambda does on success; tests assert there were no failures).
    pub async fn cascade_event(&self) -> Option<aws_lambda_events::event::sqs::SqsEvent> {
        sessionwarden_local::queues::receive_as_lambda_event(
            &self.clients.sqs,
            &self.resources.cascade_queue_url,
        )
        .await
        .expect("receive cascade messages")
    }

    /// Delivers the cascade queue's batches as Lambda's event source mapping does, until the
    /// queue is quiet (continuations and sub-cascades included): each batch to `deliver`, which
    /// returns the batch response; a message it reports failed becomes visible again (sent
    /// anew). Returns the deliveries and the messages delivered again; panics past `max`
    /// deliveries.
    pub async fn deliver_cascades(
        &self,
        max: usize,
        mut deliver: impl AsyncFnMut(
            aws_lambda_events::event::sqs::SqsEvent,
        ) -> aws_lambda_events::event::sqs::SqsBatchResponse,
    ) -> (usize, usize) {
        let (mut deliveries, mut again) = (0, 0);
        while let Some(event) = self.cascade_event().await {
            deliveries += 1;
            assert!(
                deliveries <= max,
                "the cascade does not settle in {max} deliveries"
            );
            let bodies: HashMap<String, String> = event
                .records
                .iter()
                .map(|r| {
                    (
                        r.message_id.clone().unwrap_or_default(),
                        r.body.clone().unwrap_or_default(),
                    )
                })
                .collect();
            let response = deliver(event).await;
            let failed: Vec<String> = response
                .batch_item_failures
                .iter()
                .filter_map(|f| bodies.get(&f.item_identifier).cloned())
                .collect();
            again += failed.len();
            self.send_cascade(&failed).await;
        }
        (deliveries, again)
    }
}
