//! `sessionctl` commands: provisioning (`init`), local worker runs (`cleanup`), the demo, and
//! session references for on-call. Output meant for machines goes to stdout; everything else
//! (progress, logs) to stderr, so `sessionctl init --prefix demo > local.env` works.

pub mod demo;

use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use lambda_runtime::{Context, LambdaEvent};
use sessionwarden::aws::{load_sdk_config, AwsClients};
use sessionwarden::config::{CleanupConfig, CleanupStrategy, CommonConfig, ProcessEnv};
use sessionwarden::deadline::EpochDeadline;
use sessionwarden_cleanup::{CleanupWorker, ScheduledEvent};

/// sessionwarden's command line.
#[derive(Debug, Parser)]
#[command(
    name = "sessionctl",
    version,
    about = "sessionwarden CLI: provision, run workers locally, resolve session references"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the tables, queues and topic for PREFIX against the configured endpoint, and print
    /// the workers' environment as KEY=VALUE lines.
    Init {
        /// Resource name prefix: PREFIX-sessions, PREFIX-state, PREFIX-cascade, ...
        #[arg(long)]
        prefix: String,
        /// CloudWatch namespace to print.
        #[arg(long, default_value = "SessionWarden")]
        metrics_namespace: String,
    },
    /// Run the cleanup worker's handler once against $SESSIONS_TABLE and print its JSON report.
    Cleanup {
        /// Override CLEANUP_STRATEGY.
        #[arg(long)]
        strategy: Option<String>,
        /// Invocation time budget, in seconds (a Lambda's timeout).
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Seed a realistic mix of sessions, run cleanup, and print a readable report.
    Demo,
    /// Print the keyed reference of a session ID (uses SESSION_REF_KEY).
    Ref {
        /// The raw session ID.
        session_id: String,
    },
}

/// Logs to stderr; `RUST_LOG` sets the level (default `warn`).
pub fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init {
            prefix,
            metrics_namespace,
        } => {
            let clients = AwsClients::new(&load_sdk_config().await);
            for (k, v) in init_env(&clients, &prefix, &metrics_namespace).await? {
                println!("{k}={v}");
            }
            Ok(())
        }
        Command::Cleanup { strategy, timeout } => {
            let mut config = CleanupConfig::from_env()?;
            if let Some(s) = strategy {
                config.strategy = s.parse::<CleanupStrategy>().map_err(|_| {
                    anyhow::anyhow!("--strategy {s:?} is invalid: expected `index` or `scan`")
                })?;
            }
            let clients = AwsClients::new(&load_sdk_config().await);
            let report = invoke_cleanup(&clients, config, Duration::from_secs(timeout)).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Demo => demo::run(CleanupConfig::from_env()?).await,
        Command::Ref { session_id } => {
            let common = CommonConfig::from_source(&ProcessEnv)?;
            println!("{}", common.session_ref_key.reference(&session_id));
            Ok(())
        }
    }
}

/// Provisions PREFIX and returns the environment lines, including a fresh `SESSION_REF_KEY`
/// (or the one already in the environment, so re-running keeps references stable).
pub async fn init_env(
    clients: &AwsClients,
    prefix: &str,
    metrics_namespace: &str,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let resources = sessionwarden::provision::init(clients, prefix)
        .await
        .with_context(|| format!("creating resources for prefix {prefix:?}"))?;
    let key = std::env::var("SESSION_REF_KEY")
        .ok()
        .filter(|k| k.len() >= sessionwarden::session_ref::MIN_KEY_BYTES)
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 24]>()));
    let mut env = resources.env(metrics_namespace);
    env.push(("SESSION_REF_KEY", key));
    Ok(env)
}

/// Invokes the cleanup worker's Lambda handler locally, with a scheduled event and a context
/// whose deadline is `timeout` from now.
pub async fn invoke_cleanup(
    clients: &AwsClients,
    config: CleanupConfig,
    timeout: Duration,
) -> anyhow::Result<sessionwarden::cleanup::CleanupReport> {
    let worker = CleanupWorker::from_clients(clients, config);
    let mut context = Context::default();
    context.request_id = "sessionctl-local".into();
    context.deadline = EpochDeadline::in_from_now(timeout).deadline_ms;
    let event: ScheduledEvent = serde_json::from_value(serde_json::json!({
        "version": "0",
        "id": "sessionctl-local",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "us-east-1",
        "resources": [],
        "detail": {}
    }))?;
    Ok(worker.handle(LambdaEvent::new(event, context)).await?)
}
