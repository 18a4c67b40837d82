//! Typed configuration, read once from the environment at startup. Every variable is parsed here,
//! and a wrong value is an error that names the variable, so a misconfigured Lambda fails its
//! first invocation with a clear message instead of misbehaving later.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::expiry::ExpiryPolicy;
use crate::session::SWEEP_INDEX;
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
struct Reader<'a, E: EnvSource + ?Sized>(&'a E);

impl<E: EnvSource + ?Sized> Reader<'_, E> {
    fn raw(&self, var: &'static str) -> Option<String> {
        self.0.var(var).filter(|v| !v.trim().is_empty())
    }

    fn required(&self, var: &'static str) -> Result<String, ConfigError> {
        self.raw(var).ok_or(ConfigError::Missing { var })
    }

    fn optional(&self, var: &'static str) -> Option<String> {
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
    fn int(&self, var: &'static str, default: i64, min: i64, max: i64) -> Result<i64, ConfigError> {
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
}

/// Settings every worker shares.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// `SESSIONS_TABLE`: the app's sessions table.
    pub sessions_table: String,
    /// `METRICS_NAMESPACE` (default `SessionWarden`): CloudWatch namespace of every metric.
    pub metrics_namespace: String,
    /// `SESSION_REF_KEY`: key of the session reference hash (at least 16 bytes).
    pub session_ref_key: SessionRefKey,
    /// `DEFAULT_IDLE_TIMEOUT_SECONDS`, `DEFAULT_MAX_LIFETIME_SECONDS`, `AUDIT_RETENTION_SECONDS`.
    pub expiry: ExpiryPolicy,
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
        Ok(CommonConfig {
            sessions_table: r.required("SESSIONS_TABLE")?,
            metrics_namespace: r
                .optional("METRICS_NAMESPACE")
                .unwrap_or_else(|| "SessionWarden".to_string()),
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
        })
    }
}

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
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "index" => Ok(CleanupStrategy::Index),
            "scan" => Ok(CleanupStrategy::Scan),
            _ => Err(()),
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
}

impl CleanupConfig {
    /// Reads the cleanup settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

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
            deadline_margin: Duration::from_millis(r.int(
                "CLEANUP_DEADLINE_MARGIN_MS",
                10_000,
                0,
                900_000,
            )? as u64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    const BASE: [(&str, &str); 2] = [
        ("SESSIONS_TABLE", "t"),
        ("SESSION_REF_KEY", "0123456789abcdef"),
    ];

    #[test]
    fn defaults_apply() {
        let c = CleanupConfig::from_source(&env(&BASE)).unwrap();
        assert_eq!(c.strategy, CleanupStrategy::Index);
        assert_eq!(c.common.metrics_namespace, "SessionWarden");
        assert_eq!(c.common.expiry, ExpiryPolicy::default());
        assert_eq!(c.sweep_index, "by-sweep");
        assert_eq!(c.deadline_margin, Duration::from_secs(10));
    }

    #[test]
    fn bad_strategy_names_the_variable() {
        let mut p = BASE.to_vec();
        p.push(("CLEANUP_STRATEGY", "fullscan"));
        let e = CleanupConfig::from_source(&env(&p)).unwrap_err();
        assert_eq!(e.to_string(), "configuration error: CLEANUP_STRATEGY=\"fullscan\" is invalid: expected `index` or `scan`");
    }

    #[test]
    fn bad_number_and_out_of_range_name_the_variable() {
        let mut p = BASE.to_vec();
        p.push(("DEFAULT_IDLE_TIMEOUT_SECONDS", "8h"));
        let e = CleanupConfig::from_source(&env(&p))
            .unwrap_err()
            .to_string();
        assert!(e.contains("DEFAULT_IDLE_TIMEOUT_SECONDS=\"8h\""), "{e}");
        let mut p = BASE.to_vec();
        p.push(("CLEANUP_SCAN_SEGMENTS", "0"));
        let e = CleanupConfig::from_source(&env(&p))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("CLEANUP_SCAN_SEGMENTS=0") && e.contains("from 1 to 1000"),
            "{e}"
        );
    }

