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

#[test]
fn every_severity_the_readme_lists_is_accepted() {
    for (raw, want) in [
        ("INFO", Severity::Info),
        ("info", Severity::Info),
        ("LOW", Severity::Low),
        ("MEDIUM", Severity::Medium),
        ("HIGH", Severity::High),
        (" critical ", Severity::Critical),
    ] {
        let c = base(&[
            ("ALERT_MIN_SEVERITY", raw),
            ("ALERT_MIN_SEVERITY_SESSION_CONTEXT_CHANGED", raw),
        ])
        .unwrap_or_else(|e| panic!("{raw}: {e}"));
        for t in AnomalyType::ALL {
            assert_eq!(c.response(t).min_alert_severity, want, "{raw} {t:?}");
        }
    }
    let e = base(&[("ALERT_MIN_SEVERITY", "URGENT")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ALERT_MIN_SEVERITY=\"URGENT\"")
            && e.contains("expected INFO, LOW, MEDIUM, HIGH or CRITICAL"),
        "{e}"
    );
}

/// Issue 12: each type's severity defaults to the catalogue's (`AnomalyType::severity`), is
/// configurable per type with `SEVERITY_<TYPE>`, and a bad value names the variable.
#[test]
fn type_severities_default_to_the_catalogue_and_are_configurable() {
    let c = base(&[]).unwrap();
    for t in AnomalyType::ALL {
        assert_eq!(c.response(t).severity, t.severity(), "{t:?}");
        assert_eq!(
            sessionwarden_core::config::severity_var(t),
            format!("SEVERITY_{}", t.as_str())
        );
    }
    assert_eq!(
        c.response(AnomalyType::SessionContextChanged).severity,
        Severity::Low
    );
    let c = base(&[
        ("SEVERITY_SESSION_CONTEXT_CHANGED", "medium"),
        ("SEVERITY_SESSION_USER_CHANGED", " HIGH "),
        ("ALERT_MIN_SEVERITY", "MEDIUM"),
    ])
    .unwrap();
    assert_eq!(
        c.response(AnomalyType::SessionContextChanged).severity,
        Severity::Medium
    );
    assert_eq!(
        c.response(AnomalyType::SessionUserChanged).severity,
        Severity::High
    );
    assert_eq!(
        c.response(AnomalyType::SessionContextChanged)
            .min_alert_severity,
        Severity::Medium,
        "the threshold is its own setting"
    );
    assert_eq!(
        c.response(AnomalyType::SessionFixation).severity,
        Severity::Medium,
        "other types keep their default"
    );
    let e = base(&[("SEVERITY_SESSION_CONTEXT_CHANGED", "SEVERE")]).unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::Invalid {
                var: "SEVERITY_SESSION_CONTEXT_CHANGED",
                ..
            }
        ),
        "{e:?}"
    );
    let e = e.to_string();
    assert!(
        e.contains("SEVERITY_SESSION_CONTEXT_CHANGED=\"SEVERE\"")
            && e.contains("expected INFO, LOW, MEDIUM, HIGH or CRITICAL"),
        "{e}"
    );
}

fn cascade(extra: &[(&str, &str)]) -> Result<CascadeConfig, ConfigError> {
    let mut p = vec![
        ("SESSIONS_TABLE", "s"),
        ("SESSION_REF_KEY", "0123456789abcdef"),
        ("STATE_TABLE", "st"),
        ("ALERTS_TOPIC_ARN", "arn:aws:sns:us-east-1:1:a"),
        ("DEAD_LETTER_QUEUE_URL", "http://q"),
        ("CASCADE_QUEUE_URL", "http://c"),
    ];
    p.extend_from_slice(extra);
    CascadeConfig::from_source(&env(&p))
}

fn cleanup(extra: &[(&str, &str)]) -> Result<CleanupConfig, ConfigError> {
    let mut p = BASE.to_vec();
    p.extend_from_slice(extra);
    CleanupConfig::from_source(&env(&p))
}

