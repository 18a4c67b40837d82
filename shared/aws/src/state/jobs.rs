//! The [`JobStore`] port on the state table: one record per cascade job, created once, counted
//! per page, and completed once (conditional writes), so a job counts once however often its
//! messages are redelivered.

use aws_sdk_dynamodb::types::AttributeValue;
use sessionwarden_core::ports::{JobRecord, JobStore};

use super::{n, put_if, s, StateTable};
use crate::items;
use crate::PortError;

impl JobStore for StateTable {
    /// Creates a cascade job record (`RUNNING`) unless it exists; true if this call created it.
    async fn start(&self, job: &JobRecord, now: i64, expires_at: i64) -> Result<bool, PortError> {
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
        put_if(self.put_when(item, "attribute_not_exists(pk)")).await
    }

    /// Adds a page's counts to a job record, once: the page's reference joins the record's set
    /// of counted pages in the same conditional update, so a page processed again (a redelivered
    /// message, a retried request whose response was lost) adds nothing.
    async fn progress(&self, job: &JobRecord, page: &str, ended: u64) -> Result<bool, PortError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::job_key(job)))
            .update_expression("ADD ended :e, pages :one, countedPages :page")
            .condition_expression("NOT contains(countedPages, :ref)")
            .expression_attribute_values(":e", n(ended as i64))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":page", AttributeValue::Ss(vec![page.to_string()]))
            .expression_attribute_values(":ref", s(page))
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
            Err(e) => Err(crate::sdk_error("DynamoDB.UpdateItem", e)),
        }
    }

    /// Marks a job completed; returns its total of ended sessions if this call completed it.
    async fn complete(&self, job: &JobRecord, now: i64) -> Result<Option<u64>, PortError> {
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
                    .and_then(|a| items::number(a, "ended"))
                    .unwrap_or(0)
                    .max(0) as u64,
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(crate::sdk_error("DynamoDB.UpdateItem", e)),
        }
    }
}
