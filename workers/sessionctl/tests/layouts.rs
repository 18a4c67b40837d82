//! `sessionctl layout check` and `sessionctl backfill` against the emulator, on tables written
//! as the libraries write them: connect-dynamodb (`id = sess:<sid>`, `expires` in epoch
//! seconds, `type = connect-session`, `sess` the session as a JSON string) and the Auth.js
//! DynamoDB adapter (`pk = USER#<user>`, `sk = SESSION#<token>`, `type = SESSION`, `expires`,
//! with its user and account items in the same table).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Command, Output};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, WriteRequest,
};
use sessionwarden_aws::AwsClients;
use sessionwarden_core::layout::Layout;
use sessionwarden_core::session::SessionId;
use sessionwarden_core::session_ref::SessionRefKey;
use sessionwarden_tests::TEST_REF_KEY;

type Item = HashMap<String, AttributeValue>;

/// Bucket width the backfill tests run with: one day, so a re-run a few seconds later files a
/// past-due session in the same bucket.
const BUCKET: i64 = 86_400;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn key() -> SessionRefKey {
    SessionRefKey::new(TEST_REF_KEY.as_bytes().to_vec()).unwrap()
}

/// An item as connect-dynamodb's `set` writes it.
fn connect_item(sid: &str, expires: i64, sess: &str) -> Item {
    HashMap::from([
        ("id".into(), s(&format!("sess:{sid}"))),
        ("expires".into(), n(expires)),
        ("type".into(), s("connect-session")),
        ("sess".into(), s(sess)),
    ])
}

/// A session item as the Auth.js DynamoDB adapter writes it, expiring at `expires`.
fn authjs_session(user: &str, token: &str, expires: i64) -> Item {
    HashMap::from([
        ("pk".into(), s(&format!("USER#{user}"))),
        ("sk".into(), s(&format!("SESSION#{token}"))),
        ("GSI1PK".into(), s(&format!("SESSION#{token}"))),
        ("GSI1SK".into(), s(&format!("SESSION#{token}"))),
        ("type".into(), s("SESSION")),
        ("userId".into(), s(user)),
        ("sessionToken".into(), s(token)),
        ("expires".into(), n(expires)),
    ])
}

/// An express-session `sess` with a cookie and, if given, a passport user.
fn sess(user: Option<&str>) -> String {
    let mut v = serde_json::json!({
        "cookie": {"originalMaxAge": 86_400_000, "httpOnly": true, "path": "/"},
    });
    if let Some(u) = user {
        v["passport"] = serde_json::json!({ "user": u });
    }
    v.to_string()
}

struct World {
    clients: AwsClients,
    sessions_table: String,
    state_table: String,
}

impl World {
    /// A connect-dynamodb table as the library creates it (hash key `id`, no TTL: TTL on
    /// `expires` would let DynamoDB Local delete the past-due items at once), and a state table.
    async fn connect(name: &str) -> Self {
        let prefix = sessionwarden_tests::unique(name);
        let clients = AwsClients::local(&sessionwarden_tests::sdk_config().await, None);
        let sessions_table = format!("{prefix}-sessions");
        clients
            .dynamodb
            .create_table()
            .table_name(&sessions_table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("CreateTable");
        let state_table = format!("{prefix}-state");
        sessionwarden_local::provision::create_state_table(&clients, &state_table)
            .await
            .expect("state table");
        World {
            clients,
            sessions_table,
            state_table,
        }
    }

    /// The Auth.js adapter's table (`pk`, `sk`, `GSI1`), as `create_layout_table` shapes it.
    async fn authjs(name: &str) -> Self {
        let prefix = sessionwarden_tests::unique(name);
        let clients = AwsClients::local(&sessionwarden_tests::sdk_config().await, None);
        let sessions_table = format!("{prefix}-sessions");
        sessionwarden_local::provision::create_layout_table(
            &clients,
            &sessions_table,
            &Layout::parse("authjs").unwrap(),
        )
        .await
        .expect("authjs table");
        World {
            clients,
            state_table: format!("{prefix}-state"),
            sessions_table,
        }
    }

    async fn put(&self, items: Vec<Item>) {
        for chunk in items.chunks(25) {
            let requests = chunk
                .iter()
                .map(|i| {
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(i.clone()))
                                .build()
                                .unwrap(),
                        )
                        .build()
                })
                .collect();
            let out = self
                .clients
                .dynamodb
                .batch_write_item()
                .request_items(&self.sessions_table, requests)
                .send()
                .await
                .expect("BatchWriteItem");
            assert!(out.unprocessed_items.is_none_or(|u| u.is_empty()));
        }
    }

    /// Every item of the state table, keyed by (pk, sk).
    async fn state(&self) -> BTreeMap<(String, String), Item> {
        let mut out = BTreeMap::new();
        let mut start = None;
        loop {
            let page = self
                .clients
                .dynamodb
                .scan()
                .table_name(&self.state_table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("Scan");
            for item in page.items() {
                let k = |a: &str| item[a].as_s().unwrap().clone();
                out.insert((k("pk"), k("sk")), item.clone());
            }
            start = page.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return out;
            }
        }
    }

    /// The workers' environment for a connect-dynamodb deployment.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SESSIONS_TABLE", self.sessions_table.clone()),
            ("STATE_TABLE", self.state_table.clone()),
            ("SESSION_LAYOUT", "connect-dynamodb".into()),
            ("SESSION_REF_KEY", TEST_REF_KEY.into()),
            ("DUE_INDEX_BUCKET_SECONDS", BUCKET.to_string()),
        ]
    }

    async fn teardown(self) {
        for t in [&self.sessions_table, &self.state_table] {
            let _ = self
                .clients
                .dynamodb
                .delete_table()
                .table_name(t)
                .send()
                .await;
        }
    }
}

