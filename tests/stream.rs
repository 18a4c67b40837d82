//! The stream worker end to end on the emulator. Records are produced the real way: the test
//! writes items as the app would, reads the emulator's DynamoDB stream, wraps the records in the
//! exact Lambda event shape and calls the handler. Assertions read emulator state: alerts received
//! by an SQS queue subscribed to the topic, metrics read back, items, and the dead-letter queue.

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use lambda_runtime::LambdaEvent;
use sessionwarden::aws::streams::{lambda_event, StreamTail};
use sessionwarden::config::StreamConfig;
use sessionwarden::session::{Session, Status, TerminationReason};
use sessionwarden_stream::{StreamEvent, StreamWorker};
use sessionwarden_tests::{context_with, metric, n, s, ReceivedAlert, SessionFactory, TestEnv};

const H: i64 = 3600;

/// A test world: the environment, an alert inbox and a stream reader.
struct World {
    env: TestEnv,
    inbox: String,
    tail: StreamTail,
    f: SessionFactory,
}

impl World {
    async fn new(name: &str) -> Self {
        let env = TestEnv::new(name).await;
        let inbox = env.subscribe_alerts().await;
        let tail = env.stream_tail().await;
        World {
            env,
            inbox,
            tail,
            f: SessionFactory::new(),
        }
    }

    fn worker(
        &self,
        extra: &[(&str, &str)],
    ) -> StreamWorker<
        sessionwarden::aws::stream_ports::AwsStreamPorts,
        sessionwarden::aws::cloudwatch::CloudWatchMetrics,
    > {
        StreamWorker::from_clients(&self.env.clients, self.config(extra))
    }

    fn config(&self, extra: &[(&str, &str)]) -> StreamConfig {
        self.env.stream_config(extra)
    }

    /// Reads what the stream has, as the Lambda event source mapping would deliver it.
    async fn event(&mut self) -> serde_json::Value {
        lambda_event(self.tail.next_records().await.expect("read stream"))
    }

    /// Invokes the handler exactly as the runtime would.
    async fn invoke(
        &self,
        extra: &[(&str, &str)],
        event: &serde_json::Value,
    ) -> DynamoDbEventResponse {
        let payload: StreamEvent = serde_json::from_value(event.clone()).expect("event shape");
        self.worker(extra)
            .handle(LambdaEvent::new(
                payload,
                context_with(Duration::from_secs(60)),
            ))
            .await
            .expect("infallible")
    }

    /// Reads the stream and invokes the handler once with everything new.
    async fn step(&mut self) -> DynamoDbEventResponse {
        let event = self.event().await;
        self.invoke(&[], &event).await
    }

    async fn put(&self, s: &Session) {
        self.env.seed(std::slice::from_ref(s)).await;
    }

    async fn alerts(&self) -> Vec<ReceivedAlert> {
        self.env.alerts(&self.inbox).await
    }
}

fn no_failures(r: &DynamoDbEventResponse) {
    assert!(
        r.batch_item_failures.is_empty(),
        "unexpected batch item failures: {:?}",
        r.batch_item_failures
    );
}

#[tokio::test]
async fn a_session_bound_to_a_second_user_is_critical_contained_and_alerted() {
    let mut w = World::new("user-changed").await;
    let mut sess = w.f.active("bleed", "u-1", H, 60);
    sess.tenant_id = Some("acme".into());
    w.put(&sess).await;
    no_failures(&w.step().await);
    assert!(w.alerts().await.is_empty(), "a new session is benign");

    w.env
        .app_update(
            &sess.session_id,
            &[("userId", s("u-2")), ("lastActivityAt", n(w.f.now))],
        )
        .await;
    no_failures(&w.step().await);

    let alerts = w.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(
        a.subject,
        "[CRITICAL] sessionwarden: session bound to 2 users (tenant acme)"
    );
    assert_eq!(a.attributes["severity"], "CRITICAL");
    assert_eq!(a.attributes["anomalyType"], "SESSION_USER_CHANGED");
    assert_eq!(a.attributes["tenantId"], "acme");
    assert_eq!(a.doc["schemaVersion"], 1);
    assert_eq!(a.doc["type"], "SESSION_USER_CHANGED");
    assert_eq!(a.doc["users"], serde_json::json!(["u-1", "u-2"]));
    assert_eq!(a.doc["sessionRef"], w.env.key.of(&sess.session_id).as_str());
    assert_eq!(
        a.doc["evidence"][0],
        serde_json::json!({"field": "userId", "before": "u-1", "after": "u-2"})
    );
    assert!(a.doc["action"]
        .as_str()
        .unwrap()
        .contains("session terminated"));
    assert_eq!(
        a.doc["runbook"],
        "https://runbooks.example.com/sessionwarden#session-user-changed"
    );
    assert!(
        !a.raw.contains(sess.session_id.expose()),
        "no raw session ID in the alert"
    );

    // Containment: the session is TERMINATED with reason containment.
    let after = w.env.session(&sess.session_id).await;
    assert_eq!(after.status, Status::Terminated);
    assert_eq!(
        after.termination_reason,
        Some(TerminationReason::Containment)
    );

    // Our own containment write comes back through the stream: benign.
    no_failures(&w.step().await);
    assert!(w.alerts().await.is_empty());

    let m = w.env.metrics().await;
    assert_eq!(
        metric(
            &m,
            "AnomaliesDetected",
            &[("Type", "SESSION_USER_CHANGED"), ("Severity", "CRITICAL")]
        ),
        Some(1.0)
    );
    assert_eq!(metric(&m, "AlertsPublished", &[]), Some(1.0));
    assert_eq!(
        metric(&m, "SessionsTerminated", &[("Cause", "containment")]),
        Some(1.0)
    );
    assert!(metric(&m, "StreamRecordsProcessed", &[]).unwrap() >= 3.0);
    w.env.teardown().await;
}
