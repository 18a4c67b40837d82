//! The `authjs` layout end to end on DynamoDB Local: the Auth.js (NextAuth) DynamoDB adapter's
//! single table, written exactly as the adapter writes it, and the three workers running with
//! `SESSION_LAYOUT=authjs`.
//!
//! The item formats are those of `@auth/dynamodb-adapter` (`packages/adapter-dynamodb/src/index.ts`
//! in github.com/nextauthjs/next-auth): `createSession` puts `{pk: "USER#<userId>",
//! sk: "SESSION#<sessionToken>", GSI1PK/GSI1SK: "SESSION#<sessionToken>", type: "SESSION",
//! sessionToken, userId, expires}` where `format.to` writes `expires` as `Date / 1000` (a
//! fractional number); `updateSession` rewrites `expires`; `deleteSession` deletes the item.
//! Users (`sk = USER#<id>`, `type USER`), accounts (`sk = ACCOUNT#<provider>#<id>`, `type
//! ACCOUNT`) and verification tokens (`pk = VT#<identifier>`, `type VT`) share the table.

use sessionwarden_tests::{item, nv, sv, ttl_remove_of, LayoutWorld, RawItem};

const H: i64 = 3600;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn token(label: &str) -> String {
    format!("{label}-{:032x}", rand::random::<u128>())
}

fn key(user: &str, token: &str) -> RawItem {
    item(&[
        ("pk", sv(&format!("USER#{user}"))),
        ("sk", sv(&format!("SESSION#{token}"))),
    ])
}

/// `createSession`: `expires` as `Date / 1000`, with milliseconds.
fn session(user: &str, token: &str, expires: i64) -> RawItem {
    let mut i = key(user, token);
    i.extend(item(&[
        ("GSI1PK", sv(&format!("SESSION#{token}"))),
        ("GSI1SK", sv(&format!("SESSION#{token}"))),
        ("type", sv("SESSION")),
        ("sessionToken", sv(token)),
        ("userId", sv(user)),
        ("expires", nv(format!("{expires}.417"))),
    ]));
    i
}

/// `createUser`.
fn user_item(user: &str) -> RawItem {
    let email = format!("{user}@example.com");
    item(&[
        ("pk", sv(&format!("USER#{user}"))),
        ("sk", sv(&format!("USER#{user}"))),
        ("GSI1PK", sv(&format!("USER#{email}"))),
        ("GSI1SK", sv(&format!("USER#{email}"))),
        ("type", sv("USER")),
        ("id", sv(user)),
        ("email", sv(&email)),
        ("emailVerified", sv("2026-11-20T10:00:00.000Z")),
    ])
}

/// `linkAccount`.
fn account_item(user: &str) -> RawItem {
    item(&[
        ("pk", sv(&format!("USER#{user}"))),
        ("sk", sv(&format!("ACCOUNT#github#{user}-gh"))),
        ("GSI1PK", sv("ACCOUNT#github")),
        ("GSI1SK", sv(&format!("ACCOUNT#{user}-gh"))),
        ("type", sv("ACCOUNT")),
        ("userId", sv(user)),
        ("provider", sv("github")),
        ("providerAccountId", sv(&format!("{user}-gh"))),
        ("access_token", sv("gho_secret")),
    ])
}

/// `createVerificationToken`.
fn verification_item(email: &str) -> RawItem {
    item(&[
        ("pk", sv(&format!("VT#{email}"))),
        ("sk", sv("VT#vt-123")),
        ("type", sv("VT")),
        ("identifier", sv(email)),
        ("token", sv("vt-123")),
        ("expires", nv(now() + H)),
    ])
}

async fn world(name: &str) -> LayoutWorld {
    LayoutWorld::new(name, "authjs").await
}

#[tokio::test]
async fn users_accounts_and_tokens_are_skipped_never_dead_lettered_nor_alerted_on() {
    let mut w = world("aj-mixed").await;
    for u in ["u-1", "u-2"] {
        w.put(user_item(u)).await;
        w.put(account_item(u)).await;
        w.put(session(u, &token(u), now() + H)).await;
    }
    w.put(verification_item("u-3@example.com")).await;
    // The adapter's updateUser and deleteUser, and a token used.
    w.update(
        item(&[("pk", sv("USER#u-1")), ("sk", sv("USER#u-1"))]),
        &[("name", sv("Ada"))],
    )
    .await;
    w.delete(item(&[
        ("pk", sv("VT#u-3@example.com")),
        ("sk", sv("VT#vt-123")),
    ]))
    .await;
    w.step_ok().await;
    assert!(w.alerts().await.is_empty());
    assert!(w.env.dead_letters().await.is_empty());
    let m = w.env.metrics().await;
    sessionwarden_tests::assert_metrics(
        &m,
        &[
            // 2 users, 2 accounts, 1 token, 1 user update, 1 token delete.
            ("StreamRecordsSkipped", &[("Reason", "not_a_session")], 7.0),
            ("StreamRecordsMalformed", &[], 0.0),
        ],
    );
    // Only sessions are filed, one due entry each; no user list: the USER# partition is one.
    assert_eq!(w.state_items("due#").await.len(), 2);
    assert!(w.state_items("member#").await.is_empty());
    w.env.teardown().await;
}

