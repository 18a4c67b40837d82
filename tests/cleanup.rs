//! The cleanup worker end to end on the emulator: real tables, real conditional writes, metrics
//! read back from CloudWatch, and AWS requests counted on the wire.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use sessionwarden_aws::cloudwatch::CloudWatchMetrics;
use sessionwarden_core::cleanup::{run_cleanup, CleanupReport};
use sessionwarden_core::config::CleanupStrategy;
use sessionwarden_core::deadline::{Deadline, EpochDeadline};
use sessionwarden_core::error::PortError;
use sessionwarden_core::session::{Session, SessionId, Status, TerminationReason};
use sessionwarden_tests::{
    assert_metrics, metric, BeforeEnd, HookedSessions, SessionFactory, TestEnv,
};

const H: i64 = 3600;
const M: i64 = 60;

/// Invokes the Lambda handler with `strategy`'s default configuration and five minutes left.
async fn sweep(env: &TestEnv, strategy: CleanupStrategy) -> CleanupReport {
    env.invoke_cleanup(env.cleanup_config(strategy, &[]), Duration::from_secs(300))
        .await
}

fn assert_expired(s: &Session, reason: TerminationReason, report: &CleanupReport) {
    assert_eq!(s.status, Status::Expired);
    assert_eq!(s.termination_reason, Some(reason));
    assert_eq!(s.terminated_at, Some(report.now));
    assert_eq!(
        s.expires_at,
        Some(report.now + 604_800),
        "TTL = end + 7 days audit retention"
    );
}

/// Reads each session back and asserts it expired for its reason in the run of `report`.
async fn assert_all_expired(
    env: &TestEnv,
    expected: &[(&Session, TerminationReason)],
    report: &CleanupReport,
) {
    for (s, reason) in expected {
        assert_expired(&env.session(&s.session_id).await, *reason, report);
    }
}

/// ACTIVE, and none of the attributes an ending write sets.
fn assert_untouched_active(s: &Session) {
    assert_eq!(s.status, Status::Active);
    assert_eq!(
        (s.terminated_at, s.termination_reason, s.expires_at),
        (None, None, None)
    );
}

#[tokio::test]
async fn idle_and_absolute_deadlines_expire_with_reason_time_and_ttl() {
    let env = TestEnv::new("expiry").await;
    let f = SessionFactory::new();
    let idle = f.active("idle", "u-1", 9 * H, 8 * H + M);
    let over_age = f.active("over-age", "u-2", 25 * H, M);
    let mut fixed_end = f.active("fixed-end", "u-3", 2 * H, M);
    fixed_end.absolute_expires_at = Some(f.now - 30);
    let fixed_end = f.with_sweep(fixed_end);
    let fresh = f.active("fresh", "u-4", 2 * H, M);
    env.seed(&[
        idle.clone(),
        over_age.clone(),
        fixed_end.clone(),
        fresh.clone(),
    ])
    .await;

    let report = sweep(&env, CleanupStrategy::Index).await;

    assert_eq!((report.expired.idle, report.expired.absolute), (1, 2));
    assert_eq!(
        report.examined, 3,
        "the index hands cleanup only due sessions"
    );
    assert!(report.finished && !report.stopped_at_deadline);
    assert_all_expired(
        &env,
        &[
            (&idle, TerminationReason::Idle),
            (&over_age, TerminationReason::Absolute),
            (&fixed_end, TerminationReason::Absolute),
        ],
        &report,
    )
    .await;
    assert_eq!(
        env.session(&fresh.session_id).await,
        fresh,
        "a fresh session is not written at all"
    );

    // The JSON summary the Lambda returns.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["expired"],
        serde_json::json!({"idle": 1, "absolute": 2, "ttl": 0})
    );
    assert_eq!(json["examined"], 3);
    assert_eq!(json["skippedTouched"], 0);
    assert_eq!(json["finished"], true);
    assert_eq!(json["stoppedAtDeadline"], false);

    // One PutMetricData, and the values are really in CloudWatch.
    assert_eq!(env.counter.get("PutMetricData"), 1);
    let m = env.metrics().await;
    assert_metrics(
        &m,
        &[
            ("SessionsExpired", &[("Reason", "idle")], 1.0),
            ("SessionsExpired", &[("Reason", "absolute")], 2.0),
            ("CleanupSessionsExamined", &[], 3.0),
            ("CleanupRuns", &[], 1.0),
            ("CleanupIncomplete", &[], 0.0),
        ],
    );
    assert!(metric(&m, "CleanupDurationMs", &[]).is_some());
    env.teardown().await;
}

