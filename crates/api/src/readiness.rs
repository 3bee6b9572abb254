//! What `/readyz` answers for a node: ready only when the node can do its work.
//!
//! A node is ready when all of these hold, checked in this order (the first that fails is the
//! reason given in `/readyz`'s JSON body):
//! 1. it is not starting up (`serve --demo` holds readiness while it loads the demo data);
//! 2. the event log accepts writes and the access log can be written — a node that answers
//!    reads but fails every write, or cannot log a personal read (and so must withhold it), is
//!    not fit for traffic. A [`StoreProbe`] finds out by asking the store, every
//!    `probe_interval`, not by looking at permission bits (root ignores those):
//!    - SQLite: its own connection to each file runs `BEGIN IMMEDIATE; ROLLBACK`. That takes
//!      the write lock, which SQLite refuses with `SQLITE_READONLY` when the file, its WAL or
//!      its shared-memory file cannot be written (read-only directory or mount, immutable or
//!      write-protected files); nothing is written. `SQLITE_BUSY` means the node's writer holds
//!      the lock, i.e. writes are going through: that counts as writable.
//!    - PostgreSQL: a fresh connection asks `pg_is_in_recovery()` and
//!      `transaction_read_only`; unreachable, a standby or a read-only default is not ready.
//!
//!    A full disk is not detected in advance (the first append that hits it fails typed).
//! 3. the projections have caught up with the log's head.
//!
//! Changes of readiness are logged once each, with the reason (WARN when the store refuses
//! writes, INFO otherwise), by the probe loop and by `/readyz`, never once per probe.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;

/// How a node checks that its logs can be written.
#[derive(Clone, Debug)]
pub enum StoreProbe {
    /// Logs opened elsewhere ([`crate::Node::with_logs`]): taken as writable.
    None,
    /// The embedded store's two SQLite files.
    Sqlite { log: PathBuf, access: PathBuf },
    /// A PostgreSQL database (both logs live in it).
    Postgres { url: String },
}

impl StoreProbe {
    /// `Ok` when writes can be made, else why not, in words for an operator.
    pub async fn check(&self) -> Result<(), String> {
        match self {
            StoreProbe::None => Ok(()),
            StoreProbe::Sqlite { log, access } => {
                let (log, access) = (log.clone(), access.clone());
                // The file's name only: /readyz answers anyone, and where the data directory
                // lives is the operator's business.
                let name = |p: &PathBuf| {
                    p.file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                };
                tokio::task::spawn_blocking(move || {
                    sqlite_writable(&log).map_err(|e| {
                        format!("the event log ({}) does not accept writes: {e}", name(&log))
                    })?;
                    sqlite_writable(&access).map_err(|e| {
                        format!("the access log ({}) cannot be written: {e}", name(&access))
                    })
                })
                .await
                .map_err(|e| format!("the store probe failed: {e}"))?
            }
            StoreProbe::Postgres { url } => postgres_writable(url).await,
        }
    }
}

/// Takes and releases SQLite's write lock on `path` with a connection of its own.
fn sqlite_writable(path: &std::path::Path) -> Result<(), String> {
    use rusqlite::{Connection, ErrorCode, OpenFlags};
    // No CREATE: a file that went missing is a fault, not something to recreate here.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    conn.busy_timeout(Duration::from_millis(200))
        .map_err(|e| e.to_string())?;
    if conn
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(|e| e.to_string())?
    {
        return Err("the file is read-only".into());
    }
    match conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
        Ok(()) => Ok(()),
        // The writer holds the lock: writes are going through.
        Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == ErrorCode::DatabaseBusy => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

async fn postgres_writable(url: &str) -> Result<(), String> {
    let connect = tokio_postgres::connect(url, tokio_postgres::NoTls);
    let (client, connection) = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .map_err(|_| "PostgreSQL did not answer within 5 s".to_owned())?
        .map_err(|e| format!("PostgreSQL is unreachable: {e}"))?;
    let task = tokio::spawn(connection);
    let asked = client
        .query_one(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'",
            &[],
        )
        .await;
    drop(client);
    let _ = task.await;
    let row = asked.map_err(|e| format!("PostgreSQL is unreachable: {e}"))?;
    let (standby, read_only): (bool, bool) = (row.get(0), row.get(1));
    if standby {
        Err("PostgreSQL is a standby (in recovery): it accepts no writes".into())
    } else if read_only {
        Err("PostgreSQL sessions are read-only (default_transaction_read_only)".into())
    } else {
        Ok(())
    }
}

/// Why a node is not ready.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NotReady {
    /// What kind of reason: a change of kind is logged, a change of wording (the projection
    /// count while catching up) is not.
    kind: &'static str,
    reason: String,
}

