//! The expiry policy: idle and absolute deadlines, per-session overrides, `sweepAt`.

use sessionwarden_core::expiry::*;

const H: i64 = 3600;
fn policy() -> ExpiryPolicy {
    ExpiryPolicy::default()
}
fn clock(created: i64, last: i64) -> SessionClock {
    SessionClock {
        created_at: Some(created),
        last_activity_at: Some(last),
        ..Default::default()
    }
}
/// Asserts `s` is due at `now` for `reason`, whatever its deadline.
fn assert_due(s: &SessionClock, now: i64, reason: ExpiryReason) {
    let verdict = policy().evaluate(s, now);
    assert!(
        matches!(verdict, Verdict::Due { reason: r, .. } if r == reason),
        "{verdict:?}, expected due for {reason:?}"
    );
}

#[test]
fn idle_deadline_uses_default_timeout() {
    let now = 100 * H;
    let s = clock(now - 9 * H, now - 8 * H);
    assert_eq!(
        policy().evaluate(&s, now),
        Verdict::Due {
            reason: ExpiryReason::Idle,
            deadline: now
        }
    );
    let fresh = clock(now - 9 * H, now - 8 * H + 1);
    assert_eq!(
        policy().evaluate(&fresh, now),
        Verdict::NotDue { next: now + 1 }
    );
}

#[test]
fn absolute_deadline_from_created_at_plus_lifetime() {
    let now = 100 * H;
    let s = clock(now - 25 * H, now - 60);
    assert_eq!(
        policy().evaluate(&s, now),
        Verdict::Due {
            reason: ExpiryReason::Absolute,
            deadline: now - H
        }
    );
}

#[test]
fn explicit_absolute_deadline_overrides_lifetime() {
    let now = 100 * H;
    let mut s = clock(now - 2 * H, now - 60);
    s.absolute_expires_at = Some(now - 1);
    assert_due(&s, now, ExpiryReason::Absolute);
}

#[test]
fn per_session_idle_timeout_overrides_default_both_ways() {
    let now = 100 * H;
    let mut short = clock(now - H, now - 20 * 60);
    short.idle_timeout_seconds = Some(15 * 60);
    assert_due(&short, now, ExpiryReason::Idle);
    let mut long = clock(now - 10 * H, now - 9 * H);
    long.idle_timeout_seconds = Some(12 * H);
    assert_eq!(
        policy().evaluate(&long, now),
        Verdict::NotDue { next: now + 3 * H }
    );
}

#[test]
fn non_positive_override_falls_back_to_default() {
    let now = 100 * H;
    let mut s = clock(now - H, now - 60);
    s.idle_timeout_seconds = Some(0);
    assert!(matches!(policy().evaluate(&s, now), Verdict::NotDue { .. }));
}

#[test]
fn earliest_passed_deadline_is_the_reason() {
    let now = 100 * H;
    // idle passed 30 h ago, absolute 1 h ago: idle came first.
    let s = clock(now - 25 * H, now - 38 * H);
    assert_due(&s, now, ExpiryReason::Idle);
    // a tie goes to absolute.
    let mut t = clock(now - 10 * H, now - 8 * H);
    t.absolute_expires_at = Some(now);
    assert_due(&t, now, ExpiryReason::Absolute);
}

#[test]
fn missing_last_activity_counts_from_creation_and_nothing_is_undecidable() {
    let now = 100 * H;
    let s = SessionClock {
        created_at: Some(now - 9 * H),
        ..Default::default()
    };
    assert_due(&s, now, ExpiryReason::Idle);
    assert_eq!(
        policy().evaluate(&SessionClock::default(), now),
        Verdict::Undecidable
    );
}

#[test]
fn sweep_at_is_the_earliest_deadline_and_retention_adds_audit_window() {
    let p = policy();
    assert_eq!(p.sweep_at(&clock(0, 20 * H)), Some(24 * H));
    assert_eq!(p.sweep_at(&clock(0, H)), Some(9 * H));
    assert_eq!(p.retain_until(10), 10 + 604_800);
}
