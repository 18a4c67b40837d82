//! [`SessionFactory`]: sessions built relative to one `now`, the way the app writes them.

use sessionwarden_core::expiry::ExpiryPolicy;
use sessionwarden_core::session::{Session, SessionId};

/// Builds sessions relative to `now`, with `sweepAt` written the way the README tells apps to.
pub struct SessionFactory {
    /// The instant sessions are built around (epoch seconds).
    pub now: i64,
    /// The policy used to compute `sweepAt`.
    pub policy: ExpiryPolicy,
    run: String,
}

impl SessionFactory {
    /// A factory at the current time with the default policy.
    pub fn new() -> Self {
        SessionFactory {
            now: chrono::Utc::now().timestamp(),
            policy: ExpiryPolicy::default(),
            run: format!("{:08x}", rand::random::<u32>()),
        }
    }

    /// A unique, realistic-looking raw session ID.
    pub fn id(&self, label: &str) -> SessionId {
        SessionId::new(format!(
            "sid-{}-{label}-{:016x}",
            self.run,
            rand::random::<u64>()
        ))
    }

    /// An ACTIVE session created `age` seconds ago and idle for `idle` seconds.
    pub fn active(&self, label: &str, user: &str, age: i64, idle: i64) -> Session {
        let mut s = Session::active(self.id(label), self.now - age);
        s.last_activity_at = self.now - idle;
        s.user_id = Some(user.to_string());
        s.tenant_id = Some("acme".to_string());
        self.with_sweep(s)
    }

    /// `n` ACTIVE sessions of `user`, labelled `{label}0`, `{label}1`, ...
    pub fn of_user(&self, n: usize, label: &str, user: &str, age: i64, idle: i64) -> Vec<Session> {
        (0..n)
            .map(|i| self.active(&format!("{label}{i}"), user, age, idle))
            .collect()
    }

    /// An anonymous ACTIVE session (no `userId` yet) created `age` seconds ago and idle for
    /// `idle` seconds.
    pub fn anonymous(&self, label: &str, age: i64, idle: i64) -> Session {
        let mut s = self.active(label, "x", age, idle);
        s.user_id = None;
        s
    }

    /// `live` sessions well within their deadlines, followed by `due` sessions idle past the
    /// default timeout: the population the cost tests and `just bench` measure.
    pub fn population(&self, live: usize, due: usize) -> Vec<Session> {
        let mut v: Vec<Session> = (0..live)
            .map(|i| {
                self.active(
                    "live",
                    &format!("u-{}", i % 5000),
                    2 * 3600,
                    (i % 3600) as i64,
                )
            })
            .collect();
        v.extend(
            (0..due)
                .map(|i| self.active("due", &format!("u-{i}"), 9 * 3600, 8 * 3600 + 60 + i as i64)),
        );
        v
    }

    /// Recomputes `sweepAt` after the test changed timing attributes.
    pub fn with_sweep(&self, mut s: Session) -> Session {
        s.sweep_at = self.policy.sweep_at(&s.clock());
        s
    }
}

impl Default for SessionFactory {
    fn default() -> Self {
        Self::new()
    }
}
