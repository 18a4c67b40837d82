//! The cascade worker end to end on the emulator: messages go through the real cascade queue,
//! are wrapped in the SQS Lambda event shape, and the handler's effects are read back from the
//! tables, the queues, the topic and CloudWatch.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use sessionwarden_cascade::CascadeWorker;
use sessionwarden_core::cascade::CascadeReport;
use sessionwarden_core::cascade_message::{request, Target};
use sessionwarden_core::session::{Session, SessionId, Status, TerminationReason};
use sessionwarden_tests::{assert_metrics, context_with, metric, s, SessionFactory, TestEnv};

const H: i64 = 3600;

fn worker(env: &TestEnv, extra: &[(&str, &str)]) -> CascadeWorker {
    CascadeWorker::from_clients(&env.clients, env.cascade_config(extra))
}

async fn invoke(env: &TestEnv, extra: &[(&str, &str)], event: SqsEvent) -> SqsBatchResponse {
    worker(env, extra)
        .handle(LambdaEvent::new(
            event,
            context_with(Duration::from_secs(300)),
        ))
        .await
        .expect("infallible")
}

/// Delivers queue messages to the worker until the queue is quiet (continuations and family
/// sub-cascades included). Returns the merged reports and the number of invocations.
async fn drive(env: &TestEnv, extra: &[(&str, &str)]) -> (CascadeReport, usize) {
    let w = worker(env, extra);
    let mut total = CascadeReport::default();
    let (rounds, _) = env
        .deliver_cascades(199, async |event| {
            let deadline =
                sessionwarden_core::deadline::EpochDeadline::in_from_now(Duration::from_secs(300));
            let (response, report) = w.run(&event, &deadline).await;
            assert!(
                response.batch_item_failures.is_empty(),
                "{:?}",
                report.failed
            );
            total.merge(report);
            response
        })
        .await;
    (total, rounds)
}

fn body(target: Target, reason: &str, request_id: Option<&str>) -> String {
    serde_json::to_string(&request(
        &target,
        reason,
        "auth-service",
        request_id.map(String::from),
    ))
    .unwrap()
}

/// Sends one cascade request to the queue, as another service would.
/// Every session of `u`.
fn user(u: &str) -> Target {
    Target::User(u.into())
}

/// Every session of tenant `t`.
fn tenant(t: &str) -> Target {
    Target::Tenant(t.into())
}

/// `s` and its family.
fn session(s: &Session) -> Target {
    Target::Session(s.session_id.clone())
}

async fn ask(env: &TestEnv, target: Target, reason: &str, request_id: Option<&str>) {
    env.send_cascade(&[body(target, reason, request_id)]).await;
}

/// Processes `event` with `secs` seconds left.
async fn run_within(
    w: &CascadeWorker,
    event: &SqsEvent,
    secs: u64,
) -> (SqsBatchResponse, CascadeReport) {
    w.run(
        event,
        &sessionwarden_core::deadline::EpochDeadline::in_from_now(Duration::from_secs(secs)),
    )
    .await
}

fn ended_by_cascade(s: &Session, reason: TerminationReason) {
    assert_eq!(s.status, Status::Terminated);
    assert_eq!(s.termination_reason, Some(reason));
    assert!(s.terminated_at.is_some() && s.expires_at.is_some());
}

async fn terminated_by(env: &TestEnv, id: &SessionId) -> Option<String> {
    env.raw_item(id)
        .await
        .and_then(|i| i.get("terminatedBy").and_then(|v| v.as_s().ok()).cloned())
}

#[tokio::test]
async fn logout_everywhere_ends_that_users_sessions_and_nobody_elses() {
    let env = TestEnv::new("logout-everywhere").await;
    let f = SessionFactory::new();
    let mine = f.of_user(3, "m", "u-1", H, 60);
    let mut logged_out = f.active("old", "u-1", 5 * H, 3 * H);
    logged_out.status = Status::Terminated;
    logged_out.termination_reason = Some(TerminationReason::Logout);
    let mut expired = f.active("exp", "u-1", 30 * H, 20 * H);
    expired.status = Status::Expired;
    expired.termination_reason = Some(TerminationReason::Idle);
    let theirs = f.of_user(2, "t", "u-2", H, 60);
    let mut all = mine.clone();
    all.extend([logged_out.clone(), expired.clone()]);
    all.extend(theirs.clone());
    env.seed(&all).await;

    ask(&env, user("u-1"), "password-changed", Some("req-logout-1")).await;
    let (report, _) = drive(&env, &[]).await;

    assert_eq!(report.ended.get("cascade:user"), Some(&3));
    for s in &mine {
        ended_by_cascade(
            &env.session(&s.session_id).await,
            TerminationReason::CascadeUser,
        );
        assert_eq!(
            terminated_by(&env, &s.session_id).await.as_deref(),
            Some("req-logout-1")
        );
    }
    // Already ended: original reason kept, nothing written.
    assert_eq!(env.session(&logged_out.session_id).await, logged_out);
    assert_eq!(env.session(&expired.session_id).await, expired);
    for s in &theirs {
        assert_eq!(
            env.session(&s.session_id).await,
            *s,
            "another user's session is untouched"
        );
    }
    let m = env.metrics().await;
    assert_metrics(
        &m,
        &[
            ("SessionsTerminated", &[("Cause", "cascade:user")], 3.0),
            ("CascadeJobsStarted", &[], 1.0),
            ("CascadeJobsCompleted", &[], 1.0),
        ],
    );
    assert!(metric(&m, "CascadePages", &[]).unwrap() >= 1.0);
    assert!(metric(&m, "CascadeDurationMs", &[]).is_some());
    env.teardown().await;
}

