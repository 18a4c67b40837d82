//! The demo on another library's table: `sessionctl demo --layout connect-dynamodb` (the
//! express-session store) or `--layout authjs` (Auth.js's DynamoDB adapter). It provisions the
//! table as that library shapes it (`init_with_layout`), has the app write sessions in the
//! library's own item format ([`super::library`]), and runs the three workers' real handlers
//! in-process with `SESSION_LAYOUT` set in the environment their configuration reads. Then it
//! shows, part by part: a bleed caught, a fixation caught (connect-dynamodb), sessions past their
//! `expires` that DynamoDB's TTL has not deleted yet ended by cleanup, and a logout-everywhere.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sessionwarden_aws::layout::{self as item_layout, Read, Seen};
use sessionwarden_aws::{load_sdk_config, AwsClients};
use sessionwarden_core::config::{CascadeConfig, CleanupConfig, StreamConfig};
use sessionwarden_core::layout::{Layout, Mapped};
use sessionwarden_core::ports::CascadeQueue as _;
use sessionwarden_core::session_ref::{SessionRefKey, MIN_KEY_BYTES};
use sessionwarden_local::streams::StreamTail;

use super::library::{AuthjsAdapter, ConnectStore, ExpressSession, UserAt};
use super::stream::print_alerts;
use super::{ago, H, M};

/// The layouts `sessionctl demo --layout` runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoLayout {
    /// sessionwarden's own table (`just demo`).
    Native,
    /// connect-dynamodb, the express-session store.
    ConnectDynamodb,
    /// Auth.js's DynamoDB adapter.
    Authjs,
}

impl DemoLayout {
    /// The `SESSION_LAYOUT` preset name.
    pub fn name(self) -> &'static str {
        match self {
            DemoLayout::Native => "native",
            DemoLayout::ConnectDynamodb => "connect-dynamodb",
            DemoLayout::Authjs => "authjs",
        }
    }
}

/// Due buckets of one minute (the smallest allowed): the demo's sessions are filed in small buckets,
/// as a busy table's would be in 15-minute ones.
const BUCKET_SECONDS: i64 = 60;
/// How far back the first cleanup run reads the due index.
const LOOKBACK_SECONDS: i64 = 600;
const DAY: i64 = 86_400;

/// The app, writing through its session library.
enum App {
    Connect(ConnectStore),
    Authjs(AuthjsAdapter),
}

/// One session the app created, and what the demo does with it.
#[derive(Debug, Clone)]
struct Made {
    /// The raw session ID (express `sid`) or Auth.js `sessionToken`.
    id: String,
    /// Its user; `None` while anonymous.
    user: Option<String>,
    /// Where the express app keeps the user.
    user_at: UserAt,
    /// When the app last wrote it (`set` / `createSession`).
    written_at: i64,
    /// Its `expires`, epoch seconds.
    expires: i64,
    /// `traffic`, `lapsed`, `fresh`, `anonymous`.
    role: &'static str,
}

impl App {
    /// Connect: express-session's default cookie of one day. Auth.js: `session.maxAge` of 30 days.
    fn max_age(&self) -> i64 {
        match self {
            App::Connect(_) => DAY,
            App::Authjs(_) => 30 * DAY,
        }
    }

    fn express(m: &Made, max_age: i64) -> ExpressSession {
        let extra = match (m.user.is_some(), m.role) {
            (false, _) => serde_json::json!({"cart": ["sku-1042"], "returnTo": "/checkout"}),
            _ => serde_json::json!({"flash": {}}),
        };
        ExpressSession {
            sid: m.id.clone(),
            user: m.user.clone().map(|u| (u, m.user_at)),
            max_age,
            extra,
        }
    }

    /// The app writes a session as the library does at login (or, anonymous, at first visit).
    async fn create(&self, m: &Made) -> anyhow::Result<()> {
        match self {
            App::Connect(store) => {
                store
                    .set(&Self::express(m, m.expires - m.written_at), m.written_at)
                    .await
            }
            App::Authjs(adapter) => {
                let user = m.user.as_deref().unwrap_or("u-anon");
                // Date.now() has milliseconds; keep a fraction in `expires`.
                let ms = (m.id.len() as i64 * 37) % 1000;
                adapter
                    .create_session(&m.id, user, m.expires * 1000 + ms)
                    .await
            }
        }
    }

