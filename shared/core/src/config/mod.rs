//! Typed configuration, read once from the environment at startup. Every variable is parsed here,
//! and a wrong value is an error that names the variable, so a misconfigured Lambda fails its
//! first invocation with a clear message instead of misbehaving later.

use std::str::FromStr;
use std::time::Duration;

use crate::expiry::ExpiryPolicy;
use crate::layout::Layout;
use crate::session_ref::SessionRefKey;

/// Where variables come from: the process environment in production, a map in tests
/// (tests never mutate the shared process environment).
pub trait EnvSource {
    /// The value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> EnvSource for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// A configuration error. Both variants name the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("configuration error: {var} is required but not set")]
    Missing {
        /// The variable.
        var: &'static str,
    },
    /// A variable is set to a value that does not parse or is out of range.
    #[error("configuration error: {var}={value} is invalid: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// The offending value, quoted, or `<redacted>` for secrets.
        value: String,
        /// What was expected.
        reason: String,
    },
}

/// Typed reads over an [`EnvSource`]. Empty values count as unset.
pub(crate) struct Reader<'a, E: EnvSource + ?Sized>(&'a E);

impl<E: EnvSource + ?Sized> Reader<'_, E> {
    pub(crate) fn raw(&self, var: &'static str) -> Option<String> {
        self.0.var(var).filter(|v| !v.trim().is_empty())
    }

    pub(crate) fn required(&self, var: &'static str) -> Result<String, ConfigError> {
        self.raw(var).ok_or(ConfigError::Missing { var })
    }

    pub(crate) fn optional(&self, var: &'static str) -> Option<String> {
        self.raw(var)
    }

    fn parsed<T>(&self, var: &'static str, default: T, reason: &str) -> Result<T, ConfigError>
    where
        T: FromStr,
    {
        match self.raw(var) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid {
                var,
                value: format!("{v:?}"),
                reason: reason.to_string(),
            }),
        }
    }

    /// An integer in `[min, max]`.
    pub(crate) fn int(
        &self,
        var: &'static str,
        default: i64,
        min: i64,
        max: i64,
    ) -> Result<i64, ConfigError> {
        let reason = format!("expected an integer from {min} to {max}");
        let v: i64 = self.parsed(var, default, &reason)?;
        if v < min || v > max {
            return Err(ConfigError::Invalid {
                var,
                value: format!("{v:?}"),
                reason,
            });
        }
        Ok(v)
    }

    /// A safety margin before the Lambda deadline, in milliseconds: default 10 s, less than
    /// Lambda's longest timeout (900 s), and less than `FUNCTION_TIMEOUT_SECONDS` when that is
    /// set: a margin as long as the function's timeout leaves no time to work in, and a cascade
    /// would hand over its continuation forever without ending a session.
    pub(crate) fn deadline_margin(&self, var: &'static str) -> Result<Duration, ConfigError> {
        let margin = self.int(var, 10_000, 0, MAX_DEADLINE_MARGIN_MS)?;
        if let Some(timeout) = self.function_timeout_seconds()? {
            if margin >= timeout * 1_000 {
                return Err(ConfigError::Invalid {
                    var,
                    value: format!("{margin:?}"),
                    reason: format!(
                        "must be smaller than FUNCTION_TIMEOUT_SECONDS={timeout} ({} ms), or no time is left to work in before the deadline",
                        timeout * 1_000
                    ),
                });
            }
        }
        Ok(Duration::from_millis(margin as u64))
    }

    /// `FUNCTION_TIMEOUT_SECONDS`: the function's own timeout (the template sets it from the
    /// function's `Timeout`), from 1 to 900 s as Lambda allows; `None` when unset.
    pub(crate) fn function_timeout_seconds(&self) -> Result<Option<i64>, ConfigError> {
        match self.raw(FUNCTION_TIMEOUT_SECONDS) {
            None => Ok(None),
            Some(_) => self.int(FUNCTION_TIMEOUT_SECONDS, 0, 1, 900).map(Some),
        }
    }
}

/// The function's timeout, in seconds, as the template sets it.
const FUNCTION_TIMEOUT_SECONDS: &str = "FUNCTION_TIMEOUT_SECONDS";

/// The longest deadline margin accepted, in milliseconds: under Lambda's longest timeout (900 s).
const MAX_DEADLINE_MARGIN_MS: i64 = 899_999;

