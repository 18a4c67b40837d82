//! The state table adapter: identity bindings, burst counters, alert dedup gates and containment
//! requests. Keys never contain a raw session ID: sessions are keyed by their full keyed digest
//! ([`crate::session_ref::SessionRefKey::state_key`]).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | binding | `binding#<digest>` | `binding` |
//! | burst counter | `burst#user#<userId>` or `burst#tenant#<tenantId>` | window index |
//! | alert gate | `alert#<TYPE>#<subject>` | `gate` |
//! | cascade job | `cascade#<root request ID>` | `job#<scope>#<subject>` |

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use aws_sdk_dynamodb::Client;

use super::items::{self, Item};
use super::AwsError;
use crate::anomaly::Binding;
use crate::provision::{STATE_PK, STATE_SK};
use crate::session::SessionId;
use crate::session_ref::SessionRefKey;
use crate::stream::service::{BurstScope, Claim, ClaimOutcome, CounterKey, GateKey};

/// TransactWriteItems takes at most 100 actions.
const MAX_TX_ACTIONS: usize = 100;
/// BatchGetItem takes at most 100 keys.
const MAX_BATCH_GET: usize = 100;

/// The state table.
#[derive(Clone, Debug)]
pub struct StateTable {
    client: Client,
    table: String,
    key: SessionRefKey,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn permanent(
    operation: &'static str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> AwsError {
    AwsError::Permanent {
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

    fn binding_key(&self, id: &SessionId) -> Item {
        HashMap::from([
            (
                STATE_PK.to_string(),
                s(format!("binding#{}", self.key.state_key(id))),
            ),
            (STATE_SK.to_string(), s("binding")),
        ])
    }

    fn counter_key(k: &CounterKey) -> Item {
        let scope = match k.scope {
            BurstScope::User => "user",
            BurstScope::Tenant => "tenant",
        };
        HashMap::from([
            (STATE_PK.to_string(), s(format!("burst#{scope}#{}", k.id))),
            (STATE_SK.to_string(), s(k.bucket.to_string())),
        ])
    }

    fn binding_of(item: &Item) -> Binding {
        Binding {
            user_id: items::opt_s(item, "userId").ok().flatten(),
            tenant_id: items::opt_s(item, "tenantId").ok().flatten(),
            insert_seq: items::opt_s(item, "insertSeq").ok().flatten(),
        }
    }

    /// Claims bindings with conditional Puts; counters of new bindings are incremented in the same
    /// transaction, so they count each session exactly once. A cancelled transaction names the
    /// claims whose binding already existed (with the existing item, `ALL_OLD`); the rest are retried.
    pub async fn claim_bindings(
        &self,
        claims: &[Claim],
        expires_at: i64,
        counter_expires_at: i64,
    ) -> Result<Vec<ClaimOutcome>, AwsError> {
        let mut outcomes: Vec<Option<ClaimOutcome>> = vec![None; claims.len()];
        // Pack claims so that a transaction's puts plus its distinct counters fit in 100 actions.
        let mut start = 0;
        while start < claims.len() {
            let mut end = start;
            let mut counters: Vec<&CounterKey> = Vec::new();
            while end < claims.len() {
                let mut extra: Vec<&CounterKey> = claims[end]
                    .counters
                    .iter()
                    .filter(|k| !counters.contains(k))
                    .collect();
                extra.dedup();
                if (end - start) + 1 + counters.len() + extra.len() > MAX_TX_ACTIONS {
                    break;
                }
                counters.extend(extra);
                end += 1;
            }
            let mut open: Vec<usize> = (start..end).collect();
            while !open.is_empty() {
                match self
                    .claim_once(claims, &open, expires_at, counter_expires_at)
                    .await?
                {
                    None => {
                        for i in open.drain(..) {
                            outcomes[i] = Some(ClaimOutcome::Claimed);
                        }
                    }
                    Some(existing) => {
                        for (i, b) in existing {
                            outcomes[i] = Some(ClaimOutcome::Existing(b));
                            open.retain(|j| *j != i);
                        }
                    }
                }
            }
            start = end;
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(ClaimOutcome::Claimed))
            .collect())
    }

    /// One transaction. `Ok(None)`: all claimed. `Ok(Some(existing))`: cancelled, these existed.
    async fn claim_once(
        &self,
        claims: &[Claim],
        idx: &[usize],
        expires_at: i64,
        counter_expires_at: i64,
    ) -> Result<Option<Vec<(usize, Binding)>>, AwsError> {
        let mut actions = Vec::new();
        let mut counts: Vec<(CounterKey, i64)> = Vec::new();
        for &i in idx {
            let c = &claims[i];
            let mut item = self.binding_key(&c.session_id);
            if let Some(u) = &c.binding.user_id {
                item.insert("userId".into(), s(u));
            }
            if let Some(t) = &c.binding.tenant_id {
                item.insert("tenantId".into(), s(t));
            }
            if let Some(q) = &c.binding.insert_seq {
                item.insert("insertSeq".into(), s(q));
            }
            item.insert("expiresAt".into(), n(expires_at));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(|e| permanent("DynamoDB.TransactWriteItems", e))?;
            actions.push(TransactWriteItem::builder().put(put).build());
            for k in &c.counters {
                match counts.iter_mut().find(|(ck, _)| ck == k) {
                    Some((_, v)) => *v += 1,
                    None => counts.push((k.clone(), 1)),
                }
            }
        }
        for (k, v) in &counts {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(Self::counter_key(k)))
                .update_expression("ADD #n :v SET expiresAt = :ttl")
                .expression_attribute_names("#n", "count")
                .expression_attribute_values(":v", n(*v))
                .expression_attribute_values(":ttl", n(counter_expires_at))
                .build()
                .map_err(|e| permanent("DynamoDB.TransactWriteItems", e))?;
            actions.push(TransactWriteItem::builder().update(update).build());
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(e) => {
                if let Some(TransactWriteItemsError::TransactionCanceledException(tc)) =
                    e.as_service_error()
                {
                    let existing: Vec<(usize, Binding)> = tc
                        .cancellation_reasons()
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                        .filter_map(|(pos, r)| {
                            idx.get(pos)
                                .map(|i| (*i, r.item().map(Self::binding_of).unwrap_or_default()))
                        })
                        .collect();
                    if !existing.is_empty() {
                        return Ok(Some(existing));
                    }
                    // Cancelled for another reason (e.g. TransactionConflict with a concurrent
                    // invocation on the same counter): retrying later can succeed.
                    return Err(AwsError::Transient {
                        operation: "DynamoDB.TransactWriteItems",
                        source: Box::new(e),
                    });
                }
                Err(AwsError::from_sdk("DynamoDB.TransactWriteItems", e))
            }
        }
    }

