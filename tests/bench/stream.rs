//! `just bench stream`: the stream worker's CPU cost per record, in process, no emulator.
//!
//! Generates DynamoDB stream events in the exact JSON shape Lambda delivers (native sessions
//! table layout, `NEW_AND_OLD_IMAGES`), then times what one invocation does with them: parsing
//! the event body into records (as the Lambda runtime does before calling the handler) and
//! `process_batch` over in-memory ports that answer instantly. So the figure is our CPU time per
//! record, not AWS's or moto's latency.
//!
//! Mixes (the first three benign, so no alert path runs; the bench checks that):
//! - `touch`:  MODIFY touches only (`lastActivityAt`/`sweepAt` advance, same user, agent, IP);
//!   each session is touched 4 times per batch, its records interleaved with other sessions'.
//! - `insert`: INSERTs of new sessions only (each claims a binding and 2 burst counters).
//! - `mixed`:  80 % touches, 20 % INSERTs, interleaved (every 5th record is an INSERT).
//! - `anomaly`: `mixed`, with every 25th record one of eleven changes in turn, each of its own
//!   session: a user change, a tenant change, another browser, a write to a terminated session,
//!   a resurrection, a fixation, activity past the idle deadline, a logout, a revocation of the
//!   user's sessions, a TTL delete of an ACTIVE session and a script client taking a browser
//!   session over. So the alert path (containment,
//!   gates, alerts), the cascade requests and the parent-marker read all run.
//!
//! Each (mix, batch size) pair runs `--warmup` untimed then `--iterations` timed invocations on a
//! fresh copy of the same event body; the table shows medians of per-invocation nanoseconds per
//! record, as wall time and as the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`: the runtime is
//! single-threaded, so this is all our work and excludes time the scheduler gave to other
//! processes; prefer it on a loaded machine). Data and `now` are fixed, so runs are comparable.
//!
//! Usage: `stream-bench [--sizes 1000,10000] [--mixes touch,insert,mixed] [--iterations N]
//! [--warmup N] [--emit DIR]`. Default iterations: 41 for batches up to 1,000 records, 11 above.
//! `--emit DIR` times nothing: it writes each (mix, size) event body, exactly as the timed runs
//! use it, to `DIR/<mix>-<size>.json` and exits (the process bench of `just bench stream`,
//! tests/bench/peer/runtime_api.py, hands these files to the real worker and to its peer).
//! For a load-independent figure: run under `valgrind --tool=callgrind` with `--iterations 1`
//! and `--iterations 3` (`--warmup 0`) and divide the difference in instructions by 2 × records.

use std::time::Instant;

use serde_json::{json, Value};

/// The batch "now" (epoch seconds); every generated timestamp is relative to it.
const NOW: i64 = 1_800_000_000;
/// Touches per session in the `touch` part of a batch.
const TOUCHES_PER_SESSION: usize = 4;

// ================================================================================================
// Service API boundary. Everything that names a sessionwarden API is in this module; porting the
// bench to a new API means rewriting `run_once` (and, if the ports change, the two fakes below).
// ================================================================================================
mod service_api {
    use sessionwarden_core::config::StreamConfig;
    use sessionwarden_core::fake::{vars, Mem};
    use sessionwarden_core::ports::Ports;
    use sessionwarden_core::stream::process_batch;
    use sessionwarden_stream::{decide_touches_with, NativeEvent, NativeRecord};

    /// What one invocation did, for the bench's sanity checks.
    pub struct Summary {
        pub records: u64,
        pub processed: u64,
        pub malformed: u64,
        pub anomalies: u64,
        pub failed: bool,
    }

