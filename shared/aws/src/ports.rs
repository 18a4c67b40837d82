//! Wiring: the production adapters of each worker, assembled once per process into the core's
//! [`Ports`]. Tests swap one field for a wrapper (a flaky session store, a recording sink).

use sessionwarden_core::config::{CascadeConfig, StreamConfig};
use sessionwarden_core::ports::Ports;

use crate::cascade_queue::SqsCascadeQueue;
use crate::cloudwatch::CloudWatchMetrics;
use crate::dlq::SqsDeadLetters;
use crate::sessions::DynamoSessions;
use crate::sns::SnsAlerts;
use crate::state::StateTable;
use crate::AwsClients;

/// The ports of the stream and cascade workers on AWS, generic over the sessions table and the
/// metrics sink so a test can wrap either.
pub type AwsPorts<S = DynamoSessions, M = CloudWatchMetrics> =
    Ports<S, StateTable, SnsAlerts, SqsCascadeQueue, SqsDeadLetters, M>;

/// The stream worker's adapters.
pub fn stream(clients: &AwsClients, cfg: &StreamConfig) -> AwsPorts {
    build(
        clients,
        &Targets {
            sessions_table: &cfg.common.sessions_table,
            state_table: &cfg.state_table,
            topic: &cfg.alerts_topic_arn,
            cascade_queue: &cfg.cascade_queue_url,
            dead_letters: &cfg.dead_letter_queue_url,
            key: &cfg.common.session_ref_key,
        },
        "sessionwarden-stream",
    )
}

/// The cascade worker's adapters.
pub fn cascade(clients: &AwsClients, cfg: &CascadeConfig) -> AwsPorts {
    build(
        clients,
        &Targets {
            sessions_table: &cfg.common.sessions_table,
            state_table: &cfg.state_table,
            topic: &cfg.alerts_topic_arn,
            cascade_queue: &cfg.cascade_queue_url,
            dead_letters: &cfg.dead_letter_queue_url,
            key: &cfg.common.session_ref_key,
        },
        "sessionwarden-cascade",
    )
}

struct Targets<'a> {
    sessions_table: &'a str,
    state_table: &'a str,
    topic: &'a str,
    cascade_queue: &'a str,
    dead_letters: &'a str,
    key: &'a sessionwarden_core::session_ref::SessionRefKey,
}

fn build(clients: &AwsClients, t: &Targets<'_>, source: &'static str) -> AwsPorts {
    Ports {
        sessions: DynamoSessions::new(clients.dynamodb.clone(), t.sessions_table),
        state: StateTable::new(clients.dynamodb.clone(), t.state_table, t.key.clone()),
        alerts: SnsAlerts::new(clients.sns.clone(), t.topic),
        cascades: SqsCascadeQueue::new(clients.sqs.clone(), t.cascade_queue),
        dead_letters: SqsDeadLetters::new(clients.sqs.clone(), t.dead_letters, source),
        metrics: CloudWatchMetrics::new(clients.cloudwatch.clone()),
    }
}
