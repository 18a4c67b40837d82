//! sessionwarden's library crate: everything the workers and `sessionctl` share.
//!
//! It has two halves that never mix:
//! - **Pure policy** ([`session`], [`expiry`], [`session_ref`], [`metrics`], [`config`], [`deadline`]):
//!   plain data and functions that know no AWS or Lambda types and take `now` as an argument.
//! - **Adapters** ([`aws`]): DynamoDB and CloudWatch behind the narrow traits that the services
//!   ([`cleanup`]) are generic over, plus the provisioning used by `sessionctl init` and the tests.

pub mod alert;
pub mod anomaly;
pub mod aws;
pub mod cascade;
pub mod cleanup;
pub mod config;
pub mod deadline;
pub mod expiry;
pub mod metrics;
pub mod provision;
pub mod session;
pub mod session_ref;
pub mod stream;
