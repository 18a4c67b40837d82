//! The stream service's work on starts and ends of sessions, after a batch's sessions ran: the
//! per-user session limit ([`enforce_limit`]) and session-ended events ([`announce`]).
//!
//! Both are exactly-once under redelivery. The limit: a user's roster is replaced only by a write
//! conditional on its version, remembers who left it, and keeps a chosen session in `evicting`
//! until its end is confirmed. Events: each end has a gate keyed by its event ID and owned by its
//! record, opened before publication and marked after it, as alerts are.

use std::collections::{BTreeMap, HashMap};

use futures::stream::{self, StreamExt};

use crate::alert::{self, RenderContext};
use crate::change::SeqNo;
use crate::deadline::{bounded, persist};
use crate::error::{error_chain, PortError};
use crate::layout::Layout;
use crate::limit::{self, Movement};
use crate::ports::{
    BindingStore, EndOutcome, EventSink, GateKey, GateKind, GateState, GateStore, RosterStore,
    SessionStore, Termination,
};
use crate::session::{SessionId, Status, TerminationReason};
use crate::session_event::{self, Ending};

use super::execute::{min_seq, Executor, Pending};

/// Reads and conditional writes of one roster before the batch gives up on it (its records are
/// then retried): each lost race means another invocation's write landed, so this bounds the
/// parallel logins of one user that one batch waits for.
const ROSTER_TRIES: u32 = 64;

/// How long a roster remembers a session that left it, and an event gate its event: beyond the
/// 24 hours a stream record can be redelivered.
const REMEMBER_SECONDS: i64 = 2 * 86_400;

/// Tries of an event gate's mark (each after the SDK's own retries), while time is left.
const MARK_TRIES: u32 = 5;

/// Tries of an event gate's opening and of each PublishBatch of events, while time is left.
const EVENT_TRIES: u32 = 4;

/// What the limit did for one user.
struct Enforced {
    newly: usize,
    limit: u32,
    tenant: Option<String>,
}

/// Enforces `MAX_SESSIONS_PER_USER` on the batch's movements, one user at a time per roster and
/// users concurrently. Returns the failure point (the first record of each user whose roster or
/// ends did not complete) and the INFO notices to publish (one per user per window).
pub(super) async fn enforce_limit<S, T>(
    exec: &Executor<'_, S, T>,
    moves: Vec<(String, Movement, SeqNo)>,
    limit_ended: &mut u64,
) -> (Option<SeqNo>, Vec<Pending>)
where
    S: SessionStore,
    T: BindingStore + GateStore + RosterStore,
{
    let mut by_user: BTreeMap<String, (Vec<Movement>, SeqNo)> = BTreeMap::new();
    for (user, m, seq) in moves {
        let e = by_user
            .entry(user)
            .or_insert_with(|| (Vec::new(), seq.clone()));
        e.0.push(m);
        e.1 = e.1.clone().min(seq);
    }
    let results: Vec<(String, SeqNo, Result<Enforced, PortError>)> = stream::iter(
        by_user
            .into_iter()
            .map(|(user, (moves, first))| async move {
                let r = enforce_user(exec, &user, &moves).await;
                (user, first, r)
            }),
    )
    .buffer_unordered(exec.cfg.concurrency)
    .collect()
    .await;
    let mut failed = None;
    let mut notices = Vec::new();
    for (user, first, r) in results {
        match r {
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), seq = %first, "enforcing the session limit did not complete; the user's records will be retried");
                failed = min_seq(failed, Some(first));
            }
            Ok(done) if done.newly > 0 => {
                *limit_ended += done.newly as u64;
                tracing::info!(user = %user, ended = done.newly, limit = done.limit, "session limit enforced");
                match notice(exec, &user, &done, &first).await {
                    Ok(Some(p)) => notices.push(p),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "opening the session-limit notice's gate failed; no notice for this user");
                    }
                }
            }
            Ok(_) => {}
        }
    }
    (failed, notices)
}

