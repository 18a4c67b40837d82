//! The per-user session limit (`MAX_SESSIONS_PER_USER`): which sessions a user holds, and which
//! must end when a new one starts. Pure: [`admit`] turns a stored [`Roster`] and the batch's
//! starts and stops into the next roster and the sessions to end; the stream service keeps the
//! roster in the state table with writes conditional on its version, so parallel invocations
//! that see logins of one user serialise on that one item and the limit holds exactly.
//!
//! Idempotent by construction: a session enters a roster once ([`Roster::gone`] remembers the
//! sessions that left it, for as long as a stream record can be redelivered), and a session chosen
//! to end stays in [`Roster::evicting`] until its end is confirmed, so a crash between the
//! roster's write and the end is finished by the next delivery.

use std::str::FromStr;

use crate::session::SessionId;
use crate::session_ref::SessionRefKey;

/// Which session ends when a user is over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LimitPolicy {
    /// The oldest sessions end: a new login always succeeds (the default).
    #[default]
    EndOldest,
    /// The newest sessions end: the sessions a user already has are kept.
    EndNewest,
}

impl LimitPolicy {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitPolicy::EndOldest => "end-oldest",
            LimitPolicy::EndNewest => "end-newest",
        }
    }
}

impl FromStr for LimitPolicy {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "end-oldest" => Ok(LimitPolicy::EndOldest),
            "end-newest" => Ok(LimitPolicy::EndNewest),
            _ => Err(()),
        }
    }
}

/// The limit's settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LimitConfig {
    /// `MAX_SESSIONS_PER_USER`: `None` turns the limit off.
    pub max: Option<u32>,
    /// `MAX_SESSIONS_PER_USER_BY_TENANT` (`acme=3,beta=10`): overrides for users of a tenant.
    pub by_tenant: Vec<(String, u32)>,
    /// `SESSION_LIMIT_POLICY`.
    pub policy: LimitPolicy,
}

impl LimitConfig {
    /// True when any limit applies.
    pub fn enabled(&self) -> bool {
        self.max.is_some() || !self.by_tenant.is_empty()
    }

    /// The limit of a user whose latest session is in `tenant`.
    pub fn of(&self, tenant: Option<&str>) -> Option<u32> {
        tenant
            .and_then(|t| self.by_tenant.iter().find(|(k, _)| k == t).map(|(_, n)| *n))
            .or(self.max)
    }
}

/// A live session on a roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    /// The session (the roster is how the limit ends it, so it keeps the ID, as the due index
    /// does; keys never hold it).
    pub id: SessionId,
    /// When it started, epoch seconds: the order of "oldest".
    pub created_at: i64,
}

/// A user's sessions as the limit sees them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Roster {
    /// Live sessions.
    pub seats: Vec<Seat>,
    /// Sessions chosen to end whose end is not confirmed yet.
    pub evicting: Vec<SessionId>,
    /// State keys of sessions that left the roster, each until when it is remembered: a
    /// redelivered start of one of them is not a new session.
    pub gone: Vec<(String, i64)>,
    /// The tenant of the user's latest session (selects a per-tenant limit).
    pub tenant: Option<String>,
}

/// One fact of a batch about a user's sessions, in stream order per session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Movement {
    /// A session of the user started (its INSERT with a user, or a login on it).
    Start {
        /// The session.
        id: SessionId,
        /// Its tenant.
        tenant: Option<String>,
        /// When it started.
        created_at: i64,
    },
    /// A session of the user ended (by anyone).
    Stop {
        /// The session.
        id: SessionId,
    },
}

/// What [`admit`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The roster to store.
    pub roster: Roster,
    /// True if it differs from the one read (else nothing needs writing).
    pub changed: bool,
    /// Sessions to end now (newly chosen, and any earlier choice not yet confirmed).
    pub to_end: Vec<SessionId>,
    /// How many were newly chosen by this admission.
    pub newly: usize,
}

