//! The sessions table adapter: the [`SessionStore`] port on DynamoDB. Sweep-index queries and
//! minimal-projection parallel scans for cleanup, index queries for cascades, and the one
//! conditional write that ends a session (`ALL_OLD` on failure says why it did not).

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

use crate::items::{self, Item};
use crate::{PortError, PortResult};
use sessionwarden_core::cascade_message::Target;
use sessionwarden_core::ports::{
    Candidate, CandidatePage, EndOutcome, Fence, Filing, Member, MemberPage, Page, PageRequest,
    Scope, SessionStore, Termination, Unreadable,
};
use sessionwarden_core::session::{
    attr, Session, SessionId, Status, PARENT_INDEX, TENANT_INDEX, USER_INDEX,
};

/// Attributes cleanup reads; everything else stays on disk.
const CANDIDATE_PROJECTION: &str =
    "sessionId, #st, lastActivityAt, createdAt, idleTimeoutSeconds, absoluteExpiresAt";

/// The sessions table.
#[derive(Clone, Debug)]
pub struct DynamoSessions {
    client: Client,
    table: String,
}

impl DynamoSessions {
    /// An adapter over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoSessions {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Reads one session with a consistent read.
    pub async fn get(
        &self,
        id: &SessionId,
    ) -> PortResult<Option<Result<Session, items::ItemError>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::SESSION_ID, AttributeValue::S(id.expose().to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| crate::sdk_error("DynamoDB.GetItem", e))?;
        Ok(out.item.map(|i| items::session_from_item(&i)))
    }
}

/// Reads an item as a cleanup candidate. The fence is `lastActivityAt` exactly as stored.
fn candidate(item: &Item) -> Result<Candidate, Unreadable> {
    let c: items::SessionItem = items::from_item(item).map_err(|e| Unreadable {
        id: items::string(item, attr::SESSION_ID).map(SessionId::new),
        reason: e.to_string(),
        slot: None,
    })?;
    let fence = Fence(
        item.get(attr::LAST_ACTIVITY_AT)
            .and_then(|v| v.as_n().ok())
            .cloned(),
    );
    Ok(Candidate {
        clock: c.clock(),
        id: SessionId::new(c.session_id),
        status: c.status,
        fence,
        slot: None,
    })
}

impl SessionStore for DynamoSessions {
    async fn due(&self, scope: &Scope, now: i64, page: PageRequest) -> PortResult<CandidatePage> {
        let (limit, cursor) = (
            page.limit,
            page.cursor.as_deref().map(decode_cursor).transpose()?,
        );
        // Both reads share everything but their selection: ACTIVE sessions only, the minimal
        // projection, one page from the cursor.
        macro_rules! read_page {
            ($req:expr, $operation:literal) => {{
                let out = $req
                    .table_name(&self.table)
                    .expression_attribute_names("#st", attr::STATUS)
                    .expression_attribute_values(
                        ":active",
                        AttributeValue::S(Status::Active.as_str().into()),
                    )
                    .projection_expression(CANDIDATE_PROJECTION)
                    .limit(limit as i32)
                    .set_exclusive_start_key(cursor)
                    .send()
                    .await
                    .map_err(|e| crate::sdk_error($operation, e))?;
                (
                    out.items.unwrap_or_default(),
                    out.scanned_count,
                    out.last_evaluated_key,
                )
            }};
        }
        let (items, scanned, next) = match scope {
            Scope::Index { index } => read_page!(
                self.client
                    .query()
                    .index_name(index)
                    .key_condition_expression("#st = :active AND sweepAt <= :now")
                    .expression_attribute_values(":now", AttributeValue::N(now.to_string())),
                "DynamoDB.Query"
            ),
            Scope::Segment { segment, total } => read_page!(
                self.client
                    .scan()
                    .segment(*segment as i32)
                    .total_segments(*total as i32)
                    .filter_expression("#st = :active"),
                "DynamoDB.Scan"
            ),
        };
        Ok(Page {
            items: items.iter().map(candidate).collect(),
            items_read: scanned.max(0) as u64,
            requests: 1,
            next: next_cursor(next),
        })
    }

    /// One page of the sessions a cascade targets: a Query on `by-user`, `by-tenant` or
    /// `by-parent` (projecting only the key and `status`), or the one session for `session`.
    async fn members(&self, target: &Target, page: PageRequest) -> PortResult<MemberPage> {
        let (limit, cursor) = (page.limit, page.cursor);
        let (index, key_attr, value) = match target {
            Target::User(u) => (USER_INDEX, attr::USER_ID, u.clone()),
            Target::Tenant(t) => (TENANT_INDEX, attr::TENANT_ID, t.clone()),
            Target::Family(p) => (
                PARENT_INDEX,
                attr::PARENT_SESSION_ID,
                p.expose().to_string(),
            ),
            Target::Session(id) => {
                let sessions = match self.get(id).await? {
                    Some(Ok(s)) => vec![Member {
                        ended_by: None,
                        id: s.session_id,
                        status: s.status,
                    }],
                    _ => vec![],
                };
                let items_read = sessions.len() as u64;
                return Ok(Page {
                    items: sessions,
                    items_read,
                    requests: 1,
                    next: None,
                });
            }
        };
        let start = cursor.as_deref().map(decode_cursor).transpose()?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", key_attr)
            .expression_attribute_names("#st", attr::STATUS)
            .expression_attribute_values(":v", AttributeValue::S(value))
            .projection_expression("sessionId, #st, terminatedBy")
            .limit(limit as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| crate::sdk_error("DynamoDB.Query", e))?;
        let sessions = out
            .items()
            .iter()
            .filter_map(|i| {
                let s: items::SessionItem = items::from_item(i).ok()?;
                Some(Member {
                    id: SessionId::new(s.session_id),
                    status: s.status,
                    ended_by: items::string(i, "terminatedBy"),
                })
            })
            .collect();
        Ok(Page {
            items: sessions,
            items_read: out.scanned_count.max(0) as u64,
            requests: 1,
            next: next_cursor(out.last_evaluated_key),
        })
    }