/// Runs sessionctl with `env` on top of the emulator endpoints, and nothing inherited that
/// could change its configuration.
fn sessionctl(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sessionctl"));
    cmd.args(args)
        .envs(sessionwarden_tests::endpoints().env())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test");
    for v in [
        "SESSIONS_TABLE",
        "STATE_TABLE",
        "SESSION_LAYOUT",
        "SESSION_REF_KEY",
        "DUE_INDEX_BUCKET_SECONDS",
    ] {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd.output().expect("run sessionctl")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The final summary line's count of `what` ("items scanned", "sessions filed", ...).
fn count(out: &str, what: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.starts_with("backfill: "))
        .unwrap_or_else(|| panic!("no summary line in:\n{out}"));
    line.trim_start_matches("backfill: ")
        .split(", ")
        .find_map(|part| part.strip_suffix(what).map(|n| n.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no {what:?} in {line:?}"))
}

#[tokio::test]
async fn layout_check_picks_connect_dynamodb_by_reference_and_lists_the_unreadable() {
    let w = World::connect("check-connect").await;
    let t = now();
    let mut items: Vec<Item> = (0..12)
        .map(|i| {
            let user = format!("u-{i}");
            connect_item(
                &format!("raw-sid-{i:02}-secret"),
                t + 3600 + i,
                &sess((i % 3 != 0).then_some(user.as_str())),
            )
        })
        .collect();
    items.push(connect_item("raw-sid-bad-secret", t + 600, "not json"));
    // Not a session: another prefix in the same table.
    items.push(HashMap::from([
        ("id".into(), s("lock:nightly-report")),
        ("owner".into(), s("cron")),
    ]));
    w.put(items).await;

    let table = w.sessions_table.clone();
    let out = sessionctl(
        &["layout", "check", "--table", &table],
        &[("SESSION_REF_KEY", TEST_REF_KEY.into())],
    );
    sessionwarden_tests::assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains(
            "connect-dynamodb fits best: 12 of 14 items are sessions, 1 is not a session, 1 unreadable"
        ),
        "{text}"
    );
    assert!(
        text.contains("Set SESSION_LAYOUT=connect-dynamodb"),
        "{text}"
    );
    assert!(
        !text.contains("raw-sid"),
        "a raw session ID is in the output:\n{text}"
    );
    // The unreadable item, by reference, with the reason.
    let bad = key().reference("raw-sid-bad-secret").to_string();
    let line = text
        .lines()
        .find(|l| l.contains(&bad))
        .unwrap_or_else(|| panic!("{bad} not listed:\n{text}"));
    assert!(line.contains("attribute sess is not JSON"), "{line}");
    // Five sessions shown, by reference, with what was read: user, status, due time (ISO-8601).
    let shown: Vec<&str> = text
        .lines()
        .filter(|l| {
            (0..12).any(|i| l.contains(key().reference(&format!("raw-sid-{i:02}-secret")).as_str()))
        })
        .collect();
    assert_eq!(shown.len(), 5, "{text}");
    for l in &shown {
        assert!(l.contains("ACTIVE") && l.contains("Z"), "{l}");
    }
    // The presets' rows: native and authjs read nothing here.
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["native", "0", "0", "14"]),
        "{text}"
    );

    // Without SESSION_REF_KEY, the references are this run's own, and said to be.
    let out = sessionctl(
        &["layout", "check", "--table", &table, "--sample", "5"],
        &[],
    );
    sessionwarden_tests::assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains("for this run only"), "{text}");
    assert!(text.contains("sampled 5 items"), "{text}");
    assert!(!text.contains("raw-sid"), "{text}");
    w.teardown().await;
}

