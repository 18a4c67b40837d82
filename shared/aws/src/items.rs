//! Conversions between DynamoDB items and [`sessionwarden_core::session::Session`], with errors that say which
//! attribute was wrong. Kept in one place so every adapter reads the native layout the same way.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use sessionwarden_core::session::{attr, Session, SessionId, Status, TerminationReason};

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// An item that does not follow the native layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// A required attribute is absent.
    #[error("attribute {0} is missing")]
    Missing(&'static str),
    /// An attribute has the wrong DynamoDB type or an unparsable value.
    #[error("attribute {attribute} is invalid: {reason}")]
    Invalid {
        /// The attribute.
        attribute: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Reads an optional string attribute.
pub fn opt_s(item: &Item, name: &'static str) -> Result<Option<String>, ItemError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ItemError::Invalid {
            attribute: name,
            reason: "expected type S".into(),
        }),
    }
}

/// Reads a required string attribute.
pub fn req_s(item: &Item, name: &'static str) -> Result<String, ItemError> {
    opt_s(item, name)?.ok_or(ItemError::Missing(name))
}

/// Reads an optional number attribute as whole epoch seconds (fractions are truncated).
pub fn opt_n(item: &Item, name: &'static str) -> Result<Option<i64>, ItemError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(n)) => parse_n(n).map(Some).ok_or_else(|| ItemError::Invalid {
            attribute: name,
            reason: format!("{n:?} is not a number"),
        }),
        Some(_) => Err(ItemError::Invalid {
            attribute: name,
            reason: "expected type N".into(),
        }),
    }
}

/// Reads a required number attribute.
pub fn req_n(item: &Item, name: &'static str) -> Result<i64, ItemError> {
    opt_n(item, name)?.ok_or(ItemError::Missing(name))
}

fn parse_n(n: &str) -> Option<i64> {
    n.trim().parse::<i64>().ok().or_else(|| {
        n.trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f as i64)
    })
}

/// Reads the `status` attribute.
pub fn status(item: &Item) -> Result<Status, ItemError> {
    req_s(item, attr::STATUS)?
        .parse()
        .map_err(
            |e: sessionwarden_core::session::UnknownStatus| ItemError::Invalid {
                attribute: attr::STATUS,
                reason: e.to_string(),
            },
        )
}

/// Reads the partition key.
pub fn session_id(item: &Item) -> Result<SessionId, ItemError> {
    req_s(item, attr::SESSION_ID).map(SessionId::new)
}

/// Parses a whole session item.
pub fn session_from_item(item: &Item) -> Result<Session, ItemError> {
    let termination_reason = match opt_s(item, attr::TERMINATION_REASON)? {
        None => None,
        Some(s) => Some(
            TerminationReason::parse(&s).ok_or_else(|| ItemError::Invalid {
                attribute: attr::TERMINATION_REASON,
                reason: format!("unknown reason {s:?}"),
            })?,
        ),
    };
    let created_at = req_n(item, attr::CREATED_AT)?;
    Ok(Session {
        session_id: session_id(item)?,
        user_id: opt_s(item, attr::USER_ID)?,
        tenant_id: opt_s(item, attr::TENANT_ID)?,
        status: status(item)?,
        created_at,
        last_activity_at: opt_n(item, attr::LAST_ACTIVITY_AT)?.unwrap_or(created_at),
        idle_timeout_seconds: opt_n(item, attr::IDLE_TIMEOUT_SECONDS)?,
        absolute_expires_at: opt_n(item, attr::ABSOLUTE_EXPIRES_AT)?,
        sweep_at: opt_n(item, attr::SWEEP_AT)?,
        parent_session_id: opt_s(item, attr::PARENT_SESSION_ID)?.map(SessionId::new),
        ip_address: opt_s(item, attr::IP_ADDRESS)?,
        user_agent: opt_s(item, attr::USER_AGENT)?,
        revoke_scope: opt_s(item, attr::REVOKE_SCOPE)?,
        terminated_at: opt_n(item, attr::TERMINATED_AT)?,
        termination_reason,
        expires_at: opt_n(item, attr::EXPIRES_AT)?,
    })
}

/// Renders a session as an item; `None` fields are left out.
pub fn session_to_item(s: &Session) -> Item {
    let mut item = Item::new();
    let mut put_s = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            item.insert(k.to_string(), AttributeValue::S(v.to_string()));
        }
    };
    put_s(attr::SESSION_ID, Some(s.session_id.expose()));
    put_s(attr::USER_ID, s.user_id.as_deref());
    put_s(attr::TENANT_ID, s.tenant_id.as_deref());
    put_s(attr::STATUS, Some(s.status.as_str()));
    put_s(
        attr::PARENT_SESSION_ID,
        s.parent_session_id.as_ref().map(|p| p.expose()),
    );
    put_s(attr::IP_ADDRESS, s.ip_address.as_deref());
    put_s(attr::USER_AGENT, s.user_agent.as_deref());
    put_s(attr::REVOKE_SCOPE, s.revoke_scope.as_deref());
    put_s(
        attr::TERMINATION_REASON,
        s.termination_reason.map(|r| r.as_str()),
    );
    let mut put_n = |k: &str, v: Option<i64>| {
        if let Some(v) = v {
            item.insert(k.to_string(), AttributeValue::N(v.to_string()));
        }
    };
    put_n(attr::CREATED_AT, Some(s.created_at));
    put_n(attr::LAST_ACTIVITY_AT, Some(s.last_activity_at));
    put_n(attr::IDLE_TIMEOUT_SECONDS, s.idle_timeout_seconds);
    put_n(attr::ABSOLUTE_EXPIRES_AT, s.absolute_expires_at);
    put_n(attr::SWEEP_AT, s.sweep_at);
    put_n(attr::TERMINATED_AT, s.terminated_at);
    put_n(attr::EXPIRES_AT, s.expires_at);
    item
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            session_from_item(&item).unwrap_err(),
            ItemError::Invalid {
                attribute: "lastActivityAt",
                reason: "expected type N".into()
            }
        );
        item.insert(
            attr::LAST_ACTIVITY_AT.into(),
            AttributeValue::N("1.7e3".into()),
        );
        assert_eq!(session_from_item(&item).unwrap().last_activity_at, 1700);
        item.insert(attr::STATUS.into(), AttributeValue::S("ZOMBIE".into()));
        assert!(matches!(
            session_from_item(&item),
            Err(ItemError::Invalid {
                attribute: "status",
                ..
            })
        ));
    }
}
