//! `sessionctl backfill`: indexes the sessions that existed before sessionwarden was deployed,
//! once, on a layout that keeps its own indexes (every layout but native). The stream files
//! each session it sees change; sessions nobody touches after the deployment never pass through
//! it, so this command files them as the stream would: a segmented parallel Scan of the sessions
//! table, each item read through the layout, each session filed as an INSERT seen now
//! (`stream::filing::filings`), one `MappedSessions::file` call per page.
//!
//! It is resumable. After each page, the segment's cursor (its `LastEvaluatedKey`, as JSON) is
//! stored in the state table under `pk = backfill#<table>`, `sk = segment#<i>`, with
//! `done = true` once the segment is finished; a re-run resumes every unfinished segment from
//! its cursor and skips finished ones, and `--restart` forgets them. Filing is idempotent (an
//! entry is a Put of the same key and attributes), so a crash between a page's filings and its
//! cursor write only files that page again.
//!
//! The per-page work ([`page`]), the cursor encoding and the summary are pure, for unit tests.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use indicatif::{ProgressBar, ProgressStyle};
use sessionwarden_aws::layout::{self as item_layout, Read};
use sessionwarden_aws::mapped::MappedSessions;
use sessionwarden_aws::state::{STATE_PK, STATE_SK};
use sessionwarden_aws::RequestCounter;
use sessionwarden_core::change::{Change, ChangeKind, SeqNo};
use sessionwarden_core::config::CommonConfig;
use sessionwarden_core::layout::Mapped;
use sessionwarden_core::ports::{Filing, SessionStore as _};
use sessionwarden_core::stream::filing;

/// A DynamoDB item as the SDK returns it.
pub type SdkItem = HashMap<String, AttributeValue>;

/// Unreadable items listed before "... and N more".
pub const SHOWN_UNREADABLE: usize = 100;

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Parallel scan segments (`TotalSegments`).
    pub segments: u32,
    /// Forget the stored cursors and scan from the start.
    pub restart: bool,
    /// `Limit` of each Scan page.
    pub page_size: u32,
    /// Stop after this many pages in all (tests: an interrupted run).
    pub max_pages: Option<u64>,
}

/// Counts of one page, one segment or a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Scan pages read.
    pub pages: u64,
    /// Items scanned.
    pub scanned: u64,
    /// Sessions filed in the index.
    pub filed: u64,
    /// Sessions already ended by a write: nothing to file.
    pub ended: u64,
    /// Items that are not sessions under the layout.
    pub not_sessions: u64,
    /// Items that claim to be sessions but cannot be read.
    pub unreadable: u64,
    /// Those items, by reference (or "key unreadable"), with the reason.
    pub unreadable_items: Vec<String>,
}

impl Totals {
    /// Adds `other` in.
    pub fn merge(&mut self, other: Totals) {
        self.pages += other.pages;
        self.scanned += other.scanned;
        self.filed += other.filed;
        self.ended += other.ended;
        self.not_sessions += other.not_sessions;
        self.unreadable += other.unreadable;
        self.unreadable_items.extend(other.unreadable_items);
    }
}

/// What one page files.
#[derive(Debug, Clone, Default)]
pub struct PageWork {
    /// The filings of every session of the page, compacted (no entry twice).
    pub filings: Vec<Filing>,
    /// Its counts.
    pub totals: Totals,
    /// The oldest due bucket it files into.
    pub min_bucket: Option<i64>,
}

