//! The stream service's executor: carries out the plans of [`super::plan`] through the ports, in
//! order, and finds the failure point. A transient error stops the session at its record; every
//! effect is idempotent, so whatever ran after the failure point is safe to redo.

use crate::alert::{self, Alert, RenderContext};
use crate::anomaly::{AnomalyType, Severity};
use crate::cascade_message::CascadeMessage;
use crate::change::{Change, SeqNo};
use crate::config::StreamConfig;
use crate::deadline::{bounded, Deadline};
use crate::error::{error_chain, PortError};
use crate::ports::{BindingStore, ClaimOutcome, GateKey, GateState, GateStore, SessionStore};

use super::plan::{self, Contain, Response, Step};

/// An alert waiting for publication, with what it needs either way.
pub struct Pending {
    /// The rendered alert, with its stable ID.
    pub alert: Alert,
    /// Its gate, marked published once SNS has accepted the alert (left PENDING otherwise, for
    /// the redelivery of `seq` to publish).
    pub gate: GateKey,
    /// The gate's owner.
    pub owner: String,
    /// Its record, the failure point if publication fails.
    pub seq: SeqNo,
    /// The anomaly, counted once it is published (`None` for a notice).
    pub anomaly: Option<(AnomalyType, Severity, Option<String>)>,
    /// True if its containment ended the session (counted with the anomaly).
    pub ended: bool,
}

/// What carrying out one session's records (or the burst pass) produced.
#[derive(Default)]
pub struct Part {
    /// The record this part stopped at, if it failed.
    pub failed_at: Option<SeqNo>,
    /// Records fully processed, each with what it showed. They are counted only if they lie
    /// before the batch's failure point: a record at or after it comes again, and counts then.
    pub done: Vec<(SeqNo, Observed)>,
    /// Alerts to publish.
    pub pending: Vec<Pending>,
    /// New anomalies settled without an alert (below their alert severity): type, severity,
    /// tenant. Alerted ones are counted when their alert is published.
    pub anomalies: Vec<(AnomalyType, Severity, Option<String>)>,
    /// Records whose anomaly's gate another record holds (the incident is alerted by its owner).
    pub suppressed: Vec<SeqNo>,
    /// Sessions ended by containment whose finding settled here (its gate marked without an
    /// alert). Alerted findings count theirs when published ([`Pending::ended`]).
    pub terminated: u64,
    /// Records whose containment requested a USER cascade.
    pub user_requests: Vec<SeqNo>,
    /// Cascade requests with the record that asked for them.
    pub cascades: Vec<(CascadeMessage, SeqNo)>,
    /// Index filings, with their records.
    pub filings: Vec<(crate::ports::Filing, SeqNo)>,
    /// Ends of sessions, for session-ended events (only with an events topic or a limit).
    pub endings: Vec<crate::session_event::Ending>,
    /// Starts and stops of users' sessions, for the session limit (only with a limit), each
    /// with its user and record.
    pub moves: Vec<(String, crate::limit::Movement, SeqNo)>,
}

/// What one record showed, as distinct from what was done about it: deterministic from the
/// record, so counting it once per record (not once per delivery) keeps the metrics exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observed {
    /// TTL deletes.
    pub ttl: u64,
    /// Deletes by a write.
    pub write_deletes: u64,
    /// IP changes.
    pub ip: u64,
}

impl Part {
    /// Records that the work of `seq` did not complete; Lambda retries from the lowest such record.
    pub fn fail(&mut self, seq: &SeqNo, e: &PortError) {
        tracing::warn!(seq = %seq, transient = e.is_transient(), error = %error_chain(e), "record not completed; Lambda will retry from it");
        self.failed_at = min_seq(self.failed_at.take(), Some(seq.clone()));
    }
}

/// The lower of two optional sequence numbers.
pub fn min_seq(a: Option<SeqNo>, b: Option<SeqNo>) -> Option<SeqNo> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The ports and settings one batch runs with.
pub struct Executor<'a, S, T> {
    /// The sessions table (containment ends sessions).
    pub sessions: &'a S,
    /// The state table (bindings, gates).
    pub state: &'a T,
    /// Settings.
    pub cfg: &'a StreamConfig,
    /// The batch's clock, epoch seconds.
    pub now: i64,
    /// The invocation's deadline: every call's budget ends [`crate::deadline::RESERVE`] before it, so the
    /// batch still returns its failure point in time.
    pub deadline: &'a dyn Deadline,
}

