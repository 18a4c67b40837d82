//! `sessionwarden-cascade`: the SQS Lambda that ends every session a revocation implies (a user,
//! a tenant, a session family). Thin by design: tracing, typed config, clients built once, then
//! the runtime loop.

use lambda_runtime::{run, service_fn, tracing};
use sessionwarden_aws::{load_sdk_config, AwsClients};
use sessionwarden_cascade::CascadeWorker;
use sessionwarden_core::config::CascadeConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing::init_default_subscriber();
    // Configuration first: a bad value fails the cold start with a message naming the variable.
    let config = CascadeConfig::from_env().inspect_err(|e| tracing::error!("{e}"))?;
    let clients = AwsClients::new(&load_sdk_config().await);
    let worker = CascadeWorker::from_clients(&clients, config);
    run(service_fn(|event| worker.handle(event)))
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
