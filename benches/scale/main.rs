//! End-to-end benchmarks of the whole at Hải Phòng scale: the real `citydb` binary (release,
//! built by `cargo bench`) generates, imports, verifies and projects a city, then serves it over
//! loopback to a concurrent GraphQL load whose every response is checked.
//!
//! Run: `CITYDB_SCALE_CITIZENS=20000 cargo bench --bench scale` (figures: docs/benchmarks.md,
//! "End to end at Hải Phòng scale"). It prints a markdown table on stdout and writes it to
//! `<dir>/results.md`.
//!
//! Parameters (environment):
//! - `CITYDB_SCALE_CITIZENS` (20000 = 1/100 of Hải Phòng's 2,000,000; businesses = 15%,
//!   parcels = 50% of it, as `citydb fixtures` makes them), `CITYDB_SCALE_SEED` (2025);
//! - `CITYDB_SCALE_CLIENTS` (32 concurrent clients), `CITYDB_SCALE_SECONDS` (10 s per
//!   operation, after a 1 s warm-up), `CITYDB_SCALE_MAX_REQUESTS` (200000 per operation);
//! - `CITYDB_SCALE_DIR` (default `target/tmp/scale-<citizens>`; emptied first) and
//!   `CITYDB_SCALE_KEEP=1` to keep the data directory and the fixture file afterwards;
//! - `CITYDB_SCALE_REUSE=1`: serve the data directory and fixture an earlier run kept there
//!   (`CITYDB_SCALE_KEEP=1`) instead of making them again, skipping the offline steps — at the
//!   whole city they take over half an hour; implies `CITYDB_SCALE_KEEP=1`. The earlier run's
//!   access log is removed first, so that every run serves from an empty one;
//! - `CITYDB_SCALE_OPS`: only the operations whose label starts with one of these
//!   (comma-separated, e.g. `(a),(a-v)`), to measure or profile one read;
//! - `CITYDB_SCALE_STORE=postgres`: the logs (events and access log) in a throwaway
//!   PostgreSQL cluster the bench starts (as the tests do), every step and the server given
//!   `--store`; the data directory then holds only the projections. Not with
//!   `CITYDB_SCALE_REUSE` (the cluster does not outlive the run).
//!
//! Everything runs on 127.0.0.1; every load is bounded in time and in count.

mod fixture;
mod load;
mod offline;
mod ops;
mod report;
mod server;
mod serving;
mod steps;

use std::path::{Path, PathBuf};

const BIN: &str = env!("CARGO_BIN_EXE_citydb");
const XROAD_USER: &str = "officer-7";
const XROAD_ISSUE: &str = "HS-2026-0042";
/// The purpose the bench's service states on every read (purpose binding, docs/privacy.md).
const XROAD_PURPOSE: &str = "one-stop-shop";

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// The run's parameters (environment; see above).
struct Params {
    citizens: u64,
    seed: u64,
    clients: usize,
    seconds: u64,
    max_requests: u64,
    keep: bool,
    reuse: bool,
    only: Vec<String>,
    /// The logs in a throwaway PostgreSQL cluster (`CITYDB_SCALE_STORE=postgres`).
    postgres: bool,
}

impl Params {
    fn from_env() -> Self {
        Self {
            citizens: env_u64("CITYDB_SCALE_CITIZENS", 20_000),
            seed: env_u64("CITYDB_SCALE_SEED", 2025),
            clients: env_u64("CITYDB_SCALE_CLIENTS", 32) as usize,
            seconds: env_u64("CITYDB_SCALE_SECONDS", 10),
            max_requests: env_u64("CITYDB_SCALE_MAX_REQUESTS", 200_000),
            keep: ["CITYDB_SCALE_KEEP", "CITYDB_SCALE_REUSE"]
                .iter()
                .any(|name| std::env::var(name).is_ok_and(|v| v == "1")),
            reuse: std::env::var("CITYDB_SCALE_REUSE").is_ok_and(|v| v == "1"),
            only: std::env::var("CITYDB_SCALE_OPS")
                .map(|v| v.split(',').map(|p| p.trim().to_owned()).collect())
                .unwrap_or_default(),
            postgres: match std::env::var("CITYDB_SCALE_STORE").as_deref() {
                Ok("postgres") => true,
                Ok("embedded") | Err(_) => false,
                Ok(other) => panic!("CITYDB_SCALE_STORE={other:?}: embedded or postgres"),
            },
        }
    }
}

