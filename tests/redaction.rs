//! A session ID is a bearer credential: this suite captures everything the cleanup worker logs
//! and returns during real runs on the emulator, and fails if any raw session ID appears.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use sessionwarden_core::config::CleanupStrategy;
use sessionwarden_tests::{SessionFactory, TestEnv};

/// Everything logged through the subscriber of [`Captured::install`].
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Captures this thread's debug-level JSON logs until the guard drops.
    fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(logs.clone())
            .with_env_filter("debug")
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (logs, guard)
    }

    /// What was logged so far.
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

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
    let (logs, _guard) = Captured::install();

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
        let report = env
            .invoke_cleanup(env.cleanup_config(strategy, &[]), Duration::from_secs(300))
            .await;
        outputs.push_str(&serde_json::to_string(&report).unwrap());
    }

    let logs = logs.text();
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

#[tokio::test(flavor = "current_thread")]
async fn stream_logs_alerts_and_metric_dimensions_carry_no_raw_session_id() {
    let (logs, _guard) = Captured::install();

    let env = TestEnv::new("redaction-stream").await;
    let inbox = env.subscribe_alerts().await;
    let mut tail = env.stream_tail().await;
    let f = SessionFactory::new();
    // Every anomaly path that names a session: a bleed, a zombie, a fixation, a context change.
    let bleed = f.active("bleed", "u-1", H, 60);
    let mut zombie = f.active("zombie", "u-2", 2 * H, H);
    zombie.status = sessionwarden_core::session::Status::Terminated;
    let anon = f.anonymous("anon", H, 60);
    let mut ctx = f.active("ctx", "u-3", H, 60);
    ctx.user_agent = Some("Firefox/131".into());
    env.seed(&[bleed.clone(), zombie.clone(), anon.clone(), ctx.clone()])
        .await;
    let n = |v: i64| AttributeValue::N(v.to_string());
    let s = |v: &str| AttributeValue::S(v.to_string());
    env.app_update(&bleed.session_id, &[("userId", s("u-9"))])
        .await;
    env.app_update(&zombie.session_id, &[("lastActivityAt", n(f.now))])
        .await;
    env.app_update(&anon.session_id, &[("userId", s("u-4"))])
        .await;
    env.app_update(&ctx.session_id, &[("userAgent", s("curl/8"))])
        .await;
    let mut records = tail.next_records().await.unwrap();
    // And a malformed one, which is logged with its sequence number only.
    let mut broken = records[0].clone();
    broken["dynamodb"]["NewImage"]["status"] = serde_json::json!({"S": "ZOMBIE"});
    broken["dynamodb"]["SequenceNumber"] = "98765432109876543210".into();
    records.push(broken);

    let worker = sessionwarden_stream::StreamWorker::from_clients(
        &env.clients,
        env.stream_config(&[("METRICS_TENANT_DIMENSION", "true")]),
    );
    let (response, report) = worker.run(&records).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(report.malformed, 1);

    let alerts: String = env
        .alerts(&inbox)
        .await
        .iter()
        .map(|a| a.raw.clone())
        .collect();
    let dims: String = env
        .metrics()
        .await
        .iter()
        .map(|m| format!("{:?}", m.dimensions))
        .collect();
    let logs = logs.text();
    assert!(logs.contains("anomaly detected") && logs.contains("malformed stream record"));
    assert!(
        alerts.contains("SESSION_USER_CHANGED") && alerts.contains("SESSION_CLIENT_SCRIPTED"),
        "{alerts}"
    );
    for id in [
        &bleed.session_id,
        &zombie.session_id,
        &anon.session_id,
        &ctx.session_id,
    ] {
        assert!(!logs.contains(id.expose()), "raw session ID in the logs");
        assert!(!alerts.contains(id.expose()), "raw session ID in an alert");
        assert!(
            !dims.contains(id.expose()),
            "raw session ID in a metric dimension"
        );
        assert!(logs.contains(env.key.of(id).as_str()) || alerts.contains(env.key.of(id).as_str()));
    }
    env.teardown().await;
}

/// Every worker on the connect-dynamodb and Auth.js layouts: the raw ID never appears in logs,
/// alerts, metric dimensions or reports, with its `sess:` prefix or inside `SESSION#<token>`
/// keys. A record that cannot be read is logged with its sequence number and reason only.
#[tokio::test(flavor = "current_thread")]
async fn every_worker_on_other_layouts_names_sessions_only_by_reference() {
    use sessionwarden_tests::{item, nv, sv, LayoutWorld};
    let (logs, _guard) = Captured::install();
    let now = chrono::Utc::now().timestamp();
    let mut raw_ids = Vec::new();
    let mut outputs = String::new();

    let mut w = LayoutWorld::new("redaction-cd", "connect-dynamodb").await;
    let sess = |user: &str| format!(r#"{{"cookie":{{}},"user":{{"id":"{user}"}}}}"#);
    let put = |sid: &str, expires: i64, sess: String| {
        item(&[
            ("id", sv(&format!("sess:{sid}"))),
            ("expires", nv(expires)),
            ("type", sv("connect-session")),
            ("sess", sv(&sess)),
        ])
    };
    let (bleed, lapsed, broken) = (
        format!("cd-bleed-{}", rand::random::<u64>()),
        format!("cd-lapsed-{}", rand::random::<u64>()),
        format!("cd-broken-{}", rand::random::<u64>()),
    );
    w.put(put(&bleed, now + H, sess("u-1"))).await;
    w.put(put(&lapsed, now - H, sess("u-1"))).await;
    w.put(put(&broken, now + H, "{not json".into())).await;
    w.step_ok().await;
    w.put(put(&bleed, now + H, sess("u-2"))).await;
    w.step_ok().await;
    outputs.push_str(&serde_json::to_string(&w.cleanup().await).unwrap());
    outputs.push_str(&serde_json::to_string(&w.revoke_user("u-1").await).unwrap());
    outputs.extend(w.alerts().await.iter().map(|a| a.raw.clone()));
    outputs.extend(
        w.env
            .metrics()
            .await
            .iter()
            .map(|m| format!("{:?}", m.dimensions)),
    );
    raw_ids.extend([bleed, lapsed, broken]);
    w.env.teardown().await;

    let mut w = LayoutWorld::new("redaction-aj", "authjs").await;
    let token = format!("aj-token-{}", rand::random::<u64>());
    for user in ["u-1", "u-2"] {
        w.put(item(&[
            ("pk", sv(&format!("USER#{user}"))),
            ("sk", sv(&format!("SESSION#{token}"))),
            ("GSI1PK", sv(&format!("SESSION#{token}"))),
            ("GSI1SK", sv(&format!("SESSION#{token}"))),
            ("type", sv("SESSION")),
            ("sessionToken", sv(&token)),
            ("userId", sv(user)),
            ("expires", nv(now + H)),
        ]))
        .await;
        w.step_ok().await;
    }
    outputs.push_str(&serde_json::to_string(&w.cleanup().await).unwrap());
    outputs.extend(w.alerts().await.iter().map(|a| a.raw.clone()));
    raw_ids.push(token);
    w.env.teardown().await;

    let logs = logs.text();
    assert!(logs.contains("anomaly detected") && logs.contains("malformed stream record"));
    assert!(outputs.contains("SESSION_USER_CHANGED"), "{outputs}");
    for id in &raw_ids {
        assert!(
            !logs.contains(id.as_str()),
            "raw session ID {id} in the logs"
        );
        assert!(
            !outputs.contains(id.as_str()),
            "raw session ID {id} in an output"
        );
    }
}
