//! The ports: the narrow traits through which the services reach the outside world, and the
//! plain data that crosses them. Each port owns one thing and has at most five methods; a verb
//! has one name everywhere ("end" a session, "send" to a queue, "publish" to a topic).
//!
//! | port | owns | methods |
//! |---|---|---|
//! | [`SessionStore`] | the sessions table (and its own indexes) | `due`, `members`, `end`, `file`, `notes` |
//! | [`BindingStore`] | identity bindings and burst counters | `claim`, `bind`, `counters` |
//! | [`GateStore`] | alert dedup gates | `open`, `published` |
//! | [`JobStore`] | cascade job records | `start`, `progress`, `complete` |
//! | [`AlertSink`] | the alerts topic | `publish` |
//! | [`EventSink`] | the session events topic | `publish` |
//! | [`RosterStore`] | per-user rosters of the session limit | `roster`, `save` |
//! | [`CascadeQueue`] | the cascade queue | `send` |
//! | [`DeadLetters`] | the dead-letter queue | `send` |
//! | [`MetricsSink`] | custom metrics | `publish` |
//!
//! Every method returns a [`PortResult`]: its error, a `PortError`, says whether to retry.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use crate::alert::Alert;
use crate::anomaly::{AnomalyType, Binding};
use crate::cascade_message::{CascadeMessage, Target};
use crate::error::PortResult;
use crate::expiry::SessionClock;
use crate::metrics::MetricBatch;
use crate::session::{SessionId, Status, TerminationReason};
use crate::session_event::SessionEvent;

/// Which part of the sessions table one cleanup sweep loop reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Query the sweep index for ACTIVE sessions with `sweepAt <= now`.
    Index {
        /// The GSI name.
        index: String,
    },
    /// One segment of a parallel scan.
    Segment {
        /// This segment.
        segment: u32,
        /// Number of segments.
        total: u32,
    },
}

/// The raw `lastActivityAt` exactly as read; the expiring write is conditional on it being
/// unchanged, so a session touched between read and write survives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fence(pub Option<String>);

/// A session that may be due, with just the attributes cleanup needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The session.
    pub id: SessionId,
    /// Its status as read.
    pub status: Status,
    /// Its timing attributes.
    pub clock: SessionClock,
    /// Its `lastActivityAt` as read.
    pub fence: Fence,
    /// The bucket of sessionwarden's own due index it was read from (see [`Filing`]); `None` on
    /// the native layout, whose sweep index is a GSI.
    pub slot: Option<i64>,
}

/// An item that could not be read as a candidate; it is logged and counted, never written.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    /// The session, if even its key was readable.
    pub id: Option<SessionId>,
    /// What was wrong.
    pub reason: String,
    /// The due-index bucket it was read from, if any, so cleanup can drop the entry.
    pub slot: Option<i64>,
}

/// One page of a read, with its cost and the opaque cursor of the next page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// What was read, in read order.
    pub items: Vec<T>,
    /// Items the store read to produce this page (`ScannedCount`): what the read cost.
    pub items_read: u64,
    /// Read requests this page took.
    pub requests: u64,
    /// Where the next page starts, if there is one. Opaque, and safe to carry in a message.
    pub next: Option<String>,
}

/// Which page to read: at most `limit` items, from `cursor` (the `next` of the page before).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Items to read at most.
    pub limit: u32,
    /// Where to start; `None` for the first page.
    pub cursor: Option<String>,
}

/// A page of cleanup candidates.
pub type CandidatePage = Page<Result<Candidate, Unreadable>>;

/// A session a cascade targets, as the index sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The session.
    pub id: SessionId,
    /// Its status.
    pub status: Status,
    /// `terminatedBy`: the root request whose cascade ended it, if one did. A redelivered page
    /// recognises the sessions its own earlier attempt ended, and counts them once more for the
    /// page (the job record adds each page once).
    pub ended_by: Option<String>,
}

impl Member {
    /// An ACTIVE member.
    pub fn active(id: SessionId) -> Self {
        Member {
            id,
            status: Status::Active,
            ended_by: None,
        }
    }
}

/// A page of the sessions a cascade targets.
pub type MemberPage = Page<Member>;

