//! The [`BindingStore`] port on the state table: identity bindings claimed in transactions that
//! also count the burst counters of new bindings, counter reads, and late user bindings.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use sessionwarden_core::anomaly::Binding;
use sessionwarden_core::ports::{BindingStore, Claim, ClaimOutcome, CounterKey};
use sessionwarden_core::session::SessionId;

use super::{n, permanent, s, StateTable, STATE_PK, STATE_SK};
use crate::items::{self, Item};
use crate::PortError;

/// TransactWriteItems takes at most 100 actions.
const MAX_TX_ACTIONS: usize = 100;
/// BatchGetItem takes at most 100 keys.
const MAX_BATCH_GET: usize = 100;

impl BindingStore for StateTable {
    /// Claims bindings with conditional Puts; counters of new bindings are incremented in the same
    /// transaction, so they count each session exactly once. A cancelled transaction names the
    /// claims whose binding already existed (with the existing item, `ALL_OLD`); the rest are retried.
    async fn claim(
        &self,
        claims: &[Claim],
        expires_at: i64,
        counter_expires_at: i64,
    ) -> Result<Vec<ClaimOutcome>, PortError> {
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

    /// Records the identity of a session that authenticated after its INSERT, keeping a user
    /// already bound.
    async fn bind(
        &self,
        id: &SessionId,
        user: &str,
        tenant: Option<&str>,
        expires_at: i64,
    ) -> Result<(), PortError> {
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
            .map_err(|e| crate::sdk_error("DynamoDB.UpdateItem", e))?;
        Ok(())
    }

    /// Reads counters with BatchGetItem (100 keys per request), retrying unprocessed keys.
    async fn counters(&self, keys: &[CounterKey]) -> Result<HashMap<CounterKey, u64>, PortError> {
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
                crate::retry_pause(attempt, 25).await;
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
                    .map_err(|e| crate::sdk_error("DynamoDB.BatchGetItem", e))?;
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
                            items::number(&item, "count").unwrap_or(0).max(0) as u64,
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
                return Err(PortError::Transient {
                    operation: "DynamoDB.BatchGetItem",
                    source: "keys still unprocessed after retries".into(),
                });
            }
        }
        Ok(out)
    }
}

impl StateTable {
    /// One transaction. `Ok(None)`: all claimed. `Ok(Some(existing))`: cancelled, these existed.
    async fn claim_once(
        &self,
        claims: &[Claim],
        idx: &[usize],
        expires_at: i64,
        counter_expires_at: i64,
    ) -> Result<Option<Vec<(usize, Binding)>>, PortError> {
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
                    return Err(PortError::Transient {
                        operation: "DynamoDB.TransactWriteItems",
                        source: Box::new(e),
                    });
                }
                Err(crate::sdk_error("DynamoDB.TransactWriteItems", e))
            }
        }
    }
}
