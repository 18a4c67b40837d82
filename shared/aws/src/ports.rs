//! Wiring: the production adapters of each worker, assembled once per process into the core's
//! [`Ports`]. Tests swap one field for a wrapper (a flaky session store, a recording sink).

use std::collections::HashMap;

use sessionwarden_core::cascade_message::Target;
use sessionwarden_core::config::{CascadeConfig, CommonConfig, StreamConfig, Wiring};
use sessionwarden_core::layout::Layout;
use sessionwarden_core::ports::{
    CandidatePage, EndOutcome, Filing, MemberPage, PageRequest, Ports, Scope, SessionStore,
    Termination,
};
use sessionwarden_core::session::SessionId;

use crate::cascade_queue::SqsCascadeQueue;
use crate::dlq::SqsDeadLetters;
use crate::emf::Metrics;
use crate::mapped::MappedSessions;
use crate::sessions::DynamoSessions;
use crate::sns::{SnsAlerts, SnsEvents};
use crate::state::StateTable;
use crate::AwsClients;
use crate::PortResult;

/// The sessions table of a deployment, on its layout: the native table (its GSIs are the
/// indexes), or any other layout with sessionwarden's own indexes in the state table.
#[derive(Clone, Debug)]
pub enum Sessions {
    /// The native layout.
    Native(DynamoSessions),
    /// A mapped layout.
    Mapped(Box<MappedSessions>),
}

impl Sessions {
    /// The adapter for `common.layout` over `common.sessions_table` (and, for a mapped layout,
    /// its indexes in `state_table`).
    pub fn new(clients: &AwsClients, common: &CommonConfig, state_table: &str) -> Self {
        match &common.layout {
            Layout::Native => Sessions::Native(DynamoSessions::new(
                clients.dynamodb.clone(),
                &common.sessions_table,
            )),
            Layout::Mapped(m) => Sessions::Mapped(Box::new(
                MappedSessions::new(
                    clients.dynamodb.clone(),
                    &common.sessions_table,
                    state_table,
                    (**m).clone(),
                    common.session_ref_key.clone(),
                    common.expiry,
                    common.index,
                )
                .with_end_notes(common.end_notes),
            )),
        }
    }
}

impl SessionStore for Sessions {
    async fn due(&self, scope: &Scope, now: i64, page: PageRequest) -> PortResult<CandidatePage> {
        match self {
            Sessions::Native(s) => s.due(scope, now, page).await,
            Sessions::Mapped(s) => s.due(scope, now, page).await,
        }
    }

    async fn members(&self, target: &Target, page: PageRequest) -> PortResult<MemberPage> {
        match self {
            Sessions::Native(s) => s.members(target, page).await,
            Sessions::Mapped(s) => s.members(target, page).await,
        }
    }

    async fn end(&self, id: &SessionId, t: &Termination) -> PortResult<EndOutcome> {
        match self {
            Sessions::Native(s) => s.end(id, t).await,
            Sessions::Mapped(s) => s.end(id, t).await,
        }
    }

    async fn file(&self, filings: &[Filing]) -> PortResult<()> {
        match self {
            Sessions::Native(s) => s.file(filings).await,
            Sessions::Mapped(s) => s.file(filings).await,
        }
    }

    async fn notes(&self, ids: &[SessionId]) -> PortResult<HashMap<SessionId, String>> {
        match self {
            Sessions::Native(s) => s.notes(ids).await,
            Sessions::Mapped(s) => s.notes(ids).await,
        }
    }
}

/// The ports of the stream and cascade workers on AWS, generic over the sessions table and the
/// metrics sink so a test can wrap either.
pub type AwsPorts<S = Sessions, M = Metrics> =
    Ports<S, StateTable, SnsAlerts, SqsCascadeQueue, SqsDeadLetters, M, SnsEvents>;

/// The stream worker's adapters.
pub fn stream(clients: &AwsClients, cfg: &StreamConfig) -> AwsPorts {
    let mut ports = build(clients, &cfg.common, &cfg.wiring, "sessionwarden-stream");
    ports.events = SnsEvents::new(clients.sns.clone(), cfg.events.topic_arn.clone());
    ports
}

/// The cascade worker's adapters.
pub fn cascade(clients: &AwsClients, cfg: &CascadeConfig) -> AwsPorts {
    build(clients, &cfg.common, &cfg.wiring, "sessionwarden-cascade")
}

fn build(
    clients: &AwsClients,
    common: &CommonConfig,
    wiring: &Wiring,
    source: &'static str,
) -> AwsPorts {
    Ports {
        sessions: Sessions::new(clients, common, &wiring.state_table),
        state: StateTable::new(
            clients.dynamodb.clone(),
            &wiring.state_table,
            common.session_ref_key.clone(),
        ),
        alerts: SnsAlerts::new(clients.sns.clone(), &wiring.alerts_topic_arn),
        cascades: SqsCascadeQueue::new(clients.sqs.clone(), &wiring.cascade_queue_url),
        dead_letters: SqsDeadLetters::new(
            clients.sqs.clone(),
            &wiring.dead_letter_queue_url,
            source,
        ),
        metrics: Metrics::new(clients, common),
        events: SnsEvents::new(clients.sns.clone(), None),
    }
}
