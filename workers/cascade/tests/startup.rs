//! The deployed cascade binary refuses to start on a bad environment, naming the variable.

fn start(env: &[(&str, &str)]) -> (bool, String) {
    sessionwarden_tests::run_binary(env!("CARGO_BIN_EXE_sessionwarden-cascade"), env)
}

#[test]
fn a_bad_page_size_fails_startup_naming_the_variable() {
    let (ok, stderr) = start(&[
        ("SESSIONS_TABLE", "s"),
        ("SESSION_REF_KEY", "0123456789abcdef"),
        ("STATE_TABLE", "st"),
        ("CASCADE_QUEUE_URL", "http://q"),
        ("DEAD_LETTER_QUEUE_URL", "http://d"),
        ("ALERTS_TOPIC_ARN", "arn"),
        ("CASCADE_PAGE_SIZE", "0"),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("CASCADE_PAGE_SIZE=0 is invalid"),
        "{stderr}"
    );
}
