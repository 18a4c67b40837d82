//! The own-index decisions of non-native layouts (pure): which changes file a session in the due
//! index and the member lists, and how a batch's filings fold; plus the TTL-deadline expiry and
//! the lapsed-session rule they rely on.

use sessionwarden_core::anomaly::{self, AnomalyType};
use sessionwarden_core::cascade_message::Target;
use sessionwarden_core::change::{Change, ChangeKind, Image, SeqNo};
use sessionwarden_core::config::CommonConfig;
use sessionwarden_core::expiry::{ExpiryPolicy, ExpiryReason, SessionClock, Verdict};
use sessionwarden_core::fake::vars;
use sessionwarden_core::ports::{Filing, Slot};
use sessionwarden_core::session::{SessionId, Status};
use sessionwarden_core::stream::filing::{compact, filings};

const NOW: i64 = 1_800_000_000;

fn cfg(layout: &'static str) -> CommonConfig {
    CommonConfig::from_source(&vars(&[("SESSION_LAYOUT", layout)])).unwrap()
}

/// A connect-dynamodb image: its only deadline is `expires`.
fn img(user: &str, expires: i64, at: i64) -> Image {
    Image {
        user_id: Some(user.into()),
        status: Some(if expires <= at {
            Status::Expired
        } else {
            Status::Active
        }),
        lapses_at: Some(expires),
        lapsed: expires <= at,
        ..Default::default()
    }
}

fn change(kind: ChangeKind, old: Option<Image>, new: Option<Image>, at: i64) -> Change {
    Change {
        seq: SeqNo("1".into()),
        kind,
        session_id: SessionId::new("s-1"),
        old,
        new,
        by_ttl: false,
        at,
    }
}

fn due(from: Option<i64>, to: Option<(i64, i64)>) -> Filing {
    Filing::Due {
        id: SessionId::new("s-1"),
        from,
        to: to.map(|(bucket, due_at)| Slot { bucket, due_at }),
    }
}

fn member(user: &str, present: bool) -> Filing {
    Filing::Member {
        id: SessionId::new("s-1"),
        group: Target::User(user.into()),
        present,
    }
}

#[test]
fn an_insert_files_the_due_entry_and_the_member_list() {
    let c = cfg("connect-dynamodb");
    let e = NOW + 3600;
    let f = filings(
        &change(ChangeKind::Insert, None, Some(img("u-1", e, NOW)), NOW),
        &c,
    );
    assert_eq!(f, vec![due(None, Some((e / 900, e))), member("u-1", true)]);
}

#[test]
fn a_touch_within_the_bucket_files_nothing_and_across_it_moves_once() {
    let c = cfg("connect-dynamodb");
    let e = (NOW + 3600) / 900 * 900 + 10;
    let old = img("u-1", e, NOW);
    let same = change(
        ChangeKind::Modify,
        Some(old.clone()),
        Some(img("u-1", e + 60, NOW)),
        NOW,
    );
    assert!(filings(&same, &c).is_empty());
    let next = change(
        ChangeKind::Modify,
        Some(old),
        Some(img("u-1", e + 900, NOW)),
        NOW,
    );
    assert_eq!(
        filings(&next, &c),
        vec![due(Some(e / 900), Some(((e + 900) / 900, e + 900)))]
    );
}

#[test]
fn a_delete_or_an_end_unfiles_and_a_user_change_moves_the_member_entry() {
    let c = cfg("connect-dynamodb");
    let e = NOW + 3600;
    let removed = change(ChangeKind::Remove, Some(img("u-1", e, NOW)), None, NOW);
    assert_eq!(
        filings(&removed, &c),
        vec![due(Some(e / 900), None), member("u-1", false)]
    );
    let moved = change(
        ChangeKind::Modify,
        Some(img("u-1", e, NOW)),
        Some(img("u-2", e, NOW)),
        NOW,
    );
    assert_eq!(
        filings(&moved, &c),
        vec![member("u-1", false), member("u-2", true)]
    );
}

#[test]
fn a_session_already_past_due_files_where_the_next_cleanup_reads() {
    let c = cfg("connect-dynamodb");
    let lapsed = img("u-1", NOW - 7200, NOW);
    let f = filings(&change(ChangeKind::Insert, None, Some(lapsed), NOW), &c);
    assert_eq!(f[0], due(None, Some((NOW / 900 - 1, NOW - 7200))));
}

#[test]
fn the_native_layout_files_nothing() {
    let c = cfg("native");
    let f = filings(
        &change(ChangeKind::Insert, None, Some(img("u", NOW + 60, NOW)), NOW),
        &c,
    );
    assert!(f.is_empty());
}

#[test]
fn a_batch_folds_to_one_write_per_entry() {
    let folded = compact(vec![
        due(None, Some((10, 9000))),
        member("u-1", true),
        due(Some(10), Some((11, 9900))),
        member("u-1", false),
        member("u-1", true),
    ]);
    assert_eq!(
        folded,
        vec![due(None, Some((11, 9900))), member("u-1", true)]
    );
}

#[test]
fn a_ttl_deadline_is_its_own_expiry_reason() {
    let p = ExpiryPolicy::default();
    let clock = SessionClock {
        lapses_at: Some(NOW - 1),
        ..Default::default()
    };
    assert_eq!(
        p.evaluate(&clock, NOW),
        Verdict::Due {
            reason: ExpiryReason::Lapsed,
            deadline: NOW - 1
        }
    );
    let future = SessionClock {
        lapses_at: Some(NOW + 5),
        ..Default::default()
    };
    assert_eq!(p.evaluate(&future, NOW), Verdict::NotDue { next: NOW + 5 });
    // With an idle deadline too, the earlier one wins.
    let both = SessionClock {
        last_activity_at: Some(NOW - 9 * 3600),
        lapses_at: Some(NOW - 60),
        ..Default::default()
    };
    assert!(matches!(
        p.evaluate(&both, NOW),
        Verdict::Due {
            reason: ExpiryReason::Idle,
            ..
        }
    ));
    assert_eq!(p.due_at(&future), Some(NOW + 5));
}

#[test]
fn writing_to_a_lapsed_session_is_activity_after_termination() {
    let e = NOW - 600;
    let c = change(
        ChangeKind::Modify,
        Some(img("u-1", e, NOW)),
        Some(img("u-1", NOW + 3600, NOW)),
        NOW,
    );
    let d = anomaly::detect(&c, None, &ExpiryPolicy::default());
    let kinds: Vec<AnomalyType> = d.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, vec![AnomalyType::ActivityAfterTermination]);
}
