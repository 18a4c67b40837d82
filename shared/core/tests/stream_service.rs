//! The stream service's pure parts (plans, metrics) and its batch plumbing with in-memory ports.
//! The AWS adapters and the whole worker are tested on the emulators in the workspace's
//! `tests/stream.rs`.

use sessionwarden_core::anomaly::{AnomalyType, Severity};
use sessionwarden_core::change::{Change, ChangeKind, Image, Malformed, SeqNo};
use sessionwarden_core::config::StreamConfig;
use sessionwarden_core::fake::{vars, Mem};
use sessionwarden_core::ports::EndOutcome;
use sessionwarden_core::session::{SessionId, Status};
use sessionwarden_core::stream::plan::{self, Contain, Step};
use sessionwarden_core::stream::report::{metrics_of, StreamReport};
use sessionwarden_core::stream::{process_batch, reading};

const NOW: i64 = 1_800_000_000;

fn image(user: Option<&str>) -> Image {
    Image {
        user_id: user.map(String::from),
        tenant_id: Some("acme".into()),
        status: Some(Status::Active),
        created_at: Some(NOW - 60),
        last_activity_at: Some(NOW - 10),
        ..Default::default()
    }
}

fn modify(seq: &str, id: &str, old: Image, new: Image) -> Change {
    Change {
        seq: SeqNo(seq.into()),
        kind: ChangeKind::Modify,
        session_id: SessionId::new(id),
        old: Some(old),
        new: Some(new),
        by_ttl: false,
        at: NOW,
    }
}

#[test]
fn the_tenant_dimension_is_opt_in_and_capped() {
    let anomalies: Vec<_> = (0..5)
        .map(|i| {
            (
                AnomalyType::SessionFixation,
                Severity::Medium,
                Some(format!("tenant-{i}")),
            )
        })
        .collect();
    let off = StreamConfig::from_source(&vars(&[])).unwrap();
    let b = metrics_of(&StreamReport::default(), &anomalies, &off);
    assert!(b
        .iter()
        .all(|(k, _, _)| k.dimensions.iter().all(|(d, _)| *d != "Tenant")));
    let on = StreamConfig::from_source(&vars(&[
        ("METRICS_TENANT_DIMENSION", "true"),
        ("METRICS_TENANT_DIMENSION_MAX", "2"),
    ]))
    .unwrap();
    let b = metrics_of(&StreamReport::default(), &anomalies, &on);
    let tenant = |t: &str| {
        b.get(
            "AnomaliesDetected",
            &[("Type", "SESSION_FIXATION"), ("Tenant", t)],
        )
    };
    assert_eq!(
        (tenant("tenant-0"), tenant("tenant-1"), tenant("other")),
        (Some(1.0), Some(1.0), Some(3.0))
    );
    assert_eq!(tenant("tenant-2"), None);
}

#[test]
fn a_touch_plans_nothing_and_a_user_change_plans_one_contained_response() {
    let cfg = StreamConfig::from_source(&vars(&[])).unwrap();
    let mut touched = image(Some("u-1"));
    touched.last_activity_at = Some(NOW);
    let touch = modify("1", "s-1", image(Some("u-1")), touched);
    let p = plan::decide(&touch, None, &cfg, NOW);
    assert!(p.steps.is_empty() && p.cascades.is_empty());

    let bleed = modify("2", "s-1", image(Some("u-1")), image(Some("u-2")));
    let p = plan::decide(&bleed, None, &cfg, NOW);
    let [Step::Respond(r)] = p.steps.as_slice() else {
        panic!("one response expected, got {:?}", p.steps);
    };
    assert_eq!(r.finding.kind, AnomalyType::SessionUserChanged);
    assert!(r.alert, "CRITICAL passes the default threshold");
    assert!(matches!(r.containment, Contain::EndSession(..)));
    assert!(
        !r.gate.subject.contains("s-1"),
        "the gate holds a digest, never the raw session ID"
    );
    assert_eq!(
        r.containment.action(Some(EndOutcome::Ended)),
        "session terminated (terminationReason containment)"
    );
}

