//! Cascade terminations: when a session ends for a reason that reaches beyond itself, every
//! session it implies ends too. [`message`] is the versioned queue schema and its strict
//! validation (pure); [`service`] pages through the matching index and ends sessions, with
//! continuations, family recursion and idempotency.

pub mod message;
pub mod service;
