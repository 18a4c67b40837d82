//! The demo's stream part: injected anomalies, the stream worker's real handler, and the alerts
//! as the on-call subscriber receives them.

use sessionwarden_aws::{load_sdk_config, AwsClients};
use sessionwarden_core::config::StreamConfig;
use sessionwarden_core::session::{Session, Status};
use sessionwarden_local::metrics::read_back;
use sessionwarden_local::seed::SeedTable;
use std::collections::BTreeMap;

/// Part two: the stream worker on the emulator's real stream, with a bleed, a zombie and a
/// fixation injected into ordinary traffic; alerts printed as an on-call subscriber gets them.
pub(super) async fn stream_part(
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
        &config.wiring.alerts_topic_arn,
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
    let mut docs = print_alerts(&messages)?;
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

    let series = recent_series(clients, &namespace, now).await?;
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

/// Prints alerts as the on-call subscriber received them (SNS envelopes from an SQS inbox):
/// subject, message attributes and text. Returns each alert's JSON document.
pub(super) fn print_alerts(messages: &[String]) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut docs = Vec::new();
    for raw in messages {
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
    Ok(docs)
}

/// Every series of `namespace` read back over the ten minutes around `now`.
pub(super) async fn recent_series(
    clients: &AwsClients,
    namespace: &str,
    now: i64,
) -> Result<Vec<sessionwarden_local::metrics::SeriesSum>, sessionwarden_aws::PortError> {
    read_back(&clients.cloudwatch, namespace, now - 600, now + 600).await
}

/// Prints metric series as `Name{Dim=Value,...}  sum`, one per line.
pub(super) fn print_series<'a>(
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
