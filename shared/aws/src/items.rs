//! Conversions between DynamoDB items and the core's types, with `serde_dynamo`: one serde
//! struct per item shape the adapters read or write, and errors that name the attribute that was
//! wrong. Kept in one place so every adapter reads the native layout the same way.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use sessionwarden_core::expiry::SessionClock;
use sessionwarden_core::session::{Session, SessionId, Status, TerminationReason};

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// An item that does not follow the native layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// A required attribute is absent.
    #[error("attribute {0} is missing")]
    Missing(String),
    /// An attribute has the wrong DynamoDB type or an unparsable value.
    #[error("attribute {attribute} is invalid: {reason}")]
    Invalid {
        /// The attribute.
        attribute: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Reads an item into `T`; an error names the attribute.
pub fn from_item<T: DeserializeOwned>(item: &Item) -> Result<T, ItemError> {
    let value: serde_dynamo::AttributeValue = AttributeValue::M(item.clone()).into();
    let de = serde_dynamo::Deserializer::from_attribute_value(value);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let attribute = e.path().to_string();
        let reason = e.into_inner().to_string();
        match reason.strip_prefix("missing field `") {
            Some(rest) if attribute == "." => Missing(rest.trim_end_matches('`').to_string()),
            _ => ItemError::Invalid { attribute, reason },
        }
    })
}
use ItemError::Missing;

/// Renders `value` as an item; `None` fields are left out.
pub fn to_item<T: Serialize>(value: &T) -> Item {
    // Every item type here is a flat struct of strings and numbers, which always serializes.
    serde_dynamo::to_item(value).unwrap_or_default()
}

fn status<'de, D: Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

fn reason<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TerminationReason>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => TerminationReason::parse(&s)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown reason {s:?}"))),
    }
}

/// A session item of the native layout, whole or projected: everything but the key and the status
/// is optional here, and [`session_from_item`] says what a whole session needs.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionItem {
    /// The partition key.
    pub session_id: String,
    /// The status.
    #[serde(deserialize_with = "status", serialize_with = "ser_status")]
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_at: Option<Epoch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_activity_at: Option<Epoch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idle_timeout_seconds: Option<Epoch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    absolute_expires_at: Option<Epoch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sweep_at: Option<Epoch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent_session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoke_scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    terminated_at: Option<Epoch>,
    #[serde(
        default,
        deserialize_with = "reason",
        serialize_with = "ser_reason",
        skip_serializing_if = "Option::is_none"
    )]
    termination_reason: Option<TerminationReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<Epoch>,
}

impl SessionItem {
    /// The timing attributes, for the expiry policy.
    pub fn clock(&self) -> SessionClock {
        SessionClock {
            created_at: self.created_at.map(|e| e.0),
            last_activity_at: self.last_activity_at.map(|e| e.0),
            idle_timeout_seconds: self.idle_timeout_seconds.map(|e| e.0),
            absolute_expires_at: self.absolute_expires_at.map(|e| e.0),
            lapses_at: None,
        }
    }
}

/// Whole epoch seconds (or seconds of a duration). Reading accepts fractions, as other writers
/// store them, and truncates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Epoch(pub i64);

impl<'de> Deserialize<'de> for Epoch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Num {
            I(i64),
            F(f64),
        }
        match Num::deserialize(d)? {
            Num::I(i) => Ok(Epoch(i)),
            Num::F(f) if f.is_finite() => Ok(Epoch(f as i64)),
            Num::F(f) => Err(serde::de::Error::custom(format!("{f} is not a time"))),
        }
    }
}

