//! The stream worker end to end on the emulator. Records are produced the real way: the test
//! writes items as the app would, reads the emulator's DynamoDB stream, wraps the records in the
//! exact Lambda event shape and calls the handler. Assertions read emulator state: alerts received
//! by an SQS queue subscribed to the topic, metrics read back, items, and the dead-letter queue.

use std::time::Duration;

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use lambda_runtime::LambdaEvent;
use sessionwarden_core::config::StreamConfig;
use sessionwarden_core::error::PortError;
use sessionwarden_core::layout::Layout;
use sessionwarden_core::ports::Ports;
use sessionwarden_core::session::{Session, SessionId, Status, TerminationReason};
use sessionwarden_local::streams::lambda_event;
use sessionwarden_stream::{NativeEvent, StreamEvent, StreamWorker};
use sessionwarden_tests::{
    assert_metrics, context_with, metric, n, s, BeforeEnd, HookedSessions, ReceivedAlert,
    SessionFactory, Tail, TestEnv,
};

const H: i64 = 3600;

/// The dimensions of the `AnomaliesDetected` series of a critical user change.
const USER_CHANGED_CRITICAL: &[(&str, &str)] =
    &[("Type", "SESSION_USER_CHANGED"), ("Severity", "CRITICAL")];

/// A test world: the environment, an alert inbox and a stream reader.
struct World {
    env: TestEnv,
    inbox: String,
    tail: Tail,
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

