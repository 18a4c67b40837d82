//! The demo: seeds a realistic mix of sessions (three tenants, browsers and mobile apps,
//! anonymous visitors, strict per-session timeouts, sessions that ended earlier), runs the
//! cleanup worker's real handler against the emulator, and prints what an operator would want
//! to see: what expired and why, what was left alone, the AWS requests it cost, and the metrics
//! read back from CloudWatch. [`seed`] is the traffic, [`stream`] and [`cascade`] the
//! other two workers' parts. [`layouts`] is the demo on another library's table
//! (`sessionctl demo --layout connect-dynamodb|authjs`), seeded by [`library`].

use std::collections::BTreeMap;
use std::time::Duration;

use sessionwarden_aws::{load_sdk_config, AwsClients, RequestCounter};
use sessionwarden_core::config::{CascadeConfig, CleanupConfig, StreamConfig};
use sessionwarden_core::session::{Session, Status};
use sessionwarden_local::seed::SeedTable;

pub(crate) const H: i64 = 3600;
pub(crate) const M: i64 = 60;

mod cascade;
pub mod layouts;
pub mod library;
mod seed;
mod stream;

use cascade::cascade_part;
pub use layouts::DemoLayout;
pub use seed::{demo_sessions, Seeded};
use stream::{print_series, recent_series, stream_part};

pub(crate) fn ago(secs: i64) -> String {
    let secs = secs.max(0);
    if secs >= H {
        format!("{}h{:02}m ago", secs / H, (secs % H) / M)
    } else {
        format!("{}m ago", secs / M)
    }
}

/// Runs the demo against the environment `sessionctl init` printed.
pub async fn run(
    config: CleanupConfig,
    stream: StreamConfig,
    cascade: CascadeConfig,
) -> anyhow::Result<()> {
    let counter = RequestCounter::new();
    let clients = AwsClients::local(&load_sdk_config().await, Some(&counter));
    let table = SeedTable::new(
        clients.dynamodb.clone(),
        config.common.sessions_table.clone(),
    );
    let key = config.common.session_ref_key.clone();
    let policy = config.common.expiry;
    let now = chrono::Utc::now().timestamp();

    let seeded = demo_sessions(now, &policy, 2026);
    let sessions: Vec<Session> = seeded.iter().map(|s| s.session.clone()).collect();
    table.put_sessions(&sessions).await?;
    let active = sessions
        .iter()
        .filter(|s| s.status == Status::Active)
        .count();
    println!("== sessionwarden demo: hourly cleanup ==");
    println!(
        "Seeded {} sessions into {} ({} ACTIVE, {} already ended), 3 tenants, 30 users.",
        sessions.len(),
        table.table(),
        active,
        sessions.len() - active
    );
    println!(
        "Policy: idle timeout {} h, max lifetime {} h, audit retention {} days (per-session overrides win).\n",
        policy.default_idle_timeout_seconds / H,
        policy.default_max_lifetime_seconds / H,
        policy.audit_retention_seconds / 86_400
    );

    counter.reset();
    let report = crate::invoke_cleanup(&clients, config.clone(), Duration::from_secs(300)).await?;
    let requests = counter.snapshot();

    let after: BTreeMap<String, Session> = table
        .scan_all()
        .await?
        .into_iter()
        .filter_map(Result::ok)
        .map(|s| (s.session_id.expose().to_string(), s))
        .collect();
    let expired_now: Vec<&Seeded> = seeded
        .iter()
        .filter(|s| {
            after
                .get(s.session.session_id.expose())
                .is_some_and(|a| a.status == Status::Expired && a.terminated_at == Some(report.now))
        })
        .collect();

    println!(
        "Cleanup ({} strategy): examined {}, expired {} (idle {}, absolute {}), skipped as touched {}, not yet due {}. {}",
        report.strategy,
        report.examined,
        report.expired_total(),
        report.expired.idle,
        report.expired.absolute,
        report.skipped_touched,
        report.not_due,
        if report.finished { "Finished." } else { "Stopped early; the next run continues." }
    );
    println!(
        "Cost: {} items read for {} sessions in the table; AWS requests: {}\n",
        report.items_read,
        sessions.len(),
        requests
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    println!("Expired this run (session IDs shown only as keyed references):");
    println!(
        "  {:<13} {:<8} {:<6} {:<9} {:<13} {:<13} TIMEOUT",
        "SESSION REF", "TENANT", "USER", "REASON", "LAST ACTIVE", "CREATED"
    );
    let mut rows: Vec<_> = expired_now
        .iter()
        .map(|s| (&after[s.session.session_id.expose()], s))
        .collect();
    rows.sort_by_key(|(a, _)| {
        (
            a.termination_reason.map(|r| r.as_str()),
            a.tenant_id.clone(),
            a.user_id.clone(),
        )
    });
    for (a, _) in &rows {
        let timeout = match (a.idle_timeout_seconds, a.absolute_expires_at) {
            (Some(t), _) => format!("idle {}m (own)", t / M),
            (None, Some(_)) => "fixed end".to_string(),
            _ => "default".to_string(),
        };
        println!(
            "  {:<13} {:<8} {:<6} {:<9} {:<13} {:<13} {}",
            key.of(&a.session_id).as_str(),
            a.tenant_id.as_deref().unwrap_or("-"),
            a.user_id.as_deref().unwrap_or("(anon)"),
            a.termination_reason.map(|r| r.as_str()).unwrap_or("-"),
            ago(now - a.last_activity_at),
            ago(now - a.created_at),
            timeout
        );
    }
    let mismatched = seeded
        .iter()
        .filter(|s| {
            let got = after.get(s.session.session_id.expose());
            let expired = got.is_some_and(|a| a.terminated_at == Some(report.now));
            let reason = got.and_then(|a| a.termination_reason).map(|r| r.as_str());
            match s.expect {
                "stays" => expired,
                want => !expired || reason != Some(want),
            }
        })
        .count();
    let untouched_ended = sessions
        .iter()
        .filter(|s| s.status != Status::Active)
        .count();
    println!(
        "\nLeft alone: {} active sessions within their deadlines, {} sessions that had already ended (their reasons kept).",
        after.values().filter(|a| a.status == Status::Active).count(),
        untouched_ended
    );
    println!("Every expired session got terminatedAt, terminationReason and expiresAt (TTL = end + audit retention).");

    let series = recent_series(&clients, &config.common.metrics_namespace, now).await?;
    println!(
        "\nMetrics sent (read back from CloudWatch, namespace {}):",
        config.common.metrics_namespace
    );
    print_series(series.iter(), 40);
    println!(
        "\nJSON summary returned by the handler:\n{}",
        serde_json::to_string_pretty(&report)?
    );
    if mismatched > 0 {
        anyhow::bail!("{mismatched} sessions did not end as the demo expected");
    }
    let mut tail = stream_part(&clients, stream.clone(), &after, now).await?;
    cascade_part(&clients, &stream, cascade, &mut tail, now).await
}
