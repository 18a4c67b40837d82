//! Parses one record of a DynamoDB stream event, exactly as Lambda delivers it, into a
//! [`Change`]. Every way a record can be malformed (not a stream record, unknown event name,
//! missing or non-string key, wrong attribute type, unknown status, MODIFY without its old image)
//! becomes a [`Malformed`] that carries the sequence number when there is one, so the caller can
//! dead-letter it and move on instead of blocking the shard.

use std::hash::{Hash, Hasher};

use aws_lambda_events::event::dynamodb::EventRecord;
use serde::Deserialize;
use serde_dynamo::AttributeValue as Av;

use sessionwarden_core::change::{Change, ChangeKind, Image, Malformed, SeqNo};
use sessionwarden_core::layout::{Layout, Mapped};
use sessionwarden_core::session::{attr, SessionId, Status};

use crate::layout::{self, Read};

/// The principal of DynamoDB's TTL deletes.
const TTL_PRINCIPAL: &str = "dynamodb.amazonaws.com";

/// Parses one raw record through the layout: `Ok(None)` for an item that is not a session under
/// it (skipped and counted, never dead-lettered).
pub fn parse(layout: &Layout, raw: &serde_json::Value) -> Result<Option<Change>, Malformed> {
    match layout {
        Layout::Native => parse_record(raw).map(Some),
        Layout::Mapped(m) => parse_mapped(m, raw),
    }
}

/// Parses one record from its raw JSON text, as the worker holds it. On the native layout a
/// clean record of active sessions (the common case: a touch, a login) is read in one pass,
/// borrowing its strings, with no tree and no intermediate record type. Anything else (another
/// layout, an ended image, a malformation) goes the way of [`parse`], from a parsed tree, with
/// exactly its results.
pub fn parse_raw(
    layout: &Layout,
    raw: &serde_json::value::RawValue,
) -> Result<Option<Change>, Malformed> {
    if matches!(layout, Layout::Native) {
        if let Some(c) = lean::change(raw) {
            return Ok(Some(c));
        }
    }
    let tree: serde_json::Value = serde_json::from_str(raw.get()).map_err(|e| Malformed {
        seq: None,
        reason: format!("not a DynamoDB stream record: not JSON: {e}"),
    })?;
    parse(layout, &tree)
}

/// The one-pass reader of [`parse_raw`]: `None` whenever the record is anything but a clean
/// native record whose images are active (or keys only), so that the tree path decides it.
mod lean {
    use std::borrow::Cow;
    use std::collections::HashMap;

    use serde::Deserialize;
    use sessionwarden_core::change::{Change, ChangeKind, Image, SeqNo};
    use sessionwarden_core::session::{attr, SessionId, Status};

