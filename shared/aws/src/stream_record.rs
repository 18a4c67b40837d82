//! Parses one record of a DynamoDB stream event, exactly as Lambda delivers it, into a
//! [`Change`]. Every way a record can be malformed (not a stream record, unknown event name,
//! missing or non-string key, wrong attribute type, unknown status, MODIFY without its old image)
//! becomes a [`Malformed`] that carries the sequence number when there is one, so the caller can
//! dead-letter it and move on instead of blocking the shard.

use aws_lambda_events::event::dynamodb::EventRecord;
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

/// Parses one raw record of the `Records` array, on the native layout.
pub fn parse_record(raw: &serde_json::Value) -> Result<Change, Malformed> {
    let Envelope {
        rec,
        seq,
        kind,
        by_ttl,
        at,
    } = envelope(raw)?;
    let seq_no = seq.clone();
    let bad = |reason: String| Malformed {
        seq: Some(seq.clone()),
        reason,
    };
    let session_id = match rec.change.keys.get(attr::SESSION_ID) {
        Some(Av::S(s)) if !s.is_empty() => SessionId::new(s.clone()),
        Some(_) => return Err(bad("key sessionId is not a non-empty string (S)".into())),
        None => return Err(bad("key sessionId is missing".into())),
    };
    let old = image(&rec.change.old_image).map_err(|e| bad(format!("OldImage: {e}")))?;
    let new = image(&rec.change.new_image).map_err(|e| bad(format!("NewImage: {e}")))?;
    Ok(Change {
        seq: SeqNo(seq_no),
        kind,
        session_id,
        old,
        new,
        by_ttl,
        at,
    })
}

fn s(item: &serde_dynamo::Item, name: &str) -> Result<Option<String>, String> {
    match item.get(name) {
        None | Some(Av::Null(_)) => Ok(None),
        Some(Av::S(v)) => Ok(Some(v.clone())),
        Some(_) => Err(format!("attribute {name} is not a string (S)")),
    }
}

fn n(item: &serde_dynamo::Item, name: &str) -> Result<Option<i64>, String> {
    match item.get(name) {
        None | Some(Av::Null(_)) => Ok(None),
        Some(Av::N(v)) => v
            .trim()
            .parse::<i64>()
            .ok()
            .or_else(|| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| f as i64)
            })
            .map(Some)
            .ok_or_else(|| format!("attribute {name} = {v:?} is not a number")),
        Some(_) => Err(format!("attribute {name} is not a number (N)")),
    }
}

/// Parses an image; `None` for an absent or keys-only image.
fn image(item: &serde_dynamo::Item) -> Result<Option<Image>, String> {
    if item.keys().all(|k| k == attr::SESSION_ID) {
        return Ok(None);
    }
    let status = match s(item, attr::STATUS)? {
        None => return Err("attribute status is missing".into()),
        Some(v) => v.parse::<Status>().map_err(|e| e.to_string())?,
    };
    let mut fingerprint: Vec<(String, String)> = item
        .iter()
        .filter(|(k, _)| k.as_str() != attr::SESSION_ID && k.as_str() != attr::EXPIRES_AT)
        .map(|(k, v)| (k.clone(), format!("{v:?}")))
        .collect();
    fingerprint.sort();
    Ok(Some(Image {
        user_id: s(item, attr::USER_ID)?,
        tenant_id: s(item, attr::TENANT_ID)?,
        status: Some(status),
        created_at: n(item, attr::CREATED_AT)?,
        last_activity_at: n(item, attr::LAST_ACTIVITY_AT)?,
        idle_timeout_seconds: n(item, attr::IDLE_TIMEOUT_SECONDS)?,
        absolute_expires_at: n(item, attr::ABSOLUTE_EXPIRES_AT)?,
        user_agent: s(item, attr::USER_AGENT)?,
        ip_address: s(item, attr::IP_ADDRESS)?,
        revoke_scope: s(item, attr::REVOKE_SCOPE)?,
        termination_reason: s(item, attr::TERMINATION_REASON)?,
        parent_session_id: s(item, attr::PARENT_SESSION_ID)?.map(SessionId::new),
        lapses_at: None,
        lapsed: false,
        fingerprint,
    }))
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
    let rec: EventRecord = serde_json::from_value(raw.clone())
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