    /// Ordinary activity: express-session's `touch`, Auth.js's `updateSession`.
    async fn touch(&self, m: &Made, now: i64) -> anyhow::Result<()> {
        match self {
            App::Connect(store) => store.touch(&Self::express(m, self.max_age()), now).await,
            App::Authjs(adapter) => {
                adapter
                    .update_session(&m.id, (now + self.max_age()) * 1000 + 250)
                    .await?;
                Ok(())
            }
        }
    }

    /// A sign-out: `destroy` / `deleteSession`.
    async fn sign_out(&self, m: &Made) -> anyhow::Result<()> {
        match self {
            App::Connect(store) => store.destroy(&m.id).await,
            App::Authjs(adapter) => adapter.delete_session(&m.id).await.map(|_| ()),
        }
    }
}

fn sid(rng: &mut StdRng, kind: DemoLayout) -> String {
    match kind {
        // express-session's uid-safe(24): 32 base64url characters.
        DemoLayout::ConnectDynamodb => {
            const ALPHABET: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            (0..32)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect()
        }
        // Auth.js: crypto.randomUUID().
        _ => {
            let h = format!("{:032x}", rng.random::<u128>());
            format!(
                "{}-{}-4{}-a{}-{}",
                &h[..8],
                &h[8..12],
                &h[13..16],
                &h[17..20],
                &h[20..]
            )
        }
    }
}

/// The app's sessions: 18 of ordinary traffic over 12 users, a user with three devices (u-100)
/// and one with two (u-200) for the logout-everywhere, three whose `expires` has passed, and
/// (connect-dynamodb) anonymous visitors.
fn sessions(kind: DemoLayout, now: i64, max_age: i64) -> Vec<Made> {
    let mut rng = StdRng::seed_from_u64(2026);
    let shapes = [UserAt::UserObject, UserAt::UserId, UserAt::Passport];
    let mut out = Vec::new();
    let mut add = |rng: &mut StdRng, user: Option<String>, i: usize, ago: i64, role| {
        let written_at = now - ago;
        out.push(Made {
            id: sid(rng, kind),
            user,
            user_at: shapes[i % shapes.len()],
            written_at,
            expires: written_at + max_age,
            role,
        });
    };
    for i in 0..18 {
        let ago = rng.random_range(5 * M..6 * H);
        add(
            &mut rng,
            Some(format!("u-{:03}", i % 12 + 1)),
            i,
            ago,
            "traffic",
        );
    }
    for (user, devices) in [("u-100", 3), ("u-200", 2)] {
        for d in 0..devices {
            let ago = rng.random_range(10 * M..3 * H);
            add(&mut rng, Some(user.to_string()), d, ago, "traffic");
        }
    }
    // Written a full max-age ago and more: expired 10 minutes, 50 minutes and 3 hours ago.
    for (i, past) in [10 * M, 50 * M, 3 * H].into_iter().enumerate() {
        add(
            &mut rng,
            Some(format!("u-{:03}", 7 + i)),
            i,
            max_age + past,
            "lapsed",
        );
    }
    add(&mut rng, Some("u-012".into()), 1, 2 * M, "fresh");
    if kind == DemoLayout::ConnectDynamodb {
        for i in 0..3 {
            let ago = rng.random_range(2 * M..40 * M);
            add(&mut rng, None, i, ago, "anonymous");
        }
    }
    out
}

/// Everything the parts share.
struct Demo {
    kind: DemoLayout,
    clients: AwsClients,
    layout: Mapped,
    app: App,
    cleanup: CleanupConfig,
    stream: StreamConfig,
    cascade: CascadeConfig,
    key: SessionRefKey,
    inbox: String,
    tail: StreamTail,
}

impl Demo {
    fn table(&self) -> &str {
        &self.stream.common.sessions_table
    }

    fn reference(&self, raw: &str) -> String {
        self.key.reference(raw).to_string()
    }

    /// Every item of the table read through the layout: the sessions, and how many items are not.
    async fn read_all(&self) -> anyhow::Result<(Vec<Seen>, usize)> {
        let items: Vec<_> = self
            .clients
            .dynamodb
            .scan()
            .table_name(self.table())
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .context("scanning the sessions table")?;
        let now = chrono::Utc::now().timestamp();
        let mut sessions = Vec::new();
        let mut others = 0;
        for item in &items {
            match item_layout::read(&self.layout, &item_layout::from_sdk(item), now) {
                Ok(Read::Session(seen)) => sessions.push(*seen),
                Ok(Read::NotSession) => others += 1,
                Err(e) => anyhow::bail!("an item does not read as {}: {e}", self.kind.name()),
            }
        }
        Ok((sessions, others))
    }

