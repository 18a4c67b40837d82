//! Bounded time on the emulator: when every ending write is slow, cleanup stops before its
//! deadline (each call's budget is the time left minus the margin), defers the rest, and the next
//! run ends it: nothing is skipped, nothing is counted twice. And when every call of the SDK
//! clients, to DynamoDB and to moto alike, is 2 s slower (`tests/faults/proxy.py`, "slow" at rate
//! 1), cleanup and the cascade return before every deadline and finish over later invocations.

use std::time::{Duration, Instant};

use lambda_runtime::LambdaEvent;
use sessionwarden_aws::cloudwatch::CloudWatchMetrics;
use sessionwarden_cascade::CascadeWorker;
use sessionwarden_cleanup::CleanupWorker;
use sessionwarden_core::cascade_message::{request, Target};
use sessionwarden_core::cleanup::run_cleanup;
use sessionwarden_core::config::CleanupStrategy;
use sessionwarden_core::deadline::EpochDeadline;
use sessionwarden_core::error::PortError;
use sessionwarden_core::session::{SessionId, Status};
use sessionwarden_tests::faults::slow_clients;
use sessionwarden_tests::{
    context_with, scheduled_event_fixture, BeforeEnd, HookedSessions, SessionFactory, TestEnv,
};

const H: i64 = 3600;

/// Every ending write takes 2 s more.
struct Slow;

impl BeforeEnd for Slow {
    async fn before_end(&self, _: &SessionId) -> Result<(), PortError> {
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(())
    }
}

#[tokio::test]
async fn slow_writes_stop_cleanup_before_its_deadline_and_the_next_run_finishes() {
    let env = TestEnv::new("bounded-cleanup").await;
    let f = SessionFactory::new();
    let due: Vec<_> = (0..12)
        .map(|i| f.active(&format!("due{i}"), "u-1", 9 * H, 8 * H + 60))
        .collect();
    env.seed(&due).await;
    let config = env.cleanup_config(
        CleanupStrategy::Index,
        &[
            ("CLEANUP_DEADLINE_MARGIN_MS", "1000"),
            ("CLEANUP_WRITE_CONCURRENCY", "4"),
        ],
    );
    let slow = HookedSessions {
        inner: env.sessions().adapter(),
        hook: Slow,
    };
    let metrics = CloudWatchMetrics::new(env.clients.cloudwatch.clone());
    let budget = Duration::from_secs(5);
    let started = Instant::now();
    let first = run_cleanup(
        &slow,
        &metrics,
        &config,
        chrono::Utc::now(),
        &EpochDeadline::in_from_now(budget),
    )
    .await
    .expect("a cut-off run is not a failure");
    let took = started.elapsed();
    assert!(took < budget, "the run overran its deadline: {took:?}");
    assert!(first.stopped_at_deadline, "{first:#?}");
    assert!(!first.finished, "{first:#?}");
    assert_eq!(first.write_errors, 0, "{first:#?}");
    assert!(first.expired_total() < 12, "{first:#?}");

    // The next run, at normal speed, ends the rest.
    let second = env
        .invoke_cleanup(
            env.cleanup_config(CleanupStrategy::Index, &[]),
            Duration::from_secs(60),
        )
        .await;
    assert!(second.finished, "{second:#?}");
    // Writes cut off by the first run's budget may have landed anyway: those count as already
    // ended, never twice as expired.
    assert_eq!(
        first.expired_total() + second.expired_total() + second.skipped_already_ended,
        12,
        "{first:#?} {second:#?}"
    );
    for s in &due {
        assert!(env.status_of(s).await.is_ended());
    }
    env.teardown().await;
}

