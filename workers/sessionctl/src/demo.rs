//! The demo: seeds a realistic mix of sessions (three tenants, browsers and mobile apps,
//! anonymous visitors, strict per-session timeouts, sessions that ended earlier), runs the
//! cleanup worker's real handler against the emulator, and prints what an operator would want
//! to see: what expired and why, what was left alone, the AWS requests it cost, and the metrics
//! read back from CloudWatch.

use sessionwarden_core::ports::CascadeQueue as _;
use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sessionwarden_aws::{load_sdk_config, AwsClients, RequestCounter};
use sessionwarden_core::config::{CascadeConfig, CleanupConfig, StreamConfig};
use sessionwarden_core::expiry::ExpiryPolicy;
use sessionwarden_core::session::{Session, SessionId, Status, TerminationReason};
use sessionwarden_local::metrics::read_back;
use sessionwarden_local::seed::SeedTable;

const H: i64 = 3600;
const M: i64 = 60;

/// One seeded session and the outcome the demo expects for it.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// The session as written.
    pub session: Session,
    /// What should happen to it: `idle`, `absolute` or `stays`.
    pub expect: &'static str,
}

/// The demo's traffic: about 120 sessions at `now`, deterministic for a given seed.
pub fn demo_sessions(now: i64, policy: &ExpiryPolicy, seed: u64) -> Vec<Seeded> {
    let mut rng = StdRng::seed_from_u64(seed);
    let tenants = ["acme", "globex", "initech"];
    let agents = [
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36",
        "AcmeMobile/4.2 (iPhone; iOS 18.1)",
        "okhttp/4.12.0 (Android 15)",
    ];
    let mut out = Vec::new();
    let make =
        |rng: &mut StdRng, user: Option<String>, tenant: &str, created_ago: i64, idle_for: i64| {
            let id = SessionId::new(format!("sess_{:032x}", rng.random::<u128>()));
            let mut s = Session::active(id, now - created_ago);
            s.last_activity_at = now - idle_for;
            s.user_id = user;
            s.tenant_id = Some(tenant.to_string());
            s.ip_address = Some(format!("198.51.100.{}", rng.random_range(1..255)));
            s.user_agent = Some(agents[rng.random_range(0..agents.len())].to_string());
            s
        };
    let user = |rng: &mut StdRng| format!("u-{:03}", rng.random_range(1..=30));
    let tenant = |rng: &mut StdRng| tenants[rng.random_range(0..tenants.len())];

    // Busy, recent sessions: the bulk of the table.
    for _ in 0..80 {
        let (u, t) = (user(&mut rng), tenant(&mut rng));
        let created = rng.random_range(10 * M..20 * H);
        let idle = rng.random_range(0..(7 * H).min(created));
        out.push(Seeded {
            session: make(&mut rng, Some(u), t, created, idle),
            expect: "stays",
        });
    }
    // Idle past the default 8 h: closed laptops, abandoned tabs.
    for _ in 0..15 {
        let (u, t) = (user(&mut rng), tenant(&mut rng));
        let idle = rng.random_range(8 * H + 5 * M..20 * H);
        let created = idle + rng.random_range(0..2 * H);
        out.push(Seeded {
            session: make(&mut rng, Some(u), t, created, idle),
            expect: "idle",
        });
    }
    // Still clicking, but older than the 24 h lifetime.
    for _ in 0..8 {
        let (u, t) = (user(&mut rng), tenant(&mut rng));
        let created = rng.random_range(24 * H + 10 * M..40 * H);
        let idle = rng.random_range(0..H);
        out.push(Seeded {
            session: make(&mut rng, Some(u), t, created, idle),
            expect: "absolute",
        });
    }
    // An admin console with a strict 15-minute idle timeout.
    for idle in [4 * M, 20 * M, 45 * M, 2 * H] {
        let u = user(&mut rng);
        let mut s = make(&mut rng, Some(u), "acme", 3 * H, idle);
        s.idle_timeout_seconds = Some(15 * M);
        out.push(Seeded {
            session: s,
            expect: if idle > 15 * M { "idle" } else { "stays" },
        });
    }
    // A kiosk with a generous 12 h idle timeout: idle 9-11 h and still valid.
    for idle in [9 * H, 10 * H, 11 * H] {
        let u = user(&mut rng);
        let mut s = make(&mut rng, Some(u), "globex", 12 * H, idle);
        s.idle_timeout_seconds = Some(12 * H);
        out.push(Seeded {
            session: s,
            expect: "stays",
        });
    }
    // Contractor sessions with an explicit end of engagement.
    for (ends_in, expect) in [(-10 * M, "absolute"), (-M, "absolute"), (2 * H, "stays")] {
        let u = user(&mut rng);
        let mut s = make(&mut rng, Some(u), "initech", 5 * H, 5 * M);
        s.absolute_expires_at = Some(now + ends_in);
        out.push(Seeded { session: s, expect });
    }
    // Anonymous visitors (no userId yet).
    for idle in [10 * M, 3 * H, 9 * H, 14 * H] {
        let t = tenant(&mut rng);
        let s = make(&mut rng, None, t, idle + 30 * M, idle);
        out.push(Seeded {
            session: s,
            expect: if idle >= 8 * H { "idle" } else { "stays" },
        });
    }
    // Sessions that ended earlier, some long past their deadlines: never touched again.
    for (status, reason) in [
        (Status::Terminated, TerminationReason::Logout),
        (Status::Terminated, TerminationReason::Logout),
        (Status::Terminated, TerminationReason::Admin),
        (Status::Expired, TerminationReason::Idle),
        (Status::Expired, TerminationReason::Absolute),
    ] {
        let (u, t) = (user(&mut rng), tenant(&mut rng));
        let mut s = make(&mut rng, Some(u), t, 30 * H, 20 * H);
        s.status = status;
        s.termination_reason = Some(reason);
        s.terminated_at = Some(now - 19 * H);
        s.expires_at = Some(policy.retain_until(now - 19 * H));
        out.push(Seeded {
            session: s,
            expect: "stays",
        });
    }
    // The app writes sweepAt on every touch (README: "sweepAt").
    for seeded in &mut out {
        seeded.session.sweep_at = policy.sweep_at(&seeded.session.clock());
    }
    out
}

