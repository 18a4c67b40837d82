//! Effects and counts that survive retries, on the emulator: a conditional end whose response was
//! lost is recognised on retry as ours (from `ALL_OLD`), not as someone else's; a cascade job
//! counts each page once, however often the page is processed again.

use sessionwarden_aws::state::StateTable;
use sessionwarden_core::ports::{
    EndOutcome, Fence, JobRecord, JobStore, SessionStore, Termination,
};
use sessionwarden_core::session::{Status, TerminationReason};
use sessionwarden_tests::{SessionFactory, TestEnv};

const H: i64 = 3600;

fn termination(reason: TerminationReason, at: i64, by: Option<&str>) -> Termination {
    Termination {
        status: Status::Terminated,
        reason,
        at,
        retain_until: at + 86_400,
        by: by.map(String::from),
        fence: None,
    }
}

#[tokio::test]
async fn an_end_whose_response_was_lost_is_ours_on_retry_and_not_someone_elses() {
    let env = TestEnv::new("idem-end").await;
    let f = SessionFactory::new();
    let (a, b, c) = (
        f.active("a", "u-1", H, 60),
        f.active("b", "u-1", H, 60),
        f.active("c", "u-1", 9 * H, 8 * H + 60),
    );
    env.seed(&[a.clone(), b.clone(), c.clone()]).await;
    let store = env.sessions().adapter();

    // A cascade's end, applied; the SDK's retry of the same request (the response was lost).
    let cascade = termination(TerminationReason::CascadeUser, f.now, Some("root-1"));
    assert_eq!(
        store.end(&a.session_id, &cascade).await.unwrap(),
        EndOutcome::Ended
    );
    assert_eq!(
        store.end(&a.session_id, &cascade).await.unwrap(),
        EndOutcome::Ended
    );
    // The same cascade redelivered later (another `now`) still knows its own end.
    let later = termination(TerminationReason::CascadeUser, f.now + 60, Some("root-1"));
    assert_eq!(
        store.end(&a.session_id, &later).await.unwrap(),
        EndOutcome::Ended
    );
    // Another cascade finds it ended by someone else.
    let other = termination(TerminationReason::CascadeUser, f.now, Some("root-2"));
    assert_eq!(
        store.end(&a.session_id, &other).await.unwrap(),
        EndOutcome::AlreadyEnded
    );

    // Containment carries no marker of its attempt: a redelivered batch finds its end already
    // there, so the containment is counted once.
    let contain = termination(TerminationReason::Containment, f.now, None);
    assert_eq!(
        store.end(&b.session_id, &contain).await.unwrap(),
        EndOutcome::Ended
    );
    assert_eq!(
        store.end(&b.session_id, &contain).await.unwrap(),
        EndOutcome::AlreadyEnded
    );

    // Cleanup's fenced expiry, retried after a lost response: ours, not "touched".
    let read = env.raw_item(&c.session_id).await.expect("exists");
    let fence = Fence(read["lastActivityAt"].as_n().ok().cloned());
    let expire = Termination {
        status: Status::Expired,
        fence: Some(fence),
        ..termination(TerminationReason::Idle, f.now, None)
    };
    assert_eq!(
        store.end(&c.session_id, &expire).await.unwrap(),
        EndOutcome::Ended
    );
    assert_eq!(
        store.end(&c.session_id, &expire).await.unwrap(),
        EndOutcome::Ended
    );
    env.teardown().await;
}

#[tokio::test]
async fn a_cascade_job_counts_each_page_once() {
    let env = TestEnv::new("idem-job").await;
    let state = StateTable::new(
        env.clients.dynamodb.clone(),
        env.resources.state_table.clone(),
        env.key.clone(),
    );
    let job = JobRecord {
        root_id: "root-1".into(),
        job_key: "user#u-1".into(),
        scope: "user",
        subject: "u-1".into(),
        reason: "test".into(),
        requested_by: "test".into(),
        depth: 0,
        parent_ref: None,
    };
    let now = chrono::Utc::now().timestamp();
    assert!(state.start(&job, now, now + H).await.unwrap());
    // Page 1, page 2, then page 1 again (a redelivered message), and page 2's update retried
    // after a lost response.
    for (page, ended, counts) in [
        ("p1", 100, true),
        ("p2", 60, true),
        ("p1", 100, false),
        ("p2", 60, false),
    ] {
        assert_eq!(state.progress(&job, page, ended).await.unwrap(), counts);
    }
    assert_eq!(state.complete(&job, now).await.unwrap(), Some(160));
    env.teardown().await;
}
