//! Cleanup's read of the own due index: the finished buckets from the watermark on, one Query
//! per bucket and shard (a bucket's shards queried at once), each page of entries re-checked
//! against the sessions table with a consistent BatchGetItem; and the watermark where the next
//! run starts.

use serde::{Deserialize, Serialize};

use super::MappedSessions;
use crate::layout::{self, Read, Seen};
use crate::sessions::{decode_cursor, next_cursor};
use crate::state::{n, s, STATE_PK, STATE_SK};
use crate::{PortError, PortResult};
use sessionwarden_core::ports::{Candidate, CandidatePage, Page, PageRequest, Unreadable};
use sessionwarden_core::session::{SessionId, Status};
use std::collections::HashMap;

/// Where a cleanup read is: the bucket; the shards of it still to read, each with the last key
/// read there (`None`: every shard, from its start); the oldest bucket that held entries in this
/// run; the last finished bucket; and the watermark the run started from (if one was stored).
#[derive(Serialize, Deserialize)]
struct Position {
    b: i64,
    #[serde(default)]
    p: Option<Vec<(u32, Option<String>)>>,
    f: Option<i64>,
    e: i64,
    #[serde(default)]
    w: Option<i64>,
}

impl MappedSessions {
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
    /// One page of the finished due buckets, from the watermark on.
    pub(super) async fn due_page(&self, now: i64, page: PageRequest) -> PortResult<CandidatePage> {
        let mut pos = match page.cursor.as_deref() {
            Some(c) => serde_json::from_str::<Position>(c).map_err(|_| PortError::Permanent {
                operation: "DynamoDB.Query",
                source: "cursor is not one sessionwarden wrote".into(),
            })?,
            None => {
                let end = self.index.bucket(now) - 1;
                let stored = self.watermark().await?;
                Position {
                    b: stored
                        .unwrap_or_else(|| self.index.bucket(now - self.index.lookback_seconds)),
                    p: None,
                    f: None,
                    e: end,
                    w: stored,
                }
            }
        };
        let mut requests = 0;
        loop {
            if pos.b > pos.e {
                // Every finished bucket is read: the next run starts at the oldest one that held
                // entries (they may not all have ended), or at the last one, where the stream
                // files sessions that are already past due.
                let next = pos.f.unwrap_or(pos.e).min(pos.e);
                if pos.w != Some(next) {
                    self.set_watermark(next).await?;
                }
                return Ok(Page {
                    items: vec![],
                    items_read: 0,
                    requests,
                    next: None,
                });
            }
            // Every shard of the bucket still to read, queried at once: a page costs one round
            // trip, not one per shard, and shares the page's size among them.
            let pending = pos
                .p
                .take()
                .unwrap_or_else(|| (0..self.index.shards).map(|s| (s, None)).collect());
            let per_shard = (page.limit.clamp(1, 1000) as usize).div_ceil(pending.len().max(1));
            let bucket = pos.b;
            let reads = pending.iter().map(|(shard, key)| async move {
                let start = key.as_deref().map(decode_cursor).transpose()?;
                let out = self
                    .state_page(self.due_pk(bucket, *shard), per_shard as u32, start)
                    .await?;
                Ok::<_, PortError>((*shard, out))
            });
            let outs = futures::future::try_join_all(reads).await?;
            requests += outs.len() as u64;
            let mut entries = Vec::new();
            let mut rest = Vec::new();
            for (shard, out) in outs {
                if let Some(k) = next_cursor(out.last_evaluated_key) {
                    rest.push((shard, Some(k)));
                }
                entries.extend(out.items.unwrap_or_default());
            }
            if rest.is_empty() {
                pos.b += 1;
            } else {
                pos.p = Some(rest);
            }
            if entries.is_empty() {
                continue;
            }
            pos.f.get_or_insert(bucket);
            let ids: Vec<SessionId> = entries.iter().filter_map(Self::entry_id).collect();
            let keys = ids
                .iter()
                .filter_map(|id| layout::key_of(&self.layout, id))
                .collect();
            let (found, gets) =
                crate::batch::get_all(&self.client, &self.table, keys, true).await?;
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
                        Some(Ok(Read::Session(seen))) => Ok(candidate(*seen, id, Some(bucket))),
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
    pub(super) async fn scan_page(
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
                Ok(Read::Session(seen)) => {
                    let id = seen.id.clone();
                    Some(Ok(candidate(*seen, id, None)))
                }
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
            next: next_cursor(out.last_evaluated_key),
        })
    }
}

/// A cleanup candidate from a session read through the layout. A session that only lapsed (past
/// its TTL deadline, ended by no write) is still ACTIVE to cleanup: ending it is cleanup's job.
fn candidate(seen: Seen, id: SessionId, slot: Option<i64>) -> Candidate {
    Candidate {
        status: if seen.image.lapsed {
            Status::Active
        } else {
            seen.image.status.unwrap_or(Status::Active)
        },
        clock: seen.image.clock(),
        fence: seen.fence,
        id,
        slot,
    }
}
