//! The one-pass reader of [`super::parse_raw`]: `None` whenever the record is anything but a clean
//! native record whose images are active (or keys only), so that the tree path decides it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
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
    keys: Item<'a>,
    #[serde(rename = "NewImage", borrow, default)]
    new: Option<Item<'a>>,
    #[serde(rename = "OldImage", borrow, default)]
    old: Option<Item<'a>>,
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

/// An item's attributes in document order. A dozen attributes are found faster by a scan than
/// by hashing every name (SipHash was about a sixth of a touch's CPU). As in a JSON object read
/// into a map, a repeated name means its last value.
struct Item<'a>(Vec<(Cow<'a, str>, Attr<'a>)>);

impl<'a> Item<'a> {
    fn get(&self, name: &str) -> Option<&Attr<'a>> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
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
                let mut v = Vec::with_capacity(m.size_hint().unwrap_or(12));
                while let Some((Name(k), a)) = m.next_entry::<Name<'a>, Attr<'a>>()? {
                    v.push((k, a));
                }
                Ok(Item(v))
            }
        }
        d.deserialize_map(Attrs(std::marker::PhantomData))
    }
}

pub(super) fn change(raw: &serde_json::value::RawValue) -> Option<Change> {
    let r: Record = serde_json::from_str(raw.get()).ok()?;
    let d = r.dynamodb;
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
        u.kind.as_deref() == Some("Service") && u.principal.as_deref() == Some(super::TTL_PRINCIPAL)
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
    if item.0.iter().all(|(k, _)| k == attr::SESSION_ID) {
        return Some(None);
    }
    // Ended images carry the fingerprint that only the tree path computes.
    if s(item, attr::STATUS)?? != Status::Active.as_str() {
        return None;
    }
    let s = |name: &str| s(item, name).map(|v| v.map(String::from)).ok_or(());
    let n = |name: &str| n(item, name).ok_or(());
    super::native_image(Status::Active, s, n, None)
        .ok()
        .map(Some)
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