/// Settings every worker shares.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// `SESSIONS_TABLE`: the app's sessions table.
    pub sessions_table: String,
    /// `METRICS_NAMESPACE` (default `SessionWarden`): CloudWatch namespace of every metric.
    pub metrics_namespace: String,
    /// `METRICS_SINK` (default `cloudwatch`): how metrics reach CloudWatch.
    pub metrics_transport: MetricsTransport,
    /// `SESSION_REF_KEY`: key of the session reference hash (at least 16 bytes).
    pub session_ref_key: SessionRefKey,
    /// `DEFAULT_IDLE_TIMEOUT_SECONDS`, `DEFAULT_MAX_LIFETIME_SECONDS`, `AUDIT_RETENTION_SECONDS`.
    pub expiry: ExpiryPolicy,
    /// `SESSION_LAYOUT` (default `native`): how the table stores a session.
    pub layout: Layout,
    /// `DUE_INDEX_*`: sessionwarden's own due index, on every layout but native.
    pub index: IndexConfig,
    /// `FAMILY_CASCADES` (default `marked`): which ended sessions ask for a family cascade, in
    /// the stream worker (a session's end) and in the cascade worker (a child's sub-cascade).
    pub family_cascades: FamilyCascades,
    /// True when `SESSION_EVENTS_TOPIC_ARN` is set: on layouts that keep no
    /// `terminationReason`, every worker's end then leaves a note of its reason in the state
    /// table, for the stream worker's session-ended event.
    pub end_notes: bool,
}

/// Which ended sessions ask for a family cascade (`FAMILY_CASCADES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyCascades {
    /// Only sessions a child's INSERT marked as parents (default): a session without children
    /// costs no request when it ends.
    Marked,
    /// Every ended session, as before the markers: for children created before the stream
    /// worker ran (and so never marked), until those have lapsed.
    Always,
}

impl FromStr for FamilyCascades {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "marked" => Ok(FamilyCascades::Marked),
            "always" => Ok(FamilyCascades::Always),
            _ => Err(()),
        }
    }
}

/// How a worker's metrics reach CloudWatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsTransport {
    /// `cloudwatch`: one PutMetricData per flush. A flush whose response was lost is counted
    /// twice by the SDK's retry, and one that fails after its retries is lost (and logged).
    CloudWatch,
    /// `emf`: Embedded Metric Format lines on standard output, which CloudWatch Logs turns into
    /// the same metrics: written once, counted once, no request and no IAM permission.
    Emf,
}

/// The shape of sessionwarden's own due index in the state table (see [`crate::ports::Filing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexConfig {
    /// `DUE_INDEX_BUCKET_SECONDS` (default 900): width of a due bucket. A session's entry is
    /// rewritten only when its due time moves to another bucket.
    pub bucket_seconds: i64,
    /// `DUE_INDEX_SHARDS` (default 16): partitions per bucket, so no partition takes every write.
    pub shards: u32,
    /// `DUE_INDEX_LOOKBACK_SECONDS` (default 21600): how far back the first cleanup run looks,
    /// before any run or backfill has recorded where the index starts.
    pub lookback_seconds: i64,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            bucket_seconds: 900,
            shards: 16,
            lookback_seconds: 21_600,
        }
    }
}

impl IndexConfig {
    /// The bucket of a due time.
    pub fn bucket(&self, due_at: i64) -> i64 {
        due_at.div_euclid(self.bucket_seconds)
    }
}

