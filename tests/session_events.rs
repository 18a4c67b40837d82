//! Session-ended events on the emulator: every way a session ends (cleanup's idle and absolute
//! expiry, the app's logout and delete, DynamoDB's TTL, a USER cascade, containment of a bleed,
//! the session limit) reaches the events topic exactly once, with its reason, whoever ended it;
//! on the native layout and on connect-dynamodb, whose ends are deletes that keep no reason.
//! A redelivery of every record publishes nothing more.

use std::collections::BTreeMap;
use std::time::Duration;

use sessionwarden_core::cascade_message::{request, Target};
use sessionwarden_core::config::CleanupStrategy;
use sessionwarden_core::session::SessionId;
use sessionwarden_stream::StreamWorker;
use sessionwarden_tests::{
    item, nv, s, sv, ttl_remove, ttl_remove_of, LayoutWorld, ReceivedAlert, SessionFactory, Tail,
    TestEnv,
};

const H: i64 = 3600;
const LIMIT: &[(&str, &str)] = &[("MAX_SESSIONS_PER_USER", "2")];

/// Runs the stream worker over whatever the stream has until it is quiet (ends beget records);
/// returns every record delivered.
async fn settle(
    env: &TestEnv,
    tail: &mut Tail,
    extra: &[serde_json::Value],
) -> Vec<serde_json::Value> {
    let worker = StreamWorker::from_clients(&env.clients, env.stream_config(LIMIT));
    let mut all = Vec::new();
    let mut pending: Vec<serde_json::Value> = extra.to_vec();
    for _ in 0..10 {
        pending.extend(tail.next_records().await.expect("read stream"));
        if pending.is_empty() {
            break;
        }
        let (response, report) = worker.run(&pending).await;
        assert!(response.batch_item_failures.is_empty(), "{report:?}");
        all.append(&mut pending);
    }
    all
}

/// Events received, as reasons by session reference; and each event's ID must be unique.
fn by_session(events: &[ReceivedAlert]) -> BTreeMap<String, Vec<String>> {
    let mut ids = std::collections::HashSet::new();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in events {
        assert_eq!(e.doc["schemaVersion"], 1);
        assert_eq!(e.doc["type"], "SESSION_ENDED");
        let id = e.attributes["eventId"].clone();
        assert_eq!(e.doc["eventId"], id.as_str());
        assert!(ids.insert(id), "event published twice: {e:#?}");
        assert_eq!(
            e.attributes["reason"],
            e.doc["reason"].as_str().unwrap_or_default()
        );
        assert!(
            e.doc.get("sessionId").is_none(),
            "no raw session ID by default"
        );
        out.entry(e.doc["sessionRef"].as_str().unwrap_or_default().to_string())
            .or_default()
            .push(e.doc["reason"].as_str().unwrap_or_default().to_string());
    }
    out
}

async fn run_cascade(env: &TestEnv, user: &str) {
    let msg = request(
        &Target::User(user.into()),
        "logout everywhere",
        "test",
        None,
    );
    env.send_cascade(&[serde_json::to_string(&msg).expect("serializes")])
        .await;
    let w =
        sessionwarden_cascade::CascadeWorker::from_clients(&env.clients, env.cascade_config(&[]));
    env.deliver_cascades(49, async |event| {
        let deadline =
            sessionwarden_core::deadline::EpochDeadline::in_from_now(Duration::from_secs(300));
        let (response, _) = w.run(&event, &deadline).await;
        assert!(response.batch_item_failures.is_empty());
        response
    })
    .await;
}

