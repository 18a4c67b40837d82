//! `just bench-stream`: what one stream batch of new sessions costs, at the sizes the test suite
//! leaves out, and whether it stays within the request budget.
//!
//! For each count N (default: 1000), N new sessions of one tenant are written, read back from the
//! emulator's stream and handed to the stream worker in one batch; then every session is touched
//! once and that batch is handled too. AWS requests are counted on the wire. The run fails if N
//! inserts cost more than max(N/20, 10) requests besides the one PutMetricData (`tests/stream.rs`
//! checks 10 at N = 100), or if the touches cost anything but the metrics flush.
//! Usage: `stream-bench [N ...]`.

use std::time::Instant;

use sessionwarden_core::session::Session;
use sessionwarden_stream::StreamWorker;
use sessionwarden_tests::{SessionFactory, TestEnv};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let counts = if counts.is_empty() {
        vec![1000]
    } else {
        counts
    };
    println!("| new sessions | requests (inserts) | budget | TransactWriteItems | BatchGetItem | touch requests | wall time, inserts |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut over = Vec::new();
    for n in counts {
        let env = TestEnv::new(&format!("stream-bench{n}")).await;
        let mut tail = env.stream_tail().await;
        let f = SessionFactory::new();
        let sessions: Vec<Session> = (0..n)
            .map(|i| f.active("c", &format!("u-{i}"), 60, 30))
            .collect();
        env.seed(&sessions).await;
        let inserts = tail.next_records().await?;
        anyhow::ensure!(inserts.len() == n, "{} INSERT records", inserts.len());
        let worker = StreamWorker::from_clients(&env.clients, env.stream_config(&[]));
        env.counter.reset();
        let started = Instant::now();
        let (response, _) = worker.run(&inserts).await;
        let took = started.elapsed();
        anyhow::ensure!(response.batch_item_failures.is_empty(), "batch failures");
        let puts = env.counter.get("PutMetricData");
        let requests = env.counter.total() - puts;
        let (tx, gets) = (
            env.counter.get("TransactWriteItems"),
            env.counter.get("BatchGetItem"),
        );

        let touched: Vec<Session> = sessions
            .iter()
            .map(|s| {
                let mut t = s.clone();
                t.last_activity_at = f.now;
                f.with_sweep(t)
            })
            .collect();
        env.seed(&touched).await;
        let touches = tail.next_records().await?;
        env.counter.reset();
        let (response, _) = worker.run(&touches).await;
        anyhow::ensure!(response.batch_item_failures.is_empty(), "batch failures");
        let touch_requests = env.counter.total() - env.counter.get("PutMetricData");

        let budget = (n as u64).div_ceil(20).max(10);
        println!("| {n} | {requests} | {budget} | {tx} | {gets} | {touch_requests} | {took:.2?} |");
        if requests > budget || puts != 1 || touch_requests != 0 {
            over.push(n);
        }
        env.teardown().await;
    }
    anyhow::ensure!(over.is_empty(), "over budget at {over:?}");
    Ok(())
}
