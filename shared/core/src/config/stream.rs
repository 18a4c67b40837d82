//! Settings of the stream worker: state, alerts, containment and bursts, and the per-type
//! response policies (severity, alert threshold, containment).

use std::str::FromStr;

use super::{CommonConfig, ConfigError, EnvSource, Reader, Wiring};

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
    /// The type's severity (`SEVERITY_<TYPE>`, default [`crate::anomaly::AnomalyType::severity`]):
    /// an operator's judgement of a type can differ from ours (a context change that matters
    /// more in one app than in another). A rule's stronger variant stays steps above it.
    pub severity: crate::anomaly::Severity,
    /// Alert only when the finding's severity is at least this (`ALERT_MIN_SEVERITY[_<TYPE>]`).
    pub min_alert_severity: crate::anomaly::Severity,
    /// Containment (`CONTAINMENT_<TYPE>`).
    pub containment: Containment,
}

/// Settings of the stream worker.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// Where the worker sends things: state table, topic, queues, runbook links.
    pub wiring: Wiring,
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
    /// The per-user session limit (`MAX_SESSIONS_PER_USER`, off by default).
    pub limit: crate::limit::LimitConfig,
    /// Session-ended events (`SESSION_EVENTS_TOPIC_ARN`, off by default).
    pub events: EventsConfig,
}

/// Where session-ended events go, and what they carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventsConfig {
    /// `SESSION_EVENTS_TOPIC_ARN`: the topic; `None` publishes no events.
    pub topic_arn: Option<String>,
    /// `SESSION_EVENTS_RAW_ID` (default false): also put the raw session ID in each event, for an
    /// operator's own trusted subscribers. A session ID is a bearer credential.
    pub raw_id: bool,
}

/// Reads the session limit's variables.
fn limit_config(
    r: &Reader<'_, impl EnvSource + ?Sized>,
) -> Result<crate::limit::LimitConfig, ConfigError> {
    let max = match r.raw("MAX_SESSIONS_PER_USER") {
        None => None,
        Some(_) => Some(r.int("MAX_SESSIONS_PER_USER", 0, 1, 100_000)? as u32),
    };
    let mut by_tenant = Vec::new();
    if let Some(v) = r.raw("MAX_SESSIONS_PER_USER_BY_TENANT") {
        for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let parsed = pair
                .split_once('=')
                .and_then(|(t, n)| Some((t.trim(), n.trim().parse::<u32>().ok()?)))
                .filter(|(t, n)| !t.is_empty() && (1..=100_000).contains(n));
            match parsed {
                Some((t, n)) => by_tenant.push((t.to_string(), n)),
                None => {
                    return Err(ConfigError::Invalid {
                        var: "MAX_SESSIONS_PER_USER_BY_TENANT",
                        value: format!("{v:?}"),
                        reason: format!(
                            "expected tenant=limit pairs separated by commas (limits 1-100000), e.g. acme=3,beta=10; {pair:?} is not one"
                        ),
                    })
                }
            }
        }
    }
    Ok(crate::limit::LimitConfig {
        max,
        by_tenant,
        policy: r.parsed(
            "SESSION_LIMIT_POLICY",
            crate::limit::LimitPolicy::EndOldest,
            "expected end-oldest or end-newest",
        )?,
    })
}

impl StreamConfig {
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
                    severity: severity(severity_var(t), t.severity())?,
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
            wiring: Wiring::from_source(env)?,
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
            limit: limit_config(&r)?,
            events: EventsConfig {
                topic_arn: r.optional("SESSION_EVENTS_TOPIC_ARN"),
                raw_id: r.parsed("SESSION_EVENTS_RAW_ID", false, "expected true or false")?,
            },
        })
    }

    /// The response policy of one type.
    pub fn response(&self, t: crate::anomaly::AnomalyType) -> ResponsePolicy {
        self.responses
            .iter()
            .find(|(k, _)| *k == t)
            .map(|(_, p)| *p)
            .unwrap_or(ResponsePolicy {
                severity: t.severity(),
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
        SessionClientScripted => (
            "ALERT_MIN_SEVERITY_SESSION_CLIENT_SCRIPTED",
            "CONTAINMENT_SESSION_CLIENT_SCRIPTED",
        ),
    }
}

/// The per-type severity variable, `SEVERITY_<TYPE>`: what [`ResponsePolicy::severity`] is read
/// from (a sibling of [`response_vars`], whose pair predates it).
pub fn severity_var(t: crate::anomaly::AnomalyType) -> &'static str {
    use crate::anomaly::AnomalyType::*;
    match t {
        SessionUserChanged => "SEVERITY_SESSION_USER_CHANGED",
        SessionTenantChanged => "SEVERITY_SESSION_TENANT_CHANGED",
        ActivityAfterTermination => "SEVERITY_ACTIVITY_AFTER_TERMINATION",
        SessionResurrected => "SEVERITY_SESSION_RESURRECTED",
        SessionFixation => "SEVERITY_SESSION_FIXATION",
        IdleTimeoutNotEnforced => "SEVERITY_IDLE_TIMEOUT_NOT_ENFORCED",
        SessionCreationBurst => "SEVERITY_SESSION_CREATION_BURST",
        SessionContextChanged => "SEVERITY_SESSION_CONTEXT_CHANGED",
        SessionClientScripted => "SEVERITY_SESSION_CLIENT_SCRIPTED",
    }
}
