//! The Lambda face of the cleanup worker: an EventBridge scheduled event and its invocation
//! context become one run of [`sessionwarden_core::cleanup::run_cleanup`], bounded by the context's
//! deadline. Kept apart from `main.rs` so tests and `sessionctl` call the exact handler Lambda calls.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use lambda_runtime::{Diagnostic, LambdaEvent};
use sessionwarden_aws::emf::Metrics;
use sessionwarden_aws::ports::Sessions;
use sessionwarden_aws::AwsClients;
use sessionwarden_core::cleanup::{run_cleanup, CleanupError, CleanupReport};
use sessionwarden_core::config::CleanupConfig;
use sessionwarden_core::deadline::EpochDeadline;
use sessionwarden_core::error::error_chain;
use sessionwarden_core::ports::{MetricsSink, SessionStore};

/// The hourly schedule's event. Its content is not used: the run's `now` is the wall clock.
pub type ScheduledEvent = EventBridgeEvent<serde_json::Value>;

/// The cleanup worker: its ports and configuration, built once per process.
/// It holds no per-invocation state.
pub struct CleanupWorker<S, M> {
    store: S,
    metrics: M,
    config: CleanupConfig,
}

impl CleanupWorker<Sessions, Metrics> {
    /// The production worker over real AWS clients, on the configured layout.
    pub fn from_clients(clients: &AwsClients, config: CleanupConfig) -> Self {
        let state = config.state_table.clone().unwrap_or_default();
        let store = Sessions::new(clients, &config.common, &state);
        let metrics = Metrics::new(clients, &config.common);
        CleanupWorker::new(store, metrics, config)
    }
}

impl<S: SessionStore, M: MetricsSink> CleanupWorker<S, M> {
    /// A worker over any store and metrics sink.
    pub fn new(store: S, metrics: M, config: CleanupConfig) -> Self {
        CleanupWorker {
            store,
            metrics,
            config,
        }
    }

    /// Handles one scheduled invocation.
    pub async fn handle(
        &self,
        event: LambdaEvent<ScheduledEvent>,
    ) -> Result<CleanupReport, CleanupFailed> {
        tracing::info!(event_id = %event.payload.id.as_deref().unwrap_or("-"), request_id = %event.context.request_id, "cleanup invoked");
        let deadline = EpochDeadline {
            deadline_ms: event.context.deadline,
        };
        // Boxed, like the other workers' batches: a deep future kept out of the runtime's layout.
        Ok(Box::pin(run_cleanup(
            &self.store,
            &self.metrics,
            &self.config,
            Utc::now(),
            &deadline,
        ))
        .await?)
    }
}

/// A failed invocation, as Lambda reports it. `error_type` says whether a retry can help.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct CleanupFailed(#[from] pub CleanupError);

impl From<CleanupFailed> for Diagnostic {
    fn from(e: CleanupFailed) -> Self {
        let kind = if e.0.is_transient() {
            "Transient"
        } else {
            "Permanent"
        };
        Diagnostic {
            error_type: format!("sessionwarden.cleanup.{kind}"),
            error_message: error_chain(&e),
        }
    }
}