#[test]
fn fixation_binds_the_user_before_it_responds() {
    let cfg = StreamConfig::from_source(&vars(&[])).unwrap();
    let fixation = modify("3", "s-2", image(None), image(Some("u-9")));
    let p = plan::decide(&fixation, None, &cfg, NOW);
    assert!(
        matches!(p.steps.as_slice(), [Step::Bind { user, .. }, Step::Respond(r)]
            if user == "u-9" && r.finding.kind == AnomalyType::SessionFixation),
        "{:?}",
        p.steps
    );
}

#[tokio::test]
async fn a_malformed_record_is_dead_lettered_and_the_rest_completes() {
    let mem = Mem::default();
    let cfg = StreamConfig::from_source(&vars(&[])).unwrap();
    let records = vec![
        serde_json::json!({"seq": "10", "user": "u-2"}),
        serde_json::json!({"seq": "11", "broken": true}),
    ];
    let parse = |r: &serde_json::Value| {
        let seq = r["seq"].as_str().unwrap_or_default().to_string();
        if r.get("broken").is_some() {
            return Err(Malformed {
                seq: Some(seq),
                reason: "broken".into(),
            });
        }
        Ok(Some(modify(
            &seq,
            "s-3",
            image(Some("u-1")),
            image(Some("u-2")),
        )))
    };
    let out = process_batch(
        &mem.ports(),
        &cfg,
        records.clone(),
        reading(parse),
        NOW,
        &plenty(),
    )
    .await;
    assert_eq!(out.failed_from, None);
    assert_eq!((out.report.processed, out.report.malformed), (1, 1));
    let st = mem.state();
    assert_eq!(st.letters.len(), 1);
    assert_eq!(st.letters[0].seq.as_deref(), Some("11"));
    assert_eq!(st.letters[0].raw, records[1], "dead-lettered raw");
    assert_eq!(st.alerts.len(), 1);
    assert_eq!(st.ended, ["s-3"], "containment ended the session");
    assert_eq!(st.metrics.len(), 1, "one metrics flush per batch");
}

/// Lambda redelivers a batch from its failure point, so a malformed record after that point
/// comes again: it is dead-lettered by the delivery that gets past it, once, and every
/// per-record count (processed, malformed) adds up to the batch over both deliveries.
#[tokio::test]
async fn a_malformed_record_after_the_failure_point_is_dead_lettered_once_over_redeliveries() {
    let mem = Mem::default();
    mem.state().failing_ends.push("fails-once-1".into());
    let cfg = StreamConfig::from_source(&vars(&[])).unwrap();
    // Three bleeds (the second's containment fails once), and a malformed record after it.
    let records = vec![
        serde_json::json!({"seq": "10", "id": "ok-0", "user": "u-9"}),
        serde_json::json!({"seq": "11", "id": "fails-once-1", "user": "u-2"}),
        serde_json::json!({"seq": "12", "broken": true}),
        serde_json::json!({"seq": "13", "id": "ok-3", "user": "u-3"}),
    ];
    let parse = |r: &serde_json::Value| {
        let seq = r["seq"].as_str().unwrap_or_default().to_string();
        if r.get("broken").is_some() {
            return Err(Malformed {
                seq: Some(seq),
                reason: "broken".into(),
            });
        }
        let new = r["user"].as_str();
        Ok(Some(modify(
            &seq,
            r["id"].as_str().unwrap(),
            image(Some("u-1")),
            image(new),
        )))
    };
    let first = process_batch(
        &mem.ports(),
        &cfg,
        records.clone(),
        reading(parse),
        NOW,
        &plenty(),
    )
    .await;
    assert_eq!(first.failed_from, Some(SeqNo("11".into())));
    assert!(mem.state().letters.is_empty(), "left for the redelivery");
    assert_eq!((first.report.processed, first.report.malformed), (1, 0));

    mem.state().failing_ends.clear();
    let second = process_batch(
        &mem.ports(),
        &cfg,
        records[1..].to_vec(),
        reading(parse),
        NOW,
        &plenty(),
    )
    .await;
    assert_eq!(second.failed_from, None);
    let st = mem.state();
    assert_eq!(st.letters.len(), 1, "{:?}", st.letters);
    assert_eq!(st.letters[0].seq.as_deref(), Some("12"));
    assert_eq!(
        first.report.processed + second.report.processed,
        3,
        "each good record counted once"
    );
    assert_eq!(first.report.malformed + second.report.malformed, 1);
    // Effects count once too: each of the three bleeds ended its session once, although the
    // record after the failure point was contained in both deliveries.
    assert_eq!(
        first.report.sessions_terminated + second.report.sessions_terminated,
        3,
        "{:?} {:?}",
        first.report,
        second.report
    );
    assert_eq!(
        first.report.alerts_suppressed + second.report.alerts_suppressed,
        0
    );
}

