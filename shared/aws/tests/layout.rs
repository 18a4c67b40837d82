//! Reading items through each layout: what is a session, what it says (user, status, deadlines,
//! fence), and the reasons an item that claims to be a session cannot be read.

use std::collections::HashMap;

use serde_dynamo::AttributeValue as Av;
use sessionwarden_aws::layout::{self, Item, Read, Seen};
use sessionwarden_core::layout::{Layout, Mapped, IS_CURRENT_EXAMPLE};
use sessionwarden_core::session::{SessionId, Status};

const AT: i64 = 1_800_000_000;

fn mapped(raw: &str) -> Mapped {
    match Layout::parse(raw).unwrap() {
        Layout::Mapped(m) => *m,
        Layout::Native => unreachable!(),
    }
}

fn s(v: &str) -> Av {
    Av::S(v.into())
}

fn n(v: &str) -> Av {
    Av::N(v.into())
}

fn item(pairs: &[(&str, Av)]) -> Item {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn seen(m: &Mapped, i: &Item) -> Seen {
    match layout::read(m, i, AT) {
        Ok(Read::Session(s)) => *s,
        other => panic!("{other:?}"),
    }
}

fn connect(sess: Av, expires: i64) -> Item {
    item(&[
        ("id", s("sess:abc")),
        ("expires", n(&expires.to_string())),
        ("type", s("connect-session")),
        ("sess", sess),
    ])
}

#[test]
fn connect_dynamodb_reads_the_user_from_sess_in_every_shape() {
    let m = mapped("connect-dynamodb");
    for (sess, user) in [
        (s(r#"{"cookie":{},"user":{"id":"u-1"}}"#), Some("u-1")),
        (s(r#"{"cookie":{},"userId":"u-2"}"#), Some("u-2")),
        (s(r#"{"cookie":{},"passport":{"user":"u-3"}}"#), Some("u-3")),
        (
            s(r#"{"cookie":{},"passport":{"user":{"id":42}}}"#),
            Some("42"),
        ),
        (
            Av::M(HashMap::from([(
                "user".to_string(),
                Av::M(HashMap::from([("id".to_string(), s("u-4"))])),
            )])),
            Some("u-4"),
        ),
        (s(r#"{"cookie":{},"returnTo":"/"}"#), None),
    ] {
        let r = seen(&m, &connect(sess, AT + 60));
        assert_eq!(r.id, SessionId::new("abc"));
        assert_eq!(r.image.user_id.as_deref(), user);
        assert_eq!(r.image.status, Some(Status::Active));
        assert_eq!(r.image.lapses_at, Some(AT + 60));
        assert_eq!(r.fence.0.as_deref(), Some(&*format!("N:{}", AT + 60)));
    }
    let lapsed = seen(&m, &connect(s("{}"), AT - 1)).image;
    assert!(lapsed.lapsed);
    assert_eq!(lapsed.status, Some(Status::Expired));
}

#[test]
fn connect_dynamodb_tells_non_sessions_from_unreadable_sessions() {
    let m = mapped("connect-dynamodb");
    let other = item(&[("id", s("cache:x")), ("body", s("y"))]);
    assert_eq!(layout::read(&m, &other, AT), Ok(Read::NotSession));
    let e = layout::read(&m, &connect(s("{nope"), AT + 60), AT).unwrap_err();
    assert!(e.contains("attribute sess is not JSON"), "{e}");
    let mut no_expires = connect(s("{}"), AT);
    no_expires.remove("expires");
    let e = layout::read(&m, &no_expires, AT).unwrap_err();
    assert_eq!(e, "attribute expires is missing");
    let e = layout::read(
        &m,
        &connect(s("{}"), 0)
            .into_iter()
            .map(|(k, v)| (k.clone(), if k == "expires" { s("soon") } else { v }))
            .collect(),
        AT,
    )
    .unwrap_err();
    assert!(e.contains("not a time"), "{e}");
    // The error never carries the raw key.
    assert!(!e.contains("abc"));
}

#[test]
fn authjs_sessions_are_found_by_kind_and_key_and_carry_their_home() {
    let m = mapped("authjs");
    let session = |expires: Av| {
        item(&[
            ("pk", s("USER#u-1")),
            ("sk", s("SESSION#tok")),
            ("type", s("SESSION")),
            ("sessionToken", s("tok")),
            ("userId", s("u-1")),
            ("expires", expires),
        ])
    };
    let r = seen(&m, &session(n("1800000100.417")));
    assert_eq!(r.id, SessionId::new("tok"));
    assert_eq!(r.id.home(), Some("USER#u-1"));
    assert_eq!(r.image.user_id.as_deref(), Some("u-1"));
    assert_eq!(r.image.lapses_at, Some(AT + 100));
    let iso = seen(&m, &session(s("2027-01-15T08:00:00.000Z")));
    let want = chrono::DateTime::parse_from_rfc3339("2027-01-15T08:00:00Z").unwrap();
    assert_eq!(iso.image.lapses_at, Some(want.timestamp()));
    let key = layout::key_of(&m, &r.id).unwrap();
    assert_eq!(key["pk"].as_s().unwrap(), "USER#u-1");
    assert_eq!(key["sk"].as_s().unwrap(), "SESSION#tok");
    assert!(layout::key_of(&m, &SessionId::new("tok")).is_none());
    for not_session in [
        item(&[
            ("pk", s("USER#u-1")),
            ("sk", s("USER#u-1")),
            ("type", s("USER")),
        ]),
        item(&[
            ("pk", s("USER#u-1")),
            ("sk", s("ACCOUNT#github#1")),
            ("type", s("ACCOUNT")),
        ]),
        item(&[("pk", s("VT#a@b.c")), ("sk", s("VT#t")), ("type", s("VT"))]),
    ] {
        assert_eq!(layout::read(&m, &not_session, AT), Ok(Read::NotSession));
    }
}

#[test]
fn the_is_current_table_reads_iso_times_minutes_and_the_flag() {
    let m = mapped(IS_CURRENT_EXAMPLE);
    let i = item(&[
        ("id", s("s-9")),
        ("userId", s("u-1")),
        ("isCurrent", Av::Bool(false)),
        ("lastActivity", s("2026-11-20T10:00:00Z")),
        ("sessionTimeout", n("480")),
        ("ipAddress", s("203.0.113.7")),
    ]);
    let r = seen(&m, &i);
    assert_eq!(r.image.status, Some(Status::Terminated));
    assert_eq!(r.image.last_activity_at, Some(1_795_168_800));
    assert_eq!(r.image.idle_timeout_seconds, Some(480 * 60));
    assert_eq!(r.image.ip_address.as_deref(), Some("203.0.113.7"));
    assert_eq!(r.fence.0.as_deref(), Some("S:2026-11-20T10:00:00Z"));
    let mut no_flag = i.clone();
    no_flag.remove("isCurrent");
    assert_eq!(
        layout::read(&m, &no_flag, AT).unwrap_err(),
        "attribute isCurrent is missing"
    );
}
