//! `server`: runs the product, and a few operator commands.
#![forbid(unsafe_code)]

use anyhow::Context;
use app::model::Role;
use app::ssr::config::{Config, WebhookAuth};
use app::ssr::services::users::{self, NewUser, NewWorkspace};
use clap::{Parser, Subcommand};
use server::rck_sim::{self, SimConfig};
use std::process::ExitCode;
use std::time::Duration;

/// mimalloc instead of the system allocator: a request allocates and frees many small values
/// across threads, where glibc's malloc costs the server about a tenth of its time under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "server", about = "Racky video generation service", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Run the RCK Description server simulator (same contract; calls the callback URLs back).
    RckSim {
        /// Address to listen on (loopback).
        #[arg(long, default_value = "127.0.0.1:8000")]
        listen: std::net::SocketAddr,
        /// Shortest time before a video is finished, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        min_delay_ms: u64,
        /// Longest time before a video is finished, in milliseconds.
        #[arg(long, default_value_t = 4000)]
        max_delay_ms: u64,
        /// Share of videos that fail, 0.0 to 1.0.
        #[arg(long, default_value_t = 0.2)]
        failure_rate: f64,
        /// Require `Authorization: Bearer <key>` on batches.
        #[arg(long, env = "RCK_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Sign every callback (Standard Webhooks) with this `whsec_...` secret.
        #[arg(long, env = "RCK_WEBHOOK_SECRET", hide_env_values = true)]
        webhook_secret: Option<String>,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage workspaces.
    Workspace {
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// Print a bearer token for a user's account (for scripts), on stdout.
    Token {
        #[arg(long)]
        email: String,
        /// How long it lives (default: JWT_TTL_HOURS; at most a year).
        #[arg(long)]
        ttl_hours: Option<u64>,
    },
    /// The webhook event log.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Fill a SQLite store with a large, made-up history for benchmarks (`make bench` uses it):
    /// finished videos and webhook events spread over the last --days days.
    SeedBench {
        /// Where the store goes (its `videos.db`); it should be empty or a bench store.
        #[arg(long, env = "DATA_DIR", default_value = "./data-bench")]
        data_dir: std::path::PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        #[arg(long, default_value_t = 300_000)]
        videos: u64,
        #[arg(long, default_value_t = 30)]
        days: u64,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. The password comes from --password or the USER_PASSWORD variable.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, env = "USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// USER, ADMIN or SUPERADMIN.
        #[arg(long, default_value = "USER")]
        role: String,
        /// Required for USER and ADMIN.
        #[arg(long)]
        workspace_id: Option<String>,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Write the events to stdout as NDJSON (one event per line, newest first), in the REST API's
    /// shape; streamed page by page, so any size fits.
    Export {
        /// Only events at or after this time (RFC 3339, e.g. 2025-01-17T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Only events before this time (RFC 3339; exclusive).
        #[arg(long)]
        until: Option<String>,
        /// Only calls to this endpoint (/videos/success or /videos/failure).
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Apply a recorded callback again through the normal path (the state rules apply); the replay
    /// is recorded as an event of its own. Prints what it was answered.
    Replay {
        /// The webhook event's id.
        id: String,
    },
}

#[derive(Subcommand)]
enum WorkspaceCommand {
    /// Create a workspace and print its id.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        video_limit: u32,
    },
}

/// Logs to stderr, filtered by `RUST_LOG`. `LOG_FORMAT=json`: one JSON object per line, with the
/// event's fields at the top level, the innermost span under `span` and every open span under
/// `spans` (the outermost is the request's: `request_id`, `method`, `route`).
fn init_tracing() -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn,leptos=warn"));
    let format = std::env::var("LOG_FORMAT").unwrap_or_default();
    match format.trim() {
        "" | "text" => tracing_subscriber::fmt()
            .with_env_filter(filter)
            // Colours only for a person at a terminal, never escape codes in a log file.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .init(),
        "json" => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
        other => anyhow::bail!("LOG_FORMAT must be text or json, not {other:?}"),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    if let Err(e) = init_tracing() {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::RckSim {
        listen,
        min_delay_ms,
        max_delay_ms,
        failure_rate,
        api_key,
        webhook_secret,
    } = command
    {
        if !(0.0..=1.0).contains(&failure_rate) {
            anyhow::bail!("--failure-rate must be between 0 and 1");
        }
        let webhook_secret = webhook_secret
            .map(|s| {
                s.parse()
                    .map_err(|e| anyhow::anyhow!("--webhook-secret {e}"))
            })
            .transpose()?;
        let sim = SimConfig {
            min_delay: Duration::from_millis(min_delay_ms),
            max_delay: Duration::from_millis(max_delay_ms.max(min_delay_ms)),
            failure_rate,
            api_key,
            webhook_secret,
        };
        let addr = rck_sim::spawn(listen, sim)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(target: "rck_sim", "RCK simulator listening on http://{addr}");
        shutdown_signal().await;
        return Ok(());
    }
    if let Command::SeedBench {
        data_dir,
        events,
        videos,
        days,
    } = command
    {
        let started = std::time::Instant::now();
        let seeded = tokio::task::spawn_blocking(move || {
            app::ssr::store::sqlite::seed::seed_bench(&data_dir, events, videos, days)
        })
        .await?
        .context("seeding the bench store")?;
        println!(
            "seeded {} events and {} videos (workspace {}) in {:.1} s",
            seeded.events,
            seeded.videos,
            seeded.workspace_id,
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let config = Config::from_env()?;
    match command {
        Command::RckSim { .. } | Command::SeedBench { .. } => unreachable!("handled above"),
        Command::Serve => serve(config).await,
        Command::User {
            command:
                UserCommand::Add {
                    email,
                    password,
                    role,
                    workspace_id,
                },
        } => {
            let role: Role = role.parse().map_err(|_| {
                anyhow::anyhow!("--role must be USER, ADMIN or SUPERADMIN, not {role:?}")
            })?;
            let state = server::build_state(config).await?;
            let user = users::create_user(
                &state,
                NewUser {
                    email,
                    password,
                    role,
                    workspace_id,
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!(e.public_message()))?;
            println!("{}", serde_json::to_string_pretty(&user)?);
            Ok(())
        }
        Command::Token { email, ttl_hours } => {
            let state = server::build_state(config).await?;
            let token = users::token_for(&state, &email, ttl_hours)
                .await
                .map_err(|e| anyhow::anyhow!(e.public_message()))?;
            println!("{token}");
            Ok(())
        }
        Command::Events {
            command:
                EventsCommand::Export {
                    since,
                    until,
                    endpoint,
                },
        } => {
            use std::io::Write;
            let state = server::build_state(config).await?;
            let filter = app::model::filters::EventFilter {
                from: since,
                to: until,
                endpoint,
                ..Default::default()
            };
            let query = app::ssr::services::events::parse_query(&filter)
                .map_err(|e| anyhow::anyhow!(e.public_message()))?;
            use futures::StreamExt;
            let format = app::ssr::services::events::ExportFormat::Ndjson;
            let mut pages = std::pin::pin!(app::ssr::services::events::event_pages(
                state.store.clone(),
                &query
            ));
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut n = 0;
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| anyhow::anyhow!(e.public_message()))?;
                n += page.len();
                out.write_all(format.render(&page).as_bytes())?;
                out.flush()?;
            }
            tracing::info!("exported {n} events");
            Ok(())
        }
        Command::Events {
            command: EventsCommand::Replay { id },
        } => {
            let state = server::build_state(config).await?;
            let done = app::ssr::services::webhooks::replay_as(&state, &id, "the command line")
                .await
                .map_err(|e| anyhow::anyhow!(e.public_message()))?;
            println!("{}", serde_json::to_string_pretty(&done)?);
            Ok(())
        }
        Command::Workspace {
            command: WorkspaceCommand::Add { name, video_limit },
        } => {
            let state = server::build_state(config).await?;
            let ws = users::create_workspace(&state, NewWorkspace { name, video_limit })
                .await
                .map_err(|e| anyhow::anyhow!(e.public_message()))?;
            println!("{}", serde_json::to_string_pretty(&ws)?);
            Ok(())
        }
    }
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    let addr = config.site_addr;
    if config.dev_mode {
        tracing::warn!(
            "DEV_MODE is on: development defaults in use; never run production like this"
        );
        // The demo: with no RCK server configured, an in-process simulator stands in for it.
        if config.rck_url.is_none() {
            let sim_config = SimConfig {
                webhook_secret: config.rck_webhook_secret.clone(),
                ..SimConfig::default()
            };
            let sim = rck_sim::spawn(([127, 0, 0, 1], 0).into(), sim_config)
                .await
                .context("starting the RCK simulator")?;
            tracing::info!(target: "rck_sim", "no RCK_DESCRIPTION_SERVER_URL: using the in-process RCK simulator on http://{sim}");
            config.rck_url = Some(format!("http://{sim}"));
        }
    } else if config.rck_url.is_none() {
        tracing::warn!(target: "bulk_video_generation", "RCK_DESCRIPTION_SERVER_URL is not set: bulk generation answers 503");
    }
    match config.webhook_auth {
        WebhookAuth::Off => {
            tracing::warn!(target: "internal_webhook", "WEBHOOK_AUTH=off: anyone who can reach /internal/videos/* can complete or fail any video")
        }
        WebhookAuth::Token => {
            tracing::info!(target: "internal_webhook", signatures = config.rck_webhook_secret.is_some(), "callbacks authenticated by per-batch token")
        }
        WebhookAuth::Signature => {
            tracing::info!(target: "internal_webhook", "callbacks must be signed with RCK_WEBHOOK_SECRET")
        }
    }
    let options = server::leptos_options(addr);
    let state = server::build_state(config).await?;
    let workers = server::workers::Workers::start(&state);
    tracing::info!(store = state.store.kind(), data_dir = %state.config.data_dir.display(), "store ready");
    if state.config.dev_mode {
        if server::demo::seed(&state).await? {
            tracing::info!("demo data created");
        }
        tracing::info!(
            "DEMO: log in with POST /api/auth/login {{\"email\":\"{}\",\"password\":\"{}\"}} and generate videos with POST /api/videos/bulk-generate (see README)",
            server::demo::DEMO_EMAIL,
            server::demo::DEMO_PASSWORD
        );
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!("listening on http://{addr}");
    let grace = Duration::from_secs(state.config.shutdown_grace_secs);
    let router = server::router(state, options);
    let served = server::serve(listener, router, shutdown_signal(), grace).await;
    workers.stop().await;
    served.context("serving")?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