#[tokio::test]
async fn layout_check_picks_authjs() {
    let w = World::authjs("check-authjs").await;
    let t = now();
    let session = |user: &str, token: &str| authjs_session(user, token, t + 30 * 86_400);
    w.put(vec![
        session("u-1", "tok-secret-1"),
        session("u-1", "tok-secret-2"),
        session("u-2", "tok-secret-3"),
        HashMap::from([
            ("pk".into(), s("USER#u-1")),
            ("sk".into(), s("USER#u-1")),
            ("type".into(), s("USER")),
            ("id".into(), s("u-1")),
            ("email".into(), s("ann@example.com")),
        ]),
        HashMap::from([
            ("pk".into(), s("USER#u-1")),
            ("sk".into(), s("ACCOUNT#github#4242")),
            ("GSI1PK".into(), s("ACCOUNT#github")),
            ("GSI1SK".into(), s("ACCOUNT#4242")),
            ("type".into(), s("ACCOUNT")),
            ("userId".into(), s("u-1")),
        ]),
    ])
    .await;
    let out = sessionctl(&["layout", "check", "--table", &w.sessions_table], &[]);
    sessionwarden_tests::assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains("authjs fits: 3 of 5 items are sessions, 2 are not sessions, 0 unreadable"),
        "{text}"
    );
    assert!(text.contains("Set SESSION_LAYOUT=authjs"), "{text}");
    assert!(!text.contains("tok-secret"), "{text}");
    w.teardown().await;
}

/// A seeded session: its raw ID, its user, and whether it is past due.
type Seeded = (String, Option<String>, bool);

/// 50 connect-dynamodb sessions, every fifth past due, three in four with a user; plus one
/// item that is not a session and one whose `sess` is not JSON. Returns the items and the
/// sessions' (sid, user, past due).
fn backfill_items(t: i64) -> (Vec<Item>, Vec<Seeded>) {
    let mut items = Vec::new();
    let mut sessions = Vec::new();
    for i in 0..50 {
        let sid = format!("raw-sid-{i:02}-secret");
        let user = (i % 4 != 0).then(|| format!("u-{}", i % 6));
        let past = i % 5 == 0;
        let expires = if past {
            t - 600 - i
        } else {
            t + 3600 * (1 + i % 7)
        };
        items.push(connect_item(&sid, expires, &sess(user.as_deref())));
        sessions.push((sid, user, past));
    }
    items.push(connect_item("raw-sid-bad-secret", t + 600, "not json"));
    items.push(HashMap::from([("id".into(), s("lock:nightly-report"))]));
    (items, sessions)
}

type Entries = BTreeMap<(String, String), Item>;

fn due(state: &Entries) -> Vec<(&(String, String), &Item)> {
    state
        .iter()
        .filter(|((pk, _), _)| pk.starts_with("due#") && pk != "due#watermark")
        .collect()
}

fn members(state: &Entries) -> BTreeSet<(String, String)> {
    state
        .keys()
        .filter(|(pk, _)| pk.starts_with("member#"))
        .cloned()
        .collect()
}

