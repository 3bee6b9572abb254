//! `citydb import`: run an NDJSON file of command requests against a store — in bulk (the
//! store held alone, projections built at the end) or carefully (beside a running server) —
//! and make the log durable before reporting anything as imported.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use anyhow::Context as _;

use super::open_existing_log;
use crate::import::{self, ImportSummary};
use crate::out::say;
use crate::progress::Progress;
use crate::summary::Summary;
use crate::{ImportDurability, ImportMode};
use citydb_log::backend::plan::Tip;
use citydb_log::bulk::BulkSink;
use citydb_log::{EventLog, FaultKind, LogError};
use citydb_projections::{
    BulkConfig, BulkObserver, IntegrityCheck, ProjectionConfig, ProjectionError, Projections,
};
use citydb_registry::BulkRegistry;
use citydb_sqlite::{Durability, SqliteConfig, SqliteLog};
use citydb_store::{Store, StoreConfig, StoreError};

/// How `citydb import` runs (its flags).
pub struct Options {
    pub mode: ImportMode,
    /// Careful mode: commands in flight at once.
    pub jobs: usize,
    pub durability: ImportDurability,
    /// Bulk mode: record states held in memory before some are set aside on disk.
    pub states_in_memory: usize,
}

pub async fn run(
    data: &Path,
    store: &Store,
    file: &Path,
    options: Options,
) -> anyhow::Result<ExitCode> {
    let Options {
        mode,
        jobs,
        durability,
        states_in_memory,
    } = options;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    let sink = match mode {
        ImportMode::Careful => None,
        ImportMode::Bulk => Some(open_bulk(data, store).await?),
        ImportMode::Auto => match open_bulk(data, store).await {
            // The embedded store is held alone from here on: nobody can write beside the
            // import, so bulk is safe whatever the store holds (a re-run after a kill too).
            Ok(sink) if *store == Store::Embedded => Some(sink),
            // A shared store may have writers we cannot lock out: bulk only into an empty one
            // (its copies are refused, not interleaved, if somebody writes meanwhile).
            Ok(sink) if sink.tip() == Tip::EMPTY => Some(sink),
            Ok(_) => None,
            // Somebody else has the file open (a server): the careful path works beside it.
            Err(e) if is_busy(&e) => None,
            Err(e) => return Err(e),
        },
    };
    let (reader, len) = input(file)?;
    let started = Instant::now();
    let (summary, mode_name) = match sink {
        Some(sink) => (
            bulk(data, store, sink, reader, len, states_in_memory).await?,
            "bulk",
        ),
        None => (
            careful(data, store, reader, len, jobs, durability).await?,
            "careful",
        ),
    };
    let log = open_existing_log(data, store, "log.db").await?;
    let tree = citydb_store::open_tree(store, data, &StoreConfig::default(), false)
        .await
        .context("cannot open the Merkle tree")?;
    super::keep_tree(tree, &citydb_tlog::LogLeaves(log)).await?;
    let elapsed = started.elapsed();
    say!("{summary}");
    say!(
        "{} events appended in {:.1} s ({:.0} events/s, {:.0} lines/s; {mode_name} import)",
        summary.events,
        elapsed.as_secs_f64(),
        summary.events as f64 / elapsed.as_secs_f64().max(1e-9),
        summary.lines as f64 / elapsed.as_secs_f64().max(1e-9),
    );
    let code = if summary.rejected == 0 { 0 } else { 3 };
    let written = Summary {
        mode: Some(mode_name),
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

/// The file (or standard input), `Send` so that the bulk import can read it on its own thread.
type Reader = Box<dyn std::io::BufRead + Send>;

type Input = (Reader, Option<u64>);

fn input(file: &Path) -> anyhow::Result<Input> {
    Ok(if file == Path::new("-") {
        (
            Box::new(std::io::BufReader::with_capacity(1 << 16, std::io::stdin())),
            None,
        )
    } else {
        let f =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(std::io::BufReader::with_capacity(1 << 16, f)), len)
    })
}

async fn open_bulk(data: &Path, store: &Store) -> anyhow::Result<Box<dyn BulkSink>> {
    citydb_store::open_bulk(store, data, &StoreConfig::default())
        .await
        .map_err(|e| {
            let busy = in_use(&e);
            let error = anyhow::Error::new(e);
            if busy {
                error.context("the store is in use (a running server?): a bulk import needs it alone; stop the server or use --mode careful")
            } else {
                error.context("cannot open the store for a bulk import")
            }
        })
}

/// Whether opening the store for a bulk import failed because somebody else has it open.
fn is_busy(e: &anyhow::Error) -> bool {
    e.downcast_ref::<StoreError>().is_some_and(in_use)
}

fn in_use(e: &StoreError) -> bool {
    matches!(e, StoreError::Log(LogError::Storage(f)) if f.kind == FaultKind::Unavailable)
}

/// The bulk path: every line through a [`BulkRegistry`], then the projections built, so that
/// a server started next answers at once.
async fn bulk(
    data: &Path,
    store: &Store,
    mut sink: Box<dyn BulkSink>,
    reader: Reader,
    len: Option<u64>,
    states_in_memory: usize,
) -> anyhow::Result<ImportSummary> {
    let started_empty = sink.tip() == Tip::EMPTY;
    // Into an empty store, the projections are built from the rows the store writes, beside
    // the load; otherwise (a resumed or added-to store) caught up from the log after it, and
    // their file is checked while the lines are decided: nothing writes it until then.
    let beside = if started_empty {
        BuiltBeside::start(data, sink.as_mut()).await?
    } else {
        None
    };
    let check = (!started_empty).then(|| FileCheck::start(data));
    let mut registry = BulkRegistry::new(sink, citydb_log::DEFAULT_MAX_EVENT_SIZE)
        .with_states_in_memory(states_in_memory);
    if !started_empty {
        let reading = Progress::stage("import", "reading the streams the store holds");
        let read = registry.read_held_streams().await;
        reading.finish();
        read.context("cannot read the streams the store holds")?;
    }
    let progress = Progress::lines("import", len);
    let result = import::bulk::import_lines(&mut registry, reader, &progress).await;
    progress.finish();
    let summary = result?;
    let aside = registry.bytes_set_aside();
    if aside > 0 {
        eprintln!(
            "import: more than {states_in_memory} record states: {} MiB of them were set aside in a temporary file",
            aside >> 20
        );
    }
    let mut sink = registry
        .close()
        .await
        .context("cannot finish the bulk import")?;
    // The states, keys and command ids are gone: their memory goes back before the store
    // builds its indexes, and again before the projections are built.
    crate::memory::give_back_freed();
    let Some(beside) = beside else {
        finish_log(sink, store).await?;
        crate::memory::give_back_freed();
        let checked = match check {
            Some(check) => check.finish().await,
            None => false,
        };
        build_projections(data, store, started_empty, checked).await?;
        return Ok(summary);
    };
    // Told where the log ends once every row is committed: the projections build their
    // indexes while the log builds its own.
    let committed = sink.commit().await;
    let end = committed.is_ok().then(|| sink.tip().next_position);
    let (built, finished) = tokio::join!(beside.finish(end), async {
        committed.context("cannot finish the bulk import")?;
        finish_log(sink, store).await
    });
    finished?;
    crate::memory::give_back_freed();
    match built {
        Ok(_) => open_built_projections(data, store).await?,
        Err(e) => {
            eprintln!(
                "import: the projections built beside the load failed ({e}); building them from the log"
            );
            build_projections(data, store, true, false).await?;
        }
    }
    Ok(summary)
}

/// Commits the last rows and finishes the log: the embedded store builds its indexes
/// (minutes at the whole city), PostgreSQL vacuums and analyses its table (seconds): said, so
/// the run does not look stalled between the lines and the projections.
async fn finish_log(sink: Box<dyn BulkSink>, store: &Store) -> anyhow::Result<()> {
    let stage = match store {
        Store::Embedded => "building the log's indexes",
        Store::Postgres(_) => "vacuuming and analysing the log's table",
    };
    let indexing = Progress::stage("import", stage);
    let finished = sink.finish().await;
    indexing.finish();
    finished.context("cannot finish the bulk import")
}

/// The projections built beside a bulk load into an empty store, from the rows the store hands
/// over as it writes them ([`Projections::build_beside_load`]): the log is not read again
/// after the load, and the projections' folding and writing run while the lines are decided
/// and while the log builds its indexes, on the core those leave idle.
struct BuiltBeside {
    end: mpsc::SyncSender<u64>,
    done: tokio::sync::oneshot::Receiver<Result<u64, ProjectionError>>,
    position: Arc<AtomicU64>,
    indexing: Arc<AtomicBool>,
}

impl BuiltBeside {
    /// Batches of rows (about 4,096 each) queued for the projections before the store's
    /// loader waits for them: enough to ride out a projections commit, which writes every
    /// record changed since the last one.
    const QUEUE: usize = 32;

    /// Record states the projections keep in memory between their transactions.
    const STATES_IN_MEMORY: usize = 500_000;

    /// Starts the build on a thread of its own, if the store hands its rows over.
    async fn start(data: &Path, sink: &mut dyn BulkSink) -> anyhow::Result<Option<BuiltBeside>> {
        let (hand_over, rows) = mpsc::sync_channel(Self::QUEUE);
        if !sink.hand_over_rows(hand_over).await? {
            return Ok(None);
        }
        let (end, ended) = mpsc::sync_channel(1);
        let (finished, done) = tokio::sync::oneshot::channel();
        let position = Arc::new(AtomicU64::new(0));
        let indexing = Arc::new(AtomicBool::new(false));
        let path = data.join("projections.db");
        // Half the states a rebuild keeps: these are held while the importer holds its own
        // (at the whole city, a million kept beside the importer's took the peak to 4.35 GB).
        let config = ProjectionConfig {
            follow: false,
            bulk: BulkConfig {
                records_in_memory: Self::STATES_IN_MEMORY,
                ..BulkConfig::default()
            },
            ..ProjectionConfig::default()
        };
        let (at, building) = (position.clone(), indexing.clone());
        std::thread::Builder::new()
            .name("citydb-projections-fold".into())
            .spawn(move || {
                let publish = |next: u64| at.store(next, Ordering::Relaxed);
                let indexing = |now: bool| building.store(now, Ordering::Relaxed);
                let observer = BulkObserver {
                    publish: &publish,
                    indexing: &indexing,
                };
                let built = Projections::build_beside_load(&path, &config, rows, ended, observer);
                let _ = finished.send(built);
            })
            .context("cannot start the projections' thread")?;
        Ok(Some(BuiltBeside {
            end,
            done,
            position,
            indexing,
        }))
    }

    /// Tells the build where the log ends (`None`: the load failed) and waits for it, showing
    /// its progress.
    async fn finish(self, end: Option<u64>) -> Result<u64, ProjectionError> {
        let progress = Progress::events("projections");
        if let Some(end) = end {
            progress.set_length(end);
            let _ = self.end.send(end);
        }
        drop(self.end);
        let mut done = self.done;
        let built = loop {
            tokio::select! {
                built = &mut done => break built,
                () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                    progress.set_position(self.position.load(Ordering::Relaxed));
                    if self.indexing.load(Ordering::Relaxed) {
                        progress.set_stage("building the indexes");
                    }
                }
            }
        };
        progress.set_position(self.position.load(Ordering::Relaxed));
        progress.finish();
        built.unwrap_or_else(|_| {
            Err(ProjectionError::Storage(
                "the projections' thread stopped".into(),
            ))
        })
    }
}