    /// One invocation, as the Lambda does it on the native layout: the event body (JSON text) is
    /// deserialized into the worker's event type, which reads each record as it goes (the runtime
    /// does this before calling the handler), then the records go through the service. This is the only function
    /// that calls the service.
    pub async fn run_once(h: &Harness, body: &str, now: i64) -> Summary {
        decide_touches_with(h.cfg.common.expiry);
        let event: NativeEvent = serde_json::from_str(body).expect("event body parses");
        let outcome = process_batch(
            &h.ports,
            &h.cfg,
            event.records,
            |r: NativeRecord| r.0.map_err(|b| *b),
            now,
            &sessionwarden_core::deadline::EpochDeadline::in_from_now(
                std::time::Duration::from_secs(60),
            ),
        )
        .await;
        let r = outcome.report;
        Summary {
            records: r.records,
            processed: r.processed,
            malformed: r.malformed,
            anomalies: r.anomalies.values().sum(),
            failed: outcome.failed_from.is_some(),
        }
    }

    /// The in-memory ports and the configuration, built fresh for every invocation.
    pub struct Harness {
        ports: Ports<Mem, Mem, Mem, Mem, Mem, Mem, Mem>,
        cfg: StreamConfig,
    }

    impl Harness {
        pub fn new() -> Self {
            let cfg = StreamConfig::from_source(&vars(&[])).expect("bench stream config");
            Harness {
                ports: Mem::default().ports(),
                cfg,
            }
        }
    }
}
// ================================================================================================
// End of the service API boundary. Below: data generation, timing and reporting only.
// ================================================================================================

/// A small deterministic generator (SplitMix64), so every run sees the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A 43-character URL-safe token, like 32 random bytes in base64url.
    fn token(&mut self) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..43)
            .map(|_| A[self.below(64) as usize] as char)
            .collect()
    }
    fn hex32(&mut self) -> String {
        format!("{:016x}{:016x}", self.next(), self.next())
    }
}

const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
];
const IDLE: i64 = 28_800; // DEFAULT_IDLE_TIMEOUT_SECONDS
const LIFETIME: i64 = 86_400; // DEFAULT_MAX_LIFETIME_SECONDS
const RETENTION: i64 = 604_800; // AUDIT_RETENTION_SECONDS

/// One ACTIVE session as the app stores it.
#[derive(Clone)]
struct Session {
    id: String,
    user: String,
    tenant: String,
    created_at: i64,
    last_activity_at: i64,
    ip: String,
    user_agent: &'static str,
}

impl Session {
    fn new(rng: &mut Rng, created_at: i64) -> Self {
        let user = rng.below(5_000);
        Session {
            id: rng.token(),
            user: format!("user-{user:06}"),
            tenant: format!("tenant-{:03}", user % 50),
            created_at,
            last_activity_at: created_at,
            ip: format!("198.51.{}.{}", rng.below(256), 1 + rng.below(254)),
            user_agent: USER_AGENTS[(user % 4) as usize],
        }
    }

    /// The item in DynamoDB JSON (native layout, as the app writes it).
    fn image(&self) -> Value {
        let sweep_at = (self.last_activity_at + IDLE).min(self.created_at + LIFETIME);
        json!({
            "sessionId": {"S": self.id},
            "userId": {"S": self.user},
            "tenantId": {"S": self.tenant},
            "status": {"S": "ACTIVE"},
            "createdAt": {"N": self.created_at.to_string()},
            "lastActivityAt": {"N": self.last_activity_at.to_string()},
            "sweepAt": {"N": sweep_at.to_string()},
            "ipAddress": {"S": self.ip},
            "userAgent": {"S": self.user_agent},
            "expiresAt": {"N": (self.created_at + LIFETIME + RETENTION).to_string()},
        })
    }
}

/// Builds stream records with increasing sequence numbers.
struct Recorder {
    rng: Rng,
    seq: u64,
    records: Vec<Value>,
}

impl Recorder {
    fn push(&mut self, event: &str, at: i64, old: Option<Value>, new: Value, id: &str) {
        self.seq += 1 + self.rng.below(100);
        let mut d = json!({
            "ApproximateCreationDateTime": at,
            "Keys": {"sessionId": {"S": id}},
            "NewImage": new,
            "SequenceNumber": format!("49658{:021}", self.seq),
            "SizeBytes": 0,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        });
        if let Some(o) = old {
            d["OldImage"] = o;
        }
        d["SizeBytes"] = json!(d.to_string().len() / 2);
        self.records.push(json!({
            "eventID": self.rng.hex32(),
            "eventName": event,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": d,
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/prod-sessions/stream/2026-11-01T00:00:00.000",
        }));
    }
}