/// Admits one user's movements into the roster (retrying lost races), ends whom it chose, and
/// confirms those ends in the roster.
async fn enforce_user<S, T>(
    exec: &Executor<'_, S, T>,
    user: &str,
    moves: &[Movement],
) -> Result<Enforced, PortError>
where
    S: SessionStore,
    T: RosterStore,
{
    let (cfg, now, deadline) = (exec.cfg, exec.now, exec.deadline);
    let key = &cfg.common.session_ref_key;
    let until = now + REMEMBER_SECONDS;
    let mut admitted = None;
    for _ in 0..ROSTER_TRIES {
        let stored = bounded(deadline, "RosterStore.roster", exec.state.roster(user)).await?;
        let a = limit::admit(&stored.roster, moves, &cfg.limit, key, now, until);
        if !a.changed {
            admitted = Some(a);
            break;
        }
        let save = exec.state.save(user, &a.roster, stored.version, until);
        if bounded(deadline, "RosterStore.save", save).await? {
            admitted = Some(a);
            break;
        }
    }
    let Some(a) = admitted else {
        return Err(PortError::transient(
            "RosterStore.save",
            format!("{ROSTER_TRIES} conflicting writes in a row"),
        ));
    };
    let enforced = Enforced {
        newly: a.newly,
        limit: cfg.limit.of(a.roster.tenant.as_deref()).unwrap_or(0),
        tenant: a.roster.tenant.clone(),
    };
    if a.to_end.is_empty() {
        return Ok(enforced);
    }
    let t = Termination {
        status: Status::Terminated,
        reason: TerminationReason::Limit,
        at: now,
        retain_until: cfg.common.expiry.retain_until(now),
        by: Some("limit".into()),
        fence: None,
    };
    for id in &a.to_end {
        let end = exec.sessions.end(id, &t);
        let outcome: EndOutcome = bounded(deadline, "SessionStore.end", end).await?;
        tracing::debug!(session_ref = %key.of(id), ?outcome, "ended by the session limit");
    }
    confirm(exec, user, &a.to_end).await?;
    Ok(enforced)
}

/// Takes the confirmed ends out of the roster's `evicting`.
async fn confirm<S, T: RosterStore>(
    exec: &Executor<'_, S, T>,
    user: &str,
    ended: &[SessionId],
) -> Result<(), PortError> {
    let until = exec.now + REMEMBER_SECONDS;
    for _ in 0..ROSTER_TRIES {
        let stored = bounded(exec.deadline, "RosterStore.roster", exec.state.roster(user)).await?;
        let next = limit::confirmed(&stored.roster, ended);
        if next == stored.roster {
            return Ok(());
        }
        let save = exec.state.save(user, &next, stored.version, until);
        if bounded(exec.deadline, "RosterStore.save", save).await? {
            return Ok(());
        }
    }
    Err(PortError::transient(
        "RosterStore.save",
        format!("{ROSTER_TRIES} conflicting writes in a row"),
    ))
}

/// The INFO notice of one user's enforcement, behind its gate: one per user per window.
async fn notice<S, T: GateStore>(
    exec: &Executor<'_, S, T>,
    user: &str,
    done: &Enforced,
    first: &SeqNo,
) -> Result<Option<Pending>, PortError> {
    let (cfg, now) = (exec.cfg, exec.now);
    let gate = GateKey {
        kind: GateKind::SessionLimit,
        subject: format!("u:{user}"),
    };
    let owner = format!("limit#{}", now / cfg.alert_dedup_window_seconds.max(1));
    let open = exec
        .state
        .open(&gate, &owner, now, now + cfg.alert_dedup_window_seconds);
    if bounded(exec.deadline, "GateStore.open", open).await? != GateState::Ours {
        return Ok(None);
    }
    let ctx = RenderContext {
        key: &cfg.common.session_ref_key,
        runbook_base_url: &cfg.wiring.runbook_base_url,
        now,
    };
    let id = super::plan::alert_id(&gate, &owner, &cfg.common.session_ref_key);
    let policy = cfg.limit.policy.as_str();
    let alert = alert::limit_notice(
        user,
        done.tenant.as_deref(),
        done.newly,
        done.limit,
        policy,
        &ctx,
    )
    .identified(&id);
    Ok(Some(Pending {
        alert,
        gate,
        owner,
        seq: first.clone(),
        anomaly: None,
        ended: false,
    }))
}