/// Reads one Scan page through the layout and turns each session into the filings of an INSERT
/// seen at `now`, as the stream would file it.
pub fn page(items: &[SdkItem], m: &Mapped, common: &CommonConfig, now: i64) -> PageWork {
    let mut w = PageWork {
        totals: Totals {
            pages: 1,
            ..Totals::default()
        },
        ..PageWork::default()
    };
    let mut filings = Vec::new();
    for sdk in items {
        w.totals.scanned += 1;
        let item = item_layout::from_sdk(sdk);
        match item_layout::read(m, &item, now) {
            Ok(Read::NotSession) => w.totals.not_sessions += 1,
            Ok(Read::Session(seen)) => {
                let change = Change {
                    seq: SeqNo("backfill".into()),
                    kind: ChangeKind::Insert,
                    session_id: seen.id,
                    old: None,
                    new: Some(seen.image),
                    by_ttl: false,
                    at: now,
                };
                let f = filing::filings(&change, common);
                if f.is_empty() {
                    w.totals.ended += 1;
                } else {
                    w.totals.filed += 1;
                }
                for x in &f {
                    if let Filing::Due { to: Some(slot), .. } = x {
                        w.min_bucket =
                            Some(w.min_bucket.map_or(slot.bucket, |b| b.min(slot.bucket)));
                    }
                }
                filings.extend(f);
            }
            Err(reason) => {
                w.totals.unreadable += 1;
                let reference = item_layout::id_of(m, &item).ok().flatten().map_or_else(
                    || "key unreadable".to_string(),
                    |id| common.session_ref_key.of(&id).to_string(),
                );
                w.totals
                    .unreadable_items
                    .push(format!("{reference:<14} {reason}"));
            }
        }
    }
    w.filings = filing::compact(filings);
    w
}

/// Encodes a `LastEvaluatedKey` as JSON: `{"attr": {"S": ".."}}`, `{"N": ".."}`, or `{"B": hex}`.
pub fn encode_key(key: &SdkItem) -> String {
    let m: serde_json::Map<String, serde_json::Value> = key
        .iter()
        .filter_map(|(k, v)| {
            let v = match v {
                AttributeValue::S(s) => serde_json::json!({ "S": s }),
                AttributeValue::N(n) => serde_json::json!({ "N": n }),
                AttributeValue::B(b) => serde_json::json!({ "B": hex::encode(b.as_ref()) }),
                _ => return None,
            };
            Some((k.clone(), v))
        })
        .collect();
    serde_json::Value::Object(m).to_string()
}

/// Decodes a key made by [`encode_key`].
pub fn decode_key(raw: &str) -> anyhow::Result<SdkItem> {
    let bad =
        || anyhow::anyhow!("stored backfill cursor is not one sessionctl wrote (use --restart)");
    let v: serde_json::Value = serde_json::from_str(raw).map_err(|_| bad())?;
    v.as_object()
        .ok_or_else(bad)?
        .iter()
        .map(|(k, v)| {
            let value = if let Some(s) = v.get("S").and_then(|s| s.as_str()) {
                AttributeValue::S(s.into())
            } else if let Some(n) = v.get("N").and_then(|n| n.as_str()) {
                AttributeValue::N(n.into())
            } else if let Some(b) = v.get("B").and_then(|b| b.as_str()) {
                AttributeValue::B(hex::decode(b).map_err(|_| bad())?.into())
            } else {
                return Err(bad());
            };
            Ok((k.clone(), value))
        })
        .collect()
}

/// Where one segment is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentState {
    /// The key to resume after; `None`: from the start (or finished).
    pub cursor: Option<String>,
    /// True once the segment's last page is filed.
    pub done: bool,
}

/// The cursor records of one table's backfill, in the state table.
#[derive(Debug, Clone)]
pub struct Cursors {
    client: Client,
    state_table: String,
    pk: String,
}

impl Cursors {
    /// The records of `sessions_table`'s backfill.
    pub fn new(client: Client, state_table: &str, sessions_table: &str) -> Self {
        Cursors {
            client,
            state_table: state_table.into(),
            pk: format!("backfill#{sessions_table}"),
        }
    }

    fn sk(segment: u32) -> String {
        format!("segment#{segment}")
    }

