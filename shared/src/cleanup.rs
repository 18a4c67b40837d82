//! The cleanup service: one hourly sweep that expires every ACTIVE session past its idle or
//! absolute deadline. It owns the orchestration (paging, bounded concurrent conditional writes,
//! the deadline stop, the report and the metrics), and is generic over the [`CleanupStore`] port
//! so it knows no AWS types. The decision for one session is [`crate::expiry::ExpiryPolicy`].

use std::future::Future;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::aws::{error_chain, AwsError};
use crate::config::{CleanupConfig, CleanupStrategy};
use crate::deadline::Deadline;
use crate::expiry::{ExpiryReason, SessionClock, Verdict};
use crate::metrics::{MetricBatch, MetricsSink, Unit};
use crate::session::{SessionId, Status, TerminationReason};

/// Which part of the table one sweep loop reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Query the sweep index for ACTIVE sessions with `sweepAt <= now`.
    Index {
        /// The GSI name.
        index: String,
    },
    /// One segment of a parallel scan.
    Segment {
        /// This segment.
        segment: u32,
        /// Number of segments.
        total: u32,
    },
}

/// The raw `lastActivityAt` exactly as read; the expiring write is conditional on it being
/// unchanged, so a session touched between read and write survives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence(pub Option<String>);

/// A session that may be due, with just the attributes cleanup needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The session.
    pub id: SessionId,
    /// Its status as read.
    pub status: Status,
    /// Its timing attributes.
    pub clock: SessionClock,
    /// Its `lastActivityAt` as read.
    pub fence: Fence,
}

/// An item that could not be read as a candidate; it is logged and counted, never written.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    /// The session, if even its key was readable.
    pub id: Option<SessionId>,
    /// What was wrong.
    pub reason: String,
}

/// One page of candidates.
#[derive(Debug)]
pub struct Page<C> {
    /// Candidates in read order.
    pub candidates: Vec<Result<Candidate, Unreadable>>,
    /// Items DynamoDB read to produce this page (`ScannedCount`): what the read cost.
    pub items_read: u64,
    /// Where the next page starts, if there is one.
    pub next: Option<C>,
}

/// What the ending write records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// New status (`EXPIRED` for cleanup).
    pub status: Status,
    /// `terminationReason`.
    pub reason: TerminationReason,
    /// `terminatedAt`, epoch seconds.
    pub at: i64,
    /// `expiresAt` (TTL), epoch seconds.
    pub retain_until: i64,
    /// `terminatedBy`: the root request of a cascade, so an investigator can rebuild it.
    pub by: Option<String>,
}

/// What the conditional write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireOutcome {
    /// The session was ACTIVE and untouched; it is now ended.
    Expired,
    /// `lastActivityAt` changed since the read: the session is in use and survives.
    Touched,
    /// Someone else ended it first; its reason is left as it was.
    AlreadyEnded,
    /// The item no longer exists.
    Gone,
}

/// The storage port of cleanup.
pub trait CleanupStore: Send + Sync {
    /// Opaque position of the next page.
    type Cursor: Send;

    /// Reads one page of candidates of `scope` that may be due at `now`.
    fn page(
        &self,
        scope: &Scope,
        now: i64,
        limit: u32,
        cursor: Option<Self::Cursor>,
    ) -> impl Future<Output = Result<Page<Self::Cursor>, AwsError>> + Send;

    /// Ends `candidate` with `termination`, only if it is still ACTIVE and its `lastActivityAt`
    /// still equals the fence. One atomic write: a session is never half-written.
    fn expire(
        &self,
        candidate: &Candidate,
        termination: &Termination,
    ) -> impl Future<Output = Result<ExpireOutcome, AwsError>> + Send;
}

/// Sessions expired in one run, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExpiredCounts {
    /// Idle deadline passed.
    pub idle: u64,
    /// Absolute deadline passed.
    pub absolute: u64,
}