/// The index holds exactly one due entry per session and one user entry per session with a
/// user, keyed by digest; past-due sessions are filed where the next cleanup run reads.
fn assert_indexed(state: &Entries, sessions: &[(String, Option<String>, bool)], started: i64) {
    let k = key();
    let digest = |sid: &str| k.state_key(&SessionId::new(sid));
    let due = due(state);
    let by_sk: BTreeMap<&str, &Item> = due.iter().map(|((_, sk), i)| (sk.as_str(), *i)).collect();
    assert_eq!(due.len(), sessions.len(), "one due entry per session");
    assert_eq!(by_sk.len(), sessions.len());
    for (sid, _, past) in sessions {
        let entry = by_sk
            .get(digest(sid).as_str())
            .unwrap_or_else(|| panic!("no due entry for {}", k.reference(sid)));
        let due_at: i64 = entry["dueAt"].as_n().unwrap().parse().unwrap();
        if *past {
            // Filed in its own bucket, or if that is older, in the last bucket cleanup has
            // finished, which its next run re-reads.
            let bucket: i64 = entry["pk"]
                .as_s()
                .unwrap()
                .split('#')
                .nth(1)
                .unwrap()
                .parse()
                .unwrap();
            assert!(due_at < started, "the due time is kept as it is");
            let want = due_at
                .div_euclid(BUCKET)
                .max(started.div_euclid(BUCKET) - 1);
            assert_eq!(bucket, want, "filed where cleanup reads next");
        }
        assert_eq!(entry["id"].as_s().unwrap(), sid);
    }
    let expected: BTreeSet<(String, String)> = sessions
        .iter()
        .filter_map(|(sid, user, _)| {
            user.as_ref()
                .map(|u| (format!("member#user#{u}"), digest(sid)))
        })
        .collect();
    assert_eq!(members(state), expected);
    let watermark = &state[&("due#watermark".to_string(), "due".to_string())];
    let bucket: i64 = watermark["bucket"].as_n().unwrap().parse().unwrap();
    assert!(
        bucket <= now().div_euclid(BUCKET),
        "cleanup reads the buckets filed into"
    );
    // No raw ID in any key of the state table.
    for (pk, sk) in state.keys() {
        assert!(
            !pk.contains("raw-sid") && !sk.contains("raw-sid"),
            "{pk} {sk}"
        );
    }
}

#[tokio::test]
async fn backfill_files_every_session_once_and_reruns_change_nothing() {
    let w = World::connect("backfill").await;
    let started = now();
    let (items, sessions) = backfill_items(started);
    w.put(items).await;
    let env = w.env();

    let out = sessionctl(&["backfill"], &env);
    sessionwarden_tests::assert_success(&out);
    let text = stdout(&out);
    assert_eq!(count(&text, "items scanned"), 52, "{text}");
    assert_eq!(count(&text, "sessions filed"), 50, "{text}");
    assert_eq!(count(&text, "not sessions"), 1, "{text}");
    assert_eq!(count(&text, "unreadable"), 1, "{text}");
    let bad = key().reference("raw-sid-bad-secret").to_string();
    assert!(
        text.lines()
            .any(|l| l.contains(&bad) && l.contains("attribute sess is not JSON")),
        "the unreadable item is listed by reference:\n{text}"
    );
    assert!(!text.contains("raw-sid"), "{text}");
    let first = w.state().await;
    assert_indexed(&first, &sessions, started);
    for seg in 0..4 {
        let c = &first[&(
            format!("backfill#{}", w.sessions_table),
            format!("segment#{seg}"),
        )];
        assert_eq!(c["done"].as_bool(), Ok(&true));
    }

    // Every cursor is done: a second run does nothing.
    let out = sessionctl(&["backfill"], &env);
    sessionwarden_tests::assert_success(&out);
    let text = stdout(&out);
    assert_eq!(count(&text, "items scanned"), 0, "{text}");
    assert!(text.contains("nothing to do"), "{text}");
    assert_eq!(w.state().await, first, "a second run writes nothing");

    // --restart scans again and files the same entries.
    let out = sessionctl(&["backfill", "--restart"], &env);
    sessionwarden_tests::assert_success(&out);
    let text = stdout(&out);
    assert_eq!(count(&text, "items scanned"), 52, "{text}");
    let again = w.state().await;
    assert_indexed(&again, &sessions, started);
    let keys = |e: &Entries| e.keys().cloned().collect::<BTreeSet<_>>();
    if started.div_euclid(BUCKET) == now().div_euclid(BUCKET) {
        assert_eq!(keys(&again), keys(&first), "--restart changes no entry");
    }

    // A native deployment has nothing to backfill.
    let native: Vec<(&str, String)> = env
        .iter()
        .filter(|(k, _)| *k != "SESSION_LAYOUT")
        .cloned()
        .collect();
    let out = sessionctl(&["backfill"], &native);
    sessionwarden_tests::assert_success(&out);
    assert!(
        stdout(&out).contains("nothing to backfill"),
        "{}",
        stdout(&out)
    );
    w.teardown().await;
}

