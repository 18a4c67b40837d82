//! The [`SessionStore`] port on a table of any non-native layout (connect-dynamodb, Auth.js,
//! custom). Such a table has no GSI sessionwarden can rely on, so sessionwarden keeps its own
//! indexes in the state table, filed from the stream ([`Filing`]):
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | due entry | `due#<bucket>#<shard>` | `<digest>[#<home>]` | `id`, `home`, `dueAt` |
//! | member entry | `member#user#<u>`, `member#tenant#<t>`, `member#family#<digest>` | same | `id`, `home` |
//! | watermark | `due#watermark` | `due` | `bucket`: the oldest bucket cleanup has not finished |
//!
//! The digest is the keyed hash of the session ID; `id` and `home` hold the item's key, as a GSI
//! of the sessions table would. Cleanup reads only the finished buckets from the watermark on
//! (one Query per bucket and shard), re-checks every entry against the table with a consistent
//! BatchGetItem, and ends it through the layout with a conditional write, so its reads follow the
//! due sessions, not the table size.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue as Av, DeleteRequest, KeysAndAttributes, PutRequest,
    ReturnValuesOnConditionCheckFailure, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use crate::layout::{self, Read};
use crate::sessions::{decode_cursor, encode_cursor};
use crate::state::{n, s, STATE_PK, STATE_SK};
use crate::{PortError, PortResult};
use sessionwarden_core::cascade_message::Target;
use sessionwarden_core::config::IndexConfig;
use sessionwarden_core::expiry::ExpiryPolicy;
use sessionwarden_core::layout::{Active, End, Mapped};
use sessionwarden_core::ports::{
    Candidate, CandidatePage, EndOutcome, Filing, MemberPage, Page, PageRequest, Scope,
    SessionStore, Slot, Termination, Unreadable,
};
use sessionwarden_core::session::{SessionId, Status};
use sessionwarden_core::session_ref::SessionRefKey;

type SdkItem = HashMap<String, Av>;

const MAX_BATCH_WRITE: usize = 25;
const MAX_BATCH_GET: usize = 100;
/// Due entries outlive their due time by this much at most, whatever happens to the session.
const DUE_ENTRY_RETENTION: i64 = 30 * 86_400;

/// A sessions table of a mapped layout, with sessionwarden's own indexes in the state table.
#[derive(Clone, Debug)]
pub struct MappedSessions {
    client: Client,
    table: String,
    state_table: String,
    layout: Mapped,
    key: SessionRefKey,
    policy: ExpiryPolicy,
    index: IndexConfig,
}

/// Where a cleanup read is: the bucket and shard, the last key read there, the oldest bucket
/// that held entries in this run, and the last finished bucket.
#[derive(Serialize, Deserialize)]
struct Position {
    b: i64,
    s: u32,
    k: Option<String>,
    f: Option<i64>,
    e: i64,
}

impl MappedSessions {
    /// An adapter over `table` (read through `layout`) and the indexes in `state_table`.
    pub fn new(
        client: Client,
        table: impl Into<String>,
        state_table: impl Into<String>,
        layout: Mapped,
        key: SessionRefKey,
        policy: ExpiryPolicy,
        index: IndexConfig,
    ) -> Self {
        MappedSessions {
            client,
            table: table.into(),
            state_table: state_table.into(),
            layout,
            key,
            policy,
            index,
        }
    }

    /// The layout.
    pub fn layout(&self) -> &Mapped {
        &self.layout
    }

    fn entry_sk(&self, id: &SessionId) -> String {
        let digest = self.key.state_key(id);
        match id.home() {
            Some(h) => format!("{digest}#{h}"),
            None => digest,
        }
    }

    fn shard(&self, id: &SessionId) -> u32 {
        let digest = self.key.state_key(id);
        u32::from_str_radix(&digest[..8], 16).unwrap_or(0) % self.index.shards
    }

    fn due_pk(&self, bucket: i64, shard: u32) -> String {
        format!("due#{bucket}#{shard}")
    }

