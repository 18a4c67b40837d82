//! `sessionctl demo --layout connect-dynamodb` and `--layout authjs`, end to end: the binary
//! provisions a table shaped as the library shapes it, writes sessions in the library's own item
//! format, runs the three workers in-process, and prints what it caught. The demo checks its own
//! outcomes (it fails otherwise); these tests check the lines a reader relies on.
//!
//! They run on moto alone, as `just demo` does: DynamoDB Local's TTL deletes an item whose
//! `expires` has passed within about a second (README, "Emulator differences"), so the sessions
//! the expiry part needs (past their `expires`, not yet deleted) would be gone before cleanup runs.

use std::process::{Child, Command, Stdio};

/// Starts `sessionctl demo --layout LAYOUT` on moto.
fn start(layout: &str) -> Child {
    let moto = sessionwarden_tests::endpoint().to_string();
    let name = sessionwarden_tests::unique("demo");
    Command::new(env!("CARGO_BIN_EXE_sessionctl"))
        .args(["demo", "--layout", layout, "--prefix", &name])
        .env("AWS_ENDPOINT_URL", &moto)
        .env("AWS_ENDPOINT_URL_DYNAMODB", &moto)
        .env("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", &moto)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("METRICS_NAMESPACE", &name)
        .env_remove("SESSION_REF_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sessionctl")
}

/// Waits for a demo and returns what it printed, failing if it failed.
fn finish(layout: &str, child: Child) -> String {
    let out = child.wait_with_output().expect("wait for sessionctl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sessionctl demo --layout {layout} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn assert_has(stdout: &str, line: &str) {
    assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
}

/// Every key value printed is elided: `<prefix><session ID>`.
fn assert_ids_elided(stdout: &str, prefix: &str) {
    for (at, _) in stdout.match_indices(prefix) {
        assert!(
            stdout[at + prefix.len()..].starts_with('<'),
            "a raw session ID after {prefix:?}:\n{}",
            &stdout[at..(at + 60).min(stdout.len())]
        );
    }
}

fn assert_common(stdout: &str) {
    assert_has(stdout, "TTL on expires");
    assert_eq!(
        stdout.matches("Subject: [CRITICAL]").count(),
        1,
        "exactly one CRITICAL alert:\n{stdout}"
    );
    assert_has(
        stdout,
        "Bleed caught: 1 CRITICAL SESSION_USER_CHANGED alert, session ref ",
    );
    assert_has(stdout, "the raw session ID appears nowhere in it");
    assert_has(stdout, "Evidence:\n  userId: \"u-003\" -> \"u-999\"");
    assert_has(
        stdout,
        "Containment: every item carrying that session ID is deleted",
    );
    assert_has(stdout, "expired 3 (ttl 3, idle 0, absolute 0)");
    assert_eq!(
        stdout
            .matches("ended: deleted by cleanup (reason ttl)")
            .count(),
        3,
        "{stdout}"
    );
    assert_has(stdout, "survives (fresh)");
    assert_has(
        stdout,
        "Expired: 3 sessions counted as ttl; the fresh one survives.",
    );
    assert_has(stdout, "ended {\"cascade:user\": 3}");
    assert_has(stdout, "  u-100        3      0\n  u-200        2      2\n");
    assert_has(
        stdout,
        "Logout everywhere: u-100 3 -> 0 sessions; u-200 keeps 2.",
    );
}

/// Both demos at once, as two processes: they share one test slot.
#[test]
fn layout_demos_catch_a_bleed_and_a_fixation_end_lapsed_sessions_and_log_a_user_out() {
    let (connect, authjs) = (start("connect-dynamodb"), start("authjs"));
    let (connect, authjs) = (
        finish("connect-dynamodb", connect),
        finish("authjs", authjs),
    );

    assert_common(&connect);
    assert_has(&connect, "type: \"connect-session\"");
    assert_has(
        &connect,
        "Subject: [MEDIUM] sessionwarden: login kept the anonymous session ID (fixation)",
    );
    assert_has(&connect, "Fixation caught: 1 MEDIUM SESSION_FIXATION alert");
    assert_ids_elided(&connect, "\"sess:");
    assert_has(&connect, "Demo finished on the connect-dynamodb layout.");

    assert_common(&authjs);
    assert_has(&authjs, "type: \"SESSION\"");
    assert_has(&authjs, "No fixation can occur.");
    assert!(!authjs.contains("SESSION_FIXATION"), "{authjs}");
    assert_has(
        &authjs,
        "Items that are not sessions (users, accounts): 28 before, 28 after.",
    );
    assert_ids_elided(&authjs, "\"SESSION#");
    assert_has(&authjs, "Demo finished on the authjs layout.");
}