#[tokio::test]
async fn per_session_idle_timeout_overrides_the_default() {
    let env = TestEnv::new("override").await;
    let f = SessionFactory::new();
    // Strict 15-minute timeout, idle 20 minutes: due although far under the 8 h default.
    let mut strict = f.active("strict", "u-1", H, 20 * M);
    strict.idle_timeout_seconds = Some(15 * M);
    let strict = f.with_sweep(strict);
    // Generous 12 h timeout, idle 9 h: survives although past the 8 h default.
    let mut generous = f.active("generous", "u-2", 10 * H, 9 * H);
    generous.idle_timeout_seconds = Some(12 * H);
    let generous = f.with_sweep(generous);
    // Same idleness on the default: due.
    let default = f.active("default", "u-3", 10 * H, 9 * H);
    env.seed(&[strict.clone(), generous.clone(), default.clone()])
        .await;

    let report = sweep(&env, CleanupStrategy::Index).await;

    assert_eq!((report.expired.idle, report.expired.absolute), (2, 0));
    assert_all_expired(
        &env,
        &[
            (&strict, TerminationReason::Idle),
            (&default, TerminationReason::Idle),
        ],
        &report,
    )
    .await;
    assert_eq!(env.session(&generous.session_id).await, generous);

    // The scan strategy, which cannot rely on sweepAt, reaches the same decisions.
    let env2 = TestEnv::new("override-scan").await;
    env2.seed(&[strict.clone(), generous.clone(), default.clone()])
        .await;
    let report = sweep(&env2, CleanupStrategy::Scan).await;
    assert_eq!((report.expired.idle, report.not_due), (2, 1));
    assert_eq!(env2.session(&generous.session_id).await, generous);
    env.teardown().await;
    env2.teardown().await;
}

#[tokio::test]
async fn terminated_and_expired_sessions_are_never_touched_by_either_strategy() {
    let env = TestEnv::new("ended").await;
    let f = SessionFactory::new();
    let mut ended = Vec::new();
    for (label, status, reason) in [
        ("logout", Status::Terminated, TerminationReason::Logout),
        ("admin", Status::Terminated, TerminationReason::Admin),
        ("old-expiry", Status::Expired, TerminationReason::Idle),
    ] {
        // Long past every deadline, and the app left sweepAt in place.
        let mut s = f.active(label, "u-9", 30 * H, 20 * H);
        s.status = status;
        s.termination_reason = Some(reason);
        s.terminated_at = Some(f.now - 19 * H);
        s.expires_at = Some(f.now + 5 * 86_400);
        ended.push(s);
    }
    let due = f.active("due", "u-1", 9 * H, 8 * H + M);
    let mut all = ended.clone();
    all.push(due.clone());
    env.seed(&all).await;
    let before = env.snapshot(&ended).await;

    let by_index = sweep(&env, CleanupStrategy::Index).await;
    let by_scan = sweep(&env, CleanupStrategy::Scan).await;

    assert_eq!(by_index.expired_total(), 1);
    assert_eq!(by_scan.expired_total(), 0);
    assert_eq!(
        env.counter.get("UpdateItem"),
        1,
        "only the one due ACTIVE session was written"
    );
    before
        .assert_unchanged(&env, "an ended session is byte-for-byte unchanged")
        .await;
    env.teardown().await;
}

/// The app touching one session between cleanup's read and its write.
struct TouchBeforeWrite {
    table: String,
    victim: SessionId,
    touched_at: i64,
    env_client: aws_sdk_dynamodb::Client,
}

