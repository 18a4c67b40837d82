//! A session ID is a bearer credential: this suite captures everything the cleanup worker logs
//! and returns during real runs on the emulator, and fails if any raw session ID appears.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::LambdaEvent;
use sessionwarden::config::CleanupStrategy;
use sessionwarden_cleanup::{CleanupWorker, ScheduledEvent};
use sessionwarden_tests::{context_with, scheduled_event_fixture, SessionFactory, TestEnv};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

const H: i64 = 3600;

// current_thread: every task of the run logs through the subscriber set on this thread.
#[tokio::test(flavor = "current_thread")]
async fn cleanup_logs_and_report_carry_session_refs_never_raw_ids() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(logs.clone())
        .with_env_filter("debug")
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let env = TestEnv::new("redaction").await;
    let f = SessionFactory::new();
    let due = f.active("due", "u-1", 9 * H, 8 * H + 60);
    let fresh = f.active("fresh", "u-2", H, 60);
    env.seed(&[due.clone(), fresh.clone()]).await;
    // An item the app wrote badly: logged as unreadable, with its reference.
    let broken = f.id("broken");
    env.clients
        .dynamodb
        .put_item()
        .table_name(&env.resources.sessions_table)
        .item("sessionId", AttributeValue::S(broken.expose().into()))
        .item("status", AttributeValue::S("ACTIVE".into()))
        .item("sweepAt", AttributeValue::N((f.now - 10).to_string()))
        .item("lastActivityAt", AttributeValue::S("yesterday".into()))
        .send()
        .await
        .unwrap();

    let mut outputs = String::new();
    for strategy in [CleanupStrategy::Index, CleanupStrategy::Scan] {
        let worker = CleanupWorker::from_clients(&env.clients, env.cleanup_config(strategy, &[]));
        let event: ScheduledEvent = serde_json::from_value(scheduled_event_fixture()).unwrap();
        let report = worker
            .handle(LambdaEvent::new(
                event,
                context_with(Duration::from_secs(300)),
            ))
            .await
            .unwrap();
        outputs.push_str(&serde_json::to_string(&report).unwrap());
    }

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let all = format!("{logs}\n{outputs}");
    assert!(
        logs.contains("cleanup run summary"),
        "the summary line is logged"
    );
    assert!(
        logs.contains(env.key.of(&due.session_id).as_str()),
        "the expired session appears by reference"
    );
    assert!(
        logs.contains(env.key.of(&broken).as_str()),
        "the unreadable item appears by reference"
    );
    for id in [&due.session_id, &fresh.session_id, &broken] {
        assert!(
            !all.contains(id.expose()),
            "a raw session ID leaked into logs or output"
        );
    }
    env.teardown().await;
}
