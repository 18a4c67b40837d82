//! `just bench`: what one cleanup run costs, by strategy and table size, on the emulator.
//!
//! AWS requests and items read are the cost that matters (they are what AWS bills, and they are
//! deterministic); wall time is printed too but is dominated by the emulator, not by our code.
//! Usage: `cleanup-bench [LIVE_SESSIONS ...]` (default: 10000 100000), 100 due sessions each.

use std::time::{Duration, Instant};

use lambda_runtime::LambdaEvent;
use sessionwarden_cleanup::{CleanupWorker, ScheduledEvent};
use sessionwarden_core::config::CleanupStrategy;
use sessionwarden_core::session::Session;
use sessionwarden_tests::{context_with, scheduled_event_fixture, SessionFactory, TestEnv};

const DUE: usize = 100;

/// What one cleanup run costs, by strategy and table size, on the emulator.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Live (not due) sessions per table; 100 due sessions are added to each.
    #[arg(default_values_t = [10_000, 100_000])]
    live_sessions: Vec<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sizes = <Args as clap::Parser>::parse().live_sessions;
    println!("| live sessions | due | strategy | items read | read requests | UpdateItem | PutMetricData | expired | wall time |");
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for live in sizes {
        let env = TestEnv::new(&format!("bench{live}")).await;
        let f = SessionFactory::new();
        let population = f.population(live, DUE);
        let due: Vec<Session> = population[live..].to_vec();
        let seeding = Instant::now();
        env.seed(&population).await;
        eprintln!(
            "seeded {} sessions in {:.1?}",
            population.len(),
            seeding.elapsed()
        );
        for strategy in [CleanupStrategy::Index, CleanupStrategy::Scan] {
            // Put the due sessions back to ACTIVE so both strategies face the same table.
            env.seed(&due).await;
            let worker =
                CleanupWorker::from_clients(&env.clients, env.cleanup_config(strategy, &[]));
            let event: ScheduledEvent = serde_json::from_value(scheduled_event_fixture())?;
            let started = Instant::now();
            let report = worker
                .handle(LambdaEvent::new(
                    event,
                    context_with(Duration::from_secs(900)),
                ))
                .await?;
            let took = started.elapsed();
            println!(
                "| {live} | {DUE} | {} | {} | {} | {} | {} | {} | {:.2?} |",
                strategy,
                report.items_read,
                env.counter.get("Query") + env.counter.get("Scan"),
                env.counter.get("UpdateItem"),
                env.counter.get("PutMetricData"),
                report.expired_total(),
                took
            );
        }
        env.teardown().await;
    }
    Ok(())
}