    /// Every stored record: segment, the run's segment count, and its state.
    pub async fn load(&self) -> anyhow::Result<Vec<(u32, u32, SegmentState)>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.state_table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", STATE_PK)
                .expression_attribute_values(":pk", AttributeValue::S(self.pk.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .context("reading the backfill cursors (DynamoDB.Query on STATE_TABLE)")?;
            for item in page.items() {
                let segment = item
                    .get(STATE_SK)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|s| s.strip_prefix("segment#"))
                    .and_then(|s| s.parse().ok());
                let total = item
                    .get("segments")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok());
                let (Some(segment), Some(total)) = (segment, total) else {
                    continue;
                };
                out.push((
                    segment,
                    total,
                    SegmentState {
                        cursor: item.get("cursor").and_then(|v| v.as_s().ok()).cloned(),
                        done: item
                            .get("done")
                            .and_then(|v| v.as_bool().ok())
                            .copied()
                            .unwrap_or(false),
                    },
                ));
            }
            start = page.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Stores where `segment` (of `total`) is.
    pub async fn save(&self, segment: u32, total: u32, s: &SegmentState) -> anyhow::Result<()> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.state_table)
            .item(STATE_PK, AttributeValue::S(self.pk.clone()))
            .item(STATE_SK, AttributeValue::S(Self::sk(segment)))
            .item("segments", AttributeValue::N(total.to_string()))
            .item("done", AttributeValue::Bool(s.done))
            .item(
                "updatedAt",
                AttributeValue::N(chrono::Utc::now().timestamp().to_string()),
            );
        if let Some(c) = &s.cursor {
            req = req.item("cursor", AttributeValue::S(c.clone()));
        }
        req.send()
            .await
            .context("storing a backfill cursor (DynamoDB.PutItem on STATE_TABLE)")?;
        Ok(())
    }

    /// Forgets every stored record (`--restart`). Returns how many there were.
    pub async fn forget(&self) -> anyhow::Result<usize> {
        let records = self.load().await?;
        for (segment, _, _) in &records {
            self.client
                .delete_item()
                .table_name(&self.state_table)
                .key(STATE_PK, AttributeValue::S(self.pk.clone()))
                .key(STATE_SK, AttributeValue::S(Self::sk(*segment)))
                .send()
                .await
                .context("forgetting a backfill cursor (DynamoDB.DeleteItem on STATE_TABLE)")?;
        }
        Ok(records.len())
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The counts.
    pub totals: Totals,
    /// AWS requests sent (every attempt, retries included).
    pub requests: u64,
    /// Wall time.
    pub seconds: f64,
    /// Segments of the run.
    pub segments: u32,
    /// Segments already finished by an earlier run, skipped.
    pub already_done: u32,
    /// True when `--max-pages` stopped the run before every segment finished.
    pub stopped: bool,
}

impl fmt::Display for Summary {
    /// The final line: "backfill: 50 items scanned, 48 sessions filed, ...".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.totals;
        write!(
            f,
            "backfill: {} items scanned, {} sessions filed, {} ended (nothing to file), {} not sessions, {} unreadable, {} requests, {:.1} s",
            t.scanned, t.filed, t.ended, t.not_sessions, t.unreadable, self.requests, self.seconds
        )
    }
}

impl Summary {
    /// The lines before the final one: the unreadable items, and how the run ended.
    pub fn details(&self) -> Vec<String> {
        let t = &self.totals;
        let mut out = Vec::new();
        if !t.unreadable_items.is_empty() {
            out.push(format!("unreadable items ({}):", t.unreadable));
            out.extend(
                t.unreadable_items
                    .iter()
                    .take(SHOWN_UNREADABLE)
                    .map(|l| format!("  {l}")),
            );
            if t.unreadable_items.len() > SHOWN_UNREADABLE {
                out.push(format!(
                    "  ... and {} more",
                    t.unreadable_items.len() - SHOWN_UNREADABLE
                ));
            }
        }
        if self.already_done == self.segments && t.pages == 0 {
            out.push(format!(
                "every segment ({}) was finished by an earlier run: nothing to do (--restart scans again)",
                self.segments
            ));
        } else if self.stopped {
            out.push(format!(
                "stopped after {} page{} (--max-pages): run again to resume from the stored cursors",
                t.pages,
                if t.pages == 1 { "" } else { "s" }
            ));
        }
        out
    }
}