    #[derive(Deserialize)]
    struct Record<'a> {
        #[serde(rename = "eventName", borrow)]
        event_name: Cow<'a, str>,
        #[serde(rename = "userIdentity", borrow, default)]
        user_identity: Option<Identity<'a>>,
        #[serde(borrow)]
        dynamodb: Ddb<'a>,
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
        keys: HashMap<Cow<'a, str>, Attr<'a>>,
        #[serde(rename = "NewImage", borrow, default)]
        new: Option<HashMap<Cow<'a, str>, Attr<'a>>>,
        #[serde(rename = "OldImage", borrow, default)]
        old: Option<HashMap<Cow<'a, str>, Attr<'a>>>,
    }

    /// One attribute value: its `S`, `N` or `NULL`; any other type has none of them (and its
    /// content is skipped, not kept).
    #[derive(Deserialize)]
    struct Attr<'a> {
        #[serde(rename = "S", borrow, default)]
        s: Option<Cow<'a, str>>,
        #[serde(rename = "N", borrow, default)]
        n: Option<Cow<'a, str>>,
        #[serde(rename = "NULL", default)]
        null: Option<bool>,
    }

    type Item<'a> = HashMap<Cow<'a, str>, Attr<'a>>;

    pub(super) fn change(raw: &serde_json::value::RawValue) -> Option<Change> {
        let r: Record = serde_json::from_str(raw.get()).ok()?;
        let d = r.dynamodb;
        if d.seq.is_empty() {
            return None;
        }
        let kind = match r.event_name.as_ref() {
            "INSERT" => ChangeKind::Insert,
            "MODIFY" => ChangeKind::Modify,
            "REMOVE" => ChangeKind::Remove,
            _ => return None,
        };
        let at = match &d.at {
            None => 0,
            Some(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))?,
        };
        let present = |i: &Option<Item>| i.as_ref().is_some_and(|m| !m.is_empty());
        match kind {
            ChangeKind::Modify if !present(&d.old) || !present(&d.new) => return None,
            ChangeKind::Insert if !present(&d.new) => return None,
            _ => {}
        }
        let session_id = match d.keys.get(attr::SESSION_ID) {
            Some(Attr {
                s: Some(s),
                n: None,
                null: None,
            }) if !s.is_empty() => SessionId::new(s.as_ref()),
            _ => return None,
        };
        let old = image(d.old.as_ref())?;
        let new = image(d.new.as_ref())?;
        let by_ttl = r.user_identity.is_some_and(|u| {
            u.kind.as_deref() == Some("Service")
                && u.principal.as_deref() == Some(super::TTL_PRINCIPAL)
        });
        Some(Change {
            seq: SeqNo(d.seq.into_owned()),
            kind,
            session_id,
            old,
            new,
            by_ttl,
            at,
        })
    }

    /// `Some(None)`: no image, or keys only. `Some(Some(..))`: an active image read cleanly.
    /// `None`: anything else (an ended image, a type the rules do not expect).
    fn image(item: Option<&Item>) -> Option<Option<Image>> {
        let Some(item) = item.filter(|i| !i.is_empty()) else {
            return Some(None);
        };
        if item.keys().all(|k| k == attr::SESSION_ID) {
            return Some(None);
        }
        // Ended images carry the fingerprint that only the tree path computes.
        if s(item, attr::STATUS)?? != Status::Active.as_str() {
            return None;
        }
        Some(Some(Image {
            user_id: s(item, attr::USER_ID)?.map(String::from),
            tenant_id: s(item, attr::TENANT_ID)?.map(String::from),
            status: Some(Status::Active),
            created_at: n(item, attr::CREATED_AT)?,
            last_activity_at: n(item, attr::LAST_ACTIVITY_AT)?,
            idle_timeout_seconds: n(item, attr::IDLE_TIMEOUT_SECONDS)?,
            absolute_expires_at: n(item, attr::ABSOLUTE_EXPIRES_AT)?,
            user_agent: s(item, attr::USER_AGENT)?.map(String::from),
            ip_address: s(item, attr::IP_ADDRESS)?.map(String::from),
            revoke_scope: s(item, attr::REVOKE_SCOPE)?.map(String::from),
            termination_reason: s(item, attr::TERMINATION_REASON)?.map(String::from),
            parent_session_id: s(item, attr::PARENT_SESSION_ID)?.map(SessionId::new),
            lapses_at: None,
            lapsed: false,
            fingerprint: None,
        }))
    }

    /// A string attribute: `Some(None)` when absent or NULL, `None` when of another type.
    fn s<'i>(item: &'i Item, name: &str) -> Option<Option<&'i str>> {
        match item.get(name) {
            None => Some(None),
            Some(Attr {
                s: Some(v),
                n: None,
                null: None,
            }) => Some(Some(v.as_ref())),
            Some(Attr {
                s: None,
                n: None,
                null: Some(_),
            }) => Some(None),
            Some(_) => None,
        }
    }

    /// A number attribute, as the tree path reads it: `None` when of another type or unreadable.
    fn n(item: &Item, name: &str) -> Option<Option<i64>> {
        match item.get(name) {
            None => Some(None),
            Some(Attr {
                s: None,
                n: Some(v),
                null: None,
            }) => super::number(name, v).ok().map(Some),
            Some(Attr {
                s: None,
                n: None,
                null: Some(_),
            }) => Some(None),
            Some(_) => None,
        }
    }
}

