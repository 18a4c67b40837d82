//! The invocation deadline, as something services can ask "how long is left?", and the budget of
//! each call ([`within`]). Lambda gives the deadline in epoch milliseconds; tests substitute their
//! own [`Deadline`] so they never sleep.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{PortError, PortResult};

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

/// Time no call may use: kept so the invocation still returns its response (batch item
/// failures, report) and flushes its logs before Lambda cuts it off.
pub const RESERVE: Duration = Duration::from_millis(500);

/// Runs one port call with the time left before `deadline`, minus `margin` (and never into the
/// last [`RESERVE`]), as its budget. Past it the call is abandoned (its request may still land:
/// every effect is idempotent) and the caller gets a transient error, so a slow dependency defers
/// the unit of work to a retry or a continuation instead of overrunning the invocation.
///
/// Work that starts a unit (a read, an end) passes the configured deadline margin; wrap-up that
/// records or hands over finished work (job progress, continuations, metrics) passes
/// `Duration::ZERO`, so it may use the margin that was kept for it.
pub async fn within<T>(
    deadline: &dyn Deadline,
    margin: Duration,
    operation: &'static str,
    call: impl Future<Output = PortResult<T>>,
) -> PortResult<T> {
    let budget = deadline.remaining().saturating_sub(margin.max(RESERVE));
    match tokio::time::timeout(budget, call).await {
        Ok(result) => result,
        Err(_) => Err(PortError::transient(
            operation,
            "no time left before the Lambda deadline",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_past_its_budget_is_a_transient_error() {
        let d = EpochDeadline::in_from_now(Duration::from_millis(300));
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(1)
        };
        let r = within(&d, Duration::from_millis(100), "test", slow).await;
        assert!(matches!(r, Err(e) if e.is_transient()));
        let fast = within(&d, Duration::ZERO, "test", async { Ok(2) }).await;
        assert_eq!(fast.ok(), Some(2));
    }

    #[test]
    fn past_deadline_has_nothing_left() {
        assert_eq!(EpochDeadline { deadline_ms: 0 }.remaining(), Duration::ZERO);
        let d = EpochDeadline::in_from_now(Duration::from_secs(60));
        assert!(d.remaining() > Duration::from_secs(50));
    }
}
