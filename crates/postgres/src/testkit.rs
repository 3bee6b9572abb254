//! A throw-away PostgreSQL cluster for tests (feature `testkit`): started by the tests
//! themselves, never one started by hand.
//!
//! [`TestCluster::start`] finds the PostgreSQL binaries (`$CITYDB_PG_BIN`, then `initdb` and
//! `pg_ctl` on `PATH`, then the newest `/usr/lib/postgresql/*/bin`), runs `initdb` in a fresh
//! temporary directory (as the `postgres` OS user when running as root: the server refuses to
//! run as root), and starts the server on `127.0.0.1` at a free port, with its unix sockets in
//! the temporary directory, `fsync` and `synchronous_commit` on, and trust authentication for
//! the superuser `postgres`. Each test then takes a fresh database with
//! [`TestCluster::create_database`], so one cluster serves a whole test binary:
//! [`TestCluster::shared`] starts it once per process.
//!
//! Without PostgreSQL installed, tests call [`TestCluster::shared_or_skip`]: it prints a loud
//! `SKIPPED` line naming the test and the command that installs the server, and the test
//! passes — so `cargo test --workspace` passes on a fresh machine. `CITYDB_REQUIRE_ALL=1`
//! (set by `.ci/run`) turns every such skip into a failure, so CI always runs them; see
//! [`skip`], which other tests that need an optional tool use too. Binaries that are found
//! but fail (initdb errors, no free port) always fail the test: only absence is skipped.
//!
//! Stopping: dropping a cluster stops it (`pg_ctl stop -m immediate`) and removes its
//! directory. The shared cluster is never dropped, so every cluster also has a watchdog
//! process that holds a pipe from the test process and, when that pipe closes — the test
//! process exited, however it exited, even SIGKILLed — stops the server and removes the
//! directory.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The superuser the clusters are created with.
pub const SUPERUSER: &str = "postgres";

/// Why a test cluster could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TestkitError {
    #[error("PostgreSQL binaries not found ({0}); install PostgreSQL or set CITYDB_PG_BIN")]
    NotFound(String),
    #[error("cannot set up the test cluster: {0}")]
    Setup(String),
    #[error("database error: {0}")]
    Database(String),
}

/// How to install what the PostgreSQL tests need (as `.ci/run` does).
pub const INSTALL_POSTGRES: &str =
    "apt-get install postgresql (or set CITYDB_PG_BIN to a directory with initdb and pg_ctl)";

/// The variable that turns every skip into a failure (`.ci/run` sets it).
pub const REQUIRE_ALL: &str = "CITYDB_REQUIRE_ALL";

