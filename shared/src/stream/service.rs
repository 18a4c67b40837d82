//! The stream service: one batch of stream records in, facts, anomalies, containment, alerts and
//! metrics out, plus the sequence number Lambda must retry from.
//!
//! Ordering and cost rest on one DynamoDB guarantee: all records of one item (one session ID) sit
//! in one shard, in order. So:
//! - records of one session are processed strictly in order; different sessions run concurrently
//!   (`STREAM_CONCURRENCY`);
//! - a MODIFY is judged from its own old and new images, with no request: the old image is the
//!   true previous state of that item, so an identity change shows up in the record where it
//!   happens. A plain touch costs nothing;
//! - only an INSERT needs stored state (was this ID used before?). The first INSERT of each session
//!   in a batch claims its identity binding; claims for many sessions share one
//!   TransactWriteItems, and the burst counters ride in the same transactions, so a session is
//!   counted exactly once however often its INSERT is redelivered.
//!
//! Failure semantics: a transient AWS error stops that session at its record; the batch reports
//! the lowest such sequence number, and every side effect is idempotent, so whatever ran after
//! it is safe to redo. A malformed record is dead-lettered raw with its reason and never blocks.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::alert::{self, Alert, RenderContext};
use crate::anomaly::{self, AnomalyType, Binding, Fact, Finding, Severity, Subject};
use crate::aws::stream_record::{parse_record, Malformed};
use crate::aws::{error_chain, AwsError};
use crate::cascade::message::{CascadeMessage, Target};
use crate::cleanup::{ExpireOutcome, Termination};
use crate::config::{Containment, StreamConfig};
use crate::metrics::{MetricBatch, MetricsSink};
use crate::session::{SessionId, Status, TerminationReason};
use crate::stream::change::{Change, ChangeKind, SeqNo};

/// Whose creations a burst counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BurstScope {
    /// One user.
    User,
    /// One tenant.
    Tenant,
}

/// A burst counter: new sessions of one user or tenant in one fixed window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterKey {
    /// User or tenant.
    pub scope: BurstScope,
    /// The user or tenant ID.
    pub id: String,
    /// Window index: `createdAt / BURST_WINDOW_SECONDS`.
    pub bucket: i64,
}

/// The first INSERT of a session in a batch, asking to bind its identity.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The session.
    pub session_id: SessionId,
    /// The identity seen.
    pub binding: Binding,
    /// Counters to increment if (and only if) the binding is new.
    pub counters: Vec<CounterKey>,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The binding is new: this INSERT is the first use of the session ID.
    Claimed,
    /// A binding already existed.
    Existing(Binding),
}

/// The dedup key of an alert: one per (type, subject) per window.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GateKey {
    /// The type.
    pub kind: AnomalyType,
    /// The subject, hashed for sessions.
    pub subject: String,
}

/// A malformed record on its way to the dead-letter queue.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its sequence number, if readable.
    pub seq: Option<String>,
    /// Why it was rejected.
    pub reason: String,
    /// The record, exactly as received.
    pub raw: serde_json::Value,
}

