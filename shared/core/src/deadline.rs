//! The invocation deadline, as something services can ask "how long is left?". Lambda gives the
//! deadline in epoch milliseconds; tests substitute their own [`Deadline`] so they never sleep.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time left in the current invocation.
pub trait Deadline: Send + Sync {
    /// How long until the invocation is cut off.
    fn remaining(&self) -> Duration;
}

/// A deadline at a fixed wall-clock instant, in epoch milliseconds (Lambda's `context.deadline`).
#[derive(Debug, Clone, Copy)]
pub struct EpochDeadline {
    /// Epoch milliseconds.
    pub deadline_ms: u64,
}

impl EpochDeadline {
    /// A deadline `after` from now, for local runs that have no Lambda context.
    pub fn in_from_now(after: Duration) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        EpochDeadline {
            deadline_ms: (now + after).as_millis() as u64,
        }
    }
}

impl Deadline for EpochDeadline {
    fn remaining(&self) -> Duration {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        Duration::from_millis(self.deadline_ms.saturating_sub(now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_deadline_has_nothing_left() {
        assert_eq!(EpochDeadline { deadline_ms: 0 }.remaining(), Duration::ZERO);
        let d = EpochDeadline::in_from_now(Duration::from_secs(60));
        assert!(d.remaining() > Duration::from_secs(50));
    }
}
