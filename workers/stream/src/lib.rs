//! The Lambda face of the stream worker: a DynamoDB stream batch (delivered with
//! `ReportBatchItemFailures`) becomes one run of [`sessionwarden::stream::service::process_batch`],
//! and its failure point becomes the partial batch response. Records are kept as raw JSON until
//! the service parses them one by one, so a malformed record cannot fail the whole batch.

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::LambdaEvent;
use serde::Deserialize;
use sessionwarden::aws::cloudwatch::CloudWatchMetrics;
use sessionwarden::aws::stream_ports::AwsStreamPorts;
use sessionwarden::aws::AwsClients;
use sessionwarden::config::StreamConfig;
use sessionwarden::metrics::MetricsSink;
use sessionwarden::stream::service::{process_batch, StreamPorts, StreamReport};

/// A DynamoDB stream event, with each record left raw for per-record parsing.
#[derive(Debug, Clone, Deserialize)]
pub struct StreamEvent {
    /// The records, exactly as Lambda sent them.
    #[serde(rename = "Records", default)]
    pub records: Vec<serde_json::Value>,
}

/// The stream worker: adapters and configuration, built once per process. It keeps nothing
/// between invocations; every identity it knows across batches lives in the state table.
pub struct StreamWorker<P, M> {
    ports: P,
    metrics: M,
    config: StreamConfig,
}

impl StreamWorker<AwsStreamPorts, CloudWatchMetrics> {
    /// The production worker over real AWS clients.
    pub fn from_clients(clients: &AwsClients, config: StreamConfig) -> Self {
        let ports = AwsStreamPorts::new(clients, &config);
        StreamWorker::new(
            ports,
            CloudWatchMetrics::new(clients.cloudwatch.clone()),
            config,
        )
    }
}

impl<P: StreamPorts, M: MetricsSink> StreamWorker<P, M> {
    /// A worker over any ports.
    pub fn new(ports: P, metrics: M, config: StreamConfig) -> Self {
        StreamWorker {
            ports,
            metrics,
            config,
        }
    }

    /// Handles one invocation. It never fails as a whole: a transient problem becomes a batch
    /// item failure at the first record whose work did not complete.
    pub async fn handle(
        &self,
        event: LambdaEvent<StreamEvent>,
    ) -> Result<DynamoDbEventResponse, std::convert::Infallible> {
        Ok(self.run(&event.payload.records).await.0)
    }

    /// Processes records now; returns the partial batch response and the report.
    pub async fn run(
        &self,
        records: &[serde_json::Value],
    ) -> (DynamoDbEventResponse, StreamReport) {
        let now = chrono::Utc::now().timestamp();
        let outcome = process_batch(&self.ports, &self.metrics, &self.config, records, now).await;
        let mut response = DynamoDbEventResponse::default();
        if let Some(seq) = outcome.failed_from {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(seq.0);
            response.batch_item_failures.push(failure);
        }
        (response, outcome.report)
    }
}
