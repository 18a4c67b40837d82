//! Metrics as plain data: a batch that a run fills and flushes once through the
//! [`crate::ports::MetricsSink`] port (CloudWatch in production), and the one summary log line
//! each unit of work ends with ([`log_summary`]). Counters that share a
//! name and dimensions are summed, so one invocation costs one PutMetricData per 1,000 series.

use std::collections::BTreeMap;

/// Logs a run's report as its one summary line: `summary` holds the report as JSON, so a log
/// query reads every count by name. Reports carry session references only, never raw IDs.
pub fn log_summary(message: &str, report: &impl serde::Serialize) {
    let summary = serde_json::to_string(report).unwrap_or_else(|e| format!("unserializable: {e}"));
    tracing::info!(%summary, "{message}");
}

/// The unit of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    /// A count of things.
    Count,
    /// A duration.
    Milliseconds,
}

/// One metric series: a name plus its sorted dimensions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeriesKey {
    /// Metric name.
    pub name: &'static str,
    /// `(dimension, value)` pairs, sorted.
    pub dimensions: Vec<(&'static str, String)>,
}

/// One count for [`MetricBatch::counts`]: name, dimensions, value.
pub type Count<'a> = (&'static str, &'a [(&'static str, &'a str)], u64);

/// A batch of metric values collected during one invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricBatch {
    series: BTreeMap<SeriesKey, (f64, Unit)>,
}

impl MetricBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value` to the series (summed with earlier values of the same series).
    pub fn add(
        &mut self,
        name: &'static str,
        dimensions: &[(&'static str, &str)],
        value: f64,
        unit: Unit,
    ) {
        let mut dims: Vec<(&'static str, String)> = dimensions
            .iter()
            .map(|(k, v)| (*k, v.to_string()))
            .collect();
        dims.sort();
        let entry = self
            .series
            .entry(SeriesKey {
                name,
                dimensions: dims,
            })
            .or_insert((0.0, unit));
        entry.0 += value;
    }

    /// Adds a count.
    pub fn count(&mut self, name: &'static str, dimensions: &[(&'static str, &str)], n: u64) {
        self.add(name, dimensions, n as f64, Unit::Count);
    }

    /// Adds each `(name, dimensions, n)` count of `counts`.
    pub fn counts(&mut self, counts: &[Count<'_>]) {
        for &(name, dimensions, n) in counts {
            self.count(name, dimensions, n);
        }
    }

    /// Adds a duration in milliseconds, with no dimension.
    pub fn duration_ms(&mut self, name: &'static str, ms: u64) {
        self.add(name, &[], ms as f64, Unit::Milliseconds);
    }

    /// The series and their values, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = (&SeriesKey, f64, Unit)> {
        self.series.iter().map(|(k, (v, u))| (k, *v, *u))
    }

    /// The value of one series, if present.
    pub fn get(&self, name: &str, dimensions: &[(&str, &str)]) -> Option<f64> {
        self.series
            .iter()
            .find(|(k, _)| {
                k.name == name
                    && k.dimensions.len() == dimensions.len()
                    && dimensions
                        .iter()
                        .all(|(dk, dv)| k.dimensions.iter().any(|(kk, kv)| kk == dk && kv == dv))
            })
            .map(|(_, (v, _))| *v)
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True if nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_series_is_summed_regardless_of_dimension_order() {
        let mut b = MetricBatch::new();
        b.count("X", &[("A", "1"), ("B", "2")], 2);
        b.count("X", &[("B", "2"), ("A", "1")], 3);
        b.count("X", &[("A", "1")], 1);
        assert_eq!(b.len(), 2);
        assert_eq!(b.get("X", &[("A", "1"), ("B", "2")]), Some(5.0));
        assert_eq!(b.get("X", &[("A", "1")]), Some(1.0));
    }
}