/// What the ending write records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// New status (`EXPIRED` for cleanup, `TERMINATED` otherwise).
    pub status: Status,
    /// `terminationReason`.
    pub reason: TerminationReason,
    /// `terminatedAt`, epoch seconds.
    pub at: i64,
    /// `expiresAt` (TTL), epoch seconds.
    pub retain_until: i64,
    /// `terminatedBy`: the root request of a cascade, so an investigator can rebuild it.
    pub by: Option<String>,
    /// Cleanup's condition: end only if `lastActivityAt` still equals what was read, so a session
    /// touched in the meantime survives. `None`: end whatever the activity (containment, cascades).
    pub fence: Option<Fence>,
}

/// What a conditional end found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndOutcome {
    /// The session was ACTIVE (and untouched, with a fence); it is now ended.
    Ended,
    /// `lastActivityAt` changed since the read: the session is in use and survives.
    Touched,
    /// Someone else ended it first; its reason is left as it was.
    AlreadyEnded,
    /// The item no longer exists.
    Gone,
}

/// Where a session sits in sessionwarden's own due index: its due time, and the bucket
/// (`due / DUE_INDEX_BUCKET_SECONDS`) that files it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The bucket.
    pub bucket: i64,
    /// The due time when it was filed, epoch seconds.
    pub due_at: i64,
}

/// A change to sessionwarden's own indexes of a sessions table that has no GSIs for them
/// (every layout but native): the due index that cleanup reads, and the member lists (a user's,
/// a tenant's, a family's sessions) that cascades read. Kept in the state table, built from the
/// stream; every filing is idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filing {
    /// Moves the session's due entry out of bucket `from` and into slot `to` (either may be
    /// absent). Written only when the bucket changes, so plain touches cost nothing.
    Due {
        /// The session.
        id: SessionId,
        /// The bucket it leaves.
        from: Option<i64>,
        /// The slot it enters.
        to: Option<Slot>,
    },
    /// Adds the session to (or removes it from) the member list of a user, tenant or family.
    Member {
        /// The session.
        id: SessionId,
        /// The list: `Target::User`, `Target::Tenant` or `Target::Family`.
        group: Target,
        /// True to add, false to remove.
        present: bool,
    },
}

/// The sessions table.
pub trait SessionStore: Send + Sync {
    /// One page of the candidates of `scope` that may be due at `now`.
    fn due(
        &self,
        scope: &Scope,
        now: i64,
        page: PageRequest,
    ) -> impl Future<Output = PortResult<CandidatePage>> + Send;

    /// One page of the sessions `target` names (a user's, a tenant's, a family, one session).
    fn members(
        &self,
        target: &Target,
        page: PageRequest,
    ) -> impl Future<Output = PortResult<MemberPage>> + Send;

    /// Ends a session with one conditional write: only if it is still ACTIVE and, with a fence,
    /// its `lastActivityAt` still equals the fence. Never overwrites the reason of a session that
    /// already ended.
    fn end(
        &self,
        id: &SessionId,
        termination: &Termination,
    ) -> impl Future<Output = PortResult<EndOutcome>> + Send;

    /// Applies filings to the layout's own indexes, in order (a no-op where the table's GSIs
    /// are the indexes).
    fn file(&self, filings: &[Filing]) -> impl Future<Output = PortResult<()>> + Send;

    /// The reasons sessionwarden's own ends wrote down for these sessions, where the layout keeps
    /// no `terminationReason` (its end is a delete or a flag): so the stream tells an idle expiry
    /// from the app's logout. Empty on layouts that store the reason in the item.
    fn notes(
        &self,
        ids: &[SessionId],
    ) -> impl Future<Output = PortResult<HashMap<SessionId, String>>> + Send;
}

/// Whose creations a burst counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BurstScope {
    /// One user.
    User,
    /// One tenant.
    Tenant,
}

/// A burst counter: new sessions of one user or tenant in one fixed window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterKey {
    /// User or tenant.
    pub scope: BurstScope,
    /// The user or tenant ID.
    pub id: String,
    /// Window index: `createdAt / BURST_WINDOW_SECONDS`.
    pub bucket: i64,
}

/// The first INSERT of a session in a batch, asking to bind its identity.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The session.
    pub session_id: SessionId,
    /// The identity seen.
    pub binding: Binding,
    /// Counters to increment if (and only if) the binding is new.
    pub counters: Vec<CounterKey>,
    /// The session's parent, if it has one: the claim marks that parent as having children, so
    /// that only marked sessions ask for a family cascade when they end.
    pub parent: Option<SessionId>,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The binding is new: this INSERT is the first use of the session ID.
    Claimed,
    /// A binding already existed.
    Existing(Binding),
}

