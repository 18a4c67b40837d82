//! Typed configuration: defaults, every bad value named by its variable, and per-type
//! response policies.

use std::collections::HashMap;

use std::time::Duration;

use sessionwarden_core::config::*;
use sessionwarden_core::expiry::ExpiryPolicy;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| m.get(k).cloned()
}

const BASE: [(&str, &str); 2] = [
    ("SESSIONS_TABLE", "t"),
    ("SESSION_REF_KEY", "0123456789abcdef"),
];

#[test]
fn defaults_apply() {
    let c = CleanupConfig::from_source(&env(&BASE)).unwrap();
    assert_eq!(c.strategy, CleanupStrategy::Index);
    assert_eq!(c.common.metrics_namespace, "SessionWarden");
    assert_eq!(c.common.expiry, ExpiryPolicy::default());
    assert_eq!(c.sweep_index, "by-sweep");
    assert_eq!(c.deadline_margin, Duration::from_secs(10));
}

#[test]
fn bad_strategy_names_the_variable() {
    let mut p = BASE.to_vec();
    p.push(("CLEANUP_STRATEGY", "fullscan"));
    let e = CleanupConfig::from_source(&env(&p)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "configuration error: CLEANUP_STRATEGY=\"fullscan\" is invalid: expected `index` or `scan`"
    );
}

#[test]
fn bad_number_and_out_of_range_name_the_variable() {
    let mut p = BASE.to_vec();
    p.push(("DEFAULT_IDLE_TIMEOUT_SECONDS", "8h"));
    let e = CleanupConfig::from_source(&env(&p))
        .unwrap_err()
        .to_string();
    assert!(e.contains("DEFAULT_IDLE_TIMEOUT_SECONDS=\"8h\""), "{e}");
    let mut p = BASE.to_vec();
    p.push(("CLEANUP_SCAN_SEGMENTS", "0"));
    let e = CleanupConfig::from_source(&env(&p))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("CLEANUP_SCAN_SEGMENTS=0") && e.contains("from 1 to 1000"),
        "{e}"
    );
}

#[test]
fn missing_required_and_secret_is_never_echoed() {
    let e =
        CleanupConfig::from_source(&env(&[("SESSION_REF_KEY", "0123456789abcdef")])).unwrap_err();
    assert_eq!(
        e,
        ConfigError::Missing {
            var: "SESSIONS_TABLE"
        }
    );
    let e = CleanupConfig::from_source(&env(&[
        ("SESSIONS_TABLE", "t"),
        ("SESSION_REF_KEY", "tooshort"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("SESSION_REF_KEY=<redacted>") && !e.contains("tooshort"),
        "{e}"
    );
}

use sessionwarden_core::anomaly::{AnomalyType, Severity};

fn base(extra: &[(&str, &str)]) -> Result<StreamConfig, ConfigError> {
    let mut m: std::collections::HashMap<String, String> = [
        ("SESSIONS_TABLE", "s"),
        ("SESSION_REF_KEY", "0123456789abcdef"),
        ("STATE_TABLE", "st"),
        ("ALERTS_TOPIC_ARN", "arn:aws:sns:us-east-1:1:a"),
        ("DEAD_LETTER_QUEUE_URL", "http://q"),
        ("CASCADE_QUEUE_URL", "http://c"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        m.insert(k.to_string(), v.to_string());
    }
    StreamConfig::from_source(&move |k: &str| m.get(k).cloned())
}

/// Asserts the containment of each anomaly type.
fn assert_containment(c: &StreamConfig, expected: &[(AnomalyType, Containment)]) {
    for &(kind, containment) in expected {
        assert_eq!(c.response(kind).containment, containment, "{kind:?}");
    }
}

#[test]
fn identity_anomalies_terminate_the_session_by_default() {
    let c = base(&[]).unwrap();
    assert_containment(
        &c,
        &[
            (
                AnomalyType::SessionUserChanged,
                Containment::TerminateSession,
            ),
            (
                AnomalyType::SessionTenantChanged,
                Containment::TerminateSession,
            ),
            (AnomalyType::SessionFixation, Containment::None),
        ],
    );
    assert_eq!(c.alert_dedup_window_seconds, 3600);
}

#[test]
fn per_type_overrides_and_bad_values_name_the_variable() {
    let c = base(&[
        ("ALERT_MIN_SEVERITY", "HIGH"),
        ("ALERT_MIN_SEVERITY_SESSION_FIXATION", "low"),
        ("CONTAINMENT_SESSION_FIXATION", "terminate_user"),
    ])
    .unwrap();
    assert_eq!(
        c.response(AnomalyType::SessionFixation).min_alert_severity,
        Severity::Low
    );
    assert_containment(
        &c,
        &[(AnomalyType::SessionFixation, Containment::TerminateUser)],
    );
    assert_eq!(
        c.response(AnomalyType::SessionResurrected)
            .min_alert_severity,
        Severity::High
    );
    let e = base(&[("CONTAINMENT_SESSION_USER_CHANGED", "nuke")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("CONTAINMENT_SESSION_USER_CHANGED=\"nuke\""),
        "{e}"
    );
    assert_eq!(
        base(&[("ALERTS_TOPIC_ARN", "")]).unwrap_err(),
        ConfigError::Missing {
            var: "ALERTS_TOPIC_ARN"
        }
    );
}
