//! The stream service's decisions, all pure: from one change plus the state it read, what the
//! service intends to do. Nothing here performs I/O; [`super::execute`] carries the plans out.
//!
//! - [`prior`] says which earlier identity an INSERT must be compared with, from its claim.
//! - [`decide`] turns one change into a [`RecordPlan`]: counters, cascade requests, and the
//!   ordered [`Step`]s (bindings to record, findings to contain and alert on).
//! - [`claims`] and [`burst_findings`] are the batch-level decisions: which INSERTs claim a
//!   binding, and which counters crossed their threshold.

use std::collections::HashMap;

use crate::anomaly::{self, AnomalyType, Binding, Fact, Finding, Subject};
use crate::cascade_message::{CascadeMessage, Target};
use crate::change::{Change, ChangeKind, SeqNo};
use crate::config::{Containment, StreamConfig};
use crate::layout::Layout;
use crate::ports::{
    BurstScope, Claim, ClaimOutcome, CounterKey, EndOutcome, Filing, GateKey, Termination,
};
use crate::session::{SessionId, Status, TerminationReason};

/// One thing to do for a record, in order.
#[derive(Debug, Clone)]
pub enum Step {
    /// Record the user (and tenant) of a session that authenticated after its INSERT.
    Bind {
        /// The user now on the session.
        user: String,
        /// Its tenant.
        tenant: Option<String>,
    },
    /// Contain a finding, then alert on it through the dedup gate.
    Respond(Box<Response>),
}

/// What to do about one finding.
#[derive(Debug, Clone)]
pub struct Response {
    /// The finding.
    pub finding: Finding,
    /// The containment the policy asks for.
    pub containment: Contain,
    /// Its dedup gate.
    pub gate: GateKey,
    /// True if its (configured) severity reaches the alert threshold of its type.
    pub alert: bool,
}

/// A containment decided for one finding.
#[derive(Debug, Clone)]
pub enum Contain {
    /// End the session (idempotent: a conditional write on ACTIVE).
    EndSession(SessionId, Termination),
    /// Ask the cascade worker to end every session of the user.
    EndUser {
        /// The user.
        user: String,
        /// The USER cascade request.
        request: Box<CascadeMessage>,
    },
    /// Alert only.
    None(AnomalyType),
}

impl Contain {
    /// The action line of the alert, once the containment has been carried out. `ended` is what
    /// ending the session found (for [`Contain::EndSession`]).
    pub fn action(&self, ended: Option<EndOutcome>) -> String {
        match (self, ended) {
            (Contain::EndSession(..), Some(EndOutcome::Ended)) => {
                "session terminated (terminationReason containment)".to_string()
            }
            (Contain::EndSession(..), Some(EndOutcome::Gone)) => {
                "session no longer exists".to_string()
            }
            (Contain::EndSession(..), _) => "session already ended; left as it was".to_string(),
            (Contain::EndUser { user, .. }, _) => {
                format!("termination of every session of user {user} requested (USER cascade)")
            }
            (Contain::None(kind), _) => format!("none: the policy for {kind} is alert only"),
        }
    }
}

/// Everything one record asks for.
#[derive(Debug, Clone, Default)]
pub struct RecordPlan {
    /// 1 if the client IP changed.
    pub ip_changes: u64,
    /// 1 if DynamoDB's TTL deleted the item.
    pub ttl_deletes: u64,
    /// 1 if a write deleted the item (the app's logout, or sessionwarden's own end).
    pub write_deletes: u64,
    /// Changes to the layout's own indexes (empty on the native layout).
    pub filings: Vec<Filing>,
    /// Cascades the change implies (revokeScope, families).
    pub cascades: Vec<CascadeMessage>,
    /// Bindings and responses, in order.
    pub steps: Vec<Step>,
}

/// The earlier identity an INSERT must be compared with. `first_insert` is the claim outcome of
/// the session's first INSERT in the batch (taken on use); `known` is the binding as known inside
/// this batch, updated here.
pub fn prior(
    change: &Change,
    first_insert: &mut Option<ClaimOutcome>,
    known: &mut Option<Binding>,
) -> Option<Binding> {
    if change.kind != ChangeKind::Insert || change.new.is_none() {
        return None;
    }
    match first_insert.take() {
        Some(ClaimOutcome::Claimed) => {
            *known = change.new.as_ref().map(|n| Binding {
                user_id: n.user_id.clone(),
                tenant_id: n.tenant_id.clone(),
                insert_seq: Some(change.seq.0.clone()),
            });
            None
        }
        Some(ClaimOutcome::Existing(b)) => {
            let redelivery = b.insert_seq.as_deref() == Some(change.seq.0.as_str());
            *known = Some(b.clone());
            (!redelivery).then_some(b)
        }
        // A later INSERT of the same ID in this batch: the ID was used before.
        None => known.clone(),
    }
}