#[test]
fn a_deadline_margin_not_smaller_than_the_function_timeout_is_refused() {
    // The case: a 900 s margin against the cascade's 300 s timeout.
    let e = cascade(&[
        ("FUNCTION_TIMEOUT_SECONDS", "300"),
        ("CASCADE_DEADLINE_MARGIN_MS", "300000"),
    ])
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "configuration error: CASCADE_DEADLINE_MARGIN_MS=300000 is invalid: must be smaller than \
         FUNCTION_TIMEOUT_SECONDS=300 (300000 ms), or no time is left to work in before the deadline"
    );
    let e = cleanup(&[
        ("FUNCTION_TIMEOUT_SECONDS", "60"),
        ("CLEANUP_DEADLINE_MARGIN_MS", "75000"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("CLEANUP_DEADLINE_MARGIN_MS=75000") && e.contains("FUNCTION_TIMEOUT_SECONDS=60"),
        "{e}"
    );
    // The default margin (10 s) is checked too.
    let e = cleanup(&[("FUNCTION_TIMEOUT_SECONDS", "10")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("CLEANUP_DEADLINE_MARGIN_MS=10000") && e.contains("FUNCTION_TIMEOUT_SECONDS=10"),
        "{e}"
    );
    // Just under the timeout is accepted; so is any margin when the timeout is not given.
    let c = cascade(&[
        ("FUNCTION_TIMEOUT_SECONDS", "300"),
        ("CASCADE_DEADLINE_MARGIN_MS", "299999"),
    ])
    .unwrap();
    assert_eq!(c.deadline_margin, Duration::from_millis(299_999));
    let c = cleanup(&[
        ("FUNCTION_TIMEOUT_SECONDS", "300"),
        ("CLEANUP_DEADLINE_MARGIN_MS", "20000"),
    ])
    .unwrap();
    assert_eq!(c.deadline_margin, Duration::from_secs(20));
    let c = cleanup(&[("CLEANUP_DEADLINE_MARGIN_MS", "600000")]).unwrap();
    assert_eq!(c.deadline_margin, Duration::from_secs(600));
}

#[test]
fn deadline_margins_and_the_function_timeout_have_a_range() {
    // No Lambda runs longer than 900 s, so a margin of 900 s or more can never work.
    let e = cascade(&[("CASCADE_DEADLINE_MARGIN_MS", "900000")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("CASCADE_DEADLINE_MARGIN_MS=900000") && e.contains("from 0 to 899999"),
        "{e}"
    );
    let e = cleanup(&[("CLEANUP_DEADLINE_MARGIN_MS", "-1")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("CLEANUP_DEADLINE_MARGIN_MS=-1"), "{e}");
    for bad in ["0", "901", "5m"] {
        let e = cascade(&[("FUNCTION_TIMEOUT_SECONDS", bad)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("FUNCTION_TIMEOUT_SECONDS=") && e.contains("from 1 to 900"),
            "{bad}: {e}"
        );
    }
    // The stream worker has no margin, but refuses a malformed timeout all the same.
    let e = base(&[("FUNCTION_TIMEOUT_SECONDS", "forever")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("FUNCTION_TIMEOUT_SECONDS=\"forever\""), "{e}");
}

#[test]
fn the_metrics_sink_is_cloudwatch_or_emf() {
    assert_eq!(
        base(&[]).unwrap().common.metrics_transport,
        MetricsTransport::CloudWatch
    );
    assert_eq!(
        base(&[("METRICS_SINK", "emf")])
            .unwrap()
            .common
            .metrics_transport,
        MetricsTransport::Emf
    );
    let e = base(&[("METRICS_SINK", "statsd")]).unwrap_err().to_string();
    assert!(
        e.contains("METRICS_SINK=\"statsd\"") && e.contains("expected cloudwatch or emf"),
        "{e}"
    );
}
