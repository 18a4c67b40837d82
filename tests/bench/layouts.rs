//! `just bench layouts [LIVE ...]`: what one cleanup run costs on the `connect-dynamodb` and the
//! `custom` layout (`IS_CURRENT_EXAMPLE`), where cleanup reads sessionwarden's own due index in
//! the state table instead of a GSI of the sessions table.
//!
//! For each layout and each size (default: 1000 10000 100000 live sessions), on DynamoDB Local:
//! 1. provision the table as that library creates it (`TestEnv::with_layout`);
//! 2. seed LIVE sessions that are not due and 500 that are, written as the library writes them
//!    (BatchWriteItem, 25 per request, 8 in flight);
//! 3. build the due index with `sessionctl backfill`'s code (`sessionctl::backfill::run`): a
//!    parallel Scan, each item read through the layout and filed as an INSERT, and the watermark
//!    lowered to the oldest bucket filed. Timed and counted apart from the cleanup rows;
//! 4. run the cleanup worker's handler twice (the first run, then the steady state right after),
//!    with the request counter reset before each, and print one markdown row per run.
//!
//! It fails if a run reads more than 1.1 × its due sessions + 10 items of the sessions table, or
//! does not expire exactly the due sessions.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::stream::{self, StreamExt, TryStreamExt};
use lambda_runtime::LambdaEvent;
use sessionwarden_cleanup::{CleanupWorker, ScheduledEvent};
use sessionwarden_core::cleanup::CleanupReport;
use sessionwarden_core::config::{CleanupConfig, CleanupStrategy};
use sessionwarden_core::layout::{Layout, IS_CURRENT_EXAMPLE};
use sessionwarden_tests::{context_with, item, nv, scheduled_event_fixture, sv, RawItem, TestEnv};

/// Due sessions per table.
const DUE: usize = 500;
/// BatchWriteItem requests in flight while seeding.
const IN_FLIGHT: usize = 8;
const H: i64 = 3600;

/// What one cleanup run costs on the connect-dynamodb and custom layouts.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Live (not due) sessions per table; 500 due sessions are added to each.
    #[arg(default_values_t = [1_000, 10_000, 100_000])]
    live_sessions: Vec<usize>,
    /// Runs the given sizes of one layout against the emulators of the environment and prints
    /// prefixed lines for the parent (which starts `tests/with-emulators` once per case).
    #[arg(long, hide = true)]
    case: Option<String>,
}

/// A layout under test: its name in the table, its `SESSION_LAYOUT`, and how the app writes a
/// session that falls due at `due_in` seconds from `now` (negative: already due).
struct Subject {
    name: &'static str,
    layout: &'static str,
    write: fn(i: usize, now: i64, due_in: i64) -> RawItem,
}

fn sid() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// connect-dynamodb's `set`: `{id: "sess:<sid>", expires, type, sess: JSON}`; due when `expires`
/// has passed.
fn connect_item(i: usize, now: i64, due_in: i64) -> RawItem {
    let expires = now + due_in;
    let sess = serde_json::json!({
        "cookie": {"originalMaxAge": 86_400_000, "httpOnly": true, "path": "/",
                   "expires": chrono::DateTime::from_timestamp(expires, 0).map(|t| t.to_rfc3339())},
        "user": {"id": format!("u-{}", i / 4), "name": "Ada"}
    });
    item(&[
        ("id", sv(&format!("sess:{}", sid()))),
        ("expires", nv(expires)),
        ("type", sv("connect-session")),
        ("sess", sv(&sess.to_string())),
    ])
}

