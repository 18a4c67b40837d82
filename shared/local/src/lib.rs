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
    sessionwarden_aws::sdk_client!(aws_sdk_dynamodbstreams, sdk, counter, &settings)
}
