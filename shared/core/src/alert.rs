//! Alert rendering: what an on-call engineer receives. Pure: a [`Finding`] plus context becomes a
//! subject line (under 100 characters, no control characters), a readable text for email, one
//! stable JSON document for every other protocol, and the SNS message attributes subscribers
//! filter on. A session appears only as its keyed reference.

use serde_json::json;

use crate::anomaly::{AnomalyType, Finding, Severity, Subject};
use crate::session_ref::SessionRefKey;

/// Version of the JSON alert document; bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// SNS subjects must stay under 100 characters.
pub const MAX_SUBJECT_CHARS: usize = 99;

/// A rendered alert, ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// A stable ID, derived from the incident and not from the attempt, so a subscriber (or a FIFO
    /// topic's `MessageDeduplicationId`) can drop a message published twice. Sent as the
    /// `alertId` message attribute and in the document.
    pub id: String,
    /// Its type: an anomaly type, or a notice such as `CASCADE_COMPLETED` (a digest uses the most
    /// severe type it contains).
    pub kind: String,
    /// Its severity.
    pub severity: Severity,
    /// The tenant, or `none`.
    pub tenant: String,
    /// SNS `Subject`.
    pub subject: String,
    /// The email body.
    pub text: String,
    /// The document every other protocol receives.
    pub document: serde_json::Value,
}

/// What the renderer needs besides the finding.
#[derive(Debug, Clone)]
pub struct RenderContext<'a> {
    /// The session reference key.
    pub key: &'a SessionRefKey,
    /// `RUNBOOK_BASE_URL`.
    pub runbook_base_url: &'a str,
    /// Detection time, epoch seconds.
    pub now: i64,
}

/// The runbook link of a type: the base URL plus `#<type in lower case>`.
pub fn runbook(base: &str, kind: AnomalyType) -> String {
    format!(
        "{}#{}",
        base.trim_end_matches('/'),
        kind.as_str().to_ascii_lowercase().replace('_', "-")
    )
}

/// Removes control characters and truncates to `max` characters (on a char boundary).
pub fn clean_subject(s: &str, max: usize) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out: String = cleaned.chars().take(max).collect();
    if cleaned.chars().count() > max {
        out.pop();
        out.push('…');
    }
    out
}