impl Recorder {
    /// A REMOVE by DynamoDB's TTL, as the stream records it.
    fn push_remove(&mut self, at: i64, old: Value, id: &str) {
        self.push("REMOVE", at, Some(old), Value::Null, id);
        let r = self.records.last_mut().expect("just pushed");
        r["dynamodb"]
            .as_object_mut()
            .expect("dynamodb")
            .remove("NewImage");
        r["userIdentity"] = json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
    }
}

/// The Lambda event body (JSON text) of one batch of `n` records of `mix`.
fn event_body(mix: &str, n: usize) -> String {
    let mut rng = Rng(0x5E55_10A7_u64 ^ n as u64);
    let (touches, inserts) = match mix {
        "touch" => (n, 0),
        "insert" => (0, n),
        "mixed" | "anomaly" => (n - n / 5, n / 5),
        other => panic!("unknown mix {other:?}: expected touch, insert, mixed or anomaly"),
    };
    // Sessions being touched: created in the last hour, still well inside their idle window.
    let mut live: Vec<Session> = (0..touches.div_ceil(TOUCHES_PER_SESSION))
        .map(|_| {
            let created = NOW - 3_600 + rng.below(1_800) as i64;
            Session::new(&mut rng, created)
        })
        .collect();
    let mut rec = Recorder {
        rng: Rng(rng.next()),
        seq: 0,
        records: Vec::with_capacity(n),
    };
    let (mut touched, mut inserted, mut turn) = (0, 0, 0);
    let mut odd = 0;
    while touched + inserted < n {
        if mix == "anomaly" && (touched + inserted) % 25 == 12 {
            // Counted as a touch (or an INSERT's place, when touches have run out).
            anomaly(&mut rec, &mut rng, odd);
            odd += 1;
            if touched < touches {
                touched += 1;
            } else {
                inserted += 1;
            }
            continue;
        }
        let insert_now =
            inserted < inserts && (touched >= touches || (touched + inserted) % 5 == 4);
        if insert_now {
            let created = NOW - 60 + rng.below(60) as i64;
            let s = Session::new(&mut rng, created);
            rec.push("INSERT", s.created_at, None, s.image(), &s.id);
            inserted += 1;
        } else {
            // Round-robin over live sessions: a session's touches are spread through the batch.
            let i = turn % live.len();
            let s = &mut live[i];
            turn += 1;
            let old = s.image();
            s.last_activity_at += 60 + rng.below(60) as i64;
            let at = s.last_activity_at;
            rec.push("MODIFY", at, Some(old), s.image(), &s.id);
            touched += 1;
        }
    }
    json!({ "Records": rec.records }).to_string()
}

/// Record `k` of the `anomaly` mix's eleven kinds, each of a session of its own.
fn anomaly(rec: &mut Recorder, rng: &mut Rng, k: usize) {
    let created = NOW - 3_600 + rng.below(1_800) as i64;
    let mut s = Session::new(rng, created);
    s.last_activity_at = NOW - 600;
    let old = s.image();
    let mut new = old.clone();
    new["lastActivityAt"] = json!({"N": (NOW - 30).to_string()});
    let ended = |img: &mut Value, reason: &str| {
        img["status"] = json!({"S": "TERMINATED"});
        img["terminationReason"] = json!({"S": reason});
        img["terminatedAt"] = json!({"N": (NOW - 300).to_string()});
    };
    let mut old = old;
    match k % 11 {
        0 => new["userId"] = json!({"S": format!("{}-other", s.user)}),
        1 => new["tenantId"] = json!({"S": format!("{}-other", s.tenant)}),
        2 => new["userAgent"] = json!({"S": USER_AGENTS[(k / 10 + 1) % 4]}),
        3 => {
            ended(&mut old, "logout");
            ended(&mut new, "logout");
        }
        4 => {
            ended(&mut old, "logout");
            new["status"] = json!({"S": "ACTIVE"});
        }
        5 => {
            old.as_object_mut().expect("an item").remove("userId");
        }
        6 => old["lastActivityAt"] = json!({"N": (NOW - IDLE - 3_600).to_string()}),
        7 => ended(&mut new, "logout"),
        8 => {
            ended(&mut new, "admin_revoke");
            new["revokeScope"] = json!({"S": "user"});
        }
        10 => new["userAgent"] = json!({"S": "python-requests/2.32.3"}),
        _ => {
            rec.push_remove(NOW - 20, old, &s.id);
            return;
        }
    }
    rec.push("MODIFY", NOW - 30, Some(old), new, &s.id);
}

