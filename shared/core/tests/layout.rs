//! `SESSION_LAYOUT`: presets, custom layouts, and the errors that stop a worker at startup
//! with the field and what was expected.

use sessionwarden_core::config::{CommonConfig, ConfigError};
use sessionwarden_core::layout::{
    Active, End, Layout, Path, TimeFormat, TimeUnit, IS_CURRENT_EXAMPLE,
};

fn mapped(raw: &str) -> sessionwarden_core::layout::Mapped {
    match Layout::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}")) {
        Layout::Mapped(m) => *m,
        Layout::Native => panic!("{raw} is native"),
    }
}

fn error(raw: &str) -> (String, String) {
    let e = Layout::parse(raw).expect_err(raw);
    (e.field, e.expected)
}

#[test]
fn presets_by_name() {
    assert_eq!(Layout::parse("native").unwrap(), Layout::Native);
    assert_eq!(Layout::parse("").unwrap(), Layout::Native);
    let c = mapped("connect-dynamodb");
    assert_eq!(
        (c.id.attribute.as_str(), c.id.prefix.as_str()),
        ("id", "sess:")
    );
    assert_eq!(
        c.user,
        vec![
            Path::parse("sess.user.id"),
            Path::parse("sess.userId"),
            Path::parse("sess.passport.user")
        ]
    );
    assert_eq!(c.active, Active::Exists);
    assert_eq!(c.end, End::Delete);
    assert!(c.ttl_is_deadline);
    let a = mapped("authjs");
    assert_eq!(a.id.attribute, "sk");
    assert_eq!(a.home.as_ref().map(|h| h.prefix.as_str()), Some("USER#"));
    assert_eq!(a.kind, Some(("type".into(), "SESSION".into())));
    assert_eq!(a.id_index.as_ref().map(|i| i.name.as_str()), Some("GSI1"));
}

#[test]
fn presets_take_options() {
    let c = mapped(
        r#"{"preset": "connect-dynamodb", "hashKey": "sid", "prefix": "app:",
            "userPaths": ["account.uid"], "tenantPath": "account.org"}"#,
    );
    assert_eq!(c.id.attribute, "sid");
    assert_eq!(c.id.prefix, "app:");
    assert_eq!(c.user, vec![Path::parse("sess.account.uid")]);
    assert_eq!(c.tenant, vec![Path::parse("sess.account.org")]);
    let a = mapped(r#"{"preset": "authjs", "indexName": "byToken"}"#);
    assert_eq!(a.id_index.map(|i| i.name), Some("byToken".into()));
}