fn iso(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Renders one finding. `action` says what sessionwarden did (e.g. "session terminated").
pub fn render(f: &Finding, action: &str, stream_seq: &str, ctx: &RenderContext<'_>) -> Alert {
    let tenant = f.tenant_id.clone().unwrap_or_else(|| "none".into());
    let session_ref = f.session_id().map(|id| ctx.key.of(id).to_string());
    let subject_of = match &f.subject {
        Subject::Session(_) => json!({"kind": "session", "sessionRef": session_ref}),
        Subject::User(u) => json!({"kind": "user", "userId": u}),
        Subject::Tenant(t) => json!({"kind": "tenant", "tenantId": t}),
    };
    let link = runbook(ctx.runbook_base_url, f.kind);
    let evidence: Vec<_> = f
        .evidence
        .iter()
        .map(|e| json!({"field": e.field, "before": e.before, "after": e.after}))
        .collect();
    let tenant_part = f
        .tenant_id
        .as_deref()
        .map(|t| format!(" (tenant {t})"))
        .unwrap_or_default();
    let subject = clean_subject(
        &format!(
            "[{}] sessionwarden: {}{}",
            f.severity(),
            f.headline,
            tenant_part
        ),
        MAX_SUBJECT_CHARS,
    );
    let show = |v: &Option<String>| {
        v.as_deref()
            .map(|s| format!("{s:?}"))
            .unwrap_or_else(|| "(absent)".into())
    };
    let mut text = format!("{} {} — {}\n\n", f.severity(), f.kind, f.headline);
    text.push_str(&format!(
        "Tenant:    {}\n",
        f.tenant_id.as_deref().unwrap_or("(none)")
    ));
    text.push_str(&format!(
        "Users:     {}\n",
        if f.users.is_empty() {
            "(none)".into()
        } else {
            f.users.join(" -> ")
        }
    ));
    match (&f.subject, &session_ref) {
        (Subject::Session(_), Some(r)) => text.push_str(&format!(
            "Session:   ref {r}  (resolve with: sessionctl resolve {r})\n"
        )),
        (Subject::User(u), _) => text.push_str(&format!("User:      {u}\n")),
        (Subject::Tenant(t), _) => text.push_str(&format!("Tenant:    {t} (whole tenant)\n")),
        _ => {}
    }
    text.push_str("Evidence:\n");
    for e in &f.evidence {
        text.push_str(&format!(
            "  {}: {} -> {}\n",
            e.field,
            show(&e.before),
            show(&e.after)
        ));
    }
    text.push_str(&format!("Action:    {action}\n"));
    text.push_str(&format!("Runbook:   {link}\n"));
    text.push_str(&format!(
        "Detected:  {} (stream record {stream_seq})\n",
        iso(ctx.now)
    ));
    let document = json!({
        "schemaVersion": SCHEMA_VERSION,
        "source": "sessionwarden-stream",
        "type": f.kind.as_str(),
        "severity": f.severity().as_str(),
        "headline": f.headline,
        "tenantId": f.tenant_id,
        "users": f.users,
        "sessionRef": session_ref,
        "subject": subject_of,
        "evidence": evidence,
        "action": action,
        "runbook": link,
        "detectedAt": iso(ctx.now),
        "streamSequenceNumber": stream_seq,
        "text": text,
    });
    Alert {
        id: String::new(),
        kind: f.kind.as_str().to_string(),
        severity: f.severity(),
        tenant,
        subject,
        text,
        document,
    }
}

impl Alert {
    /// The alert with its stable ID set, in the struct and in the document.
    pub fn identified(mut self, id: &str) -> Self {
        self.id = id.to_string();
        if let Some(doc) = self.document.as_object_mut() {
            doc.insert("alertId".into(), serde_json::Value::String(id.to_string()));
        }
        self
    }
}

/// An informational notice that a large cascade completed, so on-call knows it happened.
pub fn cascade_notice(
    scope: &str,
    subject: &str,
    ended: u64,
    root_id: &str,
    reason: &str,
    requested_by: &str,
    ctx: &RenderContext<'_>,
) -> Alert {
    let what = match scope {
        "tenant" => format!("tenant {subject}"),
        "user" => format!("user {subject}"),
        other => format!("{other} {subject}"),
    };
    let runbook = format!("{}#cascades", ctx.runbook_base_url.trim_end_matches('/'));
    let text = format!(
        "INFO CASCADE_COMPLETED — {what}: {ended} sessions ended\n\nReason:       {reason}\nRequested by: {requested_by}\nRoot request: {root_id}  (every ended session has terminatedBy = this ID)\nRunbook:      {runbook}\nCompleted:    {}\n",
        iso(ctx.now)
    );
    let document = json!({
        "schemaVersion": SCHEMA_VERSION,
        "source": "sessionwarden-cascade",
        "type": "CASCADE_COMPLETED",
        "severity": "INFO",
        "headline": format!("{what}: {ended} sessions ended"),
        "scope": scope,
        "subject": subject,
        "sessionsEnded": ended,
        "rootId": root_id,
        "reason": reason,
        "requestedBy": requested_by,
        "runbook": runbook,
        "detectedAt": iso(ctx.now),
        "text": text,
    });
    Alert {
        id: String::new(),
        kind: "CASCADE_COMPLETED".into(),
        severity: Severity::Info,
        tenant: if scope == "tenant" {
            subject.to_string()
        } else {
            "none".into()
        },
        subject: clean_subject(
            &format!("[INFO] sessionwarden: {what} cascade ended {ended} sessions"),
            MAX_SUBJECT_CHARS,
        ),
        text,
        document,
    }
    .identified(
        &ctx.key
            .reference(&format!("cascade|{root_id}|{scope}|{subject}"))
            .to_string(),
    )
}

/// The INFO notice that the per-user session limit ended sessions of one user: one per user per
/// dedup window (its gate), never one per session.
pub fn limit_notice(
    user: &str,
    tenant: Option<&str>,
    ended: usize,
    limit: u32,
    policy: &str,
    ctx: &RenderContext<'_>,
) -> Alert {
    let runbook = format!(
        "{}#session-limit",
        ctx.runbook_base_url.trim_end_matches('/')
    );
    let headline = format!("user {user} held more than {limit} sessions: {ended} ended ({policy})");
    let text = format!(
        "INFO SESSION_LIMIT_ENFORCED — {headline}\n\nUser:     {user}\nTenant:   {}\nLimit:    {limit} (MAX_SESSIONS_PER_USER)\nPolicy:   {policy}\nEnded:    {ended} (terminationReason limit; one session-ended event each)\nRunbook:  {runbook}\nDetected: {}\n",
        tenant.unwrap_or("none"),
        iso(ctx.now)
    );
    let document = json!({
        "schemaVersion": SCHEMA_VERSION,
        "source": "sessionwarden-stream",
        "type": "SESSION_LIMIT_ENFORCED",
        "severity": "INFO",
        "headline": headline,
        "userId": user,
        "tenantId": tenant,
        "limit": limit,
        "policy": policy,
        "sessionsEnded": ended,
        "runbook": runbook,
        "detectedAt": iso(ctx.now),
        "text": text,
    });
    Alert {
        id: String::new(),
        kind: "SESSION_LIMIT_ENFORCED".into(),
        severity: Severity::Info,
        tenant: tenant.unwrap_or("none").to_string(),
        subject: clean_subject(
            &format!("[INFO] sessionwarden: {headline}"),
            MAX_SUBJECT_CHARS,
        ),
        text,
        document,
    }
}

/// One digest instead of many alerts, for alert storms: counts per type and a few examples.
pub fn digest(alerts: &[Alert], ctx: &RenderContext<'_>) -> Alert {
    // The most severe first, then by ID: the examples do not depend on the order in which the
    // batch's sessions finished, so a redelivery shows the same ones.
    let mut sorted: Vec<&Alert> = alerts.iter().collect();
    sorted.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
    let mut counts: std::collections::BTreeMap<(Severity, &str), usize> = Default::default();
    for a in alerts {
        *counts.entry((a.severity, a.kind.as_str())).or_default() += 1;
    }
    let worst = alerts
        .iter()
        .map(|a| (a.severity, a.kind.as_str()))
        .max()
        .unwrap_or((Severity::Low, "SESSION_CONTEXT_CHANGED"));
    let mut tenants: Vec<&str> = alerts.iter().map(|a| a.tenant.as_str()).collect();
    tenants.sort();
    tenants.dedup();
    let tenant = if tenants.len() == 1 {
        tenants[0].to_string()
    } else {
        "multiple".into()
    };
    let examples: Vec<_> = sorted.iter().take(5).map(|a| a.document.clone()).collect();
    let document = json!({
        "schemaVersion": SCHEMA_VERSION,
        "source": "sessionwarden-stream",
        "type": "DIGEST",
        "severity": worst.0.as_str(),
        "headline": format!("{} anomalies in one batch", alerts.len()),
        "counts": counts.iter().map(|((s, t), n)| json!({"type": t, "severity": s.as_str(), "count": n})).collect::<Vec<_>>(),
        "tenants": tenants,
        "examples": examples,
        "runbook": format!("{}#alert-storms", ctx.runbook_base_url.trim_end_matches('/')),
        "detectedAt": iso(ctx.now),
    });
    let mut text = format!(
        "{} anomalies in one batch; individual alerts were folded into this digest.\n\n",
        alerts.len()
    );
    for ((s, t), n) in counts.iter().rev() {
        text.push_str(&format!("  {n:>5}  {s:<8} {t}\n"));
    }
    text.push_str("\nExamples:\n");
    for a in sorted.iter().take(5) {
        text.push_str(&format!("  - {}\n", a.subject));
    }
    text.push_str(&format!("\nTenants: {}\n", tenants.join(", ")));
    let mut ids: Vec<&str> = alerts.iter().map(|a| a.id.as_str()).collect();
    ids.sort();
    let id = ctx
        .key
        .reference(&format!("digest|{}", ids.join("|")))
        .to_string();
    Alert {
        id: String::new(),
        kind: worst.1.to_string(),
        severity: worst.0,
        tenant,
        subject: clean_subject(
            &format!(
                "[{}] sessionwarden: {} anomalies in one batch (digest)",
                worst.0,
                alerts.len()
            ),
            MAX_SUBJECT_CHARS,
        ),
        text,
        document,
    }
    .identified(&id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::Evidence;
    use crate::session::SessionId;

    fn finding() -> Finding {
        Finding {
            kind: AnomalyType::SessionUserChanged,
            severity: Severity::Critical,
            raised: 0,
            subject: Subject::Session(SessionId::new("raw-secret-session")),
            tenant_id: Some("acme".into()),
            users: vec!["u-1".into(), "u-2".into()],
            evidence: vec![Evidence {
                field: "userId",
                before: Some("u-1".into()),
                after: Some("u-2".into()),
            }],
            headline: "session bound to 2 users".into(),
        }
    }

    #[test]
    fn alert_has_subject_text_and_document_without_the_raw_id() {
        let key = SessionRefKey::new(*b"0123456789abcdef").unwrap();
        let ctx = RenderContext {
            key: &key,
            runbook_base_url: "https://runbooks.example/sw/",
            now: 1_800_000_000,
        };
        let a = render(&finding(), "session terminated (containment)", "123", &ctx);
        assert_eq!(
            a.subject,
            "[CRITICAL] sessionwarden: session bound to 2 users (tenant acme)"
        );
        assert!(
            a.text.contains("u-1 -> u-2")
                && a.text
                    .contains("Runbook:   https://runbooks.example/sw#session-user-changed")
        );
        assert_eq!(a.document["schemaVersion"], 1);
        assert_eq!(
            a.document["sessionRef"],
            key.reference("raw-secret-session").as_str()
        );
        let all = format!("{}{}{}", a.subject, a.text, a.document);
        assert!(!all.contains("raw-secret-session"));
    }

    #[test]
    fn subject_is_cleaned_and_bounded() {
        let s = clean_subject(&format!("a\nb\u{7}{}", "x".repeat(200)), MAX_SUBJECT_CHARS);
        assert!(s.chars().count() <= MAX_SUBJECT_CHARS && !s.chars().any(char::is_control));
        assert!(s.starts_with("a b "));
    }
}
