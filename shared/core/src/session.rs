//! The session record as sessionwarden understands it: the native table layout, statuses and
//! termination reasons. Attribute names live here once, so adapters and docs cannot drift apart.

use std::fmt;
use std::str::FromStr;

/// Attribute names of the sessions table (see README, "The sessions table").
pub mod attr {
    /// Partition key (S). A bearer credential: never log it, see [`crate::session_ref`].
    pub const SESSION_ID: &str = "sessionId";
    /// Owner (S); absent while the session is anonymous or pre-auth.
    pub const USER_ID: &str = "userId";
    /// Tenant (S), optional.
    pub const TENANT_ID: &str = "tenantId";
    /// `ACTIVE | TERMINATED | EXPIRED` (S).
    pub const STATUS: &str = "status";
    /// Creation time, epoch seconds (N).
    pub const CREATED_AT: &str = "createdAt";
    /// Last activity, epoch seconds (N). The cleanup write is conditional on it.
    pub const LAST_ACTIVITY_AT: &str = "lastActivityAt";
    /// Per-session idle timeout in seconds (N), optional.
    pub const IDLE_TIMEOUT_SECONDS: &str = "idleTimeoutSeconds";
    /// Hard end of life, epoch seconds (N), optional.
    pub const ABSOLUTE_EXPIRES_AT: &str = "absoluteExpiresAt";
    /// Earliest deadline, written by the app on every touch; sort key of [`super::SWEEP_INDEX`] (N).
    pub const SWEEP_AT: &str = "sweepAt";
    /// Parent session (S), optional; makes a session family.
    pub const PARENT_SESSION_ID: &str = "parentSessionId";
    /// Client address (S), optional.
    pub const IP_ADDRESS: &str = "ipAddress";
    /// Client user agent (S), optional.
    pub const USER_AGENT: &str = "userAgent";
    /// Scope of an app-written termination (S): `session | user | tenant`.
    pub const REVOKE_SCOPE: &str = "revokeScope";
    /// When the session ended, epoch seconds (N).
    pub const TERMINATED_AT: &str = "terminatedAt";
    /// Why the session ended (S), see [`super::TerminationReason`].
    pub const TERMINATION_REASON: &str = "terminationReason";
    /// TTL attribute (N): end time plus the audit retention.
    pub const EXPIRES_AT: &str = "expiresAt";
}

/// Name of the GSI that lets cleanup find due sessions without a scan:
/// partition key `status`, sort key `sweepAt`.
pub const SWEEP_INDEX: &str = "by-sweep";
/// GSI over `userId` (sort key `createdAt`), for per-user cascades.
pub const USER_INDEX: &str = "by-user";
/// GSI over `tenantId` (sort key `createdAt`), for per-tenant cascades.
pub const TENANT_INDEX: &str = "by-tenant";
/// GSI over `parentSessionId` (sort key `createdAt`), for session families.
pub const PARENT_INDEX: &str = "by-parent";

/// A session ID. It is a bearer credential, so it has no `Display` and its `Debug` is redacted:
/// the only ways out are [`SessionId::expose`] (for AWS calls) and a keyed
/// [`crate::session_ref::SessionRef`] (for humans).
///
/// On layouts with a composite key (Auth.js: `pk = USER#<user>`, `sk = SESSION#<token>`) the ID
/// alone does not address an item, so it carries its item's other key value, its *home*. Two
/// items with the same ID under two homes are one session bound twice (the bleed), so equality,
/// ordering and hashing look at the ID only.
#[derive(Clone)]
pub struct SessionId {
    raw: String,
    home: Option<String>,
}

impl SessionId {
    /// Wraps a raw session ID.
    pub fn new(raw: impl Into<String>) -> Self {
        Self {
            raw: raw.into(),
            home: None,
        }
    }

    /// A session ID and the other key value of its item (see the type's docs).
    pub fn homed(raw: impl Into<String>, home: impl Into<String>) -> Self {
        Self {
            raw: raw.into(),
            home: Some(home.into()),
        }
    }

    /// The raw value, for the key of an AWS request. Never log or format it.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// The other key value of the item, where the layout's key is composite.
    pub fn home(&self) -> Option<&str> {
        self.home.as_deref()
    }
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl Eq for SessionId {}
impl std::hash::Hash for SessionId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.raw.hash(state)
    }
}
impl PartialOrd for SessionId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SessionId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.raw.cmp(&other.raw)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

/// Lifecycle status of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// In use; the only status cleanup and cascades act on.
    Active,
    /// Ended by the app or by a sessionwarden worker.
    Terminated,
    /// Ended by the cleanup worker on an idle or absolute deadline.
    Expired,
}

impl Status {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "ACTIVE",
            Status::Terminated => "TERMINATED",
            Status::Expired => "EXPIRED",
        }
    }

    /// True once the session has ended, for whatever reason.
    pub fn is_ended(self) -> bool {
        !matches!(self, Status::Active)
    }
}

