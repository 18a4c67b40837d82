//! Reads custom metrics back from CloudWatch (or the emulator), for the demo and the tests.

use aws_sdk_cloudwatch::Client;
use sessionwarden_aws::PortError;

/// One metric series read back from CloudWatch, with the sum of its values.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSum {
    /// Metric name.
    pub name: String,
    /// `(dimension, value)` pairs, sorted.
    pub dimensions: Vec<(String, String)>,
    /// Sum of every datapoint in the window.
    pub sum: f64,
}

/// Reads back every series of `namespace` with ListMetrics + GetMetricStatistics (Sum) over
/// `[from, to]` (epoch seconds). For demos, tests and on-call checks; not used by the workers.
pub async fn read_back(
    client: &Client,
    namespace: &str,
    from: i64,
    to: i64,
) -> Result<Vec<SeriesSum>, PortError> {
    use aws_sdk_cloudwatch::types::Statistic;
    let pages = client
        .list_metrics()
        .namespace(namespace)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| sessionwarden_aws::sdk_error("CloudWatch.ListMetrics", e))?;
    let mut out = Vec::new();
    for m in pages.iter().flat_map(|p| p.metrics()) {
        let name = m.metric_name().unwrap_or_default().to_string();
        let mut dimensions: Vec<(String, String)> = m
            .dimensions()
            .iter()
            .map(|d| {
                (
                    d.name().unwrap_or_default().to_string(),
                    d.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
        dimensions.sort();
        // ListMetrics may list one series more than once; each is read once.
        if out
            .iter()
            .any(|s: &SeriesSum| s.name == name && s.dimensions == dimensions)
        {
            continue;
        }
        let stats = client
            .get_metric_statistics()
            .namespace(namespace)
            .metric_name(&name)
            .set_dimensions(Some(m.dimensions().to_vec()))
            .start_time(aws_smithy_types::DateTime::from_secs(from))
            .end_time(aws_smithy_types::DateTime::from_secs(to))
            .period(60)
            .statistics(Statistic::Sum)
            .send()
            .await
            .map_err(|e| sessionwarden_aws::sdk_error("CloudWatch.GetMetricStatistics", e))?;
        let sum = stats.datapoints().iter().filter_map(|d| d.sum()).sum();
        out.push(SeriesSum {
            name,
            dimensions,
            sum,
        });
    }
    out.sort_by(|a, b| (&a.name, &a.dimensions).cmp(&(&b.name, &b.dimensions)));
    Ok(out)
}
