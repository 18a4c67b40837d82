//! The deployed cascade binary refuses to start on a bad environment, naming the variable.

use sessionwarden_tests::assert_startup_fails;

/// The worker binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_sessionwarden-cascade");

#[test]
fn a_bad_page_size_fails_startup_naming_the_variable() {
    assert_startup_fails(
        BIN,
        &[
            ("SESSIONS_TABLE", "s"),
            ("SESSION_REF_KEY", "0123456789abcdef"),
            ("STATE_TABLE", "st"),
            ("CASCADE_QUEUE_URL", "http://q"),
            ("DEAD_LETTER_QUEUE_URL", "http://d"),
            ("ALERTS_TOPIC_ARN", "arn"),
            ("CASCADE_PAGE_SIZE", "0"),
        ],
        "CASCADE_PAGE_SIZE=0 is invalid",
    );
}
