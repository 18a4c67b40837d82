//! Finding a session by the reference alerts and logs show (`sessionctl resolve`, `revoke --ref`):
//! references are keyed digests, so this is a scan of the sessions table through its layout.

use sessionwarden_aws::AwsClients;
use sessionwarden_core::config::CommonConfig;

/// A session found by its reference, with what on-call needs to recognise it.
pub struct Found {
    /// The session (a bearer credential: print it only where the operator asked for it).
    pub id: sessionwarden_core::session::SessionId,
    /// `user=… tenant=… status=…`, tab-separated.
    pub details: String,
}

/// The items of $SESSIONS_TABLE whose session has reference `session_ref`, through the
/// configured layout (a scan: references are keyed digests, so there is no index to ask). On a
/// non-native layout every item that carries the ID is found (`sess:<sid>`, or each
/// `SESSION#<token>` of an Auth.js bleed), and an item the layout cannot read still counts when
/// its key names the session (its reason is in the details). An error when
/// there is none.
pub async fn find_by_ref(
    clients: &AwsClients,
    common: &CommonConfig,
    session_ref: &str,
) -> anyhow::Result<Vec<Found>> {
    let mut found = Vec::new();
    match &common.layout {
        sessionwarden_core::layout::Layout::Native => {
            let table = sessionwarden_local::seed::SeedTable::new(
                clients.dynamodb.clone(),
                common.sessions_table.clone(),
            );
            for s in table.scan_all().await?.into_iter().flatten() {
                if common.session_ref_key.of(&s.session_id).as_str() == session_ref {
                    let details = format!(
                        "user={}\ttenant={}\tstatus={}\treason={}",
                        s.user_id.as_deref().unwrap_or("-"),
                        s.tenant_id.as_deref().unwrap_or("-"),
                        s.status,
                        s.termination_reason.map(|r| r.as_str()).unwrap_or("-")
                    );
                    found.push(Found {
                        id: s.session_id,
                        details,
                    });
                }
            }
        }
        sessionwarden_core::layout::Layout::Mapped(m) => {
            use sessionwarden_aws::layout::{from_sdk, read, Read};
            let now = chrono::Utc::now().timestamp();
            let mut pages = clients
                .dynamodb
                .scan()
                .table_name(&common.sessions_table)
                .into_paginator()
                .items()
                .send();
            while let Some(item) = pages.next().await {
                let item = item.map_err(|e| sessionwarden_aws::sdk_error("DynamoDB.Scan", e))?;
                let item = from_sdk(&item);
                let seen = match read(m, &item, now) {
                    Ok(Read::Session(seen)) => seen,
                    Ok(_) => continue,
                    Err(reason) => {
                        // Unreadable, but a cascade can still end it: found, with the reason.
                        let Ok(Some(id)) = sessionwarden_aws::layout::id_of(m, &item) else {
                            continue;
                        };
                        if common.session_ref_key.of(&id).as_str() == session_ref {
                            let details = format!("unreadable: {reason}");
                            found.push(Found { id, details });
                        }
                        continue;
                    }
                };
                if common.session_ref_key.of(&seen.id).as_str() != session_ref {
                    continue;
                }
                let i = &seen.image;
                let details = format!(
                    "home={}\tuser={}\ttenant={}\tstatus={}",
                    seen.id.home().unwrap_or("-"),
                    i.user_id.as_deref().unwrap_or("-"),
                    i.tenant_id.as_deref().unwrap_or("-"),
                    i.status.map(|s| s.as_str()).unwrap_or("-"),
                );
                found.push(Found {
                    id: seen.id,
                    details,
                });
            }
        }
    }
    if found.is_empty() {
        anyhow::bail!(
            "no session in {} has reference {session_ref} under layout {} (deleted, or another SESSION_REF_KEY)",
            common.sessions_table,
            common.layout.name()
        );
    }
    Ok(found)
}
