//! `sessionctl init` against the emulator: what it prints is a usable env file, and what it
//! creates matches the README (stream, TTL, GSIs, queue redrive). Running it twice is harmless.

use std::collections::HashMap;
use std::process::Command;

use aws_sdk_dynamodb::types::{StreamViewType, TimeToLiveStatus};
use aws_sdk_sqs::types::QueueAttributeName;
use sessionwarden_aws::AwsClients;

fn init(prefix: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sessionctl"))
        .args(["init", "--prefix", prefix])
        .envs(sessionwarden_tests::endpoints().env())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("SESSION_REF_KEY")
        .output()
        .expect("run sessionctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn init_prints_key_value_lines_and_creates_everything() {
    let prefix = sessionwarden_tests::unique("init");
    let (ok, stdout, stderr) = init(&prefix);
    assert!(ok, "{stderr}");
    let env: HashMap<String, String> = stdout
        .lines()
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=VALUE: {l:?}"));
            assert!(
                k.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{l:?}"
            );
            (k.to_string(), v.to_string())
        })
        .collect();
    for k in [
        "SESSIONS_TABLE",
        "STATE_TABLE",
        "CASCADE_QUEUE_URL",
        "DEAD_LETTER_QUEUE_URL",
        "ALERTS_TOPIC_ARN",
        "METRICS_NAMESPACE",
        "SESSION_REF_KEY",
    ] {
        assert!(
            env.get(k).is_some_and(|v| !v.is_empty()),
            "{k} missing from:\n{stdout}"
        );
    }
    assert_eq!(env["SESSIONS_TABLE"], format!("{prefix}-sessions"));
    assert!(env["SESSION_REF_KEY"].len() >= 16);

    let clients = AwsClients::local(&sessionwarden_tests::sdk_config().await, None);
    let table = clients
        .dynamodb
        .describe_table()
        .table_name(&env["SESSIONS_TABLE"])
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let stream = table.stream_specification().unwrap();
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type(),
        Some(&StreamViewType::NewAndOldImages)
    );
    let mut gsis: Vec<_> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| g.index_name())
        .collect();
    gsis.sort();
    assert_eq!(gsis, ["by-parent", "by-sweep", "by-tenant", "by-user"]);
    for t in [&env["SESSIONS_TABLE"], &env["STATE_TABLE"]] {
        let ttl = clients
            .dynamodb
            .describe_time_to_live()
            .table_name(t)
            .send()
            .await
            .unwrap();
        let ttl = ttl.time_to_live_description().unwrap();
        assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
        assert_eq!(ttl.attribute_name(), Some("expiresAt"));
    }
    let attrs = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&env["CASCADE_QUEUE_URL"])
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    let redrive = &attrs.attributes().unwrap()[&QueueAttributeName::RedrivePolicy];
    assert!(
        redrive.contains("cascade-dlq") && redrive.contains("maxReceiveCount"),
        "{redrive}"
    );

    // Idempotent: a second run reuses the resources and prints the same names.
    let (ok, again, stderr) = init(&prefix);
    assert!(ok, "{stderr}");
    assert!(again.contains(&format!("SESSIONS_TABLE={prefix}-sessions")));
}

#[tokio::test]
async fn resolve_finds_the_session_behind_a_reference() {
    let env = sessionwarden_tests::TestEnv::new("resolve").await;
    let f = sessionwarden_tests::SessionFactory::new();
    let target = f.active("target", "u-1", 3600, 60);
    let other = f.active("other", "u-2", 3600, 60);
    env.seed(&[target.clone(), other]).await;
    let reference = env.key.of(&target.session_id).to_string();
    let run = |r: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sessionctl"));
        cmd.args(["resolve", r])
            .envs(sessionwarden_tests::endpoints().env())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test");
        for (k, v) in env.env_vars() {
            cmd.env(k, v);
        }
        cmd.output().expect("run sessionctl")
    };
    let out = run(&reference);
    sessionwarden_tests::assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with(target.session_id.expose()) && stdout.contains("user=u-1"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("bearer credential"));
    let out = run("000000000000");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no session"));
    env.teardown().await;
}