impl CommonConfig {
    /// Reads the shared settings.
    pub fn from_source(env: &(impl EnvSource + ?Sized)) -> Result<Self, ConfigError> {
        let r = Reader(env);
        let key_raw = r.required("SESSION_REF_KEY")?;
        let session_ref_key =
            SessionRefKey::new(key_raw.into_bytes()).map_err(|e| ConfigError::Invalid {
                var: "SESSION_REF_KEY",
                value: "<redacted>".into(),
                reason: e.to_string(),
            })?;
        const YEAR: i64 = 366 * 86_400;
        // Every worker refuses a malformed timeout, even one that has no margin to check.
        r.function_timeout_seconds()?;
        Ok(CommonConfig {
            sessions_table: r.required("SESSIONS_TABLE")?,
            metrics_namespace: r
                .optional("METRICS_NAMESPACE")
                .unwrap_or_else(|| "SessionWarden".to_string()),
            metrics_transport: match r.optional("METRICS_SINK").as_deref() {
                None | Some("cloudwatch") => MetricsTransport::CloudWatch,
                Some("emf") => MetricsTransport::Emf,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        var: "METRICS_SINK",
                        value: format!("{:?}", other.chars().take(200).collect::<String>()),
                        reason: "expected cloudwatch or emf".into(),
                    })
                }
            },
            session_ref_key,
            expiry: ExpiryPolicy {
                default_idle_timeout_seconds: r.int(
                    "DEFAULT_IDLE_TIMEOUT_SECONDS",
                    28_800,
                    1,
                    YEAR,
                )?,
                default_max_lifetime_seconds: r.int(
                    "DEFAULT_MAX_LIFETIME_SECONDS",
                    86_400,
                    1,
                    10 * YEAR,
                )?,
                audit_retention_seconds: r.int("AUDIT_RETENTION_SECONDS", 604_800, 0, 10 * YEAR)?,
            },
            layout: match r.optional("SESSION_LAYOUT") {
                None => Layout::Native,
                Some(v) => Layout::parse(&v).map_err(|e| ConfigError::Invalid {
                    var: "SESSION_LAYOUT",
                    value: format!("{:?}", v.chars().take(200).collect::<String>()),
                    reason: e.to_string(),
                })?,
            },
            index: IndexConfig {
                bucket_seconds: r.int("DUE_INDEX_BUCKET_SECONDS", 900, 60, 86_400)?,
                shards: r.int("DUE_INDEX_SHARDS", 16, 1, 256)? as u32,
                lookback_seconds: r.int("DUE_INDEX_LOOKBACK_SECONDS", 21_600, 0, 30 * 86_400)?,
            },
            family_cascades: r.parsed(
                "FAMILY_CASCADES",
                FamilyCascades::Marked,
                "expected marked or always",
            )?,
            end_notes: r.optional("SESSION_EVENTS_TOPIC_ARN").is_some(),
        })
    }
}

/// Where the stream and cascade workers send things. Both read the same variables, once.
#[derive(Debug, Clone)]
pub struct Wiring {
    /// `STATE_TABLE`: bindings, counters, alert gates and cascade job records.
    pub state_table: String,
    /// `ALERTS_TOPIC_ARN`: alerts and large-cascade notices.
    pub alerts_topic_arn: String,
    /// `DEAD_LETTER_QUEUE_URL`: malformed records and invalid messages, raw, with their reason.
    pub dead_letter_queue_url: String,
    /// `CASCADE_QUEUE_URL`: cascade requests, continuations and family sub-cascades.
    pub cascade_queue_url: String,
    /// `RUNBOOK_BASE_URL`: alert runbook links are this plus `#<type in lower case>`.
    pub runbook_base_url: String,
}

impl Wiring {
    /// Reads the wiring from `env`.
    pub fn from_source(env: &(impl EnvSource + ?Sized)) -> Result<Self, ConfigError> {
        let r = Reader(env);
        Ok(Wiring {
            state_table: r.required("STATE_TABLE")?,
            alerts_topic_arn: r.required("ALERTS_TOPIC_ARN")?,
            dead_letter_queue_url: r.required("DEAD_LETTER_QUEUE_URL")?,
            cascade_queue_url: r.required("CASCADE_QUEUE_URL")?,
            runbook_base_url: r.optional("RUNBOOK_BASE_URL").unwrap_or_else(|| {
                "https://github.com/sessionwarden/sessionwarden/blob/main/README.md".into()
            }),
        })
    }
}

/// `from_env()` for each settings type: its `from_source` over the process environment.
macro_rules! from_process_env {
    ($($t:ty),*) => {$(
        impl $t {
            /// Reads these settings from the process environment.
            pub fn from_env() -> Result<Self, ConfigError> {
                Self::from_source(&ProcessEnv)
            }
        }
    )*};
}
from_process_env!(CommonConfig, CleanupConfig, StreamConfig, CascadeConfig);

mod cascade;
mod cleanup;
mod stream;

pub use cascade::CascadeConfig;
pub use cleanup::{CleanupConfig, CleanupStrategy};
pub use stream::{response_vars, severity_var, Containment, ResponsePolicy, StreamConfig};