/// Whether skips are failures in this run: `CITYDB_REQUIRE_ALL` set to anything but `0` or
/// the empty string.
pub fn skips_are_failures() -> bool {
    std::env::var_os(REQUIRE_ALL).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Gives up on `test` because `missing` is not installed: with `CITYDB_REQUIRE_ALL` set this
/// panics (the test fails); otherwise it prints a SKIPPED line and returns, and the caller
/// returns early (the test passes). The line goes straight to the process's standard error:
/// the test harness captures `eprintln!` of passing tests, and a skip must be seen.
pub fn skip(test: &str, missing: &str, install: &str) {
    let line = format!(
        "SKIPPED {test}: {missing}. Install it with: {install}. \
         ({REQUIRE_ALL}=1 makes this a failure, as in CI.)"
    );
    if skips_are_failures() {
        panic!("{line}");
    }
    let _ = writeln!(std::io::stderr(), "\n*** {line}\n");
}

fn setup(what: impl std::fmt::Display) -> TestkitError {
    TestkitError::Setup(what.to_string())
}

/// A running PostgreSQL server in a temporary directory. See the module documentation.
pub struct TestCluster {
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    /// `Some((uid, gid))` of the `postgres` user when commands must run as it.
    run_as: Option<(u32, u32)>,
    watchdog: Mutex<Option<Child>>,
    next_database: AtomicU64,
    // Last, so that the directory is removed after the server is stopped.
    dir: Option<tempfile::TempDir>,
}

impl TestCluster {
    /// Initialises and starts a new cluster; it stops when dropped.
    pub fn start() -> Result<TestCluster, TestkitError> {
        let bin = find_binaries()?;
        let run_as = if current_uid() == Some(0) {
            Some(postgres_user()?)
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("citydb-pg-")
            .tempdir()
            .map_err(setup)?;
        let base = dir.path().to_path_buf();
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&base, Some(uid), Some(gid)).map_err(setup)?;
        }
        let data = base.join("data");
        let log = base.join("server.log");
        let mut cluster = TestCluster {
            bin,
            data,
            log,
            port: 0,
            run_as,
            watchdog: Mutex::new(None),
            next_database: AtomicU64::new(0),
            dir: Some(dir),
        };
        cluster.init(&base)?;
        // A port picked free can be taken before the server binds it: try a few.
        let mut last_error = None;
        for _ in 0..5 {
            cluster.port = free_port()?;
            match cluster.pg_ctl_start() {
                Ok(()) => {
                    cluster.start_watchdog(&base)?;
                    return Ok(cluster);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| setup("the server did not start")))
    }

    /// The cluster shared by every test of this process, started on first use and stopped
    /// (by its watchdog) when the process exits.
    pub fn shared() -> Result<&'static TestCluster, TestkitError> {
        static SHARED: OnceLock<Result<TestCluster, TestkitError>> = OnceLock::new();
        SHARED
            .get_or_init(TestCluster::start)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The shared cluster, or `None` (after a loud `SKIPPED` line; see [`skip`]) when the
    /// PostgreSQL binaries are not installed. Any other failure to start panics.
    pub fn shared_or_skip(test: &str) -> Option<&'static TestCluster> {
        match Self::shared() {
            Ok(cluster) => Some(cluster),
            Err(TestkitError::NotFound(why)) => {
                skip(
                    test,
                    &format!("no PostgreSQL server ({why})"),
                    INSTALL_POSTGRES,
                );
                None
            }
            Err(e) => panic!("{test}: cannot start the PostgreSQL test cluster: {e}"),
        }
    }

    /// The TCP port the server listens on (at `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server's log file, to look at when a test fails.
    pub fn log_file(&self) -> &Path {
        &self.log
    }

    /// The connection URL of `database` as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a fresh, empty database and returns its URL.
    pub async fn create_database(&self) -> Result<String, TestkitError> {
        let n = self.next_database.fetch_add(1, Ordering::Relaxed);
        let name = format!("citydb_test_{n}");
        self.create_database_named(&name).await?;
        Ok(self.url(&name))
    }

    /// Creates an empty database called `name` (a plain SQL identifier).
    pub async fn create_database_named(&self, name: &str) -> Result<(), TestkitError> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(setup(format!("{name:?} is not a plain database name")));
        }
        let client = connect(&self.url("postgres")).await?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(db_error)
    }

    /// Stops the server now (`-m immediate`: nothing needs to survive).
    pub fn stop(&self) {
        let _ = self
            .command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Ok(mut watchdog) = self.watchdog.lock()
            && let Some(mut child) = watchdog.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A command for a PostgreSQL binary, run as the `postgres` user when needed.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = match self.run_as {
            Some(_) => {
                let mut c = Command::new("runuser");
                c.args(["-u", SUPERUSER, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        };
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir.path());
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    fn init(&self, base: &Path) -> Result<(), TestkitError> {
        let out = self
            .command(&self.bin.join("initdb"))
            .arg("-D")
            .arg(&self.data)
            .args([
                "--username",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                // Only initdb's own files skip fsync; the server runs with fsync on.
                "--no-sync",
            ])
            .output()
            .map_err(|e| setup(format!("cannot run initdb: {e}")))?;
        if !out.status.success() {
            return Err(setup(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let mut conf = OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .map_err(setup)?;
        writeln!(
            conf,
            "\n# citydb test cluster\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\nfsync = on\nsynchronous_commit = on\n\
             max_connections = 300\nshared_buffers = 32MB\n",
            base.display()
        )
        .map_err(setup)
    }

    fn pg_ctl_start(&self) -> Result<(), TestkitError> {
        let out_path = self.log.with_extension("pg_ctl");
        let out = std::fs::File::create(&out_path).map_err(setup)?;
        let err = out.try_clone().map_err(setup)?;
        let status = self
            .command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-w", "-t", "60", "-o"])
            .arg(format!("-p {}", self.port))
            .arg("start")
            .stdout(out)
            .stderr(err)
            .status()
            .map_err(|e| setup(format!("cannot run pg_ctl: {e}")))?;
        if status.success() {
            return Ok(());
        }
        let said = std::fs::read_to_string(&out_path).unwrap_or_default();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        Err(setup(format!("pg_ctl start failed: {said}\n{log}")))
    }

    fn start_watchdog(&self, base: &Path) -> Result<(), TestkitError> {
        const SCRIPT: &str = r#"read _ignored
if [ -n "$RUN_AS" ]; then runuser -u "$RUN_AS" -- "$PG_CTL" -D "$DATA" -m immediate stop
else "$PG_CTL" -D "$DATA" -m immediate stop; fi >/dev/null 2>&1
rm -rf "$BASE""#;
        // The pipe to the watchdog's stdin is created close-on-exec, so only this process
        // holds its write end: it closes when this process exits.
        let child = Command::new("sh")
            .args(["-c", SCRIPT])
            .env("RUN_AS", if self.run_as.is_some() { SUPERUSER } else { "" })
            .env("PG_CTL", self.bin.join("pg_ctl"))
            .env("DATA", &self.data)
            .env("BASE", base)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| setup(format!("cannot start the watchdog: {e}")))?;
        if let Ok(mut watchdog) = self.watchdog.lock() {
            *watchdog = Some(child);
        }
        Ok(())
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn db_error(e: tokio_postgres::Error) -> TestkitError {
    TestkitError::Database(crate::describe(&e))
}

/// A plain client for `url`, its connection driven on the current tokio runtime: for raw SQL
/// in tests (tampering, copying rows, inspecting).
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, TestkitError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(db_error)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn find_binaries() -> Result<PathBuf, TestkitError> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("CITYDB_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if has_both(&dir) {
            Ok(dir)
        } else {
            Err(TestkitError::NotFound(format!(
                "CITYDB_PG_BIN={} has no initdb and pg_ctl",
                dir.display()
            )))
        };
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if !initdb.is_file() {
                continue;
            }
            // Prefer the real directory (Debian links the binaries into /usr/local/bin).
            if let Some(real) = std::fs::canonicalize(&initdb)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                && has_both(&real)
            {
                return Ok(real);
            }
            if has_both(&dir) {
                return Ok(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_both(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        TestkitError::NotFound("no initdb on PATH nor in /usr/lib/postgresql/*/bin".into())
    })
}

/// This process's uid: the owner of `/proc/self`.
fn current_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// The `postgres` OS user's uid and gid, from `/etc/passwd`.
fn postgres_user() -> Result<(u32, u32), TestkitError> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(setup)?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                [name, _, uid, gid, ..] if *name == SUPERUSER => {
                    Some((uid.parse().ok()?, gid.parse().ok()?))
                }
                _ => None,
            }
        })
        .ok_or_else(|| {
            setup("running as root needs a `postgres` OS user to run the server as (none found)")
        })
}

fn free_port() -> Result<u16, TestkitError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(setup)?;
    Ok(listener.local_addr().map_err(setup)?.port())
}