    #[test]
    fn missing_required_and_secret_is_never_echoed() {
        let e = CleanupConfig::from_source(&env(&[("SESSION_REF_KEY", "0123456789abcdef")]))
            .unwrap_err();
        assert_eq!(
            e,
            ConfigError::Missing {
                var: "SESSIONS_TABLE"
            }
        );
        let e = CleanupConfig::from_source(&env(&[
            ("SESSIONS_TABLE", "t"),
            ("SESSION_REF_KEY", "tooshort"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("SESSION_REF_KEY=<redacted>") && !e.contains("tooshort"),
            "{e}"
        );
    }
}

/// What the stream worker does to contain an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Containment {
    /// Alert only.
    None,
    /// End the session (reason `containment`).
    TerminateSession,
    /// End every session of the user (recorded as a request until cascades exist).
    TerminateUser,
}

impl Containment {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Containment::None => "none",
            Containment::TerminateSession => "terminate_session",
            Containment::TerminateUser => "terminate_user",
        }
    }
}

impl FromStr for Containment {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "none" => Ok(Containment::None),
            "terminate_session" => Ok(Containment::TerminateSession),
            "terminate_user" => Ok(Containment::TerminateUser),
            _ => Err(()),
        }
    }
}

/// The response to one anomaly type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePolicy {
    /// Alert only when the type's severity is at least this (`ALERT_MIN_SEVERITY[_<TYPE>]`).
    pub min_alert_severity: crate::anomaly::Severity,
    /// Containment (`CONTAINMENT_<TYPE>`).
    pub containment: Containment,
}

/// Settings of the stream worker.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// `STATE_TABLE`: bindings, alert dedup and counters.
    pub state_table: String,
    /// `ALERTS_TOPIC_ARN`.
    pub alerts_topic_arn: String,
    /// `DEAD_LETTER_QUEUE_URL`: malformed records go here, raw.
    pub dead_letter_queue_url: String,
    /// `CASCADE_QUEUE_URL`: cascade requests (revokeScope, families, `terminate_user`) go here.
    pub cascade_queue_url: String,
    /// `RUNBOOK_BASE_URL`: alert runbook links are this plus `#<type in lower case>`.
    pub runbook_base_url: String,
    /// `ALERT_DEDUP_WINDOW_SECONDS` (default 3600): one alert per (type, subject) per window.
    pub alert_dedup_window_seconds: i64,
    /// `ALERT_STORM_THRESHOLD` (default 10): beyond this many alerts in one invocation, send one digest.
    pub alert_storm_threshold: usize,
    /// `BURST_WINDOW_SECONDS` (default 300).
    pub burst_window_seconds: i64,
    /// `BURST_USER_THRESHOLD` (default 10): more new sessions than this for one user in a window is a burst.
    pub burst_user_threshold: u64,
    /// `BURST_TENANT_THRESHOLD` (default 500): the same for one tenant.
    pub burst_tenant_threshold: u64,
    /// `STREAM_CONCURRENCY` (default 16): sessions processed at once (records of one session stay in order).
    pub concurrency: usize,
    /// `METRICS_TENANT_DIMENSION` (default false): also emit `AnomaliesDetected` per tenant.
    pub metrics_tenant_dimension: bool,
    /// `METRICS_TENANT_DIMENSION_MAX` (default 20): distinct tenants per invocation before `other`.
    pub metrics_tenant_dimension_max: usize,
    /// Per-type response, indexed like [`crate::anomaly::AnomalyType::ALL`].
    pub responses: Vec<(crate::anomaly::AnomalyType, ResponsePolicy)>,
}

impl StreamConfig {
    /// Reads the stream settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