/// Removes the access log an earlier run served into `data`, so that a reused directory is
/// served as a fresh import is: each run's appends start from an empty log (the first read of
/// a citizen numbers it, later ones do not) and its size and verification are the run's own.
/// The bench owns the directory (a run that does not reuse it empties it whole).
fn fresh_access_log(data: &Path) {
    for name in ["access-log.db", "access-log.db-wal", "access-log.db-shm"] {
        let path = data.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => eprintln!("[scale] removed the earlier run's {name}"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot remove {}: {e}", path.display()),
        }
    }
}

/// Where a run keeps its files: `work` (emptied first) holds the data directory, the step
/// logs, the fixture, the principals and the report.
struct Dirs {
    work: PathBuf,
    data: PathBuf,
    logs: PathBuf,
    fixture: PathBuf,
    data_s: String,
    fixture_s: String,
    /// `--store URL` when the logs are in PostgreSQL; empty for the embedded store.
    store: Vec<String>,
}

impl Dirs {
    /// The run's directories; emptied first unless `reuse`, which requires the data directory
    /// and the fixture of an earlier run.
    fn prepare(citizens: u64, reuse: bool) -> Self {
        let work = std::env::var_os("CITYDB_SCALE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("scale-{citizens}"))
            });
        let data = work.join("data");
        let logs = work.join("logs");
        let fixture = work.join("fixture.ndjson");
        if reuse {
            assert!(
                data.is_dir() && fixture.is_file(),
                "CITYDB_SCALE_REUSE=1 needs {} and {} from an earlier run",
                data.display(),
                fixture.display()
            );
            fresh_access_log(&data);
        } else {
            let _ = std::fs::remove_dir_all(&work);
        }
        std::fs::create_dir_all(&logs).unwrap();
        let data_s = data.to_str().unwrap().to_owned();
        let fixture_s = fixture.to_str().unwrap().to_owned();
        Self {
            work,
            data,
            logs,
            fixture,
            data_s,
            fixture_s,
            store: Vec::new(),
        }
    }

    /// `args`, then where the node's files and logs are: `--data DIR` and, on PostgreSQL,
    /// `--store URL` — what every step and the server are given.
    fn with_data<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = args.to_vec();
        all.extend(["--data", self.data_s.as_str()]);
        all.extend(self.store.iter().map(String::as_str));
        all
    }
}

/// A throwaway PostgreSQL cluster and a database in it for the run's logs.
fn postgres_store() -> (citydb_postgres::testkit::TestCluster, String) {
    let cluster = citydb_postgres::testkit::TestCluster::start()
        .expect("CITYDB_SCALE_STORE=postgres: cannot start a throwaway PostgreSQL cluster");
    let url = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(cluster.create_database())
        .expect("create the run's database");
    eprintln!("[scale] logs in PostgreSQL: {url}");
    (cluster, url)
}

fn main() {
    // `cargo bench` runs every bench with its filter: run only when asked for (or unfiltered).
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| "scale".contains(f.as_str())) {
        return;
    }
    let params = Params::from_env();
    assert!(
        !(params.postgres && params.reuse),
        "CITYDB_SCALE_REUSE needs the embedded store: the PostgreSQL cluster does not outlive a run"
    );
    let mut dirs = Dirs::prepare(params.citizens, params.reuse);
    // Stopped when dropped, at the end of the run.
    let _cluster = params.postgres.then(|| {
        let (cluster, url) = postgres_store();
        dirs.store = vec!["--store".to_owned(), url];
        cluster
    });
    let use_time = steps::time_v_available();
    let load_before = report::loadavg();
    let mut findings: Vec<String> = Vec::new();

    // 1. The offline steps: generate, import, verify, export and verify, rebuild.
    let offline = if params.reuse {
        offline::reuse(&dirs)
    } else {
        offline::run(&params, &dirs, use_time, &mut findings)
    };
    // 2. Serve to a service and a steward: every operation's load, the floor, the access log.
    let (config_path, tokens) = server::principals(&dirs.work);
    let served = serving::run(
        &params,
        &dirs,
        &offline,
        &config_path,
        &tokens,
        use_time,
        &mut findings,
    );
    // 3. The report.
    let md = report::render(
        &params,
        &offline,
        &served,
        use_time,
        &load_before,
        &findings,
    );
    println!("\n{md}");
    std::fs::write(dirs.work.join("results.md"), &md).unwrap();
    eprintln!(
        "[scale] results in {}",
        dirs.work.join("results.md").display()
    );
    if !params.keep {
        let _ = std::fs::remove_dir_all(&dirs.data);
        let _ = std::fs::remove_file(&dirs.fixture);
    }
}
