//! `grantflow`: the command-line entry point. Thin: parses arguments and configuration,
//! then calls the library crates.

mod cli;
mod config;
mod metrics;
mod store;
mod telemetry;
mod workflows;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "grantflow",
    version,
    about = "Workflow engine for publicly funded projects"
)]
struct Cli {
    /// Configuration file (default: ./grantflow.toml when present).
    #[arg(long, global = true, env = "GRANTFLOW_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the GraphQL server (and the scheduler) — by default on an embedded SQLite
    /// file `./grantflow.db` with the workflows in `./workflows`, at 127.0.0.1:8080.
    Serve {
        /// Load the demo data first when the database has none.
        #[arg(long)]
        demo: bool,
    },
    /// Load demo data (organisations, one user per role, demands and projects in every
    /// stage) into the configured database and print the demo credentials.
    Demo,
    /// Apply database migrations and exit.
    Migrate,
    /// Move the instances of a workflow from one version to another along an explicit
    /// state mapping (validated first). A dry run unless `--apply` is given.
    MigrateInstances {
        #[arg(long)]
        workflow: String,
        #[arg(long)]
        from: u32,
        #[arg(long)]
        to: u32,
        /// `old_state=new_state`; states whose id exists in both versions map to
        /// themselves. May be repeated.
        #[arg(long = "map")]
        mappings: Vec<String>,
        /// Recorded in every instance's history.
        #[arg(long)]
        reason: String,
        /// Write the changes (otherwise only print what would happen).
        #[arg(long)]
        apply: bool,
    },
    /// SQLite: an online, consistent copy of the database into a new file (PostgreSQL:
    /// prints how to use pg_dump).
    Backup {
        #[arg(long)]
        to: PathBuf,
    },
    /// SQLite: make a verified backup the configured database (which must not exist yet).
    Restore {
        #[arg(long)]
        from: PathBuf,
    },
    /// Move a whole deployment from SQLite into an empty PostgreSQL database; every hash
    /// chain is verified on arrival.
    Copy {
        /// `sqlite://FILE`
        #[arg(long)]
        from: String,
        /// `postgres://…`
        #[arg(long)]
        to: String,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Audit the append-only history.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Validate, draw and simulate workflow files.
    Workflow {
        #[command(subcommand)]
        command: WorkflowCommand,
    },
    /// Deadline reminders, timeouts, digests and the outbox, outside `serve`.
    Scheduler {
        #[command(subcommand)]
        command: SchedulerCommand,
    },
    /// Benchmarks (not tests): print Markdown tables for docs/BENCHMARKS.md.
    #[cfg(feature = "bench")]
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum SchedulerCommand {
    /// Fire every timer due at `--now`, send due digests and deliver the outbox, then exit.
    RunOnce {
        /// The instant to run at: `2024-06-10T09:00` (Asia/Shanghai) or RFC 3339; the
        /// system clock when absent.
        #[arg(long)]
        now: Option<String>,
    },
}

#[cfg(feature = "bench")]
#[derive(Subcommand)]
enum BenchCommand {
    /// SMTP messages per second: one connection per message against one per batch.
    Smtp {
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 1000)]
        messages: usize,
    },
    /// Fire rate and lag of the scheduler: 100,000 pending timers of which 10,000 are due.
    Timers {
        #[arg(long)]
        db: String,
        /// Instances; each has one timer due now (so this many are due).
        #[arg(long, default_value_t = 10_000)]
        instances: usize,
        #[arg(long, default_value_t = 10)]
        timers_per_instance: usize,
        #[arg(long, default_value_t = 100)]
        batch_size: u32,
        /// A second burst of the same shape, fired first in the same run with this batch
        /// size (1: one timer per claim and per transaction, as before batching); 0: none.
        #[arg(long, default_value_t = 1)]
        before_batch_size: u32,
    },
    /// Transitions per second and p50/p99 through the store's engine path, next to a
    /// baseline issuing the same SQL without the engine, in the same run. Use a scratch
    /// database: the benchmark writes its own instances.
    Transitions {
        #[arg(long)]
        db: String,
        #[arg(long, default_value_t = 2000)]
        transitions: usize,
        /// Concurrent clients per path (on SQLite the engine path is also measured with
        /// writers waiting in SQLite's busy handler, for comparison).
        #[arg(long, default_value_t = 1)]
        clients: usize,
    },
    /// Data scale: fill 100,000 instances with 1,000,000 history records, then measure a
    /// 50-item list, deep paging and a filter over HTTP (with statements per request),
    /// `audit verify` (records/s, RSS) and the process RSS, next to the list's bare SQL.
    /// Use a scratch database: the fill adds to what is there.
    Scale {
        #[arg(long)]
        db: String,
        #[arg(long, default_value_t = 100_000)]
        instances: usize,
        #[arg(long, default_value_t = 10)]
        records_per_instance: usize,
        /// Requests per list measurement.
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// Measure what is in the database without adding to it.
        #[arg(long)]
        no_fill: bool,
    },
    /// Transitions through GraphQL over HTTP against the store baseline in the same run,
    /// and the latency of a 50-item instance list.
    Graphql {
        #[arg(long)]
        db: String,
        #[arg(long, default_value_t = 2000)]
        transitions: usize,
        /// Concurrent HTTP clients (and baseline clients).
        #[arg(long, default_value_t = 1)]
        clients: usize,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every instance's hash chain; names the first broken record. Non-zero exit
    /// when any chain is broken.
    Verify,
}

#[derive(Subcommand)]
enum WorkflowCommand {
    /// Check workflow files or folders (default: ./workflows); non-zero exit on errors.
    Check {
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = cli::workflow::CheckFormat::Human)]
        format: cli::workflow::CheckFormat,
    },
    /// Draw a workflow: stages as clusters, roles and guards on the edges.
    Diagram {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = cli::workflow::DiagramFormat::Mermaid)]
        format: cli::workflow::DiagramFormat,
    },
    /// Fire events through the engine without a database and print each step with the
    /// deadlines and reminders it would schedule.
    Simulate {
        file: PathBuf,
        /// Roles of the simulated actor, comma separated (e.g. applicant,city,manager).
        #[arg(long = "as", value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// Events, comma separated; `event@2024-06-10T10:00` fires it at that local time.
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
        /// Start time (Asia/Shanghai unless an offset is given).
        #[arg(long)]
        at: String,
        /// Initial instance data as JSON.
        #[arg(long, default_value = "{}")]
        data: String,
        /// Input for an event: `event=JSON`; may be repeated. Required inputs not given are
        /// filled with sample values.
        #[arg(long = "input")]
        inputs: Vec<String>,
        /// The review result guards see, as JSON (e.g. {"total":75,"count":3}).
        #[arg(long, default_value = "null")]
        review: String,
        /// Working-day calendar file (default: the shipped one).
        #[arg(long)]
        calendar: Option<PathBuf>,
    },
    /// Print the JSON Schema of the workflow file format.
    Schema,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Workflow { command } => run_workflow(command, cli.config.as_deref()),
        Command::Schema => {
            print!("{}", grantflow_api::sdl());
            Ok(0)
        }
        command => {
            let config = config::Config::load(cli.config.as_deref())?;
            let exporting = init_tracing(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let result = runtime.block_on(run_async(command, config));
            // Send the spans still waiting in the batch before exiting.
            if let Some(provider) = exporting {
                let _ = provider.shutdown();
            }
            result
        }
    }
}

