//! The `connect-dynamodb` layout end to end on DynamoDB Local: an express-session table written
//! exactly as connect-dynamodb writes it, and the three workers running with
//! `SESSION_LAYOUT=connect-dynamodb`.
//!
//! The item format is connect-dynamodb's `lib/connect-dynamodb.js` (v3, github.com/ca98am79/
//! connect-dynamodb): `set` is a PutItem of `{id: "sess:<sid>", expires: N (epoch seconds,
//! `getExpiresValue`), type: "connect-session", sess: S (JSON.stringify of the session)}`;
//! `touch` is `UpdateItem SET expires = :e`; `destroy` (logout, and its own `reap`) is a
//! DeleteItem. The session JSON holds the cookie and whatever the app stored: `user.id`,
//! `userId` or passport's `passport.user`.

use sessionwarden_tests::{item, nv, sv, ttl_remove_of, LayoutWorld, RawItem};

const H: i64 = 3600;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sid(label: &str) -> String {
    format!("{label}-{:016x}", rand::random::<u64>())
}

fn key(sid: &str) -> RawItem {
    item(&[("id", sv(&format!("sess:{sid}")))])
}

/// The session JSON express-session serializes, with the app's `extra` fields.
fn sess(extra: serde_json::Value) -> String {
    let mut v = serde_json::json!({
        "cookie": {"originalMaxAge": 86_400_000, "expires": "2026-11-26T10:00:00.000Z",
                   "httpOnly": true, "path": "/"}
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v.to_string()
}

/// connect-dynamodb's `set`.
fn set(sid: &str, expires: i64, extra: serde_json::Value) -> RawItem {
    item(&[
        ("id", sv(&format!("sess:{sid}"))),
        ("expires", nv(expires)),
        ("type", sv("connect-session")),
        ("sess", sv(&sess(extra))),
    ])
}

fn user(u: &str) -> serde_json::Value {
    serde_json::json!({"user": {"id": u, "name": "Ada"}})
}

async fn world(name: &str) -> LayoutWorld {
    LayoutWorld::new(name, "connect-dynamodb").await
}

#[tokio::test]
async fn a_bleed_raises_exactly_one_critical_alert_that_never_shows_the_session_id() {
    let mut w = world("cd-bleed").await;
    let s = sid("bleed");
    w.put(set(&s, now() + H, user("u-1"))).await;
    w.step_ok().await;
    // Another user's request writes its session under the same ID (a shared cache, a bug).
    w.put(set(&s, now() + H, serde_json::json!({"userId": "u-2"})))
        .await;
    w.step_ok().await;
    let alerts = w.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    alerts[0].assert_kind("SESSION_USER_CHANGED", "CRITICAL");
    let text = &alerts[0].raw;
    assert!(!text.contains(&s), "the raw session ID leaked: {text}");
    assert!(text.contains(w.env.key.reference(&s).as_str()), "{text}");
    // Contained: the item is gone (connect-dynamodb ends a session by deleting it).
    assert!(w.get(key(&s)).await.is_none());
    w.env.teardown().await;
}

#[tokio::test]
async fn login_that_keeps_the_anonymous_session_id_is_fixation() {
    let mut w = world("cd-fix").await;
    let s = sid("fix");
    w.put(set(&s, now() + H, serde_json::json!({"returnTo": "/cart"})))
        .await;
    w.step_ok().await;
    w.put(set(
        &s,
        now() + H,
        serde_json::json!({"passport": {"user": "u-7"}}),
    ))
    .await;
    w.step_ok().await;
    let alerts = w.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].doc["type"], "SESSION_FIXATION");
    w.env.teardown().await;
}

#[tokio::test]
async fn a_write_to_a_lapsed_session_is_activity_after_termination() {
    let mut w = world("cd-zombie").await;
    let s = sid("zombie");
    // Past its expires; DynamoDB's TTL has not deleted it yet ("within a few days").
    w.put(set(&s, now() - 600, user("u-3"))).await;
    w.step_ok().await;
    // An app that does not check `expires` touches it back to life.
    w.update(key(&s), &[("expires", nv(now() + H))]).await;
    w.step_ok().await;
    let alerts = w.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(
        alerts[0].doc["type"], "ACTIVITY_AFTER_TERMINATION",
        "{:#}",
        alerts[0].doc
    );
    w.env.teardown().await;
}