#[tokio::test]
async fn a_tenant_suspension_crosses_pages_and_continuations_and_announces_itself() {
    let env = TestEnv::new("tenant-suspension").await;
    let inbox = env.subscribe_alerts().await;
    let f = SessionFactory::new();
    let acme: Vec<Session> = (0..260)
        .map(|i| f.active("acme", &format!("u-{i}"), H, 60))
        .collect();
    let globex: Vec<Session> = (0..5)
        .map(|i| {
            let mut s = f.active("globex", &format!("g-{i}"), H, 60);
            s.tenant_id = Some("globex".into());
            s
        })
        .collect();
    env.seed(&acme).await;
    env.seed(&globex).await;

    ask(
        &env,
        tenant("acme"),
        "tenant-suspended",
        Some("suspend-acme"),
    )
    .await;
    // One page of 100 per message: the job must continue across messages.
    let (report, rounds) = drive(&env, &[("CASCADE_PAGES_PER_MESSAGE", "1")]).await;

    assert_eq!(report.ended.get("cascade:tenant"), Some(&260));
    assert!(report.pages >= 3, "{report:?}");
    assert!(report.continuations >= 2, "{report:?}");
    assert!(rounds >= 3);
    assert_eq!((report.jobs_started, report.jobs_completed), (1, 1));
    for s in &acme {
        assert_eq!(env.status_of(s).await, Status::Terminated);
    }
    for s in &globex {
        assert_eq!(env.session(&s.session_id).await, *s);
    }
    // The job record tells an investigator what happened.
    let job = env
        .clients
        .dynamodb
        .query()
        .table_name(&env.resources.state_table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s("cascade#suspend-acme"))
        .send()
        .await
        .unwrap();
    assert_eq!(job.count, 1);
    let item = &job.items()[0];
    assert_eq!(item["status"], s("COMPLETED"));
    assert_eq!(item["ended"], sessionwarden_tests::n(260));
    assert_eq!(item["requestedBy"], s("auth-service"));
    // A cascade this large is announced to on-call.
    let alerts = env.alerts(&inbox).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].subject,
        "[INFO] sessionwarden: tenant acme cascade ended 260 sessions"
    );
    assert_eq!(alerts[0].attributes["severity"], "INFO");
    env.teardown().await;
}

#[tokio::test]
async fn a_family_chain_of_depth_three_is_fully_ended() {
    let env = TestEnv::new("family-chain").await;
    let f = SessionFactory::new();
    let root = f.active("root", "u-1", H, 60);
    let mut chain = vec![root.clone()];
    for i in 1..=3 {
        let mut child = f.active(&format!("c{i}"), "u-1", H, 60);
        child.parent_session_id = Some(chain.last().unwrap().session_id.clone());
        chain.push(child);
    }
    let unrelated = f.active("other", "u-1", H, 60);
    env.seed_seen(&chain).await;
    env.seed_seen(std::slice::from_ref(&unrelated)).await;

    ask(&env, session(&root), "admin-revoke", Some("fam-1")).await;
    let (report, _) = drive(&env, &[]).await;

    ended_by_cascade(
        &env.session(&root.session_id).await,
        TerminationReason::Admin,
    );
    for s in &chain[1..] {
        ended_by_cascade(
            &env.session(&s.session_id).await,
            TerminationReason::CascadeFamily,
        );
        assert_eq!(
            terminated_by(&env, &s.session_id).await.as_deref(),
            Some("fam-1"),
            "every session links back to the root"
        );
    }
    assert_eq!(report.ended.get("cascade:family"), Some(&3));
    assert_eq!(env.session(&unrelated.session_id).await, unrelated);
    env.teardown().await;
}

