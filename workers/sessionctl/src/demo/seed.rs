//! The demo's traffic: a deterministic, realistic mix of sessions.

use super::{H, M};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sessionwarden_core::expiry::ExpiryPolicy;
use sessionwarden_core::session::{Session, SessionId, Status, TerminationReason};

/// One seeded session and the outcome the demo expects for it.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// The session as written.
    pub session: Session,
    /// What should happen to it: `idle`, `absolute` or `stays`.
    pub expect: &'static str,
}

/// The demo's traffic: about 120 sessions at `now`, deterministic for a given seed.
pub fn demo_sessions(now: i64, policy: &ExpiryPolicy, seed: u64) -> Vec<Seeded> {
    let mut rng = StdRng::seed_from_u64(seed);
    let tenants = ["acme", "globex", "initech"];
    let agents = [
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36",
        "AcmeMobile/4.2 (iPhone; iOS 18.1)",
        "okhttp/4.12.0 (Android 15)",
    ];
    let mut out = Vec::new();
    let make =
        |rng: &mut StdRng, user: Option<String>, tenant: &str, created_ago: i64, idle_for: i64| {
            let id = SessionId::new(format!("sess_{:032x}", rng.random::<u128>()));
            let mut s = Session::active(id, now - created_ago);
            s.last_activity_at = now - idle_for;
            s.user_id = user;
            s.tenant_id = Some(tenant.to_string());
            s.ip_address = Some(format!("198.51.100.{}", rng.random_range(1..255)));
            s.user_agent = Some(agents[rng.random_range(0..agents.len())].to_string());
            s
        };
    let user = |rng: &mut StdRng| format!("u-{:03}", rng.random_range(1..=30));
    let tenant = |rng: &mut StdRng| tenants[rng.random_range(0..tenants.len())];

    // Random identities and ages: per group, the count, the expected outcome and how its
    // (created, idle) ages are drawn.
    type Ages = fn(&mut StdRng) -> (i64, i64);
    let groups: [(usize, &'static str, Ages); 3] = [
        // Busy, recent sessions: the bulk of the table.
        (80, "stays", |rng| {
            let created = rng.random_range(10 * M..20 * H);
            (created, rng.random_range(0..(7 * H).min(created)))
        }),
        // Idle past the default 8 h: closed laptops, abandoned tabs.
        (15, "idle", |rng| {
            let idle = rng.random_range(8 * H + 5 * M..20 * H);
            (idle + rng.random_range(0..2 * H), idle)
        }),
        // Still clicking, but older than the 24 h lifetime.
        (8, "absolute", |rng| {
            let created = rng.random_range(24 * H + 10 * M..40 * H);
            (created, rng.random_range(0..H))
        }),
    ];
    for (count, expect, ages) in groups {
        for _ in 0..count {
            let (u, t) = (user(&mut rng), tenant(&mut rng));
            let (created, idle) = ages(&mut rng);
            out.push(Seeded {
                session: make(&mut rng, Some(u), t, created, idle),
                expect,
            });
        }
    }
    // An admin console with a strict 15-minute idle timeout.
    for idle in [4 * M, 20 * M, 45 * M, 2 * H] {
        let u = user(&mut rng);
        let mut s = make(&mut rng, Some(u), "acme", 3 * H, idle);
        s.idle_timeout_seconds = Some(15 * M);
        out.push(Seeded {
            session: s,
            expect: if idle > 15 * M { "idle" } else { "stays" },
        });
    }
    // A kiosk with a generous 12 h idle timeout: idle 9-11 h and still valid.
    for idle in [9 * H, 10 * H, 11 * H] {
        let u = user(&mut rng);
        let mut s = make(&mut rng, Some(u), "globex", 12 * H, idle);
        s.idle_timeout_seconds = Some(12 * H);
        out.push(Seeded {
            session: s,
            expect: "stays",
        });
    }
    // Contractor sessions with an explicit end of engagement.
    for (ends_in, expect) in [(-10 * M, "absolute"), (-M, "absolute"), (2 * H, "stays")] {
        let u = user(&mut rng);
        let mut s = make(&mut rng, Some(u), "initech", 5 * H, 5 * M);
        s.absolute_expires_at = Some(now + ends_in);
        out.push(Seeded { session: s, expect });
    }
    // Anonymous visitors (no userId yet).
    for idle in [10 * M, 3 * H, 9 * H, 14 * H] {
        let t = tenant(&mut rng);
        let s = make(&mut rng, None, t, idle + 30 * M, idle);
        out.push(Seeded {
            session: s,
            expect: if idle >= 8 * H { "idle" } else { "stays" },
        });
    }
    // Sessions that ended earlier, some long past their deadlines: never touched again.
    for (status, reason) in [
        (Status::Terminated, TerminationReason::Logout),
        (Status::Terminated, TerminationReason::Logout),
        (Status::Terminated, TerminationReason::Admin),
        (Status::Expired, TerminationReason::Idle),
        (Status::Expired, TerminationReason::Absolute),
    ] {
        let (u, t) = (user(&mut rng), tenant(&mut rng));
        let mut s = make(&mut rng, Some(u), t, 30 * H, 20 * H);
        s.status = status;
        s.termination_reason = Some(reason);
        s.terminated_at = Some(now - 19 * H);
        s.expires_at = Some(policy.retain_until(now - 19 * H));
        out.push(Seeded {
            session: s,
            expect: "stays",
        });
    }
    // The app writes sweepAt on every touch (README: "sweepAt").
    for seeded in &mut out {
        seeded.session.sweep_at = policy.sweep_at(&seeded.session.clock());
    }
    out
}
