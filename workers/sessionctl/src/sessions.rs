//! `sessionctl sessions`: one user's or one tenant's sessions, for on-call, before revoking them.
//! Each session is shown by its reference (never its raw ID, a bearer credential) with its
//! status, times, IP address and user agent, the agent also parsed into browser, OS and device
//! class (`anomaly::client`, as the context rule reads it). It lists through the layout's own member lists (`SessionStore::members`:
//! the native table's GSIs, the state table's lists, or Auth.js's user partition), so it works
//! on every layout, and reads each listed session once.

use std::time::Duration;

use anyhow::Context;
use futures::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use sessionwarden_aws::layout::{self as item_layout, Read};
use sessionwarden_aws::ports::Sessions;
use sessionwarden_aws::AwsClients;
use sessionwarden_core::cascade_message::Target;
use sessionwarden_core::config::CommonConfig;
use sessionwarden_core::ports::{Member, PageRequest, SessionStore};

/// Members read per page.
const PAGE: u32 = 100;
/// Sessions read at once (one GetItem, or one Query on a layout without the home in the ID).
const READS_IN_FLIGHT: usize = 16;

/// One session, as on-call sees it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// The session's reference (what alerts and logs show; `sessionctl revoke --ref` takes it).
    pub session_ref: String,
    /// ACTIVE, TERMINATED, EXPIRED, ...
    pub status: String,
    /// `userId`.
    pub user_id: Option<String>,
    /// `tenantId`.
    pub tenant_id: Option<String>,
    /// When it was created (epoch seconds).
    pub created_at: Option<i64>,
    /// Its last activity (epoch seconds).
    pub last_activity_at: Option<i64>,
    /// The client's IP address, as stored.
    pub ip_address: Option<String>,
    /// The user agent, as stored.
    pub user_agent: Option<String>,
    /// The user agent parsed: browser and version, OS, device class.
    pub client: Option<String>,
    /// Why the session's item cannot be read through the layout (its status is `UNREADABLE`):
    /// listed all the same, since a revocation can still end it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Row {
    /// A listed session whose item the layout cannot read.
    fn unreadable(session_ref: String, problem: String) -> Row {
        Row {
            session_ref,
            status: "UNREADABLE".into(),
            user_id: None,
            tenant_id: None,
            created_at: None,
            last_activity_at: None,
            ip_address: None,
            user_agent: None,
            client: None,
            problem: Some(problem),
        }
    }
}

/// The sessions of `target` (a user or a tenant), in the order the layout lists them; a progress
/// spinner on stderr counts them while they are read (hidden when stderr is not a terminal).
pub async fn list(
    clients: &AwsClients,
    common: &CommonConfig,
    state_table: &str,
    target: &Target,
) -> anyhow::Result<Vec<Row>> {
    let store = Sessions::new(clients, common, state_table);
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} sessions read {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let mut rows = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .members(
                target,
                PageRequest {
                    limit: PAGE,
                    cursor,
                },
            )
            .await
            .context("listing the sessions")?;
        // A page's sessions are read a few at a time, and kept in the order listed.
        let mut reads = stream::iter(&page.items)
            .map(|member| read(clients, common, &store, member))
            .buffered(READS_IN_FLIGHT);
        while let Some(row) = reads.next().await {
            rows.extend(row?);
            bar.inc(1);
        }
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(rows)
}

/// One listed session, read through the layout (`None`: gone since it was listed).
async fn read(
    clients: &AwsClients,
    common: &CommonConfig,
    store: &Sessions,
    member: &Member,
) -> anyhow::Result<Option<Row>> {
    let session_ref = common.session_ref_key.of(&member.id).as_str().to_string();
    let row = match store {
        Sessions::Native(_) => {
            let table = sessionwarden_local::seed::SeedTable::new(
                clients.dynamodb.clone(),
                common.sessions_table.clone(),
            );
            let Some(s) = table.get(&member.id).await.context("reading a session")? else {
                return Ok(None);
            };
            let s = match s {
                Ok(s) => s,
                Err(e) => return Ok(Some(Row::unreadable(session_ref, e.to_string()))),
            };
            Row {
                session_ref,
                status: s.status.as_str().to_string(),
                user_id: s.user_id,
                tenant_id: s.tenant_id,
                created_at: Some(s.created_at),
                last_activity_at: Some(s.last_activity_at),
                client: s.user_agent.as_deref().map(client),
                ip_address: s.ip_address,
                user_agent: s.user_agent,
                problem: None,
            }
        }
        Sessions::Mapped(m) => {
            let now = chrono::Utc::now().timestamp();
            let items = m.items_of(&member.id).await.context("reading a session")?;
            let mut problem = None;
            let mut seen = None;
            for item in &items {
                match item_layout::read(m.layout(), &item_layout::from_sdk(item), now) {
                    Ok(Read::Session(s)) => {
                        seen = Some(s);
                        break;
                    }
                    Ok(_) => {}
                    Err(reason) => problem = Some(reason),
                }
            }
            let Some(seen) = seen else {
                // Gone since it was listed, or there but unreadable.
                return Ok(problem.map(|p| Row::unreadable(session_ref, p)));
            };
            let i = seen.image;
            Row {
                session_ref,
                status: i.status.map_or("-", |s| s.as_str()).to_string(),
                user_id: i.user_id,
                tenant_id: i.tenant_id,
                created_at: i.created_at,
                last_activity_at: i.last_activity_at,
                client: i.user_agent.as_deref().map(client),
                ip_address: i.ip_address,
                user_agent: i.user_agent,
                problem: None,
            }
        }
    };
    Ok(Some(row))
}

/// A user agent as on-call reads it: `Chrome 131.0.0.0 / Windows 10 / pc`, parsed as the
/// context rule parses it (`anomaly::client::classify`).
pub fn client(user_agent: &str) -> String {
    sessionwarden_core::anomaly::client::classify(user_agent).label()
}

/// The rows as a table for a terminal: one line each, tab-separated, with times in UTC.
pub fn table(rows: &[Row]) -> String {
    let time = |t: Option<i64>| {
        t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map_or("-".into(), |d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
    };
    let mut out = String::from("ref\tstatus\tuser\ttenant\tcreated\tlast activity\tip\tclient\n");
    for r in rows {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            r.session_ref,
            r.status,
            r.user_id.as_deref().unwrap_or("-"),
            r.tenant_id.as_deref().unwrap_or("-"),
            time(r.created_at),
            time(r.last_activity_at),
            r.ip_address.as_deref().unwrap_or("-"),
            r.client.as_deref().or(r.problem.as_deref()).unwrap_or("-"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_user_agent_reads_as_browser_os_and_device_class() {
        let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(super::client(ua), "Chrome 131.0.0.0 / Windows 10 / pc");
        assert_eq!(
            super::client("curl/8.5.0"),
            "HTTP Library curl / UNKNOWN / misc"
        );
    }
}
