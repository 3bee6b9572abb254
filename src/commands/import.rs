//! `citydb import`: run an NDJSON file of command requests against a store, then make the log
//! durable before reporting anything as imported.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;

use super::open_existing_log;
use crate::out::say;
use crate::progress::Progress;
use crate::summary::Summary;
use crate::{ImportDurability, import};
use citydb_log::EventLog;
use citydb_sqlite::{Durability, SqliteConfig, SqliteLog};
use citydb_store::Store;

pub async fn run(
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
    let progress = Progress::lines("import", len);
    let started = Instant::now();
    let options = import::ImportOptions { jobs };
    let result = import::import_lines(log.clone(), reader, &options, &progress).await;
    progress.finish();
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
    let code = if summary.rejected == 0 { 0 } else { 3 };
    let written = Summary {
        lines: Some(summary.lines),
        accepted: Some(summary.accepted),
        already_imported: Some(summary.already_imported),
        rejected: Some(summary.rejected),
        events: Some(summary.events),
        bytes: Some(summary.bytes),
        ..Summary::new("import")
    }
    .write(code, Some((summary.lines, "lines")))?;
    Ok(ExitCode::from(written))
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