/// Everything the stream service needs from the outside world.
pub trait StreamPorts: Send + Sync {
    /// Claims bindings (conditionally, first writer wins) and, for new ones only, increments
    /// their counters (kept until `counter_expires_at`). Returns one outcome per claim, in order.
    fn claim_bindings(
        &self,
        claims: &[Claim],
        expires_at: i64,
        counter_expires_at: i64,
    ) -> impl Future<Output = Result<Vec<ClaimOutcome>, AwsError>> + Send;
    /// Reads burst counters; absent ones are 0.
    fn read_counters(
        &self,
        keys: &[CounterKey],
    ) -> impl Future<Output = Result<HashMap<CounterKey, u64>, AwsError>> + Send;
    /// Records the user (and tenant) of a session that authenticated after its INSERT.
    fn bind_user(
        &self,
        id: &SessionId,
        user: &str,
        tenant: Option<&str>,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Opens the dedup gate if it is closed or expired; false if an alert was already sent.
    fn open_gate(
        &self,
        gate: &GateKey,
        now: i64,
        until: i64,
    ) -> impl Future<Output = Result<bool, AwsError>> + Send;
    /// Closes a gate again after a failed publish, so the retry can alert.
    fn close_gate(&self, gate: &GateKey) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Ends a session if it is still ACTIVE.
    fn terminate_session(
        &self,
        id: &SessionId,
        t: &Termination,
    ) -> impl Future<Output = Result<ExpireOutcome, AwsError>> + Send;
    /// Sends cascade requests to the cascade queue.
    fn request_cascades(
        &self,
        requests: &[CascadeMessage],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Publishes alerts.
    fn publish_alerts(&self, alerts: &[Alert])
        -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Sends malformed records to the dead-letter queue.
    fn dead_letter(
        &self,
        letters: &[DeadLetter],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// What one batch did; logged as one summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamReport {
    /// Records in the batch.
    pub records: u64,
    /// Records fully processed.
    pub processed: u64,
    /// Malformed records dead-lettered.
    pub malformed: u64,
    /// New anomalies (first in their dedup window), by type.
    pub anomalies: BTreeMap<String, u64>,
    /// Alert messages published (a digest counts once).
    pub alerts_published: u64,
    /// Anomalies whose alert was suppressed because one was already sent in the window.
    pub alerts_suppressed: u64,
    /// Alerts folded into a digest.
    pub alerts_in_digest: u64,
    /// Sessions ended by containment.
    pub sessions_terminated: u64,
    /// `terminate_user` containments (each a USER cascade request).
    pub user_terminations_requested: u64,
    /// Cascade requests sent (revokeScope user/tenant, families, `terminate_user`).
    pub cascades_requested: u64,
    /// TTL deletes seen.
    pub deleted_by_ttl: u64,
    /// IP changes seen.
    pub ip_changes: u64,
    /// The sequence number Lambda must retry from, if any.
    pub failed_from: Option<String>,
}

/// The outcome of one batch.
#[derive(Debug, Clone)]
pub struct BatchOutcome {
    /// The lowest sequence number whose work did not complete.
    pub failed_from: Option<SeqNo>,
    /// What was done.
    pub report: StreamReport,
}

/// An alert waiting for publication, with what it needs if publication fails.
struct Pending {
    alert: Alert,
    gate: GateKey,
    seq: SeqNo,
}

/// What processing one session (or the burst pass) produced.
#[derive(Default)]
struct Part {
    failed_at: Option<SeqNo>,
    processed: u64,
    pending: Vec<Pending>,
    anomalies: Vec<(AnomalyType, Severity, Option<String>)>,
    suppressed: u64,
    terminated: u64,
    user_requests: u64,
    cascades: Vec<(CascadeMessage, SeqNo)>,
    ttl: u64,
    ip: u64,
}

impl Part {
    fn fail(&mut self, seq: &SeqNo, e: &AwsError) {
        tracing::warn!(seq = %seq, transient = e.is_transient(), error = %error_chain(e), "record not completed; Lambda will retry from it");
        self.failed_at = Some(
            self.failed_at
                .take()
                .map_or(seq.clone(), |f| f.min(seq.clone())),
        );
    }
}

fn min_seq(a: Option<SeqNo>, b: Option<SeqNo>) -> Option<SeqNo> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The pieces every finding handler needs.
struct Ctx<'a, P> {
    ports: &'a P,
    cfg: &'a StreamConfig,
    now: i64,
}

impl<P: StreamPorts> Ctx<'_, P> {
    fn gate_key(&self, f: &Finding) -> GateKey {
        let subject = match &f.subject {
            Subject::Session(id) => format!("s:{}", self.cfg.common.session_ref_key.state_key(id)),
            Subject::User(u) => format!("u:{u}"),
            Subject::Tenant(t) => format!("t:{t}"),
        };
        GateKey {
            kind: f.kind,
            subject,
        }
    }

    /// Containment (idempotent), then the dedup gate, then rendering.
    async fn handle(&self, f: &Finding, seq: &SeqNo, part: &mut Part) -> Result<(), AwsError> {
        let policy = self.cfg.response(f.kind);
        let action = match (policy.containment, &f.subject) {
            (Containment::TerminateSession, Subject::Session(id)) => {
                let t = Termination {
                    status: Status::Terminated,
                    reason: TerminationReason::Containment,
                    at: self.now,
                    retain_until: self.cfg.common.expiry.retain_until(self.now),
                    by: None,
                };
                match self.ports.terminate_session(id, &t).await? {
                    ExpireOutcome::Expired => {
                        part.terminated += 1;
                        "session terminated (terminationReason containment)".to_string()
                    }
                    ExpireOutcome::AlreadyEnded | ExpireOutcome::Touched => {
                        "session already ended; left as it was".to_string()
                    }
                    ExpireOutcome::Gone => "session no longer exists".to_string(),
                }
            }
            (Containment::TerminateUser, _) if !f.users.is_empty() => {
                let user = f.users.last().map(String::as_str).unwrap_or_default();
                let request = cascade_request(
                    Target::User(user.to_string()),
                    &format!("containment of {}", f.kind),
                    &format!("stream:{}:containment:{user}", seq.0),
                );
                part.cascades.push((request, seq.clone()));
                part.user_requests += 1;
                format!("termination of every session of user {user} requested (USER cascade)")
            }
            _ => format!("none: the policy for {} is alert only", f.kind),
        };
        let gate = self.gate_key(f);
        if !self
            .ports
            .open_gate(
                &gate,
                self.now,
                self.now + self.cfg.alert_dedup_window_seconds,
            )
            .await?
        {
            part.suppressed += 1;
            return Ok(());
        }
        part.anomalies
            .push((f.kind, f.severity(), f.tenant_id.clone()));
        if f.severity() >= policy.min_alert_severity {
            let ctx = RenderContext {
                key: &self.cfg.common.session_ref_key,
                runbook_base_url: &self.cfg.runbook_base_url,
                now: self.now,
            };
            part.pending.push(Pending {
                alert: alert::render(f, &action, &seq.0, &ctx),
                gate,
                seq: seq.clone(),
            });
        }
        Ok(())
    }

    /// Processes the records of one session in order; stops at the first failure.
    async fn session(&self, changes: Vec<Change>, first_insert: Option<ClaimOutcome>) -> Part {
        let mut part = Part::default();
        let policy = &self.cfg.common.expiry;
        let key = &self.cfg.common.session_ref_key;
        // The binding as known inside this batch, after the first INSERT's claim.
        let mut known: Option<Binding> = None;
        let mut first_insert = first_insert;
        for change in changes {
            let prior = match change.kind {
                ChangeKind::Insert if change.new.is_some() => match first_insert.take() {
                    Some(ClaimOutcome::Claimed) => {
                        known = change.new.as_ref().map(|n| Binding {
                            user_id: n.user_id.clone(),
                            tenant_id: n.tenant_id.clone(),
                            insert_seq: Some(change.seq.0.clone()),
                        });
                        None
                    }
                    Some(ClaimOutcome::Existing(b)) => {
                        let redelivery = b.insert_seq.as_deref() == Some(change.seq.0.as_str());
                        known = Some(b.clone());
                        (!redelivery).then_some(b)
                    }
                    // A later INSERT of the same ID in this batch: the ID was used before.
                    None => known.clone(),
                },
                _ => None,
            };
            let detection = anomaly::detect(&change, prior.as_ref(), policy);
            for fact in &detection.facts {
                match fact {
                    Fact::IpChanged => part.ip += 1,
                    Fact::Ended {
                        status,
                        reason,
                        revoke_scope,
                    } => {
                        tracing::debug!(session_ref = %key.of(&change.session_id), status = status.as_str(), reason = reason.as_deref().unwrap_or("-"), "session ended");
                        let new = change.new.as_ref();
                        let why = reason.as_deref().unwrap_or("ended");
                        // The app revoked more than this session.
                        match (
                            revoke_scope.as_deref(),
                            new.and_then(|n| n.user_id.clone()),
                            new.and_then(|n| n.tenant_id.clone()),
                        ) {
                            (Some("user"), Some(u), _) => part.cascades.push((
                                cascade_request(
                                    Target::User(u),
                                    &format!("revokeScope=user ({why})"),
                                    &format!("stream:{}:user", change.seq.0),
                                ),
                                change.seq.clone(),
                            )),
                            (Some("tenant"), _, Some(t)) => part.cascades.push((
                                cascade_request(
                                    Target::Tenant(t),
                                    &format!("revokeScope=tenant ({why})"),
                                    &format!("stream:{}:tenant", change.seq.0),
                                ),
                                change.seq.clone(),
                            )),
                            _ => {}
                        }
                        // Any ended session takes its children with it. The cascade worker recurses
                        // through families itself, so its own cascade:family ends are not re-requested.
                        if reason.as_deref() != Some(TerminationReason::CascadeFamily.as_str()) {
                            part.cascades.push((
                                family_request(&change.session_id, why, &change.seq),
                                change.seq.clone(),
                            ));
                        }
                    }
                    Fact::DeletedByTtl => {
                        part.ttl += 1;
                        if change.old.as_ref().and_then(|o| o.status) == Some(Status::Active) {
                            part.cascades.push((
                                family_request(
                                    &change.session_id,
                                    "deleted by TTL while ACTIVE",
                                    &change.seq,
                                ),
                                change.seq.clone(),
                            ));
                        }
                    }
                    Fact::Deleted | Fact::KeysOnly => {}
                }
            }
            let mut result = Ok(());
            for f in &detection.findings {
                tracing::info!(session_ref = %key.of(&change.session_id), anomaly = f.kind.as_str(), severity = f.severity().as_str(), seq = %change.seq, "anomaly detected");
                if f.kind == AnomalyType::SessionFixation {
                    if let Some(user) = change.new.as_ref().and_then(|n| n.user_id.as_deref()) {
                        let tenant = change.new.as_ref().and_then(|n| n.tenant_id.as_deref());
                        let until = self.binding_expiry();
                        if let Err(e) = self
                            .ports
                            .bind_user(&change.session_id, user, tenant, until)
                            .await
                        {
                            result = Err(e);
                            break;
                        }
                    }
                }
                if let Err(e) = self.handle(f, &change.seq, &mut part).await {
                    result = Err(e);
                    break;
                }
            }
            if let Err(e) = result {
                part.fail(&change.seq, &e);
                return part;
            }
            part.processed += 1;
        }
        part
    }

    fn binding_expiry(&self) -> i64 {
        let e = &self.cfg.common.expiry;
        self.now + e.default_max_lifetime_seconds + e.audit_retention_seconds
    }
}

/// Processes one batch of raw stream records at `now` (epoch seconds).
pub async fn process_batch<P, M>(
    ports: &P,
    metrics: &M,
    cfg: &StreamConfig,
    records: &[serde_json::Value],
    now: i64,
) -> BatchOutcome
where
    P: StreamPorts,
    M: MetricsSink,
{
    let key = &cfg.common.session_ref_key;
    let mut report = StreamReport {
        records: records.len() as u64,
        ..Default::default()
    };
    let mut failed: Option<SeqNo> = None;
    let lowest_seq = records
        .iter()
        .filter_map(|r| {
            r.pointer("/dynamodb/SequenceNumber")
                .and_then(|v| v.as_str())
        })
        .map(|s| SeqNo(s.to_string()))
        .min();

    // 1. Parse. Malformed records go to the dead-letter queue, raw, and never block the shard.
    let mut changes = Vec::new();
    let mut letters = Vec::new();
    for raw in records {
        match parse_record(raw) {
            Ok(c) => changes.push(c),
            Err(Malformed { seq, reason }) => {
                tracing::error!(seq = seq.as_deref().unwrap_or("unknown"), %reason, "malformed stream record sent to the dead-letter queue");
                letters.push(DeadLetter {
                    seq,
                    reason,
                    raw: raw.clone(),
                });
            }
        }
    }
    report.malformed = letters.len() as u64;
    if !letters.is_empty() {
        if let Err(e) = ports.dead_letter(&letters).await {
            // Not lost: fail from the earliest of them (or the batch start) so Lambda retries.
            let seq = letters
                .iter()
                .filter_map(|l| l.seq.clone().map(SeqNo))
                .min()
                .or(lowest_seq.clone());
            tracing::warn!(error = %error_chain(&e), "dead-lettering failed; the records will be retried");
            failed = min_seq(failed, seq);
        }
    }

    // 2. Group by session, keeping each session's records in stream order.
    let mut order: Vec<SessionId> = Vec::new();
    let mut groups: HashMap<SessionId, Vec<Change>> = HashMap::new();
    for c in changes {
        groups
            .entry(c.session_id.clone())
            .or_insert_with(|| {
                order.push(c.session_id.clone());
                Vec::new()
            })
            .push(c);
    }

    // 3. Claim the identity bindings of first INSERTs, in as few requests as DynamoDB allows.
    let ctx = Ctx { ports, cfg, now };
    let mut claims = Vec::new();
    let mut claim_seqs = Vec::new();
    for id in &order {
        let first = groups[id].iter().find_map(|c| {
            if c.kind == ChangeKind::Insert {
                c.new.as_ref().map(|n| (c, n))
            } else {
                None
            }
        });
        if let Some((c, n)) = first {
            let bucket = n
                .created_at
                .unwrap_or(c.at)
                .div_euclid(cfg.burst_window_seconds);
            let mut counters = Vec::new();
            if let Some(u) = &n.user_id {
                counters.push(CounterKey {
                    scope: BurstScope::User,
                    id: u.clone(),
                    bucket,
                });
            }
            if let Some(t) = &n.tenant_id {
                counters.push(CounterKey {
                    scope: BurstScope::Tenant,
                    id: t.clone(),
                    bucket,
                });
            }
            claims.push(Claim {
                session_id: id.clone(),
                binding: Binding {
                    user_id: n.user_id.clone(),
                    tenant_id: n.tenant_id.clone(),
                    insert_seq: Some(c.seq.0.clone()),
                },
                counters,
            });
            claim_seqs.push(c.seq.clone());
        }
    }
    let mut outcomes: HashMap<SessionId, ClaimOutcome> = HashMap::new();
    let mut blocked: HashMap<SessionId, SeqNo> = HashMap::new();
    let mut burst_part = Part::default();
    if !claims.is_empty() {
        match ports
            .claim_bindings(
                &claims,
                ctx.binding_expiry(),
                now + 2 * cfg.burst_window_seconds + cfg.common.expiry.audit_retention_seconds,
            )
            .await
        {
            Ok(results) => {
                for (claim, outcome) in claims.iter().zip(results) {
                    outcomes.insert(claim.session_id.clone(), outcome);
                }
                // 4. Bursts: re-read every counter this batch touched (new or redelivered, so a
                // retried batch still evaluates them; the dedup gate prevents a second alert).
                let mut keys: Vec<CounterKey> = claims
                    .iter()
                    .flat_map(|c| c.counters.iter().cloned())
                    .collect();
                keys.sort();
                keys.dedup();
                let last_seq = claim_seqs
                    .iter()
                    .max()
                    .cloned()
                    .unwrap_or(SeqNo("0".into()));
                match ports.read_counters(&keys).await {
                    Ok(counts) => {
                        for k in &keys {
                            let count = counts.get(k).copied().unwrap_or(0);
                            let threshold = match k.scope {
                                BurstScope::User => cfg.burst_user_threshold,
                                BurstScope::Tenant => cfg.burst_tenant_threshold,
                            };
                            if count > threshold {
                                let f = burst_finding(k, count, cfg, &claims);
                                tracing::info!(
                                    anomaly = f.kind.as_str(),
                                    count,
                                    "anomaly detected"
                                );
                                if let Err(e) = ctx.handle(&f, &last_seq, &mut burst_part).await {
                                    burst_part.fail(&last_seq, &e);
                                }
                            }
                        }
                    }
                    Err(e) => burst_part.fail(&last_seq, &e),
                }
            }
            Err(e) => {
                for (claim, seq) in claims.iter().zip(&claim_seqs) {
                    blocked.insert(claim.session_id.clone(), seq.clone());
                }
                tracing::warn!(error = %error_chain(&e), "claiming bindings failed; those sessions are retried from their INSERT");
            }
        }
    }

    // 5. Each session in order; sessions concurrently.
    let parts: Vec<Part> = stream::iter(order.into_iter().map(|id| {
        let mut changes = groups.remove(&id).unwrap_or_default();
        let stop = blocked.get(&id).cloned();
        let outcome = outcomes.remove(&id);
        let ctx = &ctx;
        async move {
            let mut cut = None;
            if let Some(stop) = stop {
                changes.retain(|c| c.seq < stop);
                cut = Some(stop);
            }
            let mut part = ctx.session(changes, outcome).await;
            part.failed_at = min_seq(part.failed_at, cut);
            part
        }
    }))
    .buffer_unordered(cfg.concurrency)
    .collect()
    .await;

    // 6. Merge, then publish: one message per alert, or one digest in a storm.
    let mut pending = Vec::new();
    let mut anomalies = Vec::new();
    let mut cascades: Vec<(CascadeMessage, SeqNo)> = Vec::new();
    for mut p in parts.into_iter().chain(std::iter::once(burst_part)) {
        cascades.append(&mut p.cascades);
        failed = min_seq(failed, p.failed_at.take());
        report.processed += p.processed;
        report.alerts_suppressed += p.suppressed;
        report.sessions_terminated += p.terminated;
        report.user_terminations_requested += p.user_requests;
        report.deleted_by_ttl += p.ttl;
        report.ip_changes += p.ip;
        anomalies.extend(p.anomalies);
        pending.extend(p.pending);
    }
    if !pending.is_empty() {
        let ctx_r = RenderContext {
            key,
            runbook_base_url: &cfg.runbook_base_url,
            now,
        };
        let to_send: Vec<Alert> = if pending.len() > cfg.alert_storm_threshold {
            report.alerts_in_digest = pending.len() as u64;
            vec![alert::digest(
                &pending.iter().map(|p| p.alert.clone()).collect::<Vec<_>>(),
                &ctx_r,
            )]
        } else {
            pending.iter().map(|p| p.alert.clone()).collect()
        };
        match ports.publish_alerts(&to_send).await {
            Ok(()) => report.alerts_published = to_send.len() as u64,
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "publishing alerts failed; their records will be retried");
                for p in &pending {
                    let _ = ports.close_gate(&p.gate).await;
                    failed = min_seq(failed, Some(p.seq.clone()));
                }
            }
        }
    }
    if !cascades.is_empty() {
        let messages: Vec<CascadeMessage> = cascades.iter().map(|(m, _)| m.clone()).collect();
        match ports.request_cascades(&messages).await {
            Ok(()) => report.cascades_requested = messages.len() as u64,
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "requesting cascades failed; their records will be retried");
                failed = min_seq(failed, cascades.iter().map(|(_, s)| s.clone()).min());
            }
        }
    }
    for (kind, _, _) in &anomalies {
        *report
            .anomalies
            .entry(kind.as_str().to_string())
            .or_default() += 1;
    }
    report.failed_from = failed.as_ref().map(|s| s.0.clone());

    // 7. Metrics: one flush.
    let batch = metrics_of(&report, &anomalies, cfg);
    if let Err(e) = metrics.publish(&cfg.common.metrics_namespace, &batch).await {
        tracing::error!(error = %error_chain(&e), "stream metrics were not published");
    }
    tracing::info!(
        records = report.records,
        processed = report.processed,
        malformed = report.malformed,
        anomalies = report.anomalies.values().sum::<u64>(),
        alerts_published = report.alerts_published,
        alerts_suppressed = report.alerts_suppressed,
        alerts_in_digest = report.alerts_in_digest,
        sessions_terminated = report.sessions_terminated,
        deleted_by_ttl = report.deleted_by_ttl,
        failed_from = report.failed_from.as_deref().unwrap_or("-"),
        "stream batch summary"
    );
    BatchOutcome {
        failed_from: failed,
        report,
    }
}

