//! A test world on a table of another layout (connect-dynamodb, Auth.js, custom): the table is
//! shaped as that library creates it, items are written exactly as the library writes them, and
//! the three workers run their real handlers with `SESSION_LAYOUT` set.

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::LambdaEvent;
use sessionwarden_aws::cloudwatch::CloudWatchMetrics;
use sessionwarden_aws::ports::Sessions;
use sessionwarden_cascade::CascadeWorker;
use sessionwarden_core::cascade::CascadeReport;
use sessionwarden_core::cleanup::{run_cleanup, CleanupReport};
use sessionwarden_core::config::CleanupStrategy;
use sessionwarden_core::deadline::EpochDeadline;
use sessionwarden_core::error::PortError;
use sessionwarden_core::session::SessionId;
use sessionwarden_local::streams::lambda_event;
use sessionwarden_stream::{StreamEvent, StreamWorker};

use crate::{context_with, BeforeEnd, HookedSessions, ReceivedAlert, Tail, TestEnv};

/// A DynamoDB item.
pub type RawItem = HashMap<String, AttributeValue>;

/// One test's world on a table of layout `SESSION_LAYOUT`.
pub struct LayoutWorld {
    /// The environment (its env vars carry `SESSION_LAYOUT`).
    pub env: TestEnv,
    /// The alerts inbox.
    pub inbox: String,
    /// The sessions table's stream.
    pub tail: Tail,
    /// The last stream records delivered, for building TTL records from.
    pub last_records: Vec<serde_json::Value>,
}

impl LayoutWorld {
    /// Provisions a table shaped as `layout` (a `SESSION_LAYOUT` value) stores sessions.
    pub async fn new(name: &str, layout: &str) -> Self {
        let env = TestEnv::with_layout(name, layout).await;
        let inbox = env.subscribe_alerts().await;
        let tail = env.stream_tail().await;
        LayoutWorld {
            env,
            inbox,
            tail,
            last_records: vec![],
        }
    }

    fn table(&self) -> &str {
        &self.env.resources.sessions_table
    }

    /// The app's PutItem.
    pub async fn put(&self, item: RawItem) {
        self.env
            .clients
            .dynamodb
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .send()
            .await
            .expect("PutItem");
    }

    /// The app's `UpdateItem SET`.
    pub async fn update(&self, key: RawItem, set: &[(&str, AttributeValue)]) {
        let expr: Vec<String> = (0..set.len()).map(|i| format!("#a{i} = :v{i}")).collect();
        let mut req = self
            .env
            .clients
            .dynamodb
            .update_item()
            .table_name(self.table())
            .set_key(Some(key))
            .update_expression(format!("SET {}", expr.join(", ")));
        for (i, (a, v)) in set.iter().enumerate() {
            req = req
                .expression_attribute_names(format!("#a{i}"), *a)
                .expression_attribute_values(format!(":v{i}"), v.clone());
        }
        req.send().await.expect("UpdateItem");
    }

    /// The app's DeleteItem (a logout).
    pub async fn delete(&self, key: RawItem) {
        self.env
            .clients
            .dynamodb
            .delete_item()
            .table_name(self.table())
            .set_key(Some(key))
            .send()
            .await
            .expect("DeleteItem");
    }

    /// Reads one item with a consistent read.
    pub async fn get(&self, key: RawItem) -> Option<RawItem> {
        self.env
            .clients
            .dynamodb
            .get_item()
            .table_name(self.table())
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem")
            .item
    }

    /// Every item of the state table whose `pk` starts with `prefix`.
    pub async fn state_items(&self, prefix: &str) -> Vec<RawItem> {
        let out = self
            .env
            .clients
            .dynamodb
            .scan()
            .table_name(&self.env.resources.state_table)
            .filter_expression("begins_with(pk, :p)")
            .expression_attribute_values(":p", AttributeValue::S(prefix.into()))
            .send()
            .await
            .expect("Scan");
        out.items.unwrap_or_default()
    }

    /// Reads what the stream has and invokes the stream handler once with it.
    pub async fn step(&mut self) -> DynamoDbEventResponse {
        let records = self.tail.next_records().await.expect("read stream");
        self.last_records = records.clone();
        self.invoke(&lambda_event(records)).await
    }

    /// Invokes the stream handler with `event`, as the runtime would.
    pub async fn invoke(&self, event: &serde_json::Value) -> DynamoDbEventResponse {
        let payload: StreamEvent = serde_json::from_str(&event.to_string()).expect("event shape");
        let worker = StreamWorker::from_clients(&self.env.clients, self.env.stream_config(&[]));
        worker
            .handle(LambdaEvent::new(
                payload,
                context_with(Duration::from_secs(60)),
            ))
            .await
            .expect("infallible")
    }

