//! Test helpers shared between test files (and, by path, with `sessionwarden-aws`'s tests).

pub mod arb;
