//! The tree reader of the native layout: a record parsed into a `serde_json::Value`, every
//! malformation named. The worker's one-pass reader ([`super::lean`]) hands it every record it
//! does not read cleanly itself.

use std::hash::{Hash, Hasher};

use sessionwarden_core::change::{Change, ChangeKind, Image, Malformed, SeqNo};
use sessionwarden_core::session::{attr, SessionId, Status};

/// Parses one record of the `Records` array, as a JSON tree, on the native layout: the fields the
/// rules use are read straight from the record's JSON, with no intermediate record type; the
/// other attributes of an ended image only enter its fingerprint.
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
    let Some(kind) = super::kind_of(event_name) else {
        return Err(bad(format!("unknown eventName {event_name:?}")));
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
            && u.get("principalId").and_then(|p| p.as_str()) == Some(super::TTL_PRINCIPAL)
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
pub(super) enum Attr<'a> {
    S(&'a str),
    N(&'a str),
    Null,
    Other,
}

pub(super) fn json_attr(v: &serde_json::Value) -> Attr<'_> {
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
        Some(Attr::N(v)) => super::number(name, v).map(Some),
        Some(_) => Err(format!("attribute {name} is not a number (N)")),
    }
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
    // Only ended images are compared (zombie writes), and most records are touches of
    // active sessions: their fingerprint is not worth its hashing.
    let fingerprint = status
        .is_ended()
        .then(|| json_fingerprint(item, |k| k != attr::SESSION_ID && k != attr::EXPIRES_AT));
    let s = |name: &str| json_s(item, name);
    let n = |name: &str| json_n(item, name);
    super::native_image(status, s, n, fingerprint).map(Some)
}

/// [`super::fingerprint`] of an image in the stream's JSON form: every kept attribute's name and value.
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