/// Parses one raw record of the `Records` array, on the native layout. Lean: it reads the fields
/// the rules use straight from the record's JSON, borrowing its strings, with no intermediate
/// record type; the images' other attributes only enter their fingerprint. (Other layouts read
/// arbitrary attributes, through [`envelope`].)
pub fn parse_record(raw: &serde_json::Value) -> Result<Change, Malformed> {
    let seq = raw
        .pointer("/dynamodb/SequenceNumber")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty());
    let bad = |reason: String| Malformed {
        seq: seq.map(String::from),
        reason,
    };
    let not_a_record = |what: &str| bad(format!("not a DynamoDB stream record: {what}"));
    let ddb = raw
        .get("dynamodb")
        .and_then(|d| d.as_object())
        .ok_or_else(|| not_a_record("dynamodb is missing or not an object"))?;
    let event_name = raw
        .get("eventName")
        .and_then(|v| v.as_str())
        .ok_or_else(|| not_a_record("eventName is missing or not a string"))?;
    let at = match ddb.get("ApproximateCreationDateTime") {
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .ok_or_else(|| not_a_record("ApproximateCreationDateTime is out of range"))?,
        // Absent: the epoch, as aws_lambda_events reads it (AWS's own samples omit it).
        None | Some(serde_json::Value::Null) => 0,
        _ => return Err(not_a_record("ApproximateCreationDateTime is not a number")),
    };
    let Some(seq) = seq else {
        return Err(bad("dynamodb.SequenceNumber is missing".into()));
    };
    let kind = match event_name {
        "INSERT" => ChangeKind::Insert,
        "MODIFY" => ChangeKind::Modify,
        "REMOVE" => ChangeKind::Remove,
        other => return Err(bad(format!("unknown eventName {other:?}"))),
    };
    let image_of = |name: &str| -> Result<Option<&JsonMap>, Malformed> {
        match ddb.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Object(m)) if m.is_empty() => Ok(None),
            Some(serde_json::Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(not_a_record(&format!("{name} is not an object"))),
        }
    };
    let (old_raw, new_raw) = (image_of("OldImage")?, image_of("NewImage")?);
    match kind {
        ChangeKind::Modify if old_raw.is_none() => {
            return Err(bad(
                "MODIFY without OldImage: the stream view type must be NEW_AND_OLD_IMAGES".into(),
            ))
        }
        ChangeKind::Modify | ChangeKind::Insert if new_raw.is_none() => {
            return Err(bad(format!(
                "{event_name} without NewImage: the stream view type must be NEW_AND_OLD_IMAGES"
            )))
        }
        _ => {}
    }
    let by_ttl = raw.get("userIdentity").is_some_and(|u| {
        u.get("type").and_then(|t| t.as_str()) == Some("Service")
            && u.get("principalId").and_then(|p| p.as_str()) == Some(TTL_PRINCIPAL)
    });
    let keys = ddb
        .get("Keys")
        .and_then(|k| k.as_object())
        .ok_or_else(|| bad("key sessionId is missing".into()))?;
    let session_id = match keys.get(attr::SESSION_ID).map(json_attr) {
        Some(Attr::S(s)) if !s.is_empty() => SessionId::new(s),
        Some(_) => return Err(bad("key sessionId is not a non-empty string (S)".into())),
        None => return Err(bad("key sessionId is missing".into())),
    };
    let old = old_raw
        .map(json_image)
        .transpose()
        .map_err(|e| bad(format!("OldImage: {e}")))?
        .flatten();
    let new = new_raw
        .map(json_image)
        .transpose()
        .map_err(|e| bad(format!("NewImage: {e}")))?
        .flatten();
    Ok(Change {
        seq: SeqNo(seq.to_string()),
        kind,
        session_id,
        old,
        new,
        by_ttl,
        at,
    })
}

type JsonMap = serde_json::Map<String, serde_json::Value>;

/// One attribute value in the stream's JSON form, borrowed: `{"S": ..}`, `{"N": ..}`,
/// `{"NULL": true}`, or any other type.
enum Attr<'a> {
    S(&'a str),
    N(&'a str),
    Null,
    Other,
}

fn json_attr(v: &serde_json::Value) -> Attr<'_> {
    let Some(m) = v.as_object().filter(|m| m.len() == 1) else {
        return Attr::Other;
    };
    match m.iter().next() {
        Some((t, serde_json::Value::String(s))) if t == "S" => Attr::S(s),
        Some((t, serde_json::Value::String(n))) if t == "N" => Attr::N(n),
        Some((t, _)) if t == "NULL" => Attr::Null,
        _ => Attr::Other,
    }
}

fn json_s(item: &JsonMap, name: &str) -> Result<Option<String>, String> {
    match item.get(name).map(json_attr) {
        None | Some(Attr::Null) => Ok(None),
        Some(Attr::S(v)) => Ok(Some(v.to_string())),
        Some(_) => Err(format!("attribute {name} is not a string (S)")),
    }
}

fn json_n(item: &JsonMap, name: &str) -> Result<Option<i64>, String> {
    match item.get(name).map(json_attr) {
        None | Some(Attr::Null) => Ok(None),
        Some(Attr::N(v)) => number(name, v).map(Some),
        Some(_) => Err(format!("attribute {name} is not a number (N)")),
    }
}

/// A DynamoDB number as whole seconds (a fraction is cut off).
fn number(name: &str, v: &str) -> Result<i64, String> {
    v.trim()
        .parse::<i64>()
        .ok()
        .or_else(|| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| f as i64)
        })
        .ok_or_else(|| format!("attribute {name} = {v:?} is not a number"))
}