/// Opens projections built beside the load to serve them: nothing left to catch up, and the
/// records with approved redactions re-folded from their streams, as a server does at its
/// start. The file was just written, so its integrity is not read back here.
async fn open_built_projections(data: &Path, store: &Store) -> anyhow::Result<()> {
    let log = open_existing_log(data, store, "log.db").await?;
    let config = ProjectionConfig {
        follow: false,
        integrity_check: IntegrityCheck::AfterOpen,
        ..ProjectionConfig::default()
    };
    let projections = Projections::open(data.join("projections.db"), log, config).await?;
    projections
        .catch_up()
        .await
        .context("cannot build the projections")?;
    projections
        .refold_redacted()
        .await
        .context("cannot build the projections")?;
    Ok(())
}

/// The projections file's integrity check ([`Projections::check_file`]) on a thread of its own,
/// beside the lines of a bulk import into a store that held events (the whole city's 6 GB file
/// takes 10-20 s warm, minutes from a cold cache).
struct FileCheck {
    done: tokio::sync::oneshot::Receiver<Result<Option<String>, ProjectionError>>,
}

impl FileCheck {
    fn start(data: &Path) -> FileCheck {
        let path = data.join("projections.db");
        let (tx, done) = tokio::sync::oneshot::channel();
        // A thread, not tokio's blocking pool: a runtime ending on an error would wait for it.
        let started = std::thread::Builder::new()
            .name("citydb-projections-check".into())
            .spawn(move || {
                let _ = tx.send(Projections::check_file(&path));
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "cannot check the projections beside the import; they are checked when opened");
        }
        FileCheck { done }
    }

