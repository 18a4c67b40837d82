//! An in-memory implementation of every port (feature `fake`), for service tests and the stream
//! benchmark, which need no emulator. The AWS adapters themselves are tested against the
//! emulators in the workspace's `tests/`. No Lambda binary enables this feature.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::alert::Alert;
use crate::cascade_message::{CascadeMessage, Target};
use crate::error::{PortError, PortResult};
use crate::expiry::SessionClock;
use crate::metrics::MetricBatch;
use crate::ports::*;
use crate::session::{SessionId, Status};

/// What the fake holds and records. Cloned handles share it.
#[derive(Default)]
pub struct State {
    /// Sessions: status and `lastActivityAt`.
    pub sessions: BTreeMap<String, (Status, i64)>,
    /// Dedup gates: owner, and whether it is published (no window: a gate stays).
    pub gates: HashMap<GateKey, (String, bool)>,
    /// Items the candidate reads report as unreadable.
    pub unreadable: usize,
    /// Reads fail transiently.
    pub fail_reads: bool,
    /// Ends of these IDs (or of IDs starting with `flaky`) fail transiently.
    pub failing_ends: Vec<String>,
    /// Ends of these IDs are applied once, but the caller gets a transient error (a response
    /// lost after the write landed); the next end of the ID returns what the store's ALL_OLD
    /// recognition returns for its own write, `Ended`.
    pub lost_ends: Vec<String>,
    /// Sessions ended, in order.
    pub ended: Vec<String>,
    /// Messages sent to the cascade queue.
    pub queued: Vec<CascadeMessage>,
    /// Dead letters sent.
    pub letters: Vec<DeadLetter>,
    /// Alerts published.
    pub alerts: Vec<Alert>,
    /// Metric batches published.
    pub metrics: Vec<MetricBatch>,
    /// Index filings applied, in order.
    pub filings: Vec<Filing>,
    /// Sessions a claim marked as parents.
    pub parents: std::collections::HashSet<SessionId>,
    /// End notes by session (what sessionwarden's own end wrote down).
    pub notes: HashMap<SessionId, String>,
    /// Session-ended events published.
    pub events: Vec<crate::session_event::SessionEvent>,
    /// Session-limit rosters by user, with their versions.
    pub rosters: HashMap<String, StoredRoster>,
}

/// The fake, implementing every port over one shared [`State`].
#[derive(Clone, Default)]
pub struct Mem(pub Arc<Mutex<State>>);

impl Mem {
    /// ACTIVE sessions `ids`, idle since `last`.
    pub fn with(ids: &[&str], last: i64) -> Self {
        let m = Mem::default();
        m.state().sessions = ids
            .iter()
            .map(|i| (i.to_string(), (Status::Active, last)))
            .collect();
        m
    }

    /// The shared state.
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The same fake in every port.
    pub fn ports(&self) -> Ports<Mem, Mem, Mem, Mem, Mem, Mem, Mem> {
        Ports {
            sessions: self.clone(),
            state: self.clone(),
            alerts: self.clone(),
            cascades: self.clone(),
            dead_letters: self.clone(),
            metrics: self.clone(),
            events: self.clone(),
        }
    }
}

fn page<T>(items: Vec<T>) -> Page<T> {
    Page {
        items_read: items.len() as u64,
        requests: 1,
        items,
        next: None,
    }
}

impl SessionStore for Mem {
    async fn due(&self, _: &Scope, _: i64, _: PageRequest) -> PortResult<CandidatePage> {
        let st = self.state();
        if st.fail_reads {
            return Err(PortError::transient("DynamoDB.Query", "throttled"));
        }
        let mut items: Vec<_> = st
            .sessions
            .iter()
            .map(|(id, (status, last))| {
                Ok(Candidate {
                    id: SessionId::new(id.clone()),
                    status: *status,
                    clock: SessionClock {
                        created_at: Some(*last),
                        last_activity_at: Some(*last),
                        ..Default::default()
                    },
                    fence: Fence(Some(last.to_string())),
                    slot: None,
                })
            })
            .collect();
        for _ in 0..st.unreadable {
            items.push(Err(Unreadable {
                id: Some(SessionId::new("broken")),
                reason: "attribute status is missing".into(),
                slot: None,
            }));
        }
        Ok(page(items))
    }

    async fn members(&self, target: &Target, _: PageRequest) -> PortResult<MemberPage> {
        let items = match target {
            Target::User(u) => vec![
                Member::active(SessionId::new(format!("{u}-s1"))),
                Member::active(SessionId::new(format!("{u}-s2"))),
            ],
            _ => vec![],
        };
        Ok(page(items))
    }

    async fn end(&self, id: &SessionId, t: &Termination) -> PortResult<EndOutcome> {
        let mut st = self.state();
        let raw = id.expose();
        if raw.starts_with("flaky") || st.failing_ends.iter().any(|f| f == raw) {
            return Err(PortError::transient(
                "DynamoDB.UpdateItem",
                "ServiceUnavailable",
            ));
        }
        if let Some(s) = st.sessions.get_mut(raw) {
            s.0 = t.status;
        }
        if let Some(i) = st.lost_ends.iter().position(|f| f == raw) {
            st.lost_ends.remove(i);
            st.ended.push(raw.to_string());
            return Err(PortError::transient(
                "DynamoDB.UpdateItem",
                "connection reset after the write landed",
            ));
        }
        if !st.ended.iter().any(|e| e == raw) {
            st.ended.push(raw.to_string());
        }
        Ok(EndOutcome::Ended)
    }

