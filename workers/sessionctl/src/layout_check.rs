//! `sessionctl layout check`: which layout a table's items fit. The first command a new user
//! runs. It reads a sample of the table (one Scan, paged up to the sample size), reads every
//! sampled item under each candidate layout (the three presets, plus the one given with
//! `--layout`), and says which one fits, what it read from a few sessions (by reference only),
//! and which items it could not read, and why.
//!
//! Everything but the Scan is pure ([`tally`], [`best`], [`render`]), so unit tests reach it.

use std::collections::HashMap;
use std::fmt::Write as _;

use aws_sdk_dynamodb::types::AttributeValue;
use sessionwarden_aws::layout::{self as item_layout, Read};
use sessionwarden_core::config::{CommonConfig, ConfigError, EnvSource};
use sessionwarden_core::expiry::ExpiryPolicy;
use sessionwarden_core::layout::{self, AuthjsOptions, ConnectOptions, Layout};
use sessionwarden_core::session::Status;
use sessionwarden_core::session_ref::{SessionRef, SessionRefKey};

/// A DynamoDB item as the SDK returns it.
pub type SdkItem = HashMap<String, AttributeValue>;

/// Sessions shown per layout, by reference.
pub const SHOWN_SESSIONS: usize = 5;
/// Unreadable items listed before "... and N more".
pub const SHOWN_UNREADABLE: usize = 20;

/// One layout to try.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// What the report calls it.
    pub label: String,
    /// The layout.
    pub layout: Layout,
    /// The `SESSION_LAYOUT` value that selects it.
    pub setting: String,
    /// True for the layout given with `--layout`.
    pub given: bool,
}

/// The presets, in report order, plus `given` (its `SESSION_LAYOUT` text and parsed layout).
/// A given layout equal to a preset marks that preset instead of adding a row.
pub fn candidates(given: Option<(&str, Layout)>) -> Vec<Candidate> {
    let preset = |name: &str, layout: Layout| Candidate {
        label: name.into(),
        layout,
        setting: name.into(),
        given: false,
    };
    let mut out = vec![
        preset("native", Layout::Native),
        preset(
            "connect-dynamodb",
            Layout::Mapped(Box::new(layout::connect_dynamodb(
                &ConnectOptions::default(),
            ))),
        ),
        preset(
            "authjs",
            Layout::Mapped(Box::new(layout::authjs(&AuthjsOptions::default()))),
        ),
    ];
    if let Some((raw, layout)) = given {
        match out.iter_mut().find(|c| c.layout == layout) {
            Some(c) => c.given = true,
            None => out.push(Candidate {
                label: format!("{} (--layout)", layout.name()),
                layout,
                setting: raw.trim().to_string(),
                given: true,
            }),
        }
    }
    out
}

/// What one session item holds, as a layout reads it. No raw ID: a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The session reference.
    pub reference: SessionRef,
    /// The user, if any.
    pub user: Option<String>,
    /// The tenant, if any.
    pub tenant: Option<String>,
    /// `ACTIVE`, `TERMINATED`, `EXPIRED`, or `LAPSED` (its own deadline passed, the item is still
    /// there: cleanup ends it).
    pub status: String,
    /// Last activity, epoch seconds.
    pub last_activity: Option<i64>,
    /// When the expiry policy says it is due, epoch seconds.
    pub due_at: Option<i64>,
}

/// One item under one layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A session, read.
    Session(Row),
    /// Not a session under this layout (another kind of item, another key prefix).
    NotSession,
    /// It claims to be a session but cannot be read: by reference (`None`: the key itself is
    /// unreadable), and why.
    Unreadable(Option<SessionRef>, String),
}