impl<S: SessionStore, T: BindingStore + GateStore> Executor<'_, S, T> {
    /// Contains a finding (idempotent), then opens its dedup gate for `owner`, then renders its
    /// alert. The alert's ID derives from the gate and its owner, so every attempt of the same
    /// incident carries the same ID.
    pub async fn respond(
        &self,
        r: &Response,
        seq: &SeqNo,
        owner: &str,
        part: &mut Part,
    ) -> Result<(), PortError> {
        let ended = match &r.containment {
            Contain::EndSession(id, t) => {
                let end = self.sessions.end(id, t);
                Some(bounded(self.deadline, "SessionStore.end", end).await?)
            }
            Contain::EndUser { request, .. } => {
                part.cascades.push(((**request).clone(), seq.clone()));
                part.user_requests.push(seq.clone());
                None
            }
            Contain::None(_) => None,
        };
        let until = self.now + self.cfg.alert_dedup_window_seconds;
        let open = self.state.open(&r.gate, owner, self.now, until);
        match bounded(self.deadline, "GateStore.open", open).await? {
            GateState::Ours => {}
            // This record's own alert went out in an earlier delivery: nothing left to do.
            GateState::Published => return Ok(()),
            GateState::Taken => {
                part.suppressed.push(seq.clone());
                return Ok(());
            }
        }
        let f = &r.finding;
        let anomaly = (f.kind, f.severity(), f.tenant_id.clone());
        // Ended now, or recognised as this record's own end from an earlier delivery whose
        // response was lost (`terminatedBy`). Counted with the anomaly, when its gate settles: a
        // delivery that finds the gate settled counts neither.
        let ended_now = ended == Some(crate::ports::EndOutcome::Ended);
        if !r.alert {
            let mark = self.state.published(&r.gate, owner);
            bounded(self.deadline, "GateStore.published", mark).await?;
            part.anomalies.push(anomaly);
            part.terminated += u64::from(ended_now);
            return Ok(());
        }
        let ctx = RenderContext {
            key: &self.cfg.common.session_ref_key,
            runbook_base_url: &self.cfg.wiring.runbook_base_url,
            now: self.now,
        };
        let id = plan::alert_id(&r.gate, owner, &self.cfg.common.session_ref_key);
        part.pending.push(Pending {
            alert: alert::render(f, &r.containment.action(ended), &seq.0, &ctx).identified(&id),
            gate: r.gate.clone(),
            owner: owner.to_string(),
            seq: seq.clone(),
            anomaly: Some(anomaly),
            ended: ended_now,
        });
        Ok(())
    }

    /// Carries out the records of one session in order; stops at the first failure.
    pub async fn session(&self, changes: Vec<Change>, first_insert: Option<ClaimOutcome>) -> Part {
        let mut part = Part::default();
        let key = &self.cfg.common.session_ref_key;
        let mut known = None;
        let mut first_insert = first_insert;
        for change in changes {
            let prior = plan::prior(&change, &mut first_insert, &mut known);
            let record = plan::decide(&change, prior.as_ref(), self.cfg, self.now);
            let observed = Observed {
                ttl: record.ttl_deletes,
                write_deletes: record.write_deletes,
                ip: record.ip_changes,
            };
            part.filings
                .extend(record.filings.into_iter().map(|f| (f, change.seq.clone())));
            part.cascades
                .extend(record.cascades.into_iter().map(|m| (m, change.seq.clone())));
            let limited = self.cfg.limit.enabled();
            if limited || self.cfg.events.topic_arn.is_some() {
                let ending = crate::session_event::ending(&change);
                if limited {
                    let moves = crate::limit::movements(&change, ending.as_ref());
                    part.moves.extend(
                        moves
                            .into_iter()
                            .map(|(user, m)| (user, m, change.seq.clone())),
                    );
                }
                part.endings.extend(ending);
            }
            for step in &record.steps {
                let done = match step {
                    Step::Bind { user, tenant } => {
                        let until = plan::binding_expiry(self.cfg, self.now);
                        let bind =
                            self.state
                                .bind(&change.session_id, user, tenant.as_deref(), until);
                        bounded(self.deadline, "BindingStore.bind", bind).await
                    }
                    Step::Respond(r) => {
                        let f = &r.finding;
                        tracing::info!(session_ref = %key.of(&change.session_id), anomaly = f.kind.as_str(), severity = f.severity().as_str(), seq = %change.seq, "anomaly detected");
                        self.respond(r, &change.seq, &change.seq.0, &mut part).await
                    }
                };
                if let Err(e) = done {
                    part.fail(&change.seq, &e);
                    return part;
                }
            }
            part.done.push((change.seq, observed));
        }
        part
    }
}