    async fn file(&self, filings: &[Filing]) -> PortResult<()> {
        self.state().filings.extend_from_slice(filings);
        Ok(())
    }

    async fn notes(&self, ids: &[SessionId]) -> PortResult<HashMap<SessionId, String>> {
        let st = self.state();
        Ok(ids
            .iter()
            .filter_map(|id| Some((id.clone(), st.notes.get(id)?.clone())))
            .collect())
    }
}

impl EventSink for Mem {
    async fn publish(&self, events: &[crate::session_event::SessionEvent]) -> PortResult<()> {
        self.state().events.extend(events.iter().cloned());
        Ok(())
    }
}

impl RosterStore for Mem {
    async fn roster(&self, user: &str) -> PortResult<StoredRoster> {
        Ok(self.state().rosters.get(user).cloned().unwrap_or_default())
    }

    async fn save(
        &self,
        user: &str,
        roster: &crate::limit::Roster,
        version: u64,
        _: i64,
    ) -> PortResult<bool> {
        let mut st = self.state();
        let slot = st.rosters.entry(user.to_string()).or_default();
        if slot.version != version {
            return Ok(false);
        }
        *slot = StoredRoster {
            roster: roster.clone(),
            version: version + 1,
        };
        Ok(true)
    }
}

impl BindingStore for Mem {
    async fn claim(&self, c: &[Claim], _: i64, _: i64) -> PortResult<Vec<ClaimOutcome>> {
        let mut st = self.state();
        st.parents.extend(c.iter().filter_map(|c| c.parent.clone()));
        Ok(vec![ClaimOutcome::Claimed; c.len()])
    }
    async fn bind(&self, _: &SessionId, _: &str, _: Option<&str>, _: i64) -> PortResult<()> {
        Ok(())
    }
    async fn counters(&self, _: &[CounterKey]) -> PortResult<HashMap<CounterKey, u64>> {
        Ok(HashMap::new())
    }
    async fn parents(&self, ids: &[SessionId]) -> PortResult<std::collections::HashSet<SessionId>> {
        let st = self.state();
        Ok(ids
            .iter()
            .filter(|i| st.parents.contains(*i))
            .cloned()
            .collect())
    }
}

impl GateStore for Mem {
    async fn open(&self, g: &GateKey, owner: &str, _: i64, _: i64) -> PortResult<GateState> {
        let mut st = self.state();
        let (holder, published) = st
            .gates
            .entry(g.clone())
            .or_insert_with(|| (owner.to_string(), false));
        Ok(match (holder == owner, *published) {
            (true, false) => GateState::Ours,
            (true, true) => GateState::Published,
            (false, _) => GateState::Taken,
        })
    }
    async fn published(&self, g: &GateKey, owner: &str) -> PortResult<()> {
        if let Some((holder, published)) = self.state().gates.get_mut(g) {
            if holder == owner {
                *published = true;
            }
        }
        Ok(())
    }
}

impl JobStore for Mem {
    async fn start(&self, _: &JobRecord, _: i64, _: i64) -> PortResult<bool> {
        Ok(true)
    }
    async fn progress(&self, _: &JobRecord, _: &str, _: u64) -> PortResult<bool> {
        Ok(true)
    }
    async fn complete(&self, _: &JobRecord, _: i64) -> PortResult<Option<u64>> {
        Ok(Some(2))
    }
}

impl AlertSink for Mem {
    async fn publish(&self, a: &[Alert]) -> PortResult<()> {
        self.state().alerts.extend_from_slice(a);
        Ok(())
    }
}

impl CascadeQueue for Mem {
    async fn send(&self, m: &[CascadeMessage]) -> PortResult<()> {
        self.state().queued.extend_from_slice(m);
        Ok(())
    }
}

impl DeadLetters for Mem {
    async fn send(&self, l: &[DeadLetter]) -> PortResult<()> {
        self.state().letters.extend_from_slice(l);
        Ok(())
    }
}

impl MetricsSink for Mem {
    async fn publish(&self, _: &str, b: &MetricBatch) -> PortResult<()> {
        self.state().metrics.push(b.clone());
        Ok(())
    }
}

/// A configuration source over fixed pairs plus the worker's required variables.
pub fn vars(extra: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    let mut all: Vec<(&'static str, &'static str)> = vec![
        ("SESSIONS_TABLE", "s"),
        ("SESSION_REF_KEY", "0123456789abcdef"),
        ("STATE_TABLE", "st"),
        ("ALERTS_TOPIC_ARN", "arn"),
        ("DEAD_LETTER_QUEUE_URL", "d"),
        ("CASCADE_QUEUE_URL", "q"),
    ];
    all.extend_from_slice(extra);
    move |k: &str| {
        all.iter()
            .rev()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    }
}