/// Logs to standard error and, when `[telemetry]` names a collector, spans exported over
/// OTLP/HTTP; the tracer provider to shut down (flush) at exit.
fn init_tracing(
    config: &config::Config,
) -> anyhow::Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = EnvFilter::try_from_env("GRANTFLOW_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let provider = telemetry::provider(&config.telemetry)?;
    let otel = provider.as_ref().map(telemetry::layer);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    if config.log_format == config::LogFormat::Json {
        let _ = registry.with(fmt.json()).try_init();
    } else {
        let _ = registry.with(fmt).try_init();
    }
    Ok(provider)
}

async fn run_async(command: Command, config: config::Config) -> anyhow::Result<i32> {
    match command {
        Command::Serve { demo } => {
            if demo {
                cli::demo::run(&config).await?;
            }
            cli::serve::serve(config).await?;
            Ok(0)
        }
        Command::Demo => {
            cli::demo::run(&config).await?;
            Ok(0)
        }
        Command::Backup { to } => cli::backup::backup(&config, &to).await,
        Command::Restore { from } => cli::backup::restore(&config, &from).await,
        Command::Copy { from, to } => cli::backup::copy(&config, &from, &to).await,
        Command::Migrate => {
            store::open_store(&config).await?;
            println!(
                "database {} is migrated",
                config::redact_url(secrecy::ExposeSecret::expose_secret(&config.database_url))
            );
            Ok(0)
        }
        Command::MigrateInstances {
            workflow,
            from,
            to,
            mappings,
            reason,
            apply,
        } => {
            cli::migrate::migrate_instances(&config, &workflow, from, to, &mappings, &reason, apply)
                .await
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let store = store::open_store(&config).await?;
            let report = grantflow_store::audit::verify_all(store.as_ref()).await?;
            println!("{report}");
            Ok(if report.is_ok() { 0 } else { 1 })
        }
        Command::Scheduler {
            command: SchedulerCommand::RunOnce { now },
        } => {
            let now = now
                .as_deref()
                .map(cli::workflow::parse_datetime)
                .transpose()?;
            cli::scheduler::run_once(&config, now).await
        }
        #[cfg(feature = "bench")]
        Command::Bench {
            command:
                BenchCommand::Smtp {
                    host,
                    port,
                    messages,
                },
        } => {
            cli::bench_smtp::smtp(&host, port, messages).await?;
            Ok(0)
        }
        #[cfg(feature = "bench")]
        Command::Bench {
            command:
                BenchCommand::Timers {
                    db,
                    instances,
                    timers_per_instance,
                    batch_size,
                    before_batch_size,
                },
        } => {
            cli::bench::timers(
                &db,
                cli::bench::TimerBenchOptions {
                    instances,
                    timers_per_instance,
                    batch_size,
                    before_batch_size,
                },
            )
            .await?;
            Ok(0)
        }
        #[cfg(feature = "bench")]
        Command::Bench {
            command:
                BenchCommand::Transitions {
                    db,
                    transitions,
                    clients,
                },
        } => {
            cli::bench_transitions::transitions(&db, transitions, clients).await?;
            Ok(0)
        }
        #[cfg(feature = "bench")]
        Command::Bench {
            command:
                BenchCommand::Graphql {
                    db,
                    transitions,
                    clients,
                },
        } => {
            cli::bench_transitions::graphql(&db, transitions, clients, &config.workflows_dir)
                .await?;
            Ok(0)
        }
        #[cfg(feature = "bench")]
        Command::Bench {
            command:
                BenchCommand::Scale {
                    db,
                    instances,
                    records_per_instance,
                    requests,
                    no_fill,
                },
        } => {
            let options = cli::bench_scale::ScaleOptions {
                instances,
                records_per_instance,
                requests,
                no_fill,
            };
            cli::bench_scale::scale(&db, options, &config.workflows_dir).await?;
            Ok(0)
        }
        Command::Workflow { .. } | Command::Schema => unreachable!("handled without a runtime"),
    }
}