/// Decides what one change asks for, at `now`.
pub fn decide(
    change: &Change,
    prior: Option<&Binding>,
    cfg: &StreamConfig,
    now: i64,
) -> RecordPlan {
    let detection = anomaly::detect(change, prior, &cfg.common.expiry);
    let mut plan = RecordPlan::default();
    for fact in &detection.facts {
        match fact {
            Fact::IpChanged => plan.ip_changes += 1,
            Fact::Ended {
                reason,
                revoke_scope,
                ..
            } => {
                let new = change.new.as_ref();
                let why = reason.as_deref().unwrap_or("ended");
                // The app revoked more than this session.
                match (
                    revoke_scope.as_deref(),
                    new.and_then(|n| n.user_id.clone()),
                    new.and_then(|n| n.tenant_id.clone()),
                ) {
                    (Some("user"), Some(u), _) => plan.cascades.push(cascade_request(
                        Target::User(u),
                        &format!("revokeScope=user ({why})"),
                        &format!("stream:{}:user", change.seq.0),
                    )),
                    (Some("tenant"), _, Some(t)) => plan.cascades.push(cascade_request(
                        Target::Tenant(t),
                        &format!("revokeScope=tenant ({why})"),
                        &format!("stream:{}:tenant", change.seq.0),
                    )),
                    _ => {}
                }
                // Any ended session takes its children with it. The cascade worker recurses
                // through families itself, so its own cascade:family ends are not re-requested.
                if has_families(cfg)
                    && reason.as_deref() != Some(TerminationReason::CascadeFamily.as_str())
                {
                    plan.cascades
                        .push(family_request(&change.session_id, why, &change.seq));
                }
            }
            Fact::DeletedByTtl => {
                plan.ttl_deletes += 1;
                if has_families(cfg)
                    && change.old.as_ref().and_then(|o| o.status) == Some(Status::Active)
                {
                    plan.cascades.push(family_request(
                        &change.session_id,
                        "deleted by TTL while ACTIVE",
                        &change.seq,
                    ));
                }
            }
            Fact::Deleted => plan.write_deletes += 1,
            Fact::KeysOnly => {}
        }
    }
    plan.filings = super::filing::filings(change, &cfg.common);
    for f in detection.findings {
        if f.kind == AnomalyType::SessionFixation {
            if let Some(user) = change.new.as_ref().and_then(|n| n.user_id.clone()) {
                let tenant = change.new.as_ref().and_then(|n| n.tenant_id.clone());
                plan.steps.push(Step::Bind { user, tenant });
            }
        }
        plan.steps
            .push(Step::Respond(Box::new(respond(f, &change.seq, cfg, now))));
    }
    plan
}

/// True when sessions of this layout can have children (a parent attribute), so an ended
/// session asks for a family cascade.
fn has_families(cfg: &StreamConfig) -> bool {
    match &cfg.common.layout {
        Layout::Native => true,
        Layout::Mapped(m) => m.parent.is_some(),
    }
}

/// Decides the response to one finding: its severity (its type's configured one,
/// `SEVERITY_<TYPE>`, plus the steps its rule raised it by), its containment, its gate, and
/// whether it alerts. Every finding passes here before anything uses its severity, so the
/// alert threshold, the alert itself, the storm split and the metrics agree.
pub fn respond(finding: Finding, seq: &SeqNo, cfg: &StreamConfig, now: i64) -> Response {
    let policy = cfg.response(finding.kind);
    let finding = finding.with_type_severity(policy.severity);
    let containment = match (policy.containment, &finding.subject) {
        // The ID without its home: on a composite-key layout every item that carries the ID ends.
        (Containment::TerminateSession, Subject::Session(id)) => Contain::EndSession(
            SessionId::new(id.expose()),
            Termination {
                status: Status::Terminated,
                reason: TerminationReason::Containment,
                at: now,
                retain_until: cfg.common.expiry.retain_until(now),
                // The record that contained it: a redelivery recognises its own end whose
                // response was lost (`ALL_OLD`), on layouts that keep `terminatedBy`.
                by: Some(format!("stream:{seq}")),
                fence: None,
            },
        ),
        (Containment::TerminateUser, _) if !finding.users.is_empty() => {
            let user = finding.users.last().cloned().unwrap_or_default();
            let request = cascade_request(
                Target::User(user.clone()),
                &format!("containment of {}", finding.kind),
                &format!("stream:{}:containment:{user}", seq.0),
            );
            Contain::EndUser {
                user,
                request: Box::new(request),
            }
        }
        _ => Contain::None(finding.kind),
    };
    Response {
        gate: gate_key(&finding, cfg),
        alert: finding.severity() >= policy.min_alert_severity,
        containment,
        finding,
    }
}

