//! The Lambda face of the stream worker: a DynamoDB stream batch (delivered with
//! `ReportBatchItemFailures`) becomes one run of [`sessionwarden_core::stream::process_batch`],
//! and its failure point becomes the partial batch response. Records are kept as raw JSON until
//! the service parses them one by one, so a malformed record cannot fail the whole batch.

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::LambdaEvent;
use serde::Deserialize;
use serde_json::value::RawValue;
use sessionwarden_aws::ports::AwsPorts;
use sessionwarden_aws::stream_record;
use sessionwarden_aws::AwsClients;
use sessionwarden_core::change::{Change, Malformed};
use sessionwarden_core::config::StreamConfig;
use sessionwarden_core::deadline::{Deadline, EpochDeadline};
use sessionwarden_core::layout::Layout;
use sessionwarden_core::ports::{MetricsSink, SessionStore};
use sessionwarden_core::stream::Record;
use sessionwarden_core::stream::{process_batch, StreamReport};

/// A DynamoDB stream event, with each record left as its raw JSON text for per-record parsing:
/// no tree is built for the event, and a malformed record cannot fail the whole batch.
#[derive(Debug, Deserialize)]
pub struct StreamEvent {
    /// The records, exactly as Lambda sent them.
    #[serde(rename = "Records", default)]
    pub records: Vec<Box<RawValue>>,
}

/// A record the worker can parse: raw text (from Lambda) or parsed JSON (local runs, tests).
pub trait StreamInput: Record {
    /// Parses the record through `layout`.
    fn parse(&self, layout: &Layout) -> Result<Option<Change>, Malformed>;
}

impl StreamInput for serde_json::Value {
    fn parse(&self, layout: &Layout) -> Result<Option<Change>, Malformed> {
        stream_record::parse(layout, self)
    }
}

impl StreamInput for Box<RawValue> {
    fn parse(&self, layout: &Layout) -> Result<Option<Change>, Malformed> {
        stream_record::parse_raw(layout, self)
    }
}

/// The stream worker: adapters and configuration, built once per process. It keeps nothing
/// between invocations; every identity it knows across batches lives in the state table.
/// Generic over the sessions table and the metrics sink, so a test can wrap either.
pub struct StreamWorker<S = sessionwarden_aws::ports::Sessions, M = sessionwarden_aws::emf::Metrics>
{
    ports: AwsPorts<S, M>,
    config: StreamConfig,
}

impl StreamWorker {
    /// The production worker over real AWS clients.
    pub fn from_clients(clients: &AwsClients, config: StreamConfig) -> Self {
        StreamWorker::new(sessionwarden_aws::ports::stream(clients, &config), config)
    }
}

impl<S: SessionStore, M: MetricsSink> StreamWorker<S, M> {
    /// A worker over the given adapters.
    pub fn new(ports: AwsPorts<S, M>, config: StreamConfig) -> Self {
        StreamWorker { ports, config }
    }

    /// Handles one invocation. It never fails as a whole: a transient problem becomes a batch
    /// item failure at the first record whose work did not complete.
    pub async fn handle(
        &self,
        event: LambdaEvent<StreamEvent>,
    ) -> Result<DynamoDbEventResponse, std::convert::Infallible> {
        let deadline = EpochDeadline {
            deadline_ms: event.context.deadline,
        };
        Ok(self.run_owned(event.payload.records, &deadline).await.0)
    }

    /// Processes records now, with the stream function's timeout in the template (60 s) as the
    /// deadline; returns the partial batch response and the report.
    pub async fn run<R: StreamInput + Clone>(
        &self,
        records: &[R],
    ) -> (DynamoDbEventResponse, StreamReport) {
        let deadline = EpochDeadline::in_from_now(std::time::Duration::from_secs(60));
        self.run_within(records, &deadline).await
    }

    /// Processes records now against `deadline`: no call runs into its last
    /// [`sessionwarden_core::deadline::RESERVE`], so the failure point is returned in time.
    pub async fn run_within<R: StreamInput + Clone>(
        &self,
        records: &[R],
        deadline: &dyn Deadline,
    ) -> (DynamoDbEventResponse, StreamReport) {
        self.run_owned(records.to_vec(), deadline).await
    }

    /// [`Self::run_within`] on a batch it owns, as an invocation does: each record's text is
    /// freed as soon as it is read.
    async fn run_owned<R: StreamInput>(
        &self,
        records: Vec<R>,
        deadline: &dyn Deadline,
    ) -> (DynamoDbEventResponse, StreamReport) {
        let now = chrono::Utc::now().timestamp();
        // Boxed: the batch's future nests many port futures, and its layout, inlined into the
        // runtime's, otherwise overflows the compiler's query depth in a clean build.
        let outcome = Box::pin(process_batch(
            &self.ports,
            &self.config,
            records,
            |r: &R| r.parse(&self.config.common.layout),
            now,
            deadline,
        ))
        .await;
        let mut response = DynamoDbEventResponse::default();
        if let Some(seq) = outcome.failed_from {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(seq.0);
            response.batch_item_failures.push(failure);
        }
        (response, outcome.report)
    }
}