    /// Reads counters with BatchGetItem (100 keys per request), retrying unprocessed keys.
    pub async fn read_counters(
        &self,
        keys: &[CounterKey],
    ) -> Result<HashMap<CounterKey, u64>, AwsError> {
        let mut out = HashMap::new();
        for chunk in keys.chunks(MAX_BATCH_GET) {
            let mut pending: Vec<Item> = chunk.iter().map(Self::counter_key).collect();
            // (pk, sk) of each requested key, to match the unordered response.
            let key_strings: Vec<(String, String)> = pending
                .iter()
                .map(|k| {
                    let part = |n: &str| {
                        k.get(n)
                            .and_then(|v| v.as_s().ok())
                            .cloned()
                            .unwrap_or_default()
                    };
                    (part(STATE_PK), part(STATE_SK))
                })
                .collect();
            let by_key: HashMap<(&str, &str), &CounterKey> = key_strings
                .iter()
                .map(|(p, s)| (p.as_str(), s.as_str()))
                .zip(chunk.iter())
                .collect();
            for attempt in 0..8u32 {
                if pending.is_empty() {
                    break;
                }
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(25 << attempt.min(5)))
                        .await;
                }
                let ka = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| permanent("DynamoDB.BatchGetItem", e))?;
                let resp = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, ka)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("DynamoDB.BatchGetItem", e))?;
                for item in resp
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    let found = (|| {
                        by_key.get(&(
                            item.get(STATE_PK)?.as_s().ok()?.as_str(),
                            item.get(STATE_SK)?.as_s().ok()?.as_str(),
                        ))
                    })();
                    if let Some(k) = found {
                        out.insert(
                            (*k).clone(),
                            items::opt_n(&item, "count")
                                .ok()
                                .flatten()
                                .unwrap_or(0)
                                .max(0) as u64,
                        );
                    }
                }
                pending = resp
                    .unprocessed_keys
                    .and_then(|mut m| m.remove(&self.table))
                    .map(|ka| ka.keys)
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(AwsError::Transient {
                    operation: "DynamoDB.BatchGetItem",
                    source: "keys still unprocessed after retries".into(),
                });
            }
        }
        Ok(out)
    }

    /// Records the identity of a session that authenticated after its INSERT, keeping a user
    /// already bound.
    pub async fn bind_user(
        &self,
        id: &SessionId,
        user: &str,
        tenant: Option<&str>,
        expires_at: i64,
    ) -> Result<(), AwsError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.binding_key(id)))
            .update_expression("SET userId = if_not_exists(userId, :u), tenantId = if_not_exists(tenantId, :t), expiresAt = :ttl")
            .expression_attribute_values(":u", s(user))
            .expression_attribute_values(":ttl", n(expires_at));
        req = req.expression_attribute_values(":t", tenant.map_or(AttributeValue::Null(true), s));
        req.send()
            .await
            .map_err(|e| AwsError::from_sdk("DynamoDB.UpdateItem", e))?;
        Ok(())
    }

    fn gate_key(g: &GateKey) -> Item {
        HashMap::from([
            (
                STATE_PK.to_string(),
                s(format!("alert#{}#{}", g.kind.as_str(), g.subject)),
            ),
            (STATE_SK.to_string(), s("gate")),
        ])
    }

    /// Opens a dedup gate: a conditional Put that succeeds only if no gate exists or the existing
    /// one has expired (TTL deletion is lazy, so expiry is checked, not assumed).
    pub async fn open_gate(&self, g: &GateKey, now: i64, until: i64) -> Result<bool, AwsError> {
        let mut item = Self::gate_key(g);
        item.insert("expiresAt".into(), n(until));
        item.insert("openedAt".into(), n(now));
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expiresAt <= :now")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(AwsError::from_sdk("DynamoDB.PutItem", e)),
        }
    }

    /// Removes a gate (after a failed publish).
    pub async fn close_gate(&self, g: &GateKey) -> Result<(), AwsError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::gate_key(g)))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DynamoDB.DeleteItem", e))?;
        Ok(())
    }
}