/// A cascade request from the stream worker. The request ID is derived from the stream record,
/// so a redelivered record re-requests the same root and changes nothing twice.
fn cascade_request(target: Target, reason: &str, request_id: &str) -> CascadeMessage {
    crate::cascade::message::request(
        &target,
        reason,
        "sessionwarden-stream",
        Some(request_id.to_string()),
    )
}

fn family_request(id: &SessionId, why: &str, seq: &SeqNo) -> CascadeMessage {
    cascade_request(
        Target::Family(id.clone()),
        &format!("parent session ended ({why})"),
        &format!("stream:{}:family", seq.0),
    )
}

fn burst_finding(k: &CounterKey, count: u64, cfg: &StreamConfig, claims: &[Claim]) -> Finding {
    let minutes = cfg.burst_window_seconds / 60;
    let window = if minutes > 0 {
        format!("{minutes} min")
    } else {
        format!("{} s", cfg.burst_window_seconds)
    };
    let (subject, tenant, users, headline) = match k.scope {
        BurstScope::User => {
            let tenant = claims
                .iter()
                .find(|c| c.binding.user_id.as_deref() == Some(k.id.as_str()))
                .and_then(|c| c.binding.tenant_id.clone());
            (
                Subject::User(k.id.clone()),
                tenant,
                vec![k.id.clone()],
                format!("{count} new sessions for user {} in {window}", k.id),
            )
        }
        BurstScope::Tenant => (
            Subject::Tenant(k.id.clone()),
            Some(k.id.clone()),
            vec![],
            format!("{count} new sessions in tenant {} in {window}", k.id),
        ),
    };
    let threshold = match k.scope {
        BurstScope::User => cfg.burst_user_threshold,
        BurstScope::Tenant => cfg.burst_tenant_threshold,
    };
    Finding {
        kind: AnomalyType::SessionCreationBurst,
        subject,
        tenant_id: tenant,
        users,
        evidence: vec![anomaly::Evidence {
            field: "newSessionsInWindow",
            before: Some(format!("threshold {threshold}")),
            after: Some(count.to_string()),
        }],
        headline,
    }
}

