//! Anomaly detection: pure rules over one stream change (and, for an INSERT, the identity the
//! session ID was bound to before it). The catalogue, with severities and triggers, is in the
//! README. The benign cases (cleanup expiry, our own terminations, logout, TTL deletes, multi-tab
//! touches, a new session ID at login, a tenant switch through a new session) raise nothing.

use std::fmt;

use crate::change::{Change, ChangeKind, Image};
use crate::expiry::ExpiryPolicy;
use crate::session::{SessionId, Status};

/// How urgent an anomaly is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Information, not an anomaly (e.g. a large cascade completed).
    Info,
    /// Worth a look.
    Low,
    /// A policy gap in the app.
    Medium,
    /// A session is being used when it must not be.
    High,
    /// A credential is shared between identities.
    Critical,
}

impl Severity {
    /// The spelling in alerts, metrics and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// Parses `LOW|MEDIUM|HIGH|CRITICAL` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .into_iter()
        .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The anomaly catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnomalyType {
    /// One session ID seen with two different users.
    SessionUserChanged,
    /// One session ID seen with two different tenants.
    SessionTenantChanged,
    /// An ended session that is still being written to (a zombie).
    ActivityAfterTermination,
    /// An ended session that became ACTIVE again, or whose ID was inserted again.
    SessionResurrected,
    /// An anonymous session authenticated under the same ID.
    SessionFixation,
    /// Activity recorded after the session's idle or absolute deadline had passed.
    IdleTimeoutNotEnforced,
    /// Too many new sessions for one user or tenant within a window.
    SessionCreationBurst,
    /// The user agent changed within a session.
    SessionContextChanged,
}

impl AnomalyType {
    /// Every type, in catalogue order.
    pub const ALL: [AnomalyType; 8] = [
        AnomalyType::SessionUserChanged,
        AnomalyType::SessionTenantChanged,
        AnomalyType::ActivityAfterTermination,
        AnomalyType::SessionResurrected,
        AnomalyType::SessionFixation,
        AnomalyType::IdleTimeoutNotEnforced,
        AnomalyType::SessionCreationBurst,
        AnomalyType::SessionContextChanged,
    ];

    /// The spelling in alerts, metrics and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyType::SessionUserChanged => "SESSION_USER_CHANGED",
            AnomalyType::SessionTenantChanged => "SESSION_TENANT_CHANGED",
            AnomalyType::ActivityAfterTermination => "ACTIVITY_AFTER_TERMINATION",
            AnomalyType::SessionResurrected => "SESSION_RESURRECTED",
            AnomalyType::SessionFixation => "SESSION_FIXATION",
            AnomalyType::IdleTimeoutNotEnforced => "IDLE_TIMEOUT_NOT_ENFORCED",
            AnomalyType::SessionCreationBurst => "SESSION_CREATION_BURST",
            AnomalyType::SessionContextChanged => "SESSION_CONTEXT_CHANGED",
        }
    }

    /// The fixed severity of the type.
    pub fn severity(self) -> Severity {
        match self {
            AnomalyType::SessionUserChanged | AnomalyType::SessionTenantChanged => {
                Severity::Critical
            }
            AnomalyType::ActivityAfterTermination | AnomalyType::SessionResurrected => {
                Severity::High
            }
            AnomalyType::SessionFixation
            | AnomalyType::IdleTimeoutNotEnforced
            | AnomalyType::SessionCreationBurst => Severity::Medium,
            AnomalyType::SessionContextChanged => Severity::Low,
        }
    }
}

impl fmt::Display for AnomalyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One before/after value that shows what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The attribute.
    pub field: &'static str,
    /// Its value before (`None`: absent).
    pub before: Option<String>,
    /// Its value after.
    pub after: Option<String>,
}

/// What a finding is about: one session, or a user or tenant (bursts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A session.
    Session(SessionId),
    /// A user, for creation bursts.
    User(String),
    /// A tenant, for creation bursts.
    Tenant(String),
}

/// One detected anomaly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Its type (and so its severity).
    pub kind: AnomalyType,
    /// What it is about.
    pub subject: Subject,
    /// The tenant involved, if known.
    pub tenant_id: Option<String>,
    /// The users involved, in the order they were seen.
    pub users: Vec<String>,
    /// Before/after values.
    pub evidence: Vec<Evidence>,
    /// A short human headline (no session ID), used in the alert subject.
    pub headline: String,
}