/// The calling thread's CPU time, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The stream worker's CPU time per record, in process, with in-memory ports.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Records per batch.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    sizes: Vec<usize>,
    /// Record mixes: touch, insert, mixed, anomaly.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "touch,insert,mixed,anomaly"
    )]
    mixes: Vec<String>,
    /// Timed invocations per (mix, size); default 41 up to 1,000 records, 11 above.
    #[arg(long)]
    iterations: Option<usize>,
    /// Untimed invocations first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Write each (mix, size) event body to `DIR/<mix>-<size>.json` and exit, timing nothing.
    #[arg(long, value_name = "DIR")]
    emit: Option<std::path::PathBuf>,
}

/// Writes the event body of every (mix, size) to `dir/<mix>-<size>.json`: the bytes the timed
/// runs parse, for the process bench.
fn emit(dir: &std::path::Path, mixes: &[String], sizes: &[usize]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for mix in mixes {
        for &n in sizes {
            let body = event_body(mix, n);
            let path = dir.join(format!("{mix}-{n}.json"));
            std::fs::write(&path, &body)?;
            println!("{}: {n} records, {} bytes", path.display(), body.len());
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    if let Some(dir) = &args.emit {
        return emit(dir, &args.mixes, &args.sizes);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    println!(
        "stream-bench: load average {} at start, {} CPUs",
        loadavg(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| mix | records/batch | iterations | bytes/record | median wall ns/record | median CPU ns/record | median CPU µs/record | min CPU ns/record |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for mix in &args.mixes {
        for &n in &args.sizes {
            let body = event_body(mix, n);
            let iterations = args.iterations.unwrap_or(if n <= 1_000 { 41 } else { 11 });
            let (mut wall, mut cpu) = (Vec::new(), Vec::new());
            for i in 0..args.warmup + iterations {
                // Fresh ports for every invocation (outside the timing): no gate or claim of one
                // invocation meets the next.
                let harness = service_api::Harness::new();
                let (w0, c0) = (Instant::now(), thread_cpu_ns());
                let s = rt.block_on(service_api::run_once(&harness, &body, NOW));
                let (c1, w1) = (thread_cpu_ns(), w0.elapsed());
                let benign = mix != "anomaly";
                assert!(
                    s.records == n as u64
                        && s.processed == n as u64
                        && s.malformed == 0
                        && (s.anomalies == 0) == benign
                        && !s.failed,
                    "{mix}/{n}: expected {n} records processed, anomalies only in the anomaly mix, got \
                     records {} processed {} malformed {} anomalies {} failed {}",
                    s.records,
                    s.processed,
                    s.malformed,
                    s.anomalies,
                    s.failed
                );
                if i >= args.warmup {
                    wall.push(w1.as_nanos() as f64 / n as f64);
                    cpu.push((c1 - c0) as f64 / n as f64);
                }
            }
            let cpu_median = median(&mut cpu);
            println!(
                "| {mix} | {n} | {iterations} | {} | {:.0} | {:.0} | {:.2} | {:.0} |",
                body.len() / n,
                median(&mut wall),
                cpu_median,
                cpu_median / 1_000.0,
                cpu[0],
            );
        }
    }
    println!();
    println!("load average {} at end", loadavg());
    Ok(())
}
