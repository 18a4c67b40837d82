//! End notes: on a layout that keeps no `terminationReason`, the reason of sessionwarden's own end
//! of a session, written to the state table (`note#<digest>`, `note`) before the ending write, so
//! the stream worker's session-ended event can tell an idle expiry from the app's logout. Kept
//! two days (beyond a stream record's 24 hours); read with one consistent BatchGetItem per 100.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue as Av;

use super::{MappedSessions, SdkItem};
use crate::state::{n, s, STATE_PK, STATE_SK};
use crate::PortResult;
use sessionwarden_core::ports::Termination;
use sessionwarden_core::session::SessionId;

/// How long a note is kept.
const NOTE_SECONDS: i64 = 2 * 86_400;

impl MappedSessions {
    fn note_key(&self, id: &SessionId) -> SdkItem {
        HashMap::from([
            (
                STATE_PK.to_string(),
                s(format!("note#{}", self.key.state_key(id))),
            ),
            (STATE_SK.to_string(), s("note")),
        ])
    }

    /// Writes the note of an end about to be made (`Some`), or takes it back (`None`).
    pub(super) async fn note(&self, id: &SessionId, t: Option<&Termination>) -> PortResult<()> {
        let key = self.note_key(id);
        match t {
            Some(t) => {
                let mut item = key;
                item.insert("reason".into(), s(t.reason.as_str()));
                item.insert("expiresAt".into(), n(t.at + NOTE_SECONDS));
                self.client
                    .put_item()
                    .table_name(&self.state_table)
                    .set_item(Some(item))
                    .send()
                    .await
                    .map_err(|e| crate::sdk_error("DynamoDB.PutItem", e))?;
            }
            None => {
                self.client
                    .delete_item()
                    .table_name(&self.state_table)
                    .set_key(Some(key))
                    .send()
                    .await
                    .map_err(|e| crate::sdk_error("DynamoDB.DeleteItem", e))?;
            }
        }
        Ok(())
    }

    /// The notes of `ids` that exist.
    pub(super) async fn read_notes(
        &self,
        ids: &[SessionId],
    ) -> PortResult<HashMap<SessionId, String>> {
        let keys: Vec<SdkItem> = ids.iter().map(|id| self.note_key(id)).collect();
        let by_pk: HashMap<String, &SessionId> = keys
            .iter()
            .zip(ids)
            .filter_map(|(k, id)| Some((k.get(STATE_PK)?.as_s().ok()?.clone(), id)))
            .collect();
        let (found, _) = crate::batch::get_all(&self.client, &self.state_table, keys, true).await?;
        Ok(found
            .iter()
            .filter_map(|item| {
                let id = by_pk.get(item.get(STATE_PK)?.as_s().ok()?)?;
                let reason = match item.get("reason")? {
                    Av::S(r) => r.clone(),
                    _ => return None,
                };
                Some(((*id).clone(), reason))
            })
            .collect())
    }
}
