//! The Lambda face of the stream worker: a DynamoDB stream batch (delivered with
//! `ReportBatchItemFailures`) becomes one run of [`sessionwarden_core::stream::process_batch`],
//! and its failure point becomes the partial batch response. A malformed record can never fail
//! the whole batch: on the native layout each record is read from the invocation body's own text
//! while Lambda's event is deserialized ([`NativeEvent`]); on the others each is kept as raw JSON
//! until the service parses it ([`StreamEvent`]).

use std::cell::Cell;

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use sessionwarden_aws::ports::AwsPorts;
use sessionwarden_aws::stream_record;
use sessionwarden_aws::AwsClients;
use sessionwarden_core::change::{Change, Malformed};
use sessionwarden_core::config::StreamConfig;
use sessionwarden_core::deadline::{Deadline, EpochDeadline};
use sessionwarden_core::expiry::ExpiryPolicy;
use sessionwarden_core::layout::Layout;
use sessionwarden_core::ports::{MetricsSink, SessionStore};
use sessionwarden_core::stream::{process_batch, reading, Read, Record, Rejected, StreamReport};

/// A DynamoDB stream event, with each record left as its raw JSON text for per-record parsing:
/// no tree is built for the event, and a malformed record cannot fail the whole batch.
#[derive(Debug, Deserialize)]
pub struct StreamEvent {
    /// The records, exactly as Lambda sent them.
    #[serde(rename = "Records", default)]
    pub records: Vec<Box<RawValue>>,
}

thread_local! {
    /// The expiry policy that [`NativeEvent`]'s reader decides plain touches with, on this thread
    /// ([`StreamWorker::decide_touches_here`]). It is configuration, the same for every
    /// invocation: it holds no identity and nothing of any invocation. Per thread, so two workers
    /// of different policies in one process (tests) cannot decide with each other's; unset (say,
    /// on another runtime thread), every record becomes a change: the same results, more work.
    static TOUCH_POLICY: Cell<Option<ExpiryPolicy>> = const { Cell::new(None) };
}

/// Lets each [`NativeEvent`] deserialized on this thread from now on decide plain touches under
/// `policy` (for a service run without a worker: tests, the bench).
pub fn decide_touches_with(policy: ExpiryPolicy) {
    TOUCH_POLICY.set(Some(policy));
}

/// A DynamoDB stream event on the native layout, read as Lambda's runtime deserializes the
/// invocation body: each record's text is borrowed from the body and read at once, so no copy of
/// it is kept, and a plain touch leaves nothing behind but its place in the batch. A malformed
/// record becomes its rejection, with its JSON for the dead letter, and never fails the event.
#[derive(Debug, Deserialize)]
pub struct NativeEvent {
    /// The records, read.
    #[serde(rename = "Records", default)]
    pub records: Vec<NativeRecord>,
    /// The policy its plain touches were decided under (`None`: none was decided), for the
    /// worker to check against its own.
    #[serde(skip, default = "touch_policy")]
    pub decided_with: Option<ExpiryPolicy>,
}

/// The policy plain touches are decided under on this thread.
fn touch_policy() -> Option<ExpiryPolicy> {
    TOUCH_POLICY.get()
}

/// One record of a [`NativeEvent`], read. Small (a pointer and a tag) whatever it holds.
#[derive(Debug)]
pub struct NativeRecord(pub Result<Read, Box<Rejected>>);

impl<'de> Deserialize<'de> for NativeRecord {
    /// Needs a deserializer that lends its input (`serde_json::from_slice` and `from_str`, as
    /// Lambda's runtime uses): the record's text is borrowed, not copied.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &'de RawValue = Deserialize::deserialize(d)?;
        Ok(NativeRecord(
            stream_record::read_native(raw, TOUCH_POLICY.get().as_ref()).map_err(Box::new),
        ))
    }
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
        let layout = &self.config.common.layout;
        let read = reading::<Box<RawValue>>(|r| r.parse(layout));
        Ok(self
            .run_read(event.payload.records, read, &deadline)
            .await
            .0)
    }

    /// Lets each [`NativeEvent`] deserialized on this thread from now on decide plain touches as
    /// it reads them, under this worker's expiry policy. `main` calls it once, on the thread
    /// that runs the runtime loop (the one-thread runtime deserializes events there).
    pub fn decide_touches_here(&self) {
        decide_touches_with(self.config.common.expiry);
    }

    /// Handles one invocation on the native layout, whose records were read with the event.
    pub async fn handle_native(
        &self,
        event: LambdaEvent<NativeEvent>,
    ) -> Result<DynamoDbEventResponse, std::convert::Infallible> {
        let deadline = EpochDeadline {
            deadline_ms: event.context.deadline,
        };
        let policy = &self.config.common.expiry;
        if event.payload.decided_with.is_some_and(|p| p != *policy) {
            // A wiring mistake, not input: touches decided under another worker's policy could
            // hide late activity. `decide_touches_here` belongs on the thread that deserializes.
            tracing::error!(
                "plain touches were decided under an expiry policy other than this worker's"
            );
            debug_assert!(false, "NativeEvent read under another expiry policy");
        }
        let read = |r: NativeRecord| r.0.map_err(|b| *b);
        Ok(self
            .run_read(event.payload.records, read, &deadline)
            .await
            .0)
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
        let layout = &self.config.common.layout;
        let read = reading(|r: &R| r.parse(layout));
        self.run_read(records.to_vec(), read, deadline).await
    }

    /// [`Self::run_within`] on a batch it owns, as an invocation does: each record's text is
    /// freed as soon as it is read.
    async fn run_read<R>(
        &self,
        records: Vec<R>,
        read: impl FnMut(R) -> Result<Read, Rejected>,
        deadline: &dyn Deadline,
    ) -> (DynamoDbEventResponse, StreamReport) {
        let now = chrono::Utc::now().timestamp();
        // Boxed: the batch's future nests many port futures, and its layout, inlined into the
        // runtime's, otherwise overflows the compiler's query depth in a clean build.
        let outcome = Box::pin(process_batch(
            &self.ports,
            &self.config,
            records,
            read,
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
