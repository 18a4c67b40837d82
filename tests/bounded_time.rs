//! Bounded time on the emulator: when every ending write is slow, cleanup stops before its
//! deadline (each call's budget is the time left minus the margin), defers the rest, and the next
//! run ends it: nothing is skipped, nothing is counted twice.

use std::time::{Duration, Instant};

use sessionwarden_aws::cloudwatch::CloudWatchMetrics;
use sessionwarden_core::cleanup::run_cleanup;
use sessionwarden_core::config::CleanupStrategy;
use sessionwarden_core::deadline::EpochDeadline;
use sessionwarden_core::error::PortError;
use sessionwarden_core::session::SessionId;
use sessionwarden_tests::{BeforeEnd, HookedSessions, SessionFactory, TestEnv};

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
