//! The Lambda face of the cascade worker: an SQS batch (delivered with `ReportBatchItemFailures`)
//! becomes one run of [`sessionwarden::cascade::service::process_batch`], bounded by the
//! invocation's deadline, and the messages that must be retried become the partial batch response.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use sessionwarden::aws::cascade_ports::AwsCascadePorts;
use sessionwarden::aws::cloudwatch::CloudWatchMetrics;
use sessionwarden::aws::AwsClients;
use sessionwarden::cascade::service::{process_batch, CascadePorts, CascadeReport, QueueMessage};
use sessionwarden::config::CascadeConfig;
use sessionwarden::deadline::{Deadline, EpochDeadline};
use sessionwarden::metrics::MetricsSink;

/// The cascade worker: adapters and configuration, built once per process; no per-invocation state.
pub struct CascadeWorker<P, M> {
    ports: P,
    metrics: M,
    config: CascadeConfig,
}

impl CascadeWorker<AwsCascadePorts, CloudWatchMetrics> {
    /// The production worker over real AWS clients.
    pub fn from_clients(clients: &AwsClients, config: CascadeConfig) -> Self {
        let ports = AwsCascadePorts::new(clients, &config);
        CascadeWorker::new(
            ports,
            CloudWatchMetrics::new(clients.cloudwatch.clone()),
            config,
        )
    }
}

impl<P: CascadePorts, M: MetricsSink> CascadeWorker<P, M> {
    /// A worker over any ports.
    pub fn new(ports: P, metrics: M, config: CascadeConfig) -> Self {
        CascadeWorker {
            ports,
            metrics,
            config,
        }
    }

    /// Handles one invocation; never fails as a whole.
    pub async fn handle(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> Result<SqsBatchResponse, std::convert::Infallible> {
        let deadline = EpochDeadline {
            deadline_ms: event.context.deadline,
        };
        Ok(self.run(&event.payload, &deadline).await.0)
    }

    /// Processes a batch against `deadline`; returns the partial batch response and the report.
    pub async fn run(
        &self,
        event: &SqsEvent,
        deadline: &dyn Deadline,
    ) -> (SqsBatchResponse, CascadeReport) {
        let messages: Vec<QueueMessage> = event
            .records
            .iter()
            .map(|r| QueueMessage {
                id: r.message_id.clone().unwrap_or_default(),
                body: r.body.clone().unwrap_or_default(),
            })
            .collect();
        let now = chrono::Utc::now().timestamp();
        let report = process_batch(
            &self.ports,
            &self.metrics,
            &self.config,
            &messages,
            deadline,
            now,
        )
        .await;
        let mut response = SqsBatchResponse::default();
        for id in &report.failed {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id.clone();
            response.batch_item_failures.push(f);
        }
        (response, report)
    }
}
