//! The [`BindingStore`] port on the state table: identity bindings claimed in transactions that
//! also count the burst counters of new bindings, counter reads, and late user bindings.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use sessionwarden_core::anomaly::Binding;
use sessionwarden_core::ports::{BindingStore, Claim, ClaimOutcome, CounterKey};
use sessionwarden_core::session::SessionId;

use super::{n, permanent, s, StateTable, STATE_PK, STATE_SK};
use crate::items::{self, Item};
use crate::PortError;

/// TransactWriteItems takes at most 100 actions.
const MAX_TX_ACTIONS: usize = 100;

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
            let mut parents: Vec<&SessionId> = Vec::new();
            while end < claims.len() {
                let mut extra: Vec<&CounterKey> = claims[end]
                    .counters
                    .iter()
                    .filter(|k| !counters.contains(k))
                    .collect();
                extra.dedup();
                let parent = claims[end].parent.as_ref().filter(|p| !parents.contains(p));
                let actions = (end - start) + 1 + counters.len() + extra.len();
                if actions + parents.len() + usize::from(parent.is_some()) > MAX_TX_ACTIONS {
                    break;
                }
                counters.extend(extra);
                parents.extend(parent);
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

    async fn parents(&self, ids: &[SessionId]) -> Result<HashSet<SessionId>, PortError> {
        self.marked_parents(ids).await
    }

    /// Reads counters with consistent BatchGetItem (100 keys per request).
    async fn counters(&self, keys: &[CounterKey]) -> Result<HashMap<CounterKey, u64>, PortError> {
        let requested: Vec<Item> = keys.iter().map(Self::counter_key).collect();
        // (pk, sk) of each requested key, to match the unordered response.
        let pk_sk = |i: &Item| -> Option<(String, String)> {
            Some((
                i.get(STATE_PK)?.as_s().ok()?.clone(),
                i.get(STATE_SK)?.as_s().ok()?.clone(),
            ))
        };
        let by_key: HashMap<(String, String), &CounterKey> = requested
            .iter()
            .filter_map(pk_sk)
            .zip(keys.iter())
            .collect();
        let (found, _) = crate::batch::get_all(&self.client, &self.table, requested, true).await?;
        Ok(found
            .iter()
            .filter_map(|item| {
                let k = by_key.get(&pk_sk(item)?)?;
                let count = items::number(item, "count").unwrap_or(0).max(0) as u64;
                Some(((*k).clone(), count))
            })
            .collect())
    }
}

impl StateTable {
    /// Which of `ids` carry a parent marker: consistent BatchGetItem, 100 keys per request.
    pub(crate) async fn marked_parents(
        &self,
        ids: &[SessionId],
    ) -> Result<HashSet<SessionId>, PortError> {
        let keys: Vec<Item> = ids.iter().map(|id| self.parent_key(id)).collect();
        let by_pk: HashMap<String, &SessionId> = keys
            .iter()
            .zip(ids)
            .filter_map(|(k, id)| Some((k.get(STATE_PK)?.as_s().ok()?.clone(), id)))
            .collect();
        let (found, _) = crate::batch::get_all(&self.client, &self.table, keys, true).await?;
        Ok(found
            .iter()
            .filter_map(|item| by_pk.get(item.get(STATE_PK)?.as_s().ok()?))
            .map(|id| (*id).clone())
            .collect())
    }

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
        // Parent markers ride in the same transaction: unconditional and idempotent, one per
        // distinct parent, for every claim of the chunk (also one found existing: its child is
        // a child all the same). After the claims, so cancellation reasons still index claims.
        let mut parents: Vec<&SessionId> = Vec::new();
        for &i in idx {
            if let Some(p) = &claims[i].parent {
                if !parents.contains(&p) {
                    parents.push(p);
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
        for p in parents {
            let mut item = self.parent_key(p);
            item.insert("expiresAt".into(), n(expires_at));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map_err(|e| permanent("DynamoDB.TransactWriteItems", e))?;
            actions.push(TransactWriteItem::builder().put(put).build());
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