    /// Reads the stream settings from `env`.
    pub fn from_source(env: &(impl EnvSource + ?Sized)) -> Result<Self, ConfigError> {
        use crate::anomaly::{AnomalyType, Severity};
        let r = Reader(env);
        let severity = |var: &'static str, default: Severity| -> Result<Severity, ConfigError> {
            match r.raw(var) {
                None => Ok(default),
                Some(v) => Severity::parse(&v).ok_or_else(|| ConfigError::Invalid {
                    var,
                    value: format!("{v:?}"),
                    reason: "expected INFO, LOW, MEDIUM, HIGH or CRITICAL".into(),
                }),
            }
        };
        let global_min = severity("ALERT_MIN_SEVERITY", Severity::Low)?;
        let mut responses = Vec::new();
        for t in AnomalyType::ALL {
            let (sev_var, contain_var) = response_vars(t);
            let default_containment = match t {
                AnomalyType::SessionUserChanged | AnomalyType::SessionTenantChanged => {
                    Containment::TerminateSession
                }
                _ => Containment::None,
            };
            responses.push((
                t,
                ResponsePolicy {
                    min_alert_severity: severity(sev_var, global_min)?,
                    containment: r.parsed(
                        contain_var,
                        default_containment,
                        "expected none, terminate_session or terminate_user",
                    )?,
                },
            ));
        }
        Ok(StreamConfig {
            common: CommonConfig::from_source(env)?,
            state_table: r.required("STATE_TABLE")?,
            alerts_topic_arn: r.required("ALERTS_TOPIC_ARN")?,
            dead_letter_queue_url: r.required("DEAD_LETTER_QUEUE_URL")?,
            cascade_queue_url: r.required("CASCADE_QUEUE_URL")?,
            runbook_base_url: r.optional("RUNBOOK_BASE_URL").unwrap_or_else(|| {
                "https://github.com/sessionwarden/sessionwarden/blob/main/README.md".into()
            }),
            alert_dedup_window_seconds: r.int(
                "ALERT_DEDUP_WINDOW_SECONDS",
                3_600,
                1,
                30 * 86_400,
            )?,
            alert_storm_threshold: r.int("ALERT_STORM_THRESHOLD", 10, 1, 10_000)? as usize,
            burst_window_seconds: r.int("BURST_WINDOW_SECONDS", 300, 1, 86_400)?,
            burst_user_threshold: r.int("BURST_USER_THRESHOLD", 10, 1, 1_000_000)? as u64,
            burst_tenant_threshold: r.int("BURST_TENANT_THRESHOLD", 500, 1, 100_000_000)? as u64,
            concurrency: r.int("STREAM_CONCURRENCY", 16, 1, 256)? as usize,
            metrics_tenant_dimension: r.parsed(
                "METRICS_TENANT_DIMENSION",
                false,
                "expected true or false",
            )?,
            metrics_tenant_dimension_max: r.int("METRICS_TENANT_DIMENSION_MAX", 20, 1, 1_000)?
                as usize,
            responses,
        })
    }

    /// The response policy of one type.
    pub fn response(&self, t: crate::anomaly::AnomalyType) -> ResponsePolicy {
        self.responses
            .iter()
            .find(|(k, _)| *k == t)
            .map(|(_, p)| *p)
            .unwrap_or(ResponsePolicy {
                min_alert_severity: crate::anomaly::Severity::Low,
                containment: Containment::None,
            })
    }
}

/// The two per-type variable names: `ALERT_MIN_SEVERITY_<TYPE>` and `CONTAINMENT_<TYPE>`.
pub fn response_vars(t: crate::anomaly::AnomalyType) -> (&'static str, &'static str) {
    use crate::anomaly::AnomalyType::*;
    match t {
        SessionUserChanged => (
            "ALERT_MIN_SEVERITY_SESSION_USER_CHANGED",
            "CONTAINMENT_SESSION_USER_CHANGED",
        ),
        SessionTenantChanged => (
            "ALERT_MIN_SEVERITY_SESSION_TENANT_CHANGED",
            "CONTAINMENT_SESSION_TENANT_CHANGED",
        ),
        ActivityAfterTermination => (
            "ALERT_MIN_SEVERITY_ACTIVITY_AFTER_TERMINATION",
            "CONTAINMENT_ACTIVITY_AFTER_TERMINATION",
        ),
        SessionResurrected => (
            "ALERT_MIN_SEVERITY_SESSION_RESURRECTED",
            "CONTAINMENT_SESSION_RESURRECTED",
        ),
        SessionFixation => (
            "ALERT_MIN_SEVERITY_SESSION_FIXATION",
            "CONTAINMENT_SESSION_FIXATION",
        ),
        IdleTimeoutNotEnforced => (
            "ALERT_MIN_SEVERITY_IDLE_TIMEOUT_NOT_ENFORCED",
            "CONTAINMENT_IDLE_TIMEOUT_NOT_ENFORCED",
        ),
        SessionCreationBurst => (
            "ALERT_MIN_SEVERITY_SESSION_CREATION_BURST",
            "CONTAINMENT_SESSION_CREATION_BURST",
        ),
        SessionContextChanged => (
            "ALERT_MIN_SEVERITY_SESSION_CONTEXT_CHANGED",
            "CONTAINMENT_SESSION_CONTEXT_CHANGED",
        ),
    }
}

#[cfg(test)]
mod stream_config_tests {
    use super::*;
    use crate::anomaly::{AnomalyType, Severity};

