//! `just faults [SEEDS...]`: the three workers behind a fault-injecting proxy, against a
//! fault-free control run of the same scenarios (see `sessionwarden_tests::faults`). Run under
//! `tests/with-emulators`. Prints a markdown table and exits non-zero when the faulty run differs
//! from the control run.
//!
//! Usage: `faults-bench --seed N [--rate 0.2] [--slow-ms 300] [--incidents 3] [--topic fifo]
//! [--attempts 3]`.

use anyhow::bail;
use clap::Parser;
use sessionwarden_tests::faults::{run_seed, FaultRun};

#[derive(Parser, Debug)]
struct Args {
    /// Seed of the faulty proxies.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fault rate of the faulty run.
    #[arg(long, default_value_t = 0.2)]
    rate: f64,
    /// Delay of a "slow" fault, in milliseconds.
    #[arg(long, default_value_t = 300)]
    slow_ms: u64,
    /// Incidents of each kind (bleed, fixation, zombie) in the stream scenario: more incidents,
    /// more requests, more faults on the alert path.
    #[arg(long, default_value_t = 3)]
    incidents: usize,
    /// The alerts topic of the stream scenario: `fifo` (the template's `AlertsTopicFifo`, which
    /// drops a message published twice by its alert ID) or `standard` (at-least-once: a
    /// PublishBatch whose response was lost is delivered twice, with one alert ID).
    #[arg(long, default_value = "fifo")]
    topic: String,
    /// SDK attempts per call (the Lambda settings: 3); 1 lets every fault through to Lambda's
    /// own retries.
    #[arg(long, default_value_t = 3)]
    attempts: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if std::env::var_os("FAULTS_DEBUG").is_some() {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_writer(std::io::stderr)
            .init();
    }
    let fifo = match args.topic.as_str() {
        "fifo" => true,
        "standard" => false,
        other => bail!("--topic must be fifo or standard, not {other:?}"),
    };
    let run = FaultRun {
        seed: args.seed,
        rate: args.rate,
        slow_ms: args.slow_ms,
        incidents: args.incidents,
        fifo,
        attempts: args.attempts,
        ..FaultRun::default()
    };
    let report = run_seed(&run).await?;
    print!("{}", report.table);
    if report.problems.is_empty() {
        println!("seed {}: the faulty run matches the control run", args.seed);
        return Ok(());
    }
    for p in &report.problems {
        println!("seed {}: {p}", args.seed);
    }
    bail!(
        "seed {}: the faulty run differs from the control run",
        args.seed
    )
}