#[tokio::test]
async fn every_end_on_the_native_layout_is_one_event_with_its_reason() {
    let env = TestEnv::new("events-native").await;
    let events = env.subscribe_events().await;
    let mut tail = env.stream_tail().await;
    let f = SessionFactory::new();
    let idle = f.active("idle", "u-idle", 10 * H, 9 * H);
    let absolute = f.active("abs", "u-abs", 25 * H, 60);
    let logout = f.active("logout", "u-logout", H, 60);
    let deleted = f.active("del", "u-del", H, 60);
    let ttl = f.active("ttl", "u-ttl", H, 60);
    let cascaded = f.of_user(2, "cas", "u-cas", H, 60);
    let bleed = f.active("bleed", "u-bleed", H, 60);
    let limited = [
        f.active("lim0", "u-lim", 3 * H, 60),
        f.active("lim1", "u-lim", 2 * H, 60),
        f.active("lim2", "u-lim", H, 60),
    ];
    let live = f.active("live", "u-live", H, 60);
    let mut seeded = vec![
        idle.clone(),
        absolute.clone(),
        logout.clone(),
        deleted.clone(),
        ttl.clone(),
        bleed.clone(),
        live.clone(),
    ];
    seeded.extend(cascaded.clone());
    seeded.extend(limited.clone());
    env.seed(&seeded).await;
    let inserts = settle(&env, &mut tail, &[]).await;

    // The app: a logout, a delete, a bleed; DynamoDB's TTL; then cleanup and a USER cascade.
    env.app_update(
        &logout.session_id,
        &[
            ("status", s("TERMINATED")),
            ("terminationReason", s("logout")),
        ],
    )
    .await;
    env.app_delete(&deleted.session_id).await;
    env.app_update(&bleed.session_id, &[("userId", s("u-other"))])
        .await;
    let ttl_insert = inserts
        .iter()
        .find(|r| r["dynamodb"]["Keys"]["sessionId"]["S"] == ttl.session_id.expose())
        .expect("the TTL session's INSERT");
    let ttl_record = ttl_remove(
        ttl_insert,
        &ttl.session_id,
        "ACTIVE",
        "90000000000000000001",
    );
    settle(&env, &mut tail, &[ttl_record]).await;
    env.invoke_cleanup(
        env.cleanup_config(CleanupStrategy::Scan, &[]),
        Duration::from_secs(300),
    )
    .await;
    run_cascade(&env, "u-cas").await;
    let everything = {
        let mut all = inserts.clone();
        all.extend(settle(&env, &mut tail, &[]).await);
        all
    };

    let got = by_session(&env.alerts(&events).await);
    let r = |id: &SessionId| env.key.of(id).as_str().to_string();
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (sess, reason) in [
        (&idle, "idle"),
        (&absolute, "absolute"),
        (&logout, "logout"),
        (&deleted, "delete"),
        (&ttl, "ttl"),
        (&cascaded[0], "cascade:user"),
        (&cascaded[1], "cascade:user"),
        (&bleed, "containment"),
        (&limited[0], "limit"),
    ] {
        expected.insert(r(&sess.session_id), vec![reason.to_string()]);
    }
    assert_eq!(got, expected);

    // Every record delivered again: every gate says published, so nothing more goes out.
    let worker = StreamWorker::from_clients(&env.clients, env.stream_config(LIMIT));
    let (response, report) = worker.run(&everything).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(report.events_published, 0, "{report:?}");
    assert!(env.alerts(&events).await.is_empty());
    env.teardown().await;
}

/// connect-dynamodb's `set`.
fn connect_item(sid: &str, expires: i64, user: &str) -> sessionwarden_tests::RawItem {
    let sess = serde_json::json!({"cookie": {}, "userId": user}).to_string();
    item(&[
        ("id", sv(&format!("sess:{sid}"))),
        ("expires", nv(expires)),
        ("type", sv("connect-session")),
        ("sess", sv(&sess)),
    ])
}

#[tokio::test]
async fn connect_dynamodb_ends_name_sessionwardens_reason_and_the_apps_delete() {
    let mut w = LayoutWorld::new("events-connect", "connect-dynamodb").await;
    let events = w.env.subscribe_events().await;
    let now = chrono::Utc::now().timestamp();
    let run = format!("{:08x}", rand::random::<u32>());
    let sid = |l: &str| format!("{run}-{l}");
    // Lapsed (its `expires` passed: cleanup deletes it), deleted by the app (destroy), deleted
    // by TTL, and two sessions of a user a cascade ends.
    for (l, expires, user) in [
        ("lapsed", now - 2 * H, "u-lapsed"),
        ("destroy", now + H, "u-destroy"),
        ("ttl", now + H, "u-ttl"),
        ("c0", now + H, "u-cas"),
        ("c1", now + H, "u-cas"),
    ] {
        w.put(connect_item(&sid(l), expires, user)).await;
    }
    w.step_ok().await;
    let ttl_from = w
        .last_records
        .iter()
        .find(|r| r["dynamodb"]["Keys"]["id"]["S"] == format!("sess:{}", sid("ttl")))
        .cloned()
        .expect("the TTL session's INSERT");
    w.delete(item(&[("id", sv(&format!("sess:{}", sid("destroy"))))]))
        .await;
    w.step_ok().await;
    w.invoke(&sessionwarden_local::streams::lambda_event(vec![
        ttl_remove_of(&ttl_from, "90000000000000000002"),
    ]))
    .await;
    w.cleanup().await;
    w.revoke_user("u-cas").await;
    w.step_ok().await;

    let got = by_session(&w.env.alerts(&events).await);
    let r = |l: &str| w.env.key.of(&SessionId::new(sid(l))).as_str().to_string();
    let expected: BTreeMap<String, Vec<String>> = [
        ("lapsed", "ttl"),
        ("destroy", "delete"),
        ("ttl", "ttl"),
        ("c0", "cascade:user"),
        ("c1", "cascade:user"),
    ]
    .into_iter()
    .map(|(l, reason)| (r(l), vec![reason.to_string()]))
    .collect();
    assert_eq!(got, expected);
    w.env.teardown().await;
}