    /// Steps and asserts the batch had no failures.
    pub async fn step_ok(&mut self) {
        let r = self.step().await;
        assert!(r.batch_item_failures.is_empty(), "{r:?}");
    }

    /// Alerts received since the last call.
    pub async fn alerts(&self) -> Vec<ReceivedAlert> {
        self.env.alerts(&self.inbox).await
    }

    /// One cleanup run on the layout's own due index.
    pub async fn cleanup(&self) -> CleanupReport {
        let cfg = self.env.cleanup_config(CleanupStrategy::Index, &[]);
        self.env.invoke_cleanup(cfg, Duration::from_secs(300)).await
    }

    /// One cleanup run on the layout's real store in which the app touches one session (an
    /// `UpdateItem SET attribute = value` on `key`) between cleanup's read and its write.
    pub async fn cleanup_touching(
        &self,
        victim: &str,
        key: RawItem,
        set: (&str, AttributeValue),
    ) -> CleanupReport {
        let config = self.env.cleanup_config(CleanupStrategy::Index, &[]);
        let state = config.state_table.clone().expect("STATE_TABLE");
        let store = match Sessions::new(&self.env.clients, &config.common, &state) {
            Sessions::Mapped(inner) => *inner,
            Sessions::Native(_) => panic!("cleanup_touching is for non-native layouts"),
        };
        let store = HookedSessions {
            inner: store,
            hook: TouchBeforeEnd {
                client: self.env.clients.dynamodb.clone(),
                table: self.table().to_string(),
                victim: victim.to_string(),
                key,
                set: (set.0.to_string(), set.1),
            },
        };
        run_cleanup(
            &store,
            &CloudWatchMetrics::new(self.env.clients.cloudwatch.clone()),
            &config,
            chrono::Utc::now(),
            &EpochDeadline::in_from_now(Duration::from_secs(300)),
        )
        .await
        .expect("cleanup run")
    }

    /// Sends a USER cascade request and runs the cascade worker until the queue is quiet.
    pub async fn revoke_user(&self, user: &str) -> CascadeReport {
        let msg = sessionwarden_core::cascade_message::request(
            &sessionwarden_core::cascade_message::Target::User(user.into()),
            "logout everywhere",
            "test",
            None,
        );
        self.env
            .send_cascade(&[serde_json::to_string(&msg).expect("message serializes")])
            .await;
        let w = CascadeWorker::from_clients(&self.env.clients, self.env.cascade_config(&[]));
        let mut total = CascadeReport::default();
        self.env
            .deliver_cascades(49, async |event| {
                let deadline = sessionwarden_core::deadline::EpochDeadline::in_from_now(
                    Duration::from_secs(300),
                );
                let (response, report) = w.run(&event, &deadline).await;
                assert!(response.batch_item_failures.is_empty(), "{response:?}");
                total.merge(report);
                response
            })
            .await;
        total
    }
}

/// A REMOVE record exactly as DynamoDB's TTL delivers it, built from a real INSERT or MODIFY
/// record of any layout: its NewImage becomes the OldImage, `userIdentity` is the DynamoDB
/// service principal (DynamoDB Local runs no TTL).
pub fn ttl_remove_of(from: &serde_json::Value, seq: &str) -> serde_json::Value {
    let mut r = from.clone();
    r["eventName"] = "REMOVE".into();
    r["eventID"] = format!("ttl-{seq}").into();
    let db = r["dynamodb"]
        .as_object_mut()
        .expect("a stream record has a dynamodb block");
    let old = db
        .remove("NewImage")
        .expect("the source record has a NewImage");
    db.insert("OldImage".into(), old);
    db.insert("SequenceNumber".into(), seq.into());
    r["userIdentity"] =
        serde_json::json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
    r
}

/// A string attribute.
pub fn sv(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute from any number text (`1764000000.123` included).
pub fn nv(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// An item from `(name, value)` pairs.
pub fn item(pairs: &[(&str, AttributeValue)]) -> RawItem {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Plays the app touching `victim` (an `UpdateItem SET` on its item) just before cleanup's write.
struct TouchBeforeEnd {
    client: aws_sdk_dynamodb::Client,
    table: String,
    victim: String,
    key: RawItem,
    set: (String, AttributeValue),
}

impl BeforeEnd for TouchBeforeEnd {
    async fn before_end(&self, id: &SessionId) -> Result<(), PortError> {
        if id.expose() == self.victim {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(self.key.clone()))
                .update_expression("SET #a = :v")
                .expression_attribute_names("#a", &self.set.0)
                .expression_attribute_values(":v", self.set.1.clone())
                .send()
                .await
                .expect("the app's touch");
        }
        Ok(())
    }
}
