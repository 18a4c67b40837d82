//! The fault-injection suite (`just faults`, and a short seeded run in `just test`): the three
//! workers behind a fault-injecting proxy, against a fault-free control run of the same
//! scenarios.
//!
//! For one seed it starts two pairs of `tests/faults/proxy.py` (one in front of DynamoDB Local,
//! one in front of moto): a control pair at rate 0 and a faulty pair at the fault rate. The
//! workers' SDK clients (the Lambda client settings: standard retries, 3 attempts) reach the
//! emulators only through a pair; seeding and every read-back go straight to the emulators. Each
//! scenario runs with Lambda's retry semantics:
//!
//! - **stream**: bleeds (user change), fixations, zombies (`incidents` of each), benign touches and
//!   2 malformed records; a batch is redelivered from its `batchItemFailures` point until it
//!   reports none (at most 20 attempts). Counted: alerts (by `alertId`, from an inbox queue
//!   subscribed to the topic: FIFO, as `AlertsTopicFifo` makes it, unless asked otherwise),
//!   AnomaliesDetected and the record counts (from the worker's EMF lines, as the template's
//!   `METRICS_SINK=emf` writes them), dead letters (by `letterId`), terminations.
//! - **cleanup**: due and live sessions; invoked until a run reports `finished` (a failed or
//!   unfinished run is the next schedule). Counted: expired (summed), terminations.
//! - **cascade**: a USER cascade, one page per message; a failed message is received again.
//!   Counted: the job record's `ended`, terminations.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use lambda_runtime::LambdaEvent;
use sessionwarden_aws::emf::{EmfMetrics, Metrics};
use sessionwarden_aws::AwsClients;
use sessionwarden_cascade::CascadeWorker;
use sessionwarden_cleanup::CleanupWorker;
use sessionwarden_core::cascade_message::{request, Target};
use sessionwarden_core::config::CleanupStrategy;
use sessionwarden_core::deadline::EpochDeadline;
use sessionwarden_core::session::{Session, Status, TerminationReason};
use sessionwarden_local::streams::lambda_event;
use sessionwarden_stream::StreamWorker;

use crate::{
    context_with, endpoints, n, s, scheduled_event_fixture, sdk_config_for, Endpoints,
    SessionFactory, TestEnv,
};

const H: i64 = 3600;

/// Every fault kind of `tests/faults/proxy.py`.
const ALL_KINDS: &str = "throttle,500,503,lost-reset,lost-500,slow";

/// Clients whose every call, to DynamoDB and to moto alike, is `delay` slower (two proxies at
/// rate 1 drawing only the "slow" fault), and the proxies, to keep alive while they are used.
pub async fn slow_clients(delay: Duration, name: &str) -> anyhow::Result<(AwsClients, [Proxy; 2])> {
    let dir = repo().join(".venv/emulators/faults");
    std::fs::create_dir_all(&dir)?;
    let direct = endpoints();
    let ms = delay.as_millis() as u64;
    let ddb = start_proxy(
        &direct.dynamodb,
        1,
        1.0,
        ms,
        "slow",
        &dir.join(format!("{name}-ddb.jsonl")),
    )?;
    let aws = start_proxy(
        &direct.aws,
        2,
        1.0,
        ms,
        "slow",
        &dir.join(format!("{name}-aws.jsonl")),
    )?;
    let proxied = Endpoints {
        aws: aws.url.clone(),
        dynamodb: ddb.url.clone(),
        streams: direct.streams.clone(),
    };
    let clients = AwsClients::new(&sdk_config_for(proxied).await);
    Ok((clients, [ddb, aws]))
}