/// The JSON summary a cleanup run returns (and logs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupReport {
    /// `index` or `scan`.
    pub strategy: String,
    /// The instant the run evaluated deadlines against, epoch seconds.
    pub now: i64,
    /// Candidates evaluated by the policy.
    pub examined: u64,
    /// Sessions this run ended.
    pub expired: ExpiredCounts,
    /// Due sessions left alone because they were touched between read and write.
    pub skipped_touched: u64,
    /// Candidates that some other writer ended first.
    pub skipped_already_ended: u64,
    /// Candidates deleted before the write.
    pub skipped_gone: u64,
    /// Candidates still within their deadlines (an early `sweepAt`, or any ACTIVE item in a scan).
    pub not_due: u64,
    /// Items that could not be read as sessions; logged with their reference.
    pub unreadable: u64,
    /// Conditional writes that failed with an AWS error; retried by the next run.
    pub write_errors: u64,
    /// Due sessions not written because the deadline came; left for the next run.
    pub deferred_by_deadline: u64,
    /// Items DynamoDB read (`ScannedCount` summed): the read cost of the run.
    pub items_read: u64,
    /// Query or Scan requests made.
    pub read_requests: u64,
    /// Conditional UpdateItem requests made.
    pub write_requests: u64,
    /// True when every due session found was handled and nothing failed.
    pub finished: bool,
    /// True when the run stopped early to keep a safety margin before the Lambda deadline.
    pub stopped_at_deadline: bool,
    /// Wall time of the run.
    pub duration_ms: u64,
}

impl CleanupReport {
    /// Total sessions this run ended.
    pub fn expired_total(&self) -> u64 {
        self.expired.idle + self.expired.absolute
    }

    /// The run's metrics. Zero values are sent too, so alarms see "nothing happened" as data.
    pub fn metrics(&self) -> MetricBatch {
        let mut b = MetricBatch::new();
        b.count("SessionsExpired", &[("Reason", "idle")], self.expired.idle);
        b.count(
            "SessionsExpired",
            &[("Reason", "absolute")],
            self.expired.absolute,
        );
        b.count("CleanupSessionsExamined", &[], self.examined);
        b.count(
            "CleanupSessionsSkipped",
            &[("Reason", "touched")],
            self.skipped_touched,
        );
        b.count("CleanupWriteErrors", &[], self.write_errors);
        b.count("CleanupIncomplete", &[], u64::from(!self.finished));
        b.count("CleanupRuns", &[], 1);
        b.add(
            "CleanupDurationMs",
            &[],
            self.duration_ms as f64,
            Unit::Milliseconds,
        );
        b
    }

    fn merge(&mut self, o: &CleanupReport) {
        self.examined += o.examined;
        self.expired.idle += o.expired.idle;
        self.expired.absolute += o.expired.absolute;
        self.skipped_touched += o.skipped_touched;
        self.skipped_already_ended += o.skipped_already_ended;
        self.skipped_gone += o.skipped_gone;
        self.not_due += o.not_due;
        self.unreadable += o.unreadable;
        self.write_errors += o.write_errors;
        self.deferred_by_deadline += o.deferred_by_deadline;
        self.items_read += o.items_read;
        self.read_requests += o.read_requests;
        self.write_requests += o.write_requests;
        self.stopped_at_deadline |= o.stopped_at_deadline;
    }
}

/// A cleanup run that could not read its candidates. The partial report is kept for the log.
#[derive(Debug, thiserror::Error)]
#[error("cleanup could not read candidate sessions ({} expired before the failure)", report.expired_total())]
pub struct CleanupError {
    /// What was done before the failure.
    pub report: Box<CleanupReport>,
    /// The read that failed.
    #[source]
    pub source: AwsError,
}

impl CleanupError {
    /// True if the next invocation may succeed.
    pub fn is_transient(&self) -> bool {
        self.source.is_transient()
    }
}