fn run_workflow(command: WorkflowCommand, config: Option<&std::path::Path>) -> anyhow::Result<i32> {
    match command {
        WorkflowCommand::Check { paths, format } => {
            cli::workflow::check(&paths, format == cli::workflow::CheckFormat::Json)
        }
        WorkflowCommand::Diagram { file, format } => {
            cli::workflow::diagram(&file, format)?;
            Ok(0)
        }
        WorkflowCommand::Simulate {
            file,
            roles,
            events,
            at,
            data,
            inputs,
            review,
            calendar,
        } => {
            let parse_json = |what: &str, text: &str| -> anyhow::Result<serde_json::Value> {
                serde_json::from_str(text).map_err(|e| anyhow::anyhow!("--{what} is not JSON: {e}"))
            };
            let inputs = inputs
                .iter()
                .map(|spec| {
                    let (event, json) = spec
                        .split_once('=')
                        .ok_or_else(|| anyhow::anyhow!("--input `{spec}`: write event=JSON"))?;
                    Ok((event.to_string(), parse_json("input", json)?))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let workflows_dir = config::Config::load(config)
                .map(|c| c.workflows_dir)
                .unwrap_or_else(|_| PathBuf::from("workflows"));
            cli::workflow::simulate(cli::workflow::SimulateArgs {
                file,
                roles,
                events,
                at: cli::workflow::parse_datetime(&at)?,
                data: parse_json("data", &data)?,
                inputs,
                review: parse_json("review", &review)?,
                calendar: workflows::load_calendar(calendar.as_deref(), &workflows_dir)?,
            })
        }
        WorkflowCommand::Schema => {
            let schema = grantflow_domain::schema::workflow_json_schema();
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(0)
        }
    }
}
