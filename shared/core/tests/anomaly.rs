//! The anomaly rules, one change at a time: every type fires on its trigger, and the benign
//! cases raise nothing.

use sessionwarden_core::anomaly::*;
use sessionwarden_core::change::{Change, ChangeKind, Image, SeqNo};
use sessionwarden_core::expiry::ExpiryPolicy;
use sessionwarden_core::session::{SessionId, Status};

const NOW: i64 = 1_800_000_000;
fn image(user: Option<&str>, tenant: &str, status: Status, last: i64) -> Image {
    Image {
        user_id: user.map(String::from),
        tenant_id: Some(tenant.into()),
        status: Some(status),
        created_at: Some(NOW - 3600),
        last_activity_at: Some(last),
        user_agent: Some("UA-1".into()),
        ip_address: Some("198.51.100.1".into()),
        ..Default::default()
    }
}
/// An ACTIVE image of `user` in `tenant`, last active at `last`.
fn active(user: &str, tenant: &str, last: i64) -> Image {
    image(Some(user), tenant, Status::Active, last)
}
fn modify(old: Image, new: Image) -> Change {
    Change {
        seq: SeqNo("100".into()),
        kind: ChangeKind::Modify,
        session_id: SessionId::new("s"),
        old: Some(old),
        new: Some(new),
        by_ttl: false,
        at: NOW,
    }
}
/// Detection on a MODIFY from `old` to `new`, with no binding and the default policy.
fn detect_modify(old: Image, new: Image) -> Detection {
    detect(&modify(old, new), None, &p())
}
/// An INSERT of `new`.
fn insert_of(new: Image) -> Change {
    Change {
        kind: ChangeKind::Insert,
        old: None,
        ..modify(image(None, "t", Status::Active, NOW), new)
    }
}
fn kinds(d: &Detection) -> Vec<AnomalyType> {
    d.findings.iter().map(|f| f.kind).collect()
}
fn p() -> ExpiryPolicy {
    ExpiryPolicy::default()
}

#[test]
fn user_change_in_a_modify_is_critical() {
    let d = detect_modify(active("u1", "t", NOW - 60), active("u2", "t", NOW));
    assert_eq!(kinds(&d), [AnomalyType::SessionUserChanged]);
    assert_eq!(d.findings[0].users, ["u1", "u2"]);
    assert_eq!(d.findings[0].severity(), Severity::Critical);
}

#[test]
fn tenant_change_in_a_modify_is_critical() {
    let d = detect_modify(active("u1", "a", NOW), active("u1", "b", NOW));
    assert_eq!(kinds(&d), [AnomalyType::SessionTenantChanged]);
}

#[test]
fn anonymous_to_authenticated_is_fixation() {
    let d = detect_modify(
        image(None, "t", Status::Active, NOW - 5),
        active("u1", "t", NOW),
    );
    assert_eq!(kinds(&d), [AnomalyType::SessionFixation]);
}

#[test]
fn writes_to_an_ended_session_are_zombie_activity_and_reactivation_is_resurrection() {
    let d = detect_modify(
        image(Some("u"), "t", Status::Terminated, NOW - 600),
        image(Some("u"), "t", Status::Terminated, NOW),
    );
    assert_eq!(kinds(&d), [AnomalyType::ActivityAfterTermination]);
    let d = detect_modify(
        image(Some("u"), "t", Status::Expired, NOW - 600),
        active("u", "t", NOW),
    );
    assert_eq!(kinds(&d), [AnomalyType::SessionResurrected]);
}

#[test]
fn activity_after_the_idle_deadline_is_not_enforced() {
    // last activity 9 h ago, default idle 8 h: a touch now came after the deadline.
    let d = detect_modify(active("u", "t", NOW - 9 * 3600), active("u", "t", NOW));
    assert_eq!(kinds(&d), [AnomalyType::IdleTimeoutNotEnforced]);
}

#[test]
fn user_agent_change_is_low_and_ip_change_is_only_a_fact() {
    // A new address in the same /24 (the old one is 198.51.100.1): the plain context change.
    let mut new = active("u", "t", NOW);
    new.user_agent = Some("UA-2".into());
    new.ip_address = Some("198.51.100.9".into());
    let d = detect_modify(active("u", "t", NOW - 5), new);
    assert_eq!(kinds(&d), [AnomalyType::SessionContextChanged]);
    assert_eq!(d.findings[0].severity(), Severity::Low);
    assert_eq!(d.findings[0].raised, 0);
    assert!(d.findings[0].evidence.iter().all(|e| e.field != "network"));
    assert_eq!(d.facts, [Fact::IpChanged]);
}