/// A stored status string that is none of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown session status {0:?} (expected ACTIVE, TERMINATED or EXPIRED)")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ACTIVE" => Ok(Status::Active),
            "TERMINATED" => Ok(Status::Terminated),
            "EXPIRED" => Ok(Status::Expired),
            other => Err(UnknownStatus(other.to_string())),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a session ended; stored in `terminationReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TerminationReason {
    /// No activity within the idle timeout.
    Idle,
    /// Past the absolute lifetime.
    Absolute,
    /// Past the layout's TTL deadline (`expires`), ended before DynamoDB's late TTL delete.
    Lapsed,
    /// The user logged out.
    Logout,
    /// Ended because the whole user was revoked.
    CascadeUser,
    /// Ended because the whole tenant was revoked.
    CascadeTenant,
    /// Ended because its parent session ended.
    CascadeFamily,
    /// Ended by anomaly containment.
    Containment,
    /// Ended by an operator.
    Admin,
    /// Ended because its user held more sessions than `MAX_SESSIONS_PER_USER`.
    Limit,
}

impl TerminationReason {
    /// Every reason.
    pub const ALL: [TerminationReason; 10] = [
        TerminationReason::Idle,
        TerminationReason::Absolute,
        TerminationReason::Lapsed,
        TerminationReason::Logout,
        TerminationReason::CascadeUser,
        TerminationReason::CascadeTenant,
        TerminationReason::CascadeFamily,
        TerminationReason::Containment,
        TerminationReason::Admin,
        TerminationReason::Limit,
    ];

    /// Parses a stored `terminationReason`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            TerminationReason::Idle => "idle",
            TerminationReason::Absolute => "absolute",
            TerminationReason::Lapsed => "ttl",
            TerminationReason::Logout => "logout",
            TerminationReason::CascadeUser => "cascade:user",
            TerminationReason::CascadeTenant => "cascade:tenant",
            TerminationReason::CascadeFamily => "cascade:family",
            TerminationReason::Containment => "containment",
            TerminationReason::Admin => "admin",
            TerminationReason::Limit => "limit",
        }
    }
}

impl fmt::Display for TerminationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A whole session item, as the app writes it. Used to seed tables (demo, tests) and, later, to
/// read stream images. Every optional attribute of the native layout is an `Option`.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Partition key.
    pub session_id: SessionId,
    /// Owner, absent while anonymous.
    pub user_id: Option<String>,
    /// Tenant, optional.
    pub tenant_id: Option<String>,
    /// Lifecycle status.
    pub status: Status,
    /// Creation time, epoch seconds.
    pub created_at: i64,
    /// Last activity, epoch seconds.
    pub last_activity_at: i64,
    /// Per-session idle timeout override, seconds.
    pub idle_timeout_seconds: Option<i64>,
    /// Per-session absolute deadline override, epoch seconds.
    pub absolute_expires_at: Option<i64>,
    /// Earliest deadline, for the sweep index; `None` if the app does not write it.
    pub sweep_at: Option<i64>,
    /// Parent session, for families.
    pub parent_session_id: Option<SessionId>,
    /// Client address.
    pub ip_address: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Scope of an app-written termination.
    pub revoke_scope: Option<String>,
    /// When it ended.
    pub terminated_at: Option<i64>,
    /// Why it ended.
    pub termination_reason: Option<TerminationReason>,
    /// TTL.
    pub expires_at: Option<i64>,
}

impl Session {
    /// A fresh ACTIVE session with only the required attributes set.
    pub fn active(session_id: SessionId, created_at: i64) -> Self {
        Session {
            session_id,
            user_id: None,
            tenant_id: None,
            status: Status::Active,
            created_at,
            last_activity_at: created_at,
            idle_timeout_seconds: None,
            absolute_expires_at: None,
            sweep_at: None,
            parent_session_id: None,
            ip_address: None,
            user_agent: None,
            revoke_scope: None,
            terminated_at: None,
            termination_reason: None,
            expires_at: None,
        }
    }

    /// The timing attributes the expiry policy reads.
    pub fn clock(&self) -> crate::expiry::SessionClock {
        crate::expiry::SessionClock {
            created_at: Some(self.created_at),
            last_activity_at: Some(self.last_activity_at),
            idle_timeout_seconds: self.idle_timeout_seconds,
            absolute_expires_at: self.absolute_expires_at,
            lapses_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_debug_is_redacted() {
        let id = SessionId::new("secret-bearer-token");
        assert_eq!(format!("{id:?}"), "SessionId(<redacted>)");
        let s = Session::active(id, 0);
        assert!(!format!("{s:?}").contains("secret-bearer-token"));
    }

    #[test]
    fn status_round_trips_and_rejects_unknown() {
        for s in [Status::Active, Status::Terminated, Status::Expired] {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
        }
        assert_eq!(
            "active".parse::<Status>(),
            Err(UnknownStatus("active".into()))
        );
    }
}
