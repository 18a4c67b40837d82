//! Settings of the cleanup worker.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::{CommonConfig, ConfigError, EnvSource, Reader};
use crate::session::SWEEP_INDEX;

/// How cleanup finds candidate sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupStrategy {
    /// Query the sweep index: cost follows the number of due sessions (the default).
    Index,
    /// Parallel scan with a minimal projection: for tables that lack the index.
    Scan,
}

impl CleanupStrategy {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CleanupStrategy::Index => "index",
            CleanupStrategy::Scan => "scan",
        }
    }
}

impl FromStr for CleanupStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "index" => Ok(CleanupStrategy::Index),
            "scan" => Ok(CleanupStrategy::Scan),
            other => Err(format!(
                "{other:?} is not a strategy: expected `index` or `scan`"
            )),
        }
    }
}

impl fmt::Display for CleanupStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Settings of the cleanup worker.
#[derive(Debug, Clone)]
pub struct CleanupConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// `CLEANUP_STRATEGY`: `index` (default) or `scan`.
    pub strategy: CleanupStrategy,
    /// `CLEANUP_INDEX_NAME` (default `by-sweep`): the sweep GSI.
    pub sweep_index: String,
    /// `CLEANUP_SCAN_SEGMENTS` (default 4): parallel scan segments.
    pub scan_segments: u32,
    /// `CLEANUP_PAGE_SIZE` (default 1000): `Limit` of each Query/Scan page.
    pub page_size: u32,
    /// `CLEANUP_WRITE_CONCURRENCY` (default 16): conditional writes in flight at once.
    pub write_concurrency: usize,
    /// `CLEANUP_DEADLINE_MARGIN_MS` (default 10000): stop starting work this long before the
    /// Lambda deadline.
    pub deadline_margin: Duration,
    /// `STATE_TABLE`: where a non-native layout's due index lives (required for those layouts).
    pub state_table: Option<String>,
}

impl CleanupConfig {
    /// Reads the cleanup settings from `env`.
    pub fn from_source(env: &(impl EnvSource + ?Sized)) -> Result<Self, ConfigError> {
        let r = Reader(env);
        Ok(CleanupConfig {
            common: CommonConfig::from_source(env)?,
            strategy: r.parsed(
                "CLEANUP_STRATEGY",
                CleanupStrategy::Index,
                "expected `index` or `scan`",
            )?,
            sweep_index: r
                .optional("CLEANUP_INDEX_NAME")
                .unwrap_or_else(|| SWEEP_INDEX.to_string()),
            scan_segments: r.int("CLEANUP_SCAN_SEGMENTS", 4, 1, 1_000)? as u32,
            page_size: r.int("CLEANUP_PAGE_SIZE", 1_000, 1, 100_000)? as u32,
            write_concurrency: r.int("CLEANUP_WRITE_CONCURRENCY", 16, 1, 256)? as usize,
            deadline_margin: r.deadline_margin("CLEANUP_DEADLINE_MARGIN_MS")?,
            state_table: r.optional("STATE_TABLE"),
        })
        .and_then(|c| match (&c.common.layout, &c.state_table) {
            (crate::layout::Layout::Mapped(_), None) => {
                Err(ConfigError::Missing { var: "STATE_TABLE" })
            }
            _ => Ok(c),
        })
    }
}