/// A node's readiness, shared by its router and its probe loop.
pub struct NodeReadiness {
    starting: watch::Sender<Option<String>>,
    store: watch::Sender<Result<(), String>>,
    projected: watch::Receiver<u64>,
    head: watch::Receiver<Option<u64>>,
    /// The last verdict logged (`None`: ready); `Some(None)` before the first.
    logged: Mutex<Option<Option<NotReady>>>,
}

impl NodeReadiness {
    /// Probes `probe` once, then every `interval` for as long as the returned value lives.
    pub async fn start(
        probe: StoreProbe,
        interval: Duration,
        projected: watch::Receiver<u64>,
        head: watch::Receiver<Option<u64>>,
    ) -> Arc<NodeReadiness> {
        let first = probe.check().await;
        let state = Arc::new(NodeReadiness {
            starting: watch::channel(None).0,
            store: watch::channel(first).0,
            projected,
            head,
            logged: Mutex::new(None),
        });
        state.check().ok();
        if !matches!(probe, StoreProbe::None) {
            tokio::spawn(probe_loop(Arc::downgrade(&state), probe, interval));
        }
        state
    }

    /// `Ok` when ready, else the reason; logs a change of verdict.
    pub fn check(&self) -> Result<(), String> {
        let verdict = self.verdict();
        self.log_change(verdict.as_ref().err());
        verdict.map_err(|n| n.reason)
    }

    fn verdict(&self) -> Result<(), NotReady> {
        if let Some(why) = self.starting.borrow().as_ref() {
            return Err(NotReady {
                kind: "starting",
                reason: why.clone(),
            });
        }
        if let Err(why) = self.store.borrow().as_ref() {
            return Err(NotReady {
                kind: "store",
                reason: why.clone(),
            });
        }
        let next = *self.projected.borrow();
        match *self.head.borrow() {
            Some(head) if next <= head => Err(NotReady {
                kind: "projections",
                reason: format!(
                    "the projections are catching up with the log: {next} of {} events projected",
                    head + 1
                ),
            }),
            _ => Ok(()),
        }
    }

    fn log_change(&self, now: Option<&NotReady>) {
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        let same = match (&*logged, now) {
            (Some(None), None) => true,
            (Some(Some(before)), Some(now)) => {
                before.kind == now.kind
                    && (now.kind == "projections" || before.reason == now.reason)
            }
            _ => false,
        };
        if same {
            return;
        }
        match now {
            None => tracing::info!(target: "citydb::readiness", "ready"),
            // A store that refuses writes needs an operator; starting up and catching up
            // end by themselves.
            Some(n) if n.kind == "store" => {
                tracing::warn!(target: "citydb::readiness", reason = %n.reason, "not ready")
            }
            Some(n) => tracing::info!(target: "citydb::readiness", reason = %n.reason, "not ready"),
        }
        *logged = Some(now.cloned());
    }

    /// Not ready, for `reason`, until the returned guard is dropped (start-up work after the
    /// port is open, e.g. loading the demo data).
    pub fn hold(self: &Arc<Self>, reason: impl Into<String>) -> StartupHold {
        self.starting.send_replace(Some(reason.into()));
        self.check().ok();
        StartupHold(self.clone())
    }
}

async fn probe_loop(state: Weak<NodeReadiness>, probe: StoreProbe, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let verdict = probe.check().await;
        // The node is gone: stop probing.
        let Some(state) = state.upgrade() else { return };
        state.store.send_if_modified(|v| {
            let changed = *v != verdict;
            *v = verdict;
            changed
        });
        state.check().ok();
    }
}

/// Holds a node unready while it lives; see [`NodeReadiness::hold`].
pub struct StartupHold(Arc<NodeReadiness>);

impl Drop for StartupHold {
    fn drop(&mut self) {
        self.0.starting.send_replace(None);
        self.0.check().ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_holding_the_lock_counts_as_writable_and_a_missing_file_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.db");
        let writer = rusqlite::Connection::open(&path).expect("open");
        writer
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t(x); BEGIN IMMEDIATE;")
            .expect("hold the write lock");
        assert_eq!(sqlite_writable(&path), Ok(()));
        writer.execute_batch("ROLLBACK;").expect("release");
        assert_eq!(sqlite_writable(&path), Ok(()));
        assert!(sqlite_writable(&dir.path().join("gone.db")).is_err());
    }

    #[tokio::test]
    async fn not_ready_while_starting_then_while_catching_up() {
        let (_position, projected) = watch::channel(3u64);
        let (head_tx, head) = watch::channel(Some(2u64));
        let state =
            NodeReadiness::start(StoreProbe::None, Duration::from_secs(60), projected, head).await;
        assert_eq!(state.check(), Ok(()));
        let hold = state.hold("loading the demo data");
        assert_eq!(state.check(), Err("loading the demo data".to_owned()));
        drop(hold);
        head_tx.send_replace(Some(5));
        let reason = state.check().expect_err("behind the head");
        assert!(reason.contains("3 of 6 events projected"), "{reason}");
    }
}
