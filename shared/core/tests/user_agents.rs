//! The user-agent corpus of issue 12: a session whose browser updates itself raises nothing; a
//! session whose browser family, OS or device class changes raises SESSION_CONTEXT_CHANGED; a
//! browser session taken over by a script client or a headless browser raises
//! SESSION_CLIENT_SCRIPTED. The agents are the real formats of current browsers, over several
//! consecutive versions each. Each pair is also replayed with the client's IP address moving,
//! within its network and to another one: a client change from another network is the stronger
//! (MEDIUM) SESSION_CONTEXT_CHANGED, and an IP change never turns a benign pair into an alert.
//! `cargo test -p sessionwarden-core --test user_agents -- --nocapture` prints the detection
//! table that README shows.

use sessionwarden_core::anomaly::{detect, AnomalyType, Severity};
use sessionwarden_core::change::{Change, ChangeKind, Image, SeqNo};
use sessionwarden_core::expiry::ExpiryPolicy;
use sessionwarden_core::session::{SessionId, Status};

const NOW: i64 = 1_800_000_000;

/// Browser formats, `{v}` the browser's major version and `{o}` an OS version where it moves
/// with updates, with the versions a session may see in turn.
const BROWSERS: [(&str, &str); 18] = [
    ("Chrome on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"),
    ("Chrome on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"),
    ("Chrome on Linux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"),
    ("Chrome on Android", "Mozilla/5.0 (Linux; Android {o}; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Mobile Safari/537.36"),
    ("Chrome on iOS", "Mozilla/5.0 (iPhone; CPU iPhone OS {o}_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/{v}.0.6778.73 Mobile/15E148 Safari/604.1"),
    ("Firefox on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"),
    ("Firefox on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"),
    ("Firefox on Linux", "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"),
    ("Firefox on Android", "Mozilla/5.0 (Android {o}; Mobile; rv:{v}.0) Gecko/{v}.0 Firefox/{v}.0"),
    ("Firefox on iOS", "Mozilla/5.0 (iPhone; CPU iPhone OS {o}_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/{v}.0 Mobile/15E148 Safari/605.1.15"),
    ("Safari on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{o}.1 Safari/605.1.15"),
    ("Safari on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS {o}_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{o}.1 Mobile/15E148 Safari/604.1"),
    ("Safari on iPad", "Mozilla/5.0 (iPad; CPU OS {o}_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{o}.1 Mobile/15E148 Safari/604.1"),
    ("Edge on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.0.0"),
    ("Edge on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.0.0"),
    ("Edge on Android", "Mozilla/5.0 (Linux; Android {o}; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Mobile Safari/537.36 EdgA/{v}.0.0.0"),
    ("Samsung Internet", "Mozilla/5.0 (Linux; Android {o}; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/{s}.0 Chrome/{v}.0.0.0 Mobile Safari/537.36"),
    ("Opera on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36 OPR/{s}.0.0.0"),
];

/// Script clients and automated browsers.
const SCRIPTS: [&str; 10] = [
    "python-requests/2.32.3",
    "Go-http-client/2.0",
    "curl/8.5.0",
    "Wget/1.21.4",
    "okhttp/4.12.0",
    "axios/1.7.7",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "Java-http-client/21.0.1",
    "PostmanRuntime/7.42.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
];

/// The agent of `format` at step `i` of its updates: the browser one major version up per step,
/// and the OS one version up every fourth step.
fn agent(format: &str, i: u32) -> String {
    format
        .replace("{v}", &(126 + i).to_string())
        .replace("{s}", &(24 + i).to_string())
        .replace(
            "{o}",
            &(if format.contains("Android") {
                13 + i / 4
            } else {
                17 + i / 4
            })
            .to_string(),
        )
}

/// The client's address before every pair.
const IP: &str = "198.51.100.1";
/// Where the address moves: nowhere, within its /24, to another network (IPv4 and IPv6).
const MOVES: [(&str, &str); 4] = [
    ("same address", IP),
    ("same network", "198.51.100.200"),
    ("another IPv4 network", "203.0.113.9"),
    ("another network, IPv6", "2001:db8:7::1"),
];

