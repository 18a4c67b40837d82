//! The demo's cascade part: logout everywhere with its cascade tree, and a tenant suspension
//! with continuations.

use super::stream::recent_series;
use super::{print_series, H};
use sessionwarden_aws::AwsClients;
use sessionwarden_core::config::{CascadeConfig, StreamConfig};
use sessionwarden_core::ports::CascadeQueue as _;
use sessionwarden_core::session::{Session, SessionId, Status};
use sessionwarden_local::seed::SeedTable;
use std::collections::BTreeMap;

/// Part three: cascades. The stream worker's pending family requests are drained first, then a
/// logout-everywhere and a tenant suspension run through the real queue, with the stream worker in
/// the loop; the cascade tree and the counts are printed.
pub(super) async fn cascade_part(
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
    let queue = SqsCascadeQueue::new(clients.sqs.clone(), config.wiring.cascade_queue_url.clone());
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
        &small.wiring.alerts_topic_arn,
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
    let series = recent_series(clients, &config.common.metrics_namespace, now).await?;
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
