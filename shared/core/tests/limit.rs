//! The session limit's decisions ([`admit`]) and the ends the stream announces ([`ending`]):
//! pure, no I/O.

use sessionwarden_core::change::{Change, ChangeKind, Image, SeqNo};
use sessionwarden_core::limit::{admit, confirmed, LimitConfig, LimitPolicy, Movement, Roster};
use sessionwarden_core::session::{SessionId, Status};
use sessionwarden_core::session_event::{ending, How};
use sessionwarden_core::session_ref::SessionRefKey;

const NOW: i64 = 1_800_000_000;

fn key() -> SessionRefKey {
    SessionRefKey::new(b"unit-test-key-0123456789".to_vec()).unwrap()
}

fn start(id: &str, at: i64) -> Movement {
    Movement::Start {
        id: SessionId::new(id),
        tenant: Some("acme".into()),
        created_at: at,
    }
}

fn limit(max: u32, policy: LimitPolicy) -> LimitConfig {
    LimitConfig {
        max: Some(max),
        by_tenant: vec![],
        policy,
    }
}

fn ids(v: &[SessionId]) -> Vec<&str> {
    v.iter().map(|i| i.expose()).collect()
}

#[test]
fn the_oldest_end_and_a_second_admission_of_the_same_starts_changes_nothing() {
    let moves = [start("c", 3), start("a", 1), start("b", 2)];
    let a = admit(
        &Roster::default(),
        &moves,
        &limit(2, LimitPolicy::EndOldest),
        &key(),
        NOW,
        NOW + 10,
    );
    assert_eq!(ids(&a.to_end), ["a"]);
    assert_eq!(a.newly, 1);
    let again = admit(
        &a.roster,
        &moves,
        &limit(2, LimitPolicy::EndOldest),
        &key(),
        NOW,
        NOW + 10,
    );
    assert!(!again.changed);
    assert_eq!(again.newly, 0);
    assert_eq!(
        ids(&again.to_end),
        ["a"],
        "not confirmed yet: ended again, idempotently"
    );
    let done = confirmed(&again.roster, &again.to_end);
    let third = admit(
        &done,
        &moves,
        &limit(2, LimitPolicy::EndOldest),
        &key(),
        NOW,
        NOW + 10,
    );
    assert!(third.to_end.is_empty() && !third.changed);
}

#[test]
fn end_newest_keeps_the_first_and_a_stop_frees_a_seat() {
    let l = limit(2, LimitPolicy::EndNewest);
    let a = admit(
        &Roster::default(),
        &[start("a", 1), start("b", 2), start("c", 3)],
        &l,
        &key(),
        NOW,
        NOW + 10,
    );
    assert_eq!(ids(&a.to_end), ["c"]);
    let r = confirmed(&a.roster, &a.to_end);
    let b = admit(
        &r,
        &[
            Movement::Stop {
                id: SessionId::new("a"),
            },
            start("d", 4),
        ],
        &l,
        &key(),
        NOW,
        NOW + 10,
    );
    assert!(b.to_end.is_empty(), "{b:?}");
    let seats: Vec<&str> = b.roster.seats.iter().map(|s| s.id.expose()).collect();
    assert_eq!(seats, ["b", "d"]);
}

#[test]
fn a_tenant_override_wins_and_remembered_sessions_expire() {
    let l = LimitConfig {
        max: Some(10),
        by_tenant: vec![("acme".into(), 1)],
        policy: LimitPolicy::EndOldest,
    };
    let a = admit(
        &Roster::default(),
        &[start("a", 1), start("b", 2)],
        &l,
        &key(),
        NOW,
        NOW + 10,
    );
    assert_eq!(ids(&a.to_end), ["a"]);
    // Past its memory, a redelivered start of "a" would be new again: the stream's 24 hours are
    // far shorter than the 2 days kept.
    let later = admit(
        &confirmed(&a.roster, &a.to_end),
        &[],
        &l,
        &key(),
        NOW + 11,
        NOW + 20,
    );
    assert!(later.roster.gone.is_empty());
}

fn image(status: Status, reason: Option<&str>) -> Image {
    Image {
        user_id: Some("u".into()),
        tenant_id: Some("t".into()),
        status: Some(status),
        termination_reason: reason.map(str::to_string),
        ..Default::default()
    }
}

fn change(kind: ChangeKind, old: Option<Image>, new: Option<Image>, by_ttl: bool) -> Change {
    Change {
        seq: SeqNo("100".into()),
        kind,
        session_id: SessionId::new("s"),
        old,
        new,
        by_ttl,
        at: NOW,
    }
}

#[test]
fn an_end_is_a_live_session_ended_or_deleted_once() {
    let ended = change(
        ChangeKind::Modify,
        Some(image(Status::Active, None)),
        Some(image(Status::Terminated, Some("logout"))),
        false,
    );
    let e = ending(&ended).expect("an end");
    assert_eq!((e.how, e.reason(None).as_str()), (How::Write, "logout"));
    let ttl = change(
        ChangeKind::Remove,
        Some(image(Status::Active, None)),
        None,
        true,
    );
    assert_eq!(ending(&ttl).unwrap().reason(Some("idle")), "ttl");
    let delete = change(
        ChangeKind::Remove,
        Some(image(Status::Active, None)),
        None,
        false,
    );
    assert_eq!(ending(&delete).unwrap().reason(None), "delete");
    assert_eq!(
        ending(&delete).unwrap().reason(Some("idle")),
        "idle",
        "sessionwarden's note"
    );
    // An ended item deleted later, a touch, and an INSERT are no end.
    let late = change(
        ChangeKind::Remove,
        Some(image(Status::Terminated, Some("logout"))),
        None,
        true,
    );
    assert!(ending(&late).is_none());
    let touch = change(
        ChangeKind::Modify,
        Some(image(Status::Active, None)),
        Some(image(Status::Active, None)),
        false,
    );
    assert!(ending(&touch).is_none());
    assert!(ending(&change(
        ChangeKind::Insert,
        None,
        Some(image(Status::Active, None)),
        false
    ))
    .is_none());
}