struct Run {
    client: Client,
    table: String,
    sessions: MappedSessions,
    common: CommonConfig,
    layout: Mapped,
    cursors: Cursors,
    opts: Options,
    pages: AtomicU64,
    progress: ProgressBar,
    live: Mutex<Totals>,
}

impl Run {
    fn show(&self, t: &Totals) {
        let Ok(mut live) = self.live.lock() else {
            return;
        };
        live.filed += t.filed;
        live.ended += t.ended;
        live.not_sessions += t.not_sessions;
        live.unreadable += t.unreadable;
        self.progress.inc(t.scanned);
        self.progress.set_message(format!(
            "filed {}, ended {}, not sessions {}, unreadable {}",
            live.filed, live.ended, live.not_sessions, live.unreadable
        ));
    }

    /// Runs one segment from `state` to its end (or to the page limit). Returns its counts, the
    /// oldest bucket it filed into, whether the page limit stopped it, and the error that ended
    /// it, if one did: what it filed before an error still counts.
    async fn segment(
        self: Arc<Self>,
        segment: u32,
        mut state: SegmentState,
    ) -> (Totals, Option<i64>, bool, Option<anyhow::Error>) {
        let mut totals = Totals::default();
        let mut min_bucket: Option<i64> = None;
        let total = self.opts.segments;
        while !state.done {
            if let Some(max) = self.opts.max_pages {
                if self.pages.fetch_add(1, Ordering::SeqCst) >= max {
                    return (totals, min_bucket, true, None);
                }
            }
            let start = match state.cursor.as_deref().map(decode_key).transpose() {
                Ok(s) => s,
                Err(e) => return (totals, min_bucket, false, Some(e)),
            };
            let out = match self
                .client
                .scan()
                .table_name(&self.table)
                .segment(segment as i32)
                .total_segments(total as i32)
                .limit(self.opts.page_size as i32)
                .set_exclusive_start_key(start)
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    let e = anyhow::Error::new(sessionwarden_aws::sdk_error("DynamoDB.Scan", e))
                        .context(format!("scanning segment {segment} of {}", self.table));
                    return (totals, min_bucket, false, Some(e));
                }
            };
            let now = chrono::Utc::now().timestamp();
            let work = page(out.items(), &self.layout, &self.common, now);
            if !work.filings.is_empty() {
                if let Err(e) = self.sessions.file(&work.filings).await {
                    let e = anyhow::Error::new(e).context("filing a page in the state table");
                    return (totals, min_bucket, false, Some(e));
                }
            }
            if let Some(b) = work.min_bucket {
                min_bucket = Some(min_bucket.map_or(b, |m| m.min(b)));
            }
            let next = out.last_evaluated_key.filter(|k| !k.is_empty());
            state = SegmentState {
                done: next.is_none(),
                cursor: next.as_ref().map(encode_key),
            };
            self.show(&work.totals);
            totals.merge(work.totals);
            if let Err(e) = self.cursors.save(segment, total, &state).await {
                return (totals, min_bucket, false, Some(e));
            }
        }
        (totals, min_bucket, false, None)
    }
}

/// The progress bar, when DescribeTable gives an item count.
const BAR: &str =
    "{spinner} [{elapsed_precise}] {bar:30} {human_pos}/~{human_len} items (eta {eta}) {msg}";
/// The spinner, when it gives none.
const SPINNER: &str = "{spinner} [{elapsed_precise}] {human_pos} items scanned: {msg}";