#[tokio::test]
async fn revoke_sends_a_valid_cascade_request() {
    let env = sessionwarden_tests::TestEnv::new("revoke").await;
    let out = Command::new(env!("CARGO_BIN_EXE_sessionctl"))
        .args([
            "revoke",
            "--user",
            "u-123",
            "--reason",
            "password-changed",
            "--requested-by",
            "auth-service",
        ])
        .envs(sessionwarden_tests::endpoints().env())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .envs(env.env_vars())
        .output()
        .expect("run sessionctl");
    sessionwarden_tests::assert_success(&out);
    let bodies = env.drain(&env.resources.cascade_queue_url).await;
    assert_eq!(bodies.len(), 1);
    let job =
        sessionwarden_core::cascade_message::parse(&bodies[0], "m").expect("the worker accepts it");
    assert_eq!(
        job.target,
        sessionwarden_core::cascade_message::Target::User("u-123".into())
    );
    assert_eq!(
        (job.reason.as_str(), job.requested_by.as_str()),
        ("password-changed", "auth-service")
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_sessionctl"))
        .args(["revoke", "--user", "u", "--tenant", "t", "--reason", "r"])
        .envs(env.env_vars())
        .output()
        .unwrap();
    assert!(!bad.status.success(), "two subjects are refused");
    env.teardown().await;
}

/// `sessionctl sessions --tenant` on the native layout (its by-tenant GSI): the tenant's
/// sessions by reference, with status, IP and the parsed user agent, and no raw ID (issue 12).
#[tokio::test]
async fn sessions_lists_a_tenants_sessions_on_the_native_layout() {
    use sessionwarden_core::session::{Session, SessionId, Status};
    let prefix = sessionwarden_tests::unique("sessions-native");
    let (ok, stdout, stderr) = init(&prefix);
    assert!(ok, "{stderr}");
    let mut env: HashMap<String, String> = stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.insert(
        "SESSION_REF_KEY".into(),
        sessionwarden_tests::TEST_REF_KEY.into(),
    );
    let clients = AwsClients::local(&sessionwarden_tests::sdk_config().await, None);
    let now = chrono::Utc::now().timestamp();
    let session = |id: &str, tenant: &str, status: Status| {
        let mut s = Session::active(SessionId::new(id), now - 600);
        s.user_id = Some(format!("u-{}", id.len()));
        s.tenant_id = Some(tenant.into());
        s.status = status;
        s.ip_address = Some("198.51.100.7".into());
        s.user_agent = Some("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15".into());
        s
    };
    sessionwarden_local::seed::SeedTable::new(
        clients.dynamodb.clone(),
        env["SESSIONS_TABLE"].clone(),
    )
    .put_sessions(&[
        session("raw-sid-n1", "acme", Status::Active),
        session("raw-sid-n2", "acme", Status::Terminated),
        session("raw-sid-n3", "globex", Status::Active),
    ])
    .await
    .unwrap();
    // An item of the tenant the native layout cannot read: listed all the same, as UNREADABLE.
    let mut broken = HashMap::new();
    for (k, v) in [
        ("sessionId", "raw-sid-n4"),
        ("tenantId", "acme"),
        ("userId", "u-4"),
        ("status", "ACTIVE"),
        ("idleTimeoutSeconds", "ten minutes"),
    ] {
        broken.insert(
            k.to_string(),
            aws_sdk_dynamodb::types::AttributeValue::S(v.into()),
        );
    }
    for k in ["createdAt", "lastActivityAt", "sweepAt"] {
        broken.insert(
            k.to_string(),
            aws_sdk_dynamodb::types::AttributeValue::N(now.to_string()),
        );
    }
    clients
        .dynamodb
        .put_item()
        .table_name(&env["SESSIONS_TABLE"])
        .set_item(Some(broken))
        .send()
        .await
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sessionctl"))
        .args(["sessions", "--tenant", "acme", "--json"])
        .envs(sessionwarden_tests::endpoints().env())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("SESSION_LAYOUT")
        .envs(&env)
        .output()
        .expect("run sessionctl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("raw-sid"), "{text}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let key = sessionwarden_core::session_ref::SessionRefKey::new(
        sessionwarden_tests::TEST_REF_KEY.as_bytes().to_vec(),
    )
    .unwrap();
    let mut got: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["sessionRef"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (
            key.reference("raw-sid-n1").to_string(),
            "ACTIVE".to_string(),
        ),
        (
            key.reference("raw-sid-n2").to_string(),
            "TERMINATED".to_string(),
        ),
        (
            key.reference("raw-sid-n4").to_string(),
            "UNREADABLE".to_string(),
        ),
    ];
    want.sort();
    assert_eq!(got, want, "{text}");
    let broken = rows.iter().find(|r| r["status"] == "UNREADABLE").unwrap();
    assert!(
        broken["problem"]
            .as_str()
            .unwrap()
            .contains("idleTimeoutSeconds"),
        "{text}"
    );
    for r in rows.iter().filter(|r| r["status"] != "UNREADABLE") {
        assert_eq!(r["ipAddress"], "198.51.100.7");
        assert_eq!(r["client"], "Safari 18.1 / Mac OSX / pc", "{text}");
    }
}
