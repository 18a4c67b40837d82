//! `sessionctl` commands: provisioning (`init`), local worker runs (`cleanup`), the demo,
//! session references for on-call, and onboarding a table of another layout (`layout check`,
//! `backfill`). Output meant for machines or for reading goes to stdout; everything else
//! (progress, logs) to stderr, so `sessionctl init --prefix demo > local.env` works.

pub mod backfill;
pub mod demo;
pub mod layout_check;
pub mod resolve;
pub mod sessions;

use sessionwarden_core::ports::CascadeQueue as _;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use lambda_runtime::{Context, LambdaEvent};
use sessionwarden_aws::{load_sdk_config, AwsClients, RequestCounter};
use sessionwarden_cleanup::{CleanupWorker, ScheduledEvent};
use sessionwarden_core::config::{
    CascadeConfig, CleanupConfig, CleanupStrategy, CommonConfig, ConfigError, ProcessEnv,
    StreamConfig,
};
use sessionwarden_core::deadline::EpochDeadline;
use sessionwarden_core::layout::Layout;

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
        strategy: Option<CleanupStrategy>,
        /// Invocation time budget, in seconds (a Lambda's timeout).
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Seed a realistic mix of sessions, run the three workers, and print a readable report.
    /// `--layout native` (the default) runs on the environment `sessionctl init` printed; another
    /// layout provisions its own PREFIX-<layout>-* resources shaped as that library stores
    /// sessions, and seeds them in the library's item format.
    Demo {
        /// The sessions table's layout: native, connect-dynamodb or authjs.
        #[arg(long, value_enum, default_value_t = demo::DemoLayout::Native)]
        layout: demo::DemoLayout,
        /// Resource name prefix of a non-native layout's demo: PREFIX-<layout>-sessions, ...
        #[arg(long, default_value = "demo")]
        prefix: String,
    },
    /// Run the stream worker's handler once over every record in the sessions table's stream
    /// (from its start) and print the report and the partial batch response.
    Stream,
    /// Run the cascade worker's handler on $CASCADE_QUEUE_URL until the queue is empty.
    Cascade,
    /// Find the session behind a reference from an alert or a log (scans $SESSIONS_TABLE).
    /// Prints the raw session ID: it is a bearer credential, handle it as one.
    Resolve {
        /// The 12-hex-digit session reference.
        session_ref: String,
    },
    /// Revoke sessions: send a cascade request (schema version 1) to $CASCADE_QUEUE_URL.
    Revoke {
        /// Every session of this user.
        #[arg(long, group = "subject")]
        user: Option<String>,
        /// Every session of this tenant.
        #[arg(long, group = "subject")]
        tenant: Option<String>,
        /// This session and its family.
        #[arg(long, group = "subject")]
        session: Option<String>,
        /// This session and its family, by the reference alerts and logs show (found with a
        /// scan of $SESSIONS_TABLE): the raw session ID never has to appear on a terminal.
        #[arg(long = "ref", group = "subject", value_name = "REF")]
        session_ref: Option<String>,
        /// Why (kept on the cascade's job records).
        #[arg(long)]
        reason: String,
        /// Who asks.
        #[arg(long, default_value = "sessionctl")]
        requested_by: String,
        /// Idempotency key; defaults to the SQS message ID.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// List one user's or one tenant's sessions, by reference: status, created, last activity,
    /// IP address and user agent (also parsed: browser, OS, device class). Reads through
    /// SESSION_LAYOUT (a non-native layout also needs STATE_TABLE, where its member lists are).
    Sessions {
        /// The sessions of this user.
        #[arg(long, group = "whose", required = true)]
        user: Option<String>,
        /// The sessions of this tenant.
        #[arg(long, group = "whose")]
        tenant: Option<String>,
        /// A JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the keyed reference of a session ID (uses SESSION_REF_KEY).
    Ref {
        /// The raw session ID.
        session_id: String,
    },
    /// Session layouts: which one a table's items fit.
    Layout {
        /// What to do.
        #[command(subcommand)]
        command: LayoutCommand,
    },
    /// Index the sessions that existed before deployment, once, on a non-native layout
    /// (SESSIONS_TABLE, STATE_TABLE, SESSION_LAYOUT, SESSION_REF_KEY): a resumable, segmented
    /// parallel scan that files every session in sessionwarden's own indexes.
    Backfill {
        /// Parallel scan segments.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
        segments: u32,
        /// Forget the stored cursors and scan the whole table again.
        #[arg(long)]
        restart: bool,
        /// Items per Scan page (its Limit).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10000))]
        page_size: u32,
        /// Stop after this many pages in all, as an interrupted run would (for tests).
        #[arg(long, hide = true)]
        max_pages: Option<u64>,
    },
}

/// `sessionctl layout` commands.
#[derive(Debug, Subcommand)]
pub enum LayoutCommand {
    /// Read a sample of TABLE and say which layout (native, connect-dynamodb, authjs, or the
    /// one given) its items fit, what it reads from a few sessions (by reference), and which
    /// items it cannot read.
    Check {
        /// The table to check.
        #[arg(long, env = "SESSIONS_TABLE")]
        table: String,
        /// A layout to try besides the presets, as SESSION_LAYOUT takes it: a preset name or a
        /// JSON object.
        #[arg(long)]
        layout: Option<String>,
        /// Items to sample.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100000))]
        sample: u32,
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
            let clients = local_clients().await;
            for (k, v) in init_env(&clients, &prefix, &metrics_namespace).await? {
                println!("{k}={v}");
            }
            Ok(())
        }
        Command::Cleanup { strategy, timeout } => {
            let mut config = CleanupConfig::from_env()?;
            if let Some(s) = strategy {
                config.strategy = s;
            }
            let clients = local_clients().await;
            let report = invoke_cleanup(&clients, config, Duration::from_secs(timeout)).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Demo { layout, prefix } if layout != demo::DemoLayout::Native => {
            demo::layouts::run(layout, &prefix).await
        }
        Command::Demo { .. } => {
            demo::run(
                CleanupConfig::from_env()?,
                StreamConfig::from_env()?,
                CascadeConfig::from_env()?,
            )
            .await
        }
        Command::Cascade => {
            let clients = local_clients().await;
            let (report, rounds) =
                drain_cascades(&clients, &CascadeConfig::from_env()?, None).await?;
            eprintln!("{rounds} invocations");
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Stream => {
            let config = StreamConfig::from_env()?;
            let clients = local_clients().await;
            let (response, report) = run_stream_once(&clients, config, None).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"report": report, "response": response})
                )?
            );
            Ok(())
        }
        Command::Resolve { session_ref } => {
            let common = CommonConfig::from_source(&ProcessEnv)?;
            let clients = local_clients().await;
            for found in resolve::find_by_ref(&clients, &common, session_ref.trim()).await? {
                eprintln!("warning: the next line holds a raw session ID, a bearer credential");
                println!("{}\t{}", found.id.expose(), found.details);
            }
            Ok(())
        }
        Command::Revoke {
            user,
            tenant,
            session,
            session_ref,
            reason,
            requested_by,
            request_id,
        } => {
            use sessionwarden_core::cascade_message::{request, Target};
            // What the confirmation names: never a raw session ID.
            let mut shown = None;
            let target = match (user, tenant, session, session_ref) {
                (Some(u), None, None, None) => Target::User(u),
                (None, Some(t), None, None) => Target::Tenant(t),
                (None, None, Some(s), None) => {
                    Target::Session(sessionwarden_core::session::SessionId::new(s))
                }
                (None, None, None, Some(r)) => {
                    std::env::var("CASCADE_QUEUE_URL").context("CASCADE_QUEUE_URL is required")?;
                    let common = CommonConfig::from_source(&ProcessEnv)?;
                    let clients = local_clients().await;
                    let mut found = resolve::find_by_ref(&clients, &common, r.trim()).await?;
                    // One session may have several items (an Auth.js bleed: one token under two
                    // users); its cascade ends them all. Only distinct sessions are ambiguous.
                    let mut seen = std::collections::HashSet::new();
                    found.retain(|f| seen.insert(f.id.expose().to_string()));
                    if found.len() > 1 {
                        anyhow::bail!(
                            "{} sessions share reference {} (a 48-bit digest): revoke by --user or --tenant, or resolve them",
                            found.len(),
                            r.trim()
                        );
                    }
                    eprintln!("found session {}: {}", r.trim(), found[0].details);
                    shown = Some(r.trim().to_string());
                    Target::Session(found.remove(0).id)
                }
                _ => anyhow::bail!("give exactly one of --user, --tenant, --session or --ref"),
            };
            let queue =
                std::env::var("CASCADE_QUEUE_URL").context("CASCADE_QUEUE_URL is required")?;
            let message = request(&target, &reason, &requested_by, request_id);
            let clients = local_clients().await;
            sessionwarden_aws::cascade_queue::SqsCascadeQueue::new(clients.sqs.clone(), queue)
                .send(std::slice::from_ref(&message))
                .await?;
            let subject = match (&target, shown) {
                (Target::User(u) | Target::Tenant(u), _) => u.clone(),
                (_, Some(r)) => r,
                _ => "(session)".into(),
            };
            eprintln!("cascade requested: {} {subject}", message.scope);
            Ok(())
        }
        Command::Sessions { user, tenant, json } => {
            use sessionwarden_core::cascade_message::Target;
            let common = CommonConfig::from_source(&ProcessEnv)?;
            let target = match (user, tenant) {
                (Some(u), None) => Target::User(u),
                (None, Some(t)) => Target::Tenant(t),
                _ => anyhow::bail!("give exactly one of --user or --tenant"),
            };
            let state_table = std::env::var("STATE_TABLE")
                .ok()
                .filter(|v| !v.trim().is_empty());
            let state_table = match (&common.layout, state_table) {
                (_, Some(t)) => t,
                (Layout::Native, None) => String::new(),
                (Layout::Mapped(_), None) => {
                    return Err(ConfigError::Missing { var: "STATE_TABLE" }.into())
                }
            };
            let clients = local_clients().await;
            let rows = sessions::list(&clients, &common, &state_table, &target).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", sessions::table(&rows));
                eprintln!("{} sessions", rows.len());
            }
            Ok(())
        }
        Command::Ref { session_id } => {
            let common = CommonConfig::from_source(&ProcessEnv)?;
            println!("{}", common.session_ref_key.reference(&session_id));
            Ok(())
        }
        Command::Layout {
            command:
                LayoutCommand::Check {
                    table,
                    layout,
                    sample,
                },
        } => {
            let clients = local_clients().await;
            let report = layout_check(&clients, &table, layout.as_deref(), sample as usize).await?;
            print!("{}", layout_check::render(&report));
            if report.items() > 0 && report.best().is_none() {
                anyhow::bail!("no layout fits {table}");
            }
            Ok(())
        }
        Command::Backfill {
            segments,
            restart,
            page_size,
            max_pages,
        } => {
            let common = CommonConfig::from_source(&ProcessEnv)?;
            let layout = match &common.layout {
                Layout::Native => {
                    println!(
                        "{} has the native layout: its GSIs (by-sweep, by-user, by-tenant, by-parent) index every session already, so there is nothing to backfill",
                        common.sessions_table
                    );
                    return Ok(());
                }
                Layout::Mapped(m) => (**m).clone(),
            };
            let state_table = std::env::var("STATE_TABLE")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing { var: "STATE_TABLE" })?;
            let counter = RequestCounter::new();
            let clients = AwsClients::local(&load_sdk_config().await, Some(&counter));
            let summary = backfill::run(
                clients.dynamodb.clone(),
                &counter,
                &common,
                &layout,
                &state_table,
                backfill::Options {
                    segments,
                    restart,
                    page_size,
                    max_pages,
                },
            )
            .await?;
            for line in summary.details() {
                println!("{line}");
            }
            println!("{summary}");
            Ok(())
        }
    }
}

