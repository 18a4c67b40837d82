//! `just bench index-load [SESSIONS] [--shards N] [--in-flight K]`: how the writes of
//! sessionwarden's own due index spread over its partition keys, on DynamoDB Local.
//!
//! The due index files each session under `due#<bucket>#<shard>`, `shard = hash(session) % N`
//! (`DUE_INDEX_SHARDS`, default 16). This bench pushes SESSIONS (default 100,000) sessions
//! through the stream worker's own filing code (`stream::filing::filings`, `filing::compact`,
//! `MappedSessions::file`, on a connect-dynamodb table): first their INSERTs, then one touch of
//! each that moves its due time to the next bucket (the write a touch costs at most once per
//! bucket interval). Batches of 100 changes, as Lambda delivers them, run K (default 8) at a
//! time, like K stream shards, as fast as DynamoDB Local takes them.
//!
//! An interceptor on the DynamoDB client reads every BatchWriteItem that leaves and tallies its
//! due-index writes by partition key and wall-clock second. The bench prints, per phase, the
//! writes, the busiest second and the busiest key in it, and fails unless in every second with
//! at least 100 × N writes (a fair share of 100 per key) the busiest key took at most 1.5 × (that second's writes / N). For
//! comparison it prints what the same writes would put on the one `ACTIVE` partition of the
//! native `by-sweep` GSI: all of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use futures::stream::{self, StreamExt};
use sessionwarden_aws::mapped::MappedSessions;
use sessionwarden_aws::{sdk_client, ClientSettings};
use sessionwarden_core::change::{Change, ChangeKind, Image, SeqNo};
use sessionwarden_core::layout::Layout;
use sessionwarden_core::ports::{Filing, SessionStore};
use sessionwarden_core::session::{SessionId, Status};
use sessionwarden_core::stream::filing;
use sessionwarden_tests::TestEnv;

/// Changes per stream batch (Lambda's default batch size for DynamoDB Streams).
const BATCH: usize = 100;
/// A second counts toward the check when its fair share per key is at least this many writes:
/// below that, no key is anywhere near a partition's limit, and the sampling noise of a hash
/// over a few dozen sessions says nothing about the spread.
const MIN_FAIR_SHARE: u64 = 100;

/// Due-index writes by (second since start, partition key).
#[derive(Clone, Debug)]
struct KeyTally {
    start: Instant,
    writes: Arc<Mutex<HashMap<(u64, String), u64>>>,
}

impl KeyTally {
    fn new() -> Self {
        KeyTally {
            start: Instant::now(),
            writes: Arc::default(),
        }
    }

    fn take(&self) -> HashMap<(u64, String), u64> {
        std::mem::take(&mut *self.writes.lock().unwrap())
    }
}

impl Intercept for KeyTally {
    fn name(&self) -> &'static str {
        "KeyTally"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = context.request();
        let batch_write = req
            .headers()
            .get("x-amz-target")
            .is_some_and(|t| t.ends_with(".BatchWriteItem"));
        let Some(body) = req.body().bytes().filter(|_| batch_write) else {
            return Ok(());
        };
        let v: serde_json::Value = serde_json::from_slice(body)?;
        let second = self.start.elapsed().as_secs();
        let mut w = self.writes.lock().unwrap();
        for requests in v["RequestItems"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            for r in requests.as_array().into_iter().flatten() {
                let pk = r["PutRequest"]["Item"]["pk"]["S"]
                    .as_str()
                    .or(r["DeleteRequest"]["Key"]["pk"]["S"].as_str());
                if let Some(pk) = pk.filter(|p| p.starts_with("due#") && *p != "due#watermark") {
                    *w.entry((second, pk.to_string())).or_default() += 1;
                }
            }
        }
        Ok(())
    }
}

/// One phase's spread: (writes, seconds, busiest second's writes, busiest key in it, worst
/// ratio of a key to the fair share over the seconds that count, and whether it held).
struct Spread {
    writes: u64,
    seconds: usize,
    keys: usize,
    peak_second: u64,
    peak_key: u64,
    worst: f64,
    counted: usize,
    /// The busiest key over the whole phase, against the phase's writes / N.
    whole: f64,
}

