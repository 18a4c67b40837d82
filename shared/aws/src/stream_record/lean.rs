//! The one-pass reader of [`super::read_native`] and [`super::parse_raw`]: a native record read
//! from its text, borrowing its strings. `None` whenever the record is anything but a clean native
//! record whose images are active (or keys only), so that the tree path decides it. A plain touch
//! ([`is_plain_touch`]) is decided here, from the borrowed text, without building a change.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use sessionwarden_core::anomaly::{is_plain_touch, Facets};
use sessionwarden_core::change::{Change, ChangeKind, Image, SeqNo};
use sessionwarden_core::expiry::{ExpiryPolicy, SessionClock};
use sessionwarden_core::session::{attr, SessionId, Status};
use sessionwarden_core::stream::Read;

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(rename = "eventName", borrow)]
    event_name: Cow<'a, str>,
    #[serde(rename = "userIdentity", borrow, default)]
    user_identity: Option<MapOnly<Identity<'a>>>,
    #[serde(borrow)]
    dynamodb: MapOnly<Ddb<'a>>,
}

/// `T` read only from a JSON object, as the tree reader sees it: serde's derived structs also
/// take an array of their fields, which the tree reader never reads as one.
struct MapOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = MapOnly<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, m: M) -> Result<MapOnly<T>, M::Error> {
                T::deserialize(MapAccessDeserializer::new(m)).map(MapOnly)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Identity<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "principalId", borrow, default)]
    principal: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Ddb<'a> {
    #[serde(rename = "SequenceNumber", borrow)]
    seq: Cow<'a, str>,
    #[serde(rename = "ApproximateCreationDateTime", default)]
    at: Option<serde_json::Number>,
    #[serde(rename = "Keys", borrow)]
    keys: Keys<'a>,
    #[serde(rename = "NewImage", borrow, default)]
    new: Option<Item<'a>>,
    #[serde(rename = "OldImage", borrow, default)]
    old: Option<Item<'a>>,
}