    fn group_pk(&self, group: &Target) -> Option<String> {
        Some(match group {
            Target::User(u) => format!("member#user#{u}"),
            Target::Tenant(t) => format!("member#tenant#{t}"),
            Target::Family(p) => format!("member#family#{}", self.key.state_key(p)),
            Target::Session(_) => return None,
        })
    }

    fn entry(&self, pk: String, id: &SessionId) -> SdkItem {
        let mut item = HashMap::from([
            (STATE_PK.to_string(), s(pk)),
            (STATE_SK.to_string(), s(self.entry_sk(id))),
            ("id".to_string(), s(id.expose())),
        ]);
        if let Some(h) = id.home() {
            item.insert("home".into(), s(h));
        }
        item
    }

    fn key(&self, pk: String, id: &SessionId) -> SdkItem {
        HashMap::from([
            (STATE_PK.to_string(), s(pk)),
            (STATE_SK.to_string(), s(self.entry_sk(id))),
        ])
    }

    /// The session an index entry names.
    fn entry_id(item: &SdkItem) -> Option<SessionId> {
        let id = item.get("id")?.as_s().ok()?;
        Some(match item.get("home").and_then(|h| h.as_s().ok()) {
            Some(h) => SessionId::homed(id, h),
            None => SessionId::new(id),
        })
    }

    /// Writes and deletes in batches of 25, retrying unprocessed ones.
    async fn batch_write(&self, table: &str, requests: Vec<WriteRequest>) -> PortResult<()> {
        for chunk in requests.chunks(MAX_BATCH_WRITE) {
            let mut pending = chunk.to_vec();
            for attempt in 0..8u32 {
                if pending.is_empty() {
                    break;
                }
                crate::retry_pause(attempt, 25).await;
                let resp = self
                    .client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await
                    .map_err(|e| crate::sdk_error("DynamoDB.BatchWriteItem", e))?;
                pending = resp
                    .unprocessed_items
                    .and_then(|mut m| m.remove(table))
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(PortError::Transient {
                    operation: "DynamoDB.BatchWriteItem",
                    source: "writes still unprocessed after retries".into(),
                });
            }
        }
        Ok(())
    }

    /// Reads items by key with consistent BatchGetItem, 100 per request. Returns them and the
    /// number of requests.
    async fn batch_get(&self, keys: Vec<SdkItem>) -> PortResult<(Vec<SdkItem>, u64)> {
        let mut found = Vec::new();
        let mut requests = 0;
        for chunk in keys.chunks(MAX_BATCH_GET) {
            let mut pending = chunk.to_vec();
            for attempt in 0..8u32 {
                if pending.is_empty() {
                    break;
                }
                crate::retry_pause(attempt, 25).await;
                let ka = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| crate::state::permanent("DynamoDB.BatchGetItem", e))?;
                let resp = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, ka)
                    .send()
                    .await
                    .map_err(|e| crate::sdk_error("DynamoDB.BatchGetItem", e))?;
                requests += 1;
                found.extend(
                    resp.responses
                        .and_then(|mut r| r.remove(&self.table))
                        .unwrap_or_default(),
                );
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
        Ok((found, requests))
    }

