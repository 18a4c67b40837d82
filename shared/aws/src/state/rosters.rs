//! [`RosterStore`] on the state table: one item per user (`roster#<userId>`, `roster`) holding
//! the session limit's roster and a version. A save is a Put conditional on the version it read;
//! its `writer` token tells, from `ALL_OLD`, a save of ours whose response was lost (and that the
//! SDK retried into a failed condition) from another invocation's.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use serde::{Deserialize, Serialize};

use super::{n, s, StateTable, STATE_PK, STATE_SK};
use crate::items::{self, Item};
use crate::PortError;
use sessionwarden_core::limit::{Roster, Seat};
use sessionwarden_core::ports::{RosterStore, StoredRoster};
use sessionwarden_core::session::SessionId;

/// The stored shape of a roster.
#[derive(Debug, Default, Serialize, Deserialize)]
struct RosterItem {
    #[serde(default)]
    seats: Vec<SeatItem>,
    #[serde(default)]
    evicting: Vec<String>,
    #[serde(default)]
    gone: Vec<(String, i64)>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    writer: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct SeatItem {
    id: String,
    at: i64,
}

impl StateTable {
    fn roster_key(user: &str) -> Item {
        Item::from([
            (STATE_PK.to_string(), s(format!("roster#{user}"))),
            (STATE_SK.to_string(), s("roster")),
        ])
    }
}

fn roster_of(r: RosterItem) -> StoredRoster {
    StoredRoster {
        roster: Roster {
            seats: r
                .seats
                .into_iter()
                .map(|x| Seat {
                    id: SessionId::new(x.id),
                    created_at: x.at,
                })
                .collect(),
            evicting: r.evicting.into_iter().map(SessionId::new).collect(),
            gone: r.gone,
            tenant: r.tenant,
        },
        version: r.version,
    }
}

impl RosterStore for StateTable {
    async fn roster(&self, user: &str) -> Result<StoredRoster, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::roster_key(user)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| crate::sdk_error("DynamoDB.GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(StoredRoster::default());
        };
        let r: RosterItem =
            items::from_item(&item).map_err(|e| super::permanent("DynamoDB.GetItem", e))?;
        Ok(roster_of(r))
    }

    async fn save(
        &self,
        user: &str,
        roster: &Roster,
        version: u64,
        until: i64,
    ) -> Result<bool, PortError> {
        let writer = format!("{:032x}", rand::random::<u128>());
        let stored = RosterItem {
            seats: roster
                .seats
                .iter()
                .map(|x| SeatItem {
                    id: x.id.expose().to_string(),
                    at: x.created_at,
                })
                .collect(),
            evicting: roster
                .evicting
                .iter()
                .map(|i| i.expose().to_string())
                .collect(),
            gone: roster.gone.clone(),
            tenant: roster.tenant.clone(),
            version: version + 1,
            writer: writer.clone(),
        };
        let mut item = items::to_item(&stored);
        item.extend(Self::roster_key(user));
        item.insert("expiresAt".into(), n(until));
        let condition = if version == 0 {
            "attribute_not_exists(pk)"
        } else {
            "version = :v"
        };
        let mut req = self
            .put_when(item, condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if version != 0 {
            req = req.expression_attribute_values(":v", n(version as i64));
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                // Our own write, applied, whose response was lost: the item carries our token.
                Some(PutItemError::ConditionalCheckFailedException(c)) => Ok(c
                    .item()
                    .is_some_and(|old| items::string(old, "writer").as_deref() == Some(&writer))),
                _ => Err(crate::sdk_error("DynamoDB.PutItem", e)),
            },
        }
    }
}