/// An attribute value as the rules can use it, kept small: an item holds a dozen, and a record
/// is moved whole a few times as it is built.
enum Val<'a> {
    /// A string (`S`).
    S(Cow<'a, str>),
    /// A number (`N`), as written.
    N(Cow<'a, str>),
    /// `NULL`.
    Null,
    /// Any other type, or not exactly one member.
    Other,
}

/// As the tree reader reads an attribute value (the path for values [`Val::plain`] declines):
/// an object of exactly one member, `S` or `N` with a string, or `NULL` with anything;
/// everything else is [`Val::Other`]. (A repeated type name, which the tree reader reads as its
/// last value, is `Other` here too: the reader then leaves the record to the tree path.)
impl<'de: 'a, 'a> Deserialize<'de> for Val<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Val<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DynamoDB attribute value")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Val<'a>, M::Error> {
                let Some(Name(tag)) = m.next_key::<Name<'a>>()? else {
                    return Ok(Val::Other);
                };
                let val = match tag.as_ref() {
                    // A string, as the tree sees it (escapes resolved); anything else is no S or N.
                    "S" | "N" => match (m.next_value::<serde_json::Value>()?, tag.as_ref()) {
                        (serde_json::Value::String(v), "S") => Val::S(Cow::Owned(v)),
                        (serde_json::Value::String(v), _) => Val::N(Cow::Owned(v)),
                        _ => Val::Other,
                    },
                    "NULL" => {
                        m.next_value::<IgnoredAny>()?;
                        Val::Null
                    }
                    _ => {
                        m.next_value::<IgnoredAny>()?;
                        Val::Other
                    }
                };
                if m.next_key::<IgnoredAny>()?.is_none() {
                    return Ok(val);
                }
                m.next_value::<IgnoredAny>()?;
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Val::Other)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> Val<'a> {
    /// An attribute value from its text. A stream record's values are one-type objects, and
    /// nearly all are a plain `{"S":"…"}` or `{"N":"…"}` (spaces allowed): those are read
    /// straight from the text, borrowed. Anything else (an escape, another type, several types)
    /// goes through serde. The text is a valid JSON value: the event's reader checked it.
    fn read(raw: &'a RawValue) -> Val<'a> {
        let text = raw.get();
        Val::plain(text).unwrap_or_else(|| serde_json::from_str::<Val>(text).unwrap_or(Val::Other))
    }

    /// `{"S":"…"}` or `{"N":"…"}` with no escape in the string, else `None`.
    fn plain(text: &'a str) -> Option<Val<'a>> {
        let rest = text.strip_prefix('{')?.trim_start();
        let (string, rest) = match rest.strip_prefix("\"S\"") {
            Some(r) => (true, r),
            None => (false, rest.strip_prefix("\"N\"")?),
        };
        let rest = rest.trim_start().strip_prefix(':')?.trim_start();
        let body = rest.strip_prefix('"')?.strip_suffix('}')?.trim_end();
        let body = body.strip_suffix('"')?;
        // A quote left inside means a second member; a backslash, an escape.
        if body.contains(['"', '\\']) {
            return None;
        }
        let v = Cow::Borrowed(body);
        Some(if string { Val::S(v) } else { Val::N(v) })
    }
}

/// A record's `Keys`: the session ID is all the native layout reads.
struct Keys<'a>(Option<Val<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Keys<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Keys<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DynamoDB key")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Keys<'a>, M::Error> {
                let mut key = None;
                while let Some(Name(k)) = m.next_key::<Name<'a>>()? {
                    if k == attr::SESSION_ID {
                        key = Some(Val::read(m.next_value::<&'a RawValue>()?));
                    } else {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Keys(key))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The attributes the native layout reads from an image, in slot order (the key is not
/// among them: it is in every image, and read from `Keys`).
const NAMES: [&str; 12] = [
    attr::USER_ID,
    attr::TENANT_ID,
    attr::STATUS,
    attr::CREATED_AT,
    attr::LAST_ACTIVITY_AT,
    attr::IDLE_TIMEOUT_SECONDS,
    attr::ABSOLUTE_EXPIRES_AT,
    attr::USER_AGENT,
    attr::IP_ADDRESS,
    attr::REVOKE_SCOPE,
    attr::TERMINATION_REASON,
    attr::PARENT_SESSION_ID,
];

/// The slot of an attribute the native layout reads.
fn slot(name: &str) -> Option<usize> {
    NAMES.iter().position(|n| *n == name)
}

/// An item's attributes, one slot per name the native layout reads; the others are skipped
/// unread (no allocation, no hashing). As in a JSON object read into a map, a repeated name
/// means its last value.
struct Item<'a> {
    slots: [Option<Val<'a>>; NAMES.len()],
    /// Any attribute at all.
    any: bool,
    /// Only the key (or nothing): a keys-only image.
    keys_only: bool,
}

impl<'a> Item<'a> {
    fn get(&self, name: &str) -> Option<&Val<'a>> {
        self.slots[slot(name)?].as_ref()
    }
}

/// An attribute name, borrowed from the record's text unless it has escapes.
#[derive(Deserialize)]
struct Name<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Item<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Attrs<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Attrs<'a> {
            type Value = Item<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DynamoDB item")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Item<'a>, M::Error> {
                let mut item = Item {
                    slots: Default::default(),
                    any: false,
                    keys_only: true,
                };
                while let Some(Name(k)) = m.next_key::<Name<'a>>()? {
                    item.any = true;
                    item.keys_only &= k == attr::SESSION_ID;
                    match slot(&k) {
                        Some(i) => item.slots[i] = Some(Val::read(m.next_value::<&'a RawValue>()?)),
                        None => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(item)
            }
        }
        d.deserialize_map(Attrs(std::marker::PhantomData))
    }
}

/// Reads a clean native record: a plain touch as [`Read::Quiet`] when `policy` is given (the
/// rules' own test, on borrowed text), anything else clean as a change.
pub(super) fn read(
    raw: &serde_json::value::RawValue,
    policy: Option<&ExpiryPolicy>,
) -> Option<Read> {
    let MapOnly(r) = serde_json::from_str::<MapOnly<Record>>(raw.get()).ok()?;
    let MapOnly(d) = r.dynamodb;
    if d.seq.is_empty() {
        return None;
    }
    let kind = super::kind_of(&r.event_name)?;
    let at = match &d.at {
        None => 0,
        Some(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))?,
    };
    let present = |i: &Option<Item>| i.as_ref().is_some_and(|m| m.any);
    match kind {
        ChangeKind::Modify if !present(&d.old) || !present(&d.new) => return None,
        ChangeKind::Insert if !present(&d.new) => return None,
        _ => {}
    }
    let session_id = match d.keys.0 {
        Some(Val::S(s)) if !s.is_empty() => s,
        _ => return None,
    };
    let old = facets(d.old.as_ref())?;
    let new = facets(d.new.as_ref())?;
    if let (ChangeKind::Modify, Some(policy), Some(o), Some(n)) = (kind, policy, &old, &new) {
        if is_plain_touch(o, n, policy) {
            return Some(Read::Quiet);
        }
    }
    let by_ttl = r.user_identity.is_some_and(|MapOnly(u)| {
        u.kind.as_deref() == Some("Service") && u.principal.as_deref() == Some(super::TTL_PRINCIPAL)
    });
    Some(Read::Change(Box::new(Change {
        seq: SeqNo(d.seq.into_owned()),
        kind,
        session_id: SessionId::new(session_id.as_ref()),
        old: old.and_then(|_| image(d.old.as_ref())),
        new: new.and_then(|_| image(d.new.as_ref())),
        by_ttl,
        at,
    })))
}

/// `Some(None)`: no image, or keys only. `Some(Some(..))`: an active image whose every attribute
/// has the type the rules expect. `None`: anything else (an ended image, a type the rules do not
/// expect), for the tree path.
fn facets<'i>(item: Option<&'i Item>) -> Option<Option<Facets<'i>>> {
    let Some(item) = item.filter(|i| !i.keys_only) else {
        return Some(None);
    };
    // Ended images carry the fingerprint that only the tree path computes.
    if s(item, attr::STATUS)?? != Status::Active.as_str() {
        return None;
    }
    for name in [
        attr::REVOKE_SCOPE,
        attr::TERMINATION_REASON,
        attr::PARENT_SESSION_ID,
    ] {
        s(item, name)?;
    }
    Some(Some(Facets {
        user_id: s(item, attr::USER_ID)?,
        tenant_id: s(item, attr::TENANT_ID)?,
        status: Some(Status::Active),
        user_agent: s(item, attr::USER_AGENT)?,
        ip_address: s(item, attr::IP_ADDRESS)?,
        clock: SessionClock {
            created_at: n(item, attr::CREATED_AT)?,
            last_activity_at: n(item, attr::LAST_ACTIVITY_AT)?,
            idle_timeout_seconds: n(item, attr::IDLE_TIMEOUT_SECONDS)?,
            absolute_expires_at: n(item, attr::ABSOLUTE_EXPIRES_AT)?,
            lapses_at: None,
        },
        lapsed: false,
    }))
}