#[tokio::test]
async fn an_interrupted_backfill_resumes_from_its_cursors() {
    let w = World::connect("backfill-resume").await;
    let started = now();
    let (items, sessions) = backfill_items(started);
    w.put(items).await;
    let env = w.env();
    let args = ["backfill", "--segments", "2", "--page-size", "5"];

    let mut interrupted = args.to_vec();
    interrupted.extend(["--max-pages", "1"]);
    let out = sessionctl(&interrupted, &env);
    sessionwarden_tests::assert_success(&out);
    let text = stdout(&out);
    let first = count(&text, "items scanned");
    assert!((1..=5).contains(&first), "{text}");
    assert!(text.contains("stopped after 1 page "), "{text}");
    let partial = w.state().await;
    assert!(due(&partial).len() <= 5, "only the first page is filed");
    assert!(
        partial
            .keys()
            .any(|(pk, sk)| pk.starts_with("backfill#") && (sk == "segment#0" || sk == "segment#1")),
        "the cursor is stored"
    );

    // A different segment count cannot resume these cursors.
    let out = sessionctl(&["backfill", "--segments", "3"], &env);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--segments 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = sessionctl(&args, &env);
    sessionwarden_tests::assert_success(&out);
    let text = stdout(&out);
    assert_eq!(
        first + count(&text, "items scanned"),
        52,
        "the second run scans only what the first did not:\n{text}"
    );
    assert_indexed(&w.state().await, &sessions, started);
    w.teardown().await;
}

/// The reference in an alert leads on-call back to the item on any layout: `resolve` reads the
/// table through `SESSION_LAYOUT`, and prints the raw ID (without its `sess:` prefix) only on
/// request.
#[tokio::test]
async fn resolve_finds_a_connect_dynamodb_session_by_its_reference() {
    let w = World::connect("resolve-connect").await;
    let t = now();
    w.put(vec![
        connect_item("raw-sid-wanted", t + 3600, &sess(Some("u-1"))),
        connect_item("raw-sid-other", t + 3600, &sess(Some("u-2"))),
    ])
    .await;
    let reference = key().reference("raw-sid-wanted").to_string();
    let env = w.env();
    let out = sessionctl(&["resolve", &reference], &env);
    sessionwarden_tests::assert_success(&out);
    let text = stdout(&out);
    assert!(text.starts_with("raw-sid-wanted\t"), "{text}");
    assert!(text.contains("user=u-1"), "{text}");
    assert!(!text.contains("raw-sid-other"), "{text}");
    let missing = sessionctl(&["resolve", "000000000000"], &env);
    assert!(!missing.status.success());
    w.teardown().await;
}

