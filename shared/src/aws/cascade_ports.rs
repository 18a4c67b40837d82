//! The production [`CascadePorts`]: sessions table, state table, cascade queue, dead-letter
//! queue and alerts topic.

use super::cascade_queue::SqsCascadeQueue;
use super::dlq::SqsDeadLetters;
use super::sessions::DynamoSessions;
use super::sns::SnsAlerts;
use super::state::StateTable;
use super::{AwsClients, AwsError};
use crate::alert::Alert;
use crate::cascade::message::{CascadeMessage, Target};
use crate::cascade::service::{CascadePage, CascadePorts, JobRecord};
use crate::cleanup::{ExpireOutcome, Termination};
use crate::config::CascadeConfig;
use crate::session::SessionId;
use crate::stream::service::DeadLetter;

/// The cascade worker's adapters, built once per process.
#[derive(Clone, Debug)]
pub struct AwsCascadePorts {
    sessions: DynamoSessions,
    state: StateTable,
    queue: SqsCascadeQueue,
    dead_letters: SqsDeadLetters,
    alerts: SnsAlerts,
    /// Job records are kept as long as the sessions they ended.
    retention: i64,
}

impl AwsCascadePorts {
    /// Builds the adapters.
    pub fn new(clients: &AwsClients, cfg: &CascadeConfig) -> Self {
        AwsCascadePorts {
            sessions: DynamoSessions::new(
                clients.dynamodb.clone(),
                cfg.common.sessions_table.clone(),
            ),
            state: StateTable::new(
                clients.dynamodb.clone(),
                cfg.state_table.clone(),
                cfg.common.session_ref_key.clone(),
            ),
            queue: SqsCascadeQueue::new(clients.sqs.clone(), cfg.cascade_queue_url.clone()),
            dead_letters: SqsDeadLetters::new(
                clients.sqs.clone(),
                cfg.dead_letter_queue_url.clone(),
                "sessionwarden-cascade",
            ),
            alerts: SnsAlerts::new(clients.sns.clone(), cfg.alerts_topic_arn.clone()),
            retention: cfg.common.expiry.audit_retention_seconds,
        }
    }
}

impl CascadePorts for AwsCascadePorts {
    async fn page(
        &self,
        target: &Target,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<CascadePage, AwsError> {
        self.sessions.cascade_page(target, cursor, limit).await
    }
    async fn end(&self, id: &SessionId, t: &Termination) -> Result<ExpireOutcome, AwsError> {
        self.sessions.end_session(id, t, None).await
    }
    async fn job_started(&self, job: &JobRecord, now: i64) -> Result<bool, AwsError> {
        self.state.job_started(job, now, now + self.retention).await
    }
    async fn job_progress(&self, job: &JobRecord, ended: u64, pages: u64) -> Result<(), AwsError> {
        self.state.job_progress(job, ended, pages).await
    }
    async fn job_completed(&self, job: &JobRecord, now: i64) -> Result<Option<u64>, AwsError> {
        self.state.job_completed(job, now).await
    }
    async fn enqueue(&self, messages: &[CascadeMessage]) -> Result<(), AwsError> {
        self.queue.send(messages).await
    }
    async fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), AwsError> {
        self.dead_letters.send(letters).await
    }
    async fn notify(&self, alert: &Alert) -> Result<(), AwsError> {
        self.alerts.publish(std::slice::from_ref(alert)).await
    }
}
