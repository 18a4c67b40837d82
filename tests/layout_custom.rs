//! A `custom` layout end to end on DynamoDB Local: the `{id, userId, isCurrent, lastActivity,
//! sessionTimeout, ipAddress, expiredAt}` table from the incident reports, described by
//! `sessionwarden_core::layout::IS_CURRENT_EXAMPLE` (the README's worked example): `lastActivity`
//! is ISO-8601, `sessionTimeout` is in minutes, and an ended session has `isCurrent = false` and
//! `expiredAt`. The items are written as that app writes them: a PutItem at login, `UpdateItem SET
//! lastActivity` on each request, `SET isCurrent = false` at logout.

use aws_sdk_dynamodb::types::AttributeValue;
use sessionwarden_core::layout::IS_CURRENT_EXAMPLE;
use sessionwarden_tests::{item, nv, sv, LayoutWorld, RawItem};

const M: i64 = 60;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn iso(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .expect("a time")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn sid(label: &str) -> String {
    format!("{label}-{:016x}", rand::random::<u64>())
}

fn key(id: &str) -> RawItem {
    item(&[("id", sv(id))])
}

/// The app's login: a PutItem.
fn login(id: &str, user: Option<&str>, last_activity: i64, timeout_minutes: i64) -> RawItem {
    let mut i = item(&[
        ("id", sv(id)),
        ("isCurrent", AttributeValue::Bool(true)),
        ("lastActivity", sv(&iso(last_activity))),
        ("sessionTimeout", nv(timeout_minutes)),
        ("ipAddress", sv("203.0.113.7")),
    ]);
    if let Some(u) = user {
        i.insert("userId".into(), sv(u));
    }
    i
}

async fn world(name: &str) -> LayoutWorld {
    LayoutWorld::new(name, IS_CURRENT_EXAMPLE).await
}

#[tokio::test]
async fn idle_expiry_from_iso_last_activity_and_a_timeout_in_minutes() {
    let mut w = world("cu-idle").await;
    let (idle, busy) = (sid("idle"), sid("busy"));
    // Both last active 2 h ago: 60 minutes of timeout is past, 480 is not.
    w.put(login(&idle, Some("u-1"), now() - 120 * M, 60)).await;
    w.put(login(&busy, Some("u-1"), now() - 120 * M, 480)).await;
    w.step_ok().await;

    let report = w.cleanup().await;
    assert_eq!(report.expired.idle, 1, "{report:#?}");
    assert_eq!(report.expired_total(), 1, "{report:#?}");
    assert_eq!(report.items_read, 1, "{report:#?}");
    let ended = w.get(key(&idle)).await.expect("kept for audit");
    assert_eq!(ended["isCurrent"], AttributeValue::Bool(false));
    let expired_at = ended["expiredAt"].as_s().expect("expiredAt is ISO-8601");
    let t = chrono::DateTime::parse_from_rfc3339(expired_at).expect("ISO-8601");
    assert!((t.timestamp() - now()).abs() < 60, "{expired_at}");
    let kept = w.get(key(&busy)).await.expect("exists");
    assert_eq!(kept["isCurrent"], AttributeValue::Bool(true));
    assert!(!kept.contains_key("expiredAt"));

    // The end comes back on the stream as a benign end: no alert, and the due entry is gone.
    w.step_ok().await;
    assert!(w.alerts().await.is_empty());
    let again = w.cleanup().await;
    assert_eq!(again.examined, 0, "{again:#?}");
    w.env.teardown().await;
}

#[tokio::test]
async fn a_session_touched_between_read_and_write_survives() {
    let mut w = world("cu-touch").await;
    let (victim, other) = (sid("victim"), sid("other"));
    w.put(login(&victim, Some("u-1"), now() - 120 * M, 60))
        .await;
    w.put(login(&other, Some("u-2"), now() - 120 * M, 60)).await;
    w.step_ok().await;
    let report = w
        .cleanup_touching(&victim, key(&victim), ("lastActivity", sv(&iso(now()))))
        .await;
    assert_eq!(report.skipped_touched, 1, "{report:#?}");
    assert_eq!(report.expired.idle, 1, "{report:#?}");
    let v = w.get(key(&victim)).await.expect("exists");
    assert_eq!(v["isCurrent"], AttributeValue::Bool(true), "{v:?}");
    assert!(!v.contains_key("expiredAt"));
    // Re-filed where it is due now: the next run does not read it again.
    let again = w.cleanup().await;
    assert_eq!(again.examined, 0, "{again:#?}");
    w.env.teardown().await;
}

#[tokio::test]
async fn anomalies_on_the_custom_table() {
    let mut w = world("cu-anomalies").await;
    let (bleed, fix, zombie) = (sid("bleed"), sid("fix"), sid("zombie"));
    w.put(login(&bleed, Some("u-1"), now(), 480)).await;
    w.put(login(&fix, None, now(), 480)).await;
    w.put(login(&zombie, Some("u-3"), now(), 480)).await;
    w.update(key(&zombie), &[("isCurrent", AttributeValue::Bool(false))])
        .await;
    w.step_ok().await;
    assert!(w.alerts().await.is_empty(), "login and logout are benign");

    w.update(key(&bleed), &[("userId", sv("u-2"))]).await;
    w.update(key(&fix), &[("userId", sv("u-9"))]).await;
    // lastActivity advancing while isCurrent = false.
    w.update(key(&zombie), &[("lastActivity", sv(&iso(now() + 5)))])
        .await;
    w.step_ok().await;
    let mut kinds: Vec<(String, String)> = w
        .alerts()
        .await
        .iter()
        .map(|a| {
            (
                a.doc["type"].as_str().unwrap_or("").to_string(),
                a.attributes["severity"].clone(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            ("ACTIVITY_AFTER_TERMINATION".into(), "HIGH".into()),
            ("SESSION_FIXATION".into(), "MEDIUM".into()),
            ("SESSION_USER_CHANGED".into(), "CRITICAL".into()),
        ]
    );
    w.env.teardown().await;
}

#[tokio::test]
async fn logout_everywhere_sets_is_current_false_on_every_session_of_the_user() {
    let mut w = world("cu-cascade").await;
    let mine: Vec<String> = (0..3).map(|i| sid(&format!("m{i}"))).collect();
    let other = sid("other");
    for s in &mine {
        w.put(login(s, Some("u-1"), now(), 480)).await;
    }
    w.put(login(&other, Some("u-2"), now(), 480)).await;
    w.step_ok().await;
    let report = w.revoke_user("u-1").await;
    assert_eq!(report.ended.values().sum::<u64>(), 3, "{report:#?}");
    for s in &mine {
        let i = w.get(key(s)).await.expect("kept");
        assert_eq!(i["isCurrent"], AttributeValue::Bool(false));
        assert!(i.contains_key("expiredAt"));
    }
    let o = w.get(key(&other)).await.expect("kept");
    assert_eq!(o["isCurrent"], AttributeValue::Bool(true));
    w.env.teardown().await;
}

#[tokio::test]
async fn benign_traffic_on_the_custom_table_raises_nothing() {
    let mut w = world("cu-benign").await;
    let (a, b) = (sid("a"), sid("b"));
    w.put(login(&a, Some("u-1"), now() - 60, 480)).await;
    w.put(login(&b, Some("u-2"), now() - 60, 480)).await;
    w.step_ok().await;
    // Requests: lastActivity moves forward; a multi-tab race writes the same value twice.
    for t in [now(), now(), now() + 1] {
        w.update(key(&a), &[("lastActivity", sv(&iso(t)))]).await;
    }
    // Logout, then a login again under a new ID; the app deletes an old ended row.
    w.update(
        key(&a),
        &[
            ("isCurrent", AttributeValue::Bool(false)),
            ("expiredAt", sv(&iso(now()))),
        ],
    )
    .await;
    w.put(login(&sid("a2"), Some("u-1"), now(), 480)).await;
    w.delete(key(&b)).await;
    w.step_ok().await;
    assert!(w.alerts().await.is_empty());
    assert!(w.env.dead_letters().await.is_empty());
    w.env.teardown().await;
}