/// The owned image of an item [`facets`] accepted as active.
fn image(item: Option<&Item>) -> Option<Image> {
    let item = item?;
    let s = |name: &str| s(item, name).map(|v| v.map(String::from)).ok_or(());
    let n = |name: &str| n(item, name).ok_or(());
    super::native_image(Status::Active, s, n, None).ok()
}

/// A string attribute: `Some(None)` when absent or NULL, `None` when of another type.
fn s<'i>(item: &'i Item, name: &str) -> Option<Option<&'i str>> {
    match item.get(name) {
        None | Some(Val::Null) => Some(None),
        Some(Val::S(v)) => Some(Some(v.as_ref())),
        Some(_) => None,
    }
}

/// A number attribute, as the tree path reads it: `None` when of another type or unreadable.
fn n(item: &Item, name: &str) -> Option<Option<i64>> {
    match item.get(name) {
        None | Some(Val::Null) => Some(None),
        Some(Val::N(v)) => super::number(name, v).ok().map(Some),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(v: Val) -> String {
        match v {
            Val::S(s) => format!("S {s}"),
            Val::N(n) => format!("N {n}"),
            Val::Null => "NULL".into(),
            Val::Other => "other".into(),
        }
    }

    /// A value reads as the tree reader reads it (plainly where it can, through serde otherwise),
    /// or is declined.
    #[test]
    fn a_plain_value_reads_as_serde_reads_it() {
        let cases = [
            (r#"{"S":"abc"}"#, true),
            (r#"{"S": "abc"}"#, true),
            (r#"{ "S" : "a b " }"#, true),
            (r#"{"S":""}"#, true),
            (r#"{"N":"1799997213"}"#, true),
            (r#"{"N": "-1.5e3"}"#, true),
            (r#"{"S":"Mozilla/5.0 (X11; Linux x86_64) ü ✓"}"#, true),
            (r#"{"S":"quote \" inside"}"#, false),
            (r#"{"S":"slash \/ escaped"}"#, false),
            (r#"{"S":"tab \t"}"#, false),
            (r#"{"S":"a","N":"1"}"#, false),
            (r#"{"N":"1","S":"a"}"#, false),
            (r#"{"NULL":true}"#, false),
            (r#"{"BOOL":false}"#, false),
            (r#"{"SS":["a","b"]}"#, false),
            (r#"{"M":{"S":{"S":"x"}}}"#, false),
            (r#"{}"#, false),
            (r#"{"S":"ua","BOOL":true}"#, false),
            (r#"{"S":null,"N":"5"}"#, false),
            (r#"{"S":null}"#, false),
            (r#"{"S":5}"#, false),
            (r#"{"NULL":"anything"}"#, false),
            (r#"["ua"]"#, false),
            (r#"{"S":"a","S":"b"}"#, false),
            (r#"{"S":"\u00e9 escaped"}"#, false),
        ];
        for (text, plain) in cases {
            let repeated = text.matches("\"S\"").count() > 1;
            let raw: &RawValue = serde_json::from_str(text).unwrap();
            assert_eq!(Val::plain(raw.get()).is_some(), plain, "{text}");
            let tree: serde_json::Value = serde_json::from_str(text).unwrap();
            let by_tree = match super::super::native::json_attr(&tree) {
                super::super::native::Attr::S(v) => format!("S {v}"),
                super::super::native::Attr::N(v) => format!("N {v}"),
                super::super::native::Attr::Null => "NULL".into(),
                super::super::native::Attr::Other => "other".into(),
            };
            let read = shown(Val::read(raw));
            // Equal to the tree's reading, or declined (the reader then leaves the record to the
            // tree path): only a repeated type name is declined.
            assert!(
                read == by_tree || (read == "other" && repeated),
                "{text}: {read} vs {by_tree}"
            );
        }
    }
}
