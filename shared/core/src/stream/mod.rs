//! The stream service: one batch of stream records in, facts, anomalies, containment, alerts and
//! metrics out, plus the sequence number Lambda must retry from.
//!
//! Decide, then do: [`plan`] decides purely what each record asks for, [`execute`] carries the
//! plans out through the ports, and [`process_batch`] is the batch plumbing around them (parse,
//! dead letters, grouping, claims, bursts, publication, metrics). [`report`] is what a batch did.
//! [`filing`] decides what a change files in the own indexes of non-native layouts, and
//! [`family`] which ended sessions' family cascades are worth a request.
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
//! Failure semantics: a transient error stops that session at its record; the batch reports the
//! lowest such sequence number, and every side effect is idempotent, so whatever ran after it is
//! safe to redo. Lambda redelivers from that point, so whatever lies after it counts then, not
//! now: every per-record count, and the dead letters, are taken for the records before the final
//! failure point only. A malformed record is dead-lettered raw with its reason and never blocks.
//! Every call's budget ends [`crate::deadline::RESERVE`] before the Lambda deadline.

mod ends;
pub mod execute;
pub mod family;
pub mod filing;
pub mod plan;
pub mod read;
pub mod report;

use std::collections::{HashMap, HashSet};

use futures::stream::{self, StreamExt};

use crate::alert::{self, Alert, RenderContext};
use crate::cascade_message::CascadeMessage;
use crate::change::{Change, Malformed, SeqNo};
use crate::config::StreamConfig;
use crate::deadline::{bounded, persist, Deadline};
use crate::error::error_chain;
use crate::ports::{
    AlertSink, BindingStore, CascadeQueue, ClaimOutcome, DeadLetter, DeadLetters, EventSink,
    GateStore, MetricsSink, Ports, RosterStore, SessionStore,
};
use crate::session::SessionId;
use execute::{min_seq, Executor, Part};

/// Tries of a gate's mark (each after the SDK's own retries), while time is left.
const MARK_TRIES: u32 = 5;
pub use read::{reading, Read, Record, Rejected};
pub use report::{BatchOutcome, StreamReport};

