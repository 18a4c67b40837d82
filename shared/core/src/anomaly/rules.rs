//! The detection rules: one change (and, for an INSERT, the identity bound before it) in, the
//! findings and facts it yields out. Pure.

use super::client::classify;
use super::network;
use super::{AnomalyType, Binding, Detection, Evidence, Facets, Fact, Finding, Subject};
use crate::change::{Change, ChangeKind, Image};
use crate::expiry::ExpiryPolicy;
use crate::session::{SessionId, Status};

fn differs(a: &Option<String>, b: &Option<String>) -> bool {
    matches!((a, b), (Some(x), Some(y)) if x != y)
}

fn users(a: &Option<String>, b: &Option<String>) -> Vec<String> {
    let mut v: Vec<String> = a.iter().chain(b.iter()).cloned().collect();
    v.dedup();
    v
}

fn ev(field: &'static str, before: &Option<String>, after: &Option<String>) -> Evidence {
    Evidence {
        field,
        before: before.clone(),
        after: after.clone(),
    }
}

/// A user and a tenant the session was bound to before.
type Identity<'a> = (&'a Option<String>, &'a Option<String>);

/// Which half of a session's identity changed.
#[derive(Clone, Copy)]
enum Bound {
    /// `userId`.
    User,
    /// `tenantId`.
    Tenant,
}

/// The finding, if the session's user (or tenant, per `what`) differs from `before`.
fn identity_changed(
    what: Bound,
    id: &SessionId,
    before: Identity<'_>,
    new: &Image,
    headline: &str,
) -> Option<Finding> {
    let (user, tenant) = before;
    let (kind, field, was, now, tenant_id) = match what {
        Bound::User => (
            AnomalyType::SessionUserChanged,
            "userId",
            user,
            &new.user_id,
            new.tenant_id.clone().or_else(|| tenant.clone()),
        ),
        Bound::Tenant => (
            AnomalyType::SessionTenantChanged,
            "tenantId",
            tenant,
            &new.tenant_id,
            new.tenant_id.clone(),
        ),
    };
    differs(was, now).then(|| Finding {
        kind,
        severity: kind.severity(),
        raised: 0,
        subject: Subject::Session(id.clone()),
        tenant_id,
        users: users(user, &new.user_id),
        evidence: vec![ev(field, was, now)],
        headline: headline.into(),
    })
}

fn num(v: Option<i64>) -> Option<String> {
    v.map(|n| n.to_string())
}

/// Detects anomalies and facts in one change.
///
/// `prior` matters only for an INSERT: the binding that existed before it, or `None` when the
/// session ID is new (or when the INSERT is a redelivery of the one that created the binding).
pub fn detect(change: &Change, prior: Option<&Binding>, policy: &ExpiryPolicy) -> Detection {
    let mut d = Detection::default();
    let session = || Subject::Session(change.session_id.clone());
    match change.kind {
        ChangeKind::Remove => d.facts.push(if change.by_ttl {
            Fact::DeletedByTtl
        } else {
            Fact::Deleted
        }),
        ChangeKind::Insert => {
            let Some(new) = &change.new else {
                d.facts.push(Fact::KeysOnly);
                return d;
            };
            if let Some(b) = prior {
                let before = (&b.user_id, &b.tenant_id);
                for (what, headline) in [
                    (Bound::User, "session ID re-inserted for a second user"),
                    (Bound::Tenant, "session ID re-inserted for a second tenant"),
                ] {
                    let id = &change.session_id;
                    d.findings
                        .extend(identity_changed(what, id, before, new, headline));
                }
                if d.findings.is_empty() {
                    d.findings.push(Finding {
                        kind: AnomalyType::SessionResurrected,
                        severity: AnomalyType::SessionResurrected.severity(),
                        raised: 0,
                        subject: session(),
                        tenant_id: new.tenant_id.clone(),
                        users: users(&b.user_id, &new.user_id),
                        evidence: vec![Evidence {
                            field: "sessionId",
                            before: Some("previously used (binding exists)".into()),
                            after: Some(format!(
                                "inserted again as {}",
                                new.status.map_or("?", |s| s.as_str())
                            )),
                        }],
                        headline: "ended session ID inserted again".into(),
                    });
                }
            }
        }
        ChangeKind::Modify => {
            let (Some(old), Some(new)) = (&change.old, &change.new) else {
                d.facts.push(Fact::KeysOnly);
                return d;
            };
            modify_rules(change, old, new, policy, &mut d);
        }
    }
    d
}

