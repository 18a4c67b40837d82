//! The state table adapter: identity bindings, burst counters, alert dedup gates and containment
//! requests. Keys never contain a raw session ID: sessions are keyed by their full keyed digest
//! ([`SessionRefKey::state_key`]). The port implementations are split by what they own:
//! [`GateStore`] here, `BindingStore` in `bindings`, `JobStore` in `jobs`.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | binding | `binding#<digest>` | `binding` |
//! | burst counter | `burst#user#<userId>` or `burst#tenant#<tenantId>` | window index |
//! | alert gate | `alert#<TYPE>#<subject>` | `gate` |
//! | cascade job | `cascade#<root request ID>` | `job#<scope>#<subject>` |

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use crate::items::{self, Item};
use crate::PortError;
use sessionwarden_core::anomaly::Binding;
use sessionwarden_core::ports::{BurstScope, CounterKey, GateKey, GateStore, JobRecord};
use sessionwarden_core::session::SessionId;
use sessionwarden_core::session_ref::SessionRefKey;

mod bindings;
mod jobs;

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
    /// Opens a dedup gate: a conditional Put that succeeds only if no gate exists or the existing
    /// one has expired (TTL deletion is lazy, so expiry is checked, not assumed).
    async fn open(&self, g: &GateKey, now: i64, until: i64) -> Result<bool, PortError> {
        let mut item = Self::gate_key(g);
        item.insert("expiresAt".into(), n(until));
        item.insert("openedAt".into(), n(now));
        put_if(
            self.put_when(item, "attribute_not_exists(pk) OR expiresAt <= :now")
                .expression_attribute_values(":now", n(now)),
        )
        .await
    }

    /// Removes a gate (after a failed publish).
    async fn close(&self, g: &GateKey) -> Result<(), PortError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::gate_key(g)))
            .send()
            .await
            .map_err(|e| crate::sdk_error("DynamoDB.DeleteItem", e))?;
        Ok(())
    }
}