/// The stable ID of an incident's alert: the same for every attempt of the record that owns its
/// gate, different for another incident. A keyed digest, so it reveals nothing.
pub fn alert_id(gate: &GateKey, owner: &str, key: &crate::session_ref::SessionRefKey) -> String {
    key.reference(&format!("{}|{}|{owner}", gate.kind.as_str(), gate.subject))
        .to_string()
}

/// The owner of a burst's gate: the burst's own window, so a redelivered batch that finds the
/// same burst again holds the gate it opened.
pub fn burst_owner(k: &CounterKey) -> String {
    format!("burst#{}", k.bucket)
}

/// The dedup gate of a finding; sessions appear only as their keyed digest.
pub fn gate_key(f: &Finding, cfg: &StreamConfig) -> GateKey {
    let subject = match &f.subject {
        Subject::Session(id) => format!("s:{}", cfg.common.session_ref_key.state_key(id)),
        Subject::User(u) => format!("u:{u}"),
        Subject::Tenant(t) => format!("t:{t}"),
    };
    GateKey {
        kind: crate::ports::GateKind::Anomaly(f.kind),
        subject,
    }
}

/// How long a binding is kept: a session's whole possible life plus the audit retention.
pub fn binding_expiry(cfg: &StreamConfig, now: i64) -> i64 {
    let e = &cfg.common.expiry;
    now + e.default_max_lifetime_seconds + e.audit_retention_seconds
}

/// How long a burst counter is kept.
pub fn counter_expiry(cfg: &StreamConfig, now: i64) -> i64 {
    now + 2 * cfg.burst_window_seconds + cfg.common.expiry.audit_retention_seconds
}

/// The binding claims of a batch: one per session with an INSERT, from its first INSERT, with
/// the burst counters it increments if it is new. Returns the claims and their sequence numbers.
pub fn claims(
    order: &[SessionId],
    groups: &HashMap<SessionId, Vec<Change>>,
    cfg: &StreamConfig,
) -> (Vec<Claim>, Vec<SeqNo>) {
    let mut claims = Vec::new();
    let mut seqs = Vec::new();
    for id in order {
        let first = groups[id].iter().find_map(|c| {
            (c.kind == ChangeKind::Insert)
                .then_some(c)
                .and_then(|c| c.new.as_ref().map(|n| (c, n)))
        });
        let Some((c, n)) = first else { continue };
        let bucket = n
            .created_at
            .unwrap_or(c.at)
            .div_euclid(cfg.burst_window_seconds);
        let counter = |scope, id: &String| CounterKey {
            scope,
            id: id.clone(),
            bucket,
        };
        let counters = n
            .user_id
            .iter()
            .map(|u| counter(BurstScope::User, u))
            .chain(n.tenant_id.iter().map(|t| counter(BurstScope::Tenant, t)))
            .collect();
        claims.push(Claim {
            session_id: id.clone(),
            binding: Binding {
                user_id: n.user_id.clone(),
                tenant_id: n.tenant_id.clone(),
                insert_seq: Some(c.seq.0.clone()),
            },
            counters,
            parent: n.parent_session_id.clone(),
        });
        seqs.push(c.seq.clone());
    }
    (claims, seqs)
}

/// Every counter the claims touch, sorted and deduplicated.
pub fn counter_keys(claims: &[Claim]) -> Vec<CounterKey> {
    let mut keys: Vec<CounterKey> = claims
        .iter()
        .flat_map(|c| c.counters.iter().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The bursts among `keys`: counters above their threshold.
pub fn burst_findings<'k>(
    keys: &'k [CounterKey],
    counts: &HashMap<CounterKey, u64>,
    cfg: &StreamConfig,
    claims: &[Claim],
) -> Vec<(&'k CounterKey, Finding)> {
    keys.iter()
        .filter_map(|k| {
            let count = counts.get(k).copied().unwrap_or(0);
            (count > threshold(k.scope, cfg)).then(|| (k, burst_finding(k, count, cfg, claims)))
        })
        .collect()
}

fn threshold(scope: BurstScope, cfg: &StreamConfig) -> u64 {
    match scope {
        BurstScope::User => cfg.burst_user_threshold,
        BurstScope::Tenant => cfg.burst_tenant_threshold,
    }
}

/// A cascade request from the stream worker. The request ID is derived from the stream record,
/// so a redelivered record re-requests the same root and changes nothing twice.
fn cascade_request(target: Target, reason: &str, request_id: &str) -> CascadeMessage {
    crate::cascade_message::request(
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
    Finding {
        kind: AnomalyType::SessionCreationBurst,
        severity: AnomalyType::SessionCreationBurst.severity(),
        raised: 0,
        subject,
        tenant_id: tenant,
        users,
        evidence: vec![anomaly::Evidence {
            field: "newSessionsInWindow",
            before: Some(format!("threshold {}", threshold(k.scope, cfg))),
            after: Some(count.to_string()),
        }],
        headline,
    }
}
