//! Exactly one alert per incident when AWS fails, on the emulator: the dedup gate is owned by the
//! record that detected the incident, so a gate whose PutItem was applied but whose response was
//! lost is recognised as this record's own on retry (not as "already alerted"), and an alert SNS
//! would not take stays PENDING until the redelivery publishes it, with the same alert ID.

use std::sync::atomic::{AtomicU32, Ordering};

use sessionwarden_aws::sns::SnsAlerts;
use sessionwarden_core::alert::Alert;
use sessionwarden_core::error::{PortError, PortResult};
use sessionwarden_core::ports::{AlertSink, GateKey, GateStore, Ports};
use sessionwarden_core::stream::{process_batch, reading};
use sessionwarden_tests::{s, ReceivedAlert, SessionFactory, TestEnv};

const H: i64 = 3600;

/// SNS that refuses the first `failures` publishes (the whole retry budget of one invocation).
struct FlakySns {
    inner: SnsAlerts,
    failures: AtomicU32,
}

impl AlertSink for FlakySns {
    async fn publish(&self, alerts: &[Alert]) -> PortResult<()> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(PortError::transient("SNS.PublishBatch", "InternalError"));
        }
        self.inner.publish(alerts).await
    }
}

/// A bleed on the emulator: the session's INSERT, then the MODIFY that binds a second user.
async fn bleed(env: &TestEnv) -> Vec<serde_json::Value> {
    let mut tail = env.stream_tail().await;
    let f = SessionFactory::new();
    let victim = f.active("bleed", "u-1", H, 60);
    env.seed(std::slice::from_ref(&victim)).await;
    env.app_update(&victim.session_id, &[("userId", s("u-2"))])
        .await;
    tail.next_records().await.expect("read stream")
}