    /// Waits for the check (saying so if the lines ended first). `true` when it ran to the
    /// end: damage found is then marked beside the file for the open to act on; `false`
    /// leaves the check to the open.
    async fn finish(self) -> bool {
        let mut done = self.done;
        if let Ok(result) = done.try_recv() {
            return result.is_ok();
        }
        let progress = Progress::stage("projections", "checking the file");
        let result = done.await;
        progress.finish();
        matches!(result, Ok(Ok(_)))
    }
}

/// Events a catch-up after a bulk import applies per transaction, and the writer's page cache
/// meanwhile. The import holds the store alone and nobody reads the projections meanwhile, so
/// a batch's latency does not matter, while each transaction writes every index page it
/// touched once, and a page kept in the cache is touched again without a read. A
/// district-sized file onto the whole city: with 512 events a transaction (a server's batch)
/// and 32 MiB the catch-up took 112 s and wrote 51 GB; with 65,536 events and 32 MiB 81–86 s;
/// with these 65–68 s and 14 GB, at a peak RSS of 1.85 GB (docs/benchmarks.md, "A bulk import
/// into a store that holds a city").
const CATCH_UP_BATCH: usize = 262_144;
const CATCH_UP_CACHE_MIB: u32 = 1024;

/// Brings `projections.db` up to the log: rebuilt from scratch after a load into an empty
/// store (a file left from another log must not survive), caught up otherwise. `checked`: the
/// file was checked by a [`FileCheck`] since the load began, so the open does not read it again.
async fn build_projections(
    data: &Path,
    store: &Store,
    from_scratch: bool,
    checked: bool,
) -> anyhow::Result<()> {
    let log = open_existing_log(data, store, "log.db").await?;
    let path = data.join("projections.db");
    if from_scratch {
        Projections::remove(&path).with_context(|| format!("cannot replace {}", path.display()))?;
    }
    let config = ProjectionConfig {
        follow: false,
        batch_size: CATCH_UP_BATCH,
        writer_cache_mib: Some(CATCH_UP_CACHE_MIB),
        integrity_check: if checked && !from_scratch {
            IntegrityCheck::AfterOpen
        } else {
            IntegrityCheck::AtOpen
        },
        ..ProjectionConfig::default()
    };
    let projections = Projections::open(&path, log.clone(), config).await?;
    // Counted from where the file was: a catch-up of 1.7 M events onto 21.8 M showed 93 % done
    // at its start, and a rate and a time left off by as much.
    let from = projections.position();
    let progress = Progress::events("projections");
    if let Some(head) = log.head().await? {
        progress.set_length((head.position + 1).saturating_sub(from));
    }
    let result =
        super::rebuild::watched(&projections, &progress, from, projections.catch_up()).await;
    progress.finish();
    result.context("cannot build the projections")?;
    Ok(())
}

/// The careful path: the registry over the store's log, several commands at a time.
async fn careful(
    data: &Path,
    store: &Store,
    reader: Reader,
    len: Option<u64>,
    jobs: usize,
    durability: ImportDurability,
) -> anyhow::Result<ImportSummary> {
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
    let progress = Progress::lines("import", len);
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
    Ok(summary)
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
