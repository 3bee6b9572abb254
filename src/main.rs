//! The `citydb` command: serve the API, and the operator's tools around the log.

mod commands;
mod demo;
mod export;
#[cfg(test)]
mod fuzz;
mod import;
mod lines;
mod log_format;
mod log_lines;
mod memory;
mod out;
mod progress;
mod summary;
mod verify;
mod witness;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use citydb_store::Store;

#[derive(Parser)]
#[command(
    name = "citydb",
    version,
    about = "The shared master database of a city: append-only, hash-chained registers of citizens, businesses and land parcels behind a GraphQL API.",
    after_help = "Exit codes: 0 success; 1 error; 2 broken hash chain (verify) or an existing key file (keygen); 3 some lines rejected (import).\nSee docs/operations.md."
)]
struct Cli {
    /// Log line format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// What to log, as a tracing filter (e.g. `info`, `citydb::http=warn,info`). Default: the
    /// RUST_LOG environment variable, else `info` for serve and witness, `warn` for the tools.
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

/// How a long-running command shows its progress and ends (docs/operations.md, "Progress and
/// summaries").
#[derive(clap::Args, Clone, Debug)]
struct ReportArgs {
    /// Progress on standard error: `bar` (indicatif, on a terminal), `plain` (a line every
    /// --progress-interval, no escape codes), `none`; `auto` picks `bar` when standard error is
    /// a terminal, else `plain`.
    #[arg(long, value_enum, default_value_t = progress::Mode::Auto, value_name = "MODE")]
    progress: progress::Mode,
    /// Seconds between two plain progress lines (fractions allowed, e.g. 0.5).
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    progress_interval: f64,
    /// What is printed at the end: the human report (`text`), or also one JSON object on
    /// standard output (`json`; the human report then goes to standard error).
    #[arg(long, value_enum, default_value_t = summary::Format::Text, value_name = "FORMAT")]
    summary: summary::Format,
    /// Write the JSON summary to this file instead of standard output (implies
    /// `--summary json` without moving the human report).
    #[arg(long, value_name = "PATH")]
    summary_file: Option<PathBuf>,
}

impl ReportArgs {
    fn init(&self) -> anyhow::Result<()> {
        let interval = std::time::Duration::try_from_secs_f64(self.progress_interval)
            .ok()
            .filter(|d| !d.is_zero())
            .context("--progress-interval must be a positive number of seconds")?;
        progress::init(self.progress, interval);
        summary::init(self.summary, self.summary_file.clone());
        Ok(())
    }
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ImportMode {
    /// Bulk when nobody else has the embedded store open (or a PostgreSQL store holds no
    /// events yet); careful otherwise.
    Auto,
    /// Hold the store alone: commands one after the other in file order, decided on state kept
    /// in memory, written in large transactions, then the projections built. Refused while a
    /// server (or anything else) has the embedded store open.
    Bulk,
    /// Through the command handler, beside a running server: several commands at a time
    /// (--jobs), each committed on its own.
    Careful,
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
        #[command(flatten)]
        publish: PublishArgs,
        /// Issue and accept citizen tokens under this key (`citydb keygen --citizen-token`);
        /// revocations are kept in FILE.revocations.json. Every node shares the key. With
        /// --demo, a key made in the data directory is used.
        #[arg(long, value_name = "FILE")]
        citizen_token_key: Option<PathBuf>,
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
        /// `json`: the report as one JSON object on standard output (breach code and
        /// positions, redacted events; the same object as --summary json).
        #[arg(long, value_enum, value_name = "FORMAT", conflicts_with = "summary")]
        format: Option<summary::Format>,
        #[command(flatten)]
        proofs: ProofArgs,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Print a receipt (C2SP tlog-proof@v1) that the event at --position is in the log: the
    /// event hash, its inclusion proof and the signed checkpoint it leads to. Anyone checks it
    /// offline with `citydb verify --proof FILE --vkey KEY` or tools/verify_tlog.py.
    Prove {
        #[command(flatten)]
        data: DataArgs,
        /// The log position (of the access log's entry with --access-log).
        #[arg(long, value_name = "N")]
        position: u64,
        /// Prove an entry of the access log instead.
        #[arg(long)]
        access_log: bool,
        /// Sign a checkpoint now if none covers the position yet (the server's key).
        #[arg(long, value_name = "FILE")]
        signing_key: Option<PathBuf>,
    },
    /// Execute NDJSON command requests (one per line, each with a command id).
    ///
    /// Idempotent: re-running a file adds nothing. Every line gets the answer a one-at-a-time
    /// import in file order would give it, in either mode (--mode): bulk when the import can
    /// hold the store alone (the projections built at the end; killed, the same command
    /// continues where it stopped), careful beside a running server. A bad line is reported
    /// (line number, code, reason) and skipped.
    /// Exit 0 when every line was accepted or already imported, 3 when some were rejected,
    /// 1 on errors.
    Import {
        #[command(flatten)]
        data: DataArgs,
        /// The NDJSON file (`-` for standard input).
        file: PathBuf,
        /// How the commands are executed; every mode gives every line the same answer.
        #[arg(long, value_enum, default_value_t = ImportMode::Auto)]
        mode: ImportMode,
        /// Careful mode: commands in flight at once (1: strictly one after the other).
        #[arg(long, default_value_t = import::DEFAULT_JOBS, value_name = "N")]
        jobs: usize,
        /// How commits reach the disk during the import.
        #[arg(long, value_enum, default_value_t = ImportDurability::Normal)]
        durability: ImportDurability,
        /// Bulk mode: record states held in memory (about 1 KB each) before the least
        /// recently used are set aside in a temporary file in TMPDIR; bounds the import's heap.
        #[arg(long, default_value_t = citydb_registry::DEFAULT_STATES_IN_MEMORY, value_name = "N")]
        states_in_memory: usize,
        #[command(flatten)]
        report: ReportArgs,
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
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Remove projections.db (with its -wal and -shm, without opening it: it may be damaged)
    /// and rebuild the read models from the log.
    ///
    /// Stop the server first (it rebuilds missing, outdated or damaged projections itself on
    /// start).
    RebuildProjections {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Create a bearer token; print it once, and the config entry holding only its hash.
    Token {
        /// The principal's id (it appears in the access log: keep it meaningful); for a citizen
        /// token, the issuer recorded in it.
        #[arg(long)]
        id: String,
        /// The principal's role. `citizen` prints a signed citizen token instead (no
        /// configuration entry): give --citizen and --citizen-token-key.
        #[arg(long, value_parser = ["service", "steward", "supervisor", "auditor", "admin", "citizen"])]
        role: String,
        /// For a citizen token: the person's PIN (looked up in DIR/projections.db) or record
        /// id (`citizen-<uuid>`).
        #[arg(
            long,
            value_name = "PIN_OR_RECORD_ID",
            required_if_eq("role", "citizen")
        )]
        citizen: Option<String>,
        /// For a citizen token: the installation's citizen-token key (`serve
        /// --citizen-token-key`; DIR/demo-citizen-token-key for the demo).
        #[arg(long, value_name = "FILE", required_if_eq("role", "citizen"))]
        citizen_token_key: Option<PathBuf>,
        /// For a citizen token: its lifetime in seconds (at most a day).
        #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
        ttl: i64,
        /// For a citizen token given a PIN: the data directory whose projections resolve it.
        #[arg(long, default_value = "./citydb-data", value_name = "DIR")]
        data: PathBuf,
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
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Make a signer key: a log's checkpoint key, or with --cosigner a witness's cosigning
    /// key. Writes FILE (mode 0600; exit 2 if it exists) and prints the verifier key.
    Keygen {
        /// The key name: the log's origin (e.g. `city.example/citydb`), or the witness's name.
        #[arg(long, value_name = "NAME", required_unless_present = "citizen_token")]
        origin: Option<String>,
        /// A citizen-token key (`serve --citizen-token-key`) instead of a signing key.
        #[arg(long, conflicts_with_all = ["origin", "cosigner"])]
        citizen_token: bool,
        /// A witness's cosigning key (signed-note type 0x04) instead of a log's (0x01).
        #[arg(long)]
        cosigner: bool,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Run a C2SP tlog-witness: cosign the checkpoints of the logs given by --log-key that are
    /// consistent with the last one it cosigned (POST /add-checkpoint; GET
    /// /<sha256(origin)>/checkpoint for monitors).
    Witness {
        /// The witness's cosigning key (`citydb keygen --cosigner`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// A log's verifier key (repeat for several logs).
        #[arg(long = "log-key", value_name = "VKEY", required = true)]
        logs: Vec<String>,
        /// The witness's state (SQLite, created if missing): back it up, never restore an
        /// older copy.
        #[arg(long, value_name = "FILE")]
        state: PathBuf,
        /// Address to listen on (the submission and monitoring prefixes are its root).
        #[arg(long, default_value = "127.0.0.1:7001", value_name = "ADDR")]
        listen: String,
    },
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
        /// A file for a store that already holds the fixture of this many citizens (of
        /// `--beside-seed`): only new records, under PINs, enterprise codes and parcel keys
        /// that fixture does not hold. Needs a `--seed` other than that fixture's.
        #[arg(long, value_name = "CITIZENS")]
        beside: Option<u64>,
        /// The seed of the `--beside` fixture.
        #[arg(long, default_value_t = 2025, requires = "beside", value_name = "SEED")]
        beside_seed: u64,
    },
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

/// `verify` of a receipt or against a saved checkpoint (docs/audit-format.md).
#[derive(clap::Args, Debug)]
struct ProofArgs {
    /// Check a receipt from `citydb prove` offline (no store needed); exit 0 valid, 2 not.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["file", "stream", "expected_head", "checkpoint"])]
    proof: Option<PathBuf>,
    /// Check that the current log extends this checkpoint (saved earlier from
    /// /log/checkpoint); exit 0 it does, 2 history was rewritten or cut off.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["file", "stream", "expected_head"])]
    checkpoint: Option<PathBuf>,
    /// The log's verifier key (a vkey, or a file holding vkeys; repeat to add witnesses').
    #[arg(long = "vkey", value_name = "KEY")]
    vkeys: Vec<String>,
    /// With --proof: the event hash (hex) the receipt must prove.
    #[arg(long, value_name = "HEX", requires = "proof")]
    event_hash: Option<String>,
}

/// How `serve` publishes its logs' Merkle trees (docs/operations.md, "The verifiable log").
#[derive(clap::Args, Debug)]
struct PublishArgs {
    /// Sign checkpoints with this key (`citydb keygen --origin ORIGIN --out FILE`). With
    /// --demo, a key made in the data directory is used.
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
    /// Submit each checkpoint to this witness (`URL,VKEY`; repeat for several) and publish it
    /// with their cosignatures.
    #[arg(long = "witness", value_name = "URL,VKEY")]
    witnesses: Vec<citydb_api::witnesses::WitnessConfig>,
    /// Seconds between two checkpoints while the log grows.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    checkpoint_interval: u64,
}

impl Command {
    /// The command's name in its summary, and how it reports, for the long-running ones.
    fn report(&self) -> Option<(&'static str, &ReportArgs)> {
        match self {
            Command::Verify { report, .. } => Some(("verify", report)),
            Command::Import { report, .. } => Some(("import", report)),
            Command::Export { report, .. } => Some(("export", report)),
            Command::Migrate { report, .. } => Some(("migrate", report)),
            Command::RebuildProjections { report, .. } => Some(("rebuild-projections", report)),
            _ => None,
        }
    }
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

fn main() -> ExitCode {
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap would exit 2 on a usage error: verify's "broken". A mistyped flag is an
            // error (1); --help and --version succeed (0).
            return ExitCode::from(u8::from(e.use_stderr()));
        }
    };
    // `verify --format json` is the summary object (one machine-readable report, not two).
    if let Command::Verify {
        format: Some(format),
        report,
        ..
    } = &mut cli.command
    {
        report.summary = *format;
    }
    let serving = matches!(cli.command, Command::Serve { .. } | Command::Witness { .. });
    let default_filter = if serving { "info" } else { "warn" };
    // Serving logs a line per request: written by a thread of their own (crate::log_lines).
    let log_flush = match init_logging(cli.log_format, cli.log.as_deref(), default_filter, serving)
    {
        Ok(flush) => flush,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(1);
        }
    };
    let reported = cli
        .command
        .report()
        .map(|(name, report)| (name, report.init()));
    let command = match reported {
        Some((_, Err(e))) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(1);
        }
        Some((name, Ok(()))) => Some(name),
        None => None,
    };
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
    let outcome = runtime.block_on(run(cli));
    // The command's last log lines before its final error, if any.
    drop(log_flush);
    match outcome {
        Ok(code) => code,
        // `citydb export | head`: what was asked for was not all delivered, which is a failure
        // of the command, but not a crash and not worth the io error's wording.
        Err(e) if out::is_closed_pipe(e.as_ref()) => {
            if let Some(command) = command {
                summary::write_error(command, &e);
            }
            let _ = writeln!(
                std::io::stderr(),
                "error: standard output was closed before the output was complete"
            );
            ExitCode::from(1)
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            if let Some(command) = command {
                summary::write_error(command, &e);
            }
            ExitCode::from(1)
        }
    }
}

/// Installs the logger on standard error. `off_thread`: lines are written by a thread of their
/// own ([`log_lines`]); the returned [`log_lines::Flush`] waits for them when dropped.
fn init_logging(
    format: LogFormat,
    filter: Option<&str>,
    default: &str,
    off_thread: bool,
) -> anyhow::Result<Option<log_lines::Flush>> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    let filter = match filter {
        Some(f) => EnvFilter::try_new(f).with_context(|| format!("bad --log filter {f:?}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
    };
    let (writer, flush) = if off_thread {
        let (lines, flush) =
            log_lines::spawn(std::io::stderr(), log_lines::CAPACITY, log_lines::INTERVAL)
                .context("cannot start the log's thread")?;
        (BoxMakeWriter::new(lines), Some(flush))
    } else {
        (BoxMakeWriter::new(std::io::stderr), None)
    };
    // Colours only on a terminal: a log file or a journal would get raw escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer);
    let installed = match format {
        LogFormat::Text => builder.event_format(log_format::Lines::new()).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    Ok(flush)
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
            publish,
            citizen_token_key,
        } => {
            commands::serve::run(
                data.data,
                data.store,
                listen,
                metrics_listen,
                config,
                demo,
                admission.limits(),
                commands::serve::Publish {
                    signing_key: publish.signing_key,
                    witnesses: publish.witnesses,
                    interval: std::time::Duration::from_secs(publish.checkpoint_interval.max(1)),
                },
                citizen_token_key,
            )
            .await
        }
        Command::Verify {
            data,
            stream,
            file,
            expected_head,
            access_log,
            proofs,
            format: _,
            report: _,
        } => {
            if let Some(proof) = &proofs.proof {
                return commands::prove::verify_receipt(
                    proof,
                    &proofs.vkeys,
                    proofs.event_hash.as_deref(),
                );
            }
            if let Some(checkpoint) = &proofs.checkpoint {
                return commands::prove::verify_checkpoint(
                    &data.data,
                    &data.store,
                    checkpoint,
                    &proofs.vkeys,
                    access_log,
                )
                .await;
            }
            let expected_head = expected_head
                .as_deref()
                .map(verify::parse_head)
                .transpose()
                .context("--expected-head")?;
            commands::verify::run(
                &data.data,
                &data.store,
                stream,
                file,
                expected_head,
                access_log,
            )
            .await
        }
        Command::Prove {
            data,
            position,
            access_log,
            signing_key,
        } => commands::prove::run(&data.data, &data.store, position, access_log, signing_key).await,
        Command::Import {
            data,
            file,
            mode,
            jobs,
            durability,
            states_in_memory,
            report: _,
        } => {
            let options = commands::import::Options {
                mode,
                jobs,
                durability,
                states_in_memory,
            };
            commands::import::run(&data.data, &data.store, &file, options).await
        }
        Command::Export {
            data,
            out,
            format,
            access_log,
            report: _,
        } => commands::export::run(&data.data, &data.store, out, format, access_log).await,
        Command::RebuildProjections { data, report: _ } => {
            commands::rebuild::run(&data.data, &data.store).await
        }
        Command::Token {
            id,
            role,
            field_groups,
            purposes,
            citizen,
            citizen_token_key,
            ttl,
            data,
        } => match (citizen, citizen_token_key) {
            (Some(citizen), Some(key)) if role == "citizen" => {
                commands::token::citizen(&id, &citizen, &key, ttl, &data)
            }
            _ => commands::token::run(&id, &role, &field_groups, &purposes),
        },
        Command::Keygen {
            origin,
            citizen_token,
            cosigner,
            out,
        } => match origin {
            Some(origin) if !citizen_token => commands::keygen::run(&origin, cosigner, &out),
            _ => commands::keygen::citizen_token(&out),
        },
        Command::Witness {
            key,
            logs,
            state,
            listen,
        } => commands::witness::run(&key, &logs, &state, &listen).await,
        Command::Fixtures {
            citizens,
            seed,
            out,
            beside,
            beside_seed,
        } => commands::fixtures::run(citizens, seed, beside.map(|c| (c, beside_seed)), &out),
        Command::Migrate {
            from,
            to,
            access_log,
            batch,
            report: _,
        } => commands::migrate::run(&from, &to, access_log, batch).await,
        Command::Schema => {
            out::text(&citydb_api::schema::sdl());
            Ok(ExitCode::SUCCESS)
        }
    }
}