/// Parses an image in the stream's JSON form; `None` for a keys-only image.
fn json_image(item: &JsonMap) -> Result<Option<Image>, String> {
    if item.keys().all(|k| k == attr::SESSION_ID) {
        return Ok(None);
    }
    let status = match json_s(item, attr::STATUS)? {
        None => return Err("attribute status is missing".into()),
        Some(v) => v.parse::<Status>().map_err(|e| e.to_string())?,
    };
    Ok(Some(Image {
        user_id: json_s(item, attr::USER_ID)?,
        tenant_id: json_s(item, attr::TENANT_ID)?,
        status: Some(status),
        created_at: json_n(item, attr::CREATED_AT)?,
        last_activity_at: json_n(item, attr::LAST_ACTIVITY_AT)?,
        idle_timeout_seconds: json_n(item, attr::IDLE_TIMEOUT_SECONDS)?,
        absolute_expires_at: json_n(item, attr::ABSOLUTE_EXPIRES_AT)?,
        user_agent: json_s(item, attr::USER_AGENT)?,
        ip_address: json_s(item, attr::IP_ADDRESS)?,
        revoke_scope: json_s(item, attr::REVOKE_SCOPE)?,
        termination_reason: json_s(item, attr::TERMINATION_REASON)?,
        parent_session_id: json_s(item, attr::PARENT_SESSION_ID)?.map(SessionId::new),
        lapses_at: None,
        lapsed: false,
        // Only ended images are compared (zombie writes), and most records are touches of
        // active sessions: their fingerprint is not worth its hashing.
        fingerprint: status
            .is_ended()
            .then(|| json_fingerprint(item, |k| k != attr::SESSION_ID && k != attr::EXPIRES_AT)),
    }))
}

/// [`fingerprint`] of an image in the stream's JSON form: every kept attribute's name and value.
fn json_fingerprint(item: &JsonMap, keep: impl Fn(&str) -> bool) -> u64 {
    let mut names: Vec<&String> = item.keys().filter(|k| keep(k)).collect();
    names.sort_unstable();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for name in names {
        name.hash(&mut h);
        hash_json(&item[name.as_str()], &mut h);
    }
    h.finish()
}

fn hash_json(v: &serde_json::Value, h: &mut impl Hasher) {
    use serde_json::Value as J;
    match v {
        J::Null => 0u8.hash(h),
        J::Bool(b) => (1u8, b).hash(h),
        J::Number(n) => (2u8, n.to_string()).hash(h),
        J::String(s) => (3u8, s).hash(h),
        J::Array(a) => {
            (4u8, a.len()).hash(h);
            for x in a {
                hash_json(x, h);
            }
        }
        J::Object(m) => {
            5u8.hash(h);
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable();
            for k in keys {
                k.hash(h);
                hash_json(&m[k.as_str()], h);
            }
        }
    }
}

/// The parts every layout reads the same way: the record, its sequence number and kind (with the
/// images its kind needs present), whether TTL deleted the item, and when.
struct Envelope {
    rec: EventRecord,
    seq: String,
    kind: ChangeKind,
    by_ttl: bool,
    at: i64,
}

fn envelope(raw: &serde_json::Value) -> Result<Envelope, Malformed> {
    let seq = raw
        .pointer("/dynamodb/SequenceNumber")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(String::from);
    let bad = |reason: String| Malformed {
        seq: seq.clone(),
        reason,
    };
    // Straight from the borrowed tree: no copy of the record.
    let rec = EventRecord::deserialize(raw)
        .map_err(|e| bad(format!("not a DynamoDB stream record: {e}")))?;
    let Some(seq_no) = seq.clone() else {
        return Err(bad("dynamodb.SequenceNumber is missing".into()));
    };
    let kind = match rec.event_name.as_str() {
        "INSERT" => ChangeKind::Insert,
        "MODIFY" => ChangeKind::Modify,
        "REMOVE" => ChangeKind::Remove,
        other => return Err(bad(format!("unknown eventName {other:?}"))),
    };
    match kind {
        ChangeKind::Modify if rec.change.old_image.is_empty() => {
            return Err(bad(
                "MODIFY without OldImage: the stream view type must be NEW_AND_OLD_IMAGES".into(),
            ))
        }
        ChangeKind::Modify | ChangeKind::Insert if rec.change.new_image.is_empty() => {
            return Err(bad(format!(
                "{} without NewImage: the stream view type must be NEW_AND_OLD_IMAGES",
                rec.event_name
            )))
        }
        _ => {}
    }
    let by_ttl = rec
        .user_identity
        .as_ref()
        .is_some_and(|u| u.type_ == "Service" && u.principal_id == TTL_PRINCIPAL);
    Ok(Envelope {
        at: rec.change.approximate_creation_date_time.timestamp(),
        rec,
        seq: seq_no,
        kind,
        by_ttl,
    })
}