/// `sessionctl revoke --ref`: the session is found by the reference an alert shows, and its
/// cascade request goes to the queue, while nothing printed holds the raw session ID. On
/// connect-dynamodb and Auth.js tables (issue 12).
#[tokio::test]
async fn revoke_by_reference_requests_the_session_cascade_without_printing_its_id() {
    let t = now();
    let connect = World::connect("revoke-ref-connect").await;
    connect
        .put(vec![
            connect_item("raw-sid-wanted", t + 3600, &sess(Some("u-1"))),
            connect_item("raw-sid-other", t + 3600, &sess(Some("u-2"))),
        ])
        .await;
    let authjs = World::authjs("revoke-ref-authjs").await;
    let token = |user: &str, token: &str| authjs_session(user, token, t + 30 * 86_400);
    authjs
        .put(vec![
            token("u-1", "raw-sid-wanted"),
            // A bleed: the same token under a second user. Still one session to revoke.
            token("u-3", "raw-sid-wanted"),
            token("u-2", "raw-sid-other"),
        ])
        .await;
    for (w, layout) in [(&connect, "connect-dynamodb"), (&authjs, "authjs")] {
        let queue = w
            .clients
            .sqs
            .create_queue()
            .queue_name(sessionwarden_tests::unique("revoke-ref"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let mut env = w.env();
        env.retain(|(k, _)| *k != "SESSION_LAYOUT");
        env.push(("SESSION_LAYOUT", layout.into()));
        env.push(("CASCADE_QUEUE_URL", queue.clone()));
        let reference = key().reference("raw-sid-wanted").to_string();
        let out = sessionctl(
            &["revoke", "--ref", &reference, "--reason", "stolen laptop"],
            &env,
        );
        sessionwarden_tests::assert_success(&out);
        let printed = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        assert!(!printed.contains("raw-sid"), "{layout}: {printed}");
        assert!(
            printed.contains(&reference) && printed.contains("user=u-"),
            "{layout}: {printed}"
        );
        let got = w
            .clients
            .sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let bodies: Vec<serde_json::Value> = got
            .messages()
            .iter()
            .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
            .collect();
        assert_eq!(bodies.len(), 1, "{layout}: {bodies:?}");
        assert_eq!(bodies[0]["scope"], "session", "{layout}");
        assert_eq!(bodies[0]["sessionId"], "raw-sid-wanted", "{layout}");
        assert_eq!(bodies[0]["reason"], "stolen laptop", "{layout}");
        let missing = sessionctl(&["revoke", "--ref", "000000000000", "--reason", "x"], &env);
        assert!(!missing.status.success(), "{layout}");
    }
    connect.teardown().await;
    authjs.teardown().await;
}

/// `sessionctl sessions --user`: a user's sessions by reference, with the parsed user agent, on
/// a connect-dynamodb table (its member lists filled by `backfill`) and an Auth.js table (the
/// user's partition is the list); no raw session ID is printed (issue 12).
#[tokio::test]
async fn sessions_lists_a_users_sessions_by_reference_on_two_layouts() {
    let t = now();
    let connect = World::connect("sessions-connect").await;
    connect
        .put(vec![
            connect_item("raw-sid-a1", t + 3600, &sess(Some("u-1"))),
            connect_item("raw-sid-a2", t + 7200, &sess(Some("u-1"))),
            connect_item("raw-sid-b1", t + 3600, &sess(Some("u-2"))),
        ])
        .await;
    sessionwarden_tests::assert_success(&sessionctl(&["backfill"], &connect.env()));
    let authjs = World::authjs("sessions-authjs").await;
    let token = |user: &str, token: &str| authjs_session(user, token, t + 30 * 86_400);
    authjs
        .put(vec![
            token("u-1", "raw-sid-a1"),
            token("u-1", "raw-sid-a2"),
            token("u-2", "raw-sid-b1"),
        ])
        .await;
    for (w, layout) in [(&connect, "connect-dynamodb"), (&authjs, "authjs")] {
        let mut env = w.env();
        env.retain(|(k, _)| *k != "SESSION_LAYOUT");
        env.push(("SESSION_LAYOUT", layout.into()));
        let out = sessionctl(&["sessions", "--user", "u-1", "--json"], &env);
        sessionwarden_tests::assert_success(&out);
        let text = stdout(&out);
        assert!(!text.contains("raw-sid"), "{layout}: {text}");
        let rows: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        let mut refs: Vec<&str> = rows
            .iter()
            .map(|r| r["sessionRef"].as_str().unwrap())
            .collect();
        refs.sort();
        let mut want = vec![
            key().reference("raw-sid-a1").to_string(),
            key().reference("raw-sid-a2").to_string(),
        ];
        want.sort();
        assert_eq!(refs, want, "{layout}: {text}");
        for r in &rows {
            assert_eq!(r["userId"], "u-1", "{layout}");
            assert_eq!(r["status"], "ACTIVE", "{layout}");
        }
        // The table form: a header and one line per session.
        let out = sessionctl(&["sessions", "--user", "u-1"], &env);
        sessionwarden_tests::assert_success(&out);
        let text = stdout(&out);
        assert_eq!(text.lines().count(), 3, "{layout}: {text}");
        assert!(text.starts_with("ref\tstatus\t"), "{layout}: {text}");
    }
    connect.teardown().await;
    authjs.teardown().await;
}