/// A client change (user agent `UA-1` to `UA-2`) between the two addresses, and what it raises:
/// its severity, and the network evidence if any.
fn client_change_between(before: &str, after: &str) -> (Severity, Option<(String, String)>) {
    let mut old = active("u", "t", NOW - 5);
    old.ip_address = Some(before.into());
    let mut new = active("u", "t", NOW);
    new.user_agent = Some("UA-2".into());
    new.ip_address = Some(after.into());
    let d = detect_modify(old, new);
    assert_eq!(kinds(&d), [AnomalyType::SessionContextChanged], "{d:?}");
    let f = &d.findings[0];
    assert_eq!(f.severity(), Severity::Low.raised(f.raised));
    let network = f.evidence.iter().find(|e| e.field == "network").map(|e| {
        (
            e.before.clone().unwrap_or_default(),
            e.after.clone().unwrap_or_default(),
        )
    });
    (f.severity(), network)
}

/// Issue 12: a new client from another network (IPv4 /24, IPv6 /48) is MEDIUM, and the alert
/// shows both the client change and the two networks; a new address in the same network with a
/// new client stays the plain LOW context change.
#[test]
fn a_client_change_from_another_network_is_medium_and_shows_both_networks() {
    let net = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
    for (before, after, want) in [
        (
            "198.51.100.1",
            "203.0.113.9",
            net("198.51.100.0/24", "203.0.113.0/24"),
        ),
        (
            "198.51.100.1",
            "198.51.101.1",
            net("198.51.100.0/24", "198.51.101.0/24"),
        ),
        (
            "2001:db8:1:5::10",
            "2001:db8:2::10",
            net("2001:db8:1::/48", "2001:db8:2::/48"),
        ),
        (
            "198.51.100.1",
            "2001:db8::1",
            net("198.51.100.0/24", "2001:db8::/48"),
        ),
        // Not an IP address: compared as written.
        ("proxy-a", "proxy-b", net("proxy-a", "proxy-b")),
    ] {
        let (severity, network) = client_change_between(before, after);
        assert_eq!(severity, Severity::Medium, "{before} -> {after}");
        assert_eq!(network, want, "{before} -> {after}");
    }
    // The headline says it too (it is the alert's subject).
    let mut new = active("u", "t", NOW);
    new.user_agent = Some("UA-2".into());
    new.ip_address = Some("203.0.113.9".into());
    let d = detect_modify(active("u", "t", NOW - 5), new);
    assert!(d.findings[0].headline.contains("network"), "{d:?}");
    assert_eq!(d.findings[0].evidence[0].field, "client");
    assert_eq!(d.findings[0].evidence[1].field, "network");
    assert_eq!(d.facts, [Fact::IpChanged]);
}

#[test]
fn a_client_change_within_the_same_network_stays_low() {
    for (before, after) in [
        ("198.51.100.1", "198.51.100.254"),
        (" 198.51.100.1", "198.51.100.2"),
        ("2001:db8:1:5::10", "2001:db8:1:ffff::99"),
        ("::ffff:198.51.100.1", "198.51.100.7"),
        ("proxy-a", "proxy-a"),
    ] {
        assert_eq!(
            client_change_between(before, after),
            (Severity::Low, None),
            "{before} -> {after}"
        );
    }
}

/// An IP change alone, to any network, is only the `IpChanged` fact (a metric): mobile networks
/// move clients all day.
#[test]
fn an_ip_change_alone_raises_nothing() {
    for ip in ["198.51.100.9", "203.0.113.9", "2001:db8::1", "not-an-ip"] {
        let mut new = active("u", "t", NOW);
        new.ip_address = Some(ip.into());
        let d = detect_modify(active("u", "t", NOW - 5), new);
        assert!(d.findings.is_empty(), "{ip}: {d:?}");
        assert_eq!(d.facts, [Fact::IpChanged], "{ip}");
    }
}

#[test]
fn networks_are_an_ipv4_24_and_an_ipv6_48() {
    use sessionwarden_core::anomaly::network::{moved, network};
    assert_eq!(network("198.51.100.77"), "198.51.100.0/24");
    assert_eq!(network("::ffff:198.51.100.77"), "198.51.100.0/24");
    assert_eq!(network("2001:DB8:1:2:3:4:5:6"), "2001:db8:1::/48");
    assert_eq!(network("10.0.0.1:443"), "10.0.0.1:443");
    assert_eq!(moved("10.0.0.1", "10.0.0.200"), None);
    assert_eq!(
        moved("10.0.0.1", "10.0.1.1"),
        Some(("10.0.0.0/24".into(), "10.0.1.0/24".into()))
    );
}

#[test]
fn a_raised_severity_stops_at_critical() {
    assert_eq!(Severity::Low.raised(1), Severity::Medium);
    assert_eq!(Severity::Info.raised(0), Severity::Info);
    assert_eq!(Severity::High.raised(1), Severity::Critical);
    assert_eq!(Severity::Critical.raised(1), Severity::Critical);
    assert_eq!(Severity::Info.raised(200), Severity::Critical);
}