fn parse_mapped(m: &Mapped, raw: &serde_json::Value) -> Result<Option<Change>, Malformed> {
    let Envelope {
        rec,
        seq,
        kind,
        by_ttl,
        at,
    } = envelope(raw)?;
    let bad = |reason: String| Malformed {
        seq: Some(seq.clone()),
        reason,
    };
    let Some(session_id) = layout::id_of(m, &rec.change.keys).map_err(&bad)? else {
        return Ok(None);
    };
    let key_only = |i: &serde_dynamo::Item| {
        i.keys()
            .all(|k| *k == m.id.attribute || m.home.as_ref().is_some_and(|h| *k == h.attribute))
    };
    let mut not_session = false;
    let mut image = |i: &serde_dynamo::Item, which: &str| -> Result<Option<Image>, Malformed> {
        if key_only(i) {
            return Ok(None);
        }
        match layout::read(m, i, at).map_err(|e| bad(format!("{which}: {e}")))? {
            Read::NotSession => {
                not_session = true;
                Ok(None)
            }
            Read::Session(s) => Ok(Some(s.image)),
        }
    };
    let old = image(&rec.change.old_image, "OldImage")?;
    let new = image(&rec.change.new_image, "NewImage")?;
    if not_session {
        return Ok(None);
    }
    Ok(Some(Change {
        seq: SeqNo(seq),
        kind,
        session_id,
        old,
        new,
        by_ttl,
        at,
    }))
}

/// A digest of every attribute of `item` whose name `keep` accepts, names and values alike,
/// independent of their order: two images with the same digest hold the same values. Built with
/// no allocation per value (the names are sorted by reference).
pub(crate) fn fingerprint(
    item: &std::collections::HashMap<String, Av>,
    keep: impl Fn(&str) -> bool,
) -> u64 {
    let mut names: Vec<&String> = item.keys().filter(|k| keep(k)).collect();
    names.sort_unstable();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for name in names {
        name.hash(&mut h);
        hash_value(&item[name], &mut h);
    }
    h.finish()
}

fn hash_value(v: &Av, h: &mut impl Hasher) {
    match v {
        Av::N(n) => (0u8, n).hash(h),
        Av::S(s) => (1u8, s).hash(h),
        Av::Bool(b) => (2u8, b).hash(h),
        Av::B(b) => (3u8, b).hash(h),
        Av::Null(b) => (4u8, b).hash(h),
        Av::M(m) => {
            5u8.hash(h);
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable();
            for k in keys {
                k.hash(h);
                hash_value(&m[k], h);
            }
        }
        Av::L(l) => {
            (6u8, l.len()).hash(h);
            for x in l {
                hash_value(x, h);
            }
        }
        Av::Ss(v) => (7u8, v).hash(h),
        Av::Ns(v) => (8u8, v).hash(h),
        Av::Bs(v) => (9u8, v).hash(h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn item(pairs: &[(&str, Av)]) -> HashMap<String, Av> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn the_fingerprint_sees_every_value_but_not_the_order_or_the_skipped_names() {
        let nested = |v: &str| Av::M(item(&[("a", Av::S(v.into())), ("b", Av::N("1".into()))]));
        let a = item(&[
            ("userId", Av::S("u-1".into())),
            ("ctx", nested("x")),
            ("expiresAt", Av::N("1".into())),
        ]);
        let all = |_: &str| true;
        let no_ttl = |k: &str| k != "expiresAt";
        // Same attributes, built in another order: same digest.
        let mut b = HashMap::new();
        b.insert("expiresAt".to_string(), Av::N("1".into()));
        b.insert("ctx".to_string(), nested("x"));
        b.insert("userId".to_string(), Av::S("u-1".into()));
        assert_eq!(fingerprint(&a, all), fingerprint(&b, all));
        // A value deep in a map changes it; a skipped attribute does not.
        b.insert("ctx".to_string(), nested("y"));
        assert_ne!(fingerprint(&a, all), fingerprint(&b, all));
        b.insert("ctx".to_string(), nested("x"));
        b.insert("expiresAt".to_string(), Av::N("2".into()));
        assert_ne!(fingerprint(&a, all), fingerprint(&b, all));
        assert_eq!(fingerprint(&a, no_ttl), fingerprint(&b, no_ttl));
        // The same text as a string or as a number is a different value.
        let s = item(&[("x", Av::S("1".into()))]);
        let n = item(&[("x", Av::N("1".into()))]);
        assert_ne!(fingerprint(&s, all), fingerprint(&n, all));
    }
}
