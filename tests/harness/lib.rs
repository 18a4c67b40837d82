//! Test harness: real AWS emulators and per-test isolated resources.
//!
//! - [`endpoints`] and [`sdk_config`] (in `emulators.rs`): DynamoDB and DynamoDB Streams on
//!   DynamoDB Local, everything else on moto's server (`SESSIONWARDEN_EMULATOR=moto`: all on
//!   moto), taken from the environment or started privately once per test process.
//! - [`TestEnv`] provisions uniquely named tables, queues and topic with the same code as
//!   `sessionctl init`, and a unique metrics namespace, so tests can run in parallel against one
//!   emulator.
//! - [`SessionFactory`] builds sessions the way the app writes them; `app.rs` plays the app's
//!   writes, deletes and TTL records; `messages.rs` reads alerts, dead letters and cascade
//!   messages back as their consumers see them; `checks.rs` holds the shared assertions and the
//!   hooked session store; [`Tail`] reads the stream.

mod app;
mod checks;
mod emulators;
mod factory;
pub mod faults;
mod layouts;
mod messages;
mod tail;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use sessionwarden_aws::{AwsClients, RequestCounter};
use sessionwarden_core::cleanup::CleanupReport;
use sessionwarden_core::config::{
    CascadeConfig, CleanupConfig, CleanupStrategy, ConfigError, EnvSource, StreamConfig,
};
use sessionwarden_core::session::{Session, SessionId, Status};
use sessionwarden_core::session_ref::SessionRefKey;
use sessionwarden_local::metrics::{read_back, SeriesSum};
use sessionwarden_local::provision::Resources;
use sessionwarden_local::seed::SeedTable;

pub use app::{n, s, ttl_remove};
pub use checks::{assert_metrics, metric, BeforeEnd, ExpectedMetric, HookedSessions};
pub use emulators::{
    dynamo_engine, endpoints, sdk_config, sdk_config_for, DynamoEngine, Endpoints,
};
pub use factory::SessionFactory;
pub use layouts::{item, nv, sv, ttl_remove_of, LayoutWorld, RawItem};
pub use messages::ReceivedAlert;
pub use tail::Tail;

/// The session reference key every test uses.
pub const TEST_REF_KEY: &str = "test-session-ref-key-0123456789";

/// moto's endpoint (every service but DynamoDB and DynamoDB Streams, unless
/// `SESSIONWARDEN_EMULATOR=moto`); see [`endpoints`] for all of them.
pub fn endpoint() -> &'static str {
    &endpoints().aws
}

/// A unique name for this test's resources.
pub fn unique(name: &str) -> String {
    format!("t{}-{name}", rand::random::<u32>())
}

/// One test's isolated world on the emulator.
pub struct TestEnv {
    /// Resource prefix.
    pub prefix: String,
    /// Clients that count every request they send.
    pub clients: AwsClients,
    /// The request tally of [`TestEnv::clients`].
    pub counter: RequestCounter,
    /// What was provisioned.
    pub resources: Resources,
    /// This test's CloudWatch namespace.
    pub namespace: String,
    /// The session reference key.
    pub key: SessionRefKey,
    /// `SESSION_LAYOUT` of this test's workers (`None`: native).
    pub layout: Option<String>,
}

impl TestEnv {
    /// Provisions a fresh set of resources named after `name`.
    pub async fn new(name: &str) -> Self {
        Self::provision(name, None).await
    }

    /// Provisions a fresh set of resources whose sessions table is shaped as `layout` (a
    /// `SESSION_LAYOUT` value) stores sessions; the workers run with that layout.
    pub async fn with_layout(name: &str, layout: &str) -> Self {
        Self::provision(name, Some(layout)).await
    }

