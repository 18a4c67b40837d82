//! The per-user session limit (`MAX_SESSIONS_PER_USER`) on the emulator, under concurrency: many
//! stream invocations at once admit sessions of one user, and the user's roster (one state item,
//! replaced only by writes conditional on its version) decides exactly who ends. Redelivery of
//! every batch changes nothing, and ends nothing more.

use sessionwarden_core::session::{Session, Status, TerminationReason};
use sessionwarden_core::stream::StreamReport;
use sessionwarden_stream::StreamWorker;
use sessionwarden_tests::{s, SessionFactory, Tail, TestEnv};

/// Reads the stream until `n` records have come.
async fn records(tail: &mut Tail, n: usize) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for _ in 0..50 {
        out.extend(tail.next_records().await.expect("read stream"));
        if out.len() >= n {
            break;
        }
    }
    assert_eq!(out.len(), n, "every record arrived");
    out
}

/// `n` sessions of one user, created one second apart in index order (0 is the oldest).
fn sessions(f: &SessionFactory, user: &str, n: usize) -> Vec<Session> {
    (0..n)
        .map(|i| f.active(&format!("l{i}"), user, 1_000 - i as i64, 10))
        .collect()
}

/// Runs `batches` as parallel invocations (one worker each, as Lambda's shards would) and sums
/// what they report.
async fn invoke_all(
    env: &TestEnv,
    extra: &[(&str, &str)],
    batches: &[Vec<serde_json::Value>],
) -> StreamReport {
    let runs = batches.iter().map(|b| {
        let worker = StreamWorker::from_clients(&env.clients, env.stream_config(extra));
        async move { worker.run(b).await }
    });
    let mut total = StreamReport::default();
    for (response, report) in futures::future::join_all(runs).await {
        assert!(response.batch_item_failures.is_empty(), "{report:?}");
        total.limit_ended += report.limit_ended;
        total.records += report.records;
        total.alerts_published += report.alerts_published;
    }
    total
}

/// Round-robin into `k` batches, so every invocation holds old and new sessions alike.
fn deal(records: &[serde_json::Value], k: usize) -> Vec<Vec<serde_json::Value>> {
    let mut out = vec![Vec::new(); k];
    for (i, r) in records.iter().enumerate() {
        out[i % k].push(r.clone());
    }
    out
}

async fn ended_by_limit(env: &TestEnv, all: &[Session]) -> Vec<usize> {
    let mut ended = Vec::new();
    for (i, s) in all.iter().enumerate() {
        let now = env.session(&s.session_id).await;
        if now.status != Status::Active {
            assert_eq!(now.status, Status::Terminated, "session {i}");
            assert_eq!(
                now.termination_reason,
                Some(TerminationReason::Limit),
                "session {i}"
            );
            ended.push(i);
        }
    }
    ended
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_parallel_invocations_hold_a_limit_of_five_and_redelivery_ends_nothing_more() {
    let env = TestEnv::new("limit-oldest").await;
    let inbox = env.subscribe_alerts().await;
    let mut tail = env.stream_tail().await;
    let f = SessionFactory::new();
    let all = sessions(&f, "u-limit", 200);
    env.seed(&all).await;
    let inserts = records(&mut tail, 200).await;
    let limit = [("MAX_SESSIONS_PER_USER", "5")];

    let first = invoke_all(&env, &limit, &deal(&inserts, 10)).await;
    assert_eq!(first.records, 200);
    assert_eq!(first.limit_ended, 195, "{first:?}");
    let ended = ended_by_limit(&env, &all).await;
    assert_eq!(
        ended,
        (0..195).collect::<Vec<_>>(),
        "the 195 oldest ended, the 5 newest live"
    );

    // Every batch delivered again, in parallel again: the same result, no extra end, no count.
    let again = invoke_all(&env, &limit, &deal(&inserts, 10)).await;
    assert_eq!(again.limit_ended, 0, "{again:?}");
    assert_eq!(ended_by_limit(&env, &all).await, ended);

    // The ends themselves come through the stream as stops: nothing more ends.
    let stops = records(&mut tail, 195).await;
    let after = invoke_all(&env, &limit, &deal(&stops, 3)).await;
    assert_eq!(after.limit_ended, 0);
    assert_eq!(ended_by_limit(&env, &all).await, ended);

    // One INFO notice for the user in the window, not one alert per session (200 logins in a
    // minute are a burst too, which is its own alert).
    let alerts: Vec<_> = env
        .alerts(&inbox)
        .await
        .into_iter()
        .filter(|a| a.doc["type"] != "SESSION_CREATION_BURST")
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    alerts[0].assert_kind("SESSION_LIMIT_ENFORCED", "INFO");
    assert_eq!(alerts[0].doc["userId"], "u-limit");
    assert!(!alerts[0].raw.contains(all[0].session_id.expose()));
    env.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_newest_keeps_the_first_sessions_and_a_tenant_override_applies() {
    let env = TestEnv::new("limit-newest").await;
    let mut tail = env.stream_tail().await;
    let f = SessionFactory::new();
    let all = sessions(&f, "u-newest", 30);
    env.seed(&all).await;
    let inserts = records(&mut tail, 30).await;
    // The factory's sessions are in tenant acme: its override (3) beats the global 10.
    let vars = [
        ("MAX_SESSIONS_PER_USER", "10"),
        ("MAX_SESSIONS_PER_USER_BY_TENANT", "acme=3"),
        ("SESSION_LIMIT_POLICY", "end-newest"),
    ];
    let first = invoke_all(&env, &vars, &deal(&inserts, 5)).await;
    assert_eq!(first.limit_ended, 27);
    assert_eq!(
        ended_by_limit(&env, &all).await,
        (3..30).collect::<Vec<_>>()
    );
    env.teardown().await;
}

#[tokio::test]
async fn a_login_on_an_anonymous_session_counts_and_a_logout_frees_its_seat() {
    let env = TestEnv::new("limit-login").await;
    let mut tail = env.stream_tail().await;
    let f = SessionFactory::new();
    let limit = [("MAX_SESSIONS_PER_USER", "2")];
    let worker = StreamWorker::from_clients(&env.clients, env.stream_config(&limit));
    let a = f.active("a", "u-login", 300, 10);
    let b = f.active("b", "u-login", 200, 10);
    env.seed(&[a.clone(), b.clone()]).await;
    let (_, r) = worker.run(&records(&mut tail, 2).await).await;
    assert_eq!(r.limit_ended, 0);

    // B logs out (the app ends it): its seat is free, so a login on an anonymous session fits.
    env.app_update(
        &b.session_id,
        &[
            ("status", s("TERMINATED")),
            ("terminationReason", s("logout")),
        ],
    )
    .await;
    let anon = f.anonymous("c", 100, 10);
    env.seed(std::slice::from_ref(&anon)).await;
    env.app_update(&anon.session_id, &[("userId", s("u-login"))])
        .await;
    let (_, r) = worker.run(&records(&mut tail, 3).await).await;
    assert_eq!(r.limit_ended, 0, "{r:?}");

    // A third live session: the oldest (A) ends.
    let d = f.active("d", "u-login", 50, 10);
    env.seed(std::slice::from_ref(&d)).await;
    let (_, r) = worker.run(&records(&mut tail, 1).await).await;
    assert_eq!(r.limit_ended, 1);
    assert_eq!(env.status_of(&a).await, Status::Terminated);
    for live in [&anon, &d] {
        assert_eq!(env.status_of(live).await, Status::Active);
    }
    env.teardown().await;
}