/// Reads up to `sample` items of `table` (Scan pages, in table order).
pub async fn sample_items(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    sample: usize,
) -> anyhow::Result<Vec<layout_check::SdkItem>> {
    let mut items = Vec::new();
    let mut start = None;
    while items.len() < sample {
        let out = client
            .scan()
            .table_name(table)
            .limit((sample - items.len()).min(10_000) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sessionwarden_aws::sdk_error("DynamoDB.Scan", e))
            .with_context(|| format!("scanning {table}"))?;
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key.filter(|k| !k.is_empty());
        if start.is_none() {
            break;
        }
    }
    items.truncate(sample);
    Ok(items)
}

/// `sessionctl layout check`: samples `table` and reads the sample under every candidate
/// layout (the presets, plus `layout` if given). The expiry policy and the reference key come
/// from the environment where set.
pub async fn layout_check(
    clients: &AwsClients,
    table: &str,
    layout: Option<&str>,
    sample: usize,
) -> anyhow::Result<layout_check::Report> {
    let given = layout
        .map(|raw| Layout::parse(raw).map(|l| (raw, l)))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--layout is invalid: {e}"))?;
    let (policy, key, ephemeral_key) = layout_check::settings(&ProcessEnv)?;
    let items = sample_items(&clients.dynamodb, table, sample).await?;
    let now = chrono::Utc::now().timestamp();
    Ok(layout_check::Report {
        table: table.to_string(),
        sample,
        tallies: layout_check::tally(layout_check::candidates(given), &items, &key, &policy, now),
        ephemeral_key,
    })
}