fn plenty() -> sessionwarden_core::deadline::EpochDeadline {
    sessionwarden_core::deadline::EpochDeadline::in_from_now(std::time::Duration::from_secs(60))
}

/// Only a session that a child named as its parent asks for a family cascade when it ends: the
/// child's INSERT marks the parent (in the claim, so at no extra request), and an ended session
/// without a marker costs no message. Marks from an earlier batch are read back from the store;
/// `FAMILY_CASCADES=always` asks for every ended session, as before markers existed.
#[tokio::test]
async fn only_marked_parents_ask_for_a_family_cascade() {
    let ended = |mut i: Image| {
        i.status = Some(Status::Terminated);
        i.termination_reason = Some("logout".into());
        i
    };
    let insert = |seq: &str, id: &str, parent: Option<&str>| {
        let mut new = image(Some("u-1"));
        new.parent_session_id = parent.map(SessionId::new);
        Change {
            seq: SeqNo(seq.into()),
            kind: ChangeKind::Insert,
            session_id: SessionId::new(id),
            old: None,
            new: Some(new),
            by_ttl: false,
            at: NOW,
        }
    };
    let logout =
        |seq: &str, id: &str| modify(seq, id, image(Some("u-1")), ended(image(Some("u-1"))));
    let run = |mem: Mem, cfg: StreamConfig, changes: Vec<Change>| async move {
        let records: Vec<serde_json::Value> = (0..changes.len()).map(|i| i.into()).collect();
        let parse = |r: &serde_json::Value| Ok(Some(changes[r.as_u64().unwrap() as usize].clone()));
        process_batch(
            &mem.ports(),
            &cfg,
            records.clone(),
            reading(parse),
            NOW,
            &plenty(),
        )
        .await
    };
    let cfg = StreamConfig::from_source(&vars(&[])).unwrap();
    let family_of = |mem: &Mem| -> Vec<String> {
        let mut v: Vec<String> = mem
            .state()
            .queued
            .iter()
            .filter(|m| m.scope == "family")
            .filter_map(|m| m.session_id.clone())
            .collect();
        v.sort();
        v
    };

    // Batch 1: "parent" gets a child; "lonely" and the parent of a same-batch child end.
    let mem = Mem::default();
    let out = run(
        mem.clone(),
        cfg.clone(),
        vec![
            insert("1", "child", Some("parent")),
            insert("2", "kid", Some("early")),
            logout("3", "early"),
            logout("4", "lonely"),
        ],
    )
    .await;
    assert_eq!(out.failed_from, None);
    assert_eq!(family_of(&mem), ["early"], "a same-batch mark counts");
    assert_eq!(
        (
            out.report.cascades_requested,
            out.report.family_cascades_skipped
        ),
        (1, 1)
    );
    // Batch 2: the parent ends; its mark comes from the store.
    let out = run(mem.clone(), cfg.clone(), vec![logout("5", "parent")]).await;
    assert_eq!(family_of(&mem), ["early", "parent"]);
    assert_eq!(out.report.family_cascades_skipped, 0);

    // FAMILY_CASCADES=always: every ended session asks.
    let always = StreamConfig::from_source(&vars(&[("FAMILY_CASCADES", "always")])).unwrap();
    let mem = Mem::default();
    let out = run(mem.clone(), always, vec![logout("6", "lonely")]).await;
    assert_eq!(family_of(&mem), ["lonely"]);
    assert_eq!(out.report.family_cascades_skipped, 0);
    assert!(
        StreamConfig::from_source(&vars(&[("FAMILY_CASCADES", "some")]))
            .unwrap_err()
            .to_string()
            .contains("FAMILY_CASCADES")
    );
}

