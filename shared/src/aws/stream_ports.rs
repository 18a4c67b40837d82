//! The production [`StreamPorts`]: state table, sessions table, SNS topic and dead-letter queue.

use std::collections::HashMap;

use super::cascade_queue::SqsCascadeQueue;
use super::dlq::SqsDeadLetters;
use super::sessions::DynamoSessions;
use super::sns::SnsAlerts;
use super::state::StateTable;
use super::{AwsClients, AwsError};
use crate::alert::Alert;
use crate::cascade::message::CascadeMessage;
use crate::cleanup::{ExpireOutcome, Termination};
use crate::config::StreamConfig;
use crate::session::SessionId;
use crate::stream::service::{Claim, ClaimOutcome, CounterKey, DeadLetter, GateKey, StreamPorts};

/// The stream worker's adapters, built once per process.
#[derive(Clone, Debug)]
pub struct AwsStreamPorts {
    state: StateTable,
    sessions: DynamoSessions,
    alerts: SnsAlerts,
    dead_letters: SqsDeadLetters,
    cascades: SqsCascadeQueue,
}

impl AwsStreamPorts {
    /// Builds the adapters from the clients and configuration.
    pub fn new(clients: &AwsClients, cfg: &StreamConfig) -> Self {
        AwsStreamPorts {
            state: StateTable::new(
                clients.dynamodb.clone(),
                cfg.state_table.clone(),
                cfg.common.session_ref_key.clone(),
            ),
            sessions: DynamoSessions::new(
                clients.dynamodb.clone(),
                cfg.common.sessions_table.clone(),
            ),
            alerts: SnsAlerts::new(clients.sns.clone(), cfg.alerts_topic_arn.clone()),
            cascades: SqsCascadeQueue::new(clients.sqs.clone(), cfg.cascade_queue_url.clone()),
            dead_letters: SqsDeadLetters::new(
                clients.sqs.clone(),
                cfg.dead_letter_queue_url.clone(),
                "sessionwarden-stream",
            ),
        }
    }
}

impl StreamPorts for AwsStreamPorts {
    async fn claim_bindings(
        &self,
        claims: &[Claim],
        expires_at: i64,
        counter_expires_at: i64,
    ) -> Result<Vec<ClaimOutcome>, AwsError> {
        self.state
            .claim_bindings(claims, expires_at, counter_expires_at)
            .await
    }
    async fn read_counters(
        &self,
        keys: &[CounterKey],
    ) -> Result<HashMap<CounterKey, u64>, AwsError> {
        self.state.read_counters(keys).await
    }
    async fn bind_user(
        &self,
        id: &SessionId,
        user: &str,
        tenant: Option<&str>,
        expires_at: i64,
    ) -> Result<(), AwsError> {
        self.state.bind_user(id, user, tenant, expires_at).await
    }
    async fn open_gate(&self, gate: &GateKey, now: i64, until: i64) -> Result<bool, AwsError> {
        self.state.open_gate(gate, now, until).await
    }
    async fn close_gate(&self, gate: &GateKey) -> Result<(), AwsError> {
        self.state.close_gate(gate).await
    }
    async fn terminate_session(
        &self,
        id: &SessionId,
        t: &Termination,
    ) -> Result<ExpireOutcome, AwsError> {
        self.sessions.end_session(id, t, None).await
    }
    async fn request_cascades(&self, requests: &[CascadeMessage]) -> Result<(), AwsError> {
        self.cascades.send(requests).await
    }
    async fn publish_alerts(&self, alerts: &[Alert]) -> Result<(), AwsError> {
        self.alerts.publish(alerts).await
    }
    async fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), AwsError> {
        self.dead_letters.send(letters).await
    }
}