#[test]
fn benign_changes_raise_nothing() {
    // Cleanup expiry, logout, our own containment: ACTIVE -> ended.
    for (status, reason) in [
        (Status::Expired, "idle"),
        (Status::Terminated, "logout"),
        (Status::Terminated, "containment"),
    ] {
        let mut new = image(Some("u"), "t", status, NOW - 60);
        new.termination_reason = Some(reason.into());
        let d = detect_modify(active("u", "t", NOW - 60), new);
        assert!(d.findings.is_empty(), "{reason}");
        assert!(matches!(d.facts[..], [Fact::Ended { .. }]));
    }
    // Multi-tab: touches that race, including one that goes backwards.
    for (a, b) in [(NOW - 10, NOW - 9), (NOW - 9, NOW - 10), (NOW, NOW)] {
        let d = detect_modify(active("u", "t", a), active("u", "t", b));
        assert!(d.findings.is_empty());
    }
    // A fresh INSERT (new session ID at login, or a new session in another tenant).
    let insert = insert_of(active("u", "t2", NOW));
    assert!(detect(&insert, None, &p()).findings.is_empty());
    // TTL delete.
    let ttl = Change {
        kind: ChangeKind::Remove,
        new: None,
        by_ttl: true,
        ..insert.clone()
    };
    assert_eq!(detect(&ttl, None, &p()).facts, [Fact::DeletedByTtl]);
}

#[test]
fn reinsert_for_another_user_or_tenant_or_the_same_identity() {
    let insert = insert_of(active("u2", "t", NOW));
    let bound = |u: &str, t: &str| Binding {
        user_id: Some(u.into()),
        tenant_id: Some(t.into()),
        insert_seq: Some("1".into()),
    };
    assert_eq!(
        kinds(&detect(&insert, Some(&bound("u1", "t")), &p())),
        [AnomalyType::SessionUserChanged]
    );
    assert_eq!(
        kinds(&detect(&insert, Some(&bound("u2", "x")), &p())),
        [AnomalyType::SessionTenantChanged]
    );
    assert_eq!(
        kinds(&detect(&insert, Some(&bound("u2", "t")), &p())),
        [AnomalyType::SessionResurrected]
    );
}

#[test]
fn keys_only_images_are_facts_not_anomalies() {
    let insert = Change {
        kind: ChangeKind::Insert,
        old: None,
        new: None,
        ..modify(Image::default(), Image::default())
    };
    assert_eq!(detect(&insert, None, &p()).facts, [Fact::KeysOnly]);
}

#[test]
fn sequence_numbers_compare_numerically() {
    assert!(SeqNo("900".into()) < SeqNo("1000".into()));
    assert!(
        SeqNo("49590338271490256608559692538361571095921575989136588898".into())
            > SeqNo("4959".into())
    );
}

/// `is_plain_touch` is what lets the stream worker skip building a change, so it must never
/// hide a finding or a fact: over a grid of image pairs (identity, context, status, timing, the
/// policy's defaults), every pair it calls plain yields nothing from `detect`, and every pair of
/// ACTIVE images with equal identity and context that yields nothing is plain.
#[test]
fn a_plain_touch_is_exactly_a_modify_that_detect_finds_nothing_in() {
    let users = [None, Some("u1"), Some("u2")];
    let texts = [None, Some("a"), Some("b")];
    let statuses = [Some(Status::Active), Some(Status::Terminated), None];
    let lasts = [None, Some(NOW - 100_000), Some(NOW - 60), Some(NOW)];
    let policies = [
        p(),
        ExpiryPolicy {
            default_idle_timeout_seconds: 30,
            ..p()
        },
    ];
    let mut plain = 0;
    let img = |user: Option<&str>, text: Option<&str>, status, last, idle: Option<i64>| Image {
        user_id: user.map(String::from),
        tenant_id: text.map(String::from),
        status,
        created_at: Some(NOW - 3600),
        last_activity_at: last,
        idle_timeout_seconds: idle,
        user_agent: text.map(String::from),
        ip_address: text.map(|t| format!("ip-{t}")),
        ..Default::default()
    };
    for policy in &policies {
        for (u0, u1) in users
            .iter()
            .flat_map(|a| users.iter().map(move |b| (*a, *b)))
        {
            for (t0, t1) in texts
                .iter()
                .flat_map(|a| texts.iter().map(move |b| (*a, *b)))
            {
                for (s0, s1) in statuses
                    .iter()
                    .flat_map(|a| statuses.iter().map(move |b| (*a, *b)))
                {
                    for (l0, l1) in lasts
                        .iter()
                        .flat_map(|a| lasts.iter().map(move |b| (*a, *b)))
                    {
                        for idle in [None, Some(120)] {
                            let old = img(u0, t0, s0, l0, idle);
                            let new = img(u1, t1, s1, l1, idle);
                            let quiet = is_plain_touch(&old.facets(), &new.facets(), policy);
                            let d = detect(&modify(old.clone(), new.clone()), None, policy);
                            let nothing = d.findings.is_empty() && d.facts.is_empty();
                            if quiet {
                                plain += 1;
                                assert!(nothing, "{old:?} -> {new:?}: {d:?}");
                            } else if old.facets().user_id == new.facets().user_id
                                && t0 == t1
                                && s0 == Some(Status::Active)
                                && s1 == Some(Status::Active)
                            {
                                assert!(!nothing, "{old:?} -> {new:?} is plain");
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(plain > 100, "only {plain} plain touches in the grid");
}
