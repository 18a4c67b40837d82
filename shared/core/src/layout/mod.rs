//! Session layouts: how a team's table stores a session. A layout is a description (which
//! attribute holds the ID, the user, the deadlines, what "active" and "end" mean), chosen with
//! `SESSION_LAYOUT`: a preset name (`native`, `connect-dynamodb`, `authjs`), or a JSON object
//! (a preset with options, or a `custom` layout). Everything is checked at startup, and an error
//! names the field and what was expected: a worker never starts on a half-understood layout.
//!
//! This module only describes; `sessionwarden-aws`'s `layout` module applies the description to
//! items. Together they are the only code that knows how a team's items look.

use serde::Deserialize;

use custom::Custom;
use presets::Preset;

/// The layout a deployment runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// sessionwarden's own table (see README, "The sessions table"): status, GSIs, `sweepAt`.
    Native,
    /// Any other table, read and written through a [`Mapped`] description.
    Mapped(Box<Mapped>),
}

impl Layout {
    /// The layout's name, for logs and metrics: `native`, `connect-dynamodb`, `authjs`, `custom`.
    pub fn name(&self) -> &str {
        match self {
            Layout::Native => "native",
            Layout::Mapped(m) => &m.name,
        }
    }

    /// Parses `SESSION_LAYOUT`: a preset name, or a JSON object.
    pub fn parse(raw: &str) -> Result<Layout, LayoutError> {
        let raw = raw.trim();
        if !raw.starts_with('{') {
            return match raw {
                "" | "native" => Ok(Layout::Native),
                "connect-dynamodb" => Ok(Layout::Mapped(Box::new(connect_dynamodb(
                    &ConnectOptions::default(),
                )))),
                "authjs" => Ok(Layout::Mapped(Box::new(authjs(&AuthjsOptions::default())))),
                other => Err(LayoutError::new(
                    "SESSION_LAYOUT",
                    format!("native, connect-dynamodb, authjs or a JSON object, not {other:?}"),
                )),
            };
        }
        let value: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| LayoutError::new("SESSION_LAYOUT", format!("valid JSON ({e})")))?;
        let mapped = if value.get("preset").is_some() {
            match typed::<Preset>(value)? {
                Preset::Native => return Ok(Layout::Native),
                Preset::ConnectDynamodb(o) => connect_dynamodb(&o),
                Preset::Authjs(o) => authjs(&o),
            }
        } else if value.get("layout").and_then(|l| l.as_str()) == Some("custom") {
            typed::<Custom>(value)?.into_mapped()?
        } else {
            return Err(LayoutError::new(
                "SESSION_LAYOUT",
                "a JSON object with \"preset\" (native, connect-dynamodb, authjs) or \"layout\": \"custom\"",
            ));
        };
        mapped.validate()?;
        Ok(Layout::Mapped(Box::new(mapped)))
    }
}

/// A layout that cannot be used, with the field at fault and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session layout field {field}: {expected}")]
pub struct LayoutError {
    /// The field (a JSON path inside `SESSION_LAYOUT`).
    pub field: String,
    /// What was expected.
    pub expected: String,
}

impl LayoutError {
    fn new(field: &str, expected: impl Into<String>) -> Self {
        LayoutError {
            field: field.to_string(),
            expected: expected.into(),
        }
    }
}

/// A key attribute and the prefix its value carries (`sess:`, `SESSION#`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPart {
    /// The attribute.
    pub attribute: String,
    /// The prefix before the value proper; an item whose key lacks it is not a session.
    pub prefix: String,
}

/// Where a value sits in an item: an attribute, then (optionally) a path inside it. The
/// attribute may be a map, or a string that holds JSON (express-session's `sess`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// The top-level attribute.
    pub attribute: String,
    /// Keys inside it.
    pub inner: Vec<String>,
}

impl Path {
    /// Parses `a.b.c`.
    pub fn parse(dotted: &str) -> Path {
        let mut parts = dotted.split('.').map(str::to_string);
        Path {
            attribute: parts.next().unwrap_or_default(),
            inner: parts.collect(),
        }
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.attribute)?;
        for k in &self.inner {
            write!(f, ".{k}")?;
        }
        Ok(())
    }
}

/// How a time is stored. Reading is lenient (a number is scaled by the format, a string is
/// ISO-8601 or a number); writing uses the format exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeFormat {
    /// A number of seconds since the epoch (fractions allowed).
    EpochSeconds,
    /// A number of milliseconds since the epoch.
    EpochMillis,
    /// An ISO-8601 / RFC 3339 string, such as `2026-11-20T10:00:00Z`.
    #[serde(rename = "iso-8601", alias = "iso8601")]
    Iso8601,
}

/// A time attribute and its format.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeField {
    /// The attribute.
    pub attribute: String,
    /// Its format.
    pub format: TimeFormat,
}

/// The unit of an idle-timeout attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Seconds.
    Seconds,
    /// Minutes.
    Minutes,
}

/// The idle timeout: per session from an attribute, else a default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdleTimeout {
    /// The attribute, if sessions carry their own timeout.
    #[serde(default)]
    pub attribute: Option<String>,
    /// Its unit (default seconds).
    #[serde(default = "seconds")]
    pub unit: TimeUnit,
    /// Timeout in seconds for sessions without the attribute; absent: `DEFAULT_IDLE_TIMEOUT_SECONDS`.
    #[serde(default, rename = "defaultSeconds")]
    pub default_seconds: Option<i64>,
}

