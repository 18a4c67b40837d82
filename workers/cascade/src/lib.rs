//! The Lambda face of the cascade worker: an SQS batch (delivered with `ReportBatchItemFailures`)
//! becomes one run of [`sessionwarden_core::cascade::process_batch`], bounded by the
//! invocation's deadline, and the messages that must be retried become the partial batch response.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use sessionwarden_aws::ports::AwsPorts;
use sessionwarden_aws::AwsClients;
use sessionwarden_core::cascade::{process_batch, CascadeReport, QueueMessage};
use sessionwarden_core::config::CascadeConfig;
use sessionwarden_core::deadline::{Deadline, EpochDeadline};
use sessionwarden_core::ports::{MetricsSink, SessionStore};

/// The cascade worker: adapters and configuration, built once per process. Generic over the
/// sessions table and the metrics sink, so a test can wrap either.
pub struct CascadeWorker<
    S = sessionwarden_aws::ports::Sessions,
    M = sessionwarden_aws::emf::Metrics,
> {
    ports: AwsPorts<S, M>,
    config: CascadeConfig,
}

impl CascadeWorker {
    /// The production worker over real AWS clients.
    pub fn from_clients(clients: &AwsClients, config: CascadeConfig) -> Self {
        CascadeWorker::new(sessionwarden_aws::ports::cascade(clients, &config), config)
    }
}

impl<S: SessionStore, M: MetricsSink> CascadeWorker<S, M> {
    /// A worker over the given adapters.
    pub fn new(ports: AwsPorts<S, M>, config: CascadeConfig) -> Self {
        CascadeWorker { ports, config }
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
        // Boxed: the batch's future nests many port futures, and its layout, inlined into the
        // runtime's, otherwise overflows the compiler's query depth in a clean build.
        let report = Box::pin(process_batch(
            &self.ports,
            &self.config,
            &messages,
            deadline,
            now,
        ))
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