#[tokio::test]
async fn benign_traffic_raises_nothing_and_deletes_are_told_apart() {
    let mut w = world("cd-benign").await;
    let (a, b) = (sid("a"), sid("b"));
    w.put(set(&a, now() + H, user("u-1"))).await;
    w.put(set(&b, now() + H, user("u-2"))).await;
    w.step_ok().await;
    // Touches (connect-dynamodb's `touch`), and a resave of the same user.
    for i in 1..=3 {
        w.update(key(&a), &[("expires", nv(now() + H + i))]).await;
    }
    w.put(set(&a, now() + 2 * H, user("u-1"))).await;
    w.step_ok().await;
    // Logout: `destroy`. A re-login gets a new ID.
    w.delete(key(&a)).await;
    let a2 = sid("a2");
    w.put(set(&a2, now() + H, user("u-1"))).await;
    w.step_ok().await;
    // TTL deletes b, days after it lapsed.
    let insert_of_b = w
        .last_records
        .iter()
        .find(|r| r["eventName"] == "INSERT")
        .cloned()
        .expect("an INSERT record");
    let removal = ttl_remove_of(&insert_of_b, "999999999999999999999");
    let r = w
        .invoke(&sessionwarden_local::streams::lambda_event(vec![removal]))
        .await;
    assert!(r.batch_item_failures.is_empty());
    assert!(w.alerts().await.is_empty());
    assert!(w.env.dead_letters().await.is_empty());
    let m = w.env.metrics().await;
    sessionwarden_tests::assert_metrics(
        &m,
        &[
            ("SessionsDeletedByWrite", &[], 1.0),
            ("SessionsDeletedByTtl", &[], 1.0),
            ("StreamRecordsMalformed", &[], 0.0),
        ],
    );
    w.env.teardown().await;
}

#[tokio::test]
async fn an_item_that_claims_to_be_a_session_but_cannot_be_read_is_dead_lettered() {
    let mut w = world("cd-bad").await;
    let s = sid("bad");
    let mut bad = set(&s, now() + H, user("u-1"));
    bad.insert("sess".into(), sv("{not json"));
    w.put(bad).await;
    // Not a session under the layout: another prefix. Skipped, not dead-lettered.
    w.put(item(&[("id", sv("cache:home")), ("body", sv("<html>"))]))
        .await;
    w.step_ok().await;
    let letters = w.env.dead_letters().await;
    assert_eq!(letters.len(), 1, "{letters:#?}");
    assert!(letters[0].to_string().contains("not JSON"), "{letters:#?}");
    let m = w.env.metrics().await;
    sessionwarden_tests::assert_metrics(
        &m,
        &[("StreamRecordsSkipped", &[("Reason", "not_a_session")], 1.0)],
    );
    w.env.teardown().await;
}

#[tokio::test]
async fn cleanup_ends_lapsed_sessions_from_its_own_index_and_spares_fresh_ones() {
    let mut w = world("cd-cleanup").await;
    let lapsed: Vec<String> = (0..3).map(|i| sid(&format!("old{i}"))).collect();
    let fresh = sid("fresh");
    for s in &lapsed {
        w.put(set(s, now() - 2 * H, user("u-1"))).await;
    }
    // Early in a 15-minute due bucket, so a touch a second later stays in it.
    let fresh_expires = (now() + 4 * H) / 900 * 900 + 10;
    w.put(set(&fresh, fresh_expires, user("u-1"))).await;
    w.step_ok().await;
    // The stream filed each session once: 4 due entries, one member list entry each.
    assert_eq!(w.state_items("due#").await.len() - watermark(&w).await, 4);
    assert_eq!(w.state_items("member#user#u-1").await.len(), 4);
    // A touch within the same due bucket files nothing.
    w.env.counter.reset();
    w.update(key(&fresh), &[("expires", nv(fresh_expires + 1))])
        .await;
    w.step_ok().await;
    assert_eq!(w.env.counter.get("DynamoDB.BatchWriteItem"), 0);

    let report = w.cleanup().await;
    assert_eq!(report.expired.ttl, 3, "{report:#?}");
    assert_eq!(report.expired_total(), 3, "{report:#?}");
    assert!(report.finished, "{report:#?}");
    // It read the due sessions only: the fresh one sits in a later bucket.
    assert_eq!(report.items_read, 3, "{report:#?}");
    for s in &lapsed {
        assert!(w.get(key(s)).await.is_none());
    }
    assert!(w.get(key(&fresh)).await.is_some());
    // Their entries left the index; a second run finds nothing.
    let again = w.cleanup().await;
    assert_eq!(again.examined, 0, "{again:#?}");
    w.env.teardown().await;
}