fn alert_ids(alerts: &[ReceivedAlert]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| a.attributes.get("alertId").cloned().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn an_alert_sns_refuses_stays_pending_and_the_redelivery_publishes_it_once() {
    let env = TestEnv::new("exactly-once-sns").await;
    let inbox = env.subscribe_alerts().await;
    let records = bleed(&env).await;
    let cfg = env.stream_config(&[]);
    let aws = sessionwarden_aws::ports::stream(&env.clients, &cfg);
    let ports = Ports {
        alerts: FlakySns {
            inner: aws.alerts.clone(),
            failures: AtomicU32::new(1),
        },
        sessions: aws.sessions,
        state: aws.state,
        cascades: aws.cascades,
        dead_letters: aws.dead_letters,
        metrics: aws.metrics,
        events: aws.events,
    };
    let parse =
        |r: &serde_json::Value| sessionwarden_aws::stream_record::parse(&cfg.common.layout, r);
    let now = chrono::Utc::now().timestamp();

    // 1st delivery: SNS refuses; the batch fails from the bleed's record; nothing is counted.
    let first = process_batch(
        &ports,
        &cfg,
        records.clone(),
        reading(parse),
        now,
        &plenty(),
    )
    .await;
    let failed = first.failed_from.clone().expect("the record fails");
    assert!(env.alerts(&inbox).await.is_empty());
    assert!(first.report.anomalies.is_empty(), "{:?}", first.report);

    // Lambda redelivers from the failure point: the gate is this record's own, still PENDING.
    let retry: Vec<serde_json::Value> = records
        .iter()
        .filter(|r| {
            sessionwarden_core::change::SeqNo(
                r["dynamodb"]["SequenceNumber"].as_str().unwrap().into(),
            ) >= failed
        })
        .cloned()
        .collect();
    let second = process_batch(&ports, &cfg, retry.clone(), reading(parse), now, &plenty()).await;
    assert_eq!(second.failed_from, None);
    let alerts = env.alerts(&inbox).await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    alerts[0].assert_kind("SESSION_USER_CHANGED", "CRITICAL");
    assert_eq!(
        second.report.anomalies.get("SESSION_USER_CHANGED"),
        Some(&1),
        "counted once, when published"
    );
    let id = alert_ids(&alerts)[0].clone();
    assert_eq!(alerts[0].doc["alertId"], id.as_str());

    // A third delivery (the response of the 2nd was lost): published already, so nothing more.
    let third = process_batch(&ports, &cfg, retry.clone(), reading(parse), now, &plenty()).await;
    assert_eq!(third.failed_from, None);
    assert!(env.alerts(&inbox).await.is_empty());
    assert!(third.report.anomalies.is_empty());
    env.teardown().await;
}

#[tokio::test]
async fn a_gate_whose_response_was_lost_is_recognised_as_ours() {
    let env = TestEnv::new("exactly-once-gate").await;
    let inbox = env.subscribe_alerts().await;
    let records = bleed(&env).await;
    let cfg = env.stream_config(&[]);
    let ports = sessionwarden_aws::ports::stream(&env.clients, &cfg);
    let modify = records
        .iter()
        .find(|r| r["eventName"] == "MODIFY")
        .expect("the bleed's MODIFY");
    let seq = modify["dynamodb"]["SequenceNumber"].as_str().unwrap();
    // The PutItem of an earlier attempt was applied, and its response lost: the gate is PENDING
    // under this record. (The SDK's retry of it would fail its condition, as this run's does.)
    let id = sessionwarden_core::session::SessionId::new(
        modify["dynamodb"]["Keys"]["sessionId"]["S"]
            .as_str()
            .unwrap(),
    );
    let gate = GateKey {
        kind: sessionwarden_core::ports::GateKind::Anomaly(
            sessionwarden_core::anomaly::AnomalyType::SessionUserChanged,
        ),
        subject: format!("s:{}", cfg.common.session_ref_key.state_key(&id)),
    };
    let now = chrono::Utc::now().timestamp();
    let opened = ports.state.open(&gate, seq, now, now + 3600).await.unwrap();
    assert_eq!(opened, sessionwarden_core::ports::GateState::Ours);

    let worker = sessionwarden_stream::StreamWorker::from_clients(&env.clients, cfg.clone());
    let (response, report) = worker.run(&records).await;
    assert!(response.batch_item_failures.is_empty());
    let alerts = env.alerts(&inbox).await;
    assert_eq!(alerts.len(), 1, "the alert is not lost: {report:?}");
    alerts[0].assert_kind("SESSION_USER_CHANGED", "CRITICAL");
    assert_eq!(report.alerts_suppressed, 0);

    // Another record of the same incident in the window is suppressed: its gate is taken.
    let other = ports
        .state
        .open(&gate, "another-record", now, now + 3600)
        .await
        .unwrap();
    assert_eq!(other, sessionwarden_core::ports::GateState::Taken);
    env.teardown().await;
}

/// With `AlertsTopicFifo`, an alert published twice (a PublishBatch whose response was lost and
/// that was sent again) reaches the subscriber once: the alert ID is its deduplication ID.
#[tokio::test]
async fn a_fifo_alerts_topic_drops_an_alert_published_twice() {
    use sessionwarden_core::alert::RenderContext;
    let env = TestEnv::new("exactly-once-fifo").await;
    let (topic, queue) = env.fifo_alerts().await;
    let key = env.key.clone();
    let ctx = RenderContext {
        key: &key,
        runbook_base_url: "https://runbooks.example.com",
        now: chrono::Utc::now().timestamp(),
    };
    let alert = sessionwarden_core::alert::cascade_notice(
        "user",
        "u-1",
        120,
        "root-1",
        "password reset",
        "admin",
        &ctx,
    );
    assert!(!alert.id.is_empty());
    let sns = SnsAlerts::new(env.clients.sns.clone(), &topic);
    sns.publish(std::slice::from_ref(&alert))
        .await
        .expect("first publish");
    sns.publish(std::slice::from_ref(&alert))
        .await
        .expect("the same, again");
    let got = env.drain(&queue).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    env.teardown().await;
}

fn plenty() -> sessionwarden_core::deadline::EpochDeadline {
    sessionwarden_core::deadline::EpochDeadline::in_from_now(std::time::Duration::from_secs(60))
}