fn spread(tally: HashMap<(u64, String), u64>, shards: u32) -> Spread {
    let mut per_second: HashMap<u64, (u64, u64)> = HashMap::new();
    let mut keys = std::collections::HashSet::new();
    let mut per_key: HashMap<&str, u64> = HashMap::new();
    for ((sec, pk), n) in &tally {
        *per_key.entry(pk.as_str()).or_default() += n;
        let e = per_second.entry(*sec).or_default();
        e.0 += n;
        e.1 = e.1.max(*n);
        keys.insert(pk.clone());
    }
    let (mut worst, mut counted) = (0f64, 0);
    for (total, max) in per_second.values() {
        if *total >= MIN_FAIR_SHARE * shards as u64 {
            counted += 1;
            worst = worst.max(*max as f64 / (*total as f64 / shards as f64));
        }
    }
    let (peak_second, peak_key) = per_second
        .values()
        .max_by_key(|(t, _)| *t)
        .copied()
        .unwrap_or_default();
    let writes: u64 = tally.values().sum();
    let busiest = per_key.values().max().copied().unwrap_or_default();
    Spread {
        whole: busiest as f64 / (writes.max(1) as f64 / shards as f64),
        writes,
        seconds: per_second.len(),
        keys: keys.len(),
        peak_second,
        peak_key,
        worst,
        counted,
    }
}

fn session(i: usize) -> SessionId {
    SessionId::new(format!(
        "il-{i:07}-{:016x}",
        (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    ))
}

fn image(last: i64) -> Image {
    Image {
        user_id: Some("u".into()),
        status: Some(Status::Active),
        created_at: Some(last),
        last_activity_at: Some(last),
        ..Default::default()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut sessions, mut shards, mut in_flight) = (100_000usize, None, 8usize);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--shards" => shards = Some(args.next().unwrap_or_default()),
            "--in-flight" => in_flight = args.next().unwrap_or_default().parse()?,
            n => sessions = n.replace([',', '_'], "").parse()?,
        }
    }
    let env = TestEnv::with_layout("index-load", "connect-dynamodb").await;
    let extra: Vec<(&str, &str)> = shards
        .as_deref()
        .map(|s| vec![("DUE_INDEX_SHARDS", s)])
        .unwrap_or_default();
    let cfg = env.stream_config(&extra);
    let index = cfg.common.index;
    let Layout::Mapped(layout) = cfg.common.layout.clone() else {
        anyhow::bail!("connect-dynamodb is a mapped layout");
    };
    let tally = KeyTally::new();
    let sdk = sessionwarden_tests::sdk_config().await;
    let client = sdk_client!(
        aws_sdk_dynamodb,
        &sdk,
        Some(&tally),
        &ClientSettings::local()
    );
    let store = MappedSessions::new(
        client,
        &env.resources.sessions_table,
        &env.resources.state_table,
        *layout,
        cfg.common.session_ref_key.clone(),
        cfg.common.expiry,
        index,
    );
    println!(
        "index-load: {sessions} sessions, DUE_INDEX_SHARDS={}, bucket {} s, {in_flight} batches of {BATCH} in flight",
        index.shards, index.bucket_seconds
    );
    let now = chrono::Utc::now().timestamp();
    let touched = now + index.bucket_seconds;
    let change = |i: usize, kind: ChangeKind| {
        let (old, new, at) = match kind {
            ChangeKind::Insert => (None, image(now), now),
            _ => (Some(image(now)), image(touched), touched),
        };
        Change {
            seq: SeqNo(format!("{i:020}")),
            kind,
            session_id: session(i),
            old,
            new: Some(new),
            by_ttl: false,
            at,
        }
    };
    let mut failed = false;
    println!("\n| phase | due-index writes | seconds | partition keys | busiest second: all keys | busiest second: one key | worst second: one key / fair share (seconds counted) | whole phase: busiest key / fair share | same writes on by-sweep's one key |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (phase, kind) in [
        ("INSERTs", ChangeKind::Insert),
        ("one touch each, next bucket", ChangeKind::Modify),
    ] {
        tally.take();
        let started = Instant::now();
        let batches: Vec<Vec<Vec<Filing>>> = (0..sessions)
            .collect::<Vec<_>>()
            .chunks(BATCH)
            .map(|c| {
                c.iter()
                    .map(|&i| filing::filings(&change(i, kind), &cfg.common))
                    .collect()
            })
            .collect();
        let results: Vec<anyhow::Result<()>> = stream::iter(batches.into_iter().map(|b| {
            let store = &store;
            async move {
                let batch = filing::compact(b.into_iter().flatten().collect());
                store.file(&batch).await.map_err(anyhow::Error::from)
            }
        }))
        .buffer_unordered(in_flight)
        .collect()
        .await;
        for r in results {
            r?;
        }
        let took = started.elapsed();
        let s = spread(tally.take(), index.shards);
        let held = s.worst <= 1.5;
        failed |= !held;
        println!(
            "| {phase} | {} | {} ({took:.1?}) | {} | {} | {} | {:.2} ({}){} | {:.2} | {} |",
            s.writes,
            s.seconds,
            s.keys,
            s.peak_second,
            s.peak_key,
            s.worst,
            s.counted,
            if held { "" } else { " **over 1.5**" },
            s.whole,
            s.peak_second,
        );
    }
    env.teardown().await;
    anyhow::ensure!(
        !failed,
        "a due-index key took more than 1.5 × its fair share in some second"
    );
    Ok(())
}