fn seconds() -> TimeUnit {
    TimeUnit::Seconds
}

/// What "active" means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Active {
    /// The item exists and its TTL deadline is in the future (connect-dynamodb, Auth.js).
    Exists,
    /// A boolean attribute is true (`isCurrent`).
    Flag(String),
    /// A string attribute holds one of the active values.
    Status {
        /// The attribute.
        attribute: String,
        /// Values that mean active.
        active: Vec<String>,
        /// The value an ending write stores.
        ended: String,
    },
}

/// How sessionwarden ends a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Delete the item, conditional on its fence attribute being unchanged.
    Delete,
    /// Set the flag to false (or the status to its ended value), and stamp `ended_at`.
    Set {
        /// When it ended, if the table records it.
        ended_at: Option<TimeField>,
    },
}

/// A GSI whose partition key is the session ID (Auth.js's `GSI1`): finds a session's items
/// from its ID alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdIndex {
    /// The index name.
    pub name: String,
    /// Its partition key, with the prefix before the ID.
    pub key: KeyPart,
}

/// A non-native layout, whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// `connect-dynamodb`, `authjs` or `custom`.
    pub name: String,
    /// The key attribute that holds the session ID.
    pub id: KeyPart,
    /// The other key attribute, when the key is composite (Auth.js's `pk = USER#<user>`): its
    /// raw value is part of the item's address.
    pub home: Option<KeyPart>,
    /// True when the home key is `<home prefix><userId>`: a user's sessions share one partition.
    pub home_is_user: bool,
    /// An index from session ID to items.
    pub id_index: Option<IdIndex>,
    /// `(attribute, value)` that marks an item as a session; other items are not sessions.
    pub kind: Option<(String, String)>,
    /// Where the user is, tried in order. No user: the session is anonymous.
    pub user: Vec<Path>,
    /// Where the tenant is, tried in order.
    pub tenant: Vec<Path>,
    /// What "active" means.
    pub active: Active,
    /// Last activity.
    pub last_activity: Option<TimeField>,
    /// Creation time.
    pub created_at: Option<TimeField>,
    /// Absolute expiry.
    pub absolute_expiry: Option<TimeField>,
    /// Idle timeout.
    pub idle_timeout: Option<IdleTimeout>,
    /// The TTL attribute.
    pub ttl: Option<TimeField>,
    /// True when the TTL is the session's own deadline (connect-dynamodb's and Auth.js's
    /// `expires`), not a retention after the end.
    pub ttl_is_deadline: bool,
    /// How sessionwarden ends a session.
    pub end: End,
    /// Client IP.
    pub ip: Option<Path>,
    /// Client user agent.
    pub user_agent: Option<Path>,
    /// Parent session ID (families).
    pub parent: Option<Path>,
}

impl Mapped {
    /// The attribute whose unchanged value proves that a session was not touched since it was
    /// read: last activity, else the TTL deadline.
    pub fn fence(&self) -> Option<&TimeField> {
        self.last_activity
            .as_ref()
            .or(self.ttl.as_ref().filter(|_| self.ttl_is_deadline))
    }

    fn validate(&self) -> Result<(), LayoutError> {
        let empty = |s: &str| s.trim().is_empty();
        if empty(&self.id.attribute) {
            return Err(LayoutError::new("key", "a non-empty attribute name"));
        }
        if matches!(self.active, Active::Exists) && !(self.ttl.is_some() && self.ttl_is_deadline) {
            return Err(LayoutError::new(
                "active",
                "\"exists\" needs a ttl that is the session's deadline (\"ttlIsDeadline\": true)",
            ));
        }
        if matches!(self.active, Active::Exists) && matches!(self.end, End::Set { .. }) {
            return Err(LayoutError::new(
                "end",
                "\"delete\": with \"active\": \"exists\" there is no flag or status to set",
            ));
        }
        if self.fence().is_none() {
            return Err(LayoutError::new(
                "lastActivity",
                "a last-activity attribute, or a ttl that is the deadline: without one, cleanup cannot tell a touched session from an idle one",
            ));
        }
        if self.last_activity.is_none() && self.created_at.is_none() && !self.ttl_is_deadline {
            return Err(LayoutError::new(
                "lastActivity",
                "a deadline source: lastActivity, createdAt or a ttl that is the deadline",
            ));
        }
        Ok(())
    }
}

/// Deserializes `value` as `T`; an error names the JSON path of the field at fault.
fn typed<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, LayoutError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        // An unknown field is reported on its container: name the field itself.
        let unknown = message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
            .map(|f| match path.as_str() {
                "." => f.to_string(),
                p if p == f || p.ends_with(&format!(".{f}")) => p.to_string(),
                p => format!("{p}.{f}"),
            });
        let field = match (unknown, path.as_str()) {
            (Some(f), _) => f,
            (None, ".") => "SESSION_LAYOUT".to_string(),
            (None, p) => p.to_string(),
        };
        LayoutError::new(&field, message)
    })
}

mod custom;
mod presets;

pub use custom::IS_CURRENT_EXAMPLE;
pub use presets::{authjs, connect_dynamodb, AuthjsOptions, ConnectOptions};