/// Reads one item under `layout` at `at` (epoch seconds). Native items are read as the workers
/// read them (`items::session_from_item`): every item of a native table is a session, and one
/// without `status` is unreadable.
pub fn read_item(
    layout: &Layout,
    item: &SdkItem,
    key: &SessionRefKey,
    policy: &ExpiryPolicy,
    at: i64,
) -> Outcome {
    match layout {
        Layout::Native => {
            let reference = match item.get(sessionwarden_core::session::attr::SESSION_ID) {
                Some(AttributeValue::S(id)) if !id.is_empty() => Some(key.reference(id)),
                _ => None,
            };
            match sessionwarden_aws::items::session_from_item(item) {
                Ok(s) => Outcome::Session(Row {
                    reference: key.of(&s.session_id),
                    user: s.user_id.clone(),
                    tenant: s.tenant_id.clone(),
                    status: s.status.as_str().into(),
                    last_activity: Some(s.last_activity_at),
                    due_at: policy.due_at(&s.clock()),
                }),
                Err(e) => Outcome::Unreadable(reference, e.to_string()),
            }
        }
        Layout::Mapped(m) => {
            let item = item_layout::from_sdk(item);
            match item_layout::read(m, &item, at) {
                Ok(Read::NotSession) => Outcome::NotSession,
                Ok(Read::Session(seen)) => {
                    let i = &seen.image;
                    Outcome::Session(Row {
                        reference: key.of(&seen.id),
                        user: i.user_id.clone(),
                        tenant: i.tenant_id.clone(),
                        status: if i.lapsed {
                            "LAPSED".into()
                        } else {
                            i.status.unwrap_or(Status::Active).as_str().into()
                        },
                        last_activity: i.last_activity_at,
                        due_at: policy.due_at(&i.clock()),
                    })
                }
                Err(reason) => Outcome::Unreadable(
                    item_layout::id_of(m, &item)
                        .ok()
                        .flatten()
                        .map(|id| key.of(&id)),
                    reason,
                ),
            }
        }
    }
}

/// The sample under one layout.
#[derive(Debug, Clone)]
pub struct Tally {
    /// The layout.
    pub candidate: Candidate,
    /// The sessions read, in scan order.
    pub sessions: Vec<Row>,
    /// Items that are not sessions under it.
    pub not_sessions: usize,
    /// Items it could not read: reference (if the key could be read) and reason.
    pub unreadable: Vec<(Option<SessionRef>, String)>,
}

impl Tally {
    /// Items counted.
    pub fn total(&self) -> usize {
        self.sessions.len() + self.not_sessions + self.unreadable.len()
    }
}

/// Reads every item under every candidate.
pub fn tally(
    candidates: Vec<Candidate>,
    items: &[SdkItem],
    key: &SessionRefKey,
    policy: &ExpiryPolicy,
    at: i64,
) -> Vec<Tally> {
    candidates
        .into_iter()
        .map(|candidate| {
            let mut t = Tally {
                candidate,
                sessions: vec![],
                not_sessions: 0,
                unreadable: vec![],
            };
            for item in items {
                match read_item(&t.candidate.layout, item, key, policy, at) {
                    Outcome::Session(row) => t.sessions.push(row),
                    Outcome::NotSession => t.not_sessions += 1,
                    Outcome::Unreadable(r, why) => t.unreadable.push((r, why)),
                }
            }
            t
        })
        .collect()
}

/// The best fit: the layout that reads the most sessions (at least one); on a tie, the one
/// with fewer unreadable items, then the given layout. `None` when no layout reads a session.
pub fn best(tallies: &[Tally]) -> Option<usize> {
    tallies
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.sessions.is_empty())
        .min_by_key(|(i, t)| {
            (
                std::cmp::Reverse(t.sessions.len()),
                t.unreadable.len(),
                !t.candidate.given,
                *i,
            )
        })
        .map(|(i, _)| i)
}

/// What `layout check` found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The table.
    pub table: String,
    /// The sample size asked for.
    pub sample: usize,
    /// Per layout.
    pub tallies: Vec<Tally>,
    /// True when the references use a key made for this run (no `SESSION_REF_KEY`).
    pub ephemeral_key: bool,
}

impl Report {
    /// The index of the best fit in `tallies`.
    pub fn best(&self) -> Option<usize> {
        best(&self.tallies)
    }

    /// Items sampled.
    pub fn items(&self) -> usize {
        self.tallies.first().map_or(0, Tally::total)
    }
}

/// An epoch time as ISO-8601 (UTC, seconds), or `-`.
pub fn iso(t: Option<i64>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".into())
}

fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The fit sentence: "connect-dynamodb fits: 48 of 50 items are sessions, 2 are not sessions,
/// 0 unreadable".
pub fn verdict(t: &Tally, items: usize) -> String {
    let clean = t.unreadable.is_empty();
    format!(
        "{} {}: {} of {} {} sessions, {} {}, {} unreadable{}",
        t.candidate.label,
        if clean { "fits" } else { "fits best" },
        t.sessions.len(),
        counted(items, "item", "items"),
        if t.sessions.len() == 1 { "is" } else { "are" },
        t.not_sessions,
        if t.not_sessions == 1 {
            "is not a session"
        } else {
            "are not sessions"
        },
        t.unreadable.len(),
        if clean {
            ""
        } else {
            " (listed below: fix those items, or the layout, before deploying)"
        },
    )
}