/// Processes one batch of stream records at `now` (epoch seconds). `read` reads one record
/// through the layout ([`Read`]), or rejects it: a rejected record is dead-lettered raw and never
/// blocks the shard. The batch is taken by value so each record's text is freed as soon as it is
/// read: the changes take its place in memory instead of adding to it. A record may also come
/// already read (the native worker's event reads its records as it is deserialized).
pub async fn process_batch<S, T, A, Q, D, M, E, R, P>(
    ports: &Ports<S, T, A, Q, D, M, E>,
    cfg: &StreamConfig,
    records: Vec<R>,
    mut read: P,
    now: i64,
    deadline: &dyn Deadline,
) -> BatchOutcome
where
    S: SessionStore,
    T: BindingStore + GateStore + RosterStore,
    A: AlertSink,
    Q: CascadeQueue,
    D: DeadLetters,
    M: MetricsSink,
    E: EventSink,
    P: FnMut(R) -> Result<Read, Rejected>,
{
    let mut report = StreamReport {
        records: records.len() as u64,
        ..Default::default()
    };

    // 1. Parse, and group by session, keeping each session's records in stream order. Each
    // record's text is dropped once read. Malformed records go to the dead-letter queue, raw, and
    // never block the shard; they are sent once the failure point is known (step 5).
    let mut order: Vec<SessionId> = Vec::new();
    let mut groups: HashMap<SessionId, Vec<Change>> = HashMap::new();
    let mut letters: Vec<(usize, DeadLetter)> = Vec::new();
    let mut skipped: Vec<usize> = Vec::new();
    let mut position: HashMap<SeqNo, usize> = HashMap::new();
    let mut quiet: Vec<usize> = Vec::new();
    for (i, record) in records.into_iter().enumerate() {
        match read(record) {
            Ok(Read::Quiet) => quiet.push(i),
            Ok(Read::NotSession) => skipped.push(i),
            Ok(Read::Change(c)) => {
                let c = *c;
                position.insert(c.seq.clone(), i);
                groups
                    .entry(c.session_id.clone())
                    .or_insert_with(|| {
                        order.push(c.session_id.clone());
                        Vec::new()
                    })
                    .push(c);
            }
            Err(Rejected {
                malformed: Malformed { seq, reason },
                raw,
            }) => {
                tracing::error!(seq = seq.as_deref().unwrap_or("unknown"), %reason, "malformed stream record sent to the dead-letter queue");
                if let Some(s) = &seq {
                    position.insert(SeqNo(s.clone()), i);
                }
                letters.push((i, DeadLetter { seq, reason, raw }));
            }
        }
    }
    let mut failed: Option<SeqNo> = None;

    // 2. Claim the identity bindings of first INSERTs, in as few requests as DynamoDB allows;
    // then the bursts among the counters they touched.
    let exec = Executor {
        sessions: &ports.sessions,
        state: &ports.state,
        cfg,
        now,
        deadline,
    };
    let (claims, claim_seqs) = plan::claims(&order, &groups, cfg);
    let mut outcomes: HashMap<SessionId, ClaimOutcome> = HashMap::new();
    let mut blocked: HashMap<SessionId, SeqNo> = HashMap::new();
    let mut burst_part = Part::default();
    if !claims.is_empty() {
        let claim = ports.state.claim(
            &claims,
            plan::binding_expiry(cfg, now),
            plan::counter_expiry(cfg, now),
        );
        let claimed = bounded(exec.deadline, "BindingStore.claim", claim).await;
        match claimed {
            Ok(results) => {
                for (claim, outcome) in claims.iter().zip(results) {
                    outcomes.insert(claim.session_id.clone(), outcome);
                }
                let last_seq = claim_seqs
                    .iter()
                    .max()
                    .cloned()
                    .unwrap_or(SeqNo("0".into()));
                bursts(&exec, &claims, &last_seq, &mut burst_part).await;
            }
            Err(e) => {
                for (claim, seq) in claims.iter().zip(&claim_seqs) {
                    blocked.insert(claim.session_id.clone(), seq.clone());
                }
                tracing::warn!(error = %error_chain(&e), "claiming bindings failed; those sessions are retried from their INSERT");
            }
        }
    }

    // 3. Each session in order; sessions concurrently.
    let parts: Vec<Part> = stream::iter(order.into_iter().map(|id| {
        let mut changes = groups.remove(&id).unwrap_or_default();
        let stop = blocked.get(&id).cloned();
        let outcome = outcomes.remove(&id);
        let exec = &exec;
        async move {
            if let Some(stop) = &stop {
                changes.retain(|c| c.seq < *stop);
            }
            let mut part = exec.session(changes, outcome).await;
            part.failed_at = min_seq(part.failed_at, stop);
            part
        }
    }))
    .buffer_unordered(cfg.concurrency)
    .collect()
    .await;

    // 4. Merge, then publish: one message per alert; in a storm, one digest of all but the urgent.
    let mut pending = Vec::new();
    let mut anomalies = Vec::new();
    let mut cascades: Vec<(CascadeMessage, SeqNo)> = Vec::new();
    let mut filings = Vec::new();
    let mut done = Vec::new();
    let (mut suppressed, mut user_requests) = (Vec::new(), Vec::new());
    let (mut endings, mut moves) = (Vec::new(), Vec::new());
    for mut p in parts.into_iter().chain(std::iter::once(burst_part)) {
        endings.append(&mut p.endings);
        moves.append(&mut p.moves);
        cascades.append(&mut p.cascades);
        filings.append(&mut p.filings);
        done.append(&mut p.done);
        suppressed.append(&mut p.suppressed);
        report.sessions_terminated += p.terminated;
        user_requests.append(&mut p.user_requests);
        failed = min_seq(failed, p.failed_at.take());
        anomalies.extend(p.anomalies);
        pending.extend(p.pending);
    }
    // The per-user session limit, on the starts and stops the sessions showed; its INFO notices
    // go out with the alerts.
    if !moves.is_empty() {
        let (limit_failed, notices) =
            ends::enforce_limit(&exec, moves, &mut report.limit_ended).await;
        failed = min_seq(failed, limit_failed);
        pending.extend(notices);
    }
    let (publish_failed, published) = publish(&exec, ports, &pending, &mut report).await;
    failed = min_seq(failed, publish_failed);
    anomalies.extend(published);
    // Family cascades only for sessions a child marked as its parent: this batch's claims, or a
    // marker in the state table (read after this batch's claims wrote theirs). If the read fails,
    // every request stays: a cascade too many ends nothing, one too few leaves a child alive.
    let asked = family::family_parents(&cascades, cfg);
    let mut childless = Vec::new();
    if !asked.is_empty() {
        let mut marked: HashSet<SessionId> =
            claims.iter().filter_map(|c| c.parent.clone()).collect();
        let unknown: Vec<SessionId> = asked
            .iter()
            .filter(|p| !marked.contains(*p))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            let read = ports.state.parents(&unknown);
            match bounded(deadline, "BindingStore.parents", read).await {
                Ok(found) => marked.extend(found),
                Err(e) => {
                    tracing::warn!(error = %error_chain(&e), "reading parent markers failed; every family cascade is requested");
                    marked.extend(unknown);
                }
            }
        }
        childless = family::drop_childless(&mut cascades, &asked, &marked);
    }
    if !cascades.is_empty() {
        let messages: Vec<CascadeMessage> = cascades.iter().map(|(m, _)| m.clone()).collect();
        match bounded(
            deadline,
            "CascadeQueue.send",
            ports.cascades.send(&messages),
        )
        .await
        {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "requesting cascades failed; their records will be retried");
                failed = min_seq(failed, cascades.iter().map(|(_, s)| s.clone()).min());
            }
        }
    }
    if !filings.is_empty() {
        let lowest = filings.iter().map(|(_, s)| s.clone()).min();
        let batch = filing::compact(filings.into_iter().map(|(f, _)| f).collect());
        match bounded(deadline, "SessionStore.file", ports.sessions.file(&batch)).await {
            Ok(()) => report.index_filings = batch.len() as u64,
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "filing the due and member indexes failed; their records will be retried");
                failed = min_seq(failed, lowest);
            }
        }
    }
    // Session-ended events, one per end, each behind its own gate.
    let events_failed =
        ends::announce(&exec, &ports.events, endings, &mut report.events_published).await;
    failed = min_seq(failed, events_failed);
    // 5. Dead letters, for the malformed records before the failure point: those at or after it
    // come again with the redelivery, and are sent then. So a letter goes out once per record,
    // not once per delivery.
    let cut = cut_at(&position, &failed);
    let now_due: Vec<DeadLetter> = letters
        .iter()
        .filter(|(i, _)| *i < cut)
        .map(|(_, l)| l.clone())
        .collect();
    match dead_letter(deadline, ports, &now_due).await {
        Ok(()) => report.malformed = now_due.len() as u64,
        Err(from) => failed = min_seq(failed, Some(from)),
    }

    // 6. Counts, once per record: only the records before the final failure point, which this
    // delivery is done with; those at or after it come again and count then. (Anomalies and
    // their containment ends count when their gate settles, above.)
    let cut = cut_at(&position, &failed);
    let before = |seq: &SeqNo| position.get(seq).is_some_and(|&i| i < cut);
    report.alerts_suppressed = suppressed.iter().filter(|s| before(s)).count() as u64;
    report.user_terminations_requested = user_requests.iter().filter(|s| before(s)).count() as u64;
    report.cascades_requested = cascades.iter().filter(|(_, s)| before(s)).count() as u64;
    report.family_cascades_skipped = childless.iter().filter(|s| before(s)).count() as u64;
    report.not_sessions = skipped.iter().filter(|&&i| i < cut).count() as u64;
    for (seq, o) in done {
        if before(&seq) {
            report.processed += 1;
            report.deleted_by_ttl += o.ttl;
            report.deleted_by_write += o.write_deletes;
            report.ip_changes += o.ip;
        }
    }
    report.processed += report.not_sessions;
    report.processed += quiet.iter().filter(|&&i| i < cut).count() as u64;
    for (kind, _, _) in &anomalies {
        *report
            .anomalies
            .entry(kind.as_str().to_string())
            .or_default() += 1;
    }
    report.failed_from = failed.as_ref().map(|s| s.0.clone());

    // 7. Metrics: one flush.
    let batch = report::metrics_of(&report, &anomalies, cfg);
    let flush = ports.metrics.publish(&cfg.common.metrics_namespace, &batch);
    if let Err(e) = bounded(deadline, "MetricsSink.publish", flush).await {
        tracing::error!(error = %error_chain(&e), "stream metrics were not published");
    }
    crate::metrics::log_summary("stream batch summary", &report);
    BatchOutcome {
        failed_from: failed,
        report,
    }
}

