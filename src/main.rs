//! The `citydb` command: serve the API, and the operator's tools around the log.

mod demo;
mod export;
#[cfg(test)]
mod fuzz;
mod import;
mod lines;
mod out;
mod progress;
mod verify;

use out::say;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use citydb_api::{AuthConfig, FieldGroup, Node, NodeOptions, Role, Token};
use citydb_log::{EventLog, LogError};
use citydb_projections::{ProjectionConfig, Projections};
use citydb_sqlite::{Durability, SqliteConfig, SqliteLog};
use citydb_store::{Store, StoreConfig};

#[derive(Parser)]
#[command(
    name = "citydb",
    version,
    about = "The shared master database of a city: append-only, hash-chained registers of citizens, businesses and land parcels behind a GraphQL API.",
    after_help = "Exit codes: 0 success; 1 error; 2 broken hash chain (verify); 3 some lines rejected (import).\nSee docs/operations.md."
)]
struct Cli {
    /// Log line format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// What to log, as a tracing filter (e.g. `info`, `citydb::http=warn,info`). Default: the
    /// RUST_LOG environment variable, else `info` for serve and `warn` for the tools.
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

#[derive(clap::Args, Clone)]
struct DataArgs {
    /// The data directory (log.db, access-log.db, projections.db).
    #[arg(long, default_value = "./citydb-data", value_name = "DIR")]
    data: PathBuf,
    /// Where the logs live: `embedded` (SQLite files in the data directory) or a
    /// `postgres://user@host:port/database` URL shared by several nodes (the data directory
    /// then holds only this node's projections).
    #[arg(long, default_value = "embedded", value_name = "URL")]
    store: Store,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ImportDurability {
    /// No fsync per commit; the WAL and the database are fsync'd once at the end, before the
    /// summary is printed. A crash (or power loss) mid-import loses at most lines not yet
    /// reported; re-running the import is idempotent.
    Normal,
    /// fsync every commit, as the server does (slower).
    Full,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API (and GraphiQL) over HTTP.
    ///
    /// Routes: /graphql (POST, GET, WebSocket), /graphiql, /healthz, /readyz, and /metrics
    /// (Prometheus text format, no token: keep it off the public network, or move it with
    /// --metrics-listen). One log line per request: method, path, status, latency, principal.
    ///
    /// Listens first: /readyz answers 503 with the reason (opening the data directory,
    /// loading the demo data, a log that cannot be written, projections catching up) until
    /// the node can work.
    Serve {
        #[command(flatten)]
        data: DataArgs,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: String,
        /// Serve /metrics on this address only (e.g. 127.0.0.1:9090) instead of on --listen.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<String>,
        /// The principals and their token hashes (TOML; see `citydb token` and
        /// docs/operations.md).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Seed the data directory with the demo fixture (one line at a time: the same
        /// positions everywhere) and make one token per role, kept in DIR/demo-tokens.json
        /// and reused on every later start.
        #[arg(long)]
        demo: bool,
        #[command(flatten)]
        admission: AdmissionArgs,
    },
    /// Verify the hash chain (exit 0 intact, 2 broken, 1 could not run).
    ///
    /// By default the whole event log of --data; --stream checks one stream; --file checks an
    /// export offline (no data directory needed). Prints the head (position and hash) to write
    /// down, and on a break the first bad position and why.
    Verify {
        #[command(flatten)]
        data: DataArgs,
        /// Verify only this stream (e.g. `citizen-<uuid>`).
        #[arg(long, value_name = "ID", conflicts_with = "file")]
        stream: Option<String>,
        /// Verify an export file (from `citydb export`, either format) instead of a store;
        /// `-` reads standard input (`citydb export | citydb verify --file -`).
        #[arg(long, value_name = "EXPORT")]
        file: Option<PathBuf>,
        /// The head recorded earlier, as POSITION:HASH: the log must still hold that event
        /// with that hash (detects a cut-off or rewritten tail).
        #[arg(long, value_name = "POSITION:HASH", conflicts_with = "stream")]
        expected_head: Option<String>,
        /// Verify the access log (access-log.db) instead of the event log.
        #[arg(long, conflicts_with = "file")]
        access_log: bool,
    },
    /// Execute NDJSON command requests (one per line, each with a command id).
    ///
    /// Idempotent: re-running a file adds nothing. Lines run concurrently when they touch
    /// different records and in file order when they share one, so the result equals a
    /// one-at-a-time import. A bad line is reported (line number, code, reason) and skipped.
    /// Exit 0 when every line was accepted or already imported, 3 when some were rejected,
    /// 1 on errors.
    Import {
        #[command(flatten)]
        data: DataArgs,
        /// The NDJSON file (`-` for standard input).
        file: PathBuf,
        /// Commands in flight at once (1: strictly one after the other).
        #[arg(long, default_value_t = import::DEFAULT_JOBS, value_name = "N")]
        jobs: usize,
        /// How commits reach the disk during the import.
        #[arg(long, value_enum, default_value_t = ImportDurability::Normal)]
        durability: ImportDurability,
    },
    /// Write the whole log as NDJSON, one event per line with every field of the hash chain.
    ///
    /// The format is specified in docs/audit-format.md ("Export format"); `citydb verify
    /// --file` and tools/verify_export.py verify an export offline.
    Export {
        #[command(flatten)]
        data: DataArgs,
        /// Output file (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = export::Format::Ndjson)]
        format: export::Format,
        /// Export the access log (access-log.db) instead of the event log.
        #[arg(long)]
        access_log: bool,
    },
    /// Remove projections.db (with its -wal and -shm, without opening it: it may be damaged)
    /// and rebuild the read models from the log.
    ///
    /// Stop the server first (it rebuilds missing, outdated or damaged projections itself on
    /// start).
    RebuildProjections {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Create a bearer token; print it once, and the config entry holding only its hash.
    Token {
        /// The principal's id (it appears in the access log: keep it meaningful).
        #[arg(long)]
        id: String,
        /// The principal's role.
        #[arg(long, value_parser = ["service", "steward", "supervisor", "auditor", "admin"])]
        role: String,
        /// For a service: a field group it may read (repeat the option for several):
        /// identity, residence, family, business, land.
        #[arg(long = "field-group", value_name = "GROUP")]
        field_groups: Vec<String>,
        /// For a service: a purpose it may state in X-Purpose (repeatable).
        #[arg(long = "purpose", value_name = "PURPOSE")]
        purposes: Vec<String>,
    },
    /// Copy a whole log between stores, verbatim (positions, times and hashes), verifying the
    /// source while reading and the target afterwards.
    ///
    /// Each side is an SQLite file (`DIR/log.db`) or a `postgres://` URL. Resumable: a target
    /// that already holds the start of the source continues from there. Exit 0 when both
    /// heads are equal and verified, 2 when a chain is broken or the target diverges, 1 on
    /// other errors.
    Migrate {
        /// Source: an SQLite log file or a postgres:// URL.
        #[arg(long, value_name = "FILE|URL")]
        from: String,
        /// Target: an SQLite log file (created if missing) or a postgres:// URL.
        #[arg(long, value_name = "FILE|URL")]
        to: String,
        /// Copy the access log (`access-log.db`, or schema `citydb_access`) instead.
        #[arg(long)]
        access_log: bool,
        /// Events per copied batch.
        #[arg(long, default_value_t = 2000, value_name = "N")]
        batch: usize,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Generate deterministic, realistic Hải Phòng data as import NDJSON.
    Fixtures {
        /// Citizens of the initial load (businesses = 15%, parcels = 50% of it).
        #[arg(long)]
        citizens: u64,
        /// Seed of the generator: the same seed gives the same file.
        #[arg(long, default_value_t = 2025)]
        seed: u64,
        /// Output file (`-` for standard output).
        #[arg(long, default_value = "-", value_name = "FILE")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_filter = if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    };
    if let Err(e) = init_logging(cli.log_format, cli.log.as_deref(), default_filter) {
        eprintln!("error: {e:#}");
        return ExitCode::from(1);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        // `citydb export | head`: what was asked for was not all delivered, which is a failure
        // of the command, but not a crash and not worth the io error's wording.
        Err(e) if out::is_closed_pipe(e.as_ref()) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: standard output was closed before the output was complete"
            );
            ExitCode::from(1)
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(format: LogFormat, filter: Option<&str>, default: &str) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::try_new(f).with_context(|| format!("bad --log filter {f:?}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
    };
    // Colours only on a terminal: a log file or a journal would get raw escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            data,
            listen,
            metrics_listen,
            config,
            demo,
            admission,
        } => {
            serve(
                data.data,
                data.store,
                listen,
                metrics_listen,
                config,
                demo,
                admission.limits(),
            )
            .await
        }
        Command::Verify {
            data,
            stream,
            file,
            expected_head,
            access_log,
        } => {
            let expected_head = expected_head
                .as_deref()
                .map(verify::parse_head)
                .transpose()
                .context("--expected-head")?;
            run_verify(
                &data.data,
                &data.store,
                stream,
                file,
                expected_head,
                access_log,
            )
            .await
        }
        Command::Import {
            data,
            file,
            jobs,
            durability,
        } => run_import(&data.data, &data.store, &file, jobs, durability).await,
        Command::Export {
            data,
            out,
            format,
            access_log,
        } => run_export(&data.data, &data.store, out, format, access_log).await,
        Command::RebuildProjections { data } => rebuild_projections(&data.data, &data.store).await,
        Command::Token {
            id,
            role,
            field_groups,
            purposes,
        } => token(&id, &role, &field_groups, &purposes),
        Command::Fixtures {
            citizens,
            seed,
            out,
        } => {
            let config = citydb_fixtures::FixtureConfig::scaled(citizens, seed);
            let stats = if out == Path::new("-") {
                citydb_fixtures::write_ndjson(
                    &config,
                    std::io::BufWriter::new(std::io::stdout().lock()),
                )?
            } else {
                let file = std::fs::File::create(&out)
                    .with_context(|| format!("cannot create {}", out.display()))?;
                citydb_fixtures::write_ndjson(&config, std::io::BufWriter::new(file))?
            };
            eprintln!("{} lines, {} bytes", stats.lines, stats.bytes);
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate {
            from,
            to,
            access_log,
            batch,
        } => migrate(&from, &to, access_log, batch).await,
        Command::Schema => {
            out::text(&citydb_api::schema::sdl());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn token(
    id: &str,
    role: &str,
    field_groups: &[String],
    purposes: &[String],
) -> anyhow::Result<ExitCode> {
    let role: Role = role.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    if role != Role::Service && !field_groups.is_empty() {
        anyhow::bail!("only services are scoped by field group; other roles read every group");
    }
    for group in field_groups {
        group
            .parse::<FieldGroup>()
            .map_err(|_| anyhow::anyhow!("unknown field group {group:?}"))?;
    }
    let token = Token::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut entry = format!(
        "[[principal]]\nid = {}\nrole = \"{}\"\ntoken_hash = \"{}\"\n",
        toml_string(id),
        role.as_str(),
        token.hash()
    );
    if !field_groups.is_empty() {
        let list: Vec<String> = field_groups.iter().map(|g| toml_string(g)).collect();
        entry.push_str(&format!("field_groups = [{}]\n", list.join(", ")));
    }
    if !purposes.is_empty() {
        let list: Vec<String> = purposes.iter().map(|p| toml_string(p)).collect();
        entry.push_str(&format!("purposes = [{}]\n", list.join(", ")));
    }
    say!(
        "# Give this token to {id}; it is not stored anywhere:\n# {}",
        token.as_str()
    );
    out::text(&entry);
    if role == Role::Service && field_groups.is_empty() {
        eprintln!(
            "note: a service with no --field-group reads no personal field; add field_groups to the entry"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A TOML basic string (JSON string escaping is valid TOML for these characters).
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

async fn open_node(options: NodeOptions, store: &Store) -> anyhow::Result<Node> {
    let dir = options.data_dir.clone();
    let opened = citydb_store::open(store, &dir, &StoreConfig::default())
        .await
        .with_context(|| format!("cannot open the data directory {}", dir.display()))?;
    Node::open(opened.log, opened.access, opened.probe, options)
        .await
        .with_context(|| format!("cannot open the data directory {}", dir.display()))
}

/// Opens an existing log: a file of the data directory, or the PostgreSQL store's event log
/// (`log.db`) or access log (`access-log.db`).
async fn open_existing_log(
    data: &Path,
    store: &Store,
    file: &str,
) -> anyhow::Result<Arc<dyn EventLog>> {
    if let Store::Postgres(_) = store {
        let opened = citydb_store::open(store, data, &StoreConfig::default())
            .await
            .context("cannot open the PostgreSQL store")?;
        return Ok(if file == "access-log.db" {
            opened.access
        } else {
            opened.log
        });
    }
    let path = data.join(file);
    if !path.exists() {
        anyhow::bail!("no log at {}", path.display());
    }
    let log = SqliteLog::open(&path, SqliteConfig::default())
        .with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Arc::new(log))
}

/// What each principal may use (docs/operations.md, "Limits").
#[derive(clap::Args, Debug)]
struct AdmissionArgs {
    /// Sustained requests per second per principal (0: no rate limit).
    #[arg(long, default_value_t = 0, value_name = "N")]
    rate_limit: u32,
    /// Requests a principal may send at once after a quiet period (default: one second's worth).
    #[arg(long, value_name = "N")]
    rate_burst: Option<u32>,
    /// Requests (and open WebSocket connections) in flight per principal (0: no bound).
    #[arg(long, default_value_t = 64, value_name = "N")]
    max_in_flight: u32,
}

impl AdmissionArgs {
    fn limits(&self) -> citydb_api::PrincipalLimits {
        citydb_api::PrincipalLimits {
            requests_per_second: self.rate_limit,
            burst: self.rate_burst.unwrap_or(self.rate_limit),
            max_in_flight: self.max_in_flight,
        }
    }
}

/// How often `serve --config FILE` looks at the file for changes (it also reloads on SIGHUP).
const PRINCIPALS_POLL: std::time::Duration = std::time::Duration::from_secs(2);

#[allow(clippy::too_many_arguments)]
async fn serve(
    data: PathBuf,
    store: Store,
    listen: String,
    metrics_listen: Option<String>,
    config: Option<PathBuf>,
    demo: bool,
    admission: citydb_api::PrincipalLimits,
) -> anyhow::Result<ExitCode> {
    let principals_file = config.clone();
    let (auth, tokens) = match (config, demo) {
        (Some(path), _) => (
            AuthConfig::load(&path).with_context(|| format!("cannot load {}", path.display()))?,
            None,
        ),
        (None, true) => {
            let (auth, tokens) = demo::principals(&data)?;
            (auth, Some(tokens))
        }
        (None, false) => {
            anyhow::bail!("no principals: pass --config FILE (see `citydb token`), or --demo")
        }
    };
    if auth.principals.is_empty() {
        anyhow::bail!("the configuration names no principal: every request would be refused");
    }
    let mut options = NodeOptions::new(&data, auth);
    options.expose_metrics = metrics_listen.is_none();
    options.server_limits.per_principal = admission;
    // Listen before any long start-up work (opening the data directory checks the
    // projections file; --demo loads data): a client then gets 503 and the reason from
    // /readyz instead of "connection refused".
    let opening = citydb_api::startup::Opening::new("opening the data directory");
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(citydb_api::serve(
        listener,
        opening.router(),
        citydb_api::shutdown_signal(),
    ));
    say!(
        "citydb serving {} on http://{addr}/graphql (GraphiQL: http://{addr}/graphiql)",
        data.display()
    );
    let node = open_node(options, &store).await?;
    // A leaked token is revoked by editing the file: no restart.
    let _reload = principals_file
        .map(|path| citydb_api::reload::spawn_reload(node.authenticator(), path, PRINCIPALS_POLL));
    let seeding = tokens
        .as_ref()
        .map(|_| node.hold_readiness("loading the demo data"));
    opening.open(node.router());
    let metrics_server = match &metrics_listen {
        Some(metrics_addr) => {
            let metrics_listener = tokio::net::TcpListener::bind(metrics_addr)
                .await
                .with_context(|| format!("cannot listen on {metrics_addr}"))?;
            let bound = metrics_listener.local_addr()?;
            say!("citydb metrics on http://{bound}/metrics");
            let router = node.metrics_router();
            Some(tokio::spawn(async move {
                citydb_api::serve(metrics_listener, router, citydb_api::shutdown_signal()).await
            }))
        }
        None => None,
    };
    tracing::info!(%addr, data = %data.display(), "serving");
    if let Some(tokens) = &tokens {
        demo::seed(&node).await?;
        drop(seeding);
        demo::print_tour(&addr.to_string(), &data, tokens);
    }
    server
        .await
        .context("the server task failed")?
        .context("the server failed")?;
    if let Some(task) = metrics_server {
        task.abort();
    }
    say!("citydb stopped");
    Ok(ExitCode::SUCCESS)
}

async fn run_import(
    data: &Path,
    store: &Store,
    file: &Path,
    jobs: usize,
    durability: ImportDurability,
) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    let config = SqliteConfig {
        durability: match durability {
            ImportDurability::Normal => Durability::Normal,
            ImportDurability::Full => Durability::Full,
        },
        ..SqliteConfig::default()
    };
    let path = data.join("log.db");
    let log: Arc<dyn EventLog> = match store {
        // PostgreSQL commits are durable as the server is configured; --durability is moot.
        Store::Postgres(_) => open_existing_log(data, store, "log.db").await?,
        Store::Embedded => Arc::new(
            SqliteLog::open(&path, config)
                .with_context(|| format!("cannot open {}", path.display()))?,
        ),
    };
    let (reader, len): (Box<dyn std::io::BufRead>, Option<u64>) = if file == Path::new("-") {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let f =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(std::io::BufReader::with_capacity(1 << 16, f)), len)
    };
    let progress = progress::bytes(len, "importing");
    let started = Instant::now();
    let options = import::ImportOptions { jobs };
    let result = import::import_lines(log.clone(), reader, &options, &progress).await;
    progress.finish_and_clear();
    // Closing the log checkpoints its WAL; then make everything on disk durable before
    // anything is reported as imported.
    drop(log);
    let synced = if durability == ImportDurability::Normal {
        sync_log_files(data)
    } else {
        Ok(())
    };
    let summary = result?;
    synced.context("cannot flush the log to disk")?;
    let elapsed = started.elapsed();
    say!("{summary}");
    say!(
        "{} events appended in {:.1} s ({:.0} events/s, {:.0} lines/s)",
        summary.events,
        elapsed.as_secs_f64(),
        summary.events as f64 / elapsed.as_secs_f64().max(1e-9),
        summary.lines as f64 / elapsed.as_secs_f64().max(1e-9),
    );
    Ok(if summary.rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// fsyncs the log, its WAL and the directory: after a `Durability::Normal` import, every
/// commit is then as durable as with `Full`.
fn sync_log_files(data: &Path) -> anyhow::Result<()> {
    for name in ["log.db-wal", "log.db"] {
        let path = data.join(name);
        match std::fs::File::open(&path) {
            Ok(f) => f
                .sync_all()
                .with_context(|| format!("cannot fsync {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
        }
    }
    #[cfg(unix)]
    std::fs::File::open(data)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot fsync {}", data.display()))?;
    Ok(())
}

async fn run_export(
    data: &Path,
    store: &Store,
    out: Option<PathBuf>,
    format: export::Format,
    access_log: bool,
) -> anyhow::Result<ExitCode> {
    let log = open_existing_log(data, store, log_file(access_log)).await?;
    let progress = progress::events("exporting");
    let summary = match &out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut writer = std::io::BufWriter::with_capacity(1 << 16, file);
            let summary = export::export(log, &mut writer, format, &progress).await?;
            writer
                .into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            summary
        }
        None => {
            let mut writer = std::io::BufWriter::new(std::io::stdout().lock());
            let summary = export::export(log, &mut writer, format, &progress).await?;
            writer.flush()?;
            summary
        }
    };
    progress.finish_and_clear();
    match summary.head {
        Some(h) => eprintln!(
            "exported {} events of {}; head: position {} hash {}",
            summary.events,
            log_file(access_log),
            h.position,
            h.hash
        ),
        None => eprintln!("exported 0 events: {} is empty", log_file(access_log)),
    }
    Ok(ExitCode::SUCCESS)
}

fn log_file(access_log: bool) -> &'static str {
    if access_log {
        "access-log.db"
    } else {
        "log.db"
    }
}

async fn run_verify(
    data: &Path,
    store: &Store,
    stream: Option<String>,
    file: Option<PathBuf>,
    expected_head: Option<citydb_log::LogHead>,
    access_log: bool,
) -> anyhow::Result<ExitCode> {
    if let Some(path) = file {
        let (input, len): (Box<dyn std::io::Read + Send>, Option<u64>) = if path.as_os_str() == "-"
        {
            (Box::new(std::io::stdin()), None)
        } else {
            let f = std::fs::File::open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let len = f.metadata().ok().map(|m| m.len());
            (Box::new(f), len)
        };
        let progress = progress::bytes(len, "verifying");
        let reader = std::io::BufReader::with_capacity(1 << 16, input);
        let outcome = tokio::task::spawn_blocking({
            let progress = progress.clone();
            move || verify::verify_file(reader, expected_head, &progress)
        })
        .await
        .context("the verification task failed")??;
        progress.finish_and_clear();
        let code = verify::report(&outcome, &path.display().to_string(), true);
        return Ok(ExitCode::from(code));
    }
    let name = log_file(access_log);
    let log = open_existing_log(data, store, name).await?;
    let what = data.join(name).display().to_string();
    let whole_log = stream.is_none();
    let outcome = match stream {
        Some(s) => {
            let id: citydb_log::StreamId = s.parse().with_context(|| format!("stream {s:?}"))?;
            let progress = progress::spinner("verifying");
            let result = log.verify_stream(&id).await;
            progress.finish_and_clear();
            match result {
                // A stream with no events is not "intact": it is not there (a typo in the id,
                // or the wrong store), and an auditor must not read it as a pass.
                Ok(report) if report.events == 0 => anyhow::bail!("no stream {s} in {what}"),
                Ok(report) => verify::Outcome::Report(report),
                Err(citydb_log::LogError::Corrupted { position, reason }) => {
                    verify::Outcome::Undecodable {
                        at: format!("position {position}"),
                        reason,
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => {
            let progress = progress::events("verifying");
            let outcome = verify::verify_log(log, expected_head, &progress).await?;
            progress.finish_and_clear();
            outcome
        }
    };
    Ok(ExitCode::from(verify::report(&outcome, &what, whole_log)))
}

async fn rebuild_projections(data: &Path, store: &Store) -> anyhow::Result<ExitCode> {
    let log = open_existing_log(data, store, "log.db").await?;
    let path = data.join("projections.db");
    let config = ProjectionConfig {
        follow: false,
        ..ProjectionConfig::default()
    };
    // Never opened first: a damaged file may not open at all ("database disk image is
    // malformed"), and everything in it comes back from the log anyway.
    Projections::remove(&path).with_context(|| format!("cannot replace {}", path.display()))?;
    let projections = Projections::open(&path, log.clone(), config).await?;
    let started = Instant::now();
    let progress = progress::events("projecting");
    if let Some(head) = log.head().await? {
        progress.set_length(head.position + 1);
    }
    let position = projections.watch_position();
    let rebuild = projections.rebuild();
    tokio::pin!(rebuild);
    let result = loop {
        tokio::select! {
            result = &mut rebuild => break result,
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                progress.set_position(*position.borrow());
            }
        }
    };
    progress.finish_and_clear();
    result.context("the rebuild failed")?;
    let failures = projections.failures(None, 1000).await?;
    say!(
        "projections rebuilt: {} events in {:.1} s",
        projections.position(),
        started.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        say!(
            "{} event(s) could not be applied (recorded in projection_errors), e.g. position {}: {}",
            failures.len(),
            failures[0].position,
            failures[0].reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens one side of a migration: a `postgres://` URL (its event log, or its access log), or
/// an SQLite file, which must exist unless it is the target.
async fn open_endpoint(
    spec: &str,
    access_log: bool,
    create: bool,
) -> anyhow::Result<Arc<dyn EventLog>> {
    if let Ok(store @ Store::Postgres(_)) = spec.parse::<Store>() {
        let opened = citydb_store::open(&store, Path::new("."), &StoreConfig::default())
            .await
            .with_context(|| format!("cannot open {spec}"))?;
        return Ok(if access_log {
            opened.access
        } else {
            opened.log
        });
    }
    let path = Path::new(spec);
    if !create && !path.exists() {
        anyhow::bail!("no log at {}", path.display());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let log = SqliteLog::open(path, SqliteConfig::default())
        .with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Arc::new(log))
}

async fn migrate(from: &str, to: &str, access_log: bool, batch: usize) -> anyhow::Result<ExitCode> {
    let source = open_endpoint(from, access_log, false).await?;
    let target = open_endpoint(to, access_log, true).await?;
    let progress = progress::events("copying");
    if let Some(head) = source.head().await? {
        progress.set_length(head.position + 1);
    }
    let started = Instant::now();
    let copied = citydb_log::copy_log(&*source, &*target, batch.max(1), |n| {
        progress.set_position(n)
    })
    .await;
    progress.finish_and_clear();
    match copied {
        Ok(report) => {
            say!(
                "copied {} events ({} streams) in {:.1?}; both heads at {}",
                report.events,
                report.streams,
                started.elapsed(),
                report.target_head.map_or_else(
                    || "nothing (empty log)".to_owned(),
                    |h| format!("position {} hash {}", h.position, h.hash)
                ),
            );
            if report.resumed_from > 0 {
                say!("resumed after position {}", report.resumed_from - 1);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(
            e @ (LogError::Corrupted { .. }
            | LogError::CopyDiverged { .. }
            | LogError::CopyRefused { .. }),
        ) => {
            eprintln!("migration refused: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e.into()),
    }
}