fn table(out: &mut String, header: &[&str], rows: &[Vec<String>], right: &[bool]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut line = |cells: Vec<String>| {
        let mut l = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            l.push(' ');
            if right.get(i).copied().unwrap_or(false) {
                l.push_str(&" ".repeat(pad));
                l.push_str(c);
            } else {
                l.push_str(c);
                l.push_str(&" ".repeat(pad));
            }
            l.push(' ');
        }
        let _ = writeln!(out, "{}", l.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

fn reference(r: &Option<SessionRef>) -> String {
    r.as_ref()
        .map_or_else(|| "key unreadable".into(), |r| r.to_string())
}

fn list_unreadable(out: &mut String, t: &Tally) {
    let _ = writeln!(
        out,
        "\nUnreadable under {} ({}):",
        t.candidate.label,
        t.unreadable.len()
    );
    for (r, why) in t.unreadable.iter().take(SHOWN_UNREADABLE) {
        let _ = writeln!(out, "  {:<14} {why}", reference(r));
    }
    if t.unreadable.len() > SHOWN_UNREADABLE {
        let _ = writeln!(
            out,
            "  ... and {} more",
            t.unreadable.len() - SHOWN_UNREADABLE
        );
    }
}

/// The human-readable report.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let items = r.items();
    let _ = writeln!(
        out,
        "Table {}: sampled {} (Scan, up to {}).",
        r.table,
        counted(items, "item", "items"),
        r.sample
    );
    if items == 0 {
        let _ = writeln!(
            out,
            "The table is empty: there is nothing to check yet. Run this again once it holds sessions."
        );
        return out;
    }
    let _ = writeln!(out);
    let rows: Vec<Vec<String>> = r
        .tallies
        .iter()
        .map(|t| {
            vec![
                t.candidate.label.clone(),
                t.sessions.len().to_string(),
                t.not_sessions.to_string(),
                t.unreadable.len().to_string(),
            ]
        })
        .collect();
    table(
        &mut out,
        &["layout", "sessions", "not sessions", "unreadable"],
        &rows,
        &[false, true, true, true],
    );
    let _ = writeln!(out);
    let Some(b) = r.best() else {
        let _ = writeln!(
            out,
            "No layout fits: none reads a single session from these {items} items. Describe the table with a custom SESSION_LAYOUT (a JSON object with \"layout\": \"custom\"), and check it with --layout."
        );
        for t in &r.tallies {
            if let Some((_, why)) = t.unreadable.first() {
                let _ = writeln!(out, "  {}: {why}", t.candidate.label);
            } else {
                let _ = writeln!(out, "  {}: no item is a session", t.candidate.label);
            }
        }
        return out;
    };
    let t = &r.tallies[b];
    let _ = writeln!(out, "{}.", verdict(t, items));
    let _ = writeln!(
        out,
        "Set SESSION_LAYOUT={}",
        if t.candidate.setting.contains(char::is_whitespace) {
            format!("'{}'", t.candidate.setting)
        } else {
            t.candidate.setting.clone()
        }
    );
    let shown: Vec<&Row> = t.sessions.iter().take(SHOWN_SESSIONS).collect();
    let _ = writeln!(
        out,
        "\n{} as {} reads {} (by reference{}):",
        counted(shown.len(), "session", "sessions"),
        t.candidate.label,
        if shown.len() == 1 { "it" } else { "them" },
        if r.ephemeral_key {
            "; SESSION_REF_KEY is not set, so the references are for this run only"
        } else {
            ", with SESSION_REF_KEY"
        }
    );
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|s| {
            vec![
                s.reference.to_string(),
                s.user.clone().unwrap_or_else(|| "-".into()),
                s.tenant.clone().unwrap_or_else(|| "-".into()),
                s.status.clone(),
                iso(s.last_activity),
                iso(s.due_at),
            ]
        })
        .collect();
    table(
        &mut out,
        &["ref", "user", "tenant", "status", "last activity", "due"],
        &rows,
        &[],
    );
    if !t.unreadable.is_empty() {
        list_unreadable(&mut out, t);
    }
    out
}