fn iso(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .expect("a time")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The `isCurrent` app's login: `{id, userId, isCurrent, lastActivity (ISO-8601), sessionTimeout
/// (minutes)}`; due when `lastActivity + sessionTimeout` has passed.
fn custom_item(i: usize, now: i64, due_in: i64) -> RawItem {
    // A whole number of minutes of timeout: live ones were last active 1 to 11 minutes ago, due
    // ones had 30 to 119 minutes.
    let minutes = if due_in > 0 {
        due_in / 60 + 1 + (i % 10) as i64
    } else {
        30 + (i % 90) as i64
    };
    let last_activity = now + due_in - minutes * 60;
    item(&[
        ("id", sv(&sid())),
        ("userId", sv(&format!("u-{}", i / 4))),
        ("isCurrent", AttributeValue::Bool(true)),
        ("lastActivity", sv(&iso(last_activity))),
        ("sessionTimeout", nv(minutes)),
        ("ipAddress", sv("203.0.113.7")),
    ])
}

/// Writes items with BatchWriteItem, 25 per request, [`IN_FLIGHT`] requests at once, retrying
/// unprocessed items.
async fn batch_put(env: &TestEnv, table: &str, items: Vec<RawItem>) -> anyhow::Result<()> {
    let client = &env.clients.dynamodb;
    let chunks: Vec<Vec<RawItem>> = items.chunks(25).map(<[RawItem]>::to_vec).collect();
    stream::iter(chunks)
        .map(|chunk| async move {
            let writes = chunk
                .into_iter()
                .map(|i| {
                    PutRequest::builder()
                        .set_item(Some(i))
                        .build()
                        .map(|p| WriteRequest::builder().put_request(p).build())
                })
                .collect::<Result<Vec<_>, _>>()?;
            sessionwarden_aws::batch::write_all(client, table, writes).await?;
            anyhow::Ok(())
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// What the backfill did.
struct Backfill {
    took: Duration,
    summary: sessionctl::backfill::Summary,
    requests: std::collections::BTreeMap<String, u64>,
}

/// Files every session of the table in the due and member indexes with `sessionctl backfill`'s
/// own code (4 segments, pages of 1,000, as the command's defaults): a parallel Scan, each item
/// read through the layout and filed as an INSERT seen now; at the end the watermark goes down to
/// the oldest bucket filed, so the first cleanup run starts there instead of looking back
/// `DUE_INDEX_LOOKBACK_SECONDS`.
async fn backfill(env: &TestEnv, cfg: &CleanupConfig) -> anyhow::Result<Backfill> {
    let Layout::Mapped(layout) = &cfg.common.layout else {
        anyhow::bail!("the native layout has nothing to backfill");
    };
    env.counter.reset();
    let started = Instant::now();
    let summary = sessionctl::backfill::run(
        env.clients.dynamodb.clone(),
        &env.counter,
        &cfg.common,
        layout,
        &env.resources.state_table,
        sessionctl::backfill::Options {
            segments: 4,
            restart: false,
            page_size: 1000,
            max_pages: None,
        },
    )
    .await?;
    let done = Backfill {
        took: started.elapsed(),
        summary,
        requests: env.counter.snapshot(),
    };
    env.counter.reset();
    Ok(done)
}

/// One cleanup run through the worker's handler, with the request counter reset first.
async fn cleanup_run(
    env: &TestEnv,
    cfg: &CleanupConfig,
) -> anyhow::Result<(CleanupReport, Duration)> {
    let worker = CleanupWorker::from_clients(&env.clients, cfg.clone());
    let event: ScheduledEvent = serde_json::from_value(scheduled_event_fixture())?;
    env.counter.reset();
    let started = Instant::now();
    let report = worker
        .handle(LambdaEvent::new(
            event,
            context_with(Duration::from_secs(900)),
        ))
        .await?;
    Ok((report, started.elapsed()))
}

/// The watermark bucket, read outside the counted runs.
async fn watermark(env: &TestEnv) -> anyhow::Result<Option<i64>> {
    let out = env
        .clients
        .dynamodb
        .get_item()
        .table_name(&env.resources.state_table)
        .key("pk", sv("due#watermark"))
        .key("sk", sv("due"))
        .consistent_read(true)
        .send()
        .await?;
    env.counter.reset();
    Ok(out
        .item
        .and_then(|i| i.get("bucket").and_then(|b| b.as_n().ok()?.parse().ok())))
}

fn fmt_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The layouts under test.
const SUBJECTS: [Subject; 2] = [
    Subject {
        name: "connect-dynamodb",
        layout: "connect-dynamodb",
        write: connect_item,
    },
    Subject {
        name: "custom",
        layout: IS_CURRENT_EXAMPLE,
        write: custom_item,
    },
];

/// What one case prints on stdout for the parent, one line each, by kind.
const ROW: &str = "row ";
const BACKFILL: &str = "backfill ";
const NOTE: &str = "note ";
const FAILED: &str = "failed ";

/// Runs one case against the emulators of the environment and prints its lines.
async fn run_case(subject: &Subject, live: usize) -> anyhow::Result<()> {
    let env = TestEnv::with_layout(&format!("lb-{live}"), subject.layout).await;
    let cfg = env.cleanup_config(CleanupStrategy::Index, &[]);
    let index = cfg.common.index;
    let name = subject.name;

    // Live sessions fall due 4 to 24 h from now, well after the bench ends; due ones fell due 1
    // to 3 h ago.
    let now = chrono::Utc::now().timestamp();
    let mut items: Vec<RawItem> = (0..live)
        .map(|i| (subject.write)(i, now, 4 * H + (i as i64 * 7919) % (20 * H)))
        .collect();
    items.extend((0..DUE).map(|i| (subject.write)(live + i, now, -H - (i as i64 * 13) % (2 * H))));
    let seeding = Instant::now();
    batch_put(&env, &env.resources.sessions_table, items).await?;
    let seeded = seeding.elapsed();
    let seed_requests = env.counter.get("BatchWriteItem");
    env.counter.reset();
    eprintln!(
        "{name}: seeded {} sessions ({live} live, {DUE} due) in {seeded:.1?} ({seed_requests} BatchWriteItem)",
        live + DUE
    );

    let b = backfill(&env, &cfg).await?;
    let t = &b.summary.totals;
    let req = |op: &str| {
        b.requests
            .iter()
            .filter(|(k, _)| k.rsplit('.').next() == Some(op))
            .map(|(_, v)| *v)
            .sum::<u64>()
    };
    eprintln!("{name}: {} in {:.1?}: {:?}", b.summary, b.took, b.requests);
    anyhow::ensure!(
        t.filed == (live + DUE) as u64 && t.scanned == t.filed,
        "the backfill filed {} sessions of {} ({})",
        t.filed,
        live + DUE,
        b.summary
    );
    println!(
        "{BACKFILL}| {name} | {} | {} | {:.1?} | {:.1?} | {} | {} | {} | {} |",
        fmt_count(live as u64),
        fmt_count(t.filed),
        seeded,
        b.took,
        fmt_count(b.summary.requests),
        req("Scan"),
        fmt_count(req("BatchWriteItem")),
        b.summary.requests - req("Scan") - req("BatchWriteItem"),
    );
    let mark = watermark(&env).await?;
    let lookback = index.lookback_seconds / index.bucket_seconds;

    for (run, due) in [("1st", DUE as u64), ("2nd", 0)] {
        let current = index.bucket(chrono::Utc::now().timestamp());
        let (r, took) = cleanup_run(&env, &cfg).await?;
        let c = &env.counter;
        let (q, bg, gi) = (c.get("Query"), c.get("BatchGetItem"), c.get("GetItem"));
        let (ends, bw, pi) = (
            c.get("DeleteItem") + c.get("UpdateItem"),
            c.get("BatchWriteItem"),
            c.get("PutItem"),
        );
        let ratio = if due == 0 {
            "–".to_string()
        } else {
            format!("{:.3}", r.items_read as f64 / due as f64)
        };
        let row = format!(
            "| {name} | {} | {due} | {run} | {} | {} | {} ({q} + {bg} + {gi}) | {} ({ends} + {bw} + {pi}) | {} / {} | {ratio} | {:.2?} |",
            fmt_count(live as u64),
            r.items_read,
            r.examined + r.unreadable,
            q + bg + gi,
            ends + bw + pi,
            r.expired.idle,
            r.expired.ttl,
            took,
        );
        eprintln!("{name}: {row}");
        println!("{ROW}{row}");
        if run == "1st" {
            println!(
                "{NOTE}{name} at {live} live: the backfill set the watermark to {} (the oldest bucket it filed into); \
                 the first run (in bucket {current}) sent {q} due-index Queries ({} shards per finished bucket), \
                 not the {} ({lookback} buckets × {}) that DUE_INDEX_LOOKBACK_SECONDS={} costs a run without a watermark",
                mark.map_or("none".into(), |m| m.to_string()),
                index.shards,
                lookback * i64::from(index.shards),
                index.shards,
                index.lookback_seconds,
            );
        }
        let bound = 1.1 * due as f64 + 10.0;
        if r.items_read as f64 > bound {
            println!(
                "{FAILED}{name} at {live} live, {run} run: read {} items, over 1.1 × {due} + 10 = {bound}",
                r.items_read
            );
        }
        if r.expired_total() != due {
            println!(
                "{FAILED}{name} at {live} live, {run} run: expired {} sessions, not {due}: {r:?}",
                r.expired_total()
            );
        }
        if surprising(&r) {
            println!("{NOTE}{name} at {live} live, {run} run: unexpected report {r:?}");
        }
        // The report's own request accounting against the wire.
        if r.read_requests != q + bg || r.write_requests != ends {
            println!(
                "{NOTE}{name} at {live} live, {run} run: the report says {} read and {} write requests, \
                 the wire {} (Query + BatchGetItem) and {ends} (DeleteItem + UpdateItem)",
                r.read_requests,
                r.write_requests,
                q + bg
            );
        }
    }
    env.teardown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    if let Some(case) = &args.case {
        let subject = SUBJECTS
            .iter()
            .find(|s| s.name == case)
            .ok_or_else(|| anyhow::anyhow!("no layout {case:?}"))?;
        for &live in &args.live_sessions {
            run_case(subject, live).await?;
        }
        return Ok(());
    }
    // Each case gets emulators of its own: DynamoDB Local's writes slow down 15 to 21 times
    // once another table with a stream has held items (see README, "Emulator differences").
    let emulators = concat!(env!("CARGO_MANIFEST_DIR"), "/with-emulators");
    let exe = std::env::current_exe()?;
    let (mut rows, mut backfills, mut notes, mut failures) = (vec![], vec![], vec![], vec![]);
    for subject in &SUBJECTS {
        for &live in &args.live_sessions {
            let out = std::process::Command::new(emulators)
                .arg(&exe)
                .args(["--case", subject.name, &live.to_string()])
                .stderr(std::process::Stdio::inherit())
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            for line in text.lines() {
                for (prefix, to) in [
                    (ROW, &mut rows),
                    (BACKFILL, &mut backfills),
                    (NOTE, &mut notes),
                    (FAILED, &mut failures),
                ] {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        to.push(rest.to_string());
                    }
                }
            }
            if !out.status.success() {
                failures.push(format!(
                    "{} at {live} live: the case failed ({})",
                    subject.name, out.status
                ));
            }
        }
    }
    println!("| layout | live sessions | due | run | sessions-table items read | index entries read | read requests (Query + BatchGetItem + GetItem) | write requests (end + BatchWriteItem + PutItem) | expired (idle / ttl) | items read / due | wall time |");
    println!("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!("{r}");
    }
    println!();
    println!("Seeding and the due-index backfill (not in the runs above):");
    println!();
    println!("| layout | live sessions | sessions filed | seeding | backfill | backfill requests | Scan | BatchWriteItem | other (DescribeTable, cursors, watermark) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for b in &backfills {
        println!("{b}");
    }
    println!();
    for n in &notes {
        println!("- {n}");
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("FAILED: {f}");
        }
        anyhow::bail!("{} check(s) failed", failures.len());
    }
    Ok(())
}

/// True when a run did more than expire due sessions (or find nothing).
fn surprising(r: &CleanupReport) -> bool {
    !r.finished
        || r.write_errors > 0
        || r.unreadable > 0
        || r.expired.absolute > 0
        || r.skipped_touched > 0
        || r.skipped_already_ended > 0
        || r.skipped_gone > 0
        || r.not_due > 0
        || r.deferred_by_deadline > 0
}
