//! The `citydb` command: serve the API, and the operator's tools around the log.

mod demo;
mod import;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use citydb_api::{AuthConfig, Node, NodeOptions, Token};

#[derive(Parser)]
#[command(
    name = "citydb",
    version,
    about = "The shared master database of a city: append-only, hash-chained registers of citizens, businesses and land parcels behind a GraphQL API."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct DataArgs {
    /// The data directory (log.db, access-log.db, projections.db).
    #[arg(long, default_value = "./citydb-data")]
    data: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API (and GraphiQL) over HTTP.
    Serve {
        #[command(flatten)]
        data: DataArgs,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// The principals and their token hashes (TOML; see docs/operations.md).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Seed the data directory with the demo fixture and make one token per role.
        #[arg(long)]
        demo: bool,
    },
    /// Verify the hash chain of the whole log (exit 0 intact, 2 broken, 1 other errors).
    Verify {
        #[command(flatten)]
        data: DataArgs,
        /// Verify only this stream (e.g. `citizen-<uuid>`).
        #[arg(long)]
        stream: Option<String>,
    },
    /// Execute NDJSON commands (one per line, each with a command id); idempotent.
    Import {
        #[command(flatten)]
        data: DataArgs,
        /// The NDJSON file (`-` for standard input).
        file: PathBuf,
    },
    /// Create a bearer token and print the config entry with its hash.
    Token {
        /// The principal's id.
        #[arg(long)]
        id: String,
        /// service, steward, supervisor, auditor or admin.
        #[arg(long)]
        role: String,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Generate deterministic, realistic Hải Phòng data as import NDJSON.
    Fixtures {
        /// Citizens of the initial load (businesses = 15%, parcels = 50% of it).
        #[arg(long)]
        citizens: u64,
        #[arg(long, default_value_t = 2025)]
        seed: u64,
        /// Output file (`-` for standard output).
        #[arg(long, default_value = "-")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            data,
            listen,
            config,
            demo,
        } => serve(data.data, listen, config, demo).await,
        Command::Verify { data, stream } => verify(data.data, stream).await,
        Command::Import { data, file } => {
            let node = open_node(&data.data, AuthConfig::default()).await?;
            let summary = import::import_file(&node, &file).await?;
            println!("{summary}");
            Ok(if summary.rejected == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        Command::Token { id, role } => {
            let role: citydb_api::Role = role.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let token = Token::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "# Give this token to {id}; it is not stored anywhere:\n# {}",
                token.as_str()
            );
            println!(
                "[[principal]]\nid = {id:?}\nrole = \"{}\"\ntoken_hash = \"{}\"",
                role.as_str(),
                token.hash()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Fixtures {
            citizens,
            seed,
            out,
        } => {
            let config = citydb_fixtures::FixtureConfig::scaled(citizens, seed);
            let stats = if out == std::path::Path::new("-") {
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
        Command::Schema => {
            print!("{}", citydb_api::schema::sdl());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn open_node(data: &std::path::Path, auth: AuthConfig) -> anyhow::Result<Node> {
    Node::open(NodeOptions::new(data, auth))
        .await
        .with_context(|| format!("cannot open the data directory {}", data.display()))
}

async fn serve(
    data: PathBuf,
    listen: String,
    config: Option<PathBuf>,
    demo: bool,
) -> anyhow::Result<ExitCode> {
    let (auth, tokens) = match (config, demo) {
        (Some(path), _) => (
            AuthConfig::load(&path).with_context(|| format!("cannot load {}", path.display()))?,
            None,
        ),
        (None, true) => {
            let (auth, tokens) = demo::tokens()?;
            (auth, Some(tokens))
        }
        (None, false) => {
            anyhow::bail!("no principals: pass --config FILE (see `citydb token`), or --demo")
        }
    };
    if auth.principals.is_empty() {
        anyhow::bail!("the configuration names no principal: every request would be refused");
    }
    let node = open_node(&data, auth).await?;
    if let Some(tokens) = &tokens {
        demo::seed(&node).await?;
        demo::write_tokens(&data, tokens)?;
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    println!(
        "citydb serving {} on http://{addr}/graphql (GraphiQL: http://{addr}/graphiql)",
        data.display()
    );
    if let Some(tokens) = &tokens {
        demo::print_tour(&addr.to_string(), &data, tokens);
    }
    citydb_api::serve(listener, node.router(), citydb_api::shutdown_signal())
        .await
        .context("the server failed")?;
    println!("citydb stopped");
    Ok(ExitCode::SUCCESS)
}

async fn verify(data: PathBuf, stream: Option<String>) -> anyhow::Result<ExitCode> {
    let path = data.join("log.db");
    if !path.exists() {
        anyhow::bail!("no log at {}", path.display());
    }
    let log = citydb_sqlite::SqliteLog::open(&path, citydb_sqlite::SqliteConfig::default())?;
    use citydb_log::EventLog;
    let report = match stream {
        Some(s) => log.verify_stream(&s.parse()?).await?,
        None => log.verify_log(None).await?,
    };
    match (&report.corruption, &report.head) {
        (None, head) => {
            println!(
                "intact: {} events in {} streams",
                report.events, report.streams
            );
            if let Some(h) = head {
                println!("head: position {} hash {}", h.position, h.hash);
            }
            Ok(ExitCode::SUCCESS)
        }
        (Some(c), _) => {
            println!("BROKEN at position {}: {}", c.position, c.breach);
            Ok(ExitCode::from(2))
        }
    }
}