fn ago(secs: i64) -> String {
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
    let clients = AwsClients::counted(&load_sdk_config().await, &counter);
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

    let series = read_back(
        &clients.cloudwatch,
        &config.common.metrics_namespace,
        now - 600,
        now + 600,
    )
    .await?;
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
/// Part two: the stream worker on the emulator's real stream, with a bleed, a zombie and a
/// fixation injected into ordinary traffic; alerts printed as an on-call subscriber gets them.
async fn stream_part(
    clients: &AwsClients,
    config: StreamConfig,
    after: &BTreeMap<String, Session>,
    now: i64,
) -> anyhow::Result<sessionwarden_local::streams::StreamTail> {
    let key = config.common.session_ref_key.clone();
    let namespace = config.common.metrics_namespace.clone();
    let table = SeedTable::new(
        clients.dynamodb.clone(),
        config.common.sessions_table.clone(),
    );
    let inbox = sessionwarden_local::provision::subscribe_inbox(
        clients,
        &config.alerts_topic_arn,
        &format!("demo-inbox-{}", rand::random::<u32>()),
    )
    .await?;
    let arn = sessionwarden_local::provision::stream_arn(clients, table.table())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the sessions table has no stream"))?;
    let mut tail = sessionwarden_local::streams::StreamTail::from_start(
        sessionwarden_local::streams_client(&load_sdk_config().await, None),
        arn,
    )
    .await?;

    println!("\n== sessionwarden demo: stream anomaly detection ==");
    let (response, base) = crate::run_stream_once(clients, config.clone(), Some(&mut tail)).await?;
    println!(
        "Baseline: {} stream records (the seeded sessions and cleanup's expiries) -> {} anomalies, {} alerts, {} batch item failures.",
        base.records,
        base.anomalies.values().sum::<u64>(),
        base.alerts_published,
        response.batch_item_failures.len()
    );

    // Ordinary traffic: a couple of dozen touches, some from two tabs at once.
    let active: Vec<&Session> = after
        .values()
        .filter(|s| s.status == Status::Active && s.user_id.is_some())
        .collect();
    let victim = active
        .iter()
        .rev()
        .find(|s| s.tenant_id.as_deref() == Some("acme"))
        .copied()
        .ok_or_else(|| anyhow::anyhow!("no acme session to bleed"))?;
    let mut touched = Vec::new();
    for (i, s) in active
        .iter()
        .filter(|s| s.session_id != victim.session_id)
        .take(24)
        .enumerate()
    {
        let mut t = (*s).clone();
        t.last_activity_at = now - (i as i64 % 3);
        t.sweep_at = config.common.expiry.sweep_at(&t.clock());
        touched.push(t);
    }
    // A bleed: one session ID now carries another user of the same tenant.
    let mut bleed = victim.clone();
    bleed.user_id = Some("u-999".into());
    bleed.last_activity_at = now;
    touched.push(bleed.clone());
    // A zombie: the app keeps writing to a session that cleanup already expired.
    let mut zombie = after
        .values()
        .find(|s| {
            s.status == Status::Expired
                && s.terminated_at.is_some_and(|t| t >= now - 600)
                && s.user_id.is_some()
        })
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no expired session for the zombie"))?;
    zombie.last_activity_at = now;
    touched.push(zombie.clone());
    // A fixation: an anonymous visitor logs in and keeps the same session ID.
    let mut fixation = after
        .values()
        .find(|s| s.status == Status::Active && s.user_id.is_none())
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no anonymous session for the fixation"))?;
    fixation.user_id = Some("u-042".into());
    touched.push(fixation.clone());
    table.put_sessions(&touched).await?;
    println!(
        "Injected: {} ordinary touches, plus a bleed ({}), a zombie ({}) and a fixation ({}).",
        touched.len() - 3,
        key.of(&bleed.session_id),
        key.of(&zombie.session_id),
        key.of(&fixation.session_id)
    );

    let (response, report) =
        crate::run_stream_once(clients, config.clone(), Some(&mut tail)).await?;
    println!(
        "Stream worker: {} records -> anomalies {:?}, {} alerts published, {} sessions terminated by containment, {} batch item failures.",
        report.records,
        report.anomalies,
        report.alerts_published,
        report.sessions_terminated,
        response.batch_item_failures.len()
    );
    if let Some(Ok(c)) = table.get(&bleed.session_id).await? {
        println!(
            "The bleeding session is now {} (terminationReason {}).",
            c.status,
            c.termination_reason.map(|r| r.as_str()).unwrap_or("-")
        );
    }

    println!("\nAlerts, as the on-call subscriber received them:");
    let messages = sessionwarden_local::provision::drain_queue(clients, &inbox).await?;
    let mut docs = Vec::new();
    for raw in &messages {
        let envelope: serde_json::Value = serde_json::from_str(raw)?;
        let doc: serde_json::Value =
            serde_json::from_str(envelope["Message"].as_str().unwrap_or("{}"))?;
        let attrs = envelope["MessageAttributes"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v["Value"].as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        println!("{}", "-".repeat(100));
        println!("Subject: {}", envelope["Subject"].as_str().unwrap_or(""));
        println!("Attributes: {attrs}\n");
        println!("{}", doc["text"].as_str().unwrap_or(""));
        docs.push(doc);
    }
    if let Some(doc) = docs
        .iter_mut()
        .find(|d| d["type"] == "SESSION_USER_CHANGED")
    {
        if let Some(o) = doc.as_object_mut() {
            o.remove("text");
        }
        println!(
            "{}\nThe same alert as the JSON document every non-email subscriber gets (text field omitted):\n{}",
            "-".repeat(100),
            serde_json::to_string_pretty(doc)?
        );
    }

    let series = read_back(&clients.cloudwatch, &namespace, now - 600, now + 600).await?;
    println!("\nStream metrics sent (read back from CloudWatch):");
    let stream_metrics = [
        "AnomaliesDetected",
        "AlertsPublished",
        "AlertsSuppressed",
        "StreamRecordsProcessed",
        "StreamRecordsMalformed",
        "SessionsDeletedByTtl",
        "SessionsTerminated",
        "SessionIpChanged",
    ];
    print_series(
        series
            .iter()
            .filter(|s| stream_metrics.contains(&s.name.as_str())),
        64,
    );
    let kinds: Vec<&str> = report.anomalies.keys().map(String::as_str).collect();
    for want in [
        "SESSION_USER_CHANGED",
        "ACTIVITY_AFTER_TERMINATION",
        "SESSION_FIXATION",
    ] {
        if !kinds.contains(&want) {
            anyhow::bail!("the demo expected a {want} anomaly, got {kinds:?}");
        }
    }
    if base.alerts_published > 0 || messages.len() != 3 {
        anyhow::bail!(
            "the demo expected 0 baseline alerts and 3 injected ones, got {} and {}",
            base.alerts_published,
            messages.len()
        );
    }
    Ok(tail)
}

/// Prints metric series as `Name{Dim=Value,...}  sum`, one per line.
fn print_series<'a>(
    series: impl Iterator<Item = &'a sessionwarden_local::metrics::SeriesSum>,
    width: usize,
) {
    for s in series {
        let dims = s
            .dimensions
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let name = if dims.is_empty() {
            s.name.clone()
        } else {
            format!("{}{{{dims}}}", s.name)
        };
        println!("  {name:<width$} {}", s.sum);
    }
}

/// Part three: cascades. The stream worker's pending family requests are drained first, then a
/// logout-everywhere and a tenant suspension run through the real queue, with the stream worker in
/// the loop; the cascade tree and the counts are printed.
async fn cascade_part(
    clients: &AwsClients,
    stream: &StreamConfig,
    config: CascadeConfig,
    tail: &mut sessionwarden_local::streams::StreamTail,
    now: i64,
) -> anyhow::Result<()> {
    use sessionwarden_aws::cascade_queue::SqsCascadeQueue;
    use sessionwarden_core::cascade_message::{request, Target};
    let key = config.common.session_ref_key.clone();
    let table = SeedTable::new(
        clients.dynamodb.clone(),
        config.common.sessions_table.clone(),
    );
    let queue = SqsCascadeQueue::new(clients.sqs.clone(), config.cascade_queue_url.clone());
    println!("\n== sessionwarden demo: cascades ==");
    let (pending, rounds) =
        crate::drain_cascades(clients, &config, Some((stream, &mut *tail))).await?;
    println!(
        "Pending: {} family cascades the stream worker requested for sessions that ended above (expiry, containment): {} children found, {} invocations.",
        pending.messages,
        pending.ended.values().sum::<u64>(),
        rounds
    );

    // A user with a family tree: a desktop session, a mobile app opened from it, a device
    // session opened from the app, a tablet, and a support agent's session opened on the desktop.
    let mk = |label: &str, user: &str, parent: Option<&SessionId>| {
        let mut s = Session::active(
            SessionId::new(format!("sess_demo_{label}_{:016x}", rand::random::<u64>())),
            now - 3 * H,
        );
        s.last_activity_at = now - 60;
        s.user_id = Some(user.into());
        s.tenant_id = Some("acme".into());
        s.parent_session_id = parent.cloned();
        s.sweep_at = config.common.expiry.sweep_at(&s.clock());
        s
    };
    let desktop = mk("desktop", "u-100", None);
    let mobile = mk("mobile", "u-100", Some(&desktop.session_id));
    let device = mk("device", "u-100", Some(&mobile.session_id));
    let tablet = mk("tablet", "u-100", None);
    let support = mk("support", "agent-7", Some(&desktop.session_id));
    let family = vec![desktop.clone(), mobile, device, tablet, support];
    let labels: BTreeMap<String, &str> = family
        .iter()
        .zip(["desktop", "mobile app", "device", "tablet", "support agent"])
        .map(|(s, l)| (s.session_id.expose().to_string(), l))
        .collect();
    table.put_sessions(&family).await?;
    crate::run_stream_once(clients, stream.clone(), Some(&mut *tail)).await?;

    let root = "demo-logout-u-100";
    queue
        .send(&[request(
            &Target::User("u-100".into()),
            "password-changed",
            "auth-service",
            Some(root.into()),
        )])
        .await?;
    println!("\nLogout everywhere: sessionctl revoke --user u-100 --reason password-changed --request-id {root}");
    let (report, rounds) =
        crate::drain_cascades(clients, &config, Some((stream, &mut *tail))).await?;
    println!(
        "  {} invocations, {} messages, {} index pages: ended {:?}, {} already ended, {} family sub-cascades.",
        rounds, report.messages, report.pages, report.ended, report.already_ended, report.sub_cascades
    );
    println!("  Cascade tree (sessions by reference; the support agent's session hangs off the desktop):");
    let now_sessions: BTreeMap<String, Session> = table
        .scan_all()
        .await?
        .into_iter()
        .filter_map(Result::ok)
        .filter(|s| labels.contains_key(s.session_id.expose()))
        .map(|s| (s.session_id.expose().to_string(), s))
        .collect();
    fn tree(
        id: &str,
        depth: usize,
        all: &BTreeMap<String, Session>,
        labels: &BTreeMap<String, &str>,
        key: &sessionwarden_core::session_ref::SessionRefKey,
    ) {
        let Some(s) = all.get(id) else { return };
        println!(
            "    {}{} {:<14} {:<7} {:<10} {:<14}",
            "   ".repeat(depth),
            if depth == 0 { "*" } else { "└─" },
            format!("{} ", key.of(&s.session_id)),
            s.user_id.as_deref().unwrap_or("-"),
            s.status.as_str(),
            format!(
                "{} {}",
                s.termination_reason.map(|r| r.as_str()).unwrap_or("-"),
                labels.get(id).unwrap_or(&"")
            )
        );
        for child in all
            .values()
            .filter(|c| c.parent_session_id.as_ref().map(|p| p.expose()) == Some(id))
        {
            tree(child.session_id.expose(), depth + 1, all, labels, key);
        }
    }
    for root_session in now_sessions
        .values()
        .filter(|s| s.parent_session_id.is_none())
    {
        tree(
            root_session.session_id.expose(),
            0,
            &now_sessions,
            &labels,
            &key,
        );
    }
    if now_sessions.values().any(|s| s.status == Status::Active) {
        anyhow::bail!("the logout-everywhere left sessions ACTIVE");
    }

    // A tenant suspension, in small pages so the continuations show.
    let small = CascadeConfig {
        page_size: 10,
        pages_per_message: 1,
        alert_threshold: 20,
        ..config.clone()
    };
    let inbox = sessionwarden_local::provision::subscribe_inbox(
        clients,
        &small.alerts_topic_arn,
        &format!("demo-cascade-inbox-{}", rand::random::<u32>()),
    )
    .await?;
    let in_tenant = table
        .scan_all()
        .await?
        .into_iter()
        .filter_map(Result::ok)
        .filter(|s| s.tenant_id.as_deref() == Some("initech"))
        .collect::<Vec<_>>();
    let active_before = in_tenant
        .iter()
        .filter(|s| s.status == Status::Active)
        .count();
    queue
        .send(&[request(
            &Target::Tenant("initech".into()),
            "tenant-suspended",
            "billing-service",
            Some("demo-suspend-initech".into()),
        )])
        .await?;
    println!(
        "\nTenant suspension: sessionctl revoke --tenant initech --reason tenant-suspended ({} sessions in initech, {} ACTIVE; page size 10, one page per message)",
        in_tenant.len(),
        active_before
    );
    let (report, rounds) =
        crate::drain_cascades(clients, &small, Some((stream, &mut *tail))).await?;
    println!(
        "  {} invocations, {} pages, {} continuations: ended {:?}; {} sessions had already ended and kept their reason.",
        rounds, report.pages, report.continuations, report.ended, report.already_ended
    );
    for raw in sessionwarden_local::provision::drain_queue(clients, &inbox).await? {
        let envelope: serde_json::Value = serde_json::from_str(&raw)?;
        println!(
            "  On-call was told: {}",
            envelope["Subject"].as_str().unwrap_or("")
        );
    }
    let left = table
        .scan_all()
        .await?
        .into_iter()
        .filter_map(Result::ok)
        .filter(|s| s.tenant_id.as_deref() == Some("initech") && s.status == Status::Active)
        .count();
    if left > 0 {
        anyhow::bail!("{left} initech sessions are still ACTIVE");
    }
    let series = read_back(
        &clients.cloudwatch,
        &config.common.metrics_namespace,
        now - 600,
        now + 600,
    )
    .await?;
    println!("\nCascade metrics sent (read back from CloudWatch):");
    let names = [
        "SessionsTerminated",
        "CascadeJobsStarted",
        "CascadeJobsCompleted",
        "CascadePages",
        "CascadeMessagesInvalid",
        "CascadesRequested",
    ];
    print_series(
        series.iter().filter(|s| names.contains(&s.name.as_str())),
        48,
    );
    Ok(())
}