/// Applies `moves` to `roster` at `now` and chooses who ends under `limit` and `policy`.
/// Sessions leave `gone` after `remember_until`-style expiry: entries whose time passed are
/// dropped, and new ones are kept until `gone_until`.
pub fn admit(
    roster: &Roster,
    moves: &[Movement],
    limit: &LimitConfig,
    key: &SessionRefKey,
    now: i64,
    gone_until: i64,
) -> Admission {
    let mut r = roster.clone();
    r.gone.retain(|(_, until)| *until > now);
    let mut changed = r.gone.len() != roster.gone.len();
    let known = |r: &Roster, digest: &str| r.gone.iter().any(|(g, _)| g == digest);
    for m in moves {
        match m {
            Movement::Start {
                id,
                tenant,
                created_at,
            } => {
                let digest = key.state_key(id);
                if known(&r, &digest) || r.seats.iter().any(|s| &s.id == id) {
                    continue;
                }
                r.seats.push(Seat {
                    id: id.clone(),
                    created_at: *created_at,
                });
                if tenant.is_some() && r.tenant != *tenant {
                    r.tenant = tenant.clone();
                }
                changed = true;
            }
            Movement::Stop { id } => {
                let digest = key.state_key(id);
                let before = r.seats.len();
                r.seats.retain(|s| &s.id != id);
                if !known(&r, &digest) {
                    r.gone.push((digest, gone_until));
                    changed = true;
                }
                changed |= r.seats.len() != before;
            }
        }
    }
    let mut newly = 0;
    if let Some(max) = limit.of(r.tenant.as_deref()) {
        // Oldest first; equal times by ID, so every writer orders alike.
        r.seats
            .sort_by(|a, b| (a.created_at, a.id.expose()).cmp(&(b.created_at, b.id.expose())));
        while r.seats.len() > max as usize {
            let victim = match limit.policy {
                LimitPolicy::EndOldest => r.seats.remove(0),
                LimitPolicy::EndNewest => match r.seats.pop() {
                    Some(v) => v,
                    None => break,
                },
            };
            r.gone.push((key.state_key(&victim.id), gone_until));
            r.evicting.push(victim.id);
            newly += 1;
            changed = true;
        }
    }
    Admission {
        to_end: r.evicting.clone(),
        roster: r,
        changed,
        newly,
    }
}

/// The roster once the ends of `ended` are confirmed: they leave `evicting`.
pub fn confirmed(roster: &Roster, ended: &[SessionId]) -> Roster {
    let mut r = roster.clone();
    r.evicting.retain(|id| !ended.contains(id));
    r
}

/// The movements one change shows for the limit: a start when a session gets its user (its
/// INSERT, or a login on an anonymous session), a stop when it ends. Each with the user it
/// belongs to.
pub fn movements(
    change: &crate::change::Change,
    ending: Option<&crate::session_event::Ending>,
) -> Vec<(String, Movement)> {
    use crate::change::ChangeKind;
    use crate::session::Status;
    let mut out = Vec::new();
    if let Some(new) = &change.new {
        let was = change.old.as_ref().and_then(|o| o.user_id.as_ref());
        let starts = match change.kind {
            ChangeKind::Insert => true,
            ChangeKind::Modify => was.is_none(),
            ChangeKind::Remove => false,
        };
        if let (true, Some(user), Some(Status::Active)) = (starts, &new.user_id, new.status) {
            out.push((
                user.clone(),
                Movement::Start {
                    id: change.session_id.clone(),
                    tenant: new.tenant_id.clone(),
                    created_at: new.created_at.unwrap_or(change.at),
                },
            ));
        }
    }
    if let Some(e) = ending {
        if let Some(user) = &e.user_id {
            out.push((
                user.clone(),
                Movement::Stop {
                    id: e.session_id.clone(),
                },
            ));
        }
    }
    out
}
