//! The stream side of sessionwarden: turning DynamoDB stream records of the sessions table into
//! facts and anomalies, and acting on them. [`change`] is the record model, [`crate::anomaly`] the
//! pure detection, [`service`] the orchestration over the state, alert, containment and
//! dead-letter ports.

pub mod change;
pub mod service;
