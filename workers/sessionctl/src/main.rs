//! `sessionctl`: the command line for on-call engineers and local runs. Parsing and dispatch
//! only; every command lives in the `sessionctl` library.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = sessionctl::Cli::parse();
    sessionctl::init_tracing();
    sessionctl::run(cli).await
}
