//! Which family cascades a batch asks for, all pure: a session that no child ever named as its
//! parent has no family to end, so its request is dropped once the parent markers are read
//! ([`family_parents`] names the parents to look up, [`drop_childless`] drops the rest).

use std::collections::HashSet;

use crate::cascade_message::CascadeMessage;
use crate::change::SeqNo;
use crate::config::{FamilyCascades, StreamConfig};
use crate::session::SessionId;

/// The parents whose family cascade depends on a marker: every `Target::Family` among
/// `cascades`, or none under `FAMILY_CASCADES=always`. A session that no child ever named as its
/// parent has no family to end, and its request would cost an SQS message and a member Query
/// for nothing; [`drop_childless`] drops those once the markers are read.
pub fn family_parents(cascades: &[(CascadeMessage, SeqNo)], cfg: &StreamConfig) -> Vec<SessionId> {
    if cfg.common.family_cascades == FamilyCascades::Always {
        return Vec::new();
    }
    let mut ids: Vec<SessionId> = cascades.iter().filter_map(|(m, _)| family_of(m)).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Drops the family cascades of `asked` parents that are not `marked` (see [`family_parents`]);
/// returns the records whose request was dropped, to count them once.
pub fn drop_childless(
    cascades: &mut Vec<(CascadeMessage, SeqNo)>,
    asked: &[SessionId],
    marked: &HashSet<SessionId>,
) -> Vec<SeqNo> {
    let mut dropped = Vec::new();
    cascades.retain(|(m, seq)| match family_of(m) {
        Some(p) if asked.contains(&p) && !marked.contains(&p) => {
            dropped.push(seq.clone());
            false
        }
        _ => true,
    });
    dropped
}

/// The parent a family cascade request names.
fn family_of(m: &CascadeMessage) -> Option<SessionId> {
    match (m.scope.as_str(), &m.session_id) {
        ("family", Some(parent)) => Some(SessionId::new(parent.clone())),
        _ => None,
    }
}
