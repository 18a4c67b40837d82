//! Session-ended events: what an app subscribes to, to drop caches, revoke refresh tokens and
//! close websockets when a session ends. Pure: which changes are an end ([`ending`]), why
//! ([`Ending::reason`]), and the event document ([`render`]).
//!
//! Every end of a session passes through the sessions table's stream, whoever ended it: the
//! app (logout, delete), DynamoDB's TTL, or sessionwarden itself (cleanup, cascades, containment,
//! the session limit). So the stream worker is the one place events come from, and a record's
//! sequence number makes each event's ID stable across redeliveries. Layouts that keep no
//! `terminationReason` (sessionwarden ends their sessions by a delete or a flag) learn the reason
//! of sessionwarden's own ends from the note its end leaves ([`crate::ports::SessionStore`]'s
//! `notes`); an end without a stored reason or a note is the app's: `delete`, or `ended`.

use serde_json::json;

use crate::change::{Change, ChangeKind, SeqNo};
use crate::session::SessionId;
use crate::session_ref::SessionRefKey;

/// Version of the event document; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The reason of an item DynamoDB's TTL deleted while its session was still live.
pub const REASON_TTL: &str = "ttl";
/// The reason of an item deleted by a write that sessionwarden did not make (the app's delete).
pub const REASON_DELETE: &str = "delete";
/// The reason of a session the app ended by a write that stores no reason.
pub const REASON_ENDED: &str = "ended";

/// One end of a session, as one stream record shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The session.
    pub session_id: SessionId,
    /// Its user, from the last image that had one.
    pub user_id: Option<String>,
    /// Its tenant.
    pub tenant_id: Option<String>,
    /// `terminationReason` as stored, if the layout keeps one.
    pub stored: Option<String>,
    /// How the item left: by TTL, by a delete, or by a write that ended it.
    pub how: How,
    /// When, epoch seconds (the record's approximate creation time).
    pub at: i64,
    /// The record: the event's ID derives from it.
    pub seq: SeqNo,
}

/// How an item's session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// DynamoDB's TTL deleted the item.
    Ttl,
    /// A write deleted the item.
    Delete,
    /// A write ended the session and kept the item.
    Write,
}

impl Ending {
    /// True when the reason is not in the record, so sessionwarden's end note is worth a read:
    /// a delete or a reasonless end (the layout keeps no `terminationReason`).
    pub fn needs_note(&self) -> bool {
        self.stored.is_none() && self.how != How::Ttl
    }

    /// The reason: the stored one, else sessionwarden's own `note` (the reason its end wrote down
    /// before a delete or a reasonless end), else what the record shows.
    pub fn reason(&self, note: Option<&str>) -> String {
        if let Some(r) = &self.stored {
            return r.clone();
        }
        match (self.how, note) {
            (How::Ttl, _) => REASON_TTL.into(),
            (_, Some(n)) => n.into(),
            (How::Delete, None) => REASON_DELETE.into(),
            (How::Write, None) => REASON_ENDED.into(),
        }
    }
}

/// The end a change shows, if it shows one: a live session that a write ended (MODIFY), or a
/// live (or merely lapsed) session's item deleted (REMOVE). A REMOVE of an item whose session had
/// already ended by a write is not a second end; neither is any change to an ended session.
pub fn ending(change: &Change) -> Option<Ending> {
    let old = change.old.as_ref()?;
    let how = match change.kind {
        ChangeKind::Insert => return None,
        ChangeKind::Modify => {
            let new = change.new.as_ref()?;
            if old.is_ended() || !new.is_ended() || old.status.is_none() {
                return None;
            }
            How::Write
        }
        // An item whose session lapsed (its own deadline passed, and no write ended it) still ends
        // here; one a write had ended was announced then.
        ChangeKind::Remove if old.is_ended() && !old.lapsed => return None,
        ChangeKind::Remove if change.by_ttl => How::Ttl,
        ChangeKind::Remove => How::Delete,
    };
    let image = match how {
        How::Write => change.new.as_ref().unwrap_or(old),
        _ => old,
    };
    Some(Ending {
        session_id: change.session_id.clone(),
        user_id: image.user_id.clone().or_else(|| old.user_id.clone()),
        tenant_id: image.tenant_id.clone().or_else(|| old.tenant_id.clone()),
        stored: match how {
            How::Write => image.termination_reason.clone(),
            _ => None,
        },
        how,
        at: change.at,
        seq: change.seq.clone(),
    })
}

/// An event, ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionEvent {
    /// Stable: the same for every delivery of the record that showed the end. Sent as the
    /// `eventId` message attribute and in the document, so a subscriber (or a FIFO topic) drops
    /// copies.
    pub id: String,
    /// The reason (`reason` message attribute, for subscription filter policies).
    pub reason: String,
    /// The tenant, or `none` (`tenantId` message attribute).
    pub tenant: String,
    /// The JSON document.
    pub document: serde_json::Value,
}

/// The event ID of an end: a keyed digest of the session and the record, so it is stable across
/// redeliveries and reveals neither.
pub fn event_id(key: &SessionRefKey, e: &Ending) -> String {
    key.reference(&format!("ended|{}|{}", key.state_key(&e.session_id), e.seq))
        .to_string()
}

/// Renders the event of an end with its `reason`. The session appears as its keyed reference;
/// its raw ID only with `raw_id` (`SESSION_EVENTS_RAW_ID=true`, for an operator's own trusted
/// subscribers).
pub fn render(e: &Ending, reason: &str, key: &SessionRefKey, raw_id: bool) -> SessionEvent {
    let id = event_id(key, e);
    let mut document = json!({
        "schemaVersion": SCHEMA_VERSION,
        "type": "SESSION_ENDED",
        "eventId": id,
        "sessionRef": key.of(&e.session_id).as_str(),
        "userId": e.user_id,
        "tenantId": e.tenant_id,
        "reason": reason,
        "endedAt": e.at,
    });
    if raw_id {
        document["sessionId"] = json!(e.session_id.expose());
    }
    SessionEvent {
        id,
        reason: reason.to_string(),
        tenant: e.tenant_id.clone().unwrap_or_else(|| "none".into()),
        document,
    }
}