/// A storm digest does not depend on the order in which the batch's sessions finished (they run
/// concurrently): the same alerts in any order give the same message, with the most severe
/// alerts first among its examples. So a redelivered batch sends the same digest.
#[test]
fn a_digest_is_the_same_whatever_order_its_alerts_came_in() {
    use sessionwarden_core::alert::{digest, Alert, RenderContext};
    use sessionwarden_core::session_ref::SessionRefKey;
    let key = SessionRefKey::new(b"0123456789abcdef".to_vec()).unwrap();
    let ctx = RenderContext {
        key: &key,
        runbook_base_url: "https://runbooks.example",
        now: NOW,
    };
    let alert = |i: usize, severity: Severity| Alert {
        id: format!("alert-{i:02}"),
        kind: "SESSION_CONTEXT_CHANGED".into(),
        severity,
        tenant: "acme".into(),
        subject: format!("subject {i}"),
        text: String::new(),
        document: serde_json::json!({ "n": i }),
    };
    let mut alerts: Vec<Alert> = (0..12)
        .map(|i| {
            alert(
                i,
                if i == 9 {
                    Severity::Critical
                } else {
                    Severity::Low
                },
            )
        })
        .collect();
    let first = digest(&alerts, &ctx);
    alerts.reverse();
    let again = digest(&alerts, &ctx);
    assert_eq!(first.id, again.id);
    assert_eq!(first.document, again.document);
    assert_eq!(first.text, again.text);
    assert_eq!(
        first.document["examples"][0]["n"], 9,
        "the most severe first"
    );
}

/// A batch of `n` client changes (Firefox on Windows to Safari on iPhone), one per session,
/// from `ip` before to `to` after, run through the whole service with `cfg`.
async fn context_changes(
    cfg: &StreamConfig,
    n: usize,
    ip: (&str, &str),
) -> (Mem, sessionwarden_core::stream::BatchOutcome) {
    const FIREFOX: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0";
    const SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
    let with = |ua: &str, ip: &str| Image {
        user_agent: Some(ua.into()),
        ip_address: Some(ip.into()),
        ..image(Some("u-1"))
    };
    let changes: Vec<Change> = (0..n)
        .map(|i| {
            modify(
                &(100 + i).to_string(),
                &format!("ctx-{i}"),
                with(FIREFOX, ip.0),
                with(SAFARI, ip.1),
            )
        })
        .collect();
    let mem = Mem::default();
    let records: Vec<serde_json::Value> = (0..n).map(|i| i.into()).collect();
    let parse = |r: &serde_json::Value| Ok(Some(changes[r.as_u64().unwrap() as usize].clone()));
    let out = process_batch(&mem.ports(), cfg, records, reading(parse), NOW, &plenty()).await;
    assert_eq!(out.failed_from, None);
    (mem, out)
}

/// The `AnomaliesDetected{Type=SESSION_CONTEXT_CHANGED,Severity=<severity>}` count of a run.
fn context_anomalies(mem: &Mem, severity: &str) -> Option<f64> {
    mem.state().metrics[0].get(
        "AnomaliesDetected",
        &[("Type", "SESSION_CONTEXT_CHANGED"), ("Severity", severity)],
    )
}