    fn worker(&self, extra: &[(&str, &str)]) -> StreamWorker {
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
        let worker = self.worker(extra);
        let context = context_with(Duration::from_secs(60));
        let body = event.to_string();
        // The worker's own choice in main: the native layout reads records with the event.
        if matches!(self.config(extra).common.layout, Layout::Native) {
            worker.decide_touches_here();
            let payload: NativeEvent = serde_json::from_str(&body).expect("event shape");
            return worker
                .handle_native(LambdaEvent::new(payload, context))
                .await
                .expect("infallible");
        }
        let payload: StreamEvent = serde_json::from_str(&body).expect("event shape");
        worker
            .handle(LambdaEvent::new(payload, context))
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

    /// Writes `s` as the app would and has the worker process it without failures.
    async fn put_seen(&mut self, s: &Session) {
        self.put(s).await;
        no_failures(&self.step().await);
    }

    /// The app's `UpdateItem SET` on `s`.
    async fn update(&self, s: &Session, set: &[(&str, aws_sdk_dynamodb::types::AttributeValue)]) {
        self.env.app_update(&s.session_id, set).await;
    }

    /// Seeds `n` sessions a minute old, of users `u-0`, `u-1`, ... (no processing).
    async fn seed_new(&self, n: usize, label: &str) -> Vec<Session> {
        let sessions: Vec<Session> = (0..n)
            .map(|i| self.f.active(label, &format!("u-{i}"), 60, 30))
            .collect();
        self.env.seed(&sessions).await;
        sessions
    }

    /// Seeds `n` hour-old sessions (`{label}{i}` of user `u-{i}`) and has the worker see them.
    async fn seen_users(&mut self, n: usize, label: &str) -> Vec<Session> {
        let sessions: Vec<Session> = (0..n)
            .map(|i| {
                self.f
                    .active(&format!("{label}{i}"), &format!("u-{i}"), H, 60)
            })
            .collect();
        self.env.seed(&sessions).await;
        no_failures(&self.step().await);
        sessions
    }

    /// The app binds session `i` of `sessions` to user `{prefix}-{i}`.
    async fn rebind_users(&self, sessions: &[Session], prefix: &str) {
        for (i, sess) in sessions.iter().enumerate() {
            self.update(sess, &[("userId", s(&format!("{prefix}-{i}")))])
                .await;
        }
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
    w.put_seen(&sess).await;
    assert!(w.alerts().await.is_empty(), "a new session is benign");

    w.update(
        &sess,
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
    assert_metrics(
        &m,
        &[
            ("AnomaliesDetected", USER_CHANGED_CRITICAL, 1.0),
            ("AlertsPublished", &[], 1.0),
            ("SessionsTerminated", &[("Cause", "containment")], 1.0),
        ],
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
    w.put_seen(&first).await;
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
    w.put_seen(&sess).await;
    w.update(&sess, &[("tenantId", s("globex"))]).await;
    let a = single_alert(&mut w).await;
    a.assert_kind("SESSION_TENANT_CHANGED", "CRITICAL");
    assert_eq!(
        a.doc["evidence"][0],
        serde_json::json!({"field": "tenantId", "before": "acme", "after": "globex"})
    );
    assert_eq!(w.env.status_of(&sess).await, Status::Terminated);
    w.env.teardown().await;
}

#[tokio::test]
async fn writes_to_a_terminated_session_are_a_zombie() {
    let mut w = World::new("zombie").await;
    let mut sess = w.f.active("z", "u-1", 2 * H, H);
    sess.status = Status::Terminated;
    sess.termination_reason = Some(TerminationReason::Logout);
    sess.terminated_at = Some(w.f.now - H);
    w.put_seen(&sess).await;
    w.update(&sess, &[("lastActivityAt", n(w.f.now))]).await;
    let a = single_alert(&mut w).await;
    a.assert_kind("ACTIVITY_AFTER_TERMINATION", "HIGH");
    w.env.teardown().await;
}

#[tokio::test]
async fn an_ended_session_back_to_active_or_inserted_again_is_resurrected() {
    let mut w = World::new("resurrect").await;
    let mut sess = w.f.active("r", "u-1", 2 * H, H);
    sess.status = Status::Expired;
    sess.termination_reason = Some(TerminationReason::Idle);
    w.put_seen(&sess).await;
    w.update(&sess, &[("status", s("ACTIVE"))]).await;
    let a = single_alert(&mut w).await;
    a.assert_kind("SESSION_RESURRECTED", "HIGH");

    // Deleted, then the same ID inserted again for the same user.
    let other = w.f.active("r2", "u-2", H, 60);
    w.put_seen(&other).await;
    w.env.app_delete(&other.session_id).await;
    w.put(&other).await;
    let a = single_alert(&mut w).await;
    assert_eq!(a.doc["type"], "SESSION_RESURRECTED");
    w.env.teardown().await;
}

#[tokio::test]
async fn login_that_keeps_the_anonymous_session_id_is_fixation() {
    let mut w = World::new("fixation").await;
    let sess = w.f.anonymous("anon", H, 60);
    w.put_seen(&sess).await;
    w.update(&sess, &[("userId", s("u-7"))]).await;
    let a = single_alert(&mut w).await;
    a.assert_kind("SESSION_FIXATION", "MEDIUM");
    assert_eq!(
        w.env.status_of(&sess).await,
        Status::Active,
        "fixation is alert-only by default"
    );
    w.env.teardown().await;
}

#[tokio::test]
async fn activity_after_the_deadline_means_the_idle_timeout_is_not_enforced() {
    let mut w = World::new("idle-not-enforced").await;
    let sess = w.f.active("late", "u-1", 10 * H, 9 * H);
    w.put_seen(&sess).await;
    w.update(&sess, &[("lastActivityAt", n(w.f.now))]).await;
    let a = single_alert(&mut w).await;
    assert_eq!(a.doc["type"], "IDLE_TIMEOUT_NOT_ENFORCED");
    w.env.teardown().await;
}

#[tokio::test]
async fn creation_bursts_per_user_and_per_tenant() {
    let mut w = World::new("burst").await;
    let burst = [
        ("BURST_USER_THRESHOLD", "3"),
        ("BURST_TENANT_THRESHOLD", "4"),
    ];
    let sessions = w.f.of_user(5, "b", "u-burst", 60, 30);
    w.env.seed(&sessions).await;
    let event = w.event().await;
    no_failures(&w.invoke(&burst, &event).await);
    let mut types: Vec<(String, String)> = w
        .alerts()
        .await
        .iter()
        .map(|a| {
            (
                a.doc["type"].as_str().unwrap().to_string(),
                a.doc["subject"]["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            ("SESSION_CREATION_BURST".to_string(), "tenant".to_string()),
            ("SESSION_CREATION_BURST".to_string(), "user".to_string())
        ]
    );
    // The same batch again (redelivery): counted once, alerted once.
    no_failures(&w.invoke(&burst, &event).await);
    assert!(w.alerts().await.is_empty());
    w.env.teardown().await;
}

const FIREFOX_131: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0";
const FIREFOX_132: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";

/// Issue 12: the client is compared as parsed. An IP change alone and a browser's own update
/// raise nothing; another browser, OS or device is LOW; a script taking the session over is HIGH;
/// another browser from another network is MEDIUM, with both networks in its evidence.
#[tokio::test]
async fn the_client_is_compared_as_parsed() {
    let mut w = World::new("context").await;
    let mut sess = w.f.active("ctx", "u-1", H, 60);
    sess.user_agent = Some(FIREFOX_131.into());
    sess.ip_address = Some("198.51.100.1".into());
    w.put_seen(&sess).await;
    w.update(&sess, &[("ipAddress", s("203.0.113.5"))]).await;
    no_failures(&w.step().await);
    w.update(&sess, &[("userAgent", s(FIREFOX_132))]).await;
    no_failures(&w.step().await);
    assert!(
        w.alerts().await.is_empty(),
        "an IP change alone, and a browser update, do not alert"
    );
    w.update(&sess, &[("userAgent", s(SAFARI_IPHONE))]).await;
    let a = single_alert(&mut w).await;
    a.assert_kind("SESSION_CONTEXT_CHANGED", "LOW");
    w.update(&sess, &[("userAgent", s("python-requests/2.32.3"))])
        .await;
    let a = single_alert(&mut w).await;
    a.assert_kind("SESSION_CLIENT_SCRIPTED", "HIGH");
    // A new client from another network: a step stronger, and the alert shows both networks.
    let mut moved = w.f.active("ctx-net", "u-2", H, 60);
    moved.user_agent = Some(FIREFOX_131.into());
    moved.ip_address = Some("198.51.100.1".into());
    w.put_seen(&moved).await;
    w.update(
        &moved,
        &[
            ("userAgent", s(SAFARI_IPHONE)),
            ("ipAddress", s("203.0.113.5")),
        ],
    )
    .await;
    let a = single_alert(&mut w).await;
    a.assert_kind("SESSION_CONTEXT_CHANGED", "MEDIUM");
    assert_eq!(
        a.doc["evidence"][1],
        serde_json::json!({"field": "network", "before": "198.51.100.0/24", "after": "203.0.113.0/24"})
    );
    assert_metrics(
        &w.env.metrics().await,
        &[
            ("SessionIpChanged", &[], 2.0),
            (
                "AnomaliesDetected",
                &[("Type", "SESSION_CONTEXT_CHANGED"), ("Severity", "MEDIUM")],
                1.0,
            ),
        ],
    );
    w.env.teardown().await;
}

/// Asserts a scenario raised nothing: no alert, no anomaly metric, no failure.
async fn assert_benign(w: &mut World) {
    no_failures(&w.step().await);
    let alerts = w.alerts().await;
    assert!(alerts.is_empty(), "benign traffic alerted: {alerts:#?}");
    let m = w.env.metrics().await;
    assert!(
        m.iter().all(|s| s.name != "AnomaliesDetected"),
        "benign traffic counted an anomaly: {m:#?}"
    );
}

#[tokio::test]
async fn benign_expiry_by_the_cleanup_worker() {
    let mut w = World::new("benign-cleanup").await;
    let due = w.f.active("due", "u-1", 9 * H, 8 * H + 60);
    w.put_seen(&due).await;
    let report = w
        .env
        .invoke_cleanup(
            w.env
                .cleanup_config(sessionwarden_core::config::CleanupStrategy::Index, &[]),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(report.expired_total(), 1);
    assert_benign(&mut w).await;
    w.env.teardown().await;
}

#[tokio::test]
async fn benign_logout() {
    let mut w = World::new("benign-logout").await;
    let sess = w.f.active("out", "u-1", H, 60);
    w.put_seen(&sess).await;
    w.update(
        &sess,
        &[
            ("status", s("TERMINATED")),
            ("terminationReason", s("logout")),
            ("terminatedAt", n(w.f.now)),
        ],
    )
    .await;
    assert_benign(&mut w).await;
    w.env.teardown().await;
}

#[tokio::test]
async fn benign_ttl_deletes_are_counted() {
    let mut w = World::new("benign-ttl").await;
    let mut sess = w.f.active("old", "u-1", 9 * 86_400, 8 * 86_400);
    sess.status = Status::Expired;
    w.put(&sess).await;
    let mut event = w.event().await;
    // Neither emulator delivers TTL deletes as AWS does (moto never deletes; DynamoDB Local's
    // record has no userIdentity): build the REMOVE exactly as DynamoDB's TTL delivers it.
    let remove = sessionwarden_tests::ttl_remove(
        &event["Records"][0],
        &sess.session_id,
        "EXPIRED",
        "99999999999999999999",
    );
    event["Records"].as_array_mut().unwrap().push(remove);
    no_failures(&w.invoke(&[], &event).await);
    assert!(w.alerts().await.is_empty());
    assert_metrics(
        &w.env.metrics().await,
        &[("SessionsDeletedByTtl", &[], 1.0)],
    );
    w.env.teardown().await;
}

#[tokio::test]
async fn benign_multi_tab_touches() {
    let mut w = World::new("benign-tabs").await;
    let sess = w.f.active("tabs", "u-1", H, 120);
    w.put_seen(&sess).await;
    // Three tabs race: the last write carries an older timestamp.
    for t in [w.f.now - 5, w.f.now, w.f.now - 2] {
        w.update(
            &sess,
            &[("lastActivityAt", n(t)), ("sweepAt", n(t + 8 * H))],
        )
        .await;
    }
    assert_benign(&mut w).await;
    w.env.teardown().await;
}

#[tokio::test]
async fn benign_login_again_under_a_new_session_id() {
    let mut w = World::new("benign-relogin").await;
    let first = w.f.active("one", "u-1", 2 * H, 60);
    w.put_seen(&first).await;
    let second = w.f.active("two", "u-1", 0, 0);
    w.put(&second).await;
    assert_benign(&mut w).await;
    w.env.teardown().await;
}

#[tokio::test]
async fn benign_tenant_switch_through_a_new_session() {
    let mut w = World::new("benign-switch").await;
    let first = w.f.active("acme", "u-1", 2 * H, 60);
    w.put_seen(&first).await;
    let mut second = w.f.active("globex", "u-1", 0, 0);
    second.tenant_id = Some("globex".into());
    w.put(&second).await;
    assert_benign(&mut w).await;
    w.env.teardown().await;
}

#[tokio::test]
async fn a_redelivered_batch_raises_no_second_alert_and_counts_once() {
    let mut w = World::new("redelivery").await;
    let sess = w.f.active("re", "u-1", H, 60);
    w.put(&sess).await;
    w.update(&sess, &[("userId", s("u-2"))]).await;
    let event = w.event().await;
    no_failures(&w.invoke(&[], &event).await);
    no_failures(&w.invoke(&[], &event).await);
    assert_eq!(w.alerts().await.len(), 1);
    assert_metrics(
        &w.env.metrics().await,
        &[
            ("AnomaliesDetected", USER_CHANGED_CRITICAL, 1.0),
            // The second delivery finds its own record's alert published: nothing is left to do,
            // and it is no duplicate incident (AlertsSuppressed counts those).
            ("AlertsSuppressed", &[], 0.0),
            ("SessionsTerminated", &[("Cause", "containment")], 1.0),
        ],
    );
    w.env.teardown().await;
}

#[tokio::test]
async fn one_session_split_across_two_concurrent_invocations_alerts_exactly_once() {
    let mut w = World::new("concurrent").await;
    let first = w.f.active("split", "u-1", H, 60);
    w.put(&first).await;
    let a = w.event().await;
    w.env.app_delete(&first.session_id).await;
    let mut second = first.clone();
    second.user_id = Some("u-2".into());
    w.put(&second).await;
    let b = w.event().await;
    // Two invocations at once: [INSERT u-1] and [REMOVE, INSERT u-2] of the same session ID.
    let (ra, rb) = tokio::join!(w.invoke(&[], &a), w.invoke(&[], &b));
    no_failures(&ra);
    no_failures(&rb);
    let alerts = w.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].doc["type"], "SESSION_USER_CHANGED");
    w.env.teardown().await;
}

/// Ending one chosen session fails transiently.
struct Flaky {
    fail_for: SessionId,
}

impl BeforeEnd for Flaky {
    async fn before_end(&self, id: &SessionId) -> Result<(), PortError> {
        if *id == self.fail_for {
            return Err(PortError::transient(
                "DynamoDB.UpdateItem",
                "ProvisionedThroughputExceededException",
            ));
        }
        Ok(())
    }
}

fn seq_of(record: &serde_json::Value) -> String {
    record["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_transient_failure_mid_batch_returns_the_first_incomplete_record_and_the_retry_completes()
{
    let mut w = World::new("transient").await;
    let sessions = w.seen_users(3, "t").await;
    w.rebind_users(&sessions, "intruder").await;
    let event = w.event().await;
    let records = event["Records"].as_array().unwrap().clone();
    let middle = records
        .iter()
        .find(|r| r["dynamodb"]["Keys"]["sessionId"]["S"] == sessions[1].session_id.expose())
        .unwrap();
    let config = w.config(&[]);
    let p = sessionwarden_aws::ports::stream(&w.env.clients, &config);
    let ports = Ports {
        sessions: HookedSessions {
            inner: p.sessions,
            hook: Flaky {
                fail_for: sessions[1].session_id.clone(),
            },
        },
        state: p.state,
        alerts: p.alerts,
        cascades: p.cascades,
        dead_letters: p.dead_letters,
        metrics: p.metrics,
        events: p.events,
    };
    let flaky = StreamWorker::new(ports, config);
    let (response, report) = flaky.run(&records).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier.as_deref(),
        Some(seq_of(middle).as_str())
    );
    assert_eq!(report.failed_from.as_deref(), Some(seq_of(middle).as_str()));
    let first_round = w.alerts().await;
    assert_eq!(first_round.len(), 2, "the other sessions' work completed");

    // Lambda retries from the failed record on; everything from there is safe to redo.
    let retry: Vec<serde_json::Value> = records
        .iter()
        .filter(|r| {
            sessionwarden_core::change::SeqNo(seq_of(r))
                >= sessionwarden_core::change::SeqNo(seq_of(middle))
        })
        .cloned()
        .collect();
    no_failures(&w.invoke(&[], &lambda_event(retry)).await);
    let second_round = w.alerts().await;
    assert_eq!(
        second_round.len(),
        1,
        "only the failed session alerts now: {second_round:#?}"
    );
    assert_eq!(
        second_round[0].doc["sessionRef"],
        w.env.key.of(&sessions[1].session_id).as_str()
    );
    for sess in &sessions {
        assert_eq!(w.env.status_of(sess).await, Status::Terminated);
    }
    w.env.teardown().await;
}

#[tokio::test]
async fn malformed_records_go_raw_to_the_dead_letter_queue_and_never_block() {
    let mut w = World::new("malformed").await;
    let good = w.f.active("good", "u-1", H, 60);
    w.put(&good).await;
    let event = w.event().await;
    let template = event["Records"][0].clone();
    let mut records = vec![template.clone()];
    let mut bad = |seq: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut r = template.clone();
        r["dynamodb"]["SequenceNumber"] = seq.into();
        edit(&mut r);
        records.push(r);
    };
    bad("90000000000000000001", &|r| {
        r["dynamodb"]["Keys"] = serde_json::json!({});
    });
    bad("90000000000000000002", &|r| {
        r["dynamodb"]["NewImage"]["status"] = serde_json::json!({"S": "ZOMBIE"});
    });
    bad("90000000000000000003", &|r| {
        r["dynamodb"]["NewImage"]["lastActivityAt"] = serde_json::json!({"S": "yesterday"});
    });
    // The AWS documentation sample: a valid stream record, but not of a sessions table.
    let sample: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/dynamodb-stream-event.json")).unwrap();
    records.push(sample["Records"][0].clone());

    no_failures(&w.invoke(&[], &lambda_event(records)).await);

    let mut letters = w.env.dead_letters().await;
    letters.sort_by_key(|l| l["sequenceNumber"].as_str().unwrap_or_default().to_string());
    assert_eq!(letters.len(), 4, "{letters:#?}");
    let reasons: Vec<&str> = letters
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons[0].contains("key sessionId is missing"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("key sessionId is missing"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("unknown session status \"ZOMBIE\""),
        "{reasons:?}"
    );
    assert!(reasons[3].contains("lastActivityAt"), "{reasons:?}");
    assert_eq!(letters[0]["sequenceNumber"], "111");
    assert_eq!(
        letters[2]["record"]["dynamodb"]["NewImage"]["status"]["S"], "ZOMBIE",
        "the record is kept raw"
    );
    assert_eq!(letters[0]["source"], "sessionwarden-stream");
    assert_metrics(
        &w.env.metrics().await,
        &[
            ("StreamRecordsMalformed", &[], 4.0),
            ("StreamRecordsProcessed", &[], 1.0),
        ],
    );
    w.env.teardown().await;
}

/// Records every metric batch a worker publishes, per invocation, and forwards it to CloudWatch.
#[derive(Clone)]
struct Recording {
    inner: sessionwarden_aws::cloudwatch::CloudWatchMetrics,
    seen: std::sync::Arc<std::sync::Mutex<Vec<sessionwarden_core::metrics::MetricBatch>>>,
}

impl sessionwarden_core::ports::MetricsSink for Recording {
    async fn publish(
        &self,
        ns: &str,
        b: &sessionwarden_core::metrics::MetricBatch,
    ) -> Result<(), sessionwarden_core::error::PortError> {
        self.seen.lock().unwrap().push(b.clone());
        self.inner.publish(ns, b).await
    }
}

#[tokio::test]
async fn nothing_of_one_invocation_reaches_the_next() {
    let mut w = World::new("isolation").await;
    let config = w.config(&[("METRICS_TENANT_DIMENSION", "true")]);
    let recording = Recording {
        inner: sessionwarden_aws::cloudwatch::CloudWatchMetrics::new(
            w.env.clients.cloudwatch.clone(),
        ),
        seen: Default::default(),
    };
    // One worker, one process, reused across invocations as Lambda does.
    let p = sessionwarden_aws::ports::stream(&w.env.clients, &config);
    let ports = Ports {
        sessions: p.sessions,
        state: p.state,
        alerts: p.alerts,
        cascades: p.cascades,
        dead_letters: p.dead_letters,
        metrics: recording.clone(),
        events: p.events,
    };
    let worker = StreamWorker::new(ports, config);
    let mut per_invocation = Vec::new();
    for (tenant, user) in [("tenant-a", "alice"), ("tenant-b", "bob")] {
        let mut sess = w.f.active(tenant, user, H, 60);
        sess.tenant_id = Some(tenant.into());
        w.put(&sess).await;
        w.update(&sess, &[("userId", s(&format!("{user}-intruder")))])
            .await;
        let event = w.event().await;
        // The production path: records read with the event, plain touches decided then.
        worker.decide_touches_here();
        let payload: NativeEvent = serde_json::from_str(&event.to_string()).unwrap();
        no_failures(
            &worker
                .handle_native(LambdaEvent::new(
                    payload,
                    context_with(Duration::from_secs(60)),
                ))
                .await
                .unwrap(),
        );
        per_invocation.push(w.alerts().await);
    }
    let second: String = per_invocation[1].iter().map(|a| a.raw.clone()).collect();
    assert_eq!(per_invocation[1].len(), 1);
    assert!(second.contains("tenant-b") && second.contains("bob"));
    for leaked in ["tenant-a", "alice"] {
        assert!(
            !second.contains(leaked),
            "the second invocation's alert carries {leaked}"
        );
    }
    let batches = recording.seen.lock().unwrap().clone();
    assert_eq!(batches.len(), 2, "one flush per invocation");
    let dims: Vec<String> = batches[1]
        .iter()
        .flat_map(|(k, _, _)| k.dimensions.iter().map(|(_, v)| v.clone()))
        .collect();
    assert!(dims.contains(&"tenant-b".to_string()), "{dims:?}");
    assert!(
        !dims.contains(&"tenant-a".to_string()),
        "the first tenant leaked into the second flush: {dims:?}"
    );
    w.env.teardown().await;
}

/// The burst threshold of the request-budget test: its 100 new sessions in one tenant are a
/// burst, as 1,000 are at the default threshold of 500.
const BUDGET_BURST: &str = "50";

#[tokio::test]
async fn a_hundred_new_sessions_cost_at_most_ten_requests_and_touches_cost_none() {
    // `just bench stream` checks 1,000 new sessions against a budget of 50 requests.
    let mut w = World::new("stream-cost").await;
    let sessions = w.seed_new(100, "c").await;
    let inserts = w.event().await;
    assert_eq!(inserts["Records"].as_array().unwrap().len(), 100);
    w.env.counter.reset();
    let burst = [("BURST_TENANT_THRESHOLD", BUDGET_BURST)];
    no_failures(&w.invoke(&burst, &inserts).await);
    let snapshot = w.env.counter.snapshot();
    let puts = w.env.counter.get("PutMetricData");
    let requests = w.env.counter.total() - puts;
    eprintln!("100 INSERTs: {requests} requests besides {puts} PutMetricData: {snapshot:?}");
    assert!(
        requests <= 10,
        "{requests} requests for 100 new sessions: {snapshot:?}"
    );
    assert_eq!(puts, 1);
    let alerts = w.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (
            alerts[0].doc["type"].as_str(),
            alerts[0].doc["subject"]["kind"].as_str()
        ),
        (Some("SESSION_CREATION_BURST"), Some("tenant"))
    );

    // Every session touched once (written in batches: each write is a MODIFY with both images).
    let touched: Vec<Session> = sessions
        .iter()
        .map(|s| {
            let mut t = s.clone();
            t.last_activity_at = w.f.now;
            w.f.with_sweep(t)
        })
        .collect();
    w.env.seed(&touched).await;
    let touches = w.event().await;
    w.env.counter.reset();
    no_failures(&w.invoke(&burst, &touches).await);
    let snapshot = w.env.counter.snapshot();
    assert_eq!(
        w.env.counter.total(),
        1,
        "a plain touch costs no request, only the metrics flush: {snapshot:?}"
    );
    assert!(w.alerts().await.is_empty());
    w.env.teardown().await;
}

#[tokio::test]
async fn emulator_records_have_the_documented_lambda_event_shape() {
    let mut w = World::new("shape").await;
    let sess = w.f.active("shape", "u-1", H, 60);
    w.put(&sess).await;
    w.update(&sess, &[("lastActivityAt", n(w.f.now))]).await;
    let event = w.event().await;
    let sample: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/dynamodb-stream-event.json")).unwrap();
    // The documentation sample and ours both parse as the runtime's event type.
    let _: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_value(sample.clone()).expect("sample parses");
    let _: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_value(event.clone()).expect("ours parses");
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let modify_sample = &sample["Records"][1];
    let modify_ours = event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["eventName"] == "MODIFY")
        .unwrap();
    for k in keys(modify_sample) {
        assert!(modify_ours.get(&k).is_some(), "our record lacks {k}");
    }
    for k in keys(&modify_sample["dynamodb"]) {
        assert!(
            modify_ours["dynamodb"].get(&k).is_some(),
            "our dynamodb block lacks {k}"
        );
    }
    w.env.teardown().await;
}

/// Issue 12: a storm folds only what can wait. One session bleed among 30 user-agent changes
/// (past the default threshold of 10) goes out as its own CRITICAL alert; the 30 LOW ones come
/// as one digest.
#[tokio::test]
async fn a_storm_sends_its_critical_alert_alone_and_folds_the_rest() {
    let mut w = World::new("storm").await;
    let sessions = w.seen_users(31, "s").await;
    // The app records each session's user agent, then the agent changes.
    for sess in &sessions[1..] {
        w.update(sess, &[("userAgent", s(FIREFOX_131))]).await;
    }
    no_failures(&w.step().await);
    w.rebind_users(&sessions[..1], "x").await;
    for sess in &sessions[1..] {
        w.update(sess, &[("userAgent", s(SAFARI_IPHONE))]).await;
    }
    let event = w.event().await;
    no_failures(&w.invoke(&[], &event).await);
    let mut alerts = w.alerts().await;
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    alerts.sort_by_key(|a| a.doc["type"] != "SESSION_USER_CHANGED");
    alerts[0].assert_kind("SESSION_USER_CHANGED", "CRITICAL");
    let d = &alerts[1];
    d.assert_kind("DIGEST", "LOW");
    assert_eq!(
        d.doc["counts"],
        serde_json::json!([{"type": "SESSION_CONTEXT_CHANGED", "severity": "LOW", "count": 30}])
    );
    assert_eq!(
        d.subject,
        "[LOW] sessionwarden: 30 anomalies in one batch (digest)"
    );
    assert_eq!(w.env.status_of(&sessions[0]).await, Status::Terminated);
    assert_metrics(
        &w.env.metrics().await,
        &[
            ("AnomaliesDetected", USER_CHANGED_CRITICAL, 1.0),
            (
                "AnomaliesDetected",
                &[("Type", "SESSION_CONTEXT_CHANGED"), ("Severity", "LOW")],
                30.0,
            ),
        ],
    );
    w.env.teardown().await;
}

/// A storm of CRITICAL alerts only: each goes out alone (each behind its own gate), with no
/// digest, and every anomaly is contained and counted.
#[tokio::test]
async fn a_storm_of_critical_alerts_sends_each_alone() {
    let mut w = World::new("storm-critical").await;
    let sessions = w.seen_users(4, "s").await;
    w.rebind_users(&sessions, "x").await;
    let event = w.event().await;
    no_failures(&w.invoke(&[("ALERT_STORM_THRESHOLD", "2")], &event).await);
    let alerts = w.alerts().await;
    assert_eq!(alerts.len(), 4, "{alerts:#?}");
    for a in &alerts {
        a.assert_kind("SESSION_USER_CHANGED", "CRITICAL");
    }
    for sess in &sessions {
        assert_eq!(w.env.status_of(sess).await, Status::Terminated);
    }
    assert_metrics(
        &w.env.metrics().await,
        &[("AnomaliesDetected", USER_CHANGED_CRITICAL, 4.0)],
    );
    w.env.teardown().await;
}

#[tokio::test]
async fn terminate_user_containment_requests_a_user_cascade() {
    let mut w = World::new("terminate-user").await;
    let sess = w.f.anonymous("fix", H, 60);
    w.put_seen(&sess).await;
    w.update(&sess, &[("userId", s("u-55"))]).await;
    let event = w.event().await;
    no_failures(
        &w.invoke(
            &[("CONTAINMENT_SESSION_FIXATION", "terminate_user")],
            &event,
        )
        .await,
    );
    let alerts = w.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].doc["action"]
        .as_str()
        .unwrap()
        .contains("every session of user u-55 requested"));
    // The request is a USER cascade on the cascade queue.
    let queued: Vec<serde_json::Value> = w
        .env
        .drain(&w.env.resources.cascade_queue_url)
        .await
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .filter(|m: &serde_json::Value| m["scope"] == "user")
        .collect();
    assert_eq!(queued.len(), 1, "{queued:#?}");
    assert_eq!(queued[0]["userId"], "u-55");
    assert_eq!(queued[0]["requestedBy"], "sessionwarden-stream");
    assert!(queued[0]["reason"]
        .as_str()
        .unwrap()
        .contains("SESSION_FIXATION"));
    assert_metrics(
        &w.env.metrics().await,
        &[("ContainmentRequested", &[("Action", "terminate_user")], 1.0)],
    );
    w.env.teardown().await;
}

#[tokio::test]
async fn the_stream_tail_returns_every_record_once_even_when_moto_repeats_sequence_numbers() {
    let mut w = World::new("tail-race").await;
    // Concurrent BatchWriteItems race in moto's threaded server and can give records duplicate
    // sequence numbers, after which its iterator cycles. The tail must still end, once per record.
    w.seed_new(2000, "race").await;
    let records = tokio::time::timeout(Duration::from_secs(120), w.tail.next_records())
        .await
        .expect("the stream read ends")
        .expect("read stream");
    let mut ids: Vec<&str> = records
        .iter()
        .map(|r| r["eventID"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!((records.len(), ids.len()), (2000, 2000));
    let mut seqs: Vec<&str> = records
        .iter()
        .map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap())
        .collect();
    seqs.sort();
    seqs.dedup();
    eprintln!("2000 records, {} distinct sequence numbers", seqs.len());
    w.env.teardown().await;
}
