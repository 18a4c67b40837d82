//! Cascade terminations: when a session ends for a reason that reaches beyond itself, every
//! session it implies ends too. The message schema is [`crate::cascade_message`]; [`service`]
//! pages through the matching sessions and ends them, with continuations and idempotency;
//! [`family`] decides the family recursion, with its cycle and depth guards; [`report`] is what a
//! batch did.

pub mod family;
pub mod report;
pub mod service;

pub use report::{CascadeReport, QueueMessage};
pub use service::process_batch;
