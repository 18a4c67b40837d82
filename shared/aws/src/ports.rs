//! Wiring: the production adapters of each worker, assembled once per process into the core's
//! [`Ports`]. Tests swap one field for a wrapper (a flaky session store, a recording sink).

use sessionwarden_core::config::{CascadeConfig, CommonConfig, StreamConfig, Wiring};
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
    build(clients, &cfg.common, &cfg.wiring, "sessionwarden-stream")
}

/// The cascade worker's adapters.
pub fn cascade(clients: &AwsClients, cfg: &CascadeConfig) -> AwsPorts {
    build(clients, &cfg.common, &cfg.wiring, "sessionwarden-cascade")
}

fn build(
    clients: &AwsClients,
    common: &CommonConfig,
    wiring: &Wiring,
    source: &'static str,
) -> AwsPorts {
    Ports {
        sessions: DynamoSessions::new(clients.dynamodb.clone(), &common.sessions_table),
        state: StateTable::new(
            clients.dynamodb.clone(),
            &wiring.state_table,
            common.session_ref_key.clone(),
        ),
        alerts: SnsAlerts::new(clients.sns.clone(), &wiring.alerts_topic_arn),
        cascades: SqsCascadeQueue::new(clients.sqs.clone(), &wiring.cascade_queue_url),
        dead_letters: SqsDeadLetters::new(
            clients.sqs.clone(),
            &wiring.dead_letter_queue_url,
            source,
        ),
        metrics: CloudWatchMetrics::new(clients.cloudwatch.clone()),
    }
}