    async fn end(&self, id: &SessionId, t: &Termination) -> PortResult<EndOutcome> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::SESSION_ID, AttributeValue::S(id.expose().to_string()))
            .update_expression("SET #st = :ended, terminatedAt = :at, terminationReason = :reason, expiresAt = :ttl")
            .expression_attribute_names("#st", attr::STATUS)
            .expression_attribute_values(":active", AttributeValue::S(Status::Active.as_str().into()))
            .expression_attribute_values(":ended", AttributeValue::S(t.status.as_str().into()))
            .expression_attribute_values(":at", AttributeValue::N(t.at.to_string()))
            .expression_attribute_values(":reason", AttributeValue::S(t.reason.as_str().into()))
            .expression_attribute_values(":ttl", AttributeValue::N(t.retain_until.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(by) = &t.by {
            req = req
                .update_expression("SET #st = :ended, terminatedAt = :at, terminationReason = :reason, expiresAt = :ttl, terminatedBy = :by")
                .expression_attribute_values(":by", AttributeValue::S(by.clone()));
        }
        req = match t.fence.as_ref().map(|f| &f.0) {
            Some(Some(seen)) => req
                .condition_expression("#st = :active AND lastActivityAt = :seen")
                .expression_attribute_values(":seen", AttributeValue::N(seen.clone())),
            Some(None) => {
                req.condition_expression("#st = :active AND attribute_not_exists(lastActivityAt)")
            }
            None => req.condition_expression("#st = :active"),
        };
        match req.send().await {
            Ok(_) => Ok(EndOutcome::Ended),
            Err(e) => {
                if let Some(UpdateItemError::ConditionalCheckFailedException(ccf)) =
                    e.as_service_error()
                {
                    // ALL_OLD on failure tells us why without another read.
                    return Ok(match ccf.item() {
                        None => EndOutcome::Gone,
                        Some(old) => match items::from_item::<items::SessionItem>(old) {
                            Ok(i) if i.status == Status::Active => EndOutcome::Touched,
                            _ if ended_by(old, t) => EndOutcome::Ended,
                            _ => EndOutcome::AlreadyEnded,
                        },
                    });
                }
                Err(crate::sdk_error("DynamoDB.UpdateItem", e))
            }
        }
    }

    /// The native layout stores `terminationReason` in the item: no notes.
    async fn notes(
        &self,
        _: &[SessionId],
    ) -> PortResult<std::collections::HashMap<SessionId, String>> {
        Ok(std::collections::HashMap::new())
    }

    /// The native layout's indexes are the table's GSIs: nothing to file.
    async fn file(&self, _: &[Filing]) -> PortResult<()> {
        Ok(())
    }
}

/// True when `old` carries exactly this termination: our own write, applied, whose response was
/// lost (the SDK's retry then fails its condition). A cascade's end is marked by its root request
/// (`terminatedBy`: its job record counts each page once, so a redelivered page may recognise it
/// too); cleanup's fenced expiry by its run's instant (`terminatedAt`). Containment carries no
/// marker of its attempt, so a redelivered batch finds its end "already ended" and counts it once.
fn ended_by(old: &Item, t: &Termination) -> bool {
    let reason = items::string(old, attr::TERMINATION_REASON);
    if reason.as_deref() != Some(t.reason.as_str()) {
        return false;
    }
    match (&t.by, &t.fence) {
        (Some(by), _) => items::string(old, "terminatedBy").as_deref() == Some(by.as_str()),
        (None, Some(_)) => items::number(old, attr::TERMINATED_AT) == Some(t.at),
        (None, None) => false,
    }
}

/// The cursor of the next page from a response's `LastEvaluatedKey` (absent or empty: no next).
pub(crate) fn next_cursor(last_evaluated_key: Option<Item>) -> Option<String> {
    last_evaluated_key
        .filter(|k| !k.is_empty())
        .map(|k| encode_cursor(&k))
}

/// Encodes a LastEvaluatedKey (string and number attributes) as an opaque cursor.
pub(crate) fn encode_cursor(key: &Item) -> String {
    let m: serde_json::Map<String, serde_json::Value> = key
        .iter()
        .filter_map(|(k, v)| match v {
            AttributeValue::S(s) => Some((k.clone(), serde_json::json!({"S": s}))),
            AttributeValue::N(n) => Some((k.clone(), serde_json::json!({"N": n}))),
            _ => None,
        })
        .collect();
    serde_json::Value::Object(m).to_string()
}

/// Decodes a cursor made by [`encode_cursor`].
pub(crate) fn decode_cursor(cursor: &str) -> PortResult<Item> {
    let bad = |why: &str| PortError::Permanent {
        operation: "DynamoDB.Query",
        source: format!("cursor is not one sessionwarden wrote: {why}").into(),
    };
    let v: serde_json::Value = serde_json::from_str(cursor).map_err(|_| bad("not JSON"))?;
    let obj = v.as_object().ok_or_else(|| bad("not an object"))?;
    obj.iter()
        .map(|(k, v)| {
            match (
                v.get("S").and_then(|s| s.as_str()),
                v.get("N").and_then(|n| n.as_str()),
            ) {
                (Some(s), _) => Ok((k.clone(), AttributeValue::S(s.to_string()))),
                (_, Some(n)) => Ok((k.clone(), AttributeValue::N(n.to_string()))),
                _ => Err(bad("unexpected attribute type")),
            }
        })
        .collect()
}
