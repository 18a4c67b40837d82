//! sessionwarden's adapters: the only crate of the Lambda binaries that knows SDK types. Each
//! adapter implements one of the core's ports, and every SDK failure becomes a core
//! [`PortError`] that says what the caller should do with it: retry later (transient) or give up
//! (permanent). [`ports`] wires them into the [`sessionwarden_core::ports::Ports`] of a worker.

pub mod batch;
pub mod cascade_queue;
pub mod cloudwatch;
pub mod counter;
pub mod dlq;
pub mod emf;
pub mod items;
pub mod layout;
pub mod mapped;
pub mod ports;
pub mod sessions;
pub mod sns;
pub mod sqs;
pub mod state;
pub mod stream_record;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub use counter::RequestCounter;
pub use sessionwarden_core::error::{error_chain, PortError, PortResult};

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

/// Waits before attempt `attempt` (from 0) at the unprocessed part of a batch call: not at all
/// before the first, then `base_ms` doubled per attempt, at most 32 × `base_ms`.
pub async fn retry_pause(attempt: u32, base_ms: u64) {
    if attempt > 0 {
        tokio::time::sleep(Duration::from_millis(base_ms << attempt.min(5))).await;
    }
}

/// Maps an SDK error into the core's [`PortError`], split by what the caller does about it. The
/// SDK has already spent its own retries (see [`ClientSettings`]) by the time we see it.
pub fn sdk_error<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(se) => {
            se.raw().status().is_server_error()
                || se
                    .err()
                    .code()
                    .is_some_and(|c| TRANSIENT_CODES.contains(&c))
        }
        _ => false,
    };
    if transient {
        PortError::transient(operation, err)
    } else {
        PortError::permanent(operation, err)
    }
}

/// The SDK's own retry and timeout settings, given to every client.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Retries of one operation.
    pub retry: RetryConfig,
    /// Bounds on one attempt and on the whole operation.
    pub timeout: TimeoutConfig,
}

impl ClientSettings {
    /// For the Lambda workers: standard retries (3 attempts with jittered backoff), each attempt
    /// bounded, and the whole operation bounded well inside the shortest function timeout (60 s),
    /// so a slow dependency fails the unit of work instead of the invocation.
    pub fn lambda() -> Self {
        Self::standard_retries(3, 10, 25)
    }

    /// For local tooling and tests against emulators, which can be far slower than AWS (moto
    /// copies a whole table per transaction action): the same retries, generous bounds.
    pub fn local() -> Self {
        Self::standard_retries(10, 300, 600)
    }

    /// Standard retries (3 attempts) with the given connect, per-attempt and whole-operation
    /// timeouts, in seconds.
    fn standard_retries(connect: u64, attempt: u64, operation: u64) -> Self {
        ClientSettings {
            retry: RetryConfig::standard().with_max_attempts(3),
            timeout: TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(connect))
                .operation_attempt_timeout(Duration::from_secs(attempt))
                .operation_timeout(Duration::from_secs(operation))
                .build(),
        }
    }
}

/// Loads the standard SDK configuration: region, credentials, and `AWS_ENDPOINT_URL`.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::load_defaults(BehaviorVersion::latest()).await
}

/// Builds one SDK client of crate `$krate` from an `SdkConfig`, with [`ClientSettings`] and an
/// optional [`RequestCounter`]: the one way every client of the project is made.
#[macro_export]
macro_rules! sdk_client {
    ($krate:ident, $sdk:expr, $counter:expr, $settings:expr) => {{
        let settings: &$crate::ClientSettings = $settings;
        let mut b = $krate::config::Builder::from($sdk)
            .retry_config(settings.retry.clone())
            .timeout_config(settings.timeout.clone());
        if let Some(c) = $counter {
            b = b.interceptor(c.clone());
        }
        $krate::Client::from_conf(b.build())
    }};
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
}

impl AwsClients {
    /// Builds every client from one SDK configuration, with the Lambda settings.
    pub fn new(sdk: &SdkConfig) -> Self {
        Self::build(sdk, None, &ClientSettings::lambda())
    }

    /// Builds every client with `settings` and, if given, `counter` attached, so each request
    /// sent is counted.
    pub fn build(
        sdk: &SdkConfig,
        counter: Option<&RequestCounter>,
        settings: &ClientSettings,
    ) -> Self {
        AwsClients {
            dynamodb: sdk_client!(aws_sdk_dynamodb, sdk, counter, settings),
            cloudwatch: sdk_client!(aws_sdk_cloudwatch, sdk, counter, settings),
            sqs: sdk_client!(aws_sdk_sqs, sdk, counter, settings),
            sns: sdk_client!(aws_sdk_sns, sdk, counter, settings),
        }
    }

    /// Builds every client for local tooling and tests: the local (generous) settings, since
    /// emulators can be far slower than AWS, and `counter` if given.
    pub fn local(sdk: &SdkConfig, counter: Option<&RequestCounter>) -> Self {
        Self::build(sdk, counter, &ClientSettings::local())
    }
}