fn ser_status<S: serde::Serializer>(s: &Status, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

fn ser_reason<S: serde::Serializer>(
    r: &Option<TerminationReason>,
    ser: S,
) -> Result<S::Ok, S::Error> {
    match r {
        Some(r) => ser.serialize_str(r.as_str()),
        None => ser.serialize_none(),
    }
}

/// Parses a whole session item.
pub fn session_from_item(item: &Item) -> Result<Session, ItemError> {
    let i: SessionItem = from_item(item)?;
    let clock = i.clock();
    let created_at = clock.created_at.ok_or(Missing("createdAt".into()))?;
    let num = |e: Option<Epoch>| e.map(|e| e.0);
    Ok(Session {
        session_id: SessionId::new(i.session_id),
        user_id: i.user_id,
        tenant_id: i.tenant_id,
        status: i.status,
        created_at,
        last_activity_at: clock.last_activity_at.unwrap_or(created_at),
        idle_timeout_seconds: clock.idle_timeout_seconds,
        absolute_expires_at: clock.absolute_expires_at,
        sweep_at: num(i.sweep_at),
        parent_session_id: i.parent_session_id.map(SessionId::new),
        ip_address: i.ip_address,
        user_agent: i.user_agent,
        revoke_scope: i.revoke_scope,
        terminated_at: num(i.terminated_at),
        termination_reason: i.termination_reason,
        expires_at: num(i.expires_at),
    })
}

/// Renders a session as an item; `None` fields are left out.
pub fn session_to_item(s: &Session) -> Item {
    to_item(&SessionItem {
        session_id: s.session_id.expose().to_string(),
        user_id: s.user_id.clone(),
        tenant_id: s.tenant_id.clone(),
        status: s.status,
        created_at: Some(Epoch(s.created_at)),
        last_activity_at: Some(Epoch(s.last_activity_at)),
        idle_timeout_seconds: s.idle_timeout_seconds.map(Epoch),
        absolute_expires_at: s.absolute_expires_at.map(Epoch),
        sweep_at: s.sweep_at.map(Epoch),
        parent_session_id: s.parent_session_id.as_ref().map(|p| p.expose().to_string()),
        ip_address: s.ip_address.clone(),
        user_agent: s.user_agent.clone(),
        revoke_scope: s.revoke_scope.clone(),
        terminated_at: s.terminated_at.map(Epoch),
        termination_reason: s.termination_reason,
        expires_at: s.expires_at.map(Epoch),
    })
}

/// A number attribute read on its own (a counter, a job's total).
pub fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// A string attribute read on its own.
pub fn string(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionwarden_core::session::attr;

    #[test]
    fn session_round_trips_through_an_item() {
        let mut s = Session::active(SessionId::new("s-1"), 100);
        s.user_id = Some("u".into());
        s.tenant_id = Some("t".into());
        s.idle_timeout_seconds = Some(900);
        s.sweep_at = Some(1000);
        s.parent_session_id = Some(SessionId::new("p"));
        s.status = Status::Expired;
        s.termination_reason = Some(TerminationReason::CascadeFamily);
        s.terminated_at = Some(5);
        assert_eq!(session_from_item(&session_to_item(&s)).unwrap(), s);
    }

    #[test]
    fn wrong_types_name_the_attribute() {
        let mut item = session_to_item(&Session::active(SessionId::new("s"), 1));
        item.insert(
            attr::LAST_ACTIVITY_AT.into(),
            AttributeValue::S("yesterday".into()),
        );
        assert!(matches!(
            session_from_item(&item),
            Err(ItemError::Invalid { attribute, .. }) if attribute == "lastActivityAt"
        ));
        item.insert(
            attr::LAST_ACTIVITY_AT.into(),
            AttributeValue::N("1.7e3".into()),
        );
        assert_eq!(session_from_item(&item).unwrap().last_activity_at, 1700);
        item.insert(attr::STATUS.into(), AttributeValue::S("ZOMBIE".into()));
        assert!(matches!(
            session_from_item(&item),
            Err(ItemError::Invalid { attribute, reason })
                if attribute == "status" && reason.contains("ZOMBIE")
        ));
        item.remove(attr::CREATED_AT);
        item.insert(attr::STATUS.into(), AttributeValue::S("ACTIVE".into()));
        assert_eq!(
            session_from_item(&item),
            Err(ItemError::Missing("createdAt".into()))
        );
    }
}
