//! `custom` layouts: the JSON a team writes in `SESSION_LAYOUT` to describe any other table, and
//! its checks (see README, "custom"). [`IS_CURRENT_EXAMPLE`] is the worked example.

use serde::Deserialize;

use super::{Active, End, IdleTimeout, KeyPart, LayoutError, Mapped, Path, TimeField};

/// One path or several, tried in order.
#[derive(Deserialize)]
#[serde(untagged)]
enum Paths {
    One(String),
    Many(Vec<String>),
}

impl Paths {
    fn list(&self) -> Vec<Path> {
        match self {
            Paths::One(p) => vec![Path::parse(p)],
            Paths::Many(v) => v.iter().map(|p| Path::parse(p)).collect(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CustomActive {
    #[serde(default)]
    flag: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    active_values: Vec<String>,
    #[serde(default)]
    ended_value: Option<String>,
    #[serde(default)]
    exists: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CustomEnd {
    action: EndAction,
    #[serde(default)]
    ended_at: Option<TimeField>,
}

#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum EndAction {
    Set,
    Delete,
}

/// A `custom` layout as written in `SESSION_LAYOUT`. See README, "Custom layouts".
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Custom {
    /// Must be "custom".
    layout: CustomTag,
    key: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    user: Option<Paths>,
    #[serde(default)]
    tenant: Option<Paths>,
    active: CustomActive,
    #[serde(default)]
    last_activity: Option<TimeField>,
    #[serde(default)]
    created_at: Option<TimeField>,
    #[serde(default)]
    absolute_expiry: Option<TimeField>,
    #[serde(default)]
    idle_timeout: Option<IdleTimeout>,
    #[serde(default)]
    ttl: Option<TimeField>,
    #[serde(default)]
    ttl_is_deadline: bool,
    end: CustomEnd,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
    #[serde(default)]
    parent: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum CustomTag {
    Custom,
}

impl Custom {
    pub(super) fn into_mapped(self) -> Result<Mapped, LayoutError> {
        let _ = self.layout;
        let a = self.active;
        let active = match (a.flag, a.status, a.exists) {
            (Some(f), None, false) => Active::Flag(f),
            (None, Some(s), false) => {
                if a.active_values.is_empty() {
                    return Err(LayoutError::new(
                        "active.activeValues",
                        "at least one status value that means active",
                    ));
                }
                let ended = a.ended_value.ok_or_else(|| {
                    LayoutError::new("active.endedValue", "the status value an ended session has")
                })?;
                Active::Status {
                    attribute: s,
                    active: a.active_values,
                    ended,
                }
            }
            (None, None, true) => Active::Exists,
            _ => {
                return Err(LayoutError::new(
                    "active",
                    "exactly one of {\"flag\": attr}, {\"status\": attr, \"activeValues\": [..], \"endedValue\": v} or {\"exists\": true}",
                ))
            }
        };
        if let Some(t) = &self.idle_timeout {
            if t.attribute.is_none() && t.default_seconds.is_none() {
                return Err(LayoutError::new(
                    "idleTimeout",
                    "an attribute, a defaultSeconds, or both",
                ));
            }
            if t.default_seconds.is_some_and(|s| s <= 0) {
                return Err(LayoutError::new(
                    "idleTimeout.defaultSeconds",
                    "a positive number of seconds",
                ));
            }
        }
        let end = match self.end.action {
            EndAction::Delete => End::Delete,
            EndAction::Set => End::Set {
                ended_at: self.end.ended_at,
            },
        };
        Ok(Mapped {
            name: "custom".into(),
            id: KeyPart {
                attribute: self.key,
                prefix: self.prefix,
            },
            home: None,
            home_is_user: false,
            id_index: None,
            kind: None,
            user: self.user.map(|p| p.list()).unwrap_or_default(),
            tenant: self.tenant.map(|p| p.list()).unwrap_or_default(),
            active,
            last_activity: self.last_activity,
            created_at: self.created_at,
            absolute_expiry: self.absolute_expiry,
            idle_timeout: self.idle_timeout,
            ttl: self.ttl,
            ttl_is_deadline: self.ttl_is_deadline,
            end,
            ip: self.ip.as_deref().map(Path::parse),
            user_agent: self.user_agent.as_deref().map(Path::parse),
            parent: self.parent.as_deref().map(Path::parse),
        })
    }
}

/// The `custom` layout of the `{id, userId, isCurrent, lastActivity, sessionTimeout}` table from
/// the incident reports, as JSON: the README's worked example, and a test fixture.
pub const IS_CURRENT_EXAMPLE: &str = r#"{
  "layout": "custom",
  "key": "id",
  "user": "userId",
  "active": {"flag": "isCurrent"},
  "lastActivity": {"attribute": "lastActivity", "format": "iso-8601"},
  "idleTimeout": {"attribute": "sessionTimeout", "unit": "minutes"},
  "end": {"action": "set", "endedAt": {"attribute": "expiredAt", "format": "iso-8601"}},
  "ip": "ipAddress"
}"#;
