//! What one cascade batch did: the report returned and logged, and its metrics. Pure data.

use serde::Serialize;

use crate::metrics::MetricBatch;

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CascadeReport {
    /// Messages in the batch.
    pub messages: u64,
    /// Invalid messages dead-lettered.
    pub invalid: u64,
    /// Sessions ended, by `terminationReason`.
    pub ended: std::collections::BTreeMap<String, u64>,
    /// Sessions that had already ended (left untouched).
    pub already_ended: u64,
    /// Index pages read.
    pub pages: u64,
    /// Job records created.
    pub jobs_started: u64,
    /// Jobs completed.
    pub jobs_completed: u64,
    /// Continuation messages sent.
    pub continuations: u64,
    /// Family sub-cascades sent.
    pub sub_cascades: u64,
    /// Children skipped because they were among their own ancestors.
    pub cycles_stopped: u64,
    /// Children skipped because of `CASCADE_MAX_DEPTH`.
    pub depth_limited: u64,
    /// Message IDs to retry.
    pub failed: Vec<String>,
    /// Wall time.
    pub duration_ms: u64,
}

impl CascadeReport {
    /// Adds another batch's report to this one (for local runs that drive many invocations).
    pub fn merge(&mut self, o: CascadeReport) {
        for (k, v) in o.ended {
            *self.ended.entry(k).or_default() += v;
        }
        self.already_ended += o.already_ended;
        self.pages += o.pages;
        self.jobs_started += o.jobs_started;
        self.jobs_completed += o.jobs_completed;
        self.continuations += o.continuations;
        self.sub_cascades += o.sub_cascades;
        self.cycles_stopped += o.cycles_stopped;
        self.depth_limited += o.depth_limited;
        self.messages += o.messages;
        self.invalid += o.invalid;
        self.failed.extend(o.failed);
    }

    /// The batch's metrics.
    pub fn metrics(&self) -> MetricBatch {
        let mut b = MetricBatch::new();
        for (cause, n) in &self.ended {
            b.count("SessionsTerminated", &[("Cause", cause)], *n);
        }
        b.counts(&[
            ("CascadeJobsStarted", &[], self.jobs_started),
            ("CascadeJobsCompleted", &[], self.jobs_completed),
            ("CascadePages", &[], self.pages),
            ("CascadeMessagesInvalid", &[], self.invalid),
            ("CascadeCyclesStopped", &[], self.cycles_stopped),
            ("CascadeDepthLimited", &[], self.depth_limited),
        ]);
        b.duration_ms("CascadeDurationMs", self.duration_ms);
        b
    }
}

/// A raw queue message.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    /// SQS message ID (the batch item identifier).
    pub id: String,
    /// Body.
    pub body: String,
}
