//! The state table adapter: identity bindings, burst counters, alert dedup gates and containment
//! requests. Keys never contain a raw session ID: sessions are keyed by their full keyed digest
//! ([`SessionRefKey::state_key`]). The port implementations are split by what they own:
//! [`GateStore`] here, `BindingStore` in `bindings`, `JobStore` in `jobs`, `RosterStore` in
//! `rosters`.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | binding | `binding#<digest>` | `binding` |
//! | burst counter | `burst#user#<userId>` or `burst#tenant#<tenantId>` | window index |
//! | alert gate | `alert#<TYPE>#<subject>` | `gate` (`owner`, `status` PENDING or PUBLISHED) |
//! | cascade job | `cascade#<root request ID>` | `job#<scope>#<subject>` |
//! | session event gate | `alert#SESSION_ENDED#<event ID>` | `gate` (as an alert gate) |
//! | session-limit roster | `roster#<userId>` | `roster` (`seats`, `evicting`, `gone`, `version`) |
//! | end note | `note#<digest>` | `note` (`reason`): why sessionwarden ended a session, on layouts without `terminationReason` |

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

use crate::items::{self, Item};
use crate::PortError;
use sessionwarden_core::anomaly::Binding;
use sessionwarden_core::ports::{BurstScope, CounterKey, GateKey, GateState, GateStore, JobRecord};
use sessionwarden_core::session::SessionId;
use sessionwarden_core::session_ref::SessionRefKey;

mod bindings;
mod jobs;
mod rosters;

/// Partition key of the state table.
pub const STATE_PK: &str = "pk";
/// Sort key of the state table.
pub const STATE_SK: &str = "sk";

/// The state table.
#[derive(Clone, Debug)]
pub struct StateTable {
    pub(crate) client: Client,
    pub(crate) table: String,
    pub(crate) key: SessionRefKey,
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn permanent(
    operation: &'static str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> PortError {
    PortError::Permanent {
        operation,
        source: Box::new(e),
    }
}

impl StateTable {
    /// An adapter over `table`; `key` hashes session IDs into state keys.
    pub fn new(client: Client, table: impl Into<String>, key: SessionRefKey) -> Self {
        StateTable {
            client,
            table: table.into(),
            key,
        }
    }

    pub(crate) fn binding_key(&self, id: &SessionId) -> Item {
        HashMap::from([
            (
                STATE_PK.to_string(),
                s(format!("binding#{}", self.key.state_key(id))),
            ),
            (STATE_SK.to_string(), s("binding")),
        ])
    }

    /// The marker of a session that a child named as its parent.
    pub(crate) fn parent_key(&self, id: &SessionId) -> Item {
        HashMap::from([
            (
                STATE_PK.to_string(),
                s(format!("parent#{}", self.key.state_key(id))),
            ),
            (STATE_SK.to_string(), s("parent")),
        ])
    }

    pub(crate) fn counter_key(k: &CounterKey) -> Item {
        let scope = match k.scope {
            BurstScope::User => "user",
            BurstScope::Tenant => "tenant",
        };
        HashMap::from([
            (STATE_PK.to_string(), s(format!("burst#{scope}#{}", k.id))),
            (STATE_SK.to_string(), s(k.bucket.to_string())),
        ])
    }

    pub(crate) fn binding_of(item: &Item) -> Binding {
        Binding {
            user_id: items::string(item, "userId"),
            tenant_id: items::string(item, "tenantId"),
            insert_seq: items::string(item, "insertSeq"),
        }
    }

    pub(crate) fn gate_key(g: &GateKey) -> Item {
        HashMap::from([
            (
                STATE_PK.to_string(),
                s(format!("alert#{}#{}", g.kind.as_str(), g.subject)),
            ),
            (STATE_SK.to_string(), s("gate")),
        ])
    }

    /// A Put of `item` into this table under `condition`, for [`put_if`].
    pub(crate) fn put_when(&self, item: Item, condition: &str) -> PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
    }

    pub(crate) fn job_key(job: &JobRecord) -> Item {
        HashMap::from([
            (STATE_PK.to_string(), s(format!("cascade#{}", job.root_id))),
            (STATE_SK.to_string(), s(format!("job#{}", job.job_key))),
        ])
    }
}

/// Sends a conditional Put: true if it was applied, false if its condition failed.
pub(crate) async fn put_if(req: PutItemFluentBuilder) -> Result<bool, PortError> {
    match req.send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(crate::sdk_error("DynamoDB.PutItem", e)),
    }
}

impl GateStore for StateTable {
    /// Opens a dedup gate for `owner`: a conditional Put of a PENDING gate that succeeds only if
    /// no gate exists or the existing one has expired (TTL deletion is lazy, so expiry is checked,
    /// not assumed). When the condition fails, `ALL_OLD` says whose gate it is, so this owner's
    /// own earlier attempt (its response lost, or its publish failed) is told from another
    /// record's, without another read.
    async fn open(
        &self,
        g: &GateKey,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<GateState, PortError> {
        let mut item = Self::gate_key(g);
        item.insert("expiresAt".into(), n(until));
        item.insert("openedAt".into(), n(now));
        item.insert("owner".into(), s(owner));
        item.insert("status".into(), s(GATE_PENDING));
        let r = self
            .put_when(item, "attribute_not_exists(pk) OR expiresAt <= :now")
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let old = match r {
            Ok(_) => return Ok(GateState::Ours),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => c.item().cloned(),
                _ => return Err(crate::sdk_error("DynamoDB.PutItem", e)),
            },
        };
        let old = old.unwrap_or_default();
        Ok(
            match (
                items::string(&old, "owner").as_deref() == Some(owner),
                items::string(&old, "status").as_deref(),
            ) {
                (true, Some(GATE_PUBLISHED)) => GateState::Published,
                (true, _) => GateState::Ours,
                (false, _) => GateState::Taken,
            },
        )
    }

    /// Marks `owner`'s gate PUBLISHED. Conditional on the owner, so a gate that expired and was
    /// taken by another record is left alone.
    async fn published(&self, g: &GateKey, owner: &str) -> Result<(), PortError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::gate_key(g)))
            .update_expression("SET #st = :published")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":published", s(GATE_PUBLISHED))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(crate::sdk_error("DynamoDB.UpdateItem", e)),
        }
    }
}

/// A gate opened and not yet published.
const GATE_PENDING: &str = "PENDING";
/// A gate whose alert SNS accepted.
const GATE_PUBLISHED: &str = "PUBLISHED";
