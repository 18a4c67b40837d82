//! Batch semantics of the cascade service with in-memory ports; the AWS adapters are tested on
//! the emulators in the workspace's `tests/cascade.rs`.

use sessionwarden_core::cascade::{process_batch, QueueMessage};
use sessionwarden_core::cascade_message::Target;
use sessionwarden_core::config::CascadeConfig;
use sessionwarden_core::deadline::EpochDeadline;
use sessionwarden_core::error::PortResult;
use sessionwarden_core::fake::{vars, Mem};
use sessionwarden_core::ports::{
    CandidatePage, EndOutcome, Filing, Member, MemberPage, Page, PageRequest, Ports, Scope,
    SessionStore, Termination,
};
use sessionwarden_core::session::{SessionId, Status};
use sessionwarden_core::session_ref::SessionRefKey;
use std::collections::HashMap;

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

fn family_job(
    parent: &str,
    depth: u32,
    path: Vec<String>,
) -> sessionwarden_core::cascade_message::CascadeJob {
    sessionwarden_core::cascade_message::CascadeJob {
        target: sessionwarden_core::cascade_message::Target::Family(SessionId::new(parent)),
        reason: "r".into(),
        requested_by: "x".into(),
        root_id: "root".into(),
        cursor: None,
        depth,
        path,
    }
}

#[test]
fn a_family_page_plans_one_sub_cascade_per_child_and_stops_cycles_and_depth() {
    use sessionwarden_core::cascade::family;
    let key = SessionRefKey::new(b"0123456789abcdef".to_vec()).unwrap();
    let page = [
        Member::active(SessionId::new("child")),
        Member {
            id: SessionId::new("grandpa"),
            status: Status::Terminated,
            ended_by: None,
        },
    ];
    // grandpa is an ancestor of this family: the branch through it is a cycle.
    let job = family_job("parent", 1, vec![key.state_key(&SessionId::new("grandpa"))]);
    let plan = family::plan(&job, &page, &key, 10);
    assert_eq!(plan.subs.len(), 1);
    assert_eq!(plan.subs[0].session_id.as_deref(), Some("child"));
    assert_eq!(plan.cycles, [SessionId::new("grandpa")]);
    assert!(plan.too_deep.is_empty());

    // At the depth limit nothing goes further.
    let deep = family::plan(&family_job("parent", 10, vec![]), &page, &key, 10);
    assert!(deep.subs.is_empty());
    assert_eq!(deep.too_deep.len(), 2);
}

#[tokio::test]
async fn slow_writes_hand_the_page_over_before_the_deadline() {
    let mem = Mem::default();
    let ports = Scripted {
        mem: mem.clone(),
        slow: true,
        page: None,
    }
    .ports();
    // The margin holds the hand-over; no call runs into the last 500 ms (`deadline::RESERVE`),
    // so the margin is given more than that.
    let cfg = CascadeConfig::from_source(&vars(&[("CASCADE_DEADLINE_MARGIN_MS", "900")])).unwrap();
    let budget = std::time::Duration::from_millis(1500);
    let deadline = EpochDeadline::in_from_now(budget);
    let batch = [msg(
        "m1",
        r#"{"version":1,"scope":"user","userId":"u","reason":"r","requestedBy":"x"}"#,
    )];
    let started = std::time::Instant::now();
    let r = process_batch(&ports, &cfg, &batch, &deadline, 1_800_000_000).await;
    assert!(
        started.elapsed() < budget,
        "overran: {:?}",
        started.elapsed()
    );
    assert!(r.failed.is_empty(), "handed over, not failed: {r:?}");
    assert_eq!(r.continuations, 1);
    let st = mem.state();
    assert!(st.ended.is_empty(), "nothing ended within the budget");
    // The continuation restarts the same page.
    assert_eq!(st.queued.len(), 1);
    assert_eq!(st.queued[0].cursor, None);
}

/// Sessions listed with this job's own `terminatedBy`: an earlier attempt of the page ended them
/// (its message failed later and came back). They count for the page, as the job record adds
/// each page once; sessions another cascade ended do not.
#[tokio::test]
async fn a_redelivered_page_counts_the_sessions_its_own_job_ended() {
    let ended = |id: &str, by: &str| Member {
        id: SessionId::new(id),
        status: Status::Terminated,
        ended_by: Some(by.into()),
    };
    // A user's page: one ACTIVE session, one this job ended before, one another cascade ended.
    let ports = Scripted {
        mem: Mem::default(),
        slow: false,
        page: Some(vec![
            Member::active(SessionId::new("s-active")),
            ended("s-mine", "root-1"),
            ended("s-other", "root-0"),
        ]),
    }
    .ports();
    let cfg = CascadeConfig::from_source(&vars(&[])).unwrap();
    let deadline = EpochDeadline::in_from_now(std::time::Duration::from_secs(60));
    let batch = [msg(
        "m1",
        r#"{"version":1,"scope":"user","userId":"u","reason":"r","requestedBy":"x","requestId":"root-1"}"#,
    )];
    let r = process_batch(&ports, &cfg, &batch, &deadline, 1_800_000_000).await;
    assert!(r.failed.is_empty(), "{r:?}");
    assert_eq!(r.ended.get("cascade:user"), Some(&2), "{r:?}");
    assert_eq!(r.already_ended, 1, "{r:?}");
}

/// The fake's sessions with a script: every ending write `slow` (2 s) slower, and `page` (when
/// set) as the one page of every cascade target.
struct Scripted {
    mem: Mem,
    slow: bool,
    page: Option<Vec<Member>>,
}

impl Scripted {
    /// The fake's ports, with this store as the sessions table.
    fn ports(self) -> Ports<Scripted, Mem, Mem, Mem, Mem, Mem, Mem> {
        let p = self.mem.ports();
        Ports {
            sessions: self,
            state: p.state,
            alerts: p.alerts,
            cascades: p.cascades,
            dead_letters: p.dead_letters,
            metrics: p.metrics,
            events: p.events,
        }
    }
}

impl SessionStore for Scripted {
    async fn due(&self, scope: &Scope, now: i64, page: PageRequest) -> PortResult<CandidatePage> {
        self.mem.due(scope, now, page).await
    }
    async fn members(&self, target: &Target, page: PageRequest) -> PortResult<MemberPage> {
        match &self.page {
            Some(items) => Ok(Page {
                items: items.clone(),
                items_read: items.len() as u64,
                requests: 1,
                next: None,
            }),
            None => self.mem.members(target, page).await,
        }
    }
    async fn end(&self, id: &SessionId, t: &Termination) -> PortResult<EndOutcome> {
        if self.slow {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
        self.mem.end(id, t).await
    }
    async fn file(&self, filings: &[Filing]) -> PortResult<()> {
        self.mem.file(filings).await
    }
    async fn notes(&self, ids: &[SessionId]) -> PortResult<HashMap<SessionId, String>> {
        self.mem.notes(ids).await
    }
}