/// One seed's run: the fault settings and the scenarios' sizes.
#[derive(Debug, Clone)]
pub struct FaultRun {
    /// Seed of the faulty proxies.
    pub seed: u64,
    /// Fault rate of the faulty run.
    pub rate: f64,
    /// Delay of a "slow" fault, in milliseconds.
    pub slow_ms: u64,
    /// Incidents of each kind (bleed, fixation, zombie) in the stream scenario.
    pub incidents: usize,
    /// Whether the stream scenario's alerts topic is FIFO (drops a message published twice by
    /// its alert ID) or standard (at-least-once).
    pub fifo: bool,
    /// Live and due sessions of the cleanup scenario.
    pub cleanup: (usize, usize),
    /// Sessions of the cascade scenario's user.
    pub cascade: usize,
    /// SDK attempts per call of the workers' clients (the Lambda settings: 3). Fewer attempts
    /// let more faults through to Lambda's own retries (redelivery, the next schedule).
    pub attempts: u32,
}

impl Default for FaultRun {
    /// The `just faults` sizes.
    fn default() -> Self {
        FaultRun {
            seed: 1,
            rate: 0.2,
            slow_ms: 300,
            incidents: 3,
            fifo: true,
            cleanup: (30, 70),
            cascade: 260,
            attempts: 3,
        }
    }
}

/// What one seed measured: the markdown table, and every difference from the control run or
/// violated expectation (empty when the faulty run matches).
#[derive(Debug)]
pub struct SeedReport {
    /// The table, as `just faults` prints it.
    pub table: String,
    /// Differences and violations, one line each.
    pub problems: Vec<String>,
}

