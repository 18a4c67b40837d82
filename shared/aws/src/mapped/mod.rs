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
//!
//! [`due`] reads the due buckets (and the watermark), [`end`] is the ending write; this module
//! holds the keys, the member and session reads, and the filing writes.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue as Av, DeleteRequest, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;

use crate::layout::{self, Read};
use crate::sessions::{decode_cursor, next_cursor};
use crate::state::{n, s, STATE_PK, STATE_SK};
use crate::PortResult;
use sessionwarden_core::cascade_message::Target;
use sessionwarden_core::config::IndexConfig;
use sessionwarden_core::expiry::ExpiryPolicy;
use sessionwarden_core::layout::Mapped;
use sessionwarden_core::ports::{
    CandidatePage, EndOutcome, Filing, Member, MemberPage, Page, PageRequest, Scope, SessionStore,
    Termination,
};
use sessionwarden_core::session::{SessionId, Status};
use sessionwarden_core::session_ref::SessionRefKey;

mod due;
mod end;
mod notes;

type SdkItem = HashMap<String, Av>;

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
    end_notes: bool,
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
            end_notes: false,
        }
    }

    /// With `on` (an events topic is configured), every end first leaves a note of its reason
    /// in the state table, so the stream worker's event names it (these layouts keep no
    /// `terminationReason`); an end that did not happen takes its note back.
    pub fn with_end_notes(mut self, on: bool) -> Self {
        self.end_notes = on;
        self
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

    /// One page of one partition of the state table (a member list, a due bucket's shard).
    async fn state_page(
        &self,
        pk: String,
        limit: u32,
        start: Option<SdkItem>,
    ) -> PortResult<aws_sdk_dynamodb::operation::query::QueryOutput> {
        self.client
            .query()
            .table_name(&self.state_table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", STATE_PK)
            .expression_attribute_values(":pk", s(pk))
            .limit(limit as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| crate::sdk_error("DynamoDB.Query", e))
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
                        Ok(Read::Session(s)) => Some(Member {
                            id: s.id,
                            status: s.image.status.unwrap_or(Status::Active),
                            ended_by: None,
                        }),
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
                    .map(Member::active)
                    .collect();
                (items, out.last_evaluated_key, out.scanned_count as u64)
            }
            (group, _) => {
                let pk = self.group_pk(group).unwrap_or_default();
                let out = self.state_page(pk, page.limit, start).await?;
                let items = out
                    .items()
                    .iter()
                    .filter_map(Self::entry_id)
                    .map(Member::active)
                    .collect();
                (items, out.last_evaluated_key, out.scanned_count as u64)
            }
        };
        Ok(Page {
            items,
            items_read: read,
            requests: 1,
            next: next_cursor(next),
        })
    }

    /// Ends a session through the layout. Without a home on a composite key, every item that
    /// carries the ID ends (a bleed's two items alike).
    async fn end(&self, id: &SessionId, t: &Termination) -> PortResult<EndOutcome> {
        if !self.end_notes {
            return self.end_all(id, t).await;
        }
        self.note(id, Some(t)).await?;
        let outcome = self.end_all(id, t).await?;
        // A lost response of our own delete comes back as `Gone`: the note stays for it.
        if matches!(outcome, EndOutcome::Touched | EndOutcome::AlreadyEnded) {
            self.note(id, None).await?;
        }
        Ok(outcome)
    }

    async fn notes(&self, ids: &[SessionId]) -> PortResult<HashMap<SessionId, String>> {
        self.read_notes(ids).await
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
        crate::batch::write_all(&self.client, &self.state_table, requests)
            .await
            .map(|_| ())
    }
}

impl MappedSessions {
    /// Ends every item of a session (one, unless the layout's key is composite).
    async fn end_all(&self, id: &SessionId, t: &Termination) -> PortResult<EndOutcome> {
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
}
