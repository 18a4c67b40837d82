//! A short seeded run of the fault-injection suite (`just faults` at a smaller size): the three
//! workers behind `tests/faults/proxy.py` at a 20 % fault rate, with Lambda's retry semantics,
//! against a fault-free control run. Alerts (none lost, no alert ID twice), terminations, and
//! every count (cleanup expired, cascade ended, AnomaliesDetected, record counts, dead letters)
//! must equal the control run's.

use sessionwarden_tests::faults::{run_seed, FaultRun};

/// The short size: 2 incidents of each kind, 30 due and 10 live sessions, a 120-session cascade.
fn short(seed: u64, attempts: u32) -> FaultRun {
    FaultRun {
        seed,
        incidents: 2,
        cleanup: (10, 30),
        cascade: 120,
        attempts,
        ..FaultRun::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_seeded_fault_run_matches_its_control_run() {
    check(short(11, 3)).await;
}

/// With one SDK attempt every fault reaches the worker, so Lambda's own retries (redelivery
/// from the failure point, the next schedule, a failed message received again) do the work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_sdk_attempt_lambda_retries_still_match_the_control_run() {
    check(short(12, 1)).await;
}

async fn check(run: FaultRun) {
    let report = run_seed(&run).await.expect("the fault run completes");
    println!("{}", report.table);
    assert!(
        report.problems.is_empty(),
        "{}\n{:#?}",
        report.table,
        report.problems
    );
    assert!(
        report.table.contains("| stream | faults injected | 0 | ")
            && !report
                .table
                .contains("| stream | faults injected | 0 | 0 |"),
        "faults were injected: {}",
        report.table
    );
}
