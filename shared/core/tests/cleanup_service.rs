//! Failure paths of the cleanup orchestration, with in-memory ports. The AWS adapter itself is
//! tested against the emulator in the workspace's `tests/cleanup.rs`.

use chrono::{DateTime, Utc};
use sessionwarden_core::cleanup::run_cleanup;
use sessionwarden_core::config::CleanupConfig;
use sessionwarden_core::deadline::EpochDeadline;
use sessionwarden_core::error::error_chain;
use sessionwarden_core::fake::{vars, Mem};
use sessionwarden_core::session::Status;

const NOW: i64 = 1_800_000_000;

fn config() -> CleanupConfig {
    CleanupConfig::from_source(&vars(&[])).unwrap()
}
fn plenty() -> EpochDeadline {
    EpochDeadline::in_from_now(std::time::Duration::from_secs(600))
}
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW, 0).unwrap()
}

#[tokio::test]
async fn a_failed_write_is_counted_and_the_others_still_happen() {
    let store = Mem::with(&["a", "b", "c"], NOW - 9 * 3600);
    store.state().failing_ends = vec!["b".into()];
    let r = run_cleanup(&store, &store, &config(), now(), &plenty())
        .await
        .unwrap();
    // The failing write is sent 5 times: a transient failure may hide a write that landed, and
    // the same conditional write again would recognise it as ours.
    assert_eq!(
        (r.expired.idle, r.write_errors, r.write_requests),
        (2, 1, 7)
    );
    assert!(!r.finished);
    let st = store.state();
    assert_eq!(st.metrics.len(), 1, "one flush per invocation");
    assert_eq!(st.metrics[0].get("CleanupWriteErrors", &[]), Some(1.0));
    assert_eq!(st.metrics[0].get("CleanupIncomplete", &[]), Some(1.0));
    assert_eq!(st.sessions["b"].0, Status::Active);
}

#[tokio::test]
async fn a_failed_read_is_a_transient_error_and_metrics_still_flush() {
    let store = Mem::with(&["a"], NOW - 9 * 3600);
    store.state().fail_reads = true;
    let e = run_cleanup(&store, &store, &config(), now(), &plenty())
        .await
        .unwrap_err();
    assert!(e.is_transient());
    assert!(error_chain(&e).contains("throttled"), "{}", error_chain(&e));
    let st = store.state();
    assert_eq!(st.metrics[0].get("CleanupRuns", &[]), Some(1.0));
    assert_eq!(st.metrics[0].get("CleanupIncomplete", &[]), Some(1.0));
}

#[tokio::test]
async fn unreadable_items_are_counted_never_written() {
    let store = Mem::with(&["a"], NOW - 9 * 3600);
    store.state().unreadable = 2;
    let r = run_cleanup(&store, &store, &config(), now(), &plenty())
        .await
        .unwrap();
    assert_eq!((r.unreadable, r.expired.idle, r.write_requests), (2, 1, 1));
    assert!(
        r.finished,
        "unreadable items are reported, not retried forever"
    );
}

/// A write whose response was lost after it landed fails transiently; cleanup sends the same
/// conditional write again in the same run, and the store recognises it as ours: counted as
/// expired, once.
#[tokio::test]
async fn a_write_that_landed_but_failed_is_recognised_by_its_retry() {
    let store = Mem::with(&["a", "b"], NOW - 9 * 3600);
    store.state().lost_ends = vec!["b".into()];
    let r = run_cleanup(&store, &store, &config(), now(), &plenty())
        .await
        .unwrap();
    assert_eq!((r.expired.idle, r.write_errors), (2, 0), "{r:#?}");
    assert!(r.finished);
    assert_eq!(store.state().sessions["b"].0, Status::Expired);
}
