//! One stream record as sessionwarden understands it: which session, what kind of change, and the
//! parts of the old and new images the detection rules read, or why a record cannot be read.
//! Parsing from the Lambda event shape lives in the adapters (`sessionwarden-aws`).

use std::cmp::Ordering;
use std::fmt;

use crate::session::{SessionId, Status};

/// A stream sequence number. Lambda checkpoints on it, so it must compare as a number:
/// sequence numbers are decimal strings of varying length.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeqNo(pub String);

impl Ord for SeqNo {
    fn cmp(&self, other: &Self) -> Ordering {
        let a = self.0.trim_start_matches('0');
        let b = other.0.trim_start_matches('0');
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }
}

impl PartialOrd for SeqNo {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What happened to the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The item was created.
    Insert,
    /// The item was updated.
    Modify,
    /// The item was deleted (by the app, or by TTL).
    Remove,
}

/// The attributes of a session image that detection reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Image {
    /// `userId`.
    pub user_id: Option<String>,
    /// `tenantId`.
    pub tenant_id: Option<String>,
    /// `status`; `None` only for a keys-only image.
    pub status: Option<Status>,
    /// `createdAt`.
    pub created_at: Option<i64>,
    /// `lastActivityAt`.
    pub last_activity_at: Option<i64>,
    /// `idleTimeoutSeconds`.
    pub idle_timeout_seconds: Option<i64>,
    /// `absoluteExpiresAt`.
    pub absolute_expires_at: Option<i64>,
    /// `userAgent`.
    pub user_agent: Option<String>,
    /// `ipAddress`.
    pub ip_address: Option<String>,
    /// `revokeScope`.
    pub revoke_scope: Option<String>,
    /// `terminationReason`, as stored.
    pub termination_reason: Option<String>,
    /// `parentSessionId`.
    pub parent_session_id: Option<SessionId>,
    /// The layout's TTL deadline, where the TTL is the session's own deadline (connect-dynamodb).
    pub lapses_at: Option<i64>,
    /// True when the session is ended only because that deadline passed: no write ended it.
    pub lapsed: bool,
    /// A digest of every attribute name and value except the key and `expiresAt`, to tell "the
    /// app wrote to this ended item" from a TTL adjustment (equal digests, equal attributes). The
    /// rules compare it only between two ended images, so a reader may leave it `None` for an
    /// active one.
    pub fingerprint: Option<u64>,
}

impl Image {
    /// The status, treating a keys-only image as unknown.
    pub fn status(&self) -> Option<Status> {
        self.status
    }

    /// True if the session has ended.
    pub fn is_ended(&self) -> bool {
        self.status.is_some_and(Status::is_ended)
    }

    /// The parts a plain touch is judged on ([`crate::anomaly::is_plain_touch`]).
    pub fn facets(&self) -> crate::anomaly::Facets<'_> {
        crate::anomaly::Facets {
            user_id: self.user_id.as_deref(),
            tenant_id: self.tenant_id.as_deref(),
            status: self.status,
            user_agent: self.user_agent.as_deref(),
            ip_address: self.ip_address.as_deref(),
            clock: self.clock(),
            lapsed: self.lapsed,
        }
    }

    /// The timing attributes, for the expiry policy.
    pub fn clock(&self) -> crate::expiry::SessionClock {
        crate::expiry::SessionClock {
            created_at: self.created_at,
            last_activity_at: self.last_activity_at,
            idle_timeout_seconds: self.idle_timeout_seconds,
            absolute_expires_at: self.absolute_expires_at,
            lapses_at: self.lapses_at,
        }
    }
}

/// One stream record, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Where the record sits in its shard.
    pub seq: SeqNo,
    /// What happened.
    pub kind: ChangeKind,
    /// The session (from the record's keys).
    pub session_id: SessionId,
    /// The image before the change (MODIFY, REMOVE).
    pub old: Option<Image>,
    /// The image after the change (INSERT, MODIFY). `None` for a keys-only image: moto emits an
    /// extra keys-only INSERT when UpdateItem creates an item; there is nothing to judge in it.
    pub new: Option<Image>,
    /// A REMOVE by DynamoDB's TTL (`userIdentity` is the service principal).
    pub by_ttl: bool,
    /// Approximate time of the change, epoch seconds.
    pub at: i64,
}

/// A record that cannot be processed, ever: it is dead-lettered with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed stream record (sequence number {}): {reason}", seq.as_deref().unwrap_or("unknown"))]
pub struct Malformed {
    /// Its sequence number, if even that could be read.
    pub seq: Option<String>,
    /// What is wrong with it.
    pub reason: String,
}