/// Runs one cleanup sweep at `now`, stopping `config.deadline_margin` before `deadline`.
/// Metrics are flushed once at the end, whatever happened.
pub async fn run_cleanup<S, M>(
    store: &S,
    metrics: &M,
    config: &CleanupConfig,
    now: DateTime<Utc>,
    deadline: &dyn Deadline,
) -> Result<CleanupReport, CleanupError>
where
    S: CleanupStore,
    M: MetricsSink,
{
    let started = Instant::now();
    let now_s = now.timestamp();
    let scopes: Vec<Scope> = match config.strategy {
        CleanupStrategy::Index => vec![Scope::Index {
            index: config.sweep_index.clone(),
        }],
        CleanupStrategy::Scan => (0..config.scan_segments)
            .map(|segment| Scope::Segment {
                segment,
                total: config.scan_segments,
            })
            .collect(),
    };
    // One permit pool for all scopes, so parallel scan segments share the write concurrency.
    let writes = Semaphore::new(config.write_concurrency);
    let sweeps = futures::future::join_all(
        scopes
            .iter()
            .map(|scope| sweep_scope(store, config, scope, now_s, deadline, &writes)),
    )
    .await;

    let mut report = CleanupReport {
        strategy: config.strategy.to_string(),
        now: now_s,
        ..Default::default()
    };
    let mut failure = None;
    for (part, error) in sweeps {
        report.merge(&part);
        if let Some(e) = error {
            failure.get_or_insert(e);
        }
    }
    report.finished = failure.is_none() && !report.stopped_at_deadline && report.write_errors == 0;
    report.duration_ms = started.elapsed().as_millis() as u64;

    if let Err(e) = metrics
        .publish(&config.common.metrics_namespace, &report.metrics())
        .await
    {
        tracing::error!(error = %error_chain(&e), "cleanup metrics were not published");
    }
    tracing::info!(
        strategy = %report.strategy,
        examined = report.examined,
        expired_idle = report.expired.idle,
        expired_absolute = report.expired.absolute,
        skipped_touched = report.skipped_touched,
        skipped_already_ended = report.skipped_already_ended,
        not_due = report.not_due,
        unreadable = report.unreadable,
        write_errors = report.write_errors,
        deferred_by_deadline = report.deferred_by_deadline,
        items_read = report.items_read,
        read_requests = report.read_requests,
        write_requests = report.write_requests,
        finished = report.finished,
        stopped_at_deadline = report.stopped_at_deadline,
        duration_ms = report.duration_ms,
        "cleanup run summary"
    );
    match failure {
        None => Ok(report),
        Some(source) => {
            tracing::error!(error = %error_chain(&source), "cleanup read failed");
            Err(CleanupError {
                report: Box::new(report),
                source,
            })
        }
    }
}

fn out_of_time(deadline: &dyn Deadline, config: &CleanupConfig) -> bool {
    deadline.remaining() <= config.deadline_margin
}