impl StateTable {
    fn job_key(job: &crate::cascade::service::JobRecord) -> Item {
        HashMap::from([
            (STATE_PK.to_string(), s(format!("cascade#{}", job.root_id))),
            (STATE_SK.to_string(), s(format!("job#{}", job.job_key))),
        ])
    }

    /// Creates a cascade job record (`RUNNING`) unless it exists; true if this call created it.
    pub async fn job_started(
        &self,
        job: &crate::cascade::service::JobRecord,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, AwsError> {
        let mut item = Self::job_key(job);
        item.insert("scope".into(), s(job.scope));
        item.insert("subject".into(), s(&job.subject));
        item.insert("reason".into(), s(&job.reason));
        item.insert("requestedBy".into(), s(&job.requested_by));
        item.insert("depth".into(), n(job.depth as i64));
        item.insert("status".into(), s("RUNNING"));
        item.insert("startedAt".into(), n(now));
        item.insert("ended".into(), n(0));
        item.insert("pages".into(), n(0));
        item.insert("expiresAt".into(), n(expires_at));
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(AwsError::from_sdk("DynamoDB.PutItem", e)),
        }
    }

    /// Adds a page's counts to a job record.
    pub async fn job_progress(
        &self,
        job: &crate::cascade::service::JobRecord,
        ended: u64,
        pages: u64,
    ) -> Result<(), AwsError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::job_key(job)))
            .update_expression("ADD ended :e, pages :p")
            .expression_attribute_values(":e", n(ended as i64))
            .expression_attribute_values(":p", n(pages as i64))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DynamoDB.UpdateItem", e))?;
        Ok(())
    }

    /// Marks a job completed; returns its total of ended sessions if this call completed it.
    pub async fn job_completed(
        &self,
        job: &crate::cascade::service::JobRecord,
        now: i64,
    ) -> Result<Option<u64>, AwsError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::job_key(job)))
            .update_expression("SET #st = :done, completedAt = :now")
            .condition_expression("#st = :running")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":done", s("COMPLETED"))
            .expression_attribute_values(":running", s("RUNNING"))
            .expression_attribute_values(":now", n(now))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match r {
            Ok(out) => Ok(Some(
                out.attributes
                    .as_ref()
                    .and_then(|a| items::opt_n(a, "ended").ok().flatten())
                    .unwrap_or(0)
                    .max(0) as u64,
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsError::from_sdk("DynamoDB.UpdateItem", e)),
        }
    }
}
