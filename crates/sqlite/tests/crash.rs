//! Crash safety of the SQLite store: the log crate's SIGKILL harness
//! (`citydb_log::conformance::crash`) on one file, killed five times over.

use std::sync::Arc;

use async_trait::async_trait;

use citydb_log::EventLog;
use citydb_log::conformance::crash::CrashStore;
use citydb_log::crash_tests;
use citydb_sqlite::{SqliteConfig, SqliteLog};

struct SqliteFile {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

#[async_trait]
impl CrashStore for SqliteFile {
    async fn create() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("crash.db");
        SqliteFile { _dir: dir, path }
    }

    fn place(&self) -> String {
        self.path.display().to_string()
    }

    async fn open(place: &str) -> Arc<dyn EventLog> {
        Arc::new(SqliteLog::open(place, SqliteConfig::default()).expect("open the log"))
    }
}

crash_tests!(SqliteFile);
