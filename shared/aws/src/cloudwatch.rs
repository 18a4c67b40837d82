//! CloudWatch adapter of the [`MetricsSink`] port: one PutMetricData per 1,000 series.

use std::time::SystemTime;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_cloudwatch::Client;

use crate::PortError;
use sessionwarden_core::metrics::{MetricBatch, Unit};
use sessionwarden_core::ports::MetricsSink;

/// PutMetricData accepts at most 1,000 metric data per request.
const MAX_DATA_PER_REQUEST: usize = 1_000;

/// Publishes metric batches to CloudWatch.
#[derive(Clone, Debug)]
pub struct CloudWatchMetrics {
    client: Client,
}

impl CloudWatchMetrics {
    /// A sink over `client`.
    pub fn new(client: Client) -> Self {
        CloudWatchMetrics { client }
    }
}

impl MetricsSink for CloudWatchMetrics {
    async fn publish(&self, namespace: &str, batch: &MetricBatch) -> Result<(), PortError> {
        let timestamp = aws_smithy_types::DateTime::from(SystemTime::now());
        let data: Vec<MetricDatum> = batch
            .iter()
            .filter(|(_, v, _)| v.is_finite())
            .map(|(key, value, unit)| {
                MetricDatum::builder()
                    .metric_name(key.name)
                    .set_dimensions(Some(
                        key.dimensions
                            .iter()
                            .map(|(n, v)| Dimension::builder().name(*n).value(v).build())
                            .collect(),
                    ))
                    .value(value)
                    .unit(match unit {
                        Unit::Count => StandardUnit::Count,
                        Unit::Milliseconds => StandardUnit::Milliseconds,
                    })
                    .timestamp(timestamp)
                    .build()
            })
            .collect();
        for chunk in data.chunks(MAX_DATA_PER_REQUEST) {
            self.client
                .put_metric_data()
                .namespace(namespace)
                .set_metric_data(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| crate::sdk_error("CloudWatch.PutMetricData", e))?;
        }
        Ok(())
    }
}