#[tokio::test]
async fn one_token_under_two_users_is_a_bleed_with_exactly_one_critical_alert() {
    let mut w = world("aj-bleed").await;
    let t = token("shared");
    w.put(session("u-1", &t, now() + H)).await;
    w.step_ok().await;
    // The NextAuth incident: the same sessionToken written under a second user's partition.
    w.put(session("u-2", &t, now() + H)).await;
    w.step_ok().await;
    let alerts = w.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    alerts[0].assert_kind("SESSION_USER_CHANGED", "CRITICAL");
    let text = &alerts[0].raw;
    assert!(!text.contains(&t), "the raw token leaked: {text}");
    assert!(text.contains(w.env.key.reference(&t).as_str()), "{text}");
    // Contained: both items that carry the token are gone (found through GSI1).
    assert!(w.get(key("u-1", &t)).await.is_none());
    assert!(w.get(key("u-2", &t)).await.is_none());
    w.env.teardown().await;
}

#[tokio::test]
async fn updating_a_lapsed_session_is_activity_after_termination() {
    let mut w = world("aj-zombie").await;
    let t = token("zombie");
    w.put(session("u-1", &t, now() - 600)).await;
    w.step_ok().await;
    // updateSession on a session past its expires (an adapter that skipped its expiry check).
    w.update(key("u-1", &t), &[("expires", nv(now() + H))])
        .await;
    w.step_ok().await;
    let alerts = w.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].doc["type"], "ACTIVITY_AFTER_TERMINATION");
    w.env.teardown().await;
}

#[tokio::test]
async fn benign_traffic_raises_nothing() {
    let mut w = world("aj-benign").await;
    let (a, b) = (token("a"), token("b"));
    w.put(session("u-1", &a, now() + H)).await;
    w.put(session("u-2", &b, now() + H)).await;
    w.step_ok().await;
    for i in 1..=3 {
        w.update(key("u-1", &a), &[("expires", nv(now() + H + i))])
            .await;
    }
    // Sign out (deleteSession), sign in again with a new token.
    w.delete(key("u-1", &a)).await;
    w.put(session("u-1", &token("a2"), now() + H)).await;
    w.step_ok().await;
    let insert_of_b = w
        .last_records
        .iter()
        .find(|r| r["dynamodb"]["Keys"]["pk"]["S"] == "USER#u-1")
        .cloned()
        .expect("a record");
    let removal = ttl_remove_of(&insert_of_b, "999999999999999999999");
    assert!(w
        .invoke(&sessionwarden_local::streams::lambda_event(vec![removal]))
        .await
        .batch_item_failures
        .is_empty());
    assert!(w.alerts().await.is_empty());
    assert!(w.env.dead_letters().await.is_empty());
    w.env.teardown().await;
}

#[tokio::test]
async fn logout_everywhere_reads_the_user_partition_and_touches_only_sessions() {
    let w = world("aj-cascade").await;
    let mine: Vec<String> = (0..3).map(|i| token(&format!("m{i}"))).collect();
    w.put(user_item("u-1")).await;
    w.put(account_item("u-1")).await;
    for t in &mine {
        w.put(session("u-1", t, now() + H)).await;
    }
    let other = token("other");
    w.put(session("u-2", &other, now() + H)).await;
    let report = w.revoke_user("u-1").await;
    assert_eq!(report.ended.values().sum::<u64>(), 3, "{report:#?}");
    for t in &mine {
        assert!(w.get(key("u-1", t)).await.is_none());
    }
    assert!(w.get(key("u-2", &other)).await.is_some());
    assert!(w
        .get(item(&[("pk", sv("USER#u-1")), ("sk", sv("USER#u-1"))]))
        .await
        .is_some());
    assert_eq!(
        w.get(item(&[
            ("pk", sv("USER#u-1")),
            ("sk", sv("ACCOUNT#github#u-1-gh"))
        ]))
        .await
        .map(|i| i["type"].clone()),
        Some(sv("ACCOUNT"))
    );
    w.env.teardown().await;
}

#[tokio::test]
async fn cleanup_ends_sessions_past_their_expires_before_the_ttl_does() {
    let mut w = world("aj-cleanup").await;
    let old = token("old");
    let fresh = token("fresh");
    w.put(user_item("u-1")).await;
    w.put(session("u-1", &old, now() - 2 * H)).await;
    w.put(session("u-1", &fresh, now() + 4 * H)).await;
    w.step_ok().await;
    let report = w.cleanup().await;
    assert_eq!(report.expired.ttl, 1, "{report:#?}");
    assert_eq!(report.items_read, 1, "{report:#?}");
    assert!(w.get(key("u-1", &old)).await.is_none());
    assert!(w.get(key("u-1", &fresh)).await.is_some());
    w.env.teardown().await;
}