#[tokio::test]
async fn a_cycle_in_parent_session_id_stops() {
    let env = TestEnv::new("family-cycle").await;
    let f = SessionFactory::new();
    let mut a = f.active("a", "u-1", H, 60);
    let mut b = f.active("b", "u-1", H, 60);
    a.parent_session_id = Some(b.session_id.clone());
    b.parent_session_id = Some(a.session_id.clone());
    env.seed_seen(&[a.clone(), b.clone()]).await;

    ask(&env, session(&a), "admin-revoke", None).await;
    let (report, rounds) = drive(&env, &[]).await;

    assert_eq!(env.status_of(&a).await, Status::Terminated);
    assert_eq!(env.status_of(&b).await, Status::Terminated);
    assert_eq!(report.cycles_stopped, 1, "{report:?}");
    assert!(rounds <= 4, "{rounds} rounds");
    assert_metrics(&env.metrics().await, &[("CascadeCyclesStopped", &[], 1.0)]);
    env.teardown().await;
}

#[tokio::test]
async fn a_redelivered_message_changes_nothing() {
    let env = TestEnv::new("cascade-redelivery").await;
    let f = SessionFactory::new();
    let sessions = f.of_user(3, "r", "u-1", H, 60);
    env.seed(&sessions).await;
    ask(&env, user("u-1"), "password-changed", None).await;
    let event = env.cascade_event().await.unwrap();
    assert!(invoke(&env, &[], event.clone())
        .await
        .batch_item_failures
        .is_empty());
    let before = env.snapshot(&sessions).await;
    // The same message again (redelivery or replay), later.
    let w = worker(&env, &[]);
    let (response, report) = run_within(&w, &event, 60).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(report.ended.values().sum::<u64>(), 0);
    assert_eq!(
        (report.jobs_started, report.jobs_completed),
        (0, 0),
        "the job is counted once"
    );
    before
        .assert_unchanged(&env, "nothing already done is rewritten")
        .await;
    env.teardown().await;
}

#[tokio::test]
async fn invalid_messages_go_to_the_dead_letter_queue_with_a_reason() {
    let env = TestEnv::new("cascade-invalid").await;
    env.send_cascade(&[
        "{not json".to_string(),
        r#"{"version":1,"scope":"planet","userId":"u","reason":"r","requestedBy":"x"}"#.to_string(),
        r#"{"version":1,"scope":"user","userId":"u","reason":"r","requestedBy":"x","force":true}"#
            .to_string(),
        r#"{"version":3,"scope":"user","userId":"u","reason":"r","requestedBy":"x"}"#.to_string(),
    ])
    .await;
    let (report, _) = drive(&env, &[]).await;
    assert_eq!(report.invalid, 4);
    let letters = env.dead_letters().await;
    assert_eq!(letters.len(), 4);
    let reasons: Vec<String> = letters
        .iter()
        .map(|l| l["reason"].as_str().unwrap().to_string())
        .collect();
    for want in [
        "not a version-1 cascade message",
        "unknown scope \"planet\"",
        "unknown field `force`",
        "unsupported version 3",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(want)),
            "{want} not in {reasons:?}"
        );
    }
    assert!(letters
        .iter()
        .all(|l| l["source"] == "sessionwarden-cascade" && l["sequenceNumber"].is_string()));
    assert_metrics(
        &env.metrics().await,
        &[("CascadeMessagesInvalid", &[], 4.0)],
    );
    env.teardown().await;
}

#[tokio::test]
async fn the_deadline_hands_the_rest_to_a_continuation() {
    let env = TestEnv::new("cascade-deadline").await;
    let f = SessionFactory::new();
    let sessions: Vec<Session> = (0..30)
        .map(|i| f.active("d", &format!("u-{i}"), H, 60))
        .collect();
    env.seed(&sessions).await;
    ask(&env, tenant("acme"), "suspended", Some("deadline-1")).await;
    let event = env.cascade_event().await.unwrap();
    // 5 s left, 10 s margin: no page is read; the whole job continues in a new message.
    let w = worker(&env, &[("CASCADE_PAGE_SIZE", "10")]);
    let (response, report) = run_within(&w, &event, 5).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!((report.pages, report.continuations), (0, 1));
    let (rest, _) = drive(&env, &[("CASCADE_PAGE_SIZE", "10")]).await;
    assert_eq!(rest.ended.get("cascade:tenant"), Some(&30));
    env.teardown().await;
}

