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
/// the unit of work to a retry or a continuation instead of overrunning the invocation. With no
/// budget left the call is not started at all.
///
/// A call that starts a unit of work (a page read; a cascade's ending write, which a redone page
/// recognises as its own) passes the configured deadline margin. Calls that carry a started unit
/// through (cleanup's ending write, which no later run could count; job progress; a
/// continuation; the metrics flush) use [`bounded`]: they may use the margin, kept for them.
pub async fn within<T>(
    deadline: &dyn Deadline,
    margin: Duration,
    operation: &'static str,
    call: impl Future<Output = PortResult<T>>,
) -> PortResult<T> {
    let out_of_time = || PortError::transient(operation, "no time left before the Lambda deadline");
    let budget = deadline.remaining().saturating_sub(margin.max(RESERVE));
    if budget.is_zero() {
        return Err(out_of_time());
    }
    match tokio::time::timeout(budget, call).await {
        Ok(result) => result,
        Err(_) => Err(out_of_time()),
    }
}

/// Runs one port call with all the time left before the deadline but the last [`RESERVE`].
pub async fn bounded<T>(
    deadline: &dyn Deadline,
    operation: &'static str,
    call: impl Future<Output = PortResult<T>>,
) -> PortResult<T> {
    within(deadline, Duration::ZERO, operation, call).await
}

/// True once the time left is within `margin` (never less than [`RESERVE`]): start no new unit
/// of work.
pub fn out_of_time(deadline: &dyn Deadline, margin: Duration) -> bool {
    deadline.remaining() <= margin.max(RESERVE)
}

/// Re-sends an idempotent call that failed transiently after the SDK's own retries, up to
/// `tries` times in all, while time is left: [`bounded`], with a pause of 100 ms doubled
/// per try in between. For calls whose outcome matters to a count and that a later invocation
/// could not settle: a conditional write that may have landed (its retry recognises it as ours),
/// or a gate's mark.
pub async fn persist<T, F, Fut>(
    deadline: &dyn Deadline,
    tries: u32,
    operation: &'static str,
    mut call: F,
) -> PortResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = PortResult<T>>,
{
    let mut attempt = 0;
    loop {
        let result = bounded(deadline, operation, call()).await;
        attempt += 1;
        match result {
            Err(e) if e.is_transient() && attempt < tries => {
                let pause = Duration::from_millis(100 << (attempt - 1).min(4));
                if deadline.remaining() <= RESERVE + pause {
                    return Err(e);
                }
                tokio::time::sleep(pause).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn persist_retries_transient_errors_only_and_stops_at_its_tries() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let d = EpochDeadline::in_from_now(Duration::from_secs(30));
        let calls = AtomicU32::new(0);
        let r: PortResult<u32> = persist(&d, 3, "test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(PortError::transient("test", "503"))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        calls.store(0, Ordering::SeqCst);
        let r: PortResult<u32> = persist(&d, 3, "test", || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n == 0 {
                Err(PortError::transient("test", "lost"))
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(r.ok(), Some(1));
        calls.store(0, Ordering::SeqCst);
        let r: PortResult<u32> = persist(&d, 3, "test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(PortError::permanent("test", "bad"))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "a permanent error is not retried"
        );
    }

    #[tokio::test]
    async fn a_call_past_its_budget_is_a_transient_error() {
        let d = EpochDeadline::in_from_now(Duration::from_millis(300));
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(1)
        };
        let r = within(&d, Duration::from_millis(100), "test", slow).await;
        assert!(matches!(r, Err(e) if e.is_transient()));
        let later = EpochDeadline::in_from_now(Duration::from_secs(5));
        let fast = within(&later, Duration::ZERO, "test", async { Ok(2) }).await;
        assert_eq!(fast.ok(), Some(2));
        let spent = EpochDeadline::in_from_now(Duration::from_millis(400));
        let never: PortResult<u8> = within(&spent, Duration::ZERO, "test", async {
            unreachable!("a call with no budget is not started")
        })
        .await;
        assert!(matches!(never, Err(e) if e.is_transient()));
    }

    #[test]
    fn past_deadline_has_nothing_left() {
        assert_eq!(EpochDeadline { deadline_ms: 0 }.remaining(), Duration::ZERO);
        let d = EpochDeadline::in_from_now(Duration::from_secs(60));
        assert!(d.remaining() > Duration::from_secs(50));
    }
}
