//! The Embedded Metric Format adapter of the [`MetricsSink`] port, and [`Metrics`], the sink a
//! worker picks once from `METRICS_SINK`.
//!
//! EMF writes each flush as JSON log lines that CloudWatch Logs turns into the same metrics
//! (namespace, names, dimensions) as PutMetricData. A line written once is counted once: there
//! is no request whose response can be lost and resent (PutMetricData has no idempotency token,
//! so the SDK's retry of a flush whose response was lost counts it twice, and a flush that fails
//! after its retries is lost), no request cost, and no IAM permission.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cloudwatch::CloudWatchMetrics;
use crate::{AwsClients, PortError};
use sessionwarden_core::config::{CommonConfig, MetricsTransport};
use sessionwarden_core::metrics::{MetricBatch, Unit};
use sessionwarden_core::ports::MetricsSink;

/// Series that share one dimension set (names and values): `(name, value, unit)` each.
type Group<'a> = Vec<(&'a str, f64, Unit)>;

/// An EMF document carries at most 100 metrics.
const MAX_METRICS_PER_DOCUMENT: usize = 100;

/// Writes metric batches as EMF lines.
#[derive(Clone)]
pub struct EmfMetrics {
    out: Arc<Mutex<dyn Write + Send>>,
}

impl std::fmt::Debug for EmfMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmfMetrics")
    }
}

impl EmfMetrics {
    /// A sink to standard output, which Lambda sends to CloudWatch Logs.
    pub fn stdout() -> Self {
        Self::to(std::io::stdout())
    }

    /// A sink to any writer (a test's buffer).
    pub fn to(out: impl Write + Send + 'static) -> Self {
        EmfMetrics {
            out: Arc::new(Mutex::new(out)),
        }
    }

    /// The EMF documents of one batch: one per dimension set (names and values), at most 100
    /// metrics each.
    pub fn documents(namespace: &str, batch: &MetricBatch, at_ms: u64) -> Vec<serde_json::Value> {
        let mut groups: BTreeMap<Vec<(&str, &str)>, Group<'_>> = BTreeMap::new();
        for (key, value, unit) in batch.iter().filter(|(_, v, _)| v.is_finite()) {
            let dims = key
                .dimensions
                .iter()
                .map(|(n, v)| (*n, v.as_str()))
                .collect();
            groups
                .entry(dims)
                .or_default()
                .push((key.name, value, unit));
        }
        let mut docs = Vec::new();
        for (dims, metrics) in groups {
            for chunk in metrics.chunks(MAX_METRICS_PER_DOCUMENT) {
                let names: Vec<&str> = dims.iter().map(|(n, _)| *n).collect();
                let mut doc = serde_json::Map::new();
                doc.insert(
                    "_aws".into(),
                    serde_json::json!({
                        "Timestamp": at_ms,
                        "CloudWatchMetrics": [{
                            "Namespace": namespace,
                            "Dimensions": [names],
                            "Metrics": chunk.iter().map(|(name, _, unit)| serde_json::json!({
                                "Name": name,
                                "Unit": match unit {
                                    Unit::Count => "Count",
                                    Unit::Milliseconds => "Milliseconds",
                                },
                            })).collect::<Vec<_>>(),
                        }],
                    }),
                );
                for (n, v) in &dims {
                    doc.insert((*n).into(), (*v).into());
                }
                for (name, value, _) in chunk {
                    doc.insert((*name).into(), (*value).into());
                }
                docs.push(serde_json::Value::Object(doc));
            }
        }
        docs
    }
}

impl MetricsSink for EmfMetrics {
    /// Writes the batch's documents, one line each, in one write.
    async fn publish(&self, namespace: &str, batch: &MetricBatch) -> Result<(), PortError> {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let mut text = String::new();
        for doc in Self::documents(namespace, batch, at_ms) {
            text.push_str(&doc.to_string());
            text.push('\n');
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| PortError::Permanent {
                operation: "EMF.write",
                source: Box::new(e),
            })
    }
}

/// The metrics sink of a worker, from `METRICS_SINK`: CloudWatch's PutMetricData or EMF lines.
#[derive(Clone, Debug)]
pub enum Metrics {
    /// `METRICS_SINK=cloudwatch`.
    CloudWatch(CloudWatchMetrics),
    /// `METRICS_SINK=emf`.
    Emf(EmfMetrics),
}

impl Metrics {
    /// The sink `common` asks for.
    pub fn new(clients: &AwsClients, common: &CommonConfig) -> Self {
        match common.metrics_transport {
            MetricsTransport::CloudWatch => {
                Metrics::CloudWatch(CloudWatchMetrics::new(clients.cloudwatch.clone()))
            }
            MetricsTransport::Emf => Metrics::Emf(EmfMetrics::stdout()),
        }
    }
}

impl MetricsSink for Metrics {
    async fn publish(&self, namespace: &str, batch: &MetricBatch) -> Result<(), PortError> {
        match self {
            Metrics::CloudWatch(m) => m.publish(namespace, batch).await,
            Metrics::Emf(m) => m.publish(namespace, batch).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_document_per_dimension_set_with_values_at_the_top_level() {
        let mut b = MetricBatch::new();
        b.count("StreamRecordsProcessed", &[], 38);
        b.count("StreamRecordsMalformed", &[], 2);
        b.count(
            "AnomaliesDetected",
            &[("Type", "SESSION_USER_CHANGED"), ("Severity", "CRITICAL")],
            3,
        );
        b.duration_ms("CleanupDurationMs", 120);
        let docs = EmfMetrics::documents("NS", &b, 1_700_000_000_000);
        assert_eq!(docs.len(), 2, "{docs:#?}");
        let plain = docs
            .iter()
            .find(|d| d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0] == serde_json::json!([]))
            .unwrap();
        assert_eq!(plain["StreamRecordsProcessed"], 38.0);
        assert_eq!(plain["StreamRecordsMalformed"], 2.0);
        assert_eq!(plain["CleanupDurationMs"], 120.0);
        assert_eq!(plain["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(plain["_aws"]["CloudWatchMetrics"][0]["Namespace"], "NS");
        let units: Vec<_> = plain["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
            .collect();
        assert!(units.contains(&("CleanupDurationMs", "Milliseconds")));
        assert!(units.contains(&("StreamRecordsProcessed", "Count")));
        let anomaly = docs
            .iter()
            .find(|d| d.get("AnomaliesDetected").is_some())
            .unwrap();
        assert_eq!(anomaly["Type"], "SESSION_USER_CHANGED");
        assert_eq!(anomaly["Severity"], "CRITICAL");
        assert_eq!(
            anomaly["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Severity", "Type"]])
        );
    }

    #[test]
    fn a_document_holds_at_most_100_metrics() {
        let mut b = MetricBatch::new();
        // 150 series with distinct names in one dimension set (names are `&'static str`).
        for i in 0..150 {
            let name: &'static str = Box::leak(format!("M{i}").into_boxed_str());
            b.count(name, &[], 1);
        }
        let docs = EmfMetrics::documents("NS", &b, 0);
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            100
        );
    }

    #[tokio::test]
    async fn a_flush_is_one_line_per_document() {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let sink = EmfMetrics::to(buf.clone());
        let mut b = MetricBatch::new();
        b.count("X", &[], 1);
        b.count("Y", &[("Reason", "ttl")], 2);
        sink.publish("NS", &b).await.unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 2);
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["_aws"].is_object());
        }
    }
}
