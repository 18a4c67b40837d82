//! The deployed binary refuses to start on a bad environment, with a message that names the
//! variable, before it contacts the Lambda runtime or AWS.

fn start(env: &[(&str, &str)]) -> (bool, String) {
    sessionwarden_tests::run_binary(env!("CARGO_BIN_EXE_sessionwarden-cleanup"), env)
}

const OK: [(&str, &str); 2] = [
    ("SESSIONS_TABLE", "sessions"),
    ("SESSION_REF_KEY", "0123456789abcdef"),
];

#[test]
fn a_bad_strategy_fails_startup_naming_the_variable() {
    let mut env = OK.to_vec();
    env.push(("CLEANUP_STRATEGY", "fullscan"));
    let (ok, stderr) = start(&env);
    assert!(!ok);
    assert!(
        stderr.contains("configuration error: CLEANUP_STRATEGY=\"fullscan\" is invalid: expected `index` or `scan`"),
        "{stderr}"
    );
}

#[test]
fn a_non_numeric_timeout_fails_startup_naming_the_variable() {
    let mut env = OK.to_vec();
    env.push(("DEFAULT_IDLE_TIMEOUT_SECONDS", "8h"));
    let (ok, stderr) = start(&env);
    assert!(!ok);
    assert!(
        stderr.contains("DEFAULT_IDLE_TIMEOUT_SECONDS=\"8h\" is invalid"),
        "{stderr}"
    );
}

#[test]
fn a_missing_table_fails_startup_naming_the_variable() {
    let (ok, stderr) = start(&[("SESSION_REF_KEY", "0123456789abcdef")]);
    assert!(!ok);
    assert!(
        stderr.contains("SESSIONS_TABLE is required but not set"),
        "{stderr}"
    );
}
