//! Applies a [`Mapped`] layout to DynamoDB items: reads an item (from a stream image or the
//! table) into the core's canonical [`Image`], tells a session from an item that is not one, and
//! builds the key and the ending write of a session. With `sessionwarden_core::layout`, the only
//! code that knows how a team's items look.
//!
//! Reading is lenient where libraries differ (a time may be a number or an ISO-8601 string;
//! express-session's `sess` may be a JSON string or a map), and strict where it matters: an
//! item that claims to be a session (its key has the layout's prefix, its kind matches) but
//! cannot be read is an error with the attribute named, so the stream worker dead-letters it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue as SdkAv;
use serde_dynamo::AttributeValue as Av;
use sessionwarden_core::change::Image;
use sessionwarden_core::layout::{Active, Mapped, Path, TimeField, TimeFormat, TimeUnit};
use sessionwarden_core::ports::Fence;
use sessionwarden_core::session::{SessionId, Status};

/// An item as the stream delivers it (and as SDK items convert to).
pub type Item = HashMap<String, Av>;

/// What an item is, under the layout.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// Not a session (another kind of item, or a key without the layout's prefix).
    NotSession,
    /// A session.
    Session(Box<Seen>),
}

/// A session item, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// Its ID (with its home, on a composite key).
    pub id: SessionId,
    /// The canonical image.
    pub image: Image,
    /// The fence attribute exactly as stored, for the conditional end.
    pub fence: Fence,
}

/// Converts an SDK item into the layout's item type.
pub fn from_sdk(item: &HashMap<String, SdkAv>) -> Item {
    item.iter()
        .map(|(k, v)| (k.clone(), Av::from(v.clone())))
        .collect()
}

/// The session ID of an item's key (a stream record's `Keys`, or a whole item): `Ok(None)` if
/// the key says the item is not a session.
pub fn id_of(m: &Mapped, keys: &Item) -> Result<Option<SessionId>, String> {
    let raw = match keys.get(&m.id.attribute) {
        Some(Av::S(s)) => s,
        Some(_) => return Err(format!("key {} is not a string (S)", m.id.attribute)),
        None => return Err(format!("key {} is missing", m.id.attribute)),
    };
    let Some(id) = raw.strip_prefix(m.id.prefix.as_str()) else {
        return Ok(None);
    };
    if id.is_empty() {
        return Err(format!("key {} has an empty session ID", m.id.attribute));
    }
    match &m.home {
        None => Ok(Some(SessionId::new(id))),
        Some(h) => match keys.get(&h.attribute) {
            Some(Av::S(home)) if home.starts_with(h.prefix.as_str()) => {
                Ok(Some(SessionId::homed(id, home.clone())))
            }
            Some(Av::S(_)) => Ok(None),
            _ => Err(format!(
                "key {} is missing or not a string (S)",
                h.attribute
            )),
        },
    }
}

/// The table key of a session, or `None` when the layout's key is composite and the ID carries
/// no home (find its items through the layout's ID index then).
pub fn key_of(m: &Mapped, id: &SessionId) -> Option<HashMap<String, SdkAv>> {
    let mut key = HashMap::from([(
        m.id.attribute.clone(),
        SdkAv::S(format!("{}{}", m.id.prefix, id.expose())),
    )]);
    if let Some(h) = &m.home {
        key.insert(h.attribute.clone(), SdkAv::S(id.home()?.to_string()));
    }
    Some(key)
}

/// Reads a whole item at `at` (epoch seconds: a session whose TTL deadline is before `at` has
/// lapsed). `Err` names what could not be read in an item that claims to be a session.
pub fn read(m: &Mapped, item: &Item, at: i64) -> Result<Read, String> {
    let Some(id) = id_of(m, item)? else {
        return Ok(Read::NotSession);
    };
    if let Some((attr, value)) = &m.kind {
        match item.get(attr) {
            Some(Av::S(v)) if v == value => {}
            _ => return Ok(Read::NotSession),
        }
    }
    let time = |f: &Option<TimeField>| -> Result<Option<i64>, String> {
        f.as_ref().map_or(Ok(None), |f| time(item, f))
    };
    let lapses_at = if m.ttl_is_deadline {
        let ttl = m.ttl.as_ref().ok_or("the layout has no ttl")?;
        Some(time(&m.ttl)?.ok_or_else(|| format!("attribute {} is missing", ttl.attribute))?)
    } else {
        None
    };
    let lapsed = lapses_at.is_some_and(|l| l <= at);
    let mut status = match &m.active {
        Active::Exists => Status::Active,
        Active::Flag(attr) => match item.get(attr) {
            Some(Av::Bool(b)) => active(*b),
            Some(Av::N(n)) => active(n.trim() != "0"),
            Some(Av::S(s)) if s == "true" || s == "false" => active(s == "true"),
            Some(_) => return Err(format!("attribute {attr} is not a boolean")),
            None => return Err(format!("attribute {attr} is missing")),
        },
        Active::Status {
            attribute, active, ..
        } => match item.get(attribute) {
            Some(Av::S(s)) if active.contains(s) => Status::Active,
            Some(Av::S(_)) => Status::Terminated,
            _ => return Err(format!("attribute {attribute} is missing or not a string")),
        },
    };
    if lapsed && status == Status::Active {
        status = Status::Expired;
    }
    let idle_timeout_seconds = match &m.idle_timeout {
        None => None,
        Some(t) => {
            let own = match &t.attribute {
                None => None,
                Some(a) => number(item, a)?.map(|v| match t.unit {
                    TimeUnit::Seconds => v,
                    // Saturating: a timeout too long for seconds is as good as none.
                    TimeUnit::Minutes => v.saturating_mul(60),
                }),
            };
            own.or(t.default_seconds)
        }
    };
    let fingerprint = crate::stream_record::fingerprint(item, |k| {
        k != m.id.attribute && m.home.as_ref().is_none_or(|h| k != h.attribute)
    });
    let fence = Fence(match m.fence() {
        None => None,
        Some(f) => match item.get(&f.attribute) {
            Some(Av::N(n)) => Some(format!("N:{n}")),
            Some(Av::S(s)) => Some(format!("S:{s}")),
            _ => None,
        },
    });
    let image = Image {
        user_id: first(item, &m.user)?,
        tenant_id: first(item, &m.tenant)?,
        status: Some(status),
        created_at: time(&m.created_at)?,
        last_activity_at: time(&m.last_activity)?,
        idle_timeout_seconds,
        absolute_expires_at: time(&m.absolute_expiry)?,
        user_agent: opt(item, &m.user_agent)?,
        ip_address: opt(item, &m.ip)?,
        revoke_scope: None,
        termination_reason: None,
        parent_session_id: opt(item, &m.parent)?.map(SessionId::new),
        lapses_at,
        lapsed,
        fingerprint: Some(fingerprint),
    };
    Ok(Read::Session(Box::new(Seen { id, image, fence })))
}