const SAME_NETWORK: (&str, &str) = ("198.51.100.1", "198.51.100.2");
const NEW_NETWORK: (&str, &str) = ("198.51.100.1", "203.0.113.9");

/// Issue 12: `SEVERITY_<TYPE>` is the severity everywhere it matters. By default 12 context
/// changes (past the storm threshold of 10) are LOW and fold into one digest; configured
/// CRITICAL, each alerts on its own as CRITICAL (never folded) and is counted as CRITICAL.
#[tokio::test]
async fn a_configured_severity_decides_the_alert_the_storm_split_and_the_metrics() {
    let default = StreamConfig::from_source(&vars(&[])).unwrap();
    let (mem, out) = context_changes(&default, 12, SAME_NETWORK).await;
    {
        let st = mem.state();
        assert_eq!(st.alerts.len(), 1, "one digest");
        assert_eq!(st.alerts[0].document["type"], "DIGEST");
        assert_eq!(st.alerts[0].severity, Severity::Low);
    }
    assert_eq!(out.report.alerts_in_digest, 12);
    assert_eq!(context_anomalies(&mem, "LOW"), Some(12.0));

    let critical =
        StreamConfig::from_source(&vars(&[("SEVERITY_SESSION_CONTEXT_CHANGED", "CRITICAL")]))
            .unwrap();
    let (mem, out) = context_changes(&critical, 12, SAME_NETWORK).await;
    assert_eq!(out.report.alerts_in_digest, 0, "CRITICAL is never folded");
    assert_eq!(out.report.alerts_published, 12);
    {
        let st = mem.state();
        assert_eq!(st.alerts.len(), 12);
        for a in &st.alerts {
            assert_eq!(
                (a.kind.as_str(), a.severity),
                ("SESSION_CONTEXT_CHANGED", Severity::Critical)
            );
            assert_eq!(a.document["severity"], "CRITICAL");
            assert!(a.subject.starts_with("[CRITICAL] "), "{}", a.subject);
        }
    }
    assert_eq!(context_anomalies(&mem, "CRITICAL"), Some(12.0));
    assert_eq!(context_anomalies(&mem, "LOW"), None);
}

/// Configured INFO, a context change stays below the default `ALERT_MIN_SEVERITY=LOW`: no
/// alert, still counted (as INFO). Its stronger variant, a client change from another network,
/// stays a step above the configured severity (LOW), so it still alerts; by default it is MEDIUM.
#[tokio::test]
async fn a_context_change_configured_info_does_not_alert_and_a_new_network_stays_a_step_above() {
    let info =
        StreamConfig::from_source(&vars(&[("SEVERITY_SESSION_CONTEXT_CHANGED", "info")])).unwrap();
    let (mem, out) = context_changes(&info, 2, SAME_NETWORK).await;
    assert!(mem.state().alerts.is_empty(), "{:?}", mem.state().alerts);
    assert_eq!(out.report.alerts_published, 0);
    assert_eq!(out.report.anomalies["SESSION_CONTEXT_CHANGED"], 2);
    assert_eq!(context_anomalies(&mem, "INFO"), Some(2.0));

    let (mem, _) = context_changes(&info, 1, NEW_NETWORK).await;
    let alerts = mem.state().alerts.clone();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].severity, Severity::Low);

    let default = StreamConfig::from_source(&vars(&[])).unwrap();
    let (mem, _) = context_changes(&default, 1, NEW_NETWORK).await;
    let alerts = mem.state().alerts.clone();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.severity, Severity::Medium);
    assert_eq!(
        a.document["evidence"][1],
        serde_json::json!({"field": "network", "before": "198.51.100.0/24", "after": "203.0.113.0/24"})
    );
    assert!(
        a.text.contains("client: ") && a.text.contains("network: "),
        "{}",
        a.text
    );
    assert_eq!(context_anomalies(&mem, "MEDIUM"), Some(1.0));
}
