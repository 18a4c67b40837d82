//! The stream worker end to end on the emulator. Records are produced the real way: the test
//! writes items as the app would, reads the emulator's DynamoDB stream, wraps the records in the
//! exact Lambda event shape and calls the handler. Assertions read emulator state: alerts received
//! by an SQS queue subscribed to the topic, metrics read back, items, and the dead-letter queue.

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

/// Runs one scenario and returns the alerts it produced.
async fn single_alert(w: &mut World) -> ReceivedAlert {
    no_failures(&w.step().await);
    let mut alerts = w.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    alerts.remove(0)
}

#[tokio::test]
async fn the_same_id_reinserted_for_another_user_after_a_delete_is_caught_across_invocations() {
    let mut w = World::new("reinsert").await;
    let first = w.f.active("reused", "u-1", H, 60);
    w.put(&first).await;
    no_failures(&w.step().await);
    w.env.app_delete(&first.session_id).await;
    no_failures(&w.step().await);
    // A later invocation: the ID comes back for someone else.
    let mut again = first.clone();
    again.user_id = Some("u-9".into());
    w.put(&again).await;
    let a = single_alert(&mut w).await;
    assert_eq!(a.doc["type"], "SESSION_USER_CHANGED");
    assert_eq!(a.doc["users"], serde_json::json!(["u-1", "u-9"]));
    w.env.teardown().await;
}

#[tokio::test]
async fn a_session_moved_to_another_tenant_is_critical() {
    let mut w = World::new("tenant-changed").await;
    let sess = w.f.active("t", "u-1", H, 60);
    w.put(&sess).await;
    no_failures(&w.step().await);
    w.env.app_update(&sess.session_id, &[("tenantId", s("globex"))]).await;
    let a = single_alert(&mut w).await;
    assert_eq!(a.doc["type"], "SESSION_TENANT_CHANGED");
    assert_eq!(a.attributes["severity"], "CRITICAL");
    assert_eq!(a.doc["evidence"][0], serde_json::json!({"field": "tenantId", "before": "acme", "after": "globex"}));
    assert_eq!(w.env.session(&sess.session_id).await.status, Status::Terminated);
    w.env.teardown().await;
}

#[tokio::test]
async fn writes_to_a_terminated_session_are_a_zombie() {
    let mut w = World::new("zombie").await;
    let mut sess = w.f.active("z", "u-1", 2 * H, H);
    sess.status = Status::Terminated;
    sess.termination_reason = Some(TerminationReason::Logout);
    sess.terminated_at = Some(w.f.now - H);
    w.put(&sess).await;
    no_failures(&w.step().await);
    w.env.app_update(&sess.session_id, &[("lastActivityAt", n(w.f.now))]).await;
    let a = single_alert(&mut w).await;
    assert_eq!(a.doc["type"], "ACTIVITY_AFTER_TERMINATION");
    assert_eq!(a.attributes["severity"], "HIGH");
    w.env.teardown().await;
}

#[tokio::test]
async fn an_ended_session_back_to_active_or_inserted_again_is_resurrected() {
    let mut w = World::new("resurrect").await;
    let mut sess = w.f.active("r", "u-1", 2 * H, H);
    sess.status = Status::Expired;
    sess.termination_reason = Some(TerminationReason::Idle);
    w.put(&sess).await;
    no_failures(&w.step().await);
    w.env.app_update(&sess.session_id, &[("status", s("ACTIVE"))]).await;
    let a = single_alert(&mut w).await;
    assert_eq!(a.doc["type"], "SESSION_RESURRECTED");
    assert_eq!(a.attributes["severity"], "HIGH");

    // Deleted, then the same ID inserted again for the same user.
    let other = w.f.active("r2", "u-2", H, 60);
    w.put(&other).await;
    no_failures(&w.step().await);
    w.env.app_delete(&other.session_id).await;
    w.put(&other).await;
    let a = single_alert(&mut w).await;
    assert_eq!(a.doc["type"], "SESSION_RESURRECTED");
    w.env.teardown().await;
}

#[tokio::test]
async fn login_that_keeps_the_anonymous_session_id_is_fixation() {
    let mut w = World::new("fixation").await;
    let mut sess = w.f.active("anon", "x", H, 60);
    sess.user_id = None;
    w.put(&sess).await;
    no_failures(&w.step().await);
    w.env.app_update(&sess.session_id, &[("userId", s("u-7"))]).await;
    let a = single_alert(&mut w).await;
    assert_eq!(a.doc["type"], "SESSION_FIXATION");
    assert_eq!(a.attributes["severity"], "MEDIUM");
    assert_eq!(w.env.session(&sess.session_id).await.status, Status::Active, "fixation is alert-only by default");
    w.env.teardown().await;
}

#[tokio::test]
async fn activity_after_the_deadline_means_the_idle_timeout_is_not_enforced() {
    let mut w = World::new("idle-not-enforced").await;
    let sess = w.f.active("late", "u-1", 10 * H, 9 * H);
    w.put(&sess).await;
    no_failures(&w.step().await);
    w.env.app_update(&sess.session_id, &[("lastActivityAt", n(w.f.now))]).await;
    let a = single_alert(&mut w).await;
    assert_eq!(a.doc["type"], "IDLE_TIMEOUT_NOT_ENFORCED");
    w.env.teardown().await;
}

#[tokio::test]
async fn creation_bursts_per_user_and_per_tenant() {
    let mut w = World::new("burst").await;
    let burst = [("BURST_USER_THRESHOLD", "3"), ("BURST_TENANT_THRESHOLD", "4")];
    let sessions: Vec<Session> = (0..5).map(|i| w.f.active(&format!("b{i}"), "u-burst", 60, 30)).collect();
    w.env.seed(&sessions).await;
    let event = w.event().await;
    no_failures(&w.invoke(&burst, &event).await);
    let mut types: Vec<(String, String)> = w
        .alerts()
        .await
        .iter()
        .map(|a| (a.doc["type"].as_str().unwrap().to_string(), a.doc["subject"]["kind"].as_str().unwrap().to_string()))
        .collect();
    types.sort();
    assert_eq!(
        types,
        [("SESSION_CREATION_BURST".to_string(), "tenant".to_string()), ("SESSION_CREATION_BURST".to_string(), "user".to_string())]
    );
    // The same batch again (redelivery): counted once, alerted once.
    no_failures(&w.invoke(&burst, &event).await);
    assert!(w.alerts().await.is_empty());
    w.env.teardown().await;
}

#[tokio::test]
async fn a_user_agent_change_is_low_and_an_ip_change_is_only_a_metric() {
    let mut w = World::new("context").await;
    let mut sess = w.f.active("ctx", "u-1", H, 60);
    sess.user_agent = Some("Firefox/131".into());
    sess.ip_address = Some("198.51.100.1".into());
    w.put(&sess).await;
    no_failures(&w.step().await);
    w.env.app_update(&sess.session_id, &[("ipAddress", s("203.0.113.5"))]).await;
    no_failures(&w.step().await);
    assert!(w.alerts().await.is_empty(), "an IP change alone does not alert");
    w.env.app_update(&sess.session_id, &[("userAgent", s("curl/8.5"))]).await;
    let a = single_alert(&mut w).await;
    assert_eq!(a.doc["type"], "SESSION_CONTEXT_CHANGED");
    assert_eq!(a.attributes["severity"], "LOW");
    assert_eq!(metric(&w.env.metrics().await, "SessionIpChanged", &[]), Some(1.0));
    w.env.teardown().await;
}