    /// The items that carry session ID `raw` (several, under several users, after a bleed).
    async fn items_of(&self, raw: &str) -> anyhow::Result<Vec<Seen>> {
        Ok(self
            .read_all()
            .await?
            .0
            .into_iter()
            .filter(|s| s.id.expose() == raw)
            .collect())
    }

    /// Runs the stream worker's handler over what the stream holds since the last run.
    async fn stream_once(&mut self) -> anyhow::Result<sessionwarden_core::stream::StreamReport> {
        let (response, report) =
            crate::run_stream_once(&self.clients, self.stream.clone(), Some(&mut self.tail))
                .await?;
        if !response.batch_item_failures.is_empty() {
            anyhow::bail!("the stream worker failed records: {:?}", report.failed_from);
        }
        Ok(report)
    }

    /// The alerts the subscriber has received since the last call, printed.
    async fn alerts(&self, raw_ids: &[&str]) -> anyhow::Result<Vec<serde_json::Value>> {
        let messages =
            sessionwarden_local::provision::drain_queue(&self.clients, &self.inbox).await?;
        for raw in raw_ids {
            if messages.iter().any(|m| m.contains(raw)) {
                anyhow::bail!("an alert holds a raw session ID");
            }
        }
        print_alerts(&messages)
    }
}

fn report_line(r: &sessionwarden_core::stream::StreamReport) -> String {
    format!(
        "{} records ({} not sessions) -> anomalies {:?}, {} alerts, {} terminated by containment, {} deletes not by TTL, {} index entries filed",
        r.records,
        r.not_sessions,
        r.anomalies,
        r.alerts_published,
        r.sessions_terminated,
        r.deleted_by_write,
        r.index_filings
    )
}

fn when(at: i64, now: i64) -> String {
    if at <= now {
        ago(now - at)
    } else {
        let d = at - now;
        if d >= DAY {
            format!("in {}d{:02}h", d / DAY, (d % DAY) / H)
        } else {
            format!("in {}h{:02}m", d / H, (d % H) / M)
        }
    }
}

