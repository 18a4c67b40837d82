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

use std::time::Instant;

use futures::stream::{self, StreamExt};

use super::family;

use super::report::{CascadeReport, QueueMessage};
use crate::alert::{self, RenderContext};
use crate::cascade_message::{self as message, CascadeJob, CascadeMessage, Target};
use crate::config::{CascadeConfig, FamilyCascades};
use crate::deadline::{bounded, out_of_time, within, Deadline};
use crate::error::{error_chain, PortError};
use crate::ports::{
    AlertSink, BindingStore, CascadeQueue, DeadLetter, DeadLetters, EndOutcome, JobRecord,
    JobStore, MetricsSink, PageRequest, Ports, SessionStore, Termination,
};
use crate::session::{SessionId, Status};

/// What running one job needs: the sessions, the job records, the alerts topic and the queue.
struct Ctx<'a, S, T, A, Q> {
    sessions: &'a S,
    jobs: &'a T,
    alerts: &'a A,
    queue: &'a Q,
    cfg: &'a CascadeConfig,
    deadline: &'a dyn Deadline,
    now: i64,
}

impl<S: SessionStore, T: JobStore + BindingStore, A: AlertSink, Q: CascadeQueue>
    Ctx<'_, S, T, A, Q>
{
    /// The sub-cascades whose child a grandchild's INSERT marked as a parent (one consistent
    /// read per page): a child without children needs no FAMILY job. Under
    /// `FAMILY_CASCADES=always`, or if the markers cannot be read, every sub-cascade stays.
    async fn marked_only(&self, subs: Vec<CascadeMessage>) -> Vec<CascadeMessage> {
        if subs.is_empty() || self.cfg.common.family_cascades == FamilyCascades::Always {
            return subs;
        }
        let children: Vec<SessionId> = subs
            .iter()
            .filter_map(|m| m.session_id.clone().map(SessionId::new))
            .collect();
        match bounded(
            self.deadline,
            "BindingStore.parents",
            self.jobs.parents(&children),
        )
        .await
        {
            Ok(marked) => subs
                .into_iter()
                .filter(|m| {
                    m.session_id
                        .as_ref()
                        .is_none_or(|c| marked.contains(&SessionId::new(c.clone())))
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "reading parent markers failed; every family sub-cascade is sent");
                subs
            }
        }
    }

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

    /// True once the time left is within the deadline margin.
    fn out_of_time(&self) -> bool {
        out_of_time(self.deadline, self.cfg.deadline_margin)
    }

    /// Continues the job in a new message, from `cursor`.
    async fn hand_over(
        &self,
        job: &CascadeJob,
        cursor: Option<String>,
        pages_here: u32,
        r: &mut CascadeReport,
    ) -> Result<(), PortError> {
        let next = [job.message(&job.target, cursor, job.depth, job.path.clone())];
        bounded(self.deadline, "CascadeQueue.send", self.queue.send(&next)).await?;
        r.continuations += 1;
        tracing::info!(root = %job.root_id, scope = job.target.scope(), pages = pages_here, "cascade continues in a new message");
        Ok(())
    }

    /// Runs one job until it is done, its page budget is spent, or the deadline nears.
    async fn run(&self, job: CascadeJob, r: &mut CascadeReport) -> Result<(), PortError> {
        let key = &self.cfg.common.session_ref_key;
        let record = self.record(&job);
        let termination = Termination {
            status: Status::Terminated,
            reason: job.target.reason(),
            at: self.now,
            retain_until: self.cfg.common.expiry.retain_until(self.now),
            by: Some(job.root_id.clone()),
            fence: None,
        };
        let mut cursor = job.cursor.clone();
        let mut started = job.cursor.is_some();
        let mut pages_here = 0;
        loop {
            if pages_here >= self.cfg.pages_per_message || self.out_of_time() {
                return self.hand_over(&job, cursor, pages_here, r).await;
            }
            // Where this page starts, as a keyed reference (cursors hold session keys): a page
            // processed again after a redelivery is counted once.
            let page_ref = key
                .reference(cursor.as_deref().unwrap_or("first page"))
                .to_string();
            let page_start = cursor.clone();
            let read = self.sessions.members(
                &job.target,
                PageRequest {
                    limit: self.cfg.page_size,
                    cursor: cursor.take(),
                },
            );
            let page = match within(
                self.deadline,
                self.cfg.deadline_margin,
                "SessionStore.members",
                read,
            )
            .await
            {
                Ok(p) => p,
                // Its budget ran out: hand the page over, instead of overrunning the invocation.
                Err(_) if self.out_of_time() => {
                    return self.hand_over(&job, page_start, pages_here, r).await
                }
                Err(e) => return Err(e),
            };
            pages_here += 1;
            r.pages += 1;
            if !started && !page.items.is_empty() {
                started = true;
                let until = self.cfg.common.expiry.retain_until(self.now);
                let start = self.jobs.start(&record, self.now, until);
                if bounded(self.deadline, "JobStore.start", start).await? {
                    r.jobs_started += 1;
                }
            }
            // Ended by this very job, in an earlier attempt of this page (a redelivered message):
            // still this page's to count.
            let ours = page
                .items
                .iter()
                .filter(|m| m.status.is_ended() && m.ended_by.as_deref() == Some(&job.root_id))
                .count() as u64;
            let active: Vec<&SessionId> = page
                .items
                .iter()
                .filter(|m| m.status == Status::Active)
                .map(|m| &m.id)
                .collect();
            r.already_ended += page.items.len() as u64 - active.len() as u64 - ours;
            let outcomes: Vec<Result<EndOutcome, PortError>> = stream::iter(active)
                .map(|id| {
                    // Bounded by the margin, which is kept for the page's progress and the
                    // hand-over. An end cut off may land: the page's redo recognises it as this
                    // job's own (`terminatedBy`), so nothing goes uncounted.
                    let end = self.sessions.end(id, &termination);
                    within(
                        self.deadline,
                        self.cfg.deadline_margin,
                        "SessionStore.end",
                        end,
                    )
                })
                .buffer_unordered(self.cfg.write_concurrency)
                .collect()
                .await;
            // Cut off mid-page: the continuation does the page again (ending is idempotent, a
            // cascade knows its own ends, and the job counts each page once).
            if outcomes.iter().any(|o| o.is_err()) && self.out_of_time() {
                return self.hand_over(&job, page_start, pages_here, r).await;
            }
            let mut ended = ours;
            for o in outcomes {
                match o? {
                    EndOutcome::Ended => ended += 1,
                    _ => r.already_ended += 1,
                }
            }
            // A page an earlier attempt counted already (a replayed message) counts nothing here:
            // its sessions were ended, and counted, then.
            let counted = !started
                || bounded(
                    self.deadline,
                    "JobStore.progress",
                    self.jobs.progress(&record, &page_ref, ended),
                )
                .await?;
            if counted {
                *r.ended
                    .entry(termination.reason.as_str().to_string())
                    .or_default() += ended;
            } else {
                r.already_ended += ended;
            }

            // Families: one sub-cascade per child, with the cycle and depth guards.
            let family = family::plan(&job, &page.items, key, self.cfg.max_depth);
            for child in &family.cycles {
                r.cycles_stopped += 1;
                tracing::warn!(root = %job.root_id, session_ref = %key.of(child), "parentSessionId cycle; this branch stops");
            }
            for child in &family.too_deep {
                r.depth_limited += 1;
                tracing::warn!(root = %job.root_id, session_ref = %key.of(child), depth = job.depth + 1, "family deeper than CASCADE_MAX_DEPTH; this branch stops");
            }
            let subs = self.marked_only(family.subs).await;
            if !subs.is_empty() {
                bounded(self.deadline, "CascadeQueue.send", self.queue.send(&subs)).await?;
                r.sub_cascades += subs.len() as u64;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        if started {
            let complete = self.jobs.complete(&record, self.now);
            if let Some(total) = bounded(self.deadline, "JobStore.complete", complete).await? {
                r.jobs_completed += 1;
                tracing::info!(root = %job.root_id, scope = record.scope, ended = total, "cascade job completed");
                if total >= self.cfg.alert_threshold
                    && matches!(job.target, Target::User(_) | Target::Tenant(_))
                {
                    let ctx = RenderContext {
                        key,
                        runbook_base_url: &self.cfg.wiring.runbook_base_url,
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
                    let publish = self.alerts.publish(std::slice::from_ref(&notice));
                    if let Err(e) = bounded(self.deadline, "AlertSink.publish", publish).await {
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
pub async fn process_batch<S, T, A, Q, D, M, E>(
    ports: &Ports<S, T, A, Q, D, M, E>,
    cfg: &CascadeConfig,
    messages: &[QueueMessage],
    deadline: &dyn Deadline,
    now: i64,
) -> CascadeReport
where
    S: SessionStore,
    T: JobStore + BindingStore,
    A: AlertSink,
    Q: CascadeQueue,
    D: DeadLetters,
    M: MetricsSink,
{
    let started = Instant::now();
    let ctx = Ctx {
        sessions: &ports.sessions,
        jobs: &ports.state,
        alerts: &ports.alerts,
        queue: &ports.cascades,
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
        let send = ports.dead_letters.send(&only);
        if let Err(e) = bounded(deadline, "DeadLetters.send", send).await {
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
    let batch = report.metrics();
    let flush = ports.metrics.publish(&cfg.common.metrics_namespace, &batch);
    if let Err(e) = bounded(deadline, "MetricsSink.publish", flush).await {
        tracing::error!(error = %error_chain(&e), "cascade metrics were not published");
    }
    crate::metrics::log_summary("cascade batch summary", &report);
    report
}
