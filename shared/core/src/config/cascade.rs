//! Settings of the cascade worker.

use std::time::Duration;

use super::{CommonConfig, ConfigError, EnvSource, Reader, Wiring};

/// Settings of the cascade worker.
#[derive(Debug, Clone)]
pub struct CascadeConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// Where the worker sends things: state table, topic, queues, runbook links.
    pub wiring: Wiring,
    /// `CASCADE_PAGE_SIZE` (default 100): sessions per index page.
    pub page_size: u32,
    /// `CASCADE_PAGES_PER_MESSAGE` (default 10): pages one message may take before it continues
    /// in a new message, so one huge tenant cannot starve the queue.
    pub pages_per_message: u32,
    /// `CASCADE_WRITE_CONCURRENCY` (default 16): conditional writes in flight per message.
    pub write_concurrency: usize,
    /// `CASCADE_CONCURRENCY` (default 4): messages of one batch processed at once.
    pub concurrency: usize,
    /// `CASCADE_MAX_DEPTH` (default 10): family recursion stops below this depth.
    pub max_depth: u32,
    /// `CASCADE_ALERT_THRESHOLD` (default 100): a cascade that ends at least this many sessions
    /// sends an informational alert.
    pub alert_threshold: u64,
    /// `CASCADE_DEADLINE_MARGIN_MS` (default 10000): continue in a new message this long before
    /// the Lambda deadline.
    pub deadline_margin: Duration,
}

impl CascadeConfig {
    /// Reads the cascade settings from `env`.
    pub fn from_source(env: &(impl EnvSource + ?Sized)) -> Result<Self, ConfigError> {
        let r = Reader(env);
        Ok(CascadeConfig {
            common: CommonConfig::from_source(env)?,
            wiring: Wiring::from_source(env)?,
            page_size: r.int("CASCADE_PAGE_SIZE", 100, 1, 1_000)? as u32,
            pages_per_message: r.int("CASCADE_PAGES_PER_MESSAGE", 10, 1, 10_000)? as u32,
            write_concurrency: r.int("CASCADE_WRITE_CONCURRENCY", 16, 1, 256)? as usize,
            concurrency: r.int("CASCADE_CONCURRENCY", 4, 1, 64)? as usize,
            max_depth: r.int("CASCADE_MAX_DEPTH", 10, 1, 100)? as u32,
            alert_threshold: r.int("CASCADE_ALERT_THRESHOLD", 100, 1, 100_000_000)? as u64,
            deadline_margin: r.deadline_margin("CASCADE_DEADLINE_MARGIN_MS")?,
        })
    }
}