/// The function timeout the slow tests give each invocation.
const INVOCATION: Duration = Duration::from_secs(12);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_call_2_s_slower_cleanup_returns_before_each_deadline_and_ends_everything() {
    let env = TestEnv::new("slow-all-cleanup").await;
    let f = SessionFactory::new();
    let due: Vec<_> = (0..20)
        .map(|i| f.active(&format!("due{i}"), "u-1", 9 * H, 8 * H + 60))
        .collect();
    let live: Vec<_> = (0..3)
        .map(|i| f.active(&format!("live{i}"), "u-2", H, 60))
        .collect();
    env.seed(&due).await;
    env.seed(&live).await;
    let (clients, _proxies) = slow_clients(Duration::from_secs(2), "slow-all-cleanup")
        .await
        .expect("slow proxies");
    let worker = CleanupWorker::from_clients(
        &clients,
        env.cleanup_config(
            CleanupStrategy::Index,
            &[
                ("CLEANUP_DEADLINE_MARGIN_MS", "4000"),
                ("CLEANUP_WRITE_CONCURRENCY", "4"),
                ("FUNCTION_TIMEOUT_SECONDS", "12"),
            ],
        ),
    );
    let (mut runs, mut expired, mut already) = (0, 0, 0);
    loop {
        runs += 1;
        assert!(runs <= 10, "cleanup did not finish in 10 runs");
        let event = serde_json::from_value(scheduled_event_fixture()).unwrap();
        let started = Instant::now();
        let result = worker
            .handle(LambdaEvent::new(event, context_with(INVOCATION)))
            .await;
        let took = started.elapsed();
        assert!(
            took < INVOCATION,
            "run {runs} overran its deadline: {took:?}"
        );
        // A failed run is the next schedule's to redo.
        if let Ok(report) = result {
            expired += report.expired_total();
            already += report.skipped_already_ended;
            if report.finished {
                break;
            }
        }
    }
    assert!(runs > 1, "at 2 s a call, one run cannot end 20 sessions");
    for s in &due {
        assert_eq!(env.status_of(s).await, Status::Expired);
    }
    for s in &live {
        assert_eq!(env.status_of(s).await, Status::Active);
    }
    // A started end may use the margin, so none is abandoned: each is counted, once.
    assert_eq!(expired, 20, "expired {expired}, already ended {already}");
    env.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_call_2_s_slower_the_cascade_hands_over_before_each_deadline_and_completes() {
    let env = TestEnv::new("slow-all-cascade").await;
    let f = SessionFactory::new();
    let victims = f.of_user(20, "c", "u-slow", H, 60);
    let bystanders = f.of_user(3, "b", "u-other", H, 60);
    env.seed(&victims).await;
    env.seed(&bystanders).await;
    let root = format!("slow-{}", env.prefix);
    let body = serde_json::to_string(&request(
        &Target::User("u-slow".into()),
        "password reset",
        "auth-service",
        Some(root.clone()),
    ))
    .unwrap();
    env.send_cascade(&[body]).await;
    let (clients, _proxies) = slow_clients(Duration::from_secs(2), "slow-all-cascade")
        .await
        .expect("slow proxies");
    let worker = CascadeWorker::from_clients(
        &clients,
        env.cascade_config(&[
            ("CASCADE_PAGE_SIZE", "10"),
            ("CASCADE_DEADLINE_MARGIN_MS", "5000"),
            ("FUNCTION_TIMEOUT_SECONDS", "12"),
        ]),
    );
    let (deliveries, _) = env
        .deliver_cascades(20, async |event| {
            let started = Instant::now();
            let response = worker
                .handle(LambdaEvent::new(event, context_with(INVOCATION)))
                .await
                .unwrap();
            let took = started.elapsed();
            assert!(
                took < INVOCATION,
                "a delivery overran its deadline: {took:?}"
            );
            response
        })
        .await;
    assert!(
        deliveries > 1,
        "at 2 s a call, one invocation cannot end 20 sessions"
    );
    for s in &victims {
        assert_eq!(env.status_of(s).await, Status::Terminated);
    }
    for s in &bystanders {
        assert_eq!(env.status_of(s).await, Status::Active);
    }
    let job = env.cascade_job(&root).await;
    assert_eq!(
        job.get("status").map(String::as_str),
        Some("COMPLETED"),
        "{job:?}"
    );
    assert_eq!(job.get("ended").map(String::as_str), Some("20"), "{job:?}");
    env.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_call_2_s_slower_the_stream_returns_its_failure_point_before_the_deadline() {
    let (env, mut tail) = TestEnv::with_tail("slow-all-stream").await;
    let inbox = env.subscribe_alerts().await;
    let f = SessionFactory::new();
    let bleeds: Vec<_> = (0..3)
        .map(|i| f.active(&format!("bleed{i}"), &format!("u-{i}"), H, 60))
        .collect();
    env.seed(&bleeds).await;
    tail.next_records().await.unwrap();
    for (i, b) in bleeds.iter().enumerate() {
        env.app_update(
            &b.session_id,
            &[("userId", sessionwarden_tests::s(&format!("u-intruder{i}")))],
        )
        .await;
    }
    let mut batch = tail.next_records().await.unwrap();
    assert_eq!(batch.len(), 3);
    let (clients, _proxies) = slow_clients(Duration::from_secs(2), "slow-all-stream")
        .await
        .expect("slow proxies");
    let worker = sessionwarden_stream::StreamWorker::from_clients(&clients, env.stream_config(&[]));

    // 3 s for a batch whose every call takes 2 s: the worker returns in time, with a failure
    // point, instead of being cut off by Lambda (which would retry the whole batch, unreported).
    let budget = Duration::from_secs(3);
    let started = Instant::now();
    let (response, _) = worker
        .run_within(&batch, &EpochDeadline::in_from_now(budget))
        .await;
    let took = started.elapsed();
    assert!(took < budget, "the batch overran its deadline: {took:?}");
    let failed = response
        .batch_item_failures
        .first()
        .and_then(|f| f.item_identifier.clone())
        .expect("a failure point");

    // Lambda redelivers from the failure point; with time enough, everything completes.
    let from = batch
        .iter()
        .position(|r| r["dynamodb"]["SequenceNumber"].as_str() == Some(&failed))
        .expect("the failure point is in the batch");
    batch = batch.split_off(from);
    let (response, _) = worker
        .run_within(&batch, &EpochDeadline::in_from_now(Duration::from_secs(60)))
        .await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    for b in &bleeds {
        assert_eq!(env.status_of(b).await, Status::Terminated);
    }
    let alerts = env.alerts(&inbox).await;
    let ids: std::collections::BTreeSet<_> = alerts
        .iter()
        .map(|a| a.attributes["alertId"].clone())
        .collect();
    assert_eq!((alerts.len(), ids.len()), (3, 3), "one alert per bleed");
    env.teardown().await;
}