#[test]
fn the_is_current_table_is_expressible() {
    let m = mapped(IS_CURRENT_EXAMPLE);
    assert_eq!(m.name, "custom");
    assert_eq!(m.active, Active::Flag("isCurrent".into()));
    let la = m.last_activity.clone().expect("lastActivity");
    assert_eq!(
        (la.attribute.as_str(), la.format),
        ("lastActivity", TimeFormat::Iso8601)
    );
    let t = m.idle_timeout.clone().expect("idleTimeout");
    assert_eq!(t.attribute.as_deref(), Some("sessionTimeout"));
    assert_eq!(t.unit, TimeUnit::Minutes);
    match &m.end {
        End::Set {
            ended_at: Some(f), ..
        } => assert_eq!(f.attribute, "expiredAt"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        m.fence().map(|f| f.attribute.as_str()),
        Some("lastActivity")
    );
}

#[test]
fn errors_name_the_field_and_what_was_expected() {
    assert_eq!(error("redis").0, "SESSION_LAYOUT");
    assert!(error("{not json").1.contains("valid JSON"));
    assert!(error(r#"{"key": "id"}"#).1.contains("\"preset\""));
    let (field, expected) = error(r#"{"preset": "connect-dynamodb", "hashkey": "id"}"#);
    assert_eq!(field, "hashkey", "{expected}");
    assert!(expected.contains("unknown field"), "{expected}");
    let custom = |active: &str, extra: &str| {
        format!(
            r#"{{"layout": "custom", "key": "id", "active": {active},
                 "lastActivity": {{"attribute": "la", "format": "epoch-seconds"}},
                 "end": {{"action": "set"}}{extra}}}"#
        )
    };
    let (field, expected) = error(&custom(r#"{"flag": "on"}"#, r#", "lastActivity2": 1"#));
    assert_eq!(field, "lastActivity2", "{expected}");
    let (field, _) = error(&custom(r#"{"flag": "on", "status": "st"}"#, ""));
    assert_eq!(field, "active");
    let (field, _) = error(&custom(r#"{"status": "st", "activeValues": ["a"]}"#, ""));
    assert_eq!(field, "active.endedValue");
    let bad_format = custom(r#"{"flag": "on"}"#, "").replace("epoch-seconds", "fortnights");
    let (field, expected) = error(&bad_format);
    assert_eq!(field, "lastActivity.format", "{expected}");
    assert!(expected.contains("iso-8601"), "{expected}");
    // Nothing to tell a touched session from an idle one: refused.
    let (field, _) = error(
        r#"{"layout": "custom", "key": "id", "active": {"flag": "on"},
            "createdAt": {"attribute": "c", "format": "epoch-seconds"},
            "end": {"action": "set"}}"#,
    );
    assert_eq!(field, "lastActivity");
    let (field, _) = error(
        r#"{"layout": "custom", "key": "id", "active": {"exists": true},
            "lastActivity": {"attribute": "la", "format": "epoch-seconds"},
            "end": {"action": "delete"}}"#,
    );
    assert_eq!(field, "active");
}

#[test]
fn a_bad_layout_stops_the_worker_with_the_variable_and_the_field() {
    let vars = |layout: &'static str| {
        move |k: &str| match k {
            "SESSION_REF_KEY" => Some("0123456789abcdef0123".to_string()),
            "SESSIONS_TABLE" => Some("t".to_string()),
            "SESSION_LAYOUT" => Some(layout.to_string()),
            _ => None,
        }
    };
    let e = CommonConfig::from_source(&vars(r#"{"preset": "authjs", "sortkey": "s"}"#))
        .expect_err("refused");
    match &e {
        ConfigError::Invalid { var, reason, .. } => {
            assert_eq!(*var, "SESSION_LAYOUT");
            assert!(reason.contains("sortkey"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let ok = CommonConfig::from_source(&vars("connect-dynamodb")).expect("parses");
    assert_eq!(ok.layout.name(), "connect-dynamodb");
}

/// The migration path off the native `by-sweep` GSI (README, "Leaving by-sweep"): a native table
/// described as a custom layout gets sessionwarden's own sharded due index, so the app no longer
/// writes `sweepAt`. This is that description, as README gives it.
pub const NATIVE_AS_CUSTOM: &str = r#"{
  "layout": "custom",
  "key": "sessionId",
  "user": "userId",
  "tenant": "tenantId",
  "active": {"status": "status", "activeValues": ["ACTIVE"], "endedValue": "TERMINATED"},
  "lastActivity": {"attribute": "lastActivityAt", "format": "epoch-seconds"},
  "createdAt": {"attribute": "createdAt", "format": "epoch-seconds"},
  "absoluteExpiry": {"attribute": "absoluteExpiresAt", "format": "epoch-seconds"},
  "idleTimeout": {"attribute": "idleTimeoutSeconds", "unit": "seconds"},
  "end": {"action": "set", "endedAt": {"attribute": "terminatedAt", "format": "epoch-seconds"}},
  "ip": "ipAddress",
  "userAgent": "userAgent",
  "parent": "parentSessionId"
}"#;

#[test]
fn a_native_table_is_expressible_as_a_custom_layout_with_the_own_due_index() {
    let m = mapped(NATIVE_AS_CUSTOM);
    assert_eq!(
        m.active,
        Active::Status {
            attribute: "status".into(),
            active: vec!["ACTIVE".into()],
            ended: "TERMINATED".into()
        }
    );
    assert_eq!(
        m.last_activity.expect("lastActivity").format,
        TimeFormat::EpochSeconds
    );
    assert_eq!(
        m.idle_timeout.expect("idleTimeout").attribute.as_deref(),
        Some("idleTimeoutSeconds")
    );
    assert!(m.parent.is_some(), "families keep cascading");
    // A non-native layout files its sessions in the own due index (DUE_INDEX_SHARDS, 16).
    let cfg =
        sessionwarden_core::config::CommonConfig::from_source(&sessionwarden_core::fake::vars(&[
            ("SESSION_LAYOUT", NATIVE_AS_CUSTOM),
        ]))
        .unwrap();
    assert_eq!(cfg.index.shards, 16);
    assert!(!matches!(
        cfg.layout,
        sessionwarden_core::layout::Layout::Native
    ));
}
