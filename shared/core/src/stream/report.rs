//! What one stream batch did: the report logged as one summary line, the failure point, and the
//! batch's metrics. Pure data.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::anomaly::{AnomalyType, Severity};
use crate::change::SeqNo;
use crate::config::StreamConfig;
use crate::metrics::MetricBatch;

/// What one batch did; logged as one summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamReport {
    /// Records in the batch.
    pub records: u64,
    /// Records fully processed.
    pub processed: u64,
    /// Malformed records dead-lettered.
    pub malformed: u64,
    /// Records of items that are not sessions under the layout (Auth.js users, accounts,
    /// verification tokens): skipped and counted, never dead-lettered.
    pub not_sessions: u64,
    /// New anomalies (first in their dedup window), by type.
    pub anomalies: BTreeMap<String, u64>,
    /// Alert messages published (a digest counts once).
    pub alerts_published: u64,
    /// Anomalies whose alert was suppressed because one was already sent in the window.
    pub alerts_suppressed: u64,
    /// Alerts folded into a digest.
    pub alerts_in_digest: u64,
    /// Sessions ended by containment.
    pub sessions_terminated: u64,
    /// `terminate_user` containments (each a USER cascade request).
    pub user_terminations_requested: u64,
    /// Cascade requests sent (revokeScope user/tenant, families, `terminate_user`).
    pub cascades_requested: u64,
    /// Family cascades not requested: the ended session was never marked as a parent.
    pub family_cascades_skipped: u64,
    /// TTL deletes seen.
    pub deleted_by_ttl: u64,
    /// Deletes by a write seen: the app's (a logout), or sessionwarden's own end on layouts that
    /// end a session by deleting it (the worker that ended it counts it too). Not TTL deletes.
    pub deleted_by_write: u64,
    /// Entries of the layout's own indexes written.
    pub index_filings: u64,
    /// IP changes seen.
    pub ip_changes: u64,
    /// Sessions the per-user limit chose to end (each counted once, when its user's roster
    /// recorded the choice).
    pub limit_ended: u64,
    /// Session-ended events published (each once, by its gate).
    pub events_published: u64,
    /// The sequence number Lambda must retry from, if any.
    pub failed_from: Option<String>,
}

/// The outcome of one batch.
#[derive(Debug, Clone)]
pub struct BatchOutcome {
    /// The lowest sequence number whose work did not complete.
    pub failed_from: Option<SeqNo>,
    /// What was done.
    pub report: StreamReport,
}

/// The batch's metrics: counts from the report, and one `AnomaliesDetected` per new anomaly
/// (with a capped `Tenant` dimension when `METRICS_TENANT_DIMENSION` is on).
pub fn metrics_of(
    r: &StreamReport,
    anomalies: &[(AnomalyType, Severity, Option<String>)],
    cfg: &StreamConfig,
) -> MetricBatch {
    let mut b = MetricBatch::new();
    b.counts(&[
        ("StreamRecordsProcessed", &[], r.processed),
        ("StreamRecordsMalformed", &[], r.malformed),
        (
            "StreamRecordsSkipped",
            &[("Reason", "not_a_session")],
            r.not_sessions,
        ),
        ("AlertsPublished", &[], r.alerts_published),
        ("AlertsSuppressed", &[], r.alerts_suppressed),
        ("SessionsDeletedByTtl", &[], r.deleted_by_ttl),
        ("SessionsDeletedByWrite", &[], r.deleted_by_write),
        (
            "SessionsTerminated",
            &[("Cause", "containment")],
            r.sessions_terminated,
        ),
        ("SessionIpChanged", &[], r.ip_changes),
        ("CascadesRequested", &[], r.cascades_requested),
        ("FamilyCascadesSkipped", &[], r.family_cascades_skipped),
        ("SessionsTerminated", &[("Cause", "limit")], r.limit_ended),
        ("SessionEventsPublished", &[], r.events_published),
    ]);
    if r.user_terminations_requested > 0 {
        b.count(
            "ContainmentRequested",
            &[("Action", "terminate_user")],
            r.user_terminations_requested,
        );
    }
    let mut tenants: Vec<String> = Vec::new();
    for (kind, sev, tenant) in anomalies {
        b.count(
            "AnomaliesDetected",
            &[("Type", kind.as_str()), ("Severity", sev.as_str())],
            1,
        );
        if cfg.metrics_tenant_dimension {
            let t = tenant.clone().unwrap_or_else(|| "none".into());
            // Cardinality cap: past the limit, tenants share one series.
            let label = if tenants.contains(&t) || tenants.len() < cfg.metrics_tenant_dimension_max
            {
                if !tenants.contains(&t) {
                    tenants.push(t.clone());
                }
                t
            } else {
                "other".to_string()
            };
            b.count(
                "AnomaliesDetected",
                &[("Type", kind.as_str()), ("Tenant", &label)],
                1,
            );
        }
    }
    b
}
