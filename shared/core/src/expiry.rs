//! The expiry policy: when a session's idle or absolute deadline falls, which one ended it, and
//! what the ending write records. Pure: `now` is always an argument (epoch seconds).

/// The defaults that apply when a session carries no override of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPolicy {
    /// Idle timeout for sessions without `idleTimeoutSeconds` (default 8 h).
    pub default_idle_timeout_seconds: i64,
    /// Lifetime for sessions without `absoluteExpiresAt`, counted from `createdAt` (default 24 h).
    pub default_max_lifetime_seconds: i64,
    /// How long an ended session stays readable for audit before TTL deletes it (default 7 days).
    pub audit_retention_seconds: i64,
}

impl Default for ExpiryPolicy {
    fn default() -> Self {
        ExpiryPolicy {
            default_idle_timeout_seconds: 28_800,
            default_max_lifetime_seconds: 86_400,
            audit_retention_seconds: 604_800,
        }
    }
}

/// The timing attributes of one session, exactly as stored (any may be missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionClock {
    /// `createdAt`.
    pub created_at: Option<i64>,
    /// `lastActivityAt`; when missing, the session counts as idle since `createdAt`.
    pub last_activity_at: Option<i64>,
    /// `idleTimeoutSeconds`; a missing or non-positive value means the default.
    pub idle_timeout_seconds: Option<i64>,
    /// `absoluteExpiresAt`; when missing, `createdAt` plus the default lifetime.
    pub absolute_expires_at: Option<i64>,
    /// A deadline the store enforces late, on layouts whose only deadline is a TTL
    /// (connect-dynamodb's and Auth.js's `expires`). DynamoDB deletes such items only "within a
    /// few days", so cleanup ends them itself, counted apart from idle expiries.
    pub lapses_at: Option<i64>,
}

/// Which deadline ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExpiryReason {
    /// `lastActivityAt + idle timeout` passed.
    Idle,
    /// The absolute lifetime passed.
    Absolute,
    /// The layout's TTL deadline (`expires`) passed, and DynamoDB has not deleted the item yet.
    Lapsed,
}

impl ExpiryReason {
    /// The `terminationReason` and the metric dimension value.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryReason::Idle => "idle",
            ExpiryReason::Absolute => "absolute",
            ExpiryReason::Lapsed => "ttl",
        }
    }
}

/// Both deadlines of a session, epoch seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// End of the idle window.
    pub idle: i64,
    /// End of the absolute lifetime, if one can be known.
    pub absolute: Option<i64>,
}

impl Deadlines {
    /// The earlier of the two: the value the app must write to `sweepAt`.
    pub fn earliest(&self) -> i64 {
        self.absolute.map_or(self.idle, |a| a.min(self.idle))
    }
}

/// The policy's answer for one session at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A deadline has passed; the session must be expired for `reason`.
    Due {
        /// The deadline that passed first.
        reason: ExpiryReason,
        /// When it passed.
        deadline: i64,
    },
    /// Still within both deadlines; `next` is the earliest one.
    NotDue {
        /// When it will become due.
        next: i64,
    },
    /// Neither `lastActivityAt` nor `createdAt` is known: nothing can be decided.
    Undecidable,
}

impl ExpiryPolicy {
    /// Computes both deadlines, or `None` when the session has no time to count from.
    pub fn deadlines(&self, s: &SessionClock) -> Option<Deadlines> {
        let last = s.last_activity_at.or(s.created_at)?;
        let idle_timeout = s
            .idle_timeout_seconds
            .filter(|t| *t > 0)
            .unwrap_or(self.default_idle_timeout_seconds);
        let absolute = s.absolute_expires_at.or_else(|| {
            s.created_at
                .map(|c| c.saturating_add(self.default_max_lifetime_seconds))
        });
        Some(Deadlines {
            idle: last.saturating_add(idle_timeout),
            absolute,
        })
    }

    /// Decides whether the session is due at `now`. When both deadlines have passed, the one
    /// that passed first is the reason; on a tie, `absolute` wins (it is the harder limit).
    pub fn evaluate(&self, s: &SessionClock, now: i64) -> Verdict {
        let verdict = self.evaluate_deadlines(s, now);
        let Some(lapse) = s.lapses_at else {
            return verdict;
        };
        match verdict {
            Verdict::Due { deadline, .. } if deadline <= lapse => verdict,
            _ if now >= lapse => Verdict::Due {
                reason: ExpiryReason::Lapsed,
                deadline: lapse,
            },
            Verdict::NotDue { next } => Verdict::NotDue {
                next: next.min(lapse),
            },
            _ => Verdict::NotDue { next: lapse },
        }
    }

    /// When the session becomes due, whatever the reason; `None` if nothing can be decided.
    pub fn due_at(&self, s: &SessionClock) -> Option<i64> {
        let own = self.deadlines(s).map(|d| d.earliest());
        match (own, s.lapses_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn evaluate_deadlines(&self, s: &SessionClock, now: i64) -> Verdict {
        let Some(d) = self.deadlines(s) else {
            return Verdict::Undecidable;
        };
        let idle_due = now >= d.idle;
        let absolute_due = d.absolute.is_some_and(|a| now >= a);
        match (idle_due, absolute_due, d.absolute) {
            (_, true, Some(a)) if !idle_due || a <= d.idle => Verdict::Due {
                reason: ExpiryReason::Absolute,
                deadline: a,
            },
            (true, _, _) => Verdict::Due {
                reason: ExpiryReason::Idle,
                deadline: d.idle,
            },
            _ => Verdict::NotDue { next: d.earliest() },
        }
    }

    /// The value the app writes to `sweepAt` on every touch, so the sweep index can find the
    /// session once it is due. `None` if the session has no time to count from.
    pub fn sweep_at(&self, s: &SessionClock) -> Option<i64> {
        self.deadlines(s).map(|d| d.earliest())
    }

    /// The TTL (`expiresAt`) for a session that ended at `ended_at`.
    pub fn retain_until(&self, ended_at: i64) -> i64 {
        ended_at.saturating_add(self.audit_retention_seconds)
    }
}