/// Pages through one scope. Returns its part of the report and the read error that ended it, if any.
async fn sweep_scope<S: CleanupStore>(
    store: &S,
    config: &CleanupConfig,
    scope: &Scope,
    now: i64,
    deadline: &dyn Deadline,
    writes: &Semaphore,
) -> (CleanupReport, Option<AwsError>) {
    let key = &config.common.session_ref_key;
    let policy = &config.common.expiry;
    let mut r = CleanupReport::default();
    let mut cursor = None;
    loop {
        if out_of_time(deadline, config) {
            r.stopped_at_deadline = true;
            break;
        }
        let page = match store
            .page(scope, now, config.page_size, cursor.take())
            .await
        {
            Ok(p) => p,
            Err(e) => return (r, Some(e)),
        };
        r.read_requests += 1;
        r.items_read += page.items_read;

        let mut due = Vec::new();
        for c in page.candidates {
            let c = match c {
                Ok(c) => c,
                Err(u) => {
                    r.unreadable += 1;
                    let session_ref = u.id.as_ref().map(|id| key.of(id).to_string());
                    tracing::warn!(session_ref = session_ref.as_deref().unwrap_or("-"), reason = %u.reason, "unreadable session item skipped");
                    continue;
                }
            };
            r.examined += 1;
            if c.status.is_ended() {
                r.skipped_already_ended += 1;
                continue;
            }
            match policy.evaluate(&c.clock, now) {
                Verdict::Due { reason, .. } => due.push((c, reason)),
                Verdict::NotDue { .. } => r.not_due += 1,
                Verdict::Undecidable => {
                    r.unreadable += 1;
                    tracing::warn!(session_ref = %key.of(&c.id), "session has neither lastActivityAt nor createdAt; skipped");
                }
            }
        }

        let outcomes: Vec<_> = stream::iter(due)
            .map(|(c, reason)| async move {
                let _permit = writes.acquire().await;
                // Checked when the write is about to start, not when the page was read.
                if out_of_time(deadline, config) {
                    return (c, reason, None);
                }
                let termination = Termination {
                    status: Status::Expired,
                    reason: match reason {
                        ExpiryReason::Idle => TerminationReason::Idle,
                        ExpiryReason::Absolute => TerminationReason::Absolute,
                    },
                    at: now,
                    retain_until: policy.retain_until(now),
                    by: None,
                };
                let outcome = store.expire(&c, &termination).await;
                (c, reason, Some(outcome))
            })
            .buffer_unordered(config.write_concurrency)
            .collect()
            .await;

        for (c, reason, outcome) in outcomes {
            let Some(outcome) = outcome else {
                r.deferred_by_deadline += 1;
                r.stopped_at_deadline = true;
                continue;
            };
            r.write_requests += 1;
            match outcome {
                Ok(ExpireOutcome::Expired) => {
                    match reason {
                        ExpiryReason::Idle => r.expired.idle += 1,
                        ExpiryReason::Absolute => r.expired.absolute += 1,
                    }
                    tracing::debug!(session_ref = %key.of(&c.id), reason = reason.as_str(), "session expired");
                }
                Ok(ExpireOutcome::Touched) => {
                    r.skipped_touched += 1;
                    tracing::debug!(session_ref = %key.of(&c.id), "session touched since read; left active");
                }
                Ok(ExpireOutcome::AlreadyEnded) => r.skipped_already_ended += 1,
                Ok(ExpireOutcome::Gone) => r.skipped_gone += 1,
                Err(e) => {
                    r.write_errors += 1;
                    tracing::warn!(session_ref = %key.of(&c.id), transient = e.is_transient(), error = %error_chain(&e), "expiring write failed; the next run retries it");
                }
            }
        }
        if r.stopped_at_deadline {
            break;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    (r, None)
}

#[cfg(test)]
mod tests {
    //! Failure paths of the orchestration, with in-memory ports. The AWS adapter itself is tested
    //! against the emulator in `tests/cleanup.rs`.
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    struct MemStore {
        items: Mutex<HashMap<String, (Status, i64)>>,
        failing_writes: Vec<String>,
        fail_reads: bool,
        unreadable: usize,
    }

    impl MemStore {
        fn with(ids: &[&str], idle_for: i64, now: i64) -> Self {
            MemStore {
                items: Mutex::new(
                    ids.iter()
                        .map(|i| (i.to_string(), (Status::Active, now - idle_for)))
                        .collect(),
                ),
                failing_writes: vec![],
                fail_reads: false,
                unreadable: 0,
            }
        }
    }

    impl CleanupStore for MemStore {
        type Cursor = ();
        async fn page(
            &self,
            _: &Scope,
            _: i64,
            _: u32,
            _: Option<()>,
        ) -> Result<Page<()>, AwsError> {
            if self.fail_reads {
                return Err(AwsError::Transient {
                    operation: "DynamoDB.Query",
                    source: "throttled".into(),
                });
            }
            let mut candidates: Vec<_> = self
                .items
                .lock()
                .unwrap()
                .iter()
                .map(|(id, (status, last))| {
                    Ok(Candidate {
                        id: SessionId::new(id.clone()),
                        status: *status,
                        clock: SessionClock {
                            created_at: Some(*last),
                            last_activity_at: Some(*last),
                            ..Default::default()
                        },
                        fence: Fence(Some(last.to_string())),
                    })
                })
                .collect();
            for _ in 0..self.unreadable {
                candidates.push(Err(Unreadable {
                    id: Some(SessionId::new("broken")),
                    reason: "attribute status is missing".into(),
                }));
            }
            let n = candidates.len() as u64;
            Ok(Page {
                candidates,
                items_read: n,
                next: None,
            })
        }

        async fn expire(&self, c: &Candidate, t: &Termination) -> Result<ExpireOutcome, AwsError> {
            if self.failing_writes.iter().any(|f| f == c.id.expose()) {
                return Err(AwsError::Transient {
                    operation: "DynamoDB.UpdateItem",
                    source: "ServiceUnavailable".into(),
                });
            }
            let mut items = self.items.lock().unwrap();
            let entry = items.get_mut(c.id.expose()).unwrap();
            entry.0 = t.status;
            Ok(ExpireOutcome::Expired)
        }
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<MetricBatch>>);
    impl MetricsSink for Recorder {
        async fn publish(
            &self,
            _: &str,
            batch: &MetricBatch,
        ) -> Result<(), crate::metrics::MetricsError> {
            self.0.lock().unwrap().push(batch.clone());
            Ok(())
        }
    }

    fn config() -> CleanupConfig {
        let env = |k: &str| match k {
            "SESSIONS_TABLE" => Some("t".to_string()),
            "SESSION_REF_KEY" => Some("0123456789abcdef".to_string()),
            _ => None,
        };
        CleanupConfig::from_source(&env).unwrap()
    }

    const NOW: i64 = 1_800_000_000;
    fn plenty() -> crate::deadline::EpochDeadline {
        crate::deadline::EpochDeadline::in_from_now(std::time::Duration::from_secs(600))
    }
    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(NOW, 0).unwrap()
    }

    #[tokio::test]
    async fn a_failed_write_is_counted_and_the_others_still_happen() {
        let mut store = MemStore::with(&["a", "b", "c"], 9 * 3600, NOW);
        store.failing_writes = vec!["b".into()];
        let rec = Recorder::default();
        let r = run_cleanup(&store, &rec, &config(), now(), &plenty())
            .await
            .unwrap();
        assert_eq!(
            (r.expired.idle, r.write_errors, r.write_requests),
            (2, 1, 3)
        );
        assert!(!r.finished);
        let batches = rec.0.lock().unwrap();
        assert_eq!(batches.len(), 1, "one flush per invocation");
        assert_eq!(batches[0].get("CleanupWriteErrors", &[]), Some(1.0));
        assert_eq!(batches[0].get("CleanupIncomplete", &[]), Some(1.0));
        assert_eq!(store.items.lock().unwrap()["b"].0, Status::Active);
    }

    #[tokio::test]
    async fn a_failed_read_is_a_transient_error_and_metrics_still_flush() {
        let mut store = MemStore::with(&["a"], 9 * 3600, NOW);
        store.fail_reads = true;
        let rec = Recorder::default();
        let e = run_cleanup(&store, &rec, &config(), now(), &plenty())
            .await
            .unwrap_err();
        assert!(e.is_transient());
        assert!(
            crate::aws::error_chain(&e).contains("throttled"),
            "{}",
            crate::aws::error_chain(&e)
        );
        let batches = rec.0.lock().unwrap();
        assert_eq!(batches[0].get("CleanupRuns", &[]), Some(1.0));
        assert_eq!(batches[0].get("CleanupIncomplete", &[]), Some(1.0));
    }

    #[tokio::test]
    async fn unreadable_items_are_counted_never_written() {
        let mut store = MemStore::with(&["a"], 9 * 3600, NOW);
        store.unreadable = 2;
        let r = run_cleanup(&store, &Recorder::default(), &config(), now(), &plenty())
            .await
            .unwrap();
        assert_eq!((r.unreadable, r.expired.idle, r.write_requests), (2, 1, 1));
        assert!(
            r.finished,
            "unreadable items are reported, not retried forever"
        );
    }
}