/// Identity bindings (which user and tenant a session ID was first seen with) and the burst
/// counters that ride with them.
pub trait BindingStore: Send + Sync {
    /// Claims bindings (conditionally, first writer wins) and, for new ones only, increments
    /// their counters (kept until `counters_until`). Returns one outcome per claim, in order.
    fn claim(
        &self,
        claims: &[Claim],
        bindings_until: i64,
        counters_until: i64,
    ) -> impl Future<Output = PortResult<Vec<ClaimOutcome>>> + Send;

    /// Records the user (and tenant) of a session that authenticated after its INSERT.
    fn bind(
        &self,
        id: &SessionId,
        user: &str,
        tenant: Option<&str>,
        until: i64,
    ) -> impl Future<Output = PortResult<()>> + Send;

    /// Reads burst counters; absent ones are 0.
    fn counters(
        &self,
        keys: &[CounterKey],
    ) -> impl Future<Output = PortResult<HashMap<CounterKey, u64>>> + Send;

    /// Which of `ids` a claim has marked as a parent (see [`Claim::parent`]): the sessions whose
    /// end needs a family cascade. Consistent, so a marker written before the read is seen.
    fn parents(
        &self,
        ids: &[SessionId],
    ) -> impl Future<Output = PortResult<HashSet<SessionId>>> + Send;
}

/// What a gate guards: an anomaly's alert, or a session-ended event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GateKind {
    /// One alert per (type, subject) per window.
    Anomaly(AnomalyType),
    /// One event per end of a session (the subject is the event ID).
    SessionEnded,
    /// One session-limit notice per user per window.
    SessionLimit,
}

impl GateKind {
    /// The kind as stored in gate keys.
    pub fn as_str(&self) -> &'static str {
        match self {
            GateKind::Anomaly(t) => t.as_str(),
            GateKind::SessionEnded => "SESSION_ENDED",
            GateKind::SessionLimit => "SESSION_LIMIT_ENFORCED",
        }
    }
}

/// The dedup key of an alert (one per (type, subject) per window) or of an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GateKey {
    /// What it guards.
    pub kind: GateKind,
    /// The subject, hashed for sessions.
    pub subject: String,
}

/// What opening a dedup gate found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateState {
    /// This owner holds the gate and has not published yet: it opened the gate now, or an earlier
    /// attempt of the same record did (its response lost, or it crashed before publishing).
    /// Publish, then mark it published.
    Ours,
    /// This owner published already (a redelivery after publication): do not publish again.
    Published,
    /// Another record holds the gate in this window: the incident is alerted by its owner.
    Taken,
}

/// Alert dedup gates: at most one alert per (type, subject) per window, published exactly once.
/// A gate is `PENDING` from `open` until `published`, and carries its owner (the record that
/// detected the incident), so a retry of that record is told from another record's duplicate.
pub trait GateStore: Send + Sync {
    /// Opens the gate for `owner` if it is free or expired; otherwise says whose it is.
    fn open(
        &self,
        gate: &GateKey,
        owner: &str,
        now: i64,
        until: i64,
    ) -> impl Future<Output = PortResult<GateState>> + Send;

    /// Marks `owner`'s gate published, once SNS has accepted its alert.
    fn published(&self, gate: &GateKey, owner: &str)
        -> impl Future<Output = PortResult<()>> + Send;
}

/// A cascade job's record: one per (root request, target).
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// The root request.
    pub root_id: String,
    /// `<scope>#<subject>` (sessions by digest).
    pub job_key: String,
    /// Scope.
    pub scope: &'static str,
    /// Readable subject: user, tenant, or session reference.
    pub subject: String,
    /// Requester's reason.
    pub reason: String,
    /// Requester.
    pub requested_by: String,
    /// Family depth.
    pub depth: u32,
    /// Parent session reference (family sub-cascades).
    pub parent_ref: Option<String>,
}

/// Cascade job records: each job counted once, and a cascade rebuildable from its root.
pub trait JobStore: Send + Sync {
    /// Creates the job record if absent (kept until `until`); true if this call created it.
    fn start(
        &self,
        job: &JobRecord,
        now: i64,
        until: i64,
    ) -> impl Future<Output = PortResult<bool>> + Send;