/// Provisions PREFIX and returns the environment lines, including a fresh `SESSION_REF_KEY`
/// (or the one already in the environment, so re-running keeps references stable).
pub async fn init_env(
    clients: &AwsClients,
    prefix: &str,
    metrics_namespace: &str,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let resources = sessionwarden_local::provision::init(clients, prefix)
        .await
        .with_context(|| format!("creating resources for prefix {prefix:?}"))?;
    let key = std::env::var("SESSION_REF_KEY")
        .ok()
        .filter(|k| k.len() >= sessionwarden_core::session_ref::MIN_KEY_BYTES)
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
) -> anyhow::Result<sessionwarden_core::cleanup::CleanupReport> {
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

/// Runs the stream worker's handler once over what the stream holds past `tail` (from the start
/// of the stream when `None`). Returns the partial batch response and the report.
pub async fn run_stream_once(
    clients: &AwsClients,
    config: StreamConfig,
    tail: Option<&mut sessionwarden_local::streams::StreamTail>,
) -> anyhow::Result<(
    aws_lambda_events::event::streams::DynamoDbEventResponse,
    sessionwarden_core::stream::StreamReport,
)> {
    let records = match tail {
        Some(t) => t.next_records().await?,
        None => {
            let arn =
                sessionwarden_local::provision::stream_arn(clients, &config.common.sessions_table)
                    .await?
                    .ok_or_else(|| {
                        anyhow::anyhow!("{} has no stream", config.common.sessions_table)
                    })?;
            sessionwarden_local::streams::StreamTail::from_start(
                sessionwarden_local::streams_client(&load_sdk_config().await, None),
                arn,
            )
            .await?
            .next_records()
            .await?
        }
    };
    let worker = sessionwarden_stream::StreamWorker::from_clients(clients, config);
    Ok(worker.run(&records).await)
}

/// Runs the cascade worker's handler on the cascade queue until it is empty, as the SQS event
/// source mapping would. With `stream`, the stream worker also runs between rounds, so ends made
/// by a cascade come back through the stream and request family cascades, as in AWS.
/// Returns the merged report and the number of invocations.
pub async fn drain_cascades(
    clients: &AwsClients,
    config: &CascadeConfig,
    mut stream: Option<(&StreamConfig, &mut sessionwarden_local::streams::StreamTail)>,
) -> anyhow::Result<(sessionwarden_core::cascade::CascadeReport, usize)> {
    let worker = sessionwarden_cascade::CascadeWorker::from_clients(clients, config.clone());
    let mut total = sessionwarden_core::cascade::CascadeReport::default();
    let mut rounds = 0;
    for _ in 0..500 {
        let event = sessionwarden_local::queues::receive_as_lambda_event(
            &clients.sqs,
            &config.wiring.cascade_queue_url,
        )
        .await?;
        let Some(event) = event else {
            match stream.as_mut() {
                Some((cfg, tail)) => {
                    let (_, report) =
                        run_stream_once(clients, (*cfg).clone(), Some(&mut **tail)).await?;
                    if report.cascades_requested == 0 {
                        break;
                    }
                    continue;
                }
                None => break,
            }
        };
        rounds += 1;
        let deadline = EpochDeadline::in_from_now(Duration::from_secs(300));
        let (response, report) = worker.run(&event, &deadline).await;
        if !response.batch_item_failures.is_empty() {
            anyhow::bail!("cascade messages failed: {:?}", report.failed);
        }
        total.merge(report);
    }
    Ok((total, rounds))
}

/// Clients for local runs: the standard SDK configuration with the local (generous) timeouts,
/// since emulators can be far slower than AWS.
pub async fn local_clients() -> AwsClients {
    AwsClients::local(&load_sdk_config().await, None)
}
