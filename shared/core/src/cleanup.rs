//! The cleanup service: one hourly sweep that expires every ACTIVE session past its idle or
//! absolute deadline. It owns the orchestration (paging, bounded concurrent conditional writes,
//! the deadline stop, the report and the metrics), and is generic over the [`SessionStore`] and [`MetricsSink`] ports
//! so it knows no AWS types. The decision for one session is [`crate::expiry::ExpiryPolicy`].

use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::config::{CleanupConfig, CleanupStrategy};
use crate::deadline::{bounded, out_of_time, persist, within, Deadline};
use crate::error::{error_chain, PortError};
use crate::expiry::{ExpiryReason, Verdict};
use crate::metrics::MetricBatch;
use crate::ports::{
    EndOutcome, Filing, MetricsSink, PageRequest, Scope, SessionStore, Slot, Termination,
};
use crate::session::{Status, TerminationReason};

/// Tries of one ending write in a run (each after the SDK's own retries), while time is left.
const END_TRIES: u32 = 5;

/// Sessions expired in one run, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExpiredCounts {
    /// Idle deadline passed.
    pub idle: u64,
    /// Absolute deadline passed.
    pub absolute: u64,
    /// The layout's TTL deadline (`expires`) passed and DynamoDB had not deleted the item yet:
    /// the TTL-lateness window, closed.
    pub ttl: u64,
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
    /// Conditional end writes made (UpdateItem, or DeleteItem on layouts that end by deleting).
    pub write_requests: u64,
    /// Entries of sessionwarden's own due index removed or re-filed (non-native layouts).
    pub index_writes: u64,
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
        self.expired.idle + self.expired.absolute + self.expired.ttl
    }

    /// The run's metrics. Zero values are sent too, so alarms see "nothing happened" as data.
    pub fn metrics(&self) -> MetricBatch {
        let mut b = MetricBatch::new();
        b.counts(&[
            ("SessionsExpired", &[("Reason", "idle")], self.expired.idle),
            (
                "SessionsExpired",
                &[("Reason", "absolute")],
                self.expired.absolute,
            ),
            ("SessionsExpired", &[("Reason", "ttl")], self.expired.ttl),
            ("CleanupSessionsExamined", &[], self.examined),
            (
                "CleanupSessionsSkipped",
                &[("Reason", "touched")],
                self.skipped_touched,
            ),
            ("CleanupWriteErrors", &[], self.write_errors),
            ("CleanupIncomplete", &[], u64::from(!self.finished)),
            ("CleanupRuns", &[], 1),
        ]);
        b.duration_ms("CleanupDurationMs", self.duration_ms);
        b
    }

    fn merge(&mut self, o: &CleanupReport) {
        self.examined += o.examined;
        self.expired.idle += o.expired.idle;
        self.expired.absolute += o.expired.absolute;
        self.expired.ttl += o.expired.ttl;
        self.index_writes += o.index_writes;
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
    pub source: PortError,
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
    S: SessionStore,
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

    let batch = report.metrics();
    let flush = metrics.publish(&config.common.metrics_namespace, &batch);
    if let Err(e) = bounded(deadline, "MetricsSink.publish", flush).await {
        tracing::error!(error = %error_chain(&e), "cleanup metrics were not published");
    }
    crate::metrics::log_summary("cleanup run summary", &report);
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

/// Pages through one scope. Returns its part of the report and the read error that ended it, if any.
async fn sweep_scope<S: SessionStore>(
    store: &S,
    config: &CleanupConfig,
    scope: &Scope,
    now: i64,
    deadline: &dyn Deadline,
    writes: &Semaphore,
) -> (CleanupReport, Option<PortError>) {
    let key = &config.common.session_ref_key;
    let policy = &config.common.expiry;
    let mut r = CleanupReport::default();
    let mut cursor = None;
    loop {
        if out_of_time(deadline, config.deadline_margin) {
            r.stopped_at_deadline = true;
            break;
        }
        let read = store.due(
            scope,
            now,
            PageRequest {
                limit: config.page_size,
                cursor: cursor.take(),
            },
        );
        let page = match within(deadline, config.deadline_margin, "SessionStore.due", read).await {
            Ok(p) => p,
            // Its budget ran out: stop and leave the rest to the next run, like the deadline check.
            Err(_) if out_of_time(deadline, config.deadline_margin) => {
                r.stopped_at_deadline = true;
                break;
            }
            Err(e) => return (r, Some(e)),
        };
        r.read_requests += page.requests;
        r.items_read += page.items_read;
        let mut filings = Vec::new();
        let unfile = |c: &crate::ports::Candidate| {
            c.slot.map(|from| Filing::Due {
                id: c.id.clone(),
                from: Some(from),
                to: None,
            })
        };

        let mut due = Vec::new();
        for c in page.items {
            let c = match c {
                Ok(c) => c,
                Err(u) => {
                    r.unreadable += 1;
                    if let (Some(id), Some(from)) = (&u.id, u.slot) {
                        filings.push(Filing::Due {
                            id: id.clone(),
                            from: Some(from),
                            to: None,
                        });
                    }
                    let session_ref = u.id.as_ref().map(|id| key.of(id).to_string());
                    tracing::warn!(session_ref = session_ref.as_deref().unwrap_or("-"), reason = %u.reason, "unreadable session item skipped");
                    continue;
                }
            };
            r.examined += 1;
            if c.status.is_ended() {
                r.skipped_already_ended += 1;
                filings.extend(unfile(&c));
                continue;
            }
            match policy.evaluate(&c.clock, now) {
                Verdict::Due { reason, .. } => due.push((c, reason)),
                Verdict::NotDue { next } => {
                    r.not_due += 1;
                    // Touched within its bucket since it was filed: file it where it is due now.
                    if let Some(from) = c.slot {
                        filings.push(Filing::Due {
                            id: c.id.clone(),
                            from: Some(from),
                            to: Some(Slot {
                                bucket: config.common.index.bucket(next),
                                due_at: next,
                            }),
                        });
                    }
                }
                Verdict::Undecidable => {
                    r.unreadable += 1;
                    filings.extend(unfile(&c));
                    tracing::warn!(session_ref = %key.of(&c.id), "session has neither lastActivityAt nor createdAt; skipped");
                }
            }
        }

        let outcomes: Vec<_> = stream::iter(due)
            .map(|(c, reason)| async move {
                let _permit = writes.acquire().await;
                // Checked when the write is about to start, not when the page was read.
                if out_of_time(deadline, config.deadline_margin) {
                    return (c, reason, None, 0);
                }
                let termination = Termination {
                    status: Status::Expired,
                    reason: match reason {
                        ExpiryReason::Idle => TerminationReason::Idle,
                        ExpiryReason::Absolute => TerminationReason::Absolute,
                        ExpiryReason::Lapsed => TerminationReason::Lapsed,
                    },
                    at: now,
                    retain_until: policy.retain_until(now),
                    by: None,
                    fence: Some(c.fence.clone()),
                };
                // Once started, a write may use the margin (kept for this): an end abandoned at
                // the deadline, or failed after the SDK's retries, may still have landed (a lost
                // response), and the next run would not see that session (it is due no more), so
                // its end would go uncounted. The same conditional write again tells: ours, from
                // ALL_OLD (the same `terminatedAt`), or not applied and applied now.
                let mut requests = 0u64;
                let outcome = persist(deadline, END_TRIES, "SessionStore.end", || {
                    requests += 1;
                    store.end(&c.id, &termination)
                })
                .await;
                (c, reason, Some(outcome), requests)
            })
            .buffer_unordered(config.write_concurrency)
            .collect()
            .await;

        for (c, reason, outcome, requests) in outcomes {
            let Some(outcome) = outcome else {
                r.deferred_by_deadline += 1;
                r.stopped_at_deadline = true;
                continue;
            };
            r.write_requests += requests;
            if matches!(
                outcome,
                Ok(EndOutcome::Ended
                    | EndOutcome::AlreadyEnded
                    | EndOutcome::Gone
                    | EndOutcome::Touched)
            ) {
                // A touched session was filed where it is due now by the store's `end`.
                filings.extend(unfile(&c));
            }
            match outcome {
                Ok(EndOutcome::Ended) => {
                    match reason {
                        ExpiryReason::Idle => r.expired.idle += 1,
                        ExpiryReason::Absolute => r.expired.absolute += 1,
                        ExpiryReason::Lapsed => r.expired.ttl += 1,
                    }
                    tracing::debug!(session_ref = %key.of(&c.id), reason = reason.as_str(), "session expired");
                }
                Ok(EndOutcome::Touched) => {
                    r.skipped_touched += 1;
                    tracing::debug!(session_ref = %key.of(&c.id), "session touched since read; left active");
                }
                Ok(EndOutcome::AlreadyEnded) => r.skipped_already_ended += 1,
                Ok(EndOutcome::Gone) => r.skipped_gone += 1,
                // Cut off by the deadline: deferred to the next run, not an AWS failure.
                Err(_) if out_of_time(deadline, config.deadline_margin) => {
                    r.deferred_by_deadline += 1;
                    r.stopped_at_deadline = true;
                }
                Err(e) => {
                    r.write_errors += 1;
                    tracing::warn!(session_ref = %key.of(&c.id), transient = e.is_transient(), error = %error_chain(&e), "expiring write failed; the next run retries it");
                }
            }
        }
        // The page's entries of the own due index: ended, gone or unreadable ones leave it,
        // touched ones move to where they are due. A failed filing is retried by the next run,
        // which reads the same entries again.
        if !filings.is_empty() {
            let filed = bounded(deadline, "SessionStore.file", store.file(&filings));
            match filed.await {
                Ok(()) => r.index_writes += filings.len() as u64,
                Err(e) => {
                    r.write_errors += 1;
                    tracing::warn!(error = %error_chain(&e), "updating the due index failed; the next run re-reads those entries");
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