fn active(b: bool) -> Status {
    if b {
        Status::Active
    } else {
        Status::Terminated
    }
}

fn opt(item: &Item, p: &Option<Path>) -> Result<Option<String>, String> {
    p.as_ref().map_or(Ok(None), |p| lookup(item, p))
}

fn first(item: &Item, paths: &[Path]) -> Result<Option<String>, String> {
    for p in paths {
        if let Some(v) = lookup(item, p)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// The value at a path, as a string; `Ok(None)` when absent or null.
fn lookup(item: &Item, p: &Path) -> Result<Option<String>, String> {
    let Some(top) = item.get(&p.attribute) else {
        return Ok(None);
    };
    if p.inner.is_empty() {
        return Ok(scalar(top));
    }
    match top {
        Av::M(m) => {
            let mut cur = Av::M(m.clone());
            for k in &p.inner {
                cur = match cur {
                    Av::M(mut m) => match m.remove(k) {
                        Some(v) => v,
                        None => return Ok(None),
                    },
                    _ => return Ok(None),
                };
            }
            Ok(scalar(&cur).or_else(|| match &cur {
                Av::M(m) => m.get("id").and_then(scalar),
                _ => None,
            }))
        }
        Av::S(json) => {
            let v: serde_json::Value = serde_json::from_str(json)
                .map_err(|e| format!("attribute {} is not JSON: {e}", p.attribute))?;
            let mut cur = &v;
            for k in &p.inner {
                match cur.get(k) {
                    Some(next) => cur = next,
                    None => return Ok(None),
                }
            }
            Ok(json_scalar(cur).or_else(|| cur.get("id").and_then(json_scalar)))
        }
        Av::Null(_) => Ok(None),
        _ => Err(format!(
            "attribute {} is neither a map nor a JSON string",
            p.attribute
        )),
    }
}

fn scalar(v: &Av) -> Option<String> {
    match v {
        Av::S(s) if !s.is_empty() => Some(s.clone()),
        Av::N(n) => Some(n.clone()),
        _ => None,
    }
}

fn json_scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(item: &Item, attr: &str) -> Result<Option<i64>, String> {
    match item.get(attr) {
        None | Some(Av::Null(_)) => Ok(None),
        Some(Av::N(n)) | Some(Av::S(n)) => n
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| Some(f as i64))
            .ok_or_else(|| format!("attribute {attr} = {n:?} is not a number")),
        Some(_) => Err(format!("attribute {attr} is not a number")),
    }
}

/// Reads a time attribute as epoch seconds.
pub fn time(item: &Item, f: &TimeField) -> Result<Option<i64>, String> {
    let bad = |v: &str| format!("attribute {} = {v:?} is not a time", f.attribute);
    let scaled = |x: f64| match f.format {
        TimeFormat::EpochMillis => (x / 1000.0) as i64,
        _ => x as i64,
    };
    match item.get(&f.attribute) {
        None | Some(Av::Null(_)) => Ok(None),
        Some(Av::N(n)) => n
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(|x| Some(scaled(x)))
            .ok_or_else(|| bad(n)),
        Some(Av::S(s)) => match chrono::DateTime::parse_from_rfc3339(s.trim()) {
            Ok(t) => Ok(Some(t.timestamp())),
            Err(_) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(|x| Some(scaled(x)))
                .ok_or_else(|| bad(s)),
        },
        Some(_) => Err(format!("attribute {} is not a time", f.attribute)),
    }
}

/// A time as the layout stores it.
pub fn time_value(format: TimeFormat, at: i64) -> SdkAv {
    match format {
        TimeFormat::EpochSeconds => SdkAv::N(at.to_string()),
        // Saturating: a time past what milliseconds can hold is stored as the largest one.
        TimeFormat::EpochMillis => SdkAv::N(at.saturating_mul(1000).to_string()),
        TimeFormat::Iso8601 => SdkAv::S(
            chrono::DateTime::from_timestamp(at, 0)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
    }
}

/// The fence as a condition value: `N:<n>` or `S:<s>`, as [`read`] wrote it.
pub fn fence_value(raw: &str) -> SdkAv {
    match raw.split_once(':') {
        Some(("N", n)) => SdkAv::N(n.to_string()),
        Some(("S", s)) => SdkAv::S(s.to_string()),
        _ => SdkAv::S(raw.to_string()),
    }
}
