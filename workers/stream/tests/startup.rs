//! The deployed stream binary refuses to start on a bad environment, naming the variable.

use sessionwarden_tests::assert_startup_fails;

/// The worker binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_sessionwarden-stream");

const OK: [(&str, &str); 5] = [
    ("SESSIONS_TABLE", "sessions"),
    ("SESSION_REF_KEY", "0123456789abcdef"),
    ("STATE_TABLE", "state"),
    (
        "ALERTS_TOPIC_ARN",
        "arn:aws:sns:us-east-1:000000000000:alerts",
    ),
    ("DEAD_LETTER_QUEUE_URL", "http://localhost/q"),
];

#[test]
fn a_bad_containment_policy_fails_startup_naming_the_variable() {
    let mut env = OK.to_vec();
    env.push(("CONTAINMENT_SESSION_USER_CHANGED", "nuke"));
    assert_startup_fails(
        BIN,
        &env,
        "CONTAINMENT_SESSION_USER_CHANGED=\"nuke\" is invalid",
    );
}

#[test]
fn a_missing_topic_fails_startup_naming_the_variable() {
    let env: Vec<_> = OK
        .iter()
        .filter(|(k, _)| *k != "ALERTS_TOPIC_ARN")
        .copied()
        .collect();
    assert_startup_fails(BIN, &env, "ALERTS_TOPIC_ARN is required but not set");
}
