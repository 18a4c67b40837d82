//! What a user agent says about the client: browser family, OS and device class (parsed by
//! `woothee`, a self-contained parser with its rules built in), and whether it is a script or an
//! automated browser rather than a person's browser. The context rule compares these, not the
//! raw strings, so a browser's own update inside a live session raises nothing.

/// The parts of a user agent the context rule compares. Versions are left out on purpose: a
/// browser updating itself inside a session is not a new client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Browser family (`Chrome`, `Safari`, `Edge`, ...), or the agent's first product token when
    /// the parser does not know it (`MyApp` of `MyApp/2.1`).
    pub family: String,
    /// OS family (`Windows 10`, `Mac OSX`, `iPhone`, `Android`, ...), without its version.
    pub os: String,
    /// Device class: `pc`, `smartphone`, `mobilephone`, `appliance`, `crawler`, `misc`, ...
    pub device: String,
    /// An HTTP library, a command-line client or a headless browser: something a program drives.
    pub script: bool,
    /// The browser's version, for people to read (`131.0.0.0`; empty when unknown). The rules
    /// never compare it.
    pub version: String,
}

/// Agents that mark a program, not a person (matched case-insensitively anywhere in the agent):
/// HTTP libraries and command-line clients, and browsers run headless or by automation.
const SCRIPT_MARKERS: [&str; 22] = [
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "go-http-client",
    "okhttp",
    "axios/",
    "node-fetch",
    "undici",
    "java-http-client",
    "apache-httpclient",
    "libwww-perl",
    "postmanruntime",
    "httpie",
    "scrapy",
    "headlesschrome",
    "phantomjs",
    "puppeteer",
    "playwright",
    "selenium",
];

/// Classifies a user agent.
pub fn classify(user_agent: &str) -> Client {
    let lower = user_agent.to_ascii_lowercase();
    let marked = SCRIPT_MARKERS.iter().any(|m| lower.contains(m));
    match woothee::parser::Parser::new().parse(user_agent) {
        Some(r) => Client {
            script: marked || r.name == "HTTP Library" || r.category == "crawler",
            family: r.name.to_string(),
            os: r.os.to_string(),
            device: r.category.to_string(),
            version: match r.version {
                woothee::woothee::VALUE_UNKNOWN => String::new(),
                v => v.to_string(),
            },
        },
        None => Client {
            family: user_agent
                .split(['/', ' '])
                .next()
                .unwrap_or_default()
                .to_string(),
            os: "UNKNOWN".into(),
            device: "UNKNOWN".into(),
            script: marked,
            version: String::new(),
        },
    }
}

impl Client {
    /// `Chrome / Windows 10 / pc`, for evidence: what the rules compare.
    pub fn describe(&self) -> String {
        format!("{} / {} / {}", self.family, self.os, self.device)
    }

    /// `Chrome 131.0.0.0 / Windows 10 / pc`, for on-call's session lists.
    pub fn label(&self) -> String {
        let version = if self.version.is_empty() {
            String::new()
        } else {
            format!(" {}", self.version)
        };
        format!("{}{version} / {} / {}", self.family, self.os, self.device)
    }
}