/// Runs the demo on `kind`'s layout, with resources named `PREFIX-<layout>-...`.
pub async fn run(kind: DemoLayout, prefix: &str) -> anyhow::Result<()> {
    let layout = Layout::parse(kind.name())?;
    let Layout::Mapped(mapped) = layout.clone() else {
        anyhow::bail!("the layout demo runs on connect-dynamodb or authjs");
    };
    let clients = crate::local_clients().await;
    let prefix = format!("{prefix}-{}", kind.name());
    let resources = sessionwarden_local::provision::init_with_layout(&clients, &prefix, &layout)
        .await
        .with_context(|| format!("creating resources for prefix {prefix:?}"))?;
    // init_with_layout's `init` re-enables TTL on the native `expiresAt` of the table it just
    // shaped: DynamoDB Local (and AWS) refuse that ("TimeToLive is active on a different
    // AttributeName"), moto moves the TTL to `expiresAt`. Until provisioning is fixed, shaping
    // the table once more puts the TTL back on the layout's attribute (on moto, where the demo
    // runs); the header prints the TTL as DescribeTimeToLive reads it back.
    sessionwarden_local::provision::create_layout_table(
        &clients,
        &resources.sessions_table,
        &layout,
    )
    .await?;
    let ttl_attribute = clients
        .dynamodb
        .describe_time_to_live()
        .table_name(&resources.sessions_table)
        .send()
        .await?
        .time_to_live_description
        .and_then(|d| d.attribute_name)
        .unwrap_or_else(|| "(none)".into());

    // The environment the workers read: what was provisioned, the layout, and a due index in
    // one-minute buckets. The rest (SESSION_REF_KEY, METRICS_NAMESPACE, policies) comes from the
    // process environment, as `sessionctl init` printed it.
    let namespace =
        std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "SessionWarden".to_string());
    let mut vars: HashMap<&'static str, String> = resources.env(&namespace).into_iter().collect();
    vars.insert("SESSION_LAYOUT", kind.name().to_string());
    vars.insert("DUE_INDEX_BUCKET_SECONDS", BUCKET_SECONDS.to_string());
    vars.insert("DUE_INDEX_LOOKBACK_SECONDS", LOOKBACK_SECONDS.to_string());
    if std::env::var("SESSION_REF_KEY").map_or(true, |k| k.len() < MIN_KEY_BYTES) {
        vars.insert("SESSION_REF_KEY", hex::encode(rand::random::<[u8; 24]>()));
    }
    let env = |name: &str| vars.get(name).cloned().or_else(|| std::env::var(name).ok());
    let cleanup = CleanupConfig::from_source(&env)?;
    let stream = StreamConfig::from_source(&env)?;
    let cascade = CascadeConfig::from_source(&env)?;

    let table = stream.common.sessions_table.clone();
    let app = match kind {
        DemoLayout::Authjs => App::Authjs(AuthjsAdapter::new(clients.dynamodb.clone(), &table)),
        _ => App::Connect(ConnectStore::new(clients.dynamodb.clone(), &table)),
    };
    let now = chrono::Utc::now().timestamp();
    let made = sessions(kind, now, app.max_age());

    match kind {
        DemoLayout::Authjs => {
            println!("== sessionwarden demo: an Auth.js table (SESSION_LAYOUT=authjs) ==");
            println!(
                "{table}: as @auth/dynamodb-adapter expects it (pk, sk, index GSI1 over GSI1PK/GSI1SK, TTL on {ttl_attribute}), with a NEW_AND_OLD_IMAGES stream."
            );
        }
        _ => {
            println!("== sessionwarden demo: a connect-dynamodb table (SESSION_LAYOUT=connect-dynamodb) ==");
            println!(
                "{table}: as connect-dynamodb creates it (hash key id = sess:<sid>, TTL on {ttl_attribute}), with a NEW_AND_OLD_IMAGES stream."
            );
        }
    }
    println!(
        "sessionwarden's state table {} keeps its own due and member indexes for this table, filed by the stream worker.",
        resources.state_table
    );
    println!(
        "The workers run in-process with SESSION_LAYOUT={}, DUE_INDEX_BUCKET_SECONDS={BUCKET_SECONDS}, DUE_INDEX_LOOKBACK_SECONDS={LOOKBACK_SECONDS}.\n",
        kind.name()
    );

    // The app's traffic, written as the library writes it.
    if let App::Authjs(adapter) = &app {
        let mut users: Vec<&str> = made.iter().filter_map(|m| m.user.as_deref()).collect();
        users.sort();
        users.dedup();
        for (i, u) in users.iter().enumerate() {
            adapter
                .create_user(u, &format!("{u}@example.com"), &format!("User {u}"))
                .await?;
            adapter
                .link_account(u, "github", &format!("{}", 9_100_000 + i))
                .await?;
        }
    }
    for m in &made {
        app.create(m).await?;
    }
    let count = |role: &str| made.iter().filter(|m| m.role == role).count();
    match kind {
        DemoLayout::Authjs => println!(
            "The app signed in {} sessions with createSession (users and their GitHub accounts: createUser, linkAccount), {} of them with an expires already past.",
            made.len(),
            count("lapsed")
        ),
        _ => println!(
            "The app wrote {} sessions with store.set ({} logged in, as user.id, userId or passport.user; {} anonymous), {} of them with an expires already past.",
            made.len(),
            made.iter().filter(|m| m.user.is_some()).count(),
            count("anonymous"),
            count("lapsed")
        ),
    }
    if let Some(sample) = made.iter().find(|m| m.role == "traffic") {
        let item = clients
            .dynamodb
            .get_item()
            .table_name(&table)
            .set_key(match kind {
                DemoLayout::Authjs => Some(HashMap::from([
                    (
                        "pk".to_string(),
                        aws_sdk_dynamodb::types::AttributeValue::S(format!(
                            "USER#{}",
                            sample.user.as_deref().unwrap_or_default()
                        )),
                    ),
                    (
                        "sk".to_string(),
                        aws_sdk_dynamodb::types::AttributeValue::S(format!(
                            "SESSION#{}",
                            sample.id
                        )),
                    ),
                ])),
                _ => Some(HashMap::from([(
                    "id".to_string(),
                    aws_sdk_dynamodb::types::AttributeValue::S(format!("sess:{}", sample.id)),
                )])),
            })
            .send()
            .await?
            .item
            .unwrap_or_default();
        let raw_id = sample.id.clone();
        let mut fields: Vec<String> = item
            .iter()
            .map(|(k, v)| {
                let shown = match v {
                    aws_sdk_dynamodb::types::AttributeValue::S(s) => format!("{s:?}"),
                    aws_sdk_dynamodb::types::AttributeValue::N(n) => n.clone(),
                    other => format!("{other:?}"),
                };
                format!("{k}: {}", shown.replace(&raw_id, "<session ID>"))
            })
            .collect();
        fields.sort();
        println!("One item, as the library wrote it (the session ID elided):");
        for f in fields {
            println!("  {f}");
        }
    }

    let inbox = sessionwarden_local::provision::subscribe_inbox(
        &clients,
        &stream.wiring.alerts_topic_arn,
        &format!("demo-{}-inbox-{}", kind.name(), rand::random::<u32>()),
    )
    .await?;
    let arn = resources
        .sessions_stream_arn
        .clone()
        .ok_or_else(|| anyhow::anyhow!("{table} has no stream"))?;
    let tail = StreamTail::from_start(
        sessionwarden_local::streams_client(&load_sdk_config().await, None),
        arn,
    )
    .await?;
    let key = stream.common.session_ref_key.clone();
    let mut demo = Demo {
        kind,
        clients,
        layout: *mapped,
        app,
        cleanup,
        stream,
        cascade,
        key,
        inbox,
        tail,
    };
    let base = demo.stream_once().await?;
    println!("Stream worker, baseline: {}.\n", report_line(&base));
    if base.alerts_published > 0 {
        anyhow::bail!(
            "the baseline traffic raised {} alerts",
            base.alerts_published
        );
    }

    bleed(&mut demo, &made).await?;
    fixation(&mut demo, &made).await?;
    expiry(&mut demo, &made).await?;
    logout_everywhere(&mut demo).await?;
    println!("\nDemo finished on the {} layout.", kind.name());
    Ok(())
}

