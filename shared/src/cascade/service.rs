//! The cascade service: one batch of queue messages in, sessions ended, continuations and
//! family sub-cascades out, plus the message IDs Lambda must retry.
//!
//! - Each matching session is ended with a write conditional on `status = ACTIVE`, setting
//!   `terminationReason = cascade:<scope>`, `terminatedAt`, `expiresAt` and `terminatedBy = <root
//!   request ID>`. A session that already ended keeps its reason; a replayed message changes nothing.
//! - A message takes at most `CASCADE_PAGES_PER_MESSAGE` pages and stops before the deadline
//!   margin; what remains continues in a new message that carries the cursor.
//! - A family cascade enqueues one sub-cascade per child, carrying its depth and the ancestors'
//!   digests: a child already among its ancestors is a cycle and stops there, and nothing goes
//!   below `CASCADE_MAX_DEPTH`.
//! - Job records in the state table (`cascade#<root>`) count each job once and let an
//!   investigator rebuild the whole cascade from its root.

use std::future::Future;
use std::time::Instant;

use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::message::{self, CascadeJob, CascadeMessage, Target};
use crate::alert::{self, Alert, RenderContext};
use crate::aws::{error_chain, AwsError};
use crate::cleanup::{ExpireOutcome, Termination};
use crate::config::CascadeConfig;
use crate::deadline::Deadline;
use crate::metrics::{MetricBatch, MetricsSink, Unit};
use crate::session::{SessionId, Status};
use crate::stream::service::DeadLetter;

/// One page of a cascade's matching sessions.
#[derive(Debug, Clone, Default)]
pub struct CascadePage {
    /// Sessions and their status as the index sees them.
    pub sessions: Vec<(SessionId, Status)>,
    /// Opaque cursor of the next page.
    pub next: Option<String>,
}

/// A job's record: one per (root request, target).
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// The root request.
    pub root_id: String,
    /// `<scope>#<subject>` (sessions by digest).
    pub job_key: String,
    /// Scope.
    pub scope: &'static str,
    /// Readable subject: user, tenant, or session reference.
    pub subject: String,
    /// Requester's reason.
    pub reason: String,
    /// Requester.
    pub requested_by: String,
    /// Family depth.
    pub depth: u32,
    /// Parent session reference (family sub-cascades).
    pub parent_ref: Option<String>,
}

