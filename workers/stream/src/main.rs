//! `sessionwarden-stream`: the DynamoDB Streams Lambda that detects session anomalies, alerts on
//! them and reports partial batch failures. Thin by design: tracing, typed config, clients built
//! once, then the runtime loop.

use lambda_runtime::{run, service_fn, tracing};
use sessionwarden_aws::{load_sdk_config, AwsClients};
use sessionwarden_core::config::StreamConfig;
use sessionwarden_core::layout::Layout;
use sessionwarden_stream::StreamWorker;

// One thread: a batch is parsed on one core anyway, and its AWS calls interleave on that thread.
// At the template's 256 MB, Lambda gives the function a fraction of a vCPU; a second runtime
// thread would only add wake-ups (and a thread start to the cold start).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing::init_default_subscriber();
    // Configuration first: a bad value fails the cold start with a message naming the variable.
    let config = StreamConfig::from_env().inspect_err(|e| tracing::error!("{e}"))?;
    let clients = AwsClients::new(&load_sdk_config().await);
    let native = matches!(config.common.layout, Layout::Native);
    let worker = StreamWorker::from_clients(&clients, config);
    // The native layout's records are read with the event, from the body's own text.
    let ran = if native {
        worker.decide_touches_here();
        run(service_fn(|event| worker.handle_native(event))).await
    } else {
        run(service_fn(|event| worker.handle(event))).await
    };
    ran.map_err(|e| anyhow::anyhow!(e))
}