/// The session's deadline and its `lastActivityAt` before and after, when an ACTIVE session's
/// activity moved forward to or past that deadline: the store served a session it should have
/// expired. Touches that do not move `lastActivityAt` forward (multi-tab races, replays) are not
/// activity.
fn late_activity(
    old: &Facets<'_>,
    new: &Facets<'_>,
    policy: &ExpiryPolicy,
) -> Option<(i64, i64, i64)> {
    if old.status != Some(Status::Active) || new.status != Some(Status::Active) {
        return None;
    }
    let (before, after) = (old.clock.last_activity_at?, new.clock.last_activity_at?);
    if after <= before {
        return None;
    }
    let deadline = policy.deadlines(&old.clock)?.earliest();
    (after >= deadline).then_some((deadline, before, after))
}

/// True when a MODIFY from `old` to `new` is a plain touch: both images ACTIVE, with the same
/// user, tenant, user agent and IP address, and activity still within the session's deadline.
/// [`detect`] finds nothing in such a change, no finding and no fact (a test holds the two
/// together), so the stream worker decides it from borrowed text without building a
/// [`Change`]: by far the most common record, at the cost of a comparison.
pub fn is_plain_touch(old: &Facets<'_>, new: &Facets<'_>, policy: &ExpiryPolicy) -> bool {
    old.status == Some(Status::Active)
        && new.status == Some(Status::Active)
        && !old.lapsed
        && !new.lapsed
        && old.user_id == new.user_id
        && old.tenant_id == new.tenant_id
        && old.user_agent == new.user_agent
        && old.ip_address == new.ip_address
        && late_activity(old, new, policy).is_none()
}