impl BeforeEnd for TouchBeforeWrite {
    async fn before_end(&self, id: &SessionId) -> Result<(), PortError> {
        if *id == self.victim {
            // What the app does on a request: bump lastActivityAt (and sweepAt).
            self.env_client
                .update_item()
                .table_name(&self.table)
                .key("sessionId", AttributeValue::S(id.expose().into()))
                .update_expression("SET lastActivityAt = :t, sweepAt = :s")
                .expression_attribute_values(":t", AttributeValue::N(self.touched_at.to_string()))
                .expression_attribute_values(
                    ":s",
                    AttributeValue::N((self.touched_at + 8 * H).to_string()),
                )
                .send()
                .await
                .expect("app touch");
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_session_touched_between_read_and_write_survives() {
    let env = TestEnv::new("touched").await;
    let f = SessionFactory::new();
    let victim = f.active("victim", "u-1", 9 * H, 8 * H + 5 * M);
    let others = [
        f.active("a", "u-2", 9 * H, 8 * H + M),
        f.active("b", "u-3", 30 * H, M),
    ];
    env.seed(&[victim.clone(), others[0].clone(), others[1].clone()])
        .await;

    let store = HookedSessions {
        inner: env.sessions().adapter(),
        hook: TouchBeforeWrite {
            table: env.resources.sessions_table.clone(),
            victim: victim.session_id.clone(),
            touched_at: f.now,
            env_client: env.clients.dynamodb.clone(),
        },
    };
    let config = env.cleanup_config(CleanupStrategy::Index, &[]);
    let report = run_cleanup(
        &store,
        &CloudWatchMetrics::new(env.clients.cloudwatch.clone()),
        &config,
        chrono::Utc::now(),
        &EpochDeadline::in_from_now(Duration::from_secs(300)),
    )
    .await
    .expect("run");

    assert_eq!(report.skipped_touched, 1);
    assert_eq!(report.expired_total(), 2);
    let v = env.session(&victim.session_id).await;
    assert_untouched_active(&v);
    assert_eq!(v.last_activity_at, f.now, "the app's touch is kept");
    assert_eq!(env.status_of(&others[0]).await, Status::Expired);
    assert_metrics(
        &env.metrics().await,
        &[("CleanupSessionsSkipped", &[("Reason", "touched")], 1.0)],
    );
    env.teardown().await;
}

#[tokio::test]
async fn a_deadline_inside_the_safety_margin_starts_no_work() {
    let env = TestEnv::new("deadline-now").await;
    let f = SessionFactory::new();
    let due = f.active("due", "u-1", 9 * H, 8 * H + M);
    env.seed(std::slice::from_ref(&due)).await;

    // 5 s left, 10 s margin (the default).
    let report = env
        .invoke_cleanup(
            env.cleanup_config(CleanupStrategy::Index, &[]),
            Duration::from_secs(5),
        )
        .await;

    assert!(report.stopped_at_deadline && !report.finished);
    assert_eq!(
        (report.examined, report.read_requests, report.write_requests),
        (0, 0, 0)
    );
    assert_eq!(env.counter.get("Query") + env.counter.get("UpdateItem"), 0);
    assert_untouched_active(&env.session(&due.session_id).await);
    assert_metrics(&env.metrics().await, &[("CleanupIncomplete", &[], 1.0)]);
    env.teardown().await;
}

/// Plenty of time for the first `allowed` checks, none after.
struct RunsOutAfter {
    allowed: u32,
    calls: AtomicU32,
}

impl Deadline for RunsOutAfter {
    fn remaining(&self) -> Duration {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.allowed {
            Duration::from_secs(3600)
        } else {
            Duration::ZERO
        }
    }
}

#[tokio::test]
async fn the_deadline_stops_between_whole_writes_and_the_next_run_finishes() {
    let env = TestEnv::new("deadline-mid").await;
    let f = SessionFactory::new();
    let due: Vec<Session> = (0..10)
        .map(|i| f.active(&format!("due{i}"), "u-1", 9 * H, 8 * H + M + i))
        .collect();
    env.seed(&due).await;
    let config = env.cleanup_config(
        CleanupStrategy::Index,
        &[("CLEANUP_WRITE_CONCURRENCY", "1")],
    );
    let metrics = CloudWatchMetrics::new(env.clients.cloudwatch.clone());

    // Two checks for the page (before it, and its read's budget), then two per write (before
    // it, and its budget): 3 writes fit.
    let deadline = RunsOutAfter {
        allowed: 8,
        calls: AtomicU32::new(0),
    };
    let first = run_cleanup(
        &env.sessions().adapter(),
        &metrics,
        &config,
        chrono::Utc::now(),
        &deadline,
    )
    .await
    .expect("run");

    assert_eq!(first.expired_total(), 3);
    assert_eq!(first.deferred_by_deadline, 7);
    assert!(first.stopped_at_deadline && !first.finished);
    let mut ended = 0;
    for s in &due {
        let s = env.session(&s.session_id).await;
        match s.status {
            Status::Expired => {
                ended += 1;
                assert!(
                    s.terminated_at.is_some()
                        && s.termination_reason.is_some()
                        && s.expires_at.is_some()
                );
            }
            _ => assert_untouched_active(&s),
        }
    }
    assert_eq!(
        ended, 3,
        "every session is either fully ended or not written at all"
    );

    let second = env.invoke_cleanup(config, Duration::from_secs(300)).await;
    assert_eq!(second.expired_total(), 7);
    assert!(second.finished);
    for s in &due {
        assert_eq!(env.status_of(s).await, Status::Expired);
    }
    env.teardown().await;
}

/// Small pages, so that a read cost growing with the table would show in request counts even at
/// the small table sizes the suite uses (`just bench` measures 10k and 100k).
const COST_PAGE_SIZE: &str = "50";

/// Runs the index strategy over `live + 100 due` and returns (report, Query requests, UpdateItem requests, Scan requests).
async fn index_cost(live: usize) -> (CleanupReport, u64, u64, u64) {
    let env = TestEnv::new(&format!("cost{live}")).await;
    let f = SessionFactory::new();
    env.seed(&f.population(live, 100)).await;
    let report = env
        .invoke_cleanup(
            env.cleanup_config(
                CleanupStrategy::Index,
                &[("CLEANUP_PAGE_SIZE", COST_PAGE_SIZE)],
            ),
            Duration::from_secs(300),
        )
        .await;
    let counts = (
        env.counter.get("Query"),
        env.counter.get("UpdateItem"),
        env.counter.get("Scan"),
    );
    eprintln!(
        "index strategy, {live} live + 100 due: itemsRead={} Query={} UpdateItem={} Scan={}",
        report.items_read, counts.0, counts.1, counts.2
    );
    env.teardown().await;
    (report, counts.0, counts.1, counts.2)
}

#[tokio::test]
async fn index_strategy_cost_follows_expired_sessions_not_table_size() {
    // Tables of 200 and 1,000 sessions: at 50 items a page, reading the table would take 4 and
    // 20 pages; the index reads the same 100 due sessions at both sizes.
    let (small, small_reads, small_writes, small_scans) = index_cost(100).await;
    let (large, large_reads, large_writes, large_scans) = index_cost(900).await;

    for (r, writes, scans) in [
        (&small, small_writes, small_scans),
        (&large, large_writes, large_scans),
    ] {
        assert_eq!(r.expired_total(), 100);
        assert!(r.items_read <= 110, "index read {} items", r.items_read);
        assert_eq!(
            writes, 100,
            "exactly one conditional write per expired session"
        );
        assert_eq!(scans, 0);
    }
    assert_eq!(
        small_reads, large_reads,
        "read requests do not grow with the table"
    );
    assert_eq!(small_reads, small.read_requests);
}

#[tokio::test]
async fn scan_strategy_reads_the_whole_table_in_parallel_segments() {
    let env = TestEnv::new("scan-cost").await;
    let f = SessionFactory::new();
    env.seed(&f.population(900, 100)).await;

    // A tenth of `just bench`'s 10k table, at a tenth of the default page size.
    let report = env
        .invoke_cleanup(
            env.cleanup_config(CleanupStrategy::Scan, &[("CLEANUP_PAGE_SIZE", "100")]),
            Duration::from_secs(300),
        )
        .await;

    assert_eq!(report.expired_total(), 100);
    assert_eq!(
        report.items_read, 1_000,
        "a scan reads every item: cost follows table size"
    );
    assert_eq!(env.counter.get("UpdateItem"), 100);
    assert_eq!(env.counter.get("Query"), 0);
    let scans = env.counter.get("Scan");
    assert_eq!(scans, report.read_requests);
    // 4 segments of ~250 items at 100 per page: 3 or 4 pages each.
    assert!((12..=16).contains(&scans), "{scans} Scan requests");
    assert_eq!(report.not_due, 900);
    eprintln!(
        "scan strategy, 900 live + 100 due: itemsRead={} Scan={scans} UpdateItem=100",
        report.items_read
    );
    env.teardown().await;
}
