//! AWS adapters: the only place that knows SDK types. Each adapter implements one of the narrow
//! ports the services are generic over, and every SDK failure becomes an [`AwsError`] that says
//! what the caller should do with it: retry later (transient) or give up (permanent).

pub mod cascade_ports;
pub mod cascade_queue;
pub mod cloudwatch;
pub mod counter;
pub mod dlq;
pub mod items;
pub mod sessions;
pub mod sns;
pub mod sqs;
pub mod state;
pub mod stream_ports;
pub mod stream_record;
pub mod streams;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub use counter::RequestCounter;

/// A boxed error with its cause chain intact.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An AWS call that failed, split by what the caller does about it.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// Throttling, a 5xx, a timeout or a dropped connection: the same call may succeed later,
    /// so the caller reports the unit of work as failed and lets the platform retry it.
    #[error("{operation} failed transiently, retry later")]
    Transient {
        /// The AWS operation, e.g. `DynamoDB.UpdateItem`.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// A validation error, a missing resource, a denied permission: retrying cannot help.
    #[error("{operation} failed permanently")]
    Permanent {
        /// The AWS operation.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
}

/// Service error codes that mean "try again later".
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "InternalServerError",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "KMSThrottlingException",
];

impl AwsError {
    /// True if retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, AwsError::Transient { .. })
    }

    /// Classifies an SDK error. The SDK has already spent its own retries by the time we see it.
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let transient = match &err {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(se) => {
                se.raw().status().is_server_error()
                    || se
                        .err()
                        .code()
                        .is_some_and(|c| TRANSIENT_CODES.contains(&c))
            }
            _ => false,
        };
        let source: BoxError = Box::new(err);
        if transient {
            AwsError::Transient { operation, source }
        } else {
            AwsError::Permanent { operation, source }
        }
    }
}

/// Loads the standard SDK configuration: region, credentials, and `AWS_ENDPOINT_URL`.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::load_defaults(BehaviorVersion::latest()).await
}

/// The SDK clients, built once per process and shared by reference.
#[derive(Clone, Debug)]
pub struct AwsClients {
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// CloudWatch.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// SNS.
    pub sns: aws_sdk_sns::Client,
    /// DynamoDB Streams (local runs and tests read the stream themselves; Lambda does it in AWS).
    pub streams: aws_sdk_dynamodbstreams::Client,
}

impl AwsClients {
    /// Builds every client from one SDK configuration.
    pub fn new(sdk: &SdkConfig) -> Self {
        Self::build(sdk, None)
    }

    /// Builds every client with `counter` attached, so each request sent is counted.
    pub fn counted(sdk: &SdkConfig, counter: &RequestCounter) -> Self {
        Self::build(sdk, Some(counter))
    }

    fn build(sdk: &SdkConfig, counter: Option<&RequestCounter>) -> Self {
        macro_rules! client {
            ($krate:ident) => {{
                let mut b = $krate::config::Builder::from(sdk);
                if let Some(c) = counter {
                    b = b.interceptor(c.clone());
                }
                $krate::Client::from_conf(b.build())
            }};
        }
        AwsClients {
            dynamodb: client!(aws_sdk_dynamodb),
            cloudwatch: client!(aws_sdk_cloudwatch),
            sqs: client!(aws_sdk_sqs),
            sns: client!(aws_sdk_sns),
            streams: client!(aws_sdk_dynamodbstreams),
        }
    }
}

/// Renders an error and its whole `source()` chain on one line, for logs.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}
