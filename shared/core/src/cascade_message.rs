//! The cascade queue's message schema, version 1, and its strict validation. Other services
//! revoke sessions by sending these messages; sessionwarden itself sends them from the stream
//! worker, `sessionctl revoke`, and as continuations. See README, "Cascade messages".
//!
//! Validation is strict on purpose: an unknown field, a missing subject, or a subject of the
//! wrong scope is a permanent error, sent to the dead-letter queue with its reason and never
//! retried. Guessing what a revocation meant is not an option.

use serde::{Deserialize, Serialize};

use crate::session::{SessionId, TerminationReason};

/// The only schema version this worker speaks.
pub const VERSION: u32 = 1;

/// Longest accepted identifier or reason, in characters.
const MAX_FIELD: usize = 256;

/// A cascade message, as it travels on the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CascadeMessage {
    /// Schema version; must be 1.
    pub version: u32,
    /// `user`, `tenant`, `family` (the children of `sessionId`) or `session` (`sessionId` itself and its family).
    pub scope: String,
    /// Subject of a `user` cascade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Subject of a `tenant` cascade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Subject of a `family` or `session` cascade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Why, in the requester's words (e.g. `password-changed`).
    pub reason: String,
    /// Who asked (e.g. `auth-service`).
    pub requested_by: String,
    /// The requester's idempotency key; the root ID of the cascade. Defaults to the SQS message ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Set by sessionwarden on continuations and family sub-cascades: the root request's ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_id: Option<String>,
    /// Set by sessionwarden on continuations: where the next page starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Set by sessionwarden on family sub-cascades: distance from the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
    /// Set by sessionwarden on family sub-cascades: digests of the ancestors (cycle guard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<Vec<String>>,
}

/// What a cascade ends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Every ACTIVE session of a user.
    User(String),
    /// Every ACTIVE session of a tenant.
    Tenant(String),
    /// Every ACTIVE child (`parentSessionId`) of a session, recursively.
    Family(SessionId),
    /// One session, then its family.
    Session(SessionId),
}

impl Target {
    /// The scope's spelling.
    pub fn scope(&self) -> &'static str {
        match self {
            Target::User(_) => "user",
            Target::Tenant(_) => "tenant",
            Target::Family(_) => "family",
            Target::Session(_) => "session",
        }
    }

    /// The `terminationReason` of sessions this cascade ends.
    pub fn reason(&self) -> TerminationReason {
        match self {
            Target::User(_) => TerminationReason::CascadeUser,
            Target::Tenant(_) => TerminationReason::CascadeTenant,
            Target::Family(_) => TerminationReason::CascadeFamily,
            Target::Session(_) => TerminationReason::Admin,
        }
    }
}

/// A validated cascade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CascadeJob {
    /// What to end.
    pub target: Target,
    /// The requester's reason.
    pub reason: String,
    /// The requester.
    pub requested_by: String,
    /// ID of the root request, stored as `terminatedBy` on every session the cascade ends.
    pub root_id: String,
    /// Where to resume.
    pub cursor: Option<String>,
    /// Family depth (0 at the root).
    pub depth: u32,
    /// Ancestor digests (family).
    pub path: Vec<String>,
}

/// Why a message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cascade message: {0}")]
pub struct Invalid(pub String);

fn field(name: &str, v: &Option<String>) -> Result<Option<String>, Invalid> {
    match v {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Err(Invalid(format!("{name} is empty"))),
        Some(s) if s.chars().count() > MAX_FIELD => Err(Invalid(format!(
            "{name} is longer than {MAX_FIELD} characters"
        ))),
        Some(s) if s.chars().any(char::is_control) => {
            Err(Invalid(format!("{name} contains control characters")))
        }
        Some(s) => Ok(Some(s.clone())),
    }
}

/// Parses and validates a message body. `message_id` is the root ID when the message names none.
pub fn parse(body: &str, message_id: &str) -> Result<CascadeJob, Invalid> {
    let m: CascadeMessage = serde_json::from_str(body)
        .map_err(|e| Invalid(format!("not a version-1 cascade message: {e}")))?;
    if m.version != VERSION {
        return Err(Invalid(format!(
            "unsupported version {} (this worker speaks {VERSION})",
            m.version
        )));
    }
    let user = field("userId", &m.user_id)?;
    let tenant = field("tenantId", &m.tenant_id)?;
    let session = field("sessionId", &m.session_id)?;
    let given = [
        ("userId", user.is_some()),
        ("tenantId", tenant.is_some()),
        ("sessionId", session.is_some()),
    ];
    let expect = match m.scope.as_str() {
        "user" => "userId",
        "tenant" => "tenantId",
        "family" | "session" => "sessionId",
        other => {
            return Err(Invalid(format!(
                "unknown scope {other:?} (expected user, tenant, family or session)"
            )))
        }
    };
    for (name, present) in given {
        if name == expect && !present {
            return Err(Invalid(format!("scope {} needs {expect}", m.scope)));
        }
        if name != expect && present {
            return Err(Invalid(format!(
                "scope {} takes {expect}, not {name}",
                m.scope
            )));
        }
    }
    let target = match m.scope.as_str() {
        "user" => Target::User(user.unwrap_or_default()),
        "tenant" => Target::Tenant(tenant.unwrap_or_default()),
        "family" => Target::Family(SessionId::new(session.unwrap_or_default())),
        _ => Target::Session(SessionId::new(session.unwrap_or_default())),
    };
    let reason = field("reason", &Some(m.reason.clone()))?.unwrap_or_default();
    let requested_by = field("requestedBy", &Some(m.requested_by.clone()))?.unwrap_or_default();
    let root_id = field("rootId", &m.root_id)?
        .or(field("requestId", &m.request_id)?)
        .unwrap_or_else(|| message_id.to_string());
    Ok(CascadeJob {
        target,
        reason,
        requested_by,
        root_id,
        cursor: m.cursor,
        depth: m.depth.unwrap_or(0),
        path: m.path.unwrap_or_default(),
    })
}