fn image(user_agent: &str, ip: &str, last: i64) -> Image {
    Image {
        user_id: Some("u".into()),
        tenant_id: Some("t".into()),
        status: Some(Status::Active),
        created_at: Some(NOW - 3_600),
        last_activity_at: Some(last),
        user_agent: Some(user_agent.into()),
        ip_address: Some(ip.into()),
        ..Default::default()
    }
}

/// What one MODIFY from `old` to `new` agent raises while the address moves from [`IP`] to
/// `ip` (activity within the deadline): each finding's type and severity.
fn raised(old: &str, new: &str, ip: &str) -> Vec<(AnomalyType, Severity)> {
    let change = Change {
        seq: SeqNo("1".into()),
        kind: ChangeKind::Modify,
        session_id: SessionId::new("s"),
        old: Some(image(old, IP, NOW - 60)),
        new: Some(image(new, ip, NOW)),
        by_ttl: false,
        at: NOW,
    };
    detect(&change, None, &ExpiryPolicy::default())
        .findings
        .iter()
        .map(|f| (f.kind, f.severity()))
        .collect()
}

/// True when `ip` is in another network than [`IP`].
fn elsewhere(ip: &str) -> bool {
    !ip.starts_with("198.51.100.")
}

#[test]
fn the_user_agent_corpus_has_no_false_alert_and_full_recall() {
    // Benign: each browser updating itself, 12 steps in turn (its OS updating too, where it does).
    let mut benign = Vec::new();
    for (name, format) in BROWSERS {
        for i in 0..12 {
            benign.push((name, agent(format, i), agent(format, i + 1)));
        }
    }
    // Must alert: every pair of different browsers, at one version each (another family, OS or
    // device class), and every browser taken over by every script.
    let mut changed = Vec::new();
    for (a, fa) in BROWSERS {
        for (b, fb) in BROWSERS {
            if a != b {
                changed.push((a, b, agent(fa, 3), agent(fb, 3)));
            }
        }
    }
    let mut scripted = Vec::new();
    for (name, format) in BROWSERS {
        for script in SCRIPTS {
            scripted.push((name, agent(format, 3), script));
        }
    }
    println!("| pairs | address | count | alerted as expected | false alerts / misses |");
    println!("|---|---|---:|---:|---:|");
    let mut failures = Vec::new();
    for (moved, ip) in MOVES {
        let context = if elsewhere(ip) {
            Severity::Medium
        } else {
            Severity::Low
        };
        let false_alerts: Vec<_> = benign
            .iter()
            .filter(|(_, a, b)| !raised(a, b, ip).is_empty())
            .collect();
        let missed_changes: Vec<_> = changed
            .iter()
            .filter(|(_, _, a, b)| {
                raised(a, b, ip) != [(AnomalyType::SessionContextChanged, context)]
            })
            .collect();
        let missed_scripts: Vec<_> = scripted
            .iter()
            .filter(|(_, a, b)| {
                raised(a, b, ip) != [(AnomalyType::SessionClientScripted, Severity::High)]
            })
            .collect();
        println!(
            "| benign: a browser's own update | {moved} | {} | {} (none) | {} false alerts |",
            benign.len(),
            benign.len() - false_alerts.len(),
            false_alerts.len()
        );
        println!(
            "| another browser family, OS or device class | {moved} | {} | {} ({context}) | {} missed |",
            changed.len(),
            changed.len() - missed_changes.len(),
            missed_changes.len()
        );
        println!(
            "| a browser session taken over by a script | {moved} | {} | {} (HIGH) | {} missed |",
            scripted.len(),
            scripted.len() - missed_scripts.len(),
            missed_scripts.len()
        );
        if !(false_alerts.is_empty() && missed_changes.is_empty() && missed_scripts.is_empty()) {
            failures.push(format!(
                "{moved}: false alerts {false_alerts:#?}, missed changes {missed_changes:#?}, missed scripts {missed_scripts:#?}"
            ));
        }
    }
    assert!(benign.len() >= 200, "{} benign pairs", benign.len());
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The same client at another address, in its network or in another one, raises nothing: an IP
/// change alone is only the `IpChanged` fact.
#[test]
fn the_same_client_at_another_address_raises_nothing() {
    for (name, format) in BROWSERS {
        for (moved, ip) in MOVES {
            let ua = agent(format, 3);
            assert!(raised(&ua, &ua, ip).is_empty(), "{name}, {moved}");
        }
    }
}
