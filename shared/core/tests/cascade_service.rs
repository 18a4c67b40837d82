//! Batch semantics of the cascade service with in-memory ports; the AWS adapters are tested on
//! the emulators in the workspace's `tests/cascade.rs`.

use sessionwarden_core::cascade::{process_batch, QueueMessage};
use sessionwarden_core::config::CascadeConfig;
use sessionwarden_core::deadline::EpochDeadline;
use sessionwarden_core::fake::{vars, Mem};

fn msg(id: &str, body: &str) -> QueueMessage {
    QueueMessage {
        id: id.into(),
        body: body.into(),
    }
}

#[tokio::test]
async fn a_transient_error_fails_only_its_message_and_an_invalid_one_is_dead_lettered() {
    let mem = Mem::default();
    let cfg = CascadeConfig::from_source(&vars(&[])).unwrap();
    let deadline = EpochDeadline::in_from_now(std::time::Duration::from_secs(60));
    let batch = [
        msg(
            "m1",
            r#"{"version":1,"scope":"user","userId":"good","reason":"r","requestedBy":"x"}"#,
        ),
        msg(
            "m2",
            r#"{"version":1,"scope":"user","userId":"flaky","reason":"r","requestedBy":"x"}"#,
        ),
        msg(
            "m3",
            r#"{"version":1,"scope":"user","reason":"r","requestedBy":"x"}"#,
        ),
    ];
    let r = process_batch(&mem.ports(), &cfg, &batch, &deadline, 1_800_000_000).await;
    assert_eq!(
        r.failed,
        ["m2"],
        "only the message that hit the transient error is retried"
    );
    assert_eq!(r.invalid, 1);
    let st = mem.state();
    assert_eq!(
        st.letters[0].reason,
        "invalid cascade message: scope user needs userId"
    );
    assert_eq!(st.ended, ["good-s1", "good-s2"]);
    assert_eq!(r.ended.get("cascade:user"), Some(&2));
}