/// The expiry policy and reference key for a check: the workers' variables where set
/// (`DEFAULT_*`, `SESSION_REF_KEY`), else the defaults and a random key for this run. Returns
/// the policy, the key and whether the key is this run's own.
pub fn settings(env: &dyn EnvSource) -> Result<(ExpiryPolicy, SessionRefKey, bool), ConfigError> {
    let own_key = env
        .var("SESSION_REF_KEY")
        .filter(|k| !k.trim().is_empty())
        .is_none();
    let random = hex::encode(rand::random::<[u8; 24]>());
    let overlay = |name: &str| match name {
        "SESSIONS_TABLE" => Some("layout-check".to_string()),
        "SESSION_REF_KEY" if own_key => Some(random.clone()),
        // The layout under test comes from --layout, not from the environment.
        "SESSION_LAYOUT" => None,
        other => env.var(other),
    };
    let common = CommonConfig::from_source(&overlay)?;
    Ok((common.expiry, common.session_ref_key, own_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }
    fn n(v: i64) -> AttributeValue {
        AttributeValue::N(v.to_string())
    }
    fn key() -> SessionRefKey {
        SessionRefKey::new(b"unit-test-key-0123456789".to_vec()).unwrap()
    }
    fn connect(sid: &str, expires: i64, sess: &str) -> SdkItem {
        HashMap::from([
            ("id".into(), s(&format!("sess:{sid}"))),
            ("expires".into(), n(expires)),
            ("type".into(), s("connect-session")),
            ("sess".into(), s(sess)),
        ])
    }
    fn authjs(user: &str, token: &str, expires: i64) -> SdkItem {
        HashMap::from([
            ("pk".into(), s(&format!("USER#{user}"))),
            ("sk".into(), s(&format!("SESSION#{token}"))),
            ("GSI1PK".into(), s(&format!("SESSION#{token}"))),
            ("GSI1SK".into(), s(&format!("SESSION#{token}"))),
            ("type".into(), s("SESSION")),
            ("userId".into(), s(user)),
            ("sessionToken".into(), s(token)),
            ("expires".into(), n(expires)),
        ])
    }
    fn native(sid: &str, user: &str) -> SdkItem {
        HashMap::from([
            ("sessionId".into(), s(sid)),
            ("userId".into(), s(user)),
            ("status".into(), s("ACTIVE")),
            ("createdAt".into(), n(NOW - 100)),
            ("lastActivityAt".into(), n(NOW - 10)),
        ])
    }
    fn run(items: &[SdkItem], given: Option<(&str, Layout)>) -> Report {
        Report {
            table: "t".into(),
            sample: 200,
            tallies: tally(
                candidates(given),
                items,
                &key(),
                &ExpiryPolicy::default(),
                NOW,
            ),
            ephemeral_key: true,
        }
    }

    #[test]
    fn connect_items_fit_connect_dynamodb_and_the_bad_one_is_listed() {
        let mut items: Vec<SdkItem> = (0..6)
            .map(|i| {
                connect(
                    &format!("secret-sid-{i}"),
                    NOW + 3600,
                    &format!(r#"{{"cookie":{{}},"passport":{{"user":"u-{i}"}}}}"#),
                )
            })
            .collect();
        items.push(connect("secret-bad", NOW + 60, "not json"));
        let r = run(&items, None);
        let b = r.best().unwrap();
        assert_eq!(r.tallies[b].candidate.label, "connect-dynamodb");
        assert_eq!(r.tallies[b].sessions.len(), 6);
        assert_eq!(r.tallies[b].unreadable.len(), 1);
        assert_eq!(r.tallies[b].sessions[0].user.as_deref(), Some("u-0"));
        assert_eq!(r.tallies[b].sessions[0].due_at, Some(NOW + 3600));
        let out = render(&r);
        assert!(out.contains("connect-dynamodb fits best: 6 of 7 items are sessions, 0 are not sessions, 1 unreadable"), "{out}");
        assert!(out.contains("Set SESSION_LAYOUT=connect-dynamodb"), "{out}");
        assert!(out.contains("attribute sess is not JSON"), "{out}");
        assert!(
            out.contains(key().reference("secret-bad").as_str()),
            "{out}"
        );
        assert!(out.contains("for this run only"), "{out}");
        assert!(!out.contains("secret-"), "a raw session ID leaked:\n{out}");
        assert_eq!(out.matches("u-").count(), SHOWN_SESSIONS, "{out}");
        assert!(out.contains(&iso(Some(NOW + 3600))), "{out}");
    }

    #[test]
    fn a_clean_fit_says_fits() {
        let items = [
            connect("a", NOW + 60, r#"{"user":{"id":"u-1"}}"#),
            connect("b", NOW - 60, r#"{}"#),
        ];
        let r = run(&items, None);
        let t = &r.tallies[r.best().unwrap()];
        assert_eq!(
            verdict(t, 2),
            "connect-dynamodb fits: 2 of 2 items are sessions, 0 are not sessions, 0 unreadable"
        );
        assert_eq!(t.sessions[1].status, "LAPSED");
        assert_eq!(t.sessions[1].user, None);
    }

    #[test]
    fn authjs_items_fit_authjs_and_users_and_accounts_are_not_sessions() {
        let user = HashMap::from([
            ("pk".into(), s("USER#u-1")),
            ("sk".into(), s("USER#u-1")),
            ("type".into(), s("USER")),
            ("email".into(), s("a@example.com")),
        ]);
        let account = HashMap::from([
            ("pk".into(), s("USER#u-1")),
            ("sk".into(), s("ACCOUNT#github#123")),
            ("type".into(), s("ACCOUNT")),
        ]);
        let items = [
            authjs("u-1", "tok-1", NOW + 600),
            authjs("u-1", "tok-2", NOW + 600),
            user,
            account,
        ];
        let r = run(&items, None);
        let t = &r.tallies[r.best().unwrap()];
        assert_eq!(t.candidate.label, "authjs");
        assert_eq!((t.sessions.len(), t.not_sessions), (2, 2));
        assert!(render(&r)
            .contains("authjs fits: 2 of 4 items are sessions, 2 are not sessions, 0 unreadable"));
        // Native reads none of them: every item lacks sessionId, and says so.
        assert_eq!(r.tallies[0].unreadable.len(), 4);
        assert_eq!(r.tallies[0].unreadable[0].0, None);
    }

    #[test]
    fn native_items_fit_native_and_an_item_without_status_is_unreadable() {
        let mut broken = native("secret-3", "u-3");
        broken.remove("status");
        let items = [native("secret-1", "u-1"), native("secret-2", "u-2"), broken];
        let r = run(&items, None);
        let t = &r.tallies[r.best().unwrap()];
        assert_eq!(t.candidate.label, "native");
        assert_eq!(t.sessions.len(), 2);
        assert_eq!(
            t.unreadable,
            vec![(
                Some(key().reference("secret-3")),
                "attribute status is missing".into()
            )]
        );
        assert_eq!(t.sessions[0].due_at, Some(NOW - 10 + 28_800));
        let out = render(&r);
        assert!(!out.contains("secret-"), "{out}");
    }

    #[test]
    fn a_given_layout_is_tried_too_and_wins_a_tie() {
        let raw = r#"{"preset": "connect-dynamodb", "userPaths": ["account.name"]}"#;
        let given = Layout::parse(raw).unwrap();
        let items = [connect("a", NOW + 60, r#"{"account":{"name":"ann"}}"#)];
        let r = run(&items, Some((raw, given)));
        assert_eq!(r.tallies.len(), 4);
        let t = &r.tallies[r.best().unwrap()];
        assert_eq!(t.candidate.label, "connect-dynamodb (--layout)");
        assert_eq!(t.sessions[0].user.as_deref(), Some("ann"));
        assert!(render(&r).contains(&format!("Set SESSION_LAYOUT='{raw}'")));
        // A preset given by name marks the preset rather than adding a row.
        let r = run(&items, Some(("authjs", Layout::parse("authjs").unwrap())));
        assert_eq!(r.tallies.len(), 3);
        assert!(r.tallies[2].candidate.given);
    }

    #[test]
    fn nothing_fits_and_an_empty_table_are_said_plainly() {
        let items = [HashMap::from([("foo".into(), s("bar"))])];
        let r = run(&items, None);
        assert_eq!(r.best(), None);
        let out = render(&r);
        assert!(out.contains("No layout fits"), "{out}");
        assert!(out.contains("connect-dynamodb: key id is missing"), "{out}");
        let out = render(&run(&[], None));
        assert!(out.contains("The table is empty"), "{out}");
    }

    #[test]
    fn settings_use_the_environment_or_a_key_for_this_run() {
        let env = |k: &str| match k {
            "SESSION_REF_KEY" => Some("0123456789abcdef-key".to_string()),
            "DEFAULT_IDLE_TIMEOUT_SECONDS" => Some("60".to_string()),
            "SESSION_LAYOUT" => Some("not a layout".to_string()),
            _ => None,
        };
        let (policy, k, own) = settings(&env).unwrap();
        assert_eq!(policy.default_idle_timeout_seconds, 60);
        assert!(!own);
        assert_eq!(
            k.reference("x"),
            SessionRefKey::new(b"0123456789abcdef-key".to_vec())
                .unwrap()
                .reference("x")
        );
        let none = |_: &str| None;
        let (policy, _, own) = settings(&none).unwrap();
        assert_eq!(policy, ExpiryPolicy::default());
        assert!(own);
    }
}
