//! The one conditional write that ends a session through the layout (a delete, or setting the
//! flag or status and the ended-at), and what `ALL_OLD` says when its condition fails.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue as Av, ReturnValuesOnConditionCheckFailure};

use super::{MappedSessions, SdkItem};
use crate::layout::{self, Read};
use crate::state::s;
use crate::PortResult;
use sessionwarden_core::layout::{Active, End};
use sessionwarden_core::ports::{EndOutcome, Filing, SessionStore, Slot, Termination};

impl MappedSessions {
    /// Ends one item (addressed by `key`) with the layout's end action.
    pub(super) async fn end_item(&self, key: SdkItem, t: &Termination) -> PortResult<EndOutcome> {
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
        // One conditional write; on failure, ALL_OLD is the item as it was (`None`: gone).
        macro_rules! conditional {
            ($req:expr, $error:ident, $operation:literal) => {{
                let r = $req
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
                        Some($error::ConditionalCheckFailedException(c)) => c.item().cloned(),
                        _ => return Err(crate::sdk_error($operation, e)),
                    },
                }
            }};
        }
        let old = match &m.end {
            End::Delete => conditional!(
                self.client.delete_item(),
                DeleteItemError,
                "DynamoDB.DeleteItem"
            ),
            End::Set { .. } => conditional!(
                self.client
                    .update_item()
                    .update_expression(format!("SET {}", sets.join(", "))),
                UpdateItemError,
                "DynamoDB.UpdateItem"
            ),
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
}