/// One proxy process; killed on drop.
pub struct Proxy {
    child: Child,
    /// `http://127.0.0.1:PORT` of the proxy.
    pub url: String,
    log: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo() -> PathBuf {
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    tests.parent().map(Path::to_path_buf).unwrap_or(tests)
}

fn python() -> PathBuf {
    let venv = repo().join(".venv/bin/python3");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Starts `tests/faults/proxy.py` in front of `upstream`, logging its faults to `log`.
pub fn start_proxy(
    upstream: &str,
    seed: u64,
    rate: f64,
    slow_ms: u64,
    kinds: &str,
    log: &Path,
) -> anyhow::Result<Proxy> {
    let _ = std::fs::remove_file(log);
    let mut child = Command::new(python())
        .arg(repo().join("tests/faults/proxy.py"))
        .args(["--upstream", upstream, "--port", "0"])
        .args(["--seed", &seed.to_string(), "--rate", &rate.to_string()])
        .args(["--slow-ms", &slow_ms.to_string(), "--kinds", kinds])
        .arg("--log")
        .arg(log)
        .args(std::env::var_os("FAULTS_DEBUG").map(|_| "--verbose"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting tests/faults/proxy.py")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line)?;
    let port: u16 = line
        .trim()
        .strip_prefix("listening ")
        .with_context(|| format!("proxy said {line:?}"))?
        .parse()?;
    Ok(Proxy {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log: log.to_path_buf(),
    })
}

/// A pair of proxies (DynamoDB, moto) and the workers' clients that go through them.
struct Lane {
    name: &'static str,
    /// The run's settings and sizes.
    run: FaultRun,
    ddb: Proxy,
    aws: Proxy,
    clients: AwsClients,
}

impl Lane {
    async fn start(
        name: &'static str,
        run: &FaultRun,
        rate: f64,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let (seed, slow_ms) = (run.seed, run.slow_ms);
        let direct = endpoints();
        let ddb = start_proxy(
            &direct.dynamodb,
            seed,
            rate,
            slow_ms,
            ALL_KINDS,
            &dir.join(format!("{name}-dynamodb.jsonl")),
        )?;
        // In moto mode DynamoDB and the rest share one emulator: one proxy is enough, but two
        // (each with its own seed stream) keep the two lanes' shapes alike.
        let aws = start_proxy(
            &direct.aws,
            seed.wrapping_add(1_000_003),
            rate,
            slow_ms,
            ALL_KINDS,
            &dir.join(format!("{name}-aws.jsonl")),
        )?;
        let proxied = Endpoints {
            aws: aws.url.clone(),
            dynamodb: ddb.url.clone(),
            streams: direct.streams.clone(),
        };
        // The Lambda client settings, as the deployed workers have them (attempts aside).
        let mut settings = sessionwarden_aws::ClientSettings::lambda();
        settings.retry = settings.retry.with_max_attempts(run.attempts);
        let clients = AwsClients::build(&sdk_config_for(proxied).await, None, &settings);
        Ok(Lane {
            name,
            run: run.clone(),
            ddb,
            aws,
            clients,
        })
    }

    /// Faults logged so far, by kind, and the `(service.operation, fault)` of each.
    fn faults(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for p in [&self.ddb, &self.aws] {
            let Ok(text) = std::fs::read_to_string(&p.log) else {
                continue;
            };
            for line in text.lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                out.push((
                    format!(
                        "{}.{}",
                        v["service"].as_str().unwrap_or("?"),
                        v["operation"].as_str().unwrap_or("?")
                    ),
                    v["fault"].as_str().unwrap_or("?").to_string(),
                ));
            }
        }
        out
    }
}

/// What one scenario run measured: named values compared against the control run, plus checks
/// that must hold in every run (expected values), and notes.
#[derive(Default, Debug)]
struct Outcome {
    /// `(name, value)`: compared with the control run.
    counts: Vec<(String, String)>,
    /// Violations of the scenario's own expectations (must be empty).
    wrong: Vec<String>,
    /// Not compared (attempts, invocations, fault counts).
    info: Vec<(String, String)>,
}

impl Outcome {
    fn count(&mut self, name: &str, v: impl ToString) {
        self.counts.push((name.to_string(), v.to_string()));
    }
    fn info(&mut self, name: &str, v: impl ToString) {
        self.info.push((name.to_string(), v.to_string()));
    }
    fn expect(&mut self, ok: bool, what: String) {
        if !ok {
            self.wrong.push(what);
        }
    }
}

/// Stream records in the shape Lambda delivers them.
fn lambda_records(records: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    lambda_event(records)["Records"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn seq_of(r: &serde_json::Value) -> String {
    r["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Handles `records` with Lambda's retry semantics: redelivered from the reported failure point
/// until no failure is reported, at most 20 attempts. Returns the attempts made.
async fn deliver_stream(
    worker: &StreamWorker,
    records: Vec<serde_json::Value>,
) -> anyhow::Result<usize> {
    let mut batch = records;
    for attempt in 1..=20 {
        let (response, report) = worker.run(&batch).await;
        if std::env::var_os("FAULTS_DEBUG").is_some() {
            eprintln!("stream attempt {attempt}: {response:?} {report:?}");
        }
        let Some(failed) = response
            .batch_item_failures
            .first()
            .and_then(|f| f.item_identifier.clone())
        else {
            return Ok(attempt);
        };
        let from = batch
            .iter()
            .position(|r| seq_of(r) == failed)
            .with_context(|| format!("batchItemFailures names {failed}, not in the batch"))?;
        batch = batch.split_off(from);
    }
    bail!("the batch still fails after 20 attempts")
}

/// The EMF lines a worker wrote (`METRICS_SINK=emf`, captured instead of standard output).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The sum of metric `name` over every EMF document written.
    fn sum(&self, name: &str) -> f64 {
        let text =
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|d| d.get(name).and_then(|v| v.as_f64()))
            .sum()
    }
}

async fn stream_scenario(lane: &Lane) -> anyhow::Result<Outcome> {
    let mut o = Outcome::default();
    let env = TestEnv::new("faults-stream").await;
    let (topic, inbox) = if lane.run.fifo {
        env.fifo_alerts().await
    } else {
        (
            env.resources.alerts_topic_arn.clone(),
            env.subscribe_alerts().await,
        )
    };
    let (events_topic, events_inbox) = if lane.run.fifo {
        env.fifo_topic("session-events").await
    } else {
        (
            env.resources.events_topic_arn.clone(),
            env.subscribe_events().await,
        )
    };
    let mut tail = env.stream_tail().await;
    let f = SessionFactory::new();
    let k = lane.run.incidents;
    let bleeds: Vec<Session> = (0..k)
        .map(|i| f.active(&format!("bleed{i}"), &format!("u-{i}"), H, 60))
        .collect();
    let fixations: Vec<Session> = (0..k)
        .map(|i| f.anonymous(&format!("anon{i}"), H, 60))
        .collect();
    let zombies: Vec<Session> = (0..k)
        .map(|i| {
            let mut z = f.active(&format!("zombie{i}"), &format!("u-z{i}"), 2 * H, H);
            z.status = Status::Terminated;
            z.termination_reason = Some(TerminationReason::Logout);
            z.terminated_at = Some(f.now - H);
            z
        })
        .collect();
    let benign: Vec<Session> = (0..5)
        .map(|i| f.active(&format!("benign{i}"), &format!("u-b{i}"), H, 120))
        .collect();
    let all: Vec<Session> = [&bleeds, &fixations, &zombies, &benign]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    env.seed(&all).await;
    // Metrics as EMF lines (the template's `METRICS_SINK=emf`), captured: written once per
    // flush, so the counts read back are the worker's own. PutMetricData has no idempotency
    // token: a flush whose response was lost would be counted twice by the SDK's retry.
    let cfg = env.stream_config(&[
        ("ALERTS_TOPIC_ARN", &topic),
        ("SESSION_EVENTS_TOPIC_ARN", &events_topic),
    ]);
    let mut ports = sessionwarden_aws::ports::stream(&lane.clients, &cfg);
    let emf = Captured::default();
    ports.metrics = Metrics::Emf(EmfMetrics::to(emf.clone()));
    let worker = StreamWorker::new(ports, cfg);

    // Batch 1: the inserts.
    let inserts = lambda_records(tail.next_records().await?);
    let mut attempts = deliver_stream(&worker, inserts).await?;

    // Batch 2: the app's writes, and 2 malformed records.
    for (i, b) in bleeds.iter().enumerate() {
        env.app_update(&b.session_id, &[("userId", s(&format!("u-intruder{i}")))])
            .await;
    }
    for (i, x) in fixations.iter().enumerate() {
        env.app_update(&x.session_id, &[("userId", s(&format!("u-login{i}")))])
            .await;
    }
    for z in &zombies {
        env.app_update(&z.session_id, &[("lastActivityAt", n(f.now))])
            .await;
    }
    for (i, b) in benign.iter().enumerate() {
        for t in [f.now - 5, f.now, f.now - 2] {
            let t = t - i as i64;
            env.app_update(
                &b.session_id,
                &[("lastActivityAt", n(t)), ("sweepAt", n(t + 8 * H))],
            )
            .await;
        }
    }
    let mut records = lambda_records(tail.next_records().await?);
    let template = records.first().cloned().context("no MODIFY records")?;
    // Two malformed records in the middle of the batch (so a redelivery can cover them).
    let mut bad1 = template.clone();
    bad1["dynamodb"]["Keys"] = serde_json::json!({});
    bad1["dynamodb"]["SequenceNumber"] = "malformed-1".into();
    let mut bad2 = template;
    bad2["dynamodb"]["NewImage"]["status"] = serde_json::json!({"S": "ZOMBIE"});
    bad2["dynamodb"]["SequenceNumber"] = "malformed-2".into();
    let mid = records.len() / 2;
    records.insert(mid, bad2);
    records.insert(mid, bad1);
    attempts += deliver_stream(&worker, records).await?;

    // Batch 3: the containment ends of the bleeds, a logout and an app delete: each end is one
    // session-ended event.
    env.app_update(
        &benign[0].session_id,
        &[
            ("status", s("TERMINATED")),
            ("terminationReason", s("logout")),
        ],
    )
    .await;
    env.app_delete(&benign[1].session_id).await;
    let ends = lambda_records(tail.next_records().await?);
    attempts += deliver_stream(&worker, ends).await?;
    o.info("stream attempts", attempts);

    count_events(
        env.alerts(&events_inbox).await,
        &mut o,
        "stream",
        vec![
            format!("containment {k}"),
            "delete 1".to_string(),
            "logout 1".to_string(),
        ],
    );

    // Alerts, as a subscriber sees them.
    let alerts = env.alerts(&inbox).await;
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    let mut kinds: BTreeMap<String, String> = BTreeMap::new();
    for a in &alerts {
        let id = a.attributes.get("alertId").cloned().unwrap_or_default();
        *ids.entry(id.clone()).or_default() += 1;
        kinds.insert(id, a.doc["type"].as_str().unwrap_or("?").to_string());
    }
    let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
    for t in kinds.values() {
        *by_type.entry(t).or_default() += 1;
    }
    let got_kinds: Vec<String> = by_type.iter().map(|(t, c)| format!("{t} {c}")).collect();
    let expected: Vec<String> = [
        "ACTIVITY_AFTER_TERMINATION",
        "SESSION_FIXATION",
        "SESSION_USER_CHANGED",
    ]
    .iter()
    .map(|t| format!("{t} {k}"))
    .collect();
    let duplicates = ids.values().filter(|&&c| c > 1).count();
    o.count(
        "stream: alerts by type (distinct IDs)",
        got_kinds.join(", "),
    );
    o.count("stream: alerts got (distinct IDs)", ids.len());
    o.count("stream: duplicate alert IDs", duplicates);
    o.info("stream: alert messages received", alerts.len());
    o.expect(
        got_kinds == expected,
        format!("stream: alerts expected {expected:?}, got {got_kinds:?}"),
    );
    o.expect(
        duplicates == 0,
        format!("stream: {duplicates} duplicate alert IDs: {ids:?}"),
    );
    o.count("stream: AnomaliesDetected", emf.sum("AnomaliesDetected"));
    // Standard SQS is at-least-once (and a SendMessageBatch whose response was lost is sent
    // again by the SDK), so a consumer drops a repeated `letterId`; the count is of letters.
    let letters = env.dead_letters().await;
    let mut letter_ids: BTreeMap<String, usize> = BTreeMap::new();
    for l in &letters {
        let id = l["letterId"].as_str().unwrap_or("?").to_string();
        *letter_ids.entry(id).or_default() += 1;
    }
    o.count("stream: dead letters (distinct letterId)", letter_ids.len());
    o.info("stream: dead-letter messages received", letters.len());
    o.expect(
        letter_ids.len() == 2,
        format!(
            "stream: dead letters expected 2, got {} ({letter_ids:?})",
            letter_ids.len()
        ),
    );
    o.count(
        "stream: StreamRecordsMalformed",
        emf.sum("StreamRecordsMalformed"),
    );
    o.count(
        "stream: StreamRecordsProcessed",
        emf.sum("StreamRecordsProcessed"),
    );
    o.count(
        "stream: SessionsTerminated (containment)",
        emf.sum("SessionsTerminated"),
    );
    o.count("stream: AlertsSuppressed", emf.sum("AlertsSuppressed"));
    // Terminations: the bleed is contained; nothing else changes status.
    let wrong = wrong_statuses(
        &env,
        &[
            (&bleeds, Status::Terminated),
            (&zombies, Status::Terminated),
            (&fixations, Status::Active),
            (&benign[2..], Status::Active),
        ],
    )
    .await;
    o.count("stream: terminations wrong/missing", wrong);
    o.expect(
        wrong == 0,
        format!("stream: {wrong} wrong or missing terminations"),
    );
    env.teardown().await;
    Ok(o)
}

/// How many of the sessions do not have the status expected of their group.
async fn wrong_statuses(env: &TestEnv, groups: &[(&[Session], Status)]) -> usize {
    let mut wrong = 0;
    for (sessions, want) in groups {
        for sess in *sessions {
            if env.status_of(sess).await != *want {
                wrong += 1;
            }
        }
    }
    wrong
}

/// Counts session-ended events as a subscriber sees them (by distinct event ID, per reason, and
/// IDs received twice) and expects `want` (`"<reason> <count>"`, sorted by reason) and no
/// duplicate.
fn count_events(
    events: Vec<crate::ReceivedAlert>,
    o: &mut Outcome,
    label: &str,
    want: Vec<String>,
) {
    let mut event_ids: BTreeMap<String, usize> = BTreeMap::new();
    let mut reasons: BTreeMap<String, String> = BTreeMap::new();
    for e in &events {
        let id = e.attributes.get("eventId").cloned().unwrap_or_default();
        *event_ids.entry(id.clone()).or_default() += 1;
        reasons.insert(id, e.doc["reason"].as_str().unwrap_or("?").to_string());
    }
    let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
    for r in reasons.values() {
        *by_reason.entry(r).or_default() += 1;
    }
    let got: Vec<String> = by_reason.iter().map(|(r, c)| format!("{r} {c}")).collect();
    let dups = event_ids.values().filter(|&&c| c > 1).count();
    o.count(
        &format!("{label}: session events by reason (distinct IDs)"),
        got.join(", "),
    );
    o.count(&format!("{label}: duplicate event IDs"), dups);
    o.info(&format!("{label}: event messages received"), events.len());
    o.expect(
        got == want,
        format!("{label}: events expected {want:?}, got {got:?}"),
    );
    o.expect(dups == 0, format!("{label}: {dups} duplicate event IDs"));
}

/// The session-ended events of a scenario's ends: the stream worker, on the lane's clients (so
/// the faults reach it too), over every record of the scenario's table, delivered with Lambda's
/// retry semantics; then counted as a subscriber sees them.
async fn end_events(
    lane: &Lane,
    env: &TestEnv,
    o: &mut Outcome,
    label: &str,
    want: Vec<String>,
) -> anyhow::Result<()> {
    let (topic, inbox) = if lane.run.fifo {
        env.fifo_topic("session-events").await
    } else {
        (
            env.resources.events_topic_arn.clone(),
            env.subscribe_events().await,
        )
    };
    let cfg = env.stream_config(&[("SESSION_EVENTS_TOPIC_ARN", &topic)]);
    let worker = StreamWorker::new(sessionwarden_aws::ports::stream(&lane.clients, &cfg), cfg);
    let mut tail = env.stream_tail().await;
    let records = lambda_records(tail.next_records().await?);
    let attempts = deliver_stream(&worker, records).await?;
    o.info(&format!("{label}: stream attempts for events"), attempts);
    count_events(env.alerts(&inbox).await, o, label, want);
    Ok(())
}

async fn cleanup_scenario(lane: &Lane) -> anyhow::Result<Outcome> {
    let mut o = Outcome::default();
    let env = TestEnv::new("faults-cleanup").await;
    let f = SessionFactory::new();
    let (live_n, due_n) = lane.run.cleanup;
    let population = f.population(live_n, due_n);
    env.seed(&population).await;
    let worker = CleanupWorker::from_clients(
        &lane.clients,
        env.cleanup_config(CleanupStrategy::Index, &[]),
    );
    let (mut expired, mut invocations, mut failed) = (0u64, 0, 0);
    let (mut write_errors, mut already_ended) = (0u64, 0u64);
    loop {
        invocations += 1;
        if invocations > 20 {
            bail!("cleanup did not finish in 20 runs");
        }
        let event = serde_json::from_value(scheduled_event_fixture())?;
        match worker
            .handle(LambdaEvent::new(
                event,
                context_with(Duration::from_secs(60)),
            ))
            .await
        {
            Ok(report) => {
                expired += report.expired_total();
                write_errors += report.write_errors;
                already_ended += report.skipped_already_ended;
                if report.finished {
                    break;
                }
            }
            // A failed invocation: the next schedule runs again.
            Err(_) => failed += 1,
        }
    }
    o.info(
        "cleanup invocations (failed)",
        format!("{invocations} ({failed})"),
    );
    o.count("cleanup: expired (sum over runs)", expired);
    o.info(
        "cleanup write errors / skipped already ended (sums)",
        format!("{write_errors} / {already_ended}"),
    );
    o.expect(
        expired == due_n as u64,
        format!("cleanup: expired expected {due_n}, got {expired}"),
    );
    let (live, due) = population.split_at(live_n);
    let wrong = wrong_statuses(&env, &[(due, Status::Expired), (live, Status::Active)]).await;
    o.count("cleanup: terminations wrong/missing", wrong);
    o.expect(
        wrong == 0,
        format!("cleanup: {wrong} wrong or missing terminations"),
    );
    end_events(lane, &env, &mut o, "cleanup", vec![format!("idle {due_n}")]).await?;
    env.teardown().await;
    Ok(o)
}

async fn cascade_scenario(lane: &Lane) -> anyhow::Result<Outcome> {
    let mut o = Outcome::default();
    let env = TestEnv::new("faults-cascade").await;
    let f = SessionFactory::new();
    let victims = f.of_user(lane.run.cascade, "c", "u-cascade", H, 60);
    let bystanders = f.of_user(5, "b", "u-other", H, 60);
    env.seed(&victims).await;
    env.seed(&bystanders).await;
    let root = format!("faults-{}", env.prefix);
    let body = serde_json::to_string(&request(
        &Target::User("u-cascade".into()),
        "logout-everywhere",
        "auth-service",
        Some(root.clone()),
    ))?;
    env.send_cascade(&[body]).await;
    let worker = CascadeWorker::from_clients(
        &lane.clients,
        env.cascade_config(&[("CASCADE_PAGES_PER_MESSAGE", "1")]),
    );
    let mut already_ended = 0u64;
    let (deliveries, redelivered) = env
        .deliver_cascades(200, async |event| {
            let deadline = EpochDeadline::in_from_now(Duration::from_secs(300));
            let (response, report) = worker.run(&event, &deadline).await;
            already_ended += report.already_ended;
            response
        })
        .await;
    o.info(
        "cascade deliveries (messages failed)",
        format!("{deliveries} ({redelivered})"),
    );
    o.info("cascade already_ended (sum of reports)", already_ended);
    let job = env.cascade_job(&root).await;
    let (ended, status) = (job["ended"].clone(), job["status"].clone());
    o.count("cascade: job ended", &ended);
    o.count("cascade: job status", &status);
    o.expect(
        ended == lane.run.cascade.to_string(),
        format!(
            "cascade: job ended expected {}, got {ended}",
            lane.run.cascade
        ),
    );
    o.expect(
        status == "COMPLETED",
        format!("cascade: job status expected COMPLETED, got {status}"),
    );
    let wrong = wrong_statuses(
        &env,
        &[
            (&victims, Status::Terminated),
            (&bystanders, Status::Active),
        ],
    )
    .await;
    o.count("cascade: terminations wrong/missing", wrong);
    o.expect(
        wrong == 0,
        format!("cascade: {wrong} wrong or missing terminations"),
    );
    let want = vec![format!("cascade:user {}", lane.run.cascade)];
    end_events(lane, &env, &mut o, "cascade", want).await?;
    env.teardown().await;
    Ok(o)
}

/// Runs every scenario on `lane`; the faults each scenario saw are added to its info.
async fn run_lane(
    lane: &Lane,
) -> anyhow::Result<Vec<(&'static str, Outcome, Vec<(String, String)>)>> {
    let mut out = Vec::new();
    type Scenario = for<'a> fn(
        &'a Lane,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = anyhow::Result<Outcome>> + 'a>,
    >;
    let scenarios: [(&str, Scenario); 3] = [
        ("stream", |l| Box::pin(stream_scenario(l))),
        ("cleanup", |l| Box::pin(cleanup_scenario(l))),
        ("cascade", |l| Box::pin(cascade_scenario(l))),
    ];
    for (name, run) in scenarios {
        let before = lane.faults().len();
        let started = Instant::now();
        let mut o = run(lane)
            .await
            .with_context(|| format!("{} run, scenario {name}", lane.name))?;
        o.info(
            &format!("{name} wall time"),
            format!("{:.1} s", started.elapsed().as_secs_f64()),
        );
        let faults = lane.faults().split_off(before);
        out.push((name, o, faults));
    }
    Ok(out)
}

fn by_kind(faults: &[(String, String)]) -> String {
    let mut m: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, k) in faults {
        *m.entry(k).or_default() += 1;
    }
    if m.is_empty() {
        return "0".into();
    }
    let total: usize = m.values().sum();
    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!("{total}: {}", parts.join(", "))
}

/// Runs the three scenarios on a control lane and on a faulty lane of `run.seed`, and compares.
/// Fault logs go to `.venv/emulators/faults/<seed>/`.
pub async fn run_seed(run: &FaultRun) -> anyhow::Result<SeedReport> {
    use std::fmt::Write;
    let dir = repo().join(format!(".venv/emulators/faults/{}", run.seed));
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();
    let control = Lane::start("control", run, 0.0, &dir).await?;
    let faulty = Lane::start("faulty", run, run.rate, &dir).await?;
    let control_runs = run_lane(&control).await?;
    let faulty_runs = run_lane(&faulty).await?;

    let mut t = String::new();
    let _ = writeln!(
        t,
        "\n### seed {} (rate {}, slow {} ms, {} alerts topic, {} SDK attempts)\n",
        run.seed,
        run.rate,
        run.slow_ms,
        if run.fifo { "fifo" } else { "standard" },
        run.attempts
    );
    let _ = writeln!(t, "| scenario | measure | control | faults | same |");
    let _ = writeln!(t, "|---|---|---:|---:|:---:|");
    let mut problems = Vec::new();
    for ((name, c, _), (_, f, faults)) in control_runs.iter().zip(&faulty_runs) {
        let _ = writeln!(
            t,
            "| {name} | faults injected | 0 | {} | |",
            by_kind(faults)
        );
        let control_counts: HashMap<&str, &str> = c
            .counts
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for (k, v) in &f.counts {
            let cv = control_counts.get(k.as_str()).copied().unwrap_or("-");
            let same = cv == v;
            if !same {
                problems.push(format!("{k}: control {cv}, faults {v}"));
            }
            let _ = writeln!(
                t,
                "| {name} | {k} | {cv} | {v} | {} |",
                if same { "yes" } else { "**NO**" }
            );
        }
        let control_info: HashMap<&str, &str> = c
            .info
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for (k, v) in &f.info {
            let cv = control_info.get(k.as_str()).copied().unwrap_or("-");
            let _ = writeln!(t, "| {name} | {k} | {cv} | {v} | |");
        }
        problems.extend(c.wrong.iter().map(|w| format!("control: {w}")));
        problems.extend(f.wrong.iter().map(|w| format!("faults: {w}")));
        if !f.wrong.is_empty() || !c.wrong.is_empty() {
            // Which operations were faulted, to trace the mechanism.
            let mut ops: BTreeMap<String, usize> = BTreeMap::new();
            for (op, k) in faults {
                *ops.entry(format!("{op} {k}")).or_default() += 1;
            }
            problems.push(format!("{name}: faults by operation: {ops:?}"));
        }
    }
    let _ = writeln!(
        t,
        "\nseed {}: {:.1} s, fault logs in {}",
        run.seed,
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(SeedReport { table: t, problems })
}