/// The batch position of the failure point: records from there on are redelivered. Without a
/// failure, past the end. A failure point not in the batch (never expected) cuts nothing, so a
/// letter may go twice but is never lost.
fn cut_at(position: &HashMap<SeqNo, usize>, failed: &Option<SeqNo>) -> usize {
    match failed {
        None => usize::MAX,
        Some(f) if f.0.is_empty() => 0,
        Some(f) => position.get(f).copied().unwrap_or(usize::MAX),
    }
}

/// Sends the malformed records to the dead-letter queue. If that fails they are not lost: the
/// batch fails from the first of them, so Lambda redelivers it and they are sent again (with the
/// same `letterId`s). A first letter with no sequence number fails the whole batch (an empty
/// item identifier, which Lambda takes as a complete failure).
async fn dead_letter<S, T, A, Q, D: DeadLetters, M, E>(
    deadline: &dyn Deadline,
    ports: &Ports<S, T, A, Q, D, M, E>,
    letters: &[DeadLetter],
) -> Result<(), SeqNo> {
    let Some(first) = letters.first() else {
        return Ok(());
    };
    let send = ports.dead_letters.send(letters);
    let e = match bounded(deadline, "DeadLetters.send", send).await {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    tracing::warn!(error = %error_chain(&e), "dead-lettering failed; the records will be retried");
    Err(SeqNo(first.seq.clone().unwrap_or_default()))
}

/// Re-reads every counter the batch's claims touched (new or redelivered, so a retried batch
/// still evaluates them; the dedup gate prevents a second alert) and responds to the bursts.
async fn bursts<S: SessionStore, T: BindingStore + GateStore>(
    exec: &Executor<'_, S, T>,
    claims: &[crate::ports::Claim],
    last_seq: &SeqNo,
    part: &mut Part,
) {
    let keys = plan::counter_keys(claims);
    let counters = exec.state.counters(&keys);
    let counts = match bounded(exec.deadline, "BindingStore.counters", counters).await {
        Ok(c) => c,
        Err(e) => return part.fail(last_seq, &e),
    };
    for (k, f) in plan::burst_findings(&keys, &counts, exec.cfg, claims) {
        tracing::info!(anomaly = f.kind.as_str(), headline = %f.headline, "anomaly detected");
        let response = plan::respond(f, last_seq, exec.cfg, exec.now);
        let owner = plan::burst_owner(k);
        if let Err(e) = exec.respond(&response, last_seq, &owner, part).await {
            part.fail(last_seq, &e);
        }
    }
}

/// Publishes the pending alerts: one message each; past `ALERT_STORM_THRESHOLD`, the HIGH and
/// CRITICAL ones still one by one and the rest folded into one digest.
/// Once SNS has accepted them, their gates are marked published and their anomalies counted
/// (returned). On failure the gates stay PENDING under their owners and the failure point is
/// returned: the redelivery of those records finds its own gates and publishes, with the same
/// alert IDs, and nothing is counted twice.
async fn publish<S: SessionStore, T: BindingStore + GateStore, A: AlertSink, Q, D, M, E>(
    exec: &Executor<'_, S, T>,
    ports: &Ports<S, T, A, Q, D, M, E>,
    pending: &[execute::Pending],
    report: &mut StreamReport,
) -> (
    Option<SeqNo>,
    Vec<(
        crate::anomaly::AnomalyType,
        crate::anomaly::Severity,
        Option<String>,
    )>,
) {
    if pending.is_empty() {
        return (None, Vec::new());
    }
    let (cfg, now) = (exec.cfg, exec.now);
    let alerts: Vec<Alert> = pending.iter().map(|p| p.alert.clone()).collect();
    let to_send = if pending.len() > cfg.alert_storm_threshold {
        // A storm never buries what must wake someone: HIGH and CRITICAL alerts go out one by
        // one (each still behind its gate), and only the rest, two or more, fold into a digest.
        let (mut urgent, rest): (Vec<Alert>, Vec<Alert>) = alerts
            .into_iter()
            .partition(|a| a.severity >= crate::anomaly::Severity::High);
        if rest.len() < 2 {
            urgent.extend(rest);
        } else {
            report.alerts_in_digest = rest.len() as u64;
            let ctx = RenderContext {
                key: &cfg.common.session_ref_key,
                runbook_base_url: &cfg.wiring.runbook_base_url,
                now,
            };
            urgent.push(alert::digest(&rest, &ctx));
        }
        urgent
    } else {
        alerts
    };
    let send = ports.alerts.publish(&to_send);
    if let Err(e) = bounded(exec.deadline, "AlertSink.publish", send).await {
        tracing::warn!(error = %error_chain(&e), "publishing alerts failed; their gates stay pending and their records will be retried");
        let failed = pending.iter().map(|p| p.seq.clone()).min();
        return (failed, Vec::new());
    }
    report.alerts_published = to_send.len() as u64;
    for p in pending {
        // A failed mark leaves the gate PENDING: only a redelivery of its record could publish it
        // again, with the same alert ID.
        // The mark is idempotent, and whether it lands decides whether a redelivery publishes
        // (and counts) again: it is re-sent a few times before it is given up.
        let mark = || ports.state.published(&p.gate, &p.owner);
        let marked = persist(exec.deadline, MARK_TRIES, "GateStore.published", mark).await;
        if let Err(e) = marked {
            tracing::error!(error = %error_chain(&e), alert_id = %p.alert.id, "marking an alert gate published failed");
        }
    }
    report.sessions_terminated += pending.iter().filter(|p| p.ended).count() as u64;
    (
        None,
        pending.iter().filter_map(|p| p.anomaly.clone()).collect(),
    )
}
