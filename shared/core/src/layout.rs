//! Session layouts: how a team's table stores a session. A layout is a description (which
//! attribute holds the ID, the user, the deadlines, what "active" and "end" mean), chosen with
//! `SESSION_LAYOUT`: a preset name (`native`, `connect-dynamodb`, `authjs`), or a JSON object
//! (a preset with options, or a `custom` layout). Everything is checked at startup, and an error
//! names the field and what was expected: a worker never starts on a half-understood layout.
//!
//! This module only describes; `sessionwarden-aws`'s `layout` module applies the description to
//! items. Together they are the only code that knows how a team's items look.

use serde::Deserialize;

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

/// Options of the `connect-dynamodb` preset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectOptions {
    /// Hash key attribute (connect-dynamodb's `hashKey`, default `id`).
    #[serde(default = "connect_key")]
    pub hash_key: String,
    /// Prefix of the key (connect-dynamodb's `prefix`, default `sess:`).
    #[serde(default = "connect_prefix")]
    pub prefix: String,
    /// Paths of the user inside `sess`, tried in order.
    #[serde(default = "connect_user_paths")]
    pub user_paths: Vec<String>,
    /// Path of the tenant inside `sess`, if any.
    #[serde(default)]
    pub tenant_path: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            hash_key: connect_key(),
            prefix: connect_prefix(),
            user_paths: connect_user_paths(),
            tenant_path: None,
        }
    }
}

fn connect_key() -> String {
    "id".into()
}
fn connect_prefix() -> String {
    "sess:".into()
}
fn connect_user_paths() -> Vec<String> {
    vec!["user.id".into(), "userId".into(), "passport.user".into()]
}

/// Options of the `authjs` preset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthjsOptions {
    /// Partition key (the adapter's `partitionKey`, default `pk`).
    #[serde(default = "authjs_pk")]
    pub partition_key: String,
    /// Sort key (default `sk`).
    #[serde(default = "authjs_sk")]
    pub sort_key: String,
    /// The GSI over the session token (default `GSI1`, partition key `GSI1PK`).
    #[serde(default = "authjs_index")]
    pub index_name: String,
    /// The partition key of that GSI (default `GSI1PK`).
    #[serde(default = "authjs_index_pk")]
    pub index_partition_key: String,
}

impl Default for AuthjsOptions {
    fn default() -> Self {
        AuthjsOptions {
            partition_key: authjs_pk(),
            sort_key: authjs_sk(),
            index_name: authjs_index(),
            index_partition_key: authjs_index_pk(),
        }
    }
}

fn authjs_pk() -> String {
    "pk".into()
}
fn authjs_sk() -> String {
    "sk".into()
}
fn authjs_index() -> String {
    "GSI1".into()
}
fn authjs_index_pk() -> String {
    "GSI1PK".into()
}

/// The express-session store of connect-dynamodb: `id = sess:<sid>`, `expires` in epoch
/// seconds, `sess` the session as a JSON string (a map in old versions). Active while the item
/// exists and `expires` is ahead; ended by a conditional delete.
pub fn connect_dynamodb(o: &ConnectOptions) -> Mapped {
    let in_sess = |p: &str| Path::parse(&format!("sess.{p}"));
    Mapped {
        name: "connect-dynamodb".into(),
        id: KeyPart {
            attribute: o.hash_key.clone(),
            prefix: o.prefix.clone(),
        },
        home: None,
        home_is_user: false,
        id_index: None,
        kind: None,
        user: o.user_paths.iter().map(|p| in_sess(p)).collect(),
        tenant: o.tenant_path.iter().map(|p| in_sess(p)).collect(),
        active: Active::Exists,
        last_activity: None,
        created_at: None,
        absolute_expiry: None,
        idle_timeout: None,
        ttl: Some(TimeField {
            attribute: "expires".into(),
            format: TimeFormat::EpochSeconds,
        }),
        ttl_is_deadline: true,
        end: End::Delete,
        ip: None,
        user_agent: None,
        parent: None,
    }
}

/// The Auth.js (NextAuth) DynamoDB adapter's single table: session items are
/// `pk = USER#<userId>`, `sk = SESSION#<sessionToken>`, `type = SESSION`, `expires` in epoch
/// seconds (fractional) or ISO-8601. Users, accounts and verification tokens share the table and
/// are not sessions.
pub fn authjs(o: &AuthjsOptions) -> Mapped {
    Mapped {
        name: "authjs".into(),
        id: KeyPart {
            attribute: o.sort_key.clone(),
            prefix: "SESSION#".into(),
        },
        home: Some(KeyPart {
            attribute: o.partition_key.clone(),
            prefix: "USER#".into(),
        }),
        home_is_user: true,
        id_index: Some(IdIndex {
            name: o.index_name.clone(),
            key: KeyPart {
                attribute: o.index_partition_key.clone(),
                prefix: "SESSION#".into(),
            },
        }),
        kind: Some(("type".into(), "SESSION".into())),
        user: vec![Path::parse("userId")],
        tenant: vec![],
        active: Active::Exists,
        last_activity: None,
        created_at: None,
        absolute_expiry: None,
        idle_timeout: None,
        ttl: Some(TimeField {
            attribute: "expires".into(),
            format: TimeFormat::EpochSeconds,
        }),
        ttl_is_deadline: true,
        end: End::Delete,
        ip: None,
        user_agent: None,
        parent: None,
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

#[derive(Deserialize)]
#[serde(tag = "preset", rename_all = "kebab-case")]
enum Preset {
    Native,
    ConnectDynamodb(ConnectOptions),
    Authjs(AuthjsOptions),
}

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
struct Custom {
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
    fn into_mapped(self) -> Result<Mapped, LayoutError> {
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