    async fn provision(name: &str, layout: Option<&str>) -> Self {
        let prefix = unique(name);
        let counter = RequestCounter::new();
        let clients = AwsClients::local(&sdk_config().await, Some(&counter));
        let parsed = sessionwarden_core::layout::Layout::parse(layout.unwrap_or("native"))
            .expect("the test's layout parses");
        let resources =
            sessionwarden_local::provision::init_with_layout(&clients, &prefix, &parsed)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "provisioning {prefix}: {}",
                        sessionwarden_core::error::error_chain(&e)
                    )
                });
        counter.reset();
        TestEnv {
            namespace: format!("SessionWardenTest/{prefix}"),
            prefix,
            clients,
            counter,
            resources,
            key: SessionRefKey::new(TEST_REF_KEY.as_bytes().to_vec()).expect("test key"),
            layout: layout.map(str::to_string),
        }
    }

    /// This test's environment plus the runbook URL the tests expect and `extra` overrides.
    fn vars_with(&self, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut vars = self.env_vars();
        vars.insert(
            "RUNBOOK_BASE_URL".into(),
            "https://runbooks.example.com/sessionwarden".into(),
        );
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        vars
    }

    /// The worker environment of this test, as `sessionctl init` would print it.
    pub fn env_vars(&self) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = self
            .resources
            .env(&self.namespace)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        m.insert("SESSION_REF_KEY".into(), TEST_REF_KEY.into());
        if let Some(l) = &self.layout {
            m.insert("SESSION_LAYOUT".into(), l.clone());
        }
        m
    }

    /// Cleanup configuration parsed from this test's environment plus `extra` overrides.
    pub fn cleanup_config(
        &self,
        strategy: CleanupStrategy,
        extra: &[(&str, &str)],
    ) -> CleanupConfig {
        let mut vars = self.env_vars();
        vars.insert("CLEANUP_STRATEGY".into(), strategy.as_str().into());
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        parse_config(vars, "test", |env| CleanupConfig::from_source(env))
    }

    /// Invokes the cleanup Lambda handler exactly as the runtime would, with the scheduled-event
    /// fixture and `remaining` time left.
    pub async fn invoke_cleanup(
        &self,
        config: CleanupConfig,
        remaining: Duration,
    ) -> CleanupReport {
        let worker = sessionwarden_cleanup::CleanupWorker::from_clients(&self.clients, config);
        let event: sessionwarden_cleanup::ScheduledEvent =
            serde_json::from_value(scheduled_event_fixture()).expect("fixture parses");
        worker
            .handle(lambda_runtime::LambdaEvent::new(
                event,
                context_with(remaining),
            ))
            .await
            .expect("cleanup run succeeds")
    }

    /// The sessions table, for seeding and reads.
    pub fn sessions(&self) -> SeedTable {
        SeedTable::new(
            self.clients.dynamodb.clone(),
            self.resources.sessions_table.clone(),
        )
    }

    /// Seeds sessions; the request counter is reset afterwards.
    pub async fn seed(&self, sessions: &[Session]) {
        self.sessions()
            .put_sessions(sessions)
            .await
            .expect("seeding sessions");
        self.counter.reset();
    }

    /// Seeds sessions as the app writes them, then lets the stream worker see their INSERTs, as
    /// in production: that marks the parents among them (so their family cascades are asked
    /// for) and files the layout's own indexes. The cascades it asked for are drained.
    pub async fn seed_seen(&self, sessions: &[Session]) {
        self.seed(sessions).await;
        let mut tail = self.stream_tail().await;
        let stream = sessionwarden_stream::StreamWorker::from_clients(
            &self.clients,
            self.stream_config(&[]),
        );
        let records = tail
            .next_records()
            .await
            .expect("reading the seeded INSERTs");
        let (r, _) = stream.run(&records).await;
        assert!(r.batch_item_failures.is_empty(), "seeded INSERTs processed");
        self.drain(&self.resources.cascade_queue_url).await;
        self.counter.reset();
    }

    /// Reads one raw item with a consistent read.
    pub async fn raw_item(&self, id: &SessionId) -> Option<HashMap<String, AttributeValue>> {
        self.clients
            .dynamodb
            .get_item()
            .table_name(&self.resources.sessions_table)
            .key("sessionId", AttributeValue::S(id.expose().into()))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem")
            .item
    }

    /// Reads the raw items of `sessions` now, to compare with later.
    pub async fn snapshot(&self, sessions: &[Session]) -> RawSnapshot {
        let mut items = Vec::with_capacity(sessions.len());
        for s in sessions {
            items.push(self.raw_item(&s.session_id).await);
        }
        RawSnapshot {
            ids: sessions.iter().map(|s| s.session_id.clone()).collect(),
            items,
        }
    }

    /// Reads one session.
    pub async fn session(&self, id: &SessionId) -> Session {
        self.sessions()
            .get(id)
            .await
            .expect("GetItem")
            .expect("session exists")
            .expect("session parses")
    }

    /// The current status of a seeded session.
    pub async fn status_of(&self, s: &Session) -> Status {
        self.session(&s.session_id).await.status
    }

    /// Every metric series of this test's namespace, read back from the emulator.
    pub async fn metrics(&self) -> Vec<SeriesSum> {
        let now = chrono::Utc::now().timestamp();
        read_back(
            &self.clients.cloudwatch,
            &self.namespace,
            now - 3600,
            now + 3600,
        )
        .await
        .expect("reading metrics back")
    }

    /// Deletes this test's tables to keep the emulator small. Best effort: a failure is reported,
    /// and the emulator goes away with the run anyway.
    pub async fn teardown(self) {
        if let Err(e) =
            sessionwarden_local::provision::delete_tables(&self.clients, &self.prefix).await
        {
            eprintln!(
                "teardown of {}: {}",
                self.prefix,
                sessionwarden_core::error::error_chain(&e)
            );
        }
    }
}

