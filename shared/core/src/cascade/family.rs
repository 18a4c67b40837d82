//! The cascade service's one decision beyond "end what the page lists": which children of a
//! family get a sub-cascade. Pure: a job and a page of its sessions in, the sub-cascade messages
//! and the branches stopped by the cycle and depth guards out.

use crate::cascade_message::{CascadeJob, CascadeMessage, Target};
use crate::ports::Member;
use crate::session::SessionId;
use crate::session_ref::SessionRefKey;

/// What one page of a job asks for in its family.
#[derive(Debug, Default)]
pub struct FamilyPlan {
    /// One FAMILY sub-cascade per child that may go on.
    pub subs: Vec<CascadeMessage>,
    /// Children already among their own ancestors: a `parentSessionId` cycle stops there.
    pub cycles: Vec<SessionId>,
    /// Children deeper than `CASCADE_MAX_DEPTH`.
    pub too_deep: Vec<SessionId>,
}

/// Plans the sub-cascades of one page: a FAMILY job's page lists the parent's children; a SESSION
/// job's one session is itself the root of a family. Other scopes have no family step.
pub fn plan(job: &CascadeJob, page: &[Member], key: &SessionRefKey, max_depth: u32) -> FamilyPlan {
    let (parent, children): (Option<&SessionId>, Vec<&SessionId>) = match &job.target {
        Target::Family(p) => (Some(p), page.iter().map(|m| &m.id).collect()),
        Target::Session(s) => (None, vec![s]),
        _ => (None, vec![]),
    };
    let mut path = job.path.clone();
    if let Some(p) = parent {
        path.push(key.state_key(p));
    }
    let depth = job.depth + 1;
    let mut out = FamilyPlan::default();
    for child in children {
        if path.contains(&key.state_key(child)) {
            out.cycles.push(child.clone());
        } else if depth > max_depth {
            out.too_deep.push(child.clone());
        } else {
            let target = Target::Family(child.clone());
            out.subs
                .push(job.message(&target, None, depth, path.clone()));
        }
    }
    out
}