fn metrics_of(
    r: &StreamReport,
    anomalies: &[(AnomalyType, Severity, Option<String>)],
    cfg: &StreamConfig,
) -> MetricBatch {
    let mut b = MetricBatch::new();
    b.count("StreamRecordsProcessed", &[], r.processed);
    b.count("StreamRecordsMalformed", &[], r.malformed);
    b.count("AlertsPublished", &[], r.alerts_published);
    b.count("AlertsSuppressed", &[], r.alerts_suppressed);
    b.count("SessionsDeletedByTtl", &[], r.deleted_by_ttl);
    b.count(
        "SessionsTerminated",
        &[("Cause", "containment")],
        r.sessions_terminated,
    );
    b.count("SessionIpChanged", &[], r.ip_changes);
    b.count("CascadesRequested", &[], r.cascades_requested);
    if r.user_terminations_requested > 0 {
        b.count(
            "ContainmentRequested",
            &[("Action", "terminate_user")],
            r.user_terminations_requested,
        );
    }
    let mut tenants: Vec<String> = Vec::new();
    for (kind, sev, tenant) in anomalies {
        b.count(
            "AnomaliesDetected",
            &[("Type", kind.as_str()), ("Severity", sev.as_str())],
            1,
        );
        if cfg.metrics_tenant_dimension {
            let t = tenant.clone().unwrap_or_else(|| "none".into());
            // Cardinality cap: past the limit, tenants share one series.
            let label = if tenants.contains(&t) || tenants.len() < cfg.metrics_tenant_dimension_max
            {
                if !tenants.contains(&t) {
                    tenants.push(t.clone());
                }
                t
            } else {
                "other".to_string()
            };
            b.count(
                "AnomaliesDetected",
                &[("Type", kind.as_str()), ("Tenant", &label)],
                1,
            );
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_dimension_is_opt_in_and_capped() {
        let vars = |extra: &'static [(&'static str, &'static str)]| {
            move |k: &str| -> Option<String> {
                let base = [
                    ("SESSIONS_TABLE", "s"),
                    ("SESSION_REF_KEY", "0123456789abcdef"),
                    ("STATE_TABLE", "st"),
                    ("ALERTS_TOPIC_ARN", "arn"),
                    ("DEAD_LETTER_QUEUE_URL", "q"),
                    ("CASCADE_QUEUE_URL", "c"),
                ];
                base.iter()
                    .chain(extra.iter())
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let anomalies: Vec<_> = (0..5)
            .map(|i| {
                (
                    AnomalyType::SessionFixation,
                    Severity::Medium,
                    Some(format!("tenant-{i}")),
                )
            })
            .collect();
        let off = StreamConfig::from_source(&vars(&[])).unwrap();
        let b = metrics_of(&StreamReport::default(), &anomalies, &off);
        assert!(b
            .iter()
            .all(|(k, _, _)| k.dimensions.iter().all(|(d, _)| *d != "Tenant")));
        let on = StreamConfig::from_source(&vars(&[
            ("METRICS_TENANT_DIMENSION", "true"),
            ("METRICS_TENANT_DIMENSION_MAX", "2"),
        ]))
        .unwrap();
        let b = metrics_of(&StreamReport::default(), &anomalies, &on);
        let tenant = |t: &str| {
            b.get(
                "AnomaliesDetected",
                &[("Type", "SESSION_FIXATION"), ("Tenant", t)],
            )
        };
        assert_eq!(
            (tenant("tenant-0"), tenant("tenant-1"), tenant("other")),
            (Some(1.0), Some(1.0), Some(3.0))
        );
        assert_eq!(tenant("tenant-2"), None);
    }
}
