//! The own-index decisions of non-native layouts, all pure: where one change files its session
//! in the due index and the member lists ([`filings`]), and how a batch's filings fold so no entry
//! is written twice in one request ([`compact`]). `sessionctl backfill` files pre-existing
//! sessions with [`filings`] too; `sessionwarden-aws`'s `MappedSessions::file` carries them out.

use std::collections::HashMap;

use crate::cascade_message::Target;
use crate::change::{Change, ChangeKind, Image};
use crate::config::CommonConfig;
use crate::layout::Layout;
use crate::ports::{Filing, Slot};

/// Where an image files its session in the layout's own indexes: its due time and its groups.
/// `None` when it is not filed: ended by a write (a session that only lapsed stays filed, for
/// cleanup to end it), or absent.
fn placement(image: Option<&Image>, cfg: &CommonConfig) -> Option<(Option<i64>, Vec<Target>)> {
    let i = image?;
    if i.is_ended() && !i.lapsed {
        return None;
    }
    let mut groups: Vec<Target> = Vec::new();
    groups.extend(i.user_id.clone().map(Target::User));
    groups.extend(i.tenant_id.clone().map(Target::Tenant));
    groups.extend(i.parent_session_id.clone().map(Target::Family));
    Some((cfg.expiry.due_at(&i.clock()), groups))
}

/// The index filings of one change, on layouts that keep their own indexes: the due entry moves
/// only when the due time changes bucket (a touch within the bucket costs nothing), and the
/// member lists change only when the user, tenant or parent does. A due time already past files
/// in the bucket before the change's, the oldest that cleanup may not have finished (it always
/// re-reads the last finished bucket), so the next run finds it. The bucket comes from the
/// record's own time, so a redelivery files the same entry; a stream running more than a cleanup
/// period behind can therefore file below the watermark, where cleanup no longer reads (the entry
/// then waits for its TTL): watch `IteratorAge`.
/// `sessionctl backfill` files pre-existing sessions with it too, as INSERTs at scan time.
pub fn filings(change: &Change, cfg: &CommonConfig) -> Vec<Filing> {
    if matches!(cfg.layout, Layout::Native) {
        return Vec::new();
    }
    let index = &cfg.index;
    let mut old = placement(change.old.as_ref(), cfg);
    let mut new = match change.kind {
        ChangeKind::Remove => None,
        _ => placement(change.new.as_ref(), cfg),
    };
    // Where a user's sessions share a partition (Auth.js), the table is already the user list.
    if let Layout::Mapped(m) = &cfg.layout {
        if m.home_is_user {
            for (_, groups) in old.iter_mut().chain(new.iter_mut()) {
                groups.retain(|g| !matches!(g, Target::User(_)));
            }
        }
    }
    let id = &change.session_id;
    let mut out = Vec::new();
    let from = old.as_ref().and_then(|(d, _)| d.map(|d| index.bucket(d)));
    let to = new.as_ref().and_then(|(d, _)| {
        d.map(|due_at| Slot {
            bucket: index.bucket(due_at).max(index.bucket(change.at) - 1),
            due_at,
        })
    });
    if from != to.map(|s| s.bucket) {
        out.push(Filing::Due {
            id: id.clone(),
            from,
            to,
        });
    }
    let (old_groups, new_groups) = (
        old.map(|(_, g)| g).unwrap_or_default(),
        new.map(|(_, g)| g).unwrap_or_default(),
    );
    for g in &old_groups {
        if !new_groups.contains(g) {
            out.push(Filing::Member {
                id: id.clone(),
                group: g.clone(),
                present: false,
            });
        }
    }
    for g in &new_groups {
        if !old_groups.contains(g) {
            out.push(Filing::Member {
                id: id.clone(),
                group: g.clone(),
                present: true,
            });
        }
    }
    out
}

/// Folds the filings of a batch so no entry is written twice in one request (DynamoDB refuses
/// duplicate keys in a batch): per session (and home), the due entry goes from its first `from`
/// to its last `to`, and each member list keeps its last word. Order is kept otherwise.
pub fn compact(filings: Vec<Filing>) -> Vec<Filing> {
    // (ID, home, list): `None` for the due entry.
    type EntryKey = (String, Option<String>, Option<Target>);
    let key = |f: &Filing| -> EntryKey {
        match f {
            Filing::Due { id, .. } => (id.expose().into(), id.home().map(String::from), None),
            Filing::Member { id, group, .. } => (
                id.expose().into(),
                id.home().map(String::from),
                Some(group.clone()),
            ),
        }
    };
    let mut at: HashMap<EntryKey, usize> = HashMap::new();
    let mut out: Vec<Filing> = Vec::new();
    for f in filings {
        let k = key(&f);
        let Some(&i) = at.get(&k) else {
            at.insert(k, out.len());
            out.push(f);
            continue;
        };
        match (&mut out[i], f) {
            (Filing::Due { to, .. }, Filing::Due { to: last, .. }) => *to = last,
            (Filing::Member { present, .. }, Filing::Member { present: p, .. }) => *present = p,
            // The key tells the variants apart: unreachable.
            (_, f) => out.push(f),
        }
    }
    out
}
