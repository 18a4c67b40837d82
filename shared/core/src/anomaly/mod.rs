//! Anomaly detection: pure rules over one stream change (and, for an INSERT, the identity the
//! session ID was bound to before it). The catalogue, with severities and triggers, is in the
//! README. Each type has a default severity ([`AnomalyType::severity`]); the stream service
//! applies the configured one (`SEVERITY_<TYPE>`) to every finding before it decides anything.
//! The benign cases (cleanup expiry, our own terminations, logout, TTL deletes, multi-tab
//! touches, a new session ID at login, a tenant switch through a new session) raise nothing.

use std::fmt;

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
    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

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

    /// Parses `INFO|LOW|MEDIUM|HIGH|CRITICAL` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// `steps` levels above this one, at most CRITICAL. A rule's stronger variant of a type (a
    /// client change from another network) is a step above the type, whatever severity the
    /// type is configured with.
    pub fn raised(self, steps: u8) -> Severity {
        Self::ALL[(self as usize + usize::from(steps)).min(Self::ALL.len() - 1)]
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
    /// The client changed within a session: another browser family, OS or device class (a
    /// browser's own version update is not a change).
    SessionContextChanged,
    /// A browser session is now driven by a script client or a headless browser.
    SessionClientScripted,
}

impl AnomalyType {
    /// Every type, in catalogue order.
    pub const ALL: [AnomalyType; 9] = [
        AnomalyType::SessionUserChanged,
        AnomalyType::SessionTenantChanged,
        AnomalyType::ActivityAfterTermination,
        AnomalyType::SessionResurrected,
        AnomalyType::SessionFixation,
        AnomalyType::IdleTimeoutNotEnforced,
        AnomalyType::SessionCreationBurst,
        AnomalyType::SessionContextChanged,
        AnomalyType::SessionClientScripted,
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
            AnomalyType::SessionClientScripted => "SESSION_CLIENT_SCRIPTED",
        }
    }

    /// The default severity of the type (the README's catalogue): what a finding of it has
    /// unless `SEVERITY_<TYPE>` configures another.
    pub fn severity(self) -> Severity {
        match self {
            AnomalyType::SessionUserChanged | AnomalyType::SessionTenantChanged => {
                Severity::Critical
            }
            AnomalyType::ActivityAfterTermination
            | AnomalyType::SessionResurrected
            | AnomalyType::SessionClientScripted => Severity::High,
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
    /// Its type.
    pub kind: AnomalyType,
    /// How urgent it is: its type's severity, raised by [`Finding::raised`] steps. The rules set
    /// the type's default ([`AnomalyType::severity`]); the stream service re-stamps it with the
    /// configured one (`SEVERITY_<TYPE>`) before deciding whether it alerts, so the alert, the
    /// storm split and the metrics all see the same value.
    pub severity: Severity,
    /// Steps above its type's severity: 1 for the stronger variant of a rule (a client change
    /// from another network), else 0. Kept apart so that a configured type severity keeps the
    /// stronger variant above the plain one.
    pub raised: u8,
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
    /// Its severity (see the field).
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// The finding with its severity based on `type_severity`, the severity its type is
    /// configured with, plus the steps its rule raised it by.
    pub fn with_type_severity(mut self, type_severity: Severity) -> Finding {
        self.severity = type_severity.raised(self.raised);
        self
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

/// The parts of an image that decide whether a MODIFY is a plain touch
/// ([`is_plain_touch`]), borrowed: a reader can fill it straight from a record's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facets<'a> {
    /// `userId`.
    pub user_id: Option<&'a str>,
    /// `tenantId`.
    pub tenant_id: Option<&'a str>,
    /// `status`.
    pub status: Option<Status>,
    /// `userAgent`.
    pub user_agent: Option<&'a str>,
    /// `ipAddress`.
    pub ip_address: Option<&'a str>,
    /// The timing attributes.
    pub clock: crate::expiry::SessionClock,
    /// See [`crate::change::Image::lapsed`].
    pub lapsed: bool,
}

pub mod client;
pub mod network;
mod rules;

pub use rules::{detect, is_plain_touch};
