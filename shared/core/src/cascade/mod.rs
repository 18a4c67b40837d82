//! Cascade terminations: when a session ends for a reason that reaches beyond itself, every
//! session it implies ends too. The message schema is [`crate::cascade_message`]; [`service`]
//! pages through the matching sessions and ends them, with continuations, family recursion and
//! idempotency; [`report`] is what a batch did.

pub mod report;
pub mod service;

pub use report::{CascadeReport, QueueMessage};
pub use service::process_batch;