/// The raw items of some sessions at one moment, from [`TestEnv::snapshot`].
#[derive(Debug, Clone, PartialEq)]
pub struct RawSnapshot {
    ids: Vec<SessionId>,
    items: Vec<Option<HashMap<String, AttributeValue>>>,
}

impl RawSnapshot {
    /// Asserts every item is still exactly as it was (`why` says what that means).
    pub async fn assert_unchanged(&self, env: &TestEnv, why: &str) {
        for (id, before) in self.ids.iter().zip(&self.items) {
            assert_eq!(&env.raw_item(id).await, before, "{why}");
        }
    }
}

/// Parses a worker configuration (`what`, for the panic message) from `vars`.
fn parse_config<T>(
    vars: HashMap<String, String>,
    what: &str,
    parse: impl FnOnce(&dyn EnvSource) -> Result<T, ConfigError>,
) -> T {
    let lookup = move |k: &str| vars.get(k).cloned();
    parse(&lookup).unwrap_or_else(|e| panic!("{what} config parses: {e:?}"))
}

/// The EventBridge scheduled-event fixture (the AWS documentation sample).
pub fn scheduled_event_fixture() -> serde_json::Value {
    serde_json::from_str(include_str!("../fixtures/eventbridge-scheduled-event.json"))
        .expect("fixture is JSON")
}

/// A Lambda invocation context whose deadline is `remaining` from now.
pub fn context_with(remaining: Duration) -> lambda_runtime::Context {
    let mut c = lambda_runtime::Context::default();
    c.request_id = "test-request".into();
    c.deadline = sessionwarden_core::deadline::EpochDeadline::in_from_now(remaining).deadline_ms;
    c
}

impl TestEnv {
    /// Stream worker configuration parsed from this test's environment plus `extra`.
    pub fn stream_config(&self, extra: &[(&str, &str)]) -> StreamConfig {
        parse_config(self.vars_with(extra), "stream", |e| {
            StreamConfig::from_source(e)
        })
    }

    /// Cascade worker configuration parsed from this test's environment plus `extra`.
    pub fn cascade_config(&self, extra: &[(&str, &str)]) -> CascadeConfig {
        parse_config(self.vars_with(extra), "cascade", |e| {
            CascadeConfig::from_source(e)
        })
    }

    /// A fresh environment and a reader of its sessions table's stream, from the start.
    pub async fn with_tail(name: &str) -> (Self, Tail) {
        let env = Self::new(name).await;
        let tail = env.stream_tail().await;
        (env, tail)
    }

    /// A reader of the sessions table's stream, from its start.
    pub async fn stream_tail(&self) -> Tail {
        let arn = self
            .resources
            .sessions_stream_arn
            .clone()
            .expect("sessions table has a stream");
        Tail::from_start(
            sessionwarden_local::streams_client(&sdk_config().await, None),
            arn,
        )
        .await
        .expect("stream tail")
    }
}

/// Starts a worker binary with exactly `env` (nothing inherited) and returns whether it exited
/// successfully, and its stderr. For startup checks: a bad configuration must stop the binary
/// before it touches the Lambda runtime or AWS.
pub fn run_binary(path: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(path);
    cmd.env_clear().env("RUST_BACKTRACE", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the worker binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts a worker binary with exactly `env` and asserts that it refuses to start, saying
/// `expected` on stderr.
pub fn assert_startup_fails(path: &str, env: &[(&str, &str)], expected: &str) {
    let (ok, stderr) = run_binary(path, env);
    assert!(!ok, "the binary started: {stderr}");
    assert!(stderr.contains(expected), "{stderr}");
}

/// Asserts that a finished command succeeded, showing its stderr otherwise.
pub fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