/// Publishes one session-ended event per end the batch showed, each exactly once: its gate (keyed
/// by the event ID, owned by its record) is opened first and marked published once SNS accepted
/// it. Returns the failure point: the first record whose event was not published.
pub(super) async fn announce<S, T, E>(
    exec: &Executor<'_, S, T>,
    events: &E,
    endings: Vec<Ending>,
    published: &mut u64,
) -> Option<SeqNo>
where
    S: SessionStore,
    T: GateStore,
    E: EventSink,
{
    let cfg = exec.cfg;
    if cfg.events.topic_arn.is_none() || endings.is_empty() {
        return None;
    }
    let key = &cfg.common.session_ref_key;
    // Sessionwarden's own ends on layouts that keep no reason left a note of it.
    let mut wanted: Vec<SessionId> = match &cfg.common.layout {
        Layout::Native => Vec::new(),
        Layout::Mapped(_) => endings
            .iter()
            .filter(|e| e.needs_note())
            .map(|e| e.session_id.clone())
            .collect(),
    };
    wanted.sort_by(|a, b| a.expose().cmp(b.expose()));
    wanted.dedup();
    let mut notes = HashMap::new();
    if !wanted.is_empty() {
        let read = exec.sessions.notes(&wanted);
        match bounded(exec.deadline, "SessionStore.notes", read).await {
            Ok(n) => notes = n,
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "reading end notes failed; those ends' records will be retried");
                let lowest = endings
                    .iter()
                    .filter(|e| e.needs_note())
                    .map(|e| e.seq.clone())
                    .min();
                return lowest;
            }
        }
    }
    let until = exec.now + REMEMBER_SECONDS;
    let opened: Vec<(Ending, GateKey, Result<GateState, PortError>)> =
        stream::iter(endings.into_iter().map(|e| {
            let gate = GateKey {
                kind: GateKind::SessionEnded,
                subject: session_event::event_id(key, &e),
            };
            async move {
                // One gate per end, so a batch of ends makes many calls: each is re-sent a few
                // times (it is idempotent for its owner) before its record is failed.
                let open = || exec.state.open(&gate, &e.seq.0, exec.now, until);
                let state = persist(exec.deadline, EVENT_TRIES, "GateStore.open", open).await;
                (e, gate, state)
            }
        }))
        .buffer_unordered(cfg.concurrency)
        .collect()
        .await;
    let mut failed = None;
    let mut due = Vec::new();
    for (e, gate, state) in opened {
        match state {
            Ok(GateState::Ours) => {
                let reason = e.reason(notes.get(&e.session_id).map(String::as_str));
                due.push((
                    session_event::render(&e, &reason, key, cfg.events.raw_id),
                    gate,
                    e.seq,
                ));
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %error_chain(&err), seq = %e.seq, "opening a session event's gate failed; its record will be retried");
                failed = min_seq(failed, Some(e.seq));
            }
        }
    }
    if due.is_empty() {
        return failed;
    }
    // Published 10 at a time (one PublishBatch), each chunk re-sent alone if it fails: the
    // chunks before it are not sent again.
    let mut sent = Vec::new();
    for chunk in due.chunks(10) {
        let batch: Vec<_> = chunk.iter().map(|(ev, _, _)| ev.clone()).collect();
        let publish = || events.publish(&batch);
        match persist(exec.deadline, EVENT_TRIES, "EventSink.publish", publish).await {
            Ok(()) => sent.extend(chunk),
            Err(err) => {
                tracing::warn!(error = %error_chain(&err), "publishing session events failed; their gates stay pending and their records will be retried");
                failed = min_seq(failed, chunk.iter().map(|(_, _, s)| s.clone()).min());
            }
        }
    }
    *published += sent.len() as u64;
    for (ev, gate, seq) in sent {
        let mark = || exec.state.published(gate, &seq.0);
        if let Err(err) = persist(exec.deadline, MARK_TRIES, "GateStore.published", mark).await {
            tracing::error!(error = %error_chain(&err), event_id = %ev.id, "marking a session event's gate published failed");
        }
    }
    failed
}