impl CascadeJob {
    /// The message that continues or extends this job (same root), for `target` from `cursor`.
    pub fn message(
        &self,
        target: &Target,
        cursor: Option<String>,
        depth: u32,
        path: Vec<String>,
    ) -> CascadeMessage {
        let (user_id, tenant_id, session_id) = match target {
            Target::User(u) => (Some(u.clone()), None, None),
            Target::Tenant(t) => (None, Some(t.clone()), None),
            Target::Family(s) | Target::Session(s) => (None, None, Some(s.expose().to_string())),
        };
        CascadeMessage {
            version: VERSION,
            scope: target.scope().to_string(),
            user_id,
            tenant_id,
            session_id,
            reason: self.reason.clone(),
            requested_by: self.requested_by.clone(),
            request_id: None,
            root_id: Some(self.root_id.clone()),
            cursor,
            depth: (depth > 0).then_some(depth),
            path: (!path.is_empty()).then_some(path),
        }
    }
}

/// A new cascade request (what `sessionctl revoke` and the stream worker send).
pub fn request(
    target: &Target,
    reason: &str,
    requested_by: &str,
    request_id: Option<String>,
) -> CascadeMessage {
    let job = CascadeJob {
        target: target.clone(),
        reason: reason.to_string(),
        requested_by: requested_by.to_string(),
        root_id: String::new(),
        cursor: None,
        depth: 0,
        path: vec![],
    };
    let mut m = job.message(target, None, 0, vec![]);
    m.root_id = None;
    m.request_id = request_id;
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let j = parse(r#"{"version":1,"scope":"user","userId":"u-123","reason":"password-changed","requestedBy":"auth-service"}"#, "m-1").unwrap();
        assert_eq!(j.target, Target::User("u-123".into()));
        assert_eq!(
            (j.root_id.as_str(), j.depth, j.target.reason()),
            ("m-1", 0, TerminationReason::CascadeUser)
        );
    }

    #[test]
    fn request_id_and_root_id_set_the_root() {
        let j = parse(r#"{"version":1,"scope":"tenant","tenantId":"acme","reason":"suspended","requestedBy":"billing","requestId":"r-9"}"#, "m").unwrap();
        assert_eq!(j.root_id, "r-9");
        let cont = j.message(&j.target, Some("c".into()), 0, vec![]);
        let again = parse(&serde_json::to_string(&cont).unwrap(), "other").unwrap();
        assert_eq!(
            (again.root_id.as_str(), again.cursor.as_deref()),
            ("r-9", Some("c"))
        );
    }

    #[test]
    fn invalid_messages_say_why() {
        let cases = [
            ("not json", "not a version-1 cascade message"),
            (
                r#"{"version":2,"scope":"user","userId":"u","reason":"r","requestedBy":"x"}"#,
                "unsupported version 2",
            ),
            (
                r#"{"version":1,"scope":"planet","userId":"u","reason":"r","requestedBy":"x"}"#,
                "unknown scope \"planet\"",
            ),
            (
                r#"{"version":1,"scope":"user","reason":"r","requestedBy":"x"}"#,
                "scope user needs userId",
            ),
            (
                r#"{"version":1,"scope":"user","userId":"u","tenantId":"t","reason":"r","requestedBy":"x"}"#,
                "takes userId, not tenantId",
            ),
            (
                r#"{"version":1,"scope":"user","userId":"","reason":"r","requestedBy":"x"}"#,
                "userId is empty",
            ),
            (
                r#"{"version":1,"scope":"user","userId":"u","reason":"","requestedBy":"x"}"#,
                "reason is empty",
            ),
            (
                r#"{"version":1,"scope":"user","userId":"u","reason":"r"}"#,
                "missing field `requestedBy`",
            ),
            (
                r#"{"version":1,"scope":"user","userId":"u","reason":"r","requestedBy":"x","force":true}"#,
                "unknown field `force`",
            ),
        ];
        for (body, want) in cases {
            let e = parse(body, "m").unwrap_err().to_string();
            assert!(e.contains(want), "{body}: {e}");
        }
    }
}
