//! The reader of the mapped layouts (connect-dynamodb, Auth.js, custom): the record as
//! `aws_lambda_events` reads it, its images as `serde_dynamo` items for [`crate::layout`], which
//! reads arbitrary attributes; and the fingerprint of such an item.

use std::hash::{Hash, Hasher};

use aws_lambda_events::event::dynamodb::EventRecord;
use serde::Deserialize;
use serde_dynamo::AttributeValue as Av;

use sessionwarden_core::change::{Change, ChangeKind, Image, Malformed, SeqNo};
use sessionwarden_core::layout::Mapped;

use crate::layout::{self, Read};

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
    let Some(kind) = super::kind_of(&rec.event_name) else {
        return Err(bad(format!("unknown eventName {:?}", rec.event_name)));
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
        .is_some_and(|u| u.type_ == "Service" && u.principal_id == super::TTL_PRINCIPAL);
    Ok(Envelope {
        at: rec.change.approximate_creation_date_time.timestamp(),
        rec,
        seq: seq_no,
        kind,
        by_ttl,
    })
}

pub(super) fn parse_mapped(
    m: &Mapped,
    raw: &serde_json::Value,
) -> Result<Option<Change>, Malformed> {
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
