//! sessionwarden's local tooling: what `sessionctl` and the tests need and no Lambda binary may
//! contain. Provisioning of the resources `sessionctl init` creates ([`provision`]), a reader of
//! a table's stream in the Lambda event shape ([`streams`]), seeding and whole-table reads
//! ([`seed`]), queue tooling ([`queues`]) and metric read-backs ([`metrics`]).

pub mod metrics;
pub mod provision;
pub mod queues;
pub mod seed;
pub mod streams;

use aws_config::SdkConfig;
use sessionwarden_aws::RequestCounter;

/// A DynamoDB Streams client (local runs and tests read the stream themselves; Lambda does it
/// in AWS), with the local retry and timeout settings.
pub fn streams_client(
    sdk: &SdkConfig,
    counter: Option<&RequestCounter>,
) -> aws_sdk_dynamodbstreams::Client {
    let settings = sessionwarden_aws::ClientSettings::local();
    let mut b = aws_sdk_dynamodbstreams::config::Builder::from(sdk)
        .retry_config(settings.retry)
        .timeout_config(settings.timeout);
    if let Some(c) = counter {
        b = b.interceptor(c.clone());
    }
    aws_sdk_dynamodbstreams::Client::from_conf(b.build())
}