impl Finding {
    /// The severity of its type.
    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }

    /// The session, if the finding is about one.
    pub fn session_id(&self) -> Option<&SessionId> {
        match &self.subject {
            Subject::Session(id) => Some(id),
            _ => None,
        }
    }
}

/// The identity a session ID was first bound to, as kept in the state table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Binding {
    /// First user seen.
    pub user_id: Option<String>,
    /// First tenant seen.
    pub tenant_id: Option<String>,
    /// Sequence number of the INSERT that created the binding; equal on a redelivery.
    pub insert_seq: Option<String>,
}

/// A non-anomalous fact worth counting or acting on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// The session ended in this change.
    Ended {
        /// New status.
        status: Status,
        /// `terminationReason`, as stored.
        reason: Option<String>,
        /// `revokeScope`, as stored.
        revoke_scope: Option<String>,
    },
    /// The client IP changed (a metric only: mobile networks do this all day).
    IpChanged,
    /// DynamoDB's TTL deleted the item.
    DeletedByTtl,
    /// Something other than TTL deleted the item.
    Deleted,
    /// A keys-only image with nothing to judge (moto emits one before an UpdateItem-created INSERT).
    KeysOnly,
}

/// Everything one change yields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Detection {
    /// Anomalies.
    pub findings: Vec<Finding>,
    /// Facts.
    pub facts: Vec<Fact>,
}

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
                if differs(&b.user_id, &new.user_id) {
                    d.findings.push(Finding {
                        kind: AnomalyType::SessionUserChanged,
                        subject: session(),
                        tenant_id: new.tenant_id.clone().or_else(|| b.tenant_id.clone()),
                        users: users(&b.user_id, &new.user_id),
                        evidence: vec![ev("userId", &b.user_id, &new.user_id)],
                        headline: "session ID re-inserted for a second user".into(),
                    });
                }
                if differs(&b.tenant_id, &new.tenant_id) {
                    d.findings.push(Finding {
                        kind: AnomalyType::SessionTenantChanged,
                        subject: session(),
                        tenant_id: new.tenant_id.clone(),
                        users: users(&b.user_id, &new.user_id),
                        evidence: vec![ev("tenantId", &b.tenant_id, &new.tenant_id)],
                        headline: "session ID re-inserted for a second tenant".into(),
                    });
                }
                if d.findings.is_empty() {
                    d.findings.push(Finding {
                        kind: AnomalyType::SessionResurrected,
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

    if differs(&old.user_id, &new.user_id) {
        d.findings.push(Finding {
            kind: AnomalyType::SessionUserChanged,
            subject: session(),
            tenant_id: tenant.clone(),
            users: both_users.clone(),
            evidence: vec![ev("userId", &old.user_id, &new.user_id)],
            headline: "session bound to 2 users".into(),
        });
    } else if old.user_id.is_none() && new.user_id.is_some() {
        d.findings.push(Finding {
            kind: AnomalyType::SessionFixation,
            subject: session(),
            tenant_id: tenant.clone(),
            users: both_users.clone(),
            evidence: vec![ev("userId", &old.user_id, &new.user_id)],
            headline: "login kept the anonymous session ID (fixation)".into(),
        });
    }
    if differs(&old.tenant_id, &new.tenant_id) {
        d.findings.push(Finding {
            kind: AnomalyType::SessionTenantChanged,
            subject: session(),
            tenant_id: new.tenant_id.clone(),
            users: both_users.clone(),
            evidence: vec![ev("tenantId", &old.tenant_id, &new.tenant_id)],
            headline: "session moved between 2 tenants".into(),
        });
    }

    let status_ev = || {
        ev(
            "status",
            &old.status.map(|s| s.as_str().to_string()),
            &new.status.map(|s| s.as_str().to_string()),
        )
    };
    match (old.is_ended(), new.is_ended()) {
        (true, false) if new.status == Some(Status::Active) => d.findings.push(Finding {
            kind: AnomalyType::SessionResurrected,
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

    // Activity on a session that should already have been expired. Touches that do not move
    // lastActivityAt forward (multi-tab races, replays) are not activity.
    if old.status == Some(Status::Active) && new.status == Some(Status::Active) {
        if let (Some(before), Some(after)) = (old.last_activity_at, new.last_activity_at) {
            if after > before {
                if let Some(deadlines) = policy.deadlines(&old.clock()) {
                    let deadline = deadlines.earliest();
                    if after >= deadline {
                        d.findings.push(Finding {
                            kind: AnomalyType::IdleTimeoutNotEnforced,
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
                }
            }
        }
    }

    if differs(&old.user_agent, &new.user_agent) {
        d.findings.push(Finding {
            kind: AnomalyType::SessionContextChanged,
            subject: session(),
            tenant_id: tenant,
            users: both_users,
            evidence: vec![ev("userAgent", &old.user_agent, &new.user_agent)],
            headline: "user agent changed within a session".into(),
        });
    }
    if differs(&old.ip_address, &new.ip_address) {
        d.facts.push(Fact::IpChanged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::SeqNo;

    const NOW: i64 = 1_800_000_000;
    fn image(user: Option<&str>, tenant: &str, status: Status, last: i64) -> Image {
        Image {
            user_id: user.map(String::from),
            tenant_id: Some(tenant.into()),
            status: Some(status),
            created_at: Some(NOW - 3600),
            last_activity_at: Some(last),
            user_agent: Some("UA-1".into()),
            ip_address: Some("198.51.100.1".into()),
            ..Default::default()
        }
    }
    fn modify(old: Image, new: Image) -> Change {
        Change {
            seq: SeqNo("100".into()),
            kind: ChangeKind::Modify,
            session_id: SessionId::new("s"),
            old: Some(old),
            new: Some(new),
            by_ttl: false,
            at: NOW,
        }
    }
    fn kinds(d: &Detection) -> Vec<AnomalyType> {
        d.findings.iter().map(|f| f.kind).collect()
    }
    fn p() -> ExpiryPolicy {
        ExpiryPolicy::default()
    }

    #[test]
    fn user_change_in_a_modify_is_critical() {
        let d = detect(
            &modify(
                image(Some("u1"), "t", Status::Active, NOW - 60),
                image(Some("u2"), "t", Status::Active, NOW),
            ),
            None,
            &p(),
        );
        assert_eq!(kinds(&d), [AnomalyType::SessionUserChanged]);
        assert_eq!(d.findings[0].users, ["u1", "u2"]);
        assert_eq!(d.findings[0].severity(), Severity::Critical);
    }

    #[test]
    fn tenant_change_in_a_modify_is_critical() {
        let d = detect(
            &modify(
                image(Some("u1"), "a", Status::Active, NOW),
                image(Some("u1"), "b", Status::Active, NOW),
            ),
            None,
            &p(),
        );
        assert_eq!(kinds(&d), [AnomalyType::SessionTenantChanged]);
    }

    #[test]
    fn anonymous_to_authenticated_is_fixation() {
        let d = detect(
            &modify(
                image(None, "t", Status::Active, NOW - 5),
                image(Some("u1"), "t", Status::Active, NOW),
            ),
            None,
            &p(),
        );
        assert_eq!(kinds(&d), [AnomalyType::SessionFixation]);
    }

    #[test]
    fn writes_to_an_ended_session_are_zombie_activity_and_reactivation_is_resurrection() {
        let d = detect(
            &modify(
                image(Some("u"), "t", Status::Terminated, NOW - 600),
                image(Some("u"), "t", Status::Terminated, NOW),
            ),
            None,
            &p(),
        );
        assert_eq!(kinds(&d), [AnomalyType::ActivityAfterTermination]);
        let d = detect(
            &modify(
                image(Some("u"), "t", Status::Expired, NOW - 600),
                image(Some("u"), "t", Status::Active, NOW),
            ),
            None,
            &p(),
        );
        assert_eq!(kinds(&d), [AnomalyType::SessionResurrected]);
    }

    #[test]
    fn activity_after_the_idle_deadline_is_not_enforced() {
        // last activity 9 h ago, default idle 8 h: a touch now came after the deadline.
        let d = detect(
            &modify(
                image(Some("u"), "t", Status::Active, NOW - 9 * 3600),
                image(Some("u"), "t", Status::Active, NOW),
            ),
            None,
            &p(),
        );
        assert_eq!(kinds(&d), [AnomalyType::IdleTimeoutNotEnforced]);
    }

    #[test]
    fn user_agent_change_is_low_and_ip_change_is_only_a_fact() {
        let mut new = image(Some("u"), "t", Status::Active, NOW);
        new.user_agent = Some("UA-2".into());
        new.ip_address = Some("203.0.113.9".into());
        let d = detect(
            &modify(image(Some("u"), "t", Status::Active, NOW - 5), new),
            None,
            &p(),
        );
        assert_eq!(kinds(&d), [AnomalyType::SessionContextChanged]);
        assert_eq!(d.findings[0].severity(), Severity::Low);
        assert_eq!(d.facts, [Fact::IpChanged]);
    }

    #[test]
    fn benign_changes_raise_nothing() {
        // Cleanup expiry, logout, our own containment: ACTIVE -> ended.
        for (status, reason) in [
            (Status::Expired, "idle"),
            (Status::Terminated, "logout"),
            (Status::Terminated, "containment"),
        ] {
            let mut new = image(Some("u"), "t", status, NOW - 60);
            new.termination_reason = Some(reason.into());
            let d = detect(
                &modify(image(Some("u"), "t", Status::Active, NOW - 60), new),
                None,
                &p(),
            );
            assert!(d.findings.is_empty(), "{reason}");
            assert!(matches!(d.facts[..], [Fact::Ended { .. }]));
        }
        // Multi-tab: touches that race, including one that goes backwards.
        for (a, b) in [(NOW - 10, NOW - 9), (NOW - 9, NOW - 10), (NOW, NOW)] {
            let d = detect(
                &modify(
                    image(Some("u"), "t", Status::Active, a),
                    image(Some("u"), "t", Status::Active, b),
                ),
                None,
                &p(),
            );
            assert!(d.findings.is_empty());
        }
        // A fresh INSERT (new session ID at login, or a new session in another tenant).
        let insert = Change {
            kind: ChangeKind::Insert,
            old: None,
            ..modify(
                image(None, "t", Status::Active, NOW),
                image(Some("u"), "t2", Status::Active, NOW),
            )
        };
        assert!(detect(&insert, None, &p()).findings.is_empty());
        // TTL delete.
        let ttl = Change {
            kind: ChangeKind::Remove,
            new: None,
            by_ttl: true,
            ..insert.clone()
        };
        assert_eq!(detect(&ttl, None, &p()).facts, [Fact::DeletedByTtl]);
    }

    #[test]
    fn reinsert_for_another_user_or_tenant_or_the_same_identity() {
        let insert = Change {
            kind: ChangeKind::Insert,
            old: None,
            ..modify(
                image(None, "t", Status::Active, NOW),
                image(Some("u2"), "t", Status::Active, NOW),
            )
        };
        let bound = |u: &str, t: &str| Binding {
            user_id: Some(u.into()),
            tenant_id: Some(t.into()),
            insert_seq: Some("1".into()),
        };
        assert_eq!(
            kinds(&detect(&insert, Some(&bound("u1", "t")), &p())),
            [AnomalyType::SessionUserChanged]
        );
        assert_eq!(
            kinds(&detect(&insert, Some(&bound("u2", "x")), &p())),
            [AnomalyType::SessionTenantChanged]
        );
        assert_eq!(
            kinds(&detect(&insert, Some(&bound("u2", "t")), &p())),
            [AnomalyType::SessionResurrected]
        );
    }

    #[test]
    fn keys_only_images_are_facts_not_anomalies() {
        let insert = Change {
            kind: ChangeKind::Insert,
            old: None,
            new: None,
            ..modify(Image::default(), Image::default())
        };
        assert_eq!(detect(&insert, None, &p()).facts, [Fact::KeysOnly]);
    }

    #[test]
    fn sequence_numbers_compare_numerically() {
        assert!(SeqNo("900".into()) < SeqNo("1000".into()));
        assert!(
            SeqNo("49590338271490256608559692538361571095921575989136588898".into())
                > SeqNo("4959".into())
        );
    }
}
