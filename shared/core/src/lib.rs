//! sessionwarden's core: the session model, the pure policy, and the three services with the
//! ports they are generic over. It knows no AWS or Lambda type: its `Cargo.toml` has no SDK,
//! `aws_lambda_events` or `lambda_runtime` dependency, so the compiler keeps it that way.
//!
//! Layers, from the bottom up; each module imports only from the ones above it in this list:
//! - **Model and policy:** [`session`], [`session_ref`], [`expiry`], [`change`], [`anomaly`],
//!   [`cascade_message`], [`alert`], [`metrics`], [`deadline`], [`layout`], [`config`],
//!   [`session_event`] (session-ended events) and [`limit`] (the per-user session limit).
//! - **Ports:** [`error`] (what a failed port call means to the caller) and [`ports`] (the narrow
//!   traits: session store, state store, alert sink, cascade queue, dead letters, metrics).
//! - **Services:** [`cleanup`], [`stream`] and [`cascade`]. Each decides purely what a unit of
//!   work should do, then carries it out through the ports, and reports what it did.
//!
//! The adapters that implement the ports live in `sessionwarden-aws`; local tooling (provisioning,
//! stream tailing, seeding) in `sessionwarden-local`, which no Lambda binary links.

pub mod alert;
pub mod anomaly;
pub mod cascade;
pub mod cascade_message;
pub mod change;
pub mod cleanup;
pub mod config;
pub mod deadline;
pub mod error;
pub mod expiry;
#[cfg(feature = "fake")]
pub mod fake;
pub mod layout;
pub mod limit;
pub mod metrics;
pub mod ports;
pub mod session;
pub mod session_event;
pub mod session_ref;
pub mod stream;