/// Everything the cascade service needs from the outside world.
pub trait CascadePorts: Send + Sync {
    /// One page of sessions matching `target`.
    fn page(
        &self,
        target: &Target,
        cursor: Option<String>,
        limit: u32,
    ) -> impl Future<Output = Result<CascadePage, AwsError>> + Send;
    /// Ends a session if still ACTIVE.
    fn end(
        &self,
        id: &SessionId,
        t: &Termination,
    ) -> impl Future<Output = Result<ExpireOutcome, AwsError>> + Send;
    /// Creates the job record if absent; true if this call created it.
    fn job_started(
        &self,
        job: &JobRecord,
        now: i64,
    ) -> impl Future<Output = Result<bool, AwsError>> + Send;
    /// Adds a page's results to the job record.
    fn job_progress(
        &self,
        job: &JobRecord,
        ended: u64,
        pages: u64,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Marks the job completed; `Some(total ended)` if this call completed it.
    fn job_completed(
        &self,
        job: &JobRecord,
        now: i64,
    ) -> impl Future<Output = Result<Option<u64>, AwsError>> + Send;
    /// Sends cascade messages (continuations, sub-cascades).
    fn enqueue(
        &self,
        messages: &[CascadeMessage],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Sends invalid messages to the dead-letter queue.
    fn dead_letter(
        &self,
        letters: &[DeadLetter],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Publishes an informational alert.
    fn notify(&self, alert: &Alert) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CascadeReport {
    /// Messages in the batch.
    pub messages: u64,
    /// Invalid messages dead-lettered.
    pub invalid: u64,
    /// Sessions ended, by `terminationReason`.
    pub ended: std::collections::BTreeMap<String, u64>,
    /// Sessions that had already ended (left untouched).
    pub already_ended: u64,
    /// Index pages read.
    pub pages: u64,
    /// Job records created.
    pub jobs_started: u64,
    /// Jobs completed.
    pub jobs_completed: u64,
    /// Continuation messages sent.
    pub continuations: u64,
    /// Family sub-cascades sent.
    pub sub_cascades: u64,
    /// Children skipped because they were among their own ancestors.
    pub cycles_stopped: u64,
    /// Children skipped because of `CASCADE_MAX_DEPTH`.
    pub depth_limited: u64,
    /// Message IDs to retry.
    pub failed: Vec<String>,
    /// Wall time.
    pub duration_ms: u64,
}

impl CascadeReport {
    /// Adds another batch's report to this one (for local runs that drive many invocations).
    pub fn merge(&mut self, o: CascadeReport) {
        for (k, v) in o.ended {
            *self.ended.entry(k).or_default() += v;
        }
        self.already_ended += o.already_ended;
        self.pages += o.pages;
        self.jobs_started += o.jobs_started;
        self.jobs_completed += o.jobs_completed;
        self.continuations += o.continuations;
        self.sub_cascades += o.sub_cascades;
        self.cycles_stopped += o.cycles_stopped;
        self.depth_limited += o.depth_limited;
        self.messages += o.messages;
        self.invalid += o.invalid;
        self.failed.extend(o.failed);
    }

    /// The batch's metrics.
    pub fn metrics(&self) -> MetricBatch {
        let mut b = MetricBatch::new();
        for (cause, n) in &self.ended {
            b.count("SessionsTerminated", &[("Cause", cause)], *n);
        }
        b.count("CascadeJobsStarted", &[], self.jobs_started);
        b.count("CascadeJobsCompleted", &[], self.jobs_completed);
        b.count("CascadePages", &[], self.pages);
        b.count("CascadeMessagesInvalid", &[], self.invalid);
        b.count("CascadeCyclesStopped", &[], self.cycles_stopped);
        b.count("CascadeDepthLimited", &[], self.depth_limited);
        b.add(
            "CascadeDurationMs",
            &[],
            self.duration_ms as f64,
            Unit::Milliseconds,
        );
        b
    }
}

/// A raw queue message.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    /// SQS message ID (the batch item identifier).
    pub id: String,
    /// Body.
    pub body: String,
}

struct Ctx<'a, P> {
    ports: &'a P,
    cfg: &'a CascadeConfig,
    deadline: &'a dyn Deadline,
    now: i64,
}

impl<P: CascadePorts> Ctx<'_, P> {
    fn record(&self, job: &CascadeJob) -> JobRecord {
        let key = &self.cfg.common.session_ref_key;
        let (subject, digest) = match &job.target {
            Target::User(u) => (u.clone(), u.clone()),
            Target::Tenant(t) => (t.clone(), t.clone()),
            Target::Family(s) | Target::Session(s) => (key.of(s).to_string(), key.state_key(s)),
        };
        JobRecord {
            root_id: job.root_id.clone(),
            job_key: format!("{}#{digest}", job.target.scope()),
            scope: job.target.scope(),
            subject,
            reason: job.reason.clone(),
            requested_by: job.requested_by.clone(),
            depth: job.depth,
            parent_ref: None,
        }
    }

    /// Runs one job until it is done, its page budget is spent, or the deadline nears.
    async fn run(&self, job: CascadeJob, r: &mut CascadeReport) -> Result<(), AwsError> {
        let key = &self.cfg.common.session_ref_key;
        let record = self.record(&job);
        let termination = Termination {
            status: Status::Terminated,
            reason: job.target.reason(),
            at: self.now,
            retain_until: self.cfg.common.expiry.retain_until(self.now),
            by: Some(job.root_id.clone()),
        };
        let mut cursor = job.cursor.clone();
        let mut started = job.cursor.is_some();
        let mut pages_here = 0;
        loop {
            if pages_here >= self.cfg.pages_per_message
                || self.deadline.remaining() <= self.cfg.deadline_margin
            {
                self.ports
                    .enqueue(&[job.message(&job.target, cursor, job.depth, job.path.clone())])
                    .await?;
                r.continuations += 1;
                tracing::info!(root = %job.root_id, scope = job.target.scope(), pages = pages_here, "cascade continues in a new message");
                return Ok(());
            }
            let page = self
                .ports
                .page(&job.target, cursor.take(), self.cfg.page_size)
                .await?;
            pages_here += 1;
            r.pages += 1;
            if !started && !page.sessions.is_empty() {
                started = true;
                if self.ports.job_started(&record, self.now).await? {
                    r.jobs_started += 1;
                }
            }
            let active: Vec<&SessionId> = page
                .sessions
                .iter()
                .filter(|(_, s)| *s == Status::Active)
                .map(|(id, _)| id)
                .collect();
            r.already_ended += (page.sessions.len() - active.len()) as u64;
            let outcomes: Vec<Result<ExpireOutcome, AwsError>> = stream::iter(active)
                .map(|id| self.ports.end(id, &termination))
                .buffer_unordered(self.cfg.write_concurrency)
                .collect()
                .await;
            let mut ended = 0;
            for o in outcomes {
                match o? {
                    ExpireOutcome::Expired => ended += 1,
                    _ => r.already_ended += 1,
                }
            }
            *r.ended
                .entry(termination.reason.as_str().to_string())
                .or_default() += ended;
            if started {
                self.ports.job_progress(&record, ended, 1).await?;
            }

            // Families: one sub-cascade per child, with the cycle and depth guards.
            let (parent, children): (Option<&SessionId>, Vec<&SessionId>) = match &job.target {
                Target::Family(p) => (Some(p), page.sessions.iter().map(|(id, _)| id).collect()),
                Target::Session(s) => (None, vec![s]),
                _ => (None, vec![]),
            };
            let mut subs = Vec::new();
            let mut path = job.path.clone();
            if let Some(p) = parent {
                path.push(key.state_key(p));
            }
            for child in children {
                let digest = key.state_key(child);
                let depth = job.depth + 1;
                if path.contains(&digest) {
                    r.cycles_stopped += 1;
                    tracing::warn!(root = %job.root_id, session_ref = %key.of(child), "parentSessionId cycle; this branch stops");
                } else if depth > self.cfg.max_depth {
                    r.depth_limited += 1;
                    tracing::warn!(root = %job.root_id, session_ref = %key.of(child), depth, "family deeper than CASCADE_MAX_DEPTH; this branch stops");
                } else {
                    subs.push(job.message(
                        &Target::Family(child.clone()),
                        None,
                        depth,
                        path.clone(),
                    ));
                }
            }
            if !subs.is_empty() {
                self.ports.enqueue(&subs).await?;
                r.sub_cascades += subs.len() as u64;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        if started {
            if let Some(total) = self.ports.job_completed(&record, self.now).await? {
                r.jobs_completed += 1;
                tracing::info!(root = %job.root_id, scope = record.scope, ended = total, "cascade job completed");
                if total >= self.cfg.alert_threshold
                    && matches!(job.target, Target::User(_) | Target::Tenant(_))
                {
                    let ctx = RenderContext {
                        key,
                        runbook_base_url: &self.cfg.runbook_base_url,
                        now: self.now,
                    };
                    let notice = alert::cascade_notice(
                        record.scope,
                        &record.subject,
                        total,
                        &job.root_id,
                        &job.reason,
                        &job.requested_by,
                        &ctx,
                    );
                    if let Err(e) = self.ports.notify(&notice).await {
                        // The cascade itself is done; a lost notice is logged, not retried.
                        tracing::error!(error = %error_chain(&e), "large-cascade notice not published");
                    }
                }
            }
        }
        Ok(())
    }
}

/// Processes one batch of cascade messages.
pub async fn process_batch<P, M>(
    ports: &P,
    metrics: &M,
    cfg: &CascadeConfig,
    messages: &[QueueMessage],
    deadline: &dyn Deadline,
    now: i64,
) -> CascadeReport
where
    P: CascadePorts,
    M: MetricsSink,
{
    let started = Instant::now();
    let ctx = Ctx {
        ports,
        cfg,
        deadline,
        now,
    };
    let mut report = CascadeReport {
        messages: messages.len() as u64,
        ..Default::default()
    };
    let mut letters = Vec::new();
    let mut jobs = Vec::new();
    for m in messages {
        match message::parse(&m.body, &m.id) {
            Ok(job) => jobs.push((m.id.clone(), job)),
            Err(e) => {
                tracing::error!(message_id = %m.id, reason = %e, "invalid cascade message sent to the dead-letter queue");
                let raw = serde_json::from_str(&m.body)
                    .unwrap_or_else(|_| serde_json::Value::String(m.body.clone()));
                letters.push((
                    m.id.clone(),
                    DeadLetter {
                        seq: Some(m.id.clone()),
                        reason: e.to_string(),
                        raw,
                    },
                ));
            }
        }
    }
    report.invalid = letters.len() as u64;
    if !letters.is_empty() {
        let only: Vec<DeadLetter> = letters.iter().map(|(_, l)| l.clone()).collect();
        if let Err(e) = ports.dead_letter(&only).await {
            tracing::warn!(error = %error_chain(&e), "dead-lettering failed; the invalid messages will be retried");
            report
                .failed
                .extend(letters.iter().map(|(id, _)| id.clone()));
        }
    }
    let parts: Vec<CascadeReport> = stream::iter(jobs)
        .map(|(id, job)| {
            let ctx = &ctx;
            async move {
                let mut r = CascadeReport::default();
                if let Err(e) = ctx.run(job, &mut r).await {
                    tracing::warn!(message_id = %id, transient = e.is_transient(), error = %error_chain(&e), "cascade message failed; Lambda will retry it");
                    r.failed.push(id);
                }
                r
            }
        })
        .buffer_unordered(cfg.concurrency)
        .collect()
        .await;
    for p in parts {
        report.merge(p);
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    if let Err(e) = metrics
        .publish(&cfg.common.metrics_namespace, &report.metrics())
        .await
    {
        tracing::error!(error = %error_chain(&e), "cascade metrics were not published");
    }
    tracing::info!(
        messages = report.messages,
        invalid = report.invalid,
        ended = report.ended.values().sum::<u64>(),
        already_ended = report.already_ended,
        pages = report.pages,
        continuations = report.continuations,
        sub_cascades = report.sub_cascades,
        failed = report.failed.len(),
        "cascade batch summary"
    );
    report
}

#[cfg(test)]
mod tests {
    //! Batch semantics with in-memory ports; the AWS adapters are tested on the emulator.
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Mem {
        ended: Mutex<Vec<String>>,
        queued: Mutex<Vec<CascadeMessage>>,
        letters: Mutex<Vec<DeadLetter>>,
    }

    impl CascadePorts for Mem {
        async fn page(
            &self,
            target: &Target,
            _: Option<String>,
            _: u32,
        ) -> Result<CascadePage, AwsError> {
            let sessions = match target {
                Target::User(u) => vec![
                    (SessionId::new(format!("{u}-s1")), Status::Active),
                    (SessionId::new(format!("{u}-s2")), Status::Active),
                ],
                _ => vec![],
            };
            Ok(CascadePage {
                sessions,
                next: None,
            })
        }
        async fn end(&self, id: &SessionId, _: &Termination) -> Result<ExpireOutcome, AwsError> {
            if id.expose().starts_with("flaky") {
                return Err(AwsError::Transient {
                    operation: "DynamoDB.UpdateItem",
                    source: "throttled".into(),
                });
            }
            self.ended.lock().unwrap().push(id.expose().to_string());
            Ok(ExpireOutcome::Expired)
        }
        async fn job_started(&self, _: &JobRecord, _: i64) -> Result<bool, AwsError> {
            Ok(true)
        }
        async fn job_progress(&self, _: &JobRecord, _: u64, _: u64) -> Result<(), AwsError> {
            Ok(())
        }
        async fn job_completed(&self, _: &JobRecord, _: i64) -> Result<Option<u64>, AwsError> {
            Ok(Some(2))
        }
        async fn enqueue(&self, m: &[CascadeMessage]) -> Result<(), AwsError> {
            self.queued.lock().unwrap().extend_from_slice(m);
            Ok(())
        }
        async fn dead_letter(&self, l: &[DeadLetter]) -> Result<(), AwsError> {
            self.letters.lock().unwrap().extend_from_slice(l);
            Ok(())
        }
        async fn notify(&self, _: &Alert) -> Result<(), AwsError> {
            Ok(())
        }
    }

    struct NoMetrics;
    impl MetricsSink for NoMetrics {
        async fn publish(
            &self,
            _: &str,
            _: &MetricBatch,
        ) -> Result<(), crate::metrics::MetricsError> {
            Ok(())
        }
    }

    fn cfg() -> CascadeConfig {
        let vars = |k: &str| -> Option<String> {
            [
                ("SESSIONS_TABLE", "s"),
                ("SESSION_REF_KEY", "0123456789abcdef"),
                ("STATE_TABLE", "st"),
                ("CASCADE_QUEUE_URL", "q"),
                ("DEAD_LETTER_QUEUE_URL", "d"),
                ("ALERTS_TOPIC_ARN", "a"),
            ]
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
        };
        CascadeConfig::from_source(&vars).unwrap()
    }

    fn msg(id: &str, body: &str) -> QueueMessage {
        QueueMessage {
            id: id.into(),
            body: body.into(),
        }
    }

    #[tokio::test]
    async fn a_transient_error_fails_only_its_message_and_an_invalid_one_is_dead_lettered() {
        let ports = Mem::default();
        let deadline =
            crate::deadline::EpochDeadline::in_from_now(std::time::Duration::from_secs(60));
        let batch = [
            msg(
                "m1",
                r#"{"version":1,"scope":"user","userId":"good","reason":"r","requestedBy":"x"}"#,
            ),
            msg(
                "m2",
                r#"{"version":1,"scope":"user","userId":"flaky","reason":"r","requestedBy":"x"}"#,
            ),
            msg(
                "m3",
                r#"{"version":1,"scope":"user","reason":"r","requestedBy":"x"}"#,
            ),
        ];
        let r = process_batch(&ports, &NoMetrics, &cfg(), &batch, &deadline, 1_800_000_000).await;
        assert_eq!(
            r.failed,
            ["m2"],
            "only the message that hit the transient error is retried"
        );
        assert_eq!(r.invalid, 1);
        assert_eq!(
            ports.letters.lock().unwrap()[0].reason,
            "invalid cascade message: scope user needs userId"
        );
        assert_eq!(*ports.ended.lock().unwrap(), ["good-s1", "good-s2"]);
        assert_eq!(r.ended.get("cascade:user"), Some(&2));
    }
}