/// Part 1: one session ID bound to a second user, with ordinary touches and a sign-out around it.
async fn bleed(demo: &mut Demo, made: &[Made]) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp();
    let traffic: Vec<&Made> = made.iter().filter(|m| m.role == "traffic").collect();
    let victim = traffic
        .iter()
        .find(|m| m.user.as_deref() == Some("u-003"))
        .copied()
        .ok_or_else(|| anyhow::anyhow!("no session of u-003"))?;
    let others: Vec<&Made> = traffic
        .iter()
        .filter(|m| m.id != victim.id && !matches!(m.user.as_deref(), Some("u-100" | "u-200")))
        .copied()
        .collect();
    let (touched, signed_out) = (&others[..6], others[6]);
    println!("== 1. A bleed: one session ID, two users ==");
    for m in touched {
        demo.app.touch(m, now).await?;
    }
    demo.app.sign_out(signed_out).await?;
    let victim_ref = demo.reference(&victim.id);
    match &demo.app {
        App::Connect(store) => {
            let mut stolen = App::express(victim, demo.app.max_age());
            stolen.user = Some(("u-999".into(), UserAt::UserObject));
            store.set(&stolen, now).await?;
            println!(
                "Traffic: {} touches (UpdateItem set expires), 1 logout (destroy: DeleteItem), and a bleed: store.set rewrote sess:<sid of {victim_ref}> (u-003's) with user u-999.",
                touched.len()
            );
        }
        App::Authjs(adapter) => {
            adapter
                .create_session(&victim.id, "u-999", (now + 30 * DAY) * 1000 + 125)
                .await?;
            println!(
                "Traffic: {} updateSession, 1 deleteSession (sign-out), and a bleed: createSession put u-003's sessionToken ({victim_ref}) under USER#u-999 too.",
                touched.len()
            );
        }
    }
    let report = demo.stream_once().await?;
    println!("Stream worker: {}.", report_line(&report));
    println!("\nThe alert, as the on-call subscriber received it:");
    let docs = demo.alerts(&[&victim.id]).await?;
    println!("{}", "-".repeat(100));
    let critical: Vec<_> = docs
        .iter()
        .filter(|d| d["type"] == "SESSION_USER_CHANGED" && d["severity"] == "CRITICAL")
        .collect();
    if docs.len() != 1 || critical.len() != 1 {
        anyhow::bail!(
            "the bleed should raise exactly one CRITICAL SESSION_USER_CHANGED alert, got {:?}",
            docs.iter()
                .map(|d| format!("{} {}", d["severity"], d["type"]))
                .collect::<Vec<_>>()
        );
    }
    println!(
        "Bleed caught: 1 CRITICAL SESSION_USER_CHANGED alert, session ref {}; the raw session ID appears nowhere in it.",
        critical[0]["sessionRef"].as_str().unwrap_or("-")
    );
    let left = demo.items_of(&victim.id).await?;
    let homes = |items: &[Seen]| {
        items
            .iter()
            .map(|s| {
                format!(
                    "{}{}",
                    s.id.home().map(|h| format!("{h} ")).unwrap_or_default(),
                    s.image.user_id.as_deref().unwrap_or("(anon)")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if left.is_empty() {
        println!("Containment: every item carrying that session ID is deleted; the stolen cookie no longer opens a session.");
    } else {
        println!(
            "Containment: {} item(s) still carry that session ID: {}.",
            left.len(),
            homes(&left)
        );
    }
    println!();
    Ok(())
}

/// Part 2: an anonymous session that logs in and keeps its ID (connect-dynamodb only).
async fn fixation(demo: &mut Demo, made: &[Made]) -> anyhow::Result<()> {
    println!("== 2. A fixation: login keeps the anonymous session ID ==");
    let App::Connect(store) = &demo.app else {
        println!(
            "Not on Auth.js: its session items carry their user in the key (pk = USER#<userId>) and are created at sign-in, so there is no anonymous session for a login to keep. No fixation can occur.\n"
        );
        return Ok(());
    };
    let anon = made
        .iter()
        .find(|m| m.role == "anonymous")
        .ok_or_else(|| anyhow::anyhow!("no anonymous session"))?;
    let now = chrono::Utc::now().timestamp();
    let mut logged_in = App::express(anon, DAY);
    logged_in.user = Some(("u-042".into(), UserAt::Passport));
    store.set(&logged_in, now).await?;
    println!(
        "Traffic: an anonymous visitor's session ({}, a cart and a returnTo) logs in through passport; the app keeps the sid (no req.session.regenerate()).",
        demo.reference(&anon.id)
    );
    let report = demo.stream_once().await?;
    println!("Stream worker: {}.", report_line(&report));
    println!("\nThe alert, as the on-call subscriber received it:");
    let docs = demo.alerts(&[&anon.id]).await?;
    println!("{}", "-".repeat(100));
    let fix: Vec<_> = docs
        .iter()
        .filter(|d| d["type"] == "SESSION_FIXATION")
        .collect();
    if fix.len() != 1 {
        anyhow::bail!(
            "the fixation should raise one SESSION_FIXATION alert, got {}",
            docs.len()
        );
    }
    println!(
        "Fixation caught: 1 {} SESSION_FIXATION alert, session ref {}.\n",
        fix[0]["severity"].as_str().unwrap_or("-"),
        fix[0]["sessionRef"].as_str().unwrap_or("-")
    );
    Ok(())
}

/// Part 3: sessions past their `expires` that DynamoDB's TTL has not deleted yet, ended by the
/// cleanup worker from sessionwarden's own due index.
async fn expiry(demo: &mut Demo, made: &[Made]) -> anyhow::Result<()> {
    println!("== 3. Expiry: past expires, not yet deleted by TTL ==");
    let lapsed: Vec<&Made> = made.iter().filter(|m| m.role == "lapsed").collect();
    let fresh = made
        .iter()
        .find(|m| m.role == "fresh")
        .ok_or_else(|| anyhow::anyhow!("no fresh session"))?;
    println!(
        "{} sessions have an expires in the past. The library refuses them when it reads them, but the items stay in the table until DynamoDB's TTL deletes them, which AWS does only within a few days.",
        lapsed.len()
    );
    println!(
        "The stream worker filed them in sessionwarden's due index when they were written: a session already past due goes to the last finished bucket, which the next cleanup run reads."
    );
    let report = crate::invoke_cleanup(
        &demo.clients,
        demo.cleanup.clone(),
        Duration::from_secs(300),
    )
    .await?;
    println!(
        "Cleanup ({} strategy, on the due index): examined {}, expired {} (ttl {}, idle {}, absolute {}), not yet due {}, {} read requests, {} writes.",
        report.strategy,
        report.examined,
        report.expired_total(),
        report.expired.ttl,
        report.expired.idle,
        report.expired.absolute,
        report.not_due,
        report.read_requests,
        report.write_requests
    );
    let now = chrono::Utc::now().timestamp();
    let (present, _) = demo.read_all().await?;
    let exists = |raw: &str| present.iter().any(|s| s.id.expose() == raw);
    println!(
        "  {:<13} {:<6} {:<14} RESULT",
        "SESSION REF", "USER", "EXPIRES"
    );
    let mut wrong = 0;
    for m in lapsed.iter().copied().chain([fresh]) {
        let gone = !exists(&m.id);
        let want_gone = m.role == "lapsed";
        if gone != want_gone {
            wrong += 1;
        }
        println!(
            "  {:<13} {:<6} {:<14} {}",
            demo.reference(&m.id),
            m.user.as_deref().unwrap_or("(anon)"),
            when(m.expires, now),
            match (gone, want_gone) {
                (true, true) => "ended: deleted by cleanup (reason ttl)",
                (false, false) => "survives (fresh)",
                (true, false) => "DELETED, but it is fresh",
                (false, true) => "STILL THERE",
            }
        );
    }
    let stream_report = demo.stream_once().await?;
    println!(
        "Stream worker, after cleanup: {}.",
        report_line(&stream_report)
    );
    if report.expired.ttl != lapsed.len() as u64 || wrong > 0 {
        anyhow::bail!(
            "cleanup should end exactly the {} lapsed sessions (ttl {}, {wrong} wrong)",
            lapsed.len(),
            report.expired.ttl
        );
    }
    println!(
        "Expired: {} sessions counted as ttl; the fresh one survives.\n",
        report.expired.ttl
    );
    Ok(())
}

/// Part 4: a USER cascade ends every session of u-100; u-200's survive.
async fn logout_everywhere(demo: &mut Demo) -> anyhow::Result<()> {
    use sessionwarden_aws::cascade_queue::SqsCascadeQueue;
    use sessionwarden_core::cascade_message::{request, Target};
    println!("== 4. Logout everywhere ==");
    let counts = |sessions: &[Seen]| -> BTreeMap<String, usize> {
        let mut c = BTreeMap::new();
        for s in sessions {
            if let Some(u) = s.image.user_id.as_deref() {
                if u == "u-100" || u == "u-200" {
                    *c.entry(u.to_string()).or_insert(0) += 1;
                }
            }
        }
        c
    };
    let (before_sessions, before_others) = demo.read_all().await?;
    let before = counts(&before_sessions);
    let root = format!("demo-{}-logout-u-100", demo.kind.name());
    SqsCascadeQueue::new(
        demo.clients.sqs.clone(),
        demo.cascade.wiring.cascade_queue_url.clone(),
    )
    .send(&[request(
        &Target::User("u-100".into()),
        "password-changed",
        "auth-service",
        Some(root.clone()),
    )])
    .await?;
    println!("sessionctl revoke --user u-100 --reason password-changed --request-id {root}");
    let (report, rounds) = crate::drain_cascades(
        &demo.clients,
        &demo.cascade,
        Some((&demo.stream, &mut demo.tail)),
    )
    .await?;
    let (after_sessions, after_others) = demo.read_all().await?;
    let after = counts(&after_sessions);
    let get = |m: &BTreeMap<String, usize>, u: &str| m.get(u).copied().unwrap_or(0);
    println!(
        "Cascade worker: {rounds} invocations, {} messages, {} pages: ended {:?}, {} already ended.",
        report.messages, report.pages, report.ended, report.already_ended
    );
    println!("  {:<6} {:>7} {:>6}", "USER", "BEFORE", "AFTER");
    for u in ["u-100", "u-200"] {
        println!("  {:<6} {:>7} {:>6}", u, get(&before, u), get(&after, u));
    }
    if demo.kind == DemoLayout::Authjs {
        println!(
            "Items that are not sessions (users, accounts): {before_others} before, {after_others} after."
        );
    }
    if get(&after, "u-100") != 0 || get(&after, "u-200") != get(&before, "u-200") {
        anyhow::bail!("the logout-everywhere should end u-100's sessions and only those");
    }
    println!(
        "Logout everywhere: u-100 {} -> 0 sessions; u-200 keeps {}.",
        get(&before, "u-100"),
        get(&after, "u-200")
    );
    Ok(())
}