/// Cleanup queries a bucket's 16 shards at once and shares the page among them: with a page of
/// 16, each shard's Query reads one entry, so 40 due sessions (2 or 3 per shard) need the
/// shards' own continuation keys across pages. Every one is ended, and each is read once.
#[tokio::test]
async fn cleanup_reads_every_shard_of_a_bucket_across_small_pages() {
    let mut w = world("cd-shards").await;
    let lapsed: Vec<String> = (0..40).map(|i| sid(&format!("lapsed{i}"))).collect();
    for s in &lapsed {
        w.put(set(s, now() - 2 * H, user("u-2"))).await;
    }
    w.step_ok().await;
    let cfg = w.env.cleanup_config(
        sessionwarden_core::config::CleanupStrategy::Index,
        &[("CLEANUP_PAGE_SIZE", "16")],
    );
    let report = w
        .env
        .invoke_cleanup(cfg, std::time::Duration::from_secs(300))
        .await;
    assert_eq!(report.expired.ttl, 40, "{report:#?}");
    assert_eq!(report.items_read, 40, "{report:#?}");
    assert!(report.finished, "{report:#?}");
    for s in &lapsed {
        assert!(w.get(key(s)).await.is_none());
    }
    w.env.teardown().await;
}

/// The watermark item is in the `due#` prefix too.
async fn watermark(w: &LayoutWorld) -> usize {
    w.state_items("due#watermark").await.len()
}

#[tokio::test]
async fn logout_everywhere_ends_every_session_of_the_user_from_the_member_index() {
    let mut w = world("cd-cascade").await;
    let mine: Vec<String> = (0..3).map(|i| sid(&format!("m{i}"))).collect();
    let other = sid("other");
    for s in &mine {
        w.put(set(s, now() + H, user("u-1"))).await;
    }
    w.put(set(&other, now() + H, user("u-2"))).await;
    w.step_ok().await;
    let report = w.revoke_user("u-1").await;
    assert_eq!(report.ended.values().sum::<u64>(), 3, "{report:#?}");
    for s in &mine {
        assert!(w.get(key(s)).await.is_none());
    }
    assert!(w.get(key(&other)).await.is_some());
    // The deletes come back on the stream as app deletes, and leave the member list.
    w.step_ok().await;
    assert!(w.state_items("member#user#u-1").await.is_empty());
    assert!(w.alerts().await.is_empty());
    w.env.teardown().await;
}

#[tokio::test]
async fn a_session_touched_between_read_and_delete_survives() {
    let mut w = world("cd-touch").await;
    let (victim, other) = (sid("victim"), sid("other"));
    w.put(set(&victim, now() - H, user("u-1"))).await;
    w.put(set(&other, now() - H, user("u-2"))).await;
    w.step_ok().await;
    // connect-dynamodb's `touch`: the user came back.
    let report = w
        .cleanup_touching(&victim, key(&victim), ("expires", nv(now() + H)))
        .await;
    assert_eq!(report.skipped_touched, 1, "{report:#?}");
    assert_eq!(report.expired.ttl, 1, "{report:#?}");
    assert!(
        w.get(key(&victim)).await.is_some(),
        "the touched session survives"
    );
    assert!(w.get(key(&other)).await.is_none());
    w.env.teardown().await;
}