    fn base(extra: &[(&str, &str)]) -> Result<StreamConfig, ConfigError> {
        let mut m: std::collections::HashMap<String, String> = [
            ("SESSIONS_TABLE", "s"),
            ("SESSION_REF_KEY", "0123456789abcdef"),
            ("STATE_TABLE", "st"),
            ("ALERTS_TOPIC_ARN", "arn:aws:sns:us-east-1:1:a"),
            ("DEAD_LETTER_QUEUE_URL", "http://q"),
            ("CASCADE_QUEUE_URL", "http://c"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        StreamConfig::from_source(&move |k: &str| m.get(k).cloned())
    }

    #[test]
    fn identity_anomalies_terminate_the_session_by_default() {
        let c = base(&[]).unwrap();
        assert_eq!(
            c.response(AnomalyType::SessionUserChanged).containment,
            Containment::TerminateSession
        );
        assert_eq!(
            c.response(AnomalyType::SessionTenantChanged).containment,
            Containment::TerminateSession
        );
        assert_eq!(
            c.response(AnomalyType::SessionFixation).containment,
            Containment::None
        );
        assert_eq!(c.alert_dedup_window_seconds, 3600);
    }

    #[test]
    fn per_type_overrides_and_bad_values_name_the_variable() {
        let c = base(&[
            ("ALERT_MIN_SEVERITY", "HIGH"),
            ("ALERT_MIN_SEVERITY_SESSION_FIXATION", "low"),
            ("CONTAINMENT_SESSION_FIXATION", "terminate_user"),
        ])
        .unwrap();
        assert_eq!(
            c.response(AnomalyType::SessionFixation).min_alert_severity,
            Severity::Low
        );
        assert_eq!(
            c.response(AnomalyType::SessionFixation).containment,
            Containment::TerminateUser
        );
        assert_eq!(
            c.response(AnomalyType::SessionResurrected)
                .min_alert_severity,
            Severity::High
        );
        let e = base(&[("CONTAINMENT_SESSION_USER_CHANGED", "nuke")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("CONTAINMENT_SESSION_USER_CHANGED=\"nuke\""),
            "{e}"
        );
        assert_eq!(
            base(&[("ALERTS_TOPIC_ARN", "")]).unwrap_err(),
            ConfigError::Missing {
                var: "ALERTS_TOPIC_ARN"
            }
        );
    }
}

/// Settings of the cascade worker.
#[derive(Debug, Clone)]
pub struct CascadeConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// `STATE_TABLE`: cascade job records.
    pub state_table: String,
    /// `CASCADE_QUEUE_URL`: continuations and family sub-cascades are sent here.
    pub cascade_queue_url: String,
    /// `DEAD_LETTER_QUEUE_URL`: invalid messages go here with their reason.
    pub dead_letter_queue_url: String,
    /// `ALERTS_TOPIC_ARN`: large cascades are announced here.
    pub alerts_topic_arn: String,
    /// `RUNBOOK_BASE_URL`.
    pub runbook_base_url: String,
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
    /// Reads the cascade settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

    /// Reads the cascade settings from `env`.
    pub fn from_source(env: &(impl EnvSource + ?Sized)) -> Result<Self, ConfigError> {
        let r = Reader(env);
        Ok(CascadeConfig {
            common: CommonConfig::from_source(env)?,
            state_table: r.required("STATE_TABLE")?,
            cascade_queue_url: r.required("CASCADE_QUEUE_URL")?,
            dead_letter_queue_url: r.required("DEAD_LETTER_QUEUE_URL")?,
            alerts_topic_arn: r.required("ALERTS_TOPIC_ARN")?,
            runbook_base_url: r.optional("RUNBOOK_BASE_URL").unwrap_or_else(|| {
                "https://github.com/sessionwarden/sessionwarden/blob/main/README.md".into()
            }),
            page_size: r.int("CASCADE_PAGE_SIZE", 100, 1, 1_000)? as u32,
            pages_per_message: r.int("CASCADE_PAGES_PER_MESSAGE", 10, 1, 10_000)? as u32,
            write_concurrency: r.int("CASCADE_WRITE_CONCURRENCY", 16, 1, 256)? as usize,
            concurrency: r.int("CASCADE_CONCURRENCY", 4, 1, 64)? as usize,
            max_depth: r.int("CASCADE_MAX_DEPTH", 10, 1, 100)? as u32,
            alert_threshold: r.int("CASCADE_ALERT_THRESHOLD", 100, 1, 100_000_000)? as u64,
            deadline_margin: Duration::from_millis(r.int(
                "CASCADE_DEADLINE_MARGIN_MS",
                10_000,
                0,
                900_000,
            )? as u64),
        })
    }
}