    async fn watermark(&self) -> PortResult<Option<i64>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.state_table)
            .key(STATE_PK, s("due#watermark"))
            .key(STATE_SK, s("due"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| crate::sdk_error("DynamoDB.GetItem", e))?;
        Ok(out
            .item
            .as_ref()
            .and_then(|i| crate::items::number(i, "bucket")))
    }

    /// Records where the next cleanup run starts (the oldest bucket that may hold entries).
    pub async fn set_watermark(&self, bucket: i64) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(&self.state_table)
            .item(STATE_PK, s("due#watermark"))
            .item(STATE_SK, s("due"))
            .item("bucket", n(bucket))
            .send()
            .await
            .map_err(|e| crate::sdk_error("DynamoDB.PutItem", e))?;
        Ok(())
    }

    /// Lowers the watermark to `bucket` if it is higher or unset (backfill's entries may sit in
    /// buckets the cleanup has passed).
    pub async fn lower_watermark(&self, bucket: i64) -> PortResult<()> {
        match self.watermark().await? {
            Some(w) if w <= bucket => Ok(()),
            _ => self.set_watermark(bucket).await,
        }
    }

    /// Reads one session's items through the layout: by key, or (no home on a composite key)
    /// through the ID index. Consistent where DynamoDB allows it.
    pub async fn items_of(&self, id: &SessionId) -> PortResult<Vec<SdkItem>> {
        if let Some(key) = layout::key_of(&self.layout, id) {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| crate::sdk_error("DynamoDB.GetItem", e))?;
            return Ok(out.item.into_iter().collect());
        }
        let Some(ix) = &self.layout.id_index else {
            return Ok(vec![]);
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(&ix.name)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", &ix.key.attribute)
            .expression_attribute_values(":v", s(format!("{}{}", ix.key.prefix, id.expose())))
            .send()
            .await
            .map_err(|e| crate::sdk_error("DynamoDB.Query", e))?;
        Ok(out.items.unwrap_or_default())
    }

    fn read_sdk(&self, item: &SdkItem, now: i64) -> Result<Read, String> {
        layout::read(&self.layout, &layout::from_sdk(item), now)
    }

    /// Ends one item (addressed by `key`) with the layout's end action.
    async fn end_item(&self, key: SdkItem, t: &Termination) -> PortResult<EndOutcome> {
        let m = &self.layout;
        let mut names = HashMap::from([("#id".to_string(), m.id.attribute.clone())]);
        let mut values: HashMap<String, Av> = HashMap::new();
        let mut cond = vec!["attribute_exists(#id)".to_string()];
        if let Some(fence) = &t.fence {
            let f = m.fence().map(|f| f.attribute.clone()).unwrap_or_default();
            names.insert("#f".into(), f);
            match &fence.0 {
                Some(raw) => {
                    cond.push("#f = :seen".into());
                    values.insert(":seen".into(), layout::fence_value(raw));
                }
                None => cond.push("attribute_not_exists(#f)".into()),
            }
        }
        let mut sets = Vec::new();
        match &m.active {
            Active::Exists => {}
            Active::Flag(a) => {
                names.insert("#act".into(), a.clone());
                values.insert(":on".into(), Av::Bool(true));
                values.insert(":off".into(), Av::Bool(false));
                cond.push("#act = :on".into());
                sets.push("#act = :off".to_string());
            }
            Active::Status {
                attribute,
                active,
                ended,
            } => {
                names.insert("#act".into(), attribute.clone());
                let alts: Vec<String> = (0..active.len()).map(|i| format!(":a{i}")).collect();
                for (name, v) in alts.iter().zip(active) {
                    values.insert(name.clone(), s(v.clone()));
                }
                cond.push(format!("#act IN ({})", alts.join(", ")));
                values.insert(":ended".into(), s(ended.clone()));
                sets.push("#act = :ended".to_string());
            }
        }
        let ended_at = match &m.end {
            End::Set { ended_at: Some(f) } => {
                names.insert("#at".into(), f.attribute.clone());
                let v = layout::time_value(f.format, t.at);
                values.insert(":at".into(), v.clone());
                sets.push("#at = :at".into());
                Some((f.attribute.clone(), v))
            }
            _ => None,
        };
        if let (End::Set { .. }, Some(ttl), false) = (&m.end, &m.ttl, m.ttl_is_deadline) {
            names.insert("#ttl".into(), ttl.attribute.clone());
            values.insert(
                ":ttl".into(),
                layout::time_value(ttl.format, t.retain_until),
            );
            sets.push("#ttl = :ttl".into());
        }
        let condition = cond.join(" AND ");
        let old = match &m.end {
            End::Delete => {
                let r = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .condition_expression(condition)
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values((!values.is_empty()).then_some(values))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .send()
                    .await;
                match r {
                    Ok(_) => return Ok(EndOutcome::Ended),
                    Err(e) => match e.as_service_error() {
                        Some(DeleteItemError::ConditionalCheckFailedException(c)) => {
                            c.item().cloned()
                        }
                        _ => return Err(crate::sdk_error("DynamoDB.DeleteItem", e)),
                    },
                }
            }
            End::Set { .. } => {
                let r = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .update_expression(format!("SET {}", sets.join(", ")))
                    .condition_expression(condition)
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values(Some(values))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .send()
                    .await;
                match r {
                    Ok(_) => return Ok(EndOutcome::Ended),
                    Err(e) => match e.as_service_error() {
                        Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                            c.item().cloned()
                        }
                        _ => return Err(crate::sdk_error("DynamoDB.UpdateItem", e)),
                    },
                }
            }
        };
        // ALL_OLD says why, without another read.
        let Some(old) = old else {
            return Ok(EndOutcome::Gone);
        };
        // Our own write whose response was lost: the item carries exactly our end.
        if let Some((attr, v)) = &ended_at {
            let ended =
                matches!(self.read_sdk(&old, t.at), Ok(Read::Session(s)) if s.image.is_ended());
            if ended && old.get(attr) == Some(v) {
                return Ok(EndOutcome::Ended);
            }
        }
        Ok(match self.read_sdk(&old, t.at) {
            Ok(Read::Session(seen)) if !seen.image.is_ended() || seen.image.lapsed => {
                // Touched since the read: file it where it is due now.
                if let Some(due) = self.policy.due_at(&seen.image.clock()) {
                    let slot = Slot {
                        bucket: self.index.bucket(due).max(self.index.bucket(t.at) - 1),
                        due_at: due,
                    };
                    self.file(&[Filing::Due {
                        id: seen.id,
                        from: None,
                        to: Some(slot),
                    }])
                    .await?;
                }
                EndOutcome::Touched
            }
            _ => EndOutcome::AlreadyEnded,
        })
    }

    /// One page of the finished due buckets, from the watermark on.
    async fn due_page(&self, now: i64, page: PageRequest) -> PortResult<CandidatePage> {
        let mut pos = match page.cursor.as_deref() {
            Some(c) => serde_json::from_str::<Position>(c).map_err(|_| PortError::Permanent {
                operation: "DynamoDB.Query",
                source: "cursor is not one sessionwarden wrote".into(),
            })?,
            None => {
                let end = self.index.bucket(now) - 1;
                let start = match self.watermark().await? {
                    Some(w) => w,
                    None => self.index.bucket(now - self.index.lookback_seconds),
                };
                Position {
                    b: start,
                    s: 0,
                    k: None,
                    f: None,
                    e: end,
                }
            }
        };
        let mut requests = 0;
        loop {
            if pos.b > pos.e {
                // Every finished bucket is read: the next run starts at the oldest one that held
                // entries (they may not all have ended), or at the last one, where the stream
                // files sessions that are already past due.
                self.set_watermark(pos.f.unwrap_or(pos.e).min(pos.e))
                    .await?;
                return Ok(Page {
                    items: vec![],
                    items_read: 0,
                    requests,
                    next: None,
                });
            }
            let start = pos.k.as_deref().map(decode_cursor).transpose()?;
            let out = self
                .client
                .query()
                .table_name(&self.state_table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", STATE_PK)
                .expression_attribute_values(":pk", s(self.due_pk(pos.b, pos.s)))
                .limit(page.limit.clamp(1, 1000) as i32)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| crate::sdk_error("DynamoDB.Query", e))?;
            requests += 1;
            let bucket = pos.b;
            match out.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(k) => pos.k = Some(encode_cursor(&k)),
                None => {
                    pos.k = None;
                    pos.s += 1;
                    if pos.s >= self.index.shards {
                        pos.s = 0;
                        pos.b += 1;
                    }
                }
            }
            let entries = out.items.unwrap_or_default();
            if entries.is_empty() {
                continue;
            }
            pos.f.get_or_insert(bucket);
            let ids: Vec<SessionId> = entries.iter().filter_map(Self::entry_id).collect();
            let keys = ids
                .iter()
                .filter_map(|id| layout::key_of(&self.layout, id))
                .collect();
            let (found, gets) = self.batch_get(keys).await?;
            requests += gets;
            let items_read = found.len() as u64;
            let mut by_id: HashMap<(String, Option<String>), Result<Read, String>> = found
                .iter()
                .map(|item| {
                    let read = self.read_sdk(item, now);
                    let id = layout::id_of(&self.layout, &layout::from_sdk(item))
                        .ok()
                        .flatten();
                    let k = id.map(|i| (i.expose().to_string(), i.home().map(String::from)));
                    (k.unwrap_or_default(), read)
                })
                .collect();
            let items = ids
                .into_iter()
                .map(|id| {
                    let k = (id.expose().to_string(), id.home().map(String::from));
                    match by_id.remove(&k) {
                        // Deleted since it was filed (logout, TTL): it has ended.
                        None => Ok(Candidate {
                            id,
                            status: Status::Terminated,
                            clock: Default::default(),
                            fence: Default::default(),
                            slot: Some(bucket),
                        }),
                        Some(Ok(Read::Session(seen))) => Ok(Candidate {
                            status: if seen.image.lapsed {
                                Status::Active
                            } else {
                                seen.image.status.unwrap_or(Status::Active)
                            },
                            clock: seen.image.clock(),
                            fence: seen.fence,
                            id,
                            slot: Some(bucket),
                        }),
                        Some(Ok(Read::NotSession)) => Err(Unreadable {
                            id: Some(id),
                            reason: "not a session under the layout".into(),
                            slot: Some(bucket),
                        }),
                        Some(Err(reason)) => Err(Unreadable {
                            id: Some(id),
                            reason,
                            slot: Some(bucket),
                        }),
                    }
                })
                .collect();
            return Ok(Page {
                items,
                items_read,
                requests,
                next: Some(serde_json::to_string(&pos).unwrap_or_default()),
            });
        }
    }

    /// One page of a segment of a parallel scan of the whole table, read through the layout
    /// (`CLEANUP_STRATEGY=scan`: for a table whose index is not built yet).
    async fn scan_page(
        &self,
        segment: u32,
        total: u32,
        now: i64,
        page: PageRequest,
    ) -> PortResult<CandidatePage> {
        let start = page.cursor.as_deref().map(decode_cursor).transpose()?;
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .segment(segment as i32)
            .total_segments(total as i32)
            .limit(page.limit as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| crate::sdk_error("DynamoDB.Scan", e))?;
        let items = out
            .items()
            .iter()
            .filter_map(|item| match self.read_sdk(item, now) {
                Ok(Read::NotSession) => None,
                Ok(Read::Session(seen)) => Some(Ok(Candidate {
                    status: if seen.image.lapsed {
                        Status::Active
                    } else {
                        seen.image.status.unwrap_or(Status::Active)
                    },
                    clock: seen.image.clock(),
                    fence: seen.fence,
                    id: seen.id,
                    slot: None,
                })),
                Err(reason) => Some(Err(Unreadable {
                    id: layout::id_of(&self.layout, &layout::from_sdk(item))
                        .ok()
                        .flatten(),
                    reason,
                    slot: None,
                })),
            })
            .collect();
        Ok(Page {
            items,
            items_read: out.scanned_count.max(0) as u64,
            requests: 1,
            next: out
                .last_evaluated_key
                .filter(|k| !k.is_empty())
                .map(|k| encode_cursor(&k)),
        })
    }
}