fn progress_bar(estimate: u64) -> ProgressBar {
    let bar = if estimate > 0 {
        let b = ProgressBar::new(estimate);
        b.set_style(
            ProgressStyle::with_template(BAR).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        // An estimate of 0 (DynamoDB updates ItemCount about every six hours; emulators may not
        // at all): a spinner with the counts.
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template(SPINNER)
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b
    };
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Backfills `common.sessions_table` (of mapped layout `layout`) into the indexes in
/// `state_table`. `counter` counts the requests of the clients behind `client`.
pub async fn run(
    client: Client,
    counter: &RequestCounter,
    common: &CommonConfig,
    layout: &Mapped,
    state_table: &str,
    opts: Options,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let before = counter.total();
    let table = common.sessions_table.clone();
    let described = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .with_context(|| format!("describing {table} (SESSIONS_TABLE)"))?;
    let estimate = described
        .table
        .and_then(|t| t.item_count)
        .unwrap_or(0)
        .max(0) as u64;
    let cursors = Cursors::new(client.clone(), state_table, &table);
    if opts.restart {
        let n = cursors.forget().await?;
        if n > 0 {
            eprintln!("--restart: forgot {n} stored segment cursors; scanning from the start");
        }
    }
    let stored = cursors.load().await?;
    if let Some((_, other, _)) = stored.iter().find(|(_, t, _)| *t != opts.segments) {
        anyhow::bail!(
            "a backfill of {table} with {other} segments is stored; run again with --segments {other} to resume it, or with --restart to scan from the start"
        );
    }
    let mut states: HashMap<u32, SegmentState> = stored
        .into_iter()
        .filter(|(s, _, _)| *s < opts.segments)
        .map(|(s, _, st)| (s, st))
        .collect();
    let already_done = states.values().filter(|s| s.done).count() as u32;
    let resuming = states
        .values()
        .filter(|s| !s.done && s.cursor.is_some())
        .count();
    if already_done > 0 || resuming > 0 {
        eprintln!(
            "resuming: {already_done} of {} segments already finished, {resuming} continue from their cursors",
            opts.segments
        );
    }
    let sessions = MappedSessions::new(
        client.clone(),
        &table,
        state_table,
        layout.clone(),
        common.session_ref_key.clone(),
        common.expiry,
        common.index,
    );
    let segments = opts.segments;
    let run = Arc::new(Run {
        client,
        table: table.clone(),
        sessions: sessions.clone(),
        common: common.clone(),
        layout: layout.clone(),
        cursors,
        opts,
        pages: AtomicU64::new(0),
        progress: progress_bar(estimate),
        live: Mutex::new(Totals::default()),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..segments {
        let state = states.remove(&i).unwrap_or_default();
        tasks.spawn(run.clone().segment(i, state));
    }
    let mut totals = Totals::default();
    let mut min_bucket: Option<i64> = None;
    let mut stopped = false;
    let mut error = None;
    while let Some(joined) = tasks.join_next().await {
        let (t, b, s, e) = match joined {
            Ok(r) => r,
            Err(e) => (Totals::default(), None, false, Some(anyhow::Error::new(e))),
        };
        totals.merge(t);
        if let Some(b) = b {
            min_bucket = Some(min_bucket.map_or(b, |m| m.min(b)));
        }
        stopped |= s;
        if error.is_none() {
            error = e;
        }
    }
    run.progress.finish_and_clear();
    // Cleanup reads the due buckets from its watermark on; make sure it reads the oldest one
    // this run filed into, even if a cleanup run passed it meanwhile.
    if let Some(b) = min_bucket {
        sessions
            .lower_watermark(b)
            .await
            .context("lowering the due index watermark")?;
    }
    if let Some(e) = error {
        return Err(e.context(format!(
            "backfill stopped after {} items (what was filed stays filed; run again to resume)",
            totals.scanned
        )));
    }
    Ok(Summary {
        totals,
        requests: counter.total() - before,
        seconds: started.elapsed().as_secs_f64(),
        segments,
        already_done,
        stopped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionwarden_core::cascade_message::Target;
    use sessionwarden_core::layout::{connect_dynamodb, ConnectOptions, Layout};

    const NOW: i64 = 1_800_000_000;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }
    fn common() -> CommonConfig {
        let env = |k: &str| match k {
            "SESSIONS_TABLE" => Some("t-sessions".to_string()),
            "SESSION_REF_KEY" => Some("unit-test-key-0123456789".to_string()),
            "SESSION_LAYOUT" => Some("connect-dynamodb".to_string()),
            _ => None,
        };
        CommonConfig::from_source(&env).unwrap()
    }
    fn connect(sid: &str, expires: i64, sess: &str) -> SdkItem {
        HashMap::from([
            ("id".into(), s(&format!("sess:{sid}"))),
            ("expires".into(), AttributeValue::N(expires.to_string())),
            ("type".into(), s("connect-session")),
            ("sess".into(), s(sess)),
        ])
    }

    #[test]
    fn a_page_files_due_entries_and_user_lists_and_counts_the_rest() {
        let common = common();
        let Layout::Mapped(m) = &common.layout else {
            panic!("mapped")
        };
        assert_eq!(**m, connect_dynamodb(&ConnectOptions::default()));
        let items = vec![
            connect("future", NOW + 3 * 3600, r#"{"passport":{"user":"u-1"}}"#),
            connect("past", NOW - 3600, r#"{"user":{"id":"u-2"}}"#),
            connect("anon", NOW + 60, r#"{"cookie":{}}"#),
            connect("broken", NOW + 60, "not json"),
            HashMap::from([("id".into(), s("other:x"))]),
        ];
        let w = page(&items, m, &common, NOW);
        assert_eq!(
            w.totals,
            Totals {
                pages: 1,
                scanned: 5,
                filed: 3,
                ended: 0,
                not_sessions: 1,
                unreadable: 1,
                unreadable_items: vec![format!(
                    "{:<14} attribute sess is not JSON: expected ident at line 1 column 2",
                    common.session_ref_key.reference("broken").to_string()
                )],
            }
        );
        let due: Vec<i64> = w
            .filings
            .iter()
            .filter_map(|f| match f {
                Filing::Due {
                    from: None,
                    to: Some(slot),
                    ..
                } => Some(slot.bucket),
                _ => None,
            })
            .collect();
        let bucket = |t: i64| common.index.bucket(t);
        // The past-due session files in the bucket before the current one, the last one cleanup
        // has finished, which its next run re-reads.
        assert_eq!(
            due,
            vec![bucket(NOW + 3 * 3600), bucket(NOW) - 1, bucket(NOW + 60)]
        );
        assert_eq!(w.min_bucket, Some(bucket(NOW) - 1));
        let users: Vec<&Target> = w
            .filings
            .iter()
            .filter_map(|f| match f {
                Filing::Member {
                    group,
                    present: true,
                    ..
                } => Some(group),
                _ => None,
            })
            .collect();
        assert_eq!(
            users,
            vec![&Target::User("u-1".into()), &Target::User("u-2".into())]
        );
    }

    #[test]
    fn the_progress_templates_parse() {
        assert!(ProgressStyle::with_template(BAR).is_ok());
        assert!(ProgressStyle::with_template(SPINNER).is_ok());
    }

    #[test]
    fn cursors_round_trip() {
        let key: SdkItem = HashMap::from([
            ("pk".into(), s("USER#u")),
            ("n".into(), AttributeValue::N("12.5".into())),
            (
                "b".into(),
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(vec![0, 1, 255])),
            ),
        ]);
        assert_eq!(decode_key(&encode_key(&key)).unwrap(), key);
        assert!(decode_key("nope").is_err());
        assert!(decode_key(r#"{"a": {"L": []}}"#).is_err());
    }

    #[test]
    fn the_summary_says_what_happened() {
        let mut s = Summary {
            totals: Totals {
                pages: 3,
                scanned: 50,
                filed: 48,
                ended: 0,
                not_sessions: 1,
                unreadable: 1,
                unreadable_items: vec!["0123456789ab   attribute sess is not JSON".into()],
            },
            requests: 12,
            seconds: 0.42,
            segments: 4,
            already_done: 0,
            stopped: false,
        };
        assert_eq!(
            s.to_string(),
            "backfill: 50 items scanned, 48 sessions filed, 0 ended (nothing to file), 1 not sessions, 1 unreadable, 12 requests, 0.4 s"
        );
        assert_eq!(s.details()[0], "unreadable items (1):");
        s.stopped = true;
        assert!(s.details().last().unwrap().contains("run again to resume"));
        let done = Summary {
            segments: 4,
            already_done: 4,
            ..Summary::default()
        };
        assert!(done.details()[0].contains("nothing to do"));
    }
}
