//! Parses one record of a DynamoDB stream event, exactly as Lambda delivers it, into a
//! [`Change`]. Every way a record can be malformed (not a stream record, unknown event name,
//! missing or non-string key, wrong attribute type, unknown status, MODIFY without its old image)
//! becomes a [`Malformed`] that carries the sequence number when there is one, so the caller can
//! dead-letter it and move on instead of blocking the shard.
//!
//! Three readers: [`native`] (a JSON tree, the native layout), [`lean`] (the worker's one pass
//! over a native record's raw text, for clean records of active sessions; it decides plain
//! touches without building a change) and [`mapped`] (the
//! other layouts, through `serde_dynamo` items).

mod lean;
mod mapped;
mod native;

use sessionwarden_core::change::{Change, ChangeKind, Image, Malformed};
use sessionwarden_core::expiry::ExpiryPolicy;
use sessionwarden_core::layout::Layout;
use sessionwarden_core::session::{attr, SessionId, Status};
use sessionwarden_core::stream::{Read, Rejected};

pub(crate) use mapped::fingerprint;
pub use native::parse_record;

/// The principal of DynamoDB's TTL deletes.
const TTL_PRINCIPAL: &str = "dynamodb.amazonaws.com";

/// Parses one raw record through the layout: `Ok(None)` for an item that is not a session under
/// it (skipped and counted, never dead-lettered).
pub fn parse(layout: &Layout, raw: &serde_json::Value) -> Result<Option<Change>, Malformed> {
    match layout {
        Layout::Native => native::parse_record(raw).map(Some),
        Layout::Mapped(m) => mapped::parse_mapped(m, raw),
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
        if let Some(Read::Change(c)) = lean::read(raw, None) {
            return Ok(Some(*c));
        }
    }
    let tree: serde_json::Value = serde_json::from_str(raw.get()).map_err(|e| Malformed {
        seq: None,
        reason: format!("not a DynamoDB stream record: not JSON: {e}"),
    })?;
    parse(layout, &tree)
}

/// Reads one native record from its text, as the stream worker's event holds it: a clean record
/// of active sessions in one pass, borrowing its strings; with `policy`, a plain touch (the rules'
/// [`sessionwarden_core::anomaly::is_plain_touch`]) as [`Read::Quiet`], with nothing built.
/// Anything else goes the tree path of [`parse`], with exactly its results; a rejected record
/// carries its JSON (or its text, if it is not JSON) for its dead letter.
pub fn read_native(
    raw: &serde_json::value::RawValue,
    policy: Option<&ExpiryPolicy>,
) -> Result<Read, Rejected> {
    if let Some(read) = lean::read(raw, policy) {
        return Ok(read);
    }
    match serde_json::from_str::<serde_json::Value>(raw.get()) {
        Ok(tree) => match native::parse_record(&tree) {
            Ok(c) => Ok(Read::Change(Box::new(c))),
            Err(malformed) => Err(Rejected {
                malformed,
                raw: tree,
            }),
        },
        Err(e) => Err(Rejected {
            malformed: Malformed {
                seq: None,
                reason: format!("not a DynamoDB stream record: not JSON: {e}"),
            },
            raw: serde_json::Value::String(raw.get().to_string()),
        }),
    }
}

/// The kind of change an `eventName` names, if any.
fn kind_of(event_name: &str) -> Option<ChangeKind> {
    match event_name {
        "INSERT" => Some(ChangeKind::Insert),
        "MODIFY" => Some(ChangeKind::Modify),
        "REMOVE" => Some(ChangeKind::Remove),
        _ => None,
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

/// A native image, from readers of its string and number attributes (each an error for an
/// attribute of another type), in the order the tree reader names the first bad one.
fn native_image<E>(
    status: Status,
    s: impl Fn(&str) -> Result<Option<String>, E>,
    n: impl Fn(&str) -> Result<Option<i64>, E>,
    fingerprint: Option<u64>,
) -> Result<Image, E> {
    Ok(Image {
        user_id: s(attr::USER_ID)?,
        tenant_id: s(attr::TENANT_ID)?,
        status: Some(status),
        created_at: n(attr::CREATED_AT)?,
        last_activity_at: n(attr::LAST_ACTIVITY_AT)?,
        idle_timeout_seconds: n(attr::IDLE_TIMEOUT_SECONDS)?,
        absolute_expires_at: n(attr::ABSOLUTE_EXPIRES_AT)?,
        user_agent: s(attr::USER_AGENT)?,
        ip_address: s(attr::IP_ADDRESS)?,
        revoke_scope: s(attr::REVOKE_SCOPE)?,
        termination_reason: s(attr::TERMINATION_REASON)?,
        parent_session_id: s(attr::PARENT_SESSION_ID)?.map(SessionId::new),
        lapses_at: None,
        lapsed: false,
        fingerprint,
    })
}