fn modify_rules(
    change: &Change,
    old: &Image,
    new: &Image,
    policy: &ExpiryPolicy,
    d: &mut Detection,
) {
    let session = || Subject::Session(change.session_id.clone());
    let tenant = new.tenant_id.clone().or_else(|| old.tenant_id.clone());
    let both_users = users(&old.user_id, &new.user_id);

    let before = (&old.user_id, &old.tenant_id);
    if let Some(f) = identity_changed(
        Bound::User,
        &change.session_id,
        before,
        new,
        "session bound to 2 users",
    ) {
        d.findings.push(f);
    } else if old.user_id.is_none() && new.user_id.is_some() {
        d.findings.push(Finding {
            kind: AnomalyType::SessionFixation,
            severity: AnomalyType::SessionFixation.severity(),
            raised: 0,
            subject: session(),
            tenant_id: tenant.clone(),
            users: both_users.clone(),
            evidence: vec![ev("userId", &old.user_id, &new.user_id)],
            headline: "login kept the anonymous session ID (fixation)".into(),
        });
    }
    d.findings.extend(identity_changed(
        Bound::Tenant,
        &change.session_id,
        before,
        new,
        "session moved between 2 tenants",
    ));

    let status_ev = || {
        ev(
            "status",
            &old.status.map(|s| s.as_str().to_string()),
            &new.status.map(|s| s.as_str().to_string()),
        )
    };
    match (old.is_ended(), new.is_ended()) {
        // A session that only lapsed (its TTL deadline passed; nothing ended it) and is written
        // again: the store served a session it should have refused.
        (true, false) if old.lapsed => d.findings.push(Finding {
            kind: AnomalyType::ActivityAfterTermination,
            severity: AnomalyType::ActivityAfterTermination.severity(),
            raised: 0,
            subject: session(),
            tenant_id: tenant.clone(),
            users: both_users.clone(),
            evidence: vec![ev("expires", &num(old.lapses_at), &num(new.lapses_at))],
            headline: "activity on a lapsed session (past its expires)".into(),
        }),
        (true, false) if new.status == Some(Status::Active) => d.findings.push(Finding {
            kind: AnomalyType::SessionResurrected,
            severity: AnomalyType::SessionResurrected.severity(),
            raised: 0,
            subject: session(),
            tenant_id: tenant.clone(),
            users: both_users.clone(),
            evidence: vec![
                status_ev(),
                ev(
                    "terminationReason",
                    &old.termination_reason,
                    &new.termination_reason,
                ),
            ],
            headline: "ended session came back to ACTIVE".into(),
        }),
        (true, true) => {
            let advanced = matches!((old.last_activity_at, new.last_activity_at), (Some(a), Some(b)) if b > a)
                || (old.last_activity_at.is_none() && new.last_activity_at.is_some());
            if advanced || old.fingerprint != new.fingerprint {
                let mut evidence = vec![ev(
                    "lastActivityAt",
                    &num(old.last_activity_at),
                    &num(new.last_activity_at),
                )];
                evidence.push(ev(
                    "status",
                    &old.status.map(|s| s.as_str().into()),
                    &new.status.map(|s| s.as_str().into()),
                ));
                d.findings.push(Finding {
                    kind: AnomalyType::ActivityAfterTermination,
                    severity: AnomalyType::ActivityAfterTermination.severity(),
                    raised: 0,
                    subject: session(),
                    tenant_id: tenant.clone(),
                    users: both_users.clone(),
                    evidence,
                    headline: "activity on an ended session (zombie)".into(),
                });
            }
        }
        (false, true) => d.facts.push(Fact::Ended {
            status: new.status.unwrap_or(Status::Terminated),
            reason: new.termination_reason.clone(),
            revoke_scope: new.revoke_scope.clone(),
        }),
        _ => {}
    }

    // Activity on a session that should already have been expired.
    if let Some((deadline, before, after)) = late_activity(&old.facets(), &new.facets(), policy) {
        d.findings.push(Finding {
            kind: AnomalyType::IdleTimeoutNotEnforced,
            severity: AnomalyType::IdleTimeoutNotEnforced.severity(),
            raised: 0,
            subject: session(),
            tenant_id: tenant.clone(),
            users: both_users.clone(),
            evidence: vec![
                ev("deadline", &None, &Some(deadline.to_string())),
                ev(
                    "lastActivityAt",
                    &Some(before.to_string()),
                    &Some(after.to_string()),
                ),
            ],
            headline: format!(
                "activity {} s after the session's deadline",
                after - deadline
            ),
        });
    }

    // The client, compared as parsed: a browser's own update is not a change.
    if let (Some(a), Some(b)) = (&old.user_agent, &new.user_agent) {
        if a != b {
            let (was, now) = (classify(a), classify(b));
            let kind = if now.script && !was.script {
                Some((
                    AnomalyType::SessionClientScripted,
                    "a browser session is now driven by a script client",
                ))
            } else if (&was.family, &was.os, &was.device) != (&now.family, &now.os, &now.device) {
                Some((
                    AnomalyType::SessionContextChanged,
                    "the client changed within a session",
                ))
            } else {
                None
            };
            if let Some((kind, headline)) = kind {
                let mut evidence = vec![
                    Evidence {
                        field: "client",
                        before: Some(was.describe()),
                        after: Some(now.describe()),
                    },
                    ev("userAgent", &old.user_agent, &new.user_agent),
                ];
                // A new client from another network is a step stronger than a new client behind
                // the same connection, and the alert shows both.
                let moved = match (kind, &old.ip_address, &new.ip_address) {
                    (AnomalyType::SessionContextChanged, Some(a), Some(b)) => network::moved(a, b),
                    _ => None,
                };
                let (raised, headline) = match moved {
                    Some((from, to)) => {
                        evidence.insert(1, ev("network", &Some(from), &Some(to)));
                        (1, "the client and its network changed within a session")
                    }
                    None => (0, headline),
                };
                d.findings.push(Finding {
                    kind,
                    severity: kind.severity().raised(raised),
                    raised,
                    subject: session(),
                    tenant_id: tenant,
                    users: both_users,
                    evidence,
                    headline: headline.into(),
                });
            }
        }
    }
    if differs(&old.ip_address, &new.ip_address) {
        d.facts.push(Fact::IpChanged);
    }
}