impl SessionStore for MappedSessions {
    async fn due(&self, scope: &Scope, now: i64, page: PageRequest) -> PortResult<CandidatePage> {
        match scope {
            Scope::Index { .. } => self.due_page(now, page).await,
            Scope::Segment { segment, total } => self.scan_page(*segment, *total, now, page).await,
        }
    }

    /// A user's sessions: the user's partition on a layout keyed by user (Auth.js), else the
    /// member list the stream built. Tenants and families: the member lists. One session: its
    /// items, through the ID index on a composite key.
    async fn members(&self, target: &Target, page: PageRequest) -> PortResult<MemberPage> {
        let m = &self.layout;
        let start = page.cursor.as_deref().map(decode_cursor).transpose()?;
        let (items, next, read) = match (target, &m.home) {
            (Target::Session(id), _) => {
                let found = self.items_of(id).await?;
                let now = chrono::Utc::now().timestamp();
                let items = found
                    .iter()
                    .filter_map(|i| match self.read_sdk(i, now) {
                        Ok(Read::Session(s)) => {
                            Some((s.id, s.image.status.unwrap_or(Status::Active)))
                        }
                        _ => None,
                    })
                    .collect::<Vec<_>>();
                let n = found.len() as u64;
                (items, None, n)
            }
            (Target::User(u), Some(home)) if m.home_is_user => {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("#h = :h AND begins_with(#id, :p)")
                    .expression_attribute_names("#h", &home.attribute)
                    .expression_attribute_names("#id", &m.id.attribute)
                    .expression_attribute_values(":h", s(format!("{}{u}", home.prefix)))
                    .expression_attribute_values(":p", s(m.id.prefix.clone()))
                    .projection_expression("#h, #id")
                    .limit(page.limit as i32)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| crate::sdk_error("DynamoDB.Query", e))?;
                let items = out
                    .items()
                    .iter()
                    .filter_map(|i| layout::id_of(m, &layout::from_sdk(i)).ok().flatten())
                    .map(|id| (id, Status::Active))
                    .collect();
                (items, out.last_evaluated_key, out.scanned_count as u64)
            }
            (group, _) => {
                let pk = self.group_pk(group).unwrap_or_default();
                let out = self
                    .client
                    .query()
                    .table_name(&self.state_table)
                    .key_condition_expression("#pk = :pk")
                    .expression_attribute_names("#pk", STATE_PK)
                    .expression_attribute_values(":pk", s(pk))
                    .limit(page.limit as i32)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| crate::sdk_error("DynamoDB.Query", e))?;
                let items = out
                    .items()
                    .iter()
                    .filter_map(Self::entry_id)
                    .map(|id| (id, Status::Active))
                    .collect();
                (items, out.last_evaluated_key, out.scanned_count as u64)
            }
        };
        Ok(Page {
            items,
            items_read: read,
            requests: 1,
            next: next.filter(|k| !k.is_empty()).map(|k| encode_cursor(&k)),
        })
    }

    /// Ends a session through the layout. Without a home on a composite key, every item that
    /// carries the ID ends (a bleed's two items alike).
    async fn end(&self, id: &SessionId, t: &Termination) -> PortResult<EndOutcome> {
        if let Some(key) = layout::key_of(&self.layout, id) {
            return self.end_item(key, t).await;
        }
        let items = self.items_of(id).await?;
        let mut outcome = EndOutcome::Gone;
        for item in items {
            let Ok(Some(found)) = layout::id_of(&self.layout, &layout::from_sdk(&item)) else {
                continue;
            };
            let Some(key) = layout::key_of(&self.layout, &found) else {
                continue;
            };
            match self.end_item(key, t).await? {
                EndOutcome::Ended => outcome = EndOutcome::Ended,
                o if outcome == EndOutcome::Gone => outcome = o,
                _ => {}
            }
        }
        Ok(outcome)
    }

    async fn file(&self, filings: &[Filing]) -> PortResult<()> {
        let mut requests = Vec::new();
        let put = |item: SdkItem| {
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().ok()?)
                .build()
                .into()
        };
        let delete = |key: SdkItem| {
            WriteRequest::builder()
                .delete_request(DeleteRequest::builder().set_key(Some(key)).build().ok()?)
                .build()
                .into()
        };
        for f in filings {
            let w: Vec<Option<WriteRequest>> = match f {
                Filing::Due { id, from, to } => {
                    let shard = self.shard(id);
                    let mut w = Vec::new();
                    if let Some(b) = from.filter(|b| Some(*b) != to.map(|t| t.bucket)) {
                        w.push(delete(self.key(self.due_pk(b, shard), id)));
                    }
                    if let Some(slot) = to {
                        let mut item = self.entry(self.due_pk(slot.bucket, shard), id);
                        item.insert("dueAt".into(), n(slot.due_at));
                        item.insert("expiresAt".into(), n(slot.due_at + DUE_ENTRY_RETENTION));
                        w.push(put(item));
                    }
                    w
                }
                Filing::Member { id, group, present } => match self.group_pk(group) {
                    None => vec![],
                    Some(pk) if *present => vec![put(self.entry(pk, id))],
                    Some(pk) => vec![delete(self.key(pk, id))],
                },
            };
            requests.extend(w.into_iter().flatten());
        }
        self.batch_write(&self.state_table, requests).await
    }
}
