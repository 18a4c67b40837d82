//! The deployed binary refuses to start on a bad environment, with a message that names the
//! variable, before it contacts the Lambda runtime or AWS.

use sessionwarden_tests::assert_startup_fails;

/// The worker binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_sessionwarden-cleanup");

const OK: [(&str, &str); 2] = [
    ("SESSIONS_TABLE", "sessions"),
    ("SESSION_REF_KEY", "0123456789abcdef"),
];

/// A valid environment plus one more variable.
fn ok_with(var: (&'static str, &'static str)) -> Vec<(&'static str, &'static str)> {
    let mut env = OK.to_vec();
    env.push(var);
    env
}

#[test]
fn a_bad_strategy_fails_startup_naming_the_variable() {
    assert_startup_fails(
        BIN,
        &ok_with(("CLEANUP_STRATEGY", "fullscan")),
        "configuration error: CLEANUP_STRATEGY=\"fullscan\" is invalid: expected `index` or `scan`",
    );
}

#[test]
fn a_non_numeric_timeout_fails_startup_naming_the_variable() {
    assert_startup_fails(
        BIN,
        &ok_with(("DEFAULT_IDLE_TIMEOUT_SECONDS", "8h")),
        "DEFAULT_IDLE_TIMEOUT_SECONDS=\"8h\" is invalid",
    );
}

#[test]
fn a_missing_table_fails_startup_naming_the_variable() {
    assert_startup_fails(
        BIN,
        &[("SESSION_REF_KEY", "0123456789abcdef")],
        "SESSIONS_TABLE is required but not set",
    );
}