#[tokio::test]
async fn stream_to_queue_to_worker_end_to_end() {
    let (env, mut tail) = TestEnv::with_tail("cascade-e2e").await;
    let f = SessionFactory::new();
    let sessions = f.of_user(3, "e", "u-1", H, 60);
    let mut child = f.active("child", "u-1", H, 60);
    child.parent_session_id = Some(sessions[1].session_id.clone());
    let bystander = f.active("by", "u-2", H, 60);
    env.seed(&sessions).await;
    env.seed(&[child.clone(), bystander.clone()]).await;
    let stream =
        sessionwarden_stream::StreamWorker::from_clients(&env.clients, env.stream_config(&[]));
    let (r, _) = stream.run(&tail.next_records().await.unwrap()).await;
    assert!(r.batch_item_failures.is_empty());

    // The app logs the user out everywhere: one session TERMINATED with revokeScope = user.
    env.app_update(
        &sessions[0].session_id,
        &[
            ("status", s("TERMINATED")),
            ("terminationReason", s("logout")),
            ("revokeScope", s("user")),
        ],
    )
    .await;
    let (r, report) = stream.run(&tail.next_records().await.unwrap()).await;
    assert!(r.batch_item_failures.is_empty());
    assert!(report.cascades_requested >= 1);

    // The cascade worker consumes what the stream worker queued; its own ends come back through
    // the stream and request family cascades, which the cascade worker also drains.
    for _ in 0..3 {
        drive(&env, &[]).await;
        let (r, _) = stream.run(&tail.next_records().await.unwrap()).await;
        assert!(r.batch_item_failures.is_empty());
    }
    drive(&env, &[]).await;
    for s in &sessions[1..] {
        ended_by_cascade(
            &env.session(&s.session_id).await,
            TerminationReason::CascadeUser,
        );
    }
    assert_eq!(
        env.session(&sessions[0].session_id)
            .await
            .termination_reason,
        Some(TerminationReason::Logout)
    );
    // The child was u-1's too: ended by the user cascade (or its family), either way not ACTIVE.
    assert_eq!(env.status_of(&child).await, Status::Terminated);
    assert_eq!(env.session(&bystander.session_id).await, bystander);
    env.teardown().await;
}

#[tokio::test]
async fn the_stream_asks_for_tenant_and_family_cascades() {
    let (env, mut tail) = TestEnv::with_tail("cascade-requests").await;
    let f = SessionFactory::new();
    let suspended = f.active("admin", "u-1", H, 60);
    let ttl_victim = f.active("ttl", "u-2", H, 60);
    // Only the TTL victim has a child: its INSERT marks the victim as a parent.
    let mut kid = f.active("kid", "u-2", H, 60);
    kid.parent_session_id = Some(ttl_victim.session_id.clone());
    env.seed(&[suspended.clone(), ttl_victim.clone(), kid])
        .await;
    let stream =
        sessionwarden_stream::StreamWorker::from_clients(&env.clients, env.stream_config(&[]));
    stream.run(&tail.next_records().await.unwrap()).await;
    env.drain(&env.resources.cascade_queue_url).await;

    // The app suspends the tenant through one session...
    env.app_update(
        &suspended.session_id,
        &[
            ("status", s("TERMINATED")),
            ("terminationReason", s("admin")),
            ("revokeScope", s("tenant")),
        ],
    )
    .await;
    let mut records = tail.next_records().await.unwrap();
    // ...and DynamoDB's TTL deletes a session that was still ACTIVE (built by hand: moto has no TTL).
    let remove = sessionwarden_tests::ttl_remove(
        &records[0],
        &ttl_victim.session_id,
        "ACTIVE",
        "99999999999999999999",
    );
    records.push(remove);
    let (r, report) = stream.run(&records).await;
    assert!(r.batch_item_failures.is_empty());
    // Both ended sessions would take their family along, but only the TTL victim has one: the
    // suspended session's family cascade is not asked for (no message, no member Query).
    assert_eq!(report.cascades_requested, 2);
    assert_eq!(report.family_cascades_skipped, 1);

    let mut queued: Vec<serde_json::Value> = env
        .drain(&env.resources.cascade_queue_url)
        .await
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    queued.sort_by_key(|m| m["scope"].as_str().unwrap().to_string());
    let scopes: Vec<&str> = queued
        .iter()
        .map(|m| m["scope"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["family", "tenant"]);
    assert_eq!(queued[1]["tenantId"], "acme");
    assert!(
        queued[1]["requestId"]
            .as_str()
            .unwrap()
            .starts_with("stream:"),
        "derived from the record, so redelivery is idempotent"
    );
    assert_eq!(queued[0]["sessionId"], ttl_victim.session_id.expose());
    env.teardown().await;
}