    /// Adds one page's results to the job record, once per page however often the page is
    /// processed again (`page`: a stable reference of where the page starts). True if this call
    /// counted the page.
    fn progress(
        &self,
        job: &JobRecord,
        page: &str,
        ended: u64,
    ) -> impl Future<Output = PortResult<bool>> + Send;

    /// Marks the job completed; `Some(total ended)` if this call completed it.
    fn complete(
        &self,
        job: &JobRecord,
        now: i64,
    ) -> impl Future<Output = PortResult<Option<u64>>> + Send;
}

/// The alerts topic.
pub trait AlertSink: Send + Sync {
    /// Publishes alerts, each as one message.
    fn publish(&self, alerts: &[Alert]) -> impl Future<Output = PortResult<()>> + Send;
}

/// The session events topic (`SESSION_EVENTS_TOPIC_ARN`).
pub trait EventSink: Send + Sync {
    /// Publishes events, each as one message.
    fn publish(&self, events: &[SessionEvent]) -> impl Future<Output = PortResult<()>> + Send;
}

/// No events topic: events are not published, and nothing is spent deciding them.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    async fn publish(&self, _: &[SessionEvent]) -> PortResult<()> {
        Ok(())
    }
}

/// A user's roster under `MAX_SESSIONS_PER_USER`, as stored, with the version a save is
/// conditional on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredRoster {
    /// The roster.
    pub roster: crate::limit::Roster,
    /// Its version; 0 when there is none yet.
    pub version: u64,
}

/// Per-user rosters of the session limit: one item per user, replaced by a write conditional on
/// its version, so parallel invocations that admit sessions of one user serialise on it.
pub trait RosterStore: Send + Sync {
    /// Reads a user's roster (consistently).
    fn roster(&self, user: &str) -> impl Future<Output = PortResult<StoredRoster>> + Send;

    /// Replaces the roster if its version is still `version` (kept until `until`); false if
    /// another writer got there first (read again and retry).
    fn save(
        &self,
        user: &str,
        roster: &crate::limit::Roster,
        version: u64,
        until: i64,
    ) -> impl Future<Output = PortResult<bool>> + Send;
}

/// The cascade queue.
pub trait CascadeQueue: Send + Sync {
    /// Sends cascade messages (requests, continuations, sub-cascades).
    fn send(&self, messages: &[CascadeMessage]) -> impl Future<Output = PortResult<()>> + Send;
}

/// Input that can never be processed, on its way to the dead-letter queue.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its sequence number or message ID, if readable.
    pub seq: Option<String>,
    /// Why it was rejected.
    pub reason: String,
    /// The input, exactly as received.
    pub raw: serde_json::Value,
}

impl DeadLetter {
    /// The letter's stable ID, for consumers to drop copies: derived from the worker `source`
    /// and the sequence number (or, without one, the input), never from the attempt.
    pub fn id(&self, source: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(source.as_bytes());
        h.update([0]);
        match &self.seq {
            Some(seq) => h.update(seq.as_bytes()),
            None => h.update(self.raw.to_string().as_bytes()),
        }
        hex::encode(&h.finalize()[..16])
    }
}

/// The dead-letter queue.
pub trait DeadLetters: Send + Sync {
    /// Sends rejected input, with its reason.
    fn send(&self, letters: &[DeadLetter]) -> impl Future<Output = PortResult<()>> + Send;
}

/// Custom metrics. One call per invocation.
pub trait MetricsSink: Send + Sync {
    /// Publishes every series of `batch` under `namespace`.
    fn publish(
        &self,
        namespace: &str,
        batch: &MetricBatch,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// The ports one worker runs on, built once per process. Cleanup uses `sessions` and
/// `metrics`; the stream and cascade services use all of them.
#[derive(Debug, Clone)]
pub struct Ports<S, T, A, Q, D, M, E = NoEvents> {
    /// The sessions table.
    pub sessions: S,
    /// The state table: bindings, counters, gates and job records.
    pub state: T,
    /// The alerts topic.
    pub alerts: A,
    /// The cascade queue.
    pub cascades: Q,
    /// The dead-letter queue.
    pub dead_letters: D,
    /// Custom metrics.
    pub metrics: M,
    /// The session events topic.
    pub events: E,
}
