//! The `sightline` binary: `serve` runs the server; `ingest`, `logs`, `import`, `query` and
//! `traces` are clients of a running server over its HTTP API (`--server`, env
//! `SIGHTLINE_SERVER`).

mod client;
mod metrics_client;
mod traces_client;

/// mimalloc instead of glibc's malloc: ingest and scans allocate many small strings from
/// several threads, where glibc's allocator spent ~30% of the server's CPU in profiles
/// (malloc, free, consolidation).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sightline",
    version,
    about = "Self-hosted observability in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Configuration file (default: ./sightline.toml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory [default: ./sightline-data].
        #[arg(long)]
        data_dir: Option<String>,
        /// Main listener (UI, native API, HTTP ingest), host:port or `off` [default: 127.0.0.1:9470].
        #[arg(long)]
        listen: Option<String>,
        /// OTLP/HTTP listener, host:port or `off` [default: 127.0.0.1:4318].
        #[arg(long)]
        otlp_http: Option<String>,
        /// OTLP/gRPC listener, host:port or `off` [default: 127.0.0.1:4317].
        #[arg(long)]
        otlp_grpc: Option<String>,
    },
    /// Send log files (or stdin) to a server.
    Ingest {
        #[command(flatten)]
        conn: client::Connection,
        /// Line format: json, logfmt, nginx, apache, syslog, regex; NDJSON when absent.
        #[arg(long)]
        format: Option<String>,
        /// Service name for records that carry none.
        #[arg(long)]
        service: Option<String>,
        /// Regular expression with named groups, for --format regex.
        #[arg(long)]
        pattern: Option<String>,
        /// Files to send; `-` or none reads stdin.
        files: Vec<PathBuf>,
    },
    /// Search logs: `sightline logs 'service:api level:error'`.
    Logs {
        #[command(flatten)]
        conn: client::Connection,
        /// The log query (see docs/query-language.md).
        query: String,
        /// Print the raw JSON rows instead of a table.
        #[arg(long)]
        json: bool,
        /// Keep streaming matching records as they arrive (live tail).
        #[arg(long, short = 'f')]
        follow: bool,
        /// Range start: RFC 3339 or Unix seconds [default: end - 1h].
        #[arg(long)]
        start: Option<String>,
        /// Range end: RFC 3339 or Unix seconds [default: now].
        #[arg(long)]
        end: Option<String>,
        /// Most records to return.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Send metric samples in Prometheus text or OpenMetrics files (or stdin) to a server.
    Import {
        #[command(flatten)]
        conn: client::Connection,
        /// Exposition format of the files.
        #[arg(long, value_enum, default_value = "prometheus")]
        format: metrics_client::ImportFormat,
        /// Files to send; `-` or none reads stdin.
        files: Vec<PathBuf>,
    },
    /// Evaluate PromQL: `sightline query 'rate(http_requests_total[5m])' [--range 1h --step 1m]`.
    Query {
        #[command(flatten)]
        conn: client::Connection,
        /// The PromQL expression.
        query: String,
        /// Evaluation time (instant) or range end: RFC 3339 or Unix seconds [default: now].
        #[arg(long)]
        time: Option<String>,
        /// Evaluate over this range before --time, e.g. `1h` (a range query).
        #[arg(long)]
        range: Option<String>,
        /// Resolution of a range query, e.g. `1m` or `15` (seconds) [default: range/250].
        #[arg(long)]
        step: Option<String>,
        /// Print the API's JSON `data` instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Search traces and print one as a tree: `sightline traces search|get ...`.
    Traces {
        #[command(subcommand)]
        command: traces_client::TracesCommand,
    },
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or a test harness gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Serve {
                config,
                data_dir,
                listen,
                otlp_http,
                otlp_grpc,
            } => {
                let flags = sightline_server::config::Overrides {
                    data_dir,
                    listen,
                    otlp_http,
                    otlp_grpc,
                };
                let cfg =
                    sightline_server::config::load(config.as_deref(), std::env::vars(), &flags)?;
                init_logging(&cfg.log_level);
                sightline_server::run(cfg, sightline_server::shutdown_signal()).await?;
                Ok(())
            }
            Command::Ingest {
                conn,
                format,
                service,
                pattern,
                files,
            } => client::ingest(&conn, format, service, pattern, files).await,
            Command::Logs {
                conn,
                query,
                json,
                follow,
                start,
                end,
                limit,
            } => {
                if follow {
                    client::tail(&conn, &query, json).await
                } else {
                    client::logs(&conn, &query, json, start, end, limit).await
                }
            }
            Command::Import {
                conn,
                format,
                files,
            } => metrics_client::import(&conn, format, files).await,
            Command::Query {
                conn,
                query,
                time,
                range,
                step,
                json,
            } => {
                let args = metrics_client::QueryArgs {
                    query,
                    time,
                    range,
                    step,
                    json,
                };
                metrics_client::query(&conn, args).await
            }
            Command::Traces { command } => traces_client::run(command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
