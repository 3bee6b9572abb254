//! citydb's read models: a projector that follows the event log into a local SQLite file, and the
//! queries the API answers from that file.
//!
//! The file (`projections.db`, next to the log) is per node and disposable: the log is the truth.
//! Its schema is versioned; a file written by another version is dropped and rebuilt from the
//! log on open, and [`Projections::rebuild`] does the same on demand. A damaged file (found by
//! `PRAGMA quick_check` on open) is removed with its WAL and rebuilt from the log; so does
//! [`Projections::remove`] before `citydb rebuild-projections`, without opening the file.
//!
//! # The projector
//! A catch-up [`citydb_log::Subscription`] from the stored checkpoint feeds batches of events. Each
//! batch is applied in ONE SQLite transaction together with the new checkpoint, so a crash or a
//! stop between (or during) batches neither loses nor doubles an event: on restart the projector
//! resumes from the last committed checkpoint, and events below it are skipped. For a record
//! stream (`citizen-`, `business-`, `parcel-`) it loads the stored state (the domain `Record` as
//! JSON), upcasts and evolves the event with `citydb-domain`, and writes back the state and its
//! index rows. Key-claim streams only feed the change index; `command-` markers are ignored.
//!
//! The committed checkpoint is published on a `tokio::sync::watch`, so the API can read its own
//! writes: append, then [`Projections::wait_for`] the append's last position, then query.
//!
//! ## Events that cannot be applied
//! An event that fails to upcast or evolve (a newer writer's event type, a corrupt or misrouted
//! event, a redacted payload) is recorded in `projection_errors` with its position and reason,
//! logged through `tracing`, and skipped; the projector goes on. Stopping instead would hold every
//! read model hostage to one bad event and make the whole node unready, while the log itself is
//! intact and the event stays readable there. The record keeps its last good state; its `version`
//! still advances past the failed event, so the failure is visible next to the record (and via
//! [`Projections::failures`]) rather than silently absorbed. A fixed build then re-projects
//! with [`Projections::rebuild`] or a schema version bump.
//!
//! # Queries
//! Async, each run on tokio's blocking threads with a small pool of read-only connections (WAL:
//! readers never block the projector). Single records, natural-key lookups, searches with opaque
//! keyset cursors (see [`Cursor`]), reads by many keys at once (the API's batched loaders), the
//! change-feed index, and a [`digest`](Projections::digest) of every table for rebuild tests.
//!
//! Name search is diacritic-insensitive and ranks exact matches first: names are indexed by the
//! domain's `folded_key` and `exact_key` (tone placement made canonical, so "Hòa" = "Hoà"; `đ`
//! folded to `d`, in Rust). A query read as the start of the full name, family name first and
//! the last word a prefix (`nguyen van h`), is an ordered range of the B-tree indexes on the
//! exact and folded name keys: a page reads only its own rows. With FTS5 (the bundled SQLite
//! has it) names holding the words anywhere (a given name alone) follow, from the FTS5 index;
//! without it, only the full-name prefix is searched. The order and the cursors' invariant are
//! in the `search` module.

mod ahead;
mod apply;
mod budget;
mod bulk;
mod changes;
mod error;
mod fed;
mod name_triples;
mod query;
mod read_snapshot;
mod redaction;
mod requests;
mod residence_starts;
mod schema;
mod search;
mod state;
#[cfg(test)]
mod test_events;
mod work;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use citydb_domain::business::Business;
use citydb_domain::citizen::Citizen;
use citydb_domain::parcel::{Holding, Parcel};
use citydb_domain::{
    BusinessId, CitizenId, EnterpriseCode, ParcelId, ParcelKey, PersonalIdNumber, Record, RecordId,
};
use citydb_log::backend::BlockingPool;
use citydb_log::{EventLog, Subscription, subscribe};

// The statuses the filters take are the domain's.
pub use budget::SearchPages;
pub use bulk::{BulkConfig, Observer as BulkObserver};
pub use citydb_domain::business::BusinessStatusKind;
pub use citydb_domain::citizen::CitizenStatus;
pub use citydb_domain::parcel::ParcelStatusKind;
pub use error::ProjectionError;
pub use query::{
    BusinessFilter, CitizenFilter, MAX_CHILDREN, MAX_NAME_TOKENS, MAX_PAGE_SIZE, ParcelFilter,
    ProjectionFailure, Versioned,
};
pub use requests::{RequestFilter, RequestRow};
pub use residence_starts::{ResidenceStart, ResidenceStartFilter};
pub use schema::{APPLICATION_ID, IntegrityCheck, SCHEMA_VERSION, SearchFlavour};
pub use search::{Cursor, Edge, Page};

use budget::{Budget, PageCounters, PagePlace};
use read_snapshot::{ReadEpoch, Reader};

/// Options for [`Projections::open`].
#[derive(Clone, Debug)]
pub struct ProjectionConfig {
    /// Most events applied per transaction.
    pub batch_size: usize,
    /// Read connections kept open.
    pub read_connections: usize,
    /// Start following the log on open. Off, the caller drives the projector with
    /// [`Projections::catch_up`] / [`Projections::project_batch`] (tools and tests).
    pub follow: bool,
    /// Force a name-search flavour; `None` uses FTS5 when the linked SQLite has it.
    pub search: Option<SearchFlavour>,
    /// When and how the projector takes the bulk path (see [`BulkConfig`]).
    pub bulk: BulkConfig,
    /// When the whole file's b-trees are checked (see [`IntegrityCheck`]).
    pub integrity_check: IntegrityCheck,
    /// The writer connection's page cache in MiB; `None` for a serving node's 32 MiB (its
    /// readers share the machine). A tool that holds the file alone and catches up far (a bulk
    /// import into a store that held events) asks for more, with a larger `batch_size`: an
    /// index page that many events of a transaction touch is then read and written once.
    pub writer_cache_mib: Option<u32>,
}

impl Default for ProjectionConfig {
    fn default() -> Self {
        ProjectionConfig {
            batch_size: 512,
            read_connections: 4,
            follow: true,
            search: None,
            bulk: BulkConfig::default(),
            integrity_check: IntegrityCheck::AtOpen,
            writer_cache_mib: None,
        }
    }
}

/// The read models of one node. Cheap to clone; the projector stops when the last clone is
/// dropped.
#[derive(Clone)]
pub struct Projections {
    handle: Arc<Handle>,
}

/// Owns the follower task; dropping it stops the task.
struct Handle {
    shared: Arc<Shared>,
    follower: Mutex<Option<Follower>>,
}

struct Follower {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

struct Shared {
    path: PathBuf,
    log: Arc<dyn EventLog>,
    config: ProjectionConfig,
    flavour: SearchFlavour,
    /// The writing side. Async mutex: held across the log read and the blocking apply, so
    /// batches are applied one at a time, in order.
    writer: tokio::sync::Mutex<Writer>,
    readers: Arc<BlockingPool<Reader>>,
    /// Moved after every commit of the projector, before the position: how a reader knows
    /// whether the snapshot it holds is still the latest (`read_snapshot`).
    epoch: ReadEpoch,
    /// The committed checkpoint: the next log position to project. Published only through
    /// [`Shared::publish`].
    position: watch::Sender<u64>,
    /// Events projected through the bulk path since open.
    bulk_loaded: AtomicU64,
    /// Whether a bulk load has folded the log and is building the indexes (the serial end of
    /// a rebuild, minutes at the whole city, during which the position does not move).
    building_indexes: watch::Sender<bool>,
    /// Where search pages ran (see the `budget` module).
    pages: PageCounters,
}

struct Writer {
    /// `None` after a blocking apply was abandoned (its task aborted); reopened on next use.
    conn: Option<Connection>,
    /// `None` until first use and after any failure: then re-created from the committed
    /// checkpoint, so an event read but not committed is read again.
    sub: Option<Subscription>,
    /// A bulk load started and did not finish (the file has `schema::BULK_MARK`, its indexes
    /// may be missing): the next step must be the bulk path again, never a batch.
    bulk_unfinished: bool,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Ok(mut follower) = self.follower.lock()
            && let Some(f) = follower.take()
        {
            let _ = f.stop.send(true);
            // Safe at any point: a batch is one transaction, committed whole or not at all.
            f.task.abort();
        }
    }
}

impl Projections {
    /// Opens (or creates) the read models at `path`, rebuilding them if they were written by
    /// another schema version, and starts following `log` unless `config.follow` is off.
    pub async fn open(
        path: impl AsRef<Path>,
        log: Arc<dyn EventLog>,
        config: ProjectionConfig,
    ) -> Result<Projections, ProjectionError> {
        let path = path.as_ref().to_path_buf();
        let want = config.search;
        let check = config.integrity_check;
        let writer_cache = config.writer_cache_mib;
        let open_path = path.clone();
        let (conn, flavour, checkpoint) = tokio::task::spawn_blocking(move || {
            if let Some(reason) = schema::damage(&open_path, check) {
                // Disposable by design: the log holds everything it had.
                tracing::warn!(
                    path = %open_path.display(),
                    %reason,
                    "the projections file is damaged; removing it and rebuilding the read models from the log"
                );
                schema::remove_file_set(&open_path)?;
            }
            let (conn, flavour, _) = schema::open_writer(&open_path, want)?;
            if let Some(mib) = writer_cache {
                conn.pragma_update(None, "cache_size", -i64::from(mib) * 1024)
                    .map_err(error::storage)?;
            }
            let checkpoint = schema::checkpoint(&conn)?;
            Ok::<_, ProjectionError>((conn, flavour, checkpoint))
        })
        .await
        .map_err(|e| ProjectionError::Storage(format!("open task failed: {e}")))??;
        let (position, _) = watch::channel(checkpoint);
        let follow = config.follow;
        let projections = Projections {
            handle: Arc::new(Handle {
                shared: Arc::new(Shared {
                    readers: BlockingPool::new(config.read_connections),
                    epoch: ReadEpoch::default(),
                    path,
                    log,
                    config,
                    flavour,
                    writer: tokio::sync::Mutex::new(Writer {
                        conn: Some(conn),
                        sub: None,
                        bulk_unfinished: false,
                    }),
                    position,
                    bulk_loaded: AtomicU64::new(0),
                    building_indexes: watch::channel(false).0,
                    pages: PageCounters::default(),
                }),
                follower: Mutex::new(None),
            }),
        };
        if follow {
            projections.start()?;
        }
        Ok(projections)
    }

    /// Reads the whole file once with SQLite's `PRAGMA quick_check`, on a connection and a
    /// thread of its own (it takes as long as reading the file; readers and the projector go
    /// on meanwhile). `Some(reason)` when the file is damaged: the reason is also left beside
    /// the file ([`IntegrityCheck::AfterOpen`]), so the next open removes it and rebuilds the
    /// read models from the log. What a node with `AfterOpen` calls once it serves.
    pub async fn check_integrity(&self) -> Result<Option<String>, ProjectionError> {
        let path = self.shared().path.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        // A thread of its own, not tokio's blocking pool: a runtime shutting down waits for
        // the pool's tasks, and this one may read gigabytes.
        std::thread::Builder::new()
            .name("citydb-projections-check".into())
            .spawn(move || {
                let found = schema::open_reader(&path, schema::Mapping::None)
                    .map(|conn| schema::quick_check(&conn));
                let marked = match &found {
                    Ok(Some(reason)) => schema::mark_damaged(&path, reason),
                    _ => Ok(()),
                };
                let _ = tx.send(marked.and(found));
            })
            .map_err(|e| ProjectionError::Storage(format!("cannot start the check: {e}")))?;
        rx.await
            .map_err(|_| ProjectionError::Storage("the integrity check stopped".into()))?
    }

    /// The check [`IntegrityCheck::AtOpen`] makes, run before opening, by a tool that holds
    /// the file alone and has other work to do meanwhile (a bulk import checks the file while
    /// it decides its lines). Blocking: it reads the whole file. `Some(reason)` when the file
    /// is damaged (or a bulk build of it was interrupted): the reason is left beside the file,
    /// so that an open with [`IntegrityCheck::AfterOpen`] then removes it and rebuilds the read
    /// models from the log, as an open with `AtOpen` would have. `None` for a sound file, an
    /// absent one, or one that is not a projections file (which an open refuses untouched).
    /// Nothing may write the file between this check and that open.
    pub fn check_file(path: impl AsRef<Path>) -> Result<Option<String>, ProjectionError> {
        let path = path.as_ref();
        let found = schema::damage(path, IntegrityCheck::AtOpen);
        if let Some(reason) = &found {
            schema::mark_damaged(path, reason)?;
        }
        Ok(found)
    }

    /// Builds a new projections file at `path` from the rows a bulk load of the log hands over
    /// as it stores them (`BulkSink::hand_over_rows`), from log position 0 in log order,
    /// instead of reading the log again once it is loaded (module `fed`). `end` then receives
    /// where the committed log ends; if it closes instead (the load failed), or names another
    /// position than the rows reached, the build fails and the file is rebuilt from the log
    /// at its next open. Blocking (run it on a thread of its own); `observer` hears the
    /// position of each commit and when the indexes are being built. Open the file with
    /// [`Projections::open`] afterwards and call [`Projections::refold_redacted`], as a
    /// server does at its start. Returns the events built.
    pub fn build_beside_load(
        path: impl AsRef<Path>,
        config: &ProjectionConfig,
        rows: std::sync::mpsc::Receiver<Vec<citydb_log::RecordedEvent>>,
        end: std::sync::mpsc::Receiver<u64>,
        observer: BulkObserver<'_>,
    ) -> Result<u64, ProjectionError> {
        fed::build(path.as_ref(), config, rows, end, observer)
    }

    /// Deletes the projections file at `path`, its WAL and its shared memory, without opening
    /// them: what `citydb rebuild-projections` does first, so that a file too damaged to open
    /// is no obstacle. Nothing may have the file open (stop the server first).
    pub fn remove(path: impl AsRef<Path>) -> Result<(), ProjectionError> {
        schema::remove_file_set(path.as_ref())
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// The name-search flavour this file was built with.
    pub fn search_flavour(&self) -> SearchFlavour {
        self.shared().flavour
    }

    /// Starts following the log in a background task (no-op if already following). Needs a
    /// tokio runtime.
    pub fn start(&self) -> Result<(), ProjectionError> {
        let mut follower = self
            .handle
            .follower
            .lock()
            .map_err(|_| ProjectionError::Storage("follower lock poisoned".into()))?;
        if follower.as_ref().is_some_and(|f| !f.task.is_finished()) {
            return Ok(());
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| ProjectionError::Storage(format!("no tokio runtime: {e}")))?;
        let (stop, stop_rx) = watch::channel(false);
        let task = runtime.spawn(follow(self.shared().clone(), stop_rx));
        *follower = Some(Follower { stop, task });
        Ok(())
    }

    /// Stops the background projector after its current batch; true if it was running.
    pub async fn stop(&self) -> bool {
        let follower = self.handle.follower.lock().ok().and_then(|mut f| f.take());
        match follower {
            Some(f) => {
                let _ = f.stop.send(true);
                let _ = f.task.await;
                true
            }
            None => false,
        }
    }

    /// Projects at most one batch of up to `max` events; returns how many events it consumed
    /// (0 when caught up). After an interrupted bulk load it resumes that load instead, to
    /// the log's head: the file's indexes are only complete once it ends.
    pub async fn project_batch(&self, max: usize) -> Result<usize, ProjectionError> {
        self.shared().project_batch(max).await
    }

    /// Projects until caught up with the log as it is now; returns the new position. Far
    /// behind (see [`BulkConfig::threshold`]) it takes the bulk path first.
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        let shared = self.shared();
        // The log's head, read from storage: an append is acknowledged a moment before the head
        // notification the subscription follows is advanced, and what was acknowledged must count.
        let Some(target) = shared.log.head().await?.map(|h| h.position) else {
            return Ok(self.position());
        };
        let mut head = shared.log.watch_head();
        loop {
            let consumed = shared.step().await?;
            let position = self.position();
            if position > target {
                return Ok(position);
            }
            if consumed == 0 {
                head.wait_for(|h| h.is_some_and(|h| h >= position))
                    .await
                    .map_err(|_| ProjectionError::Closed)?;
            }
        }
    }

    /// Drops every read model and builds them again from the whole log, returning once caught
    /// up with the log as it was when the replay ended: the way to build the read models as
    /// fast as this node can (after a bulk import, or on demand). It takes the bulk path
    /// (`bulk` module: states in memory, large unsynced transactions, indexes built once at
    /// the end, a mark that has a half-built file rebuilt after a crash), then the per-batch
    /// path for what was appended meanwhile. The read models equal those of the per-batch
    /// path event by event ([`digest`](Self::digest)). Readers see the models refill
    /// meanwhile, without their indexes until the end.
    pub async fn rebuild(&self) -> Result<(), ProjectionError> {
        let was_following = self.stop().await;
        let result = async {
            self.shared().reset().await?;
            let shared = self.shared();
            let mut writer = shared.writer.lock().await;
            shared.bulk(&mut writer).await?;
            drop(writer);
            self.catch_up().await.map(|_| ())
        }
        .await;
        if was_following {
            self.start()?;
        }
        result
    }

    /// Re-folds every record with an approved redaction from its whole stream, so that its
    /// row shows the replacements (`redaction` module); returns how many. Run at a node's
    /// start: it completes a re-fold a crash interrupted after a bulk load.
    pub async fn refold_redacted(&self) -> Result<usize, ProjectionError> {
        let shared = self.shared();
        let mut writer = shared.writer.lock().await;
        shared.refold_redacted(&mut writer).await
    }

    /// The records with an approved redaction, from the change feed: those whose blanking a
    /// node re-runs at start (`citydb_registry::Registry::complete_redactions`).
    pub async fn redacted_records(&self) -> Result<Vec<RecordId>, ProjectionError> {
        self.read(|c, _| redaction::approved(c)).await
    }

    /// Events projected through the bulk path since open (a rebuild, a catch-up far behind):
    /// for logs and tests.
    pub fn bulk_loaded(&self) -> u64 {
        self.shared().bulk_loaded.load(Ordering::Relaxed)
    }

    /// The next log position to project: every event below it is in the read models.
    pub fn position(&self) -> u64 {
        *self.shared().position.borrow()
    }

    /// Follows [`position`](Self::position) as batches commit.
    pub fn watch_position(&self) -> watch::Receiver<u64> {
        self.shared().position.subscribe()
    }

    /// `true` while a bulk load (a rebuild, a catch-up far behind) has folded every event and
    /// builds the indexes: the position stays at the last commit until they are built, so a
    /// progress display says what is happening instead of a rate that falls.
    pub fn watch_building_indexes(&self) -> watch::Receiver<bool> {
        self.shared().building_indexes.subscribe()
    }

    /// Returns once every event up to and including `position` is projected (read-your-writes:
    /// pass the `last_position` of an append), or `Timeout` after `timeout`.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<(), ProjectionError> {
        let mut rx = self.shared().position.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            rx.wait_for(|next| *next > position).await.map(|_| ())
        })
        .await;
        match waited {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ProjectionError::Closed),
            Err(_) => Err(ProjectionError::Timeout {
                position,
                projected: self.position(),
            }),
        }
    }

    /// Whether every event the log holds now is projected.
    pub async fn is_caught_up(&self) -> Result<bool, ProjectionError> {
        let head = self.shared().log.head().await?;
        Ok(head.is_none_or(|h| self.position() > h.position))
    }

    // --- queries ------------------------------------------------------------------------------

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, SearchFlavour) -> Result<T, ProjectionError> + Send + 'static,
    ) -> Result<T, ProjectionError> {
        self.shared().read(Cost::Unbounded, f).await
    }

    /// [`Projections::read`] of at most `records` records by key: a few index seeks each.
    async fn read_keys<T: Send + 'static>(
        &self,
        records: usize,
        f: impl FnOnce(&Connection, SearchFlavour) -> Result<T, ProjectionError> + Send + 'static,
    ) -> Result<T, ProjectionError> {
        let cost = if records <= SHORT_READ_RECORDS {
            Cost::Short
        } else {
            Cost::Unbounded
        };
        self.shared().read(cost, f).await
    }

    /// [`Projections::read_keys`] of records read by one execution of a statement per key (or
    /// per chunk of keys): a read of one key is one statement, run short.
    async fn read_each<T: Send + 'static>(
        &self,
        records: usize,
        f: impl FnOnce(&Connection) -> Result<T, ProjectionError> + Send + 'static,
    ) -> Result<T, ProjectionError> {
        if records == 1 {
            self.read_record(f).await
        } else {
            self.read_keys(records, move |c, _| f(c)).await
        }
    }

    /// [`Projections::read`] of one record through one statement (`f` runs exactly one): a
    /// few index seeks.
    async fn read_record<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, ProjectionError> + Send + 'static,
    ) -> Result<T, ProjectionError> {
        self.shared().read(Cost::Short, move |c, _| f(c)).await
    }

    /// Any record by id.
    pub async fn record(&self, id: RecordId) -> Result<Option<Versioned<Record>>, ProjectionError> {
        self.read_record(move |c| query::one::<Record>(c, id)).await
    }

    pub async fn citizen(
        &self,
        id: CitizenId,
    ) -> Result<Option<Versioned<Citizen>>, ProjectionError> {
        self.read_record(move |c| query::one(c, id.into())).await
    }

    /// The citizen holding `pin`; a current record wins over a merged duplicate.
    pub async fn citizen_by_pin(
        &self,
        pin: &PersonalIdNumber,
    ) -> Result<Option<Versioned<Citizen>>, ProjectionError> {
        let key = query::pin_key(pin);
        self.read_record(move |c| query::by_key(c, query::CITIZEN_BY_PIN, key))
            .await
    }

    /// The record id of the citizen holding `pin`, read from the projections file at `path`
    /// opened read-only: for `citydb token --role citizen`, which may run beside a server.
    pub fn citizen_id_by_pin_at(
        path: &Path,
        pin: &PersonalIdNumber,
    ) -> Result<Option<CitizenId>, ProjectionError> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| ProjectionError::Storage(format!("{}: {e}", path.display())))?;
        Ok(
            query::by_key::<Citizen>(&conn, query::CITIZEN_BY_PIN, query::pin_key(pin))?
                .map(|v| v.state.id),
        )
    }

    /// Citizens matching `filter`, `first` at a time (at most [`MAX_PAGE_SIZE`]) after `after`.
    /// With a name, in tiers (see the `search` module): names starting with the query's exact
    /// words, by exact name; names whose folded form starts with the folded query (the last
    /// word a prefix), by folded name; then, with FTS5, names holding the exact words anywhere,
    /// then the folded words anywhere, each in registration order. Within a name, and without
    /// a name, in registration order.
    pub async fn search_citizens(
        &self,
        filter: &CitizenFilter,
        first: usize,
        after: Option<Cursor>,
    ) -> Result<Page<Versioned<Citizen>>, ProjectionError> {
        let filter = filter.clone();
        self.shared()
            .read_page(first, move |c, flavour, budget| {
                search::search_citizens(c, flavour, &filter, first, after.as_ref(), budget)
            })
            .await
    }

    /// [`search_citizens`](Self::search_citizens)' page with each citizen as a
    /// [`Summary`](citydb_domain::citizen::Summary): the same citizens in the same order, for a
    /// page that shows only their id, name, birth date and restriction (a name search's usual
    /// question), read without decoding the rest of each state.
    pub async fn search_citizen_summaries(
        &self,
        filter: &CitizenFilter,
        first: usize,
        after: Option<Cursor>,
    ) -> Result<Page<Versioned<citydb_domain::citizen::Summary>>, ProjectionError> {
        let filter = filter.clone();
        self.shared()
            .read_page(first, move |c, flavour, budget| {
                search::search_citizen_summaries(c, flavour, &filter, first, after.as_ref(), budget)
            })
            .await
    }

    pub async fn business(
        &self,
        id: BusinessId,
    ) -> Result<Option<Versioned<Business>>, ProjectionError> {
        self.read_record(move |c| query::one(c, id.into())).await
    }

    pub async fn business_by_code(
        &self,
        code: &EnterpriseCode,
    ) -> Result<Option<Versioned<Business>>, ProjectionError> {
        let key = query::code_key(code);
        self.read_record(move |c| query::by_key(c, query::BUSINESS_BY_CODE, key))
            .await
    }

    /// Businesses matching `filter`; ordered like [`search_citizens`](Self::search_citizens).
    pub async fn search_businesses(
        &self,
        filter: &BusinessFilter,
        first: usize,
        after: Option<Cursor>,
    ) -> Result<Page<Versioned<Business>>, ProjectionError> {
        let filter = filter.clone();
        self.shared()
            .read_page(first, move |c, flavour, budget| {
                search::search_businesses(c, flavour, &filter, first, after.as_ref(), budget)
            })
            .await
    }

    pub async fn parcel(&self, id: ParcelId) -> Result<Option<Versioned<Parcel>>, ProjectionError> {
        self.read_record(move |c| query::one(c, id.into())).await
    }

    /// The parcel with this key; an active parcel wins over a retired one.
    pub async fn parcel_by_key(
        &self,
        key: &ParcelKey,
    ) -> Result<Option<Versioned<Parcel>>, ProjectionError> {
        let key = query::parcel_key(key);
        self.read_record(move |c| query::by_key(c, query::PARCEL_BY_KEY, key))
            .await
    }

    /// Parcels matching `filter`, in registration order.
    pub async fn search_parcels(
        &self,
        filter: &ParcelFilter,
        first: usize,
        after: Option<Cursor>,
    ) -> Result<Page<Versioned<Parcel>>, ProjectionError> {
        let filter = filter.clone();
        self.shared()
            .read_page(first, move |c, _, budget| {
                search::search_parcels(c, &filter, first, after.as_ref(), budget)
            })
            .await
    }

    /// Batch loader: the citizens among `ids` that exist.
    pub async fn citizens_by_ids(
        &self,
        ids: &[CitizenId],
    ) -> Result<HashMap<CitizenId, Versioned<Citizen>>, ProjectionError> {
        let ids = ids.to_vec();
        self.read_each(ids.len(), move |c| query::many(c, &ids))
            .await
    }

    /// [`citizens_by_ids`](Self::citizens_by_ids) as [`Summary`](citydb_domain::citizen::Summary)s:
    /// for a relation whose citizens are shown by id, name and birth date only.
    pub async fn citizen_summaries_by_ids(
        &self,
        ids: &[CitizenId],
    ) -> Result<HashMap<CitizenId, Versioned<citydb_domain::citizen::Summary>>, ProjectionError>
    {
        let ids = ids.to_vec();
        self.read_each(ids.len(), move |c| query::summaries(c, &ids))
            .await
    }

    pub async fn businesses_by_ids(
        &self,
        ids: &[BusinessId],
    ) -> Result<HashMap<BusinessId, Versioned<Business>>, ProjectionError> {
        let ids = ids.to_vec();
        self.read_each(ids.len(), move |c| query::many(c, &ids))
            .await
    }

    pub async fn parcels_by_ids(
        &self,
        ids: &[ParcelId],
    ) -> Result<HashMap<ParcelId, Versioned<Parcel>>, ProjectionError> {
        let ids = ids.to_vec();
        self.read_each(ids.len(), move |c| query::many(c, &ids))
            .await
    }

    /// Batch loader: each parcel's rights holders, in the order recorded (empty if none).
    pub async fn holders_of(
        &self,
        parcels: &[ParcelId],
    ) -> Result<HashMap<ParcelId, Vec<Holding>>, ProjectionError> {
        let parcels = parcels.to_vec();
        self.read_keys(parcels.len(), move |c, _| query::holders_of(c, &parcels))
            .await
    }

    /// Batch loader: the parcels each citizen or business holds rights on, in registration
    /// order (empty if none).
    pub async fn parcels_held_by(
        &self,
        holders: &[RecordId],
    ) -> Result<HashMap<RecordId, Vec<ParcelId>>, ProjectionError> {
        let holders = holders.to_vec();
        self.read(move |c, _| query::parcels_held_by(c, &holders))
            .await
    }

    /// Batch loader: the businesses each citizen legally represents (empty if none).
    pub async fn businesses_represented_by(
        &self,
        citizens: &[CitizenId],
    ) -> Result<HashMap<CitizenId, Vec<BusinessId>>, ProjectionError> {
        let citizens = citizens.to_vec();
        self.read(move |c, _| query::businesses_represented_by(c, &citizens))
            .await
    }

    /// Batch loader: each parent's children, the citizens whose current father or mother
    /// they are, by birth date as recorded (a year alone before the full dates of that year)
    /// then record id, at most [`MAX_CHILDREN`] each (empty if none).
    pub async fn children_of(
        &self,
        parents: &[CitizenId],
    ) -> Result<HashMap<CitizenId, Vec<CitizenId>>, ProjectionError> {
        let parents = parents.to_vec();
        self.read(move |c, _| query::children_of(c, &parents)).await
    }

    /// Batch loader: each business's legal representatives, in the order recorded.
    pub async fn representatives_of(
        &self,
        businesses: &[BusinessId],
    ) -> Result<HashMap<BusinessId, Vec<CitizenId>>, ProjectionError> {
        let businesses = businesses.to_vec();
        self.read_keys(businesses.len(), move |c, _| {
            query::representatives_of(c, &businesses)
        })
        .await
    }

    /// Positions of projected events after `after` (all when `None`), optionally only of the
    /// given stream categories and event types, ascending, at most `first` (capped at 5,000).
    /// Command markers are not indexed. The API reads the events themselves from the log.
    pub async fn changes(
        &self,
        after: Option<u64>,
        categories: &[String],
        event_types: &[String],
        first: usize,
    ) -> Result<Vec<u64>, ProjectionError> {
        let (categories, event_types) = (categories.to_vec(), event_types.to_vec());
        self.read(move |c, _| changes::changes(c, after, &categories, &event_types, first))
            .await
    }

    /// Residence starts as known now (`residence_starts` module): the residence periods whose
    /// start date lies in `filter`'s range in its commune, by start date, then the citizen's
    /// registration order (`seq`), then kind (permanent first); `first` at a time (at most
    /// [`MAX_PAGE_SIZE`]) after `after`. Each comes with the citizen's record as projected.
    pub async fn residence_starts(
        &self,
        filter: &ResidenceStartFilter,
        first: usize,
        after: Option<Cursor>,
    ) -> Result<Page<ResidenceStart>, ProjectionError> {
        let filter = filter.clone();
        self.read(move |c, _| residence_starts::page(c, &filter, first, after.as_ref()))
            .await
    }

    /// Correction requests after `after` (a row's `seq`) in filing order.
    pub async fn correction_requests(
        &self,
        filter: RequestFilter,
        after: Option<u64>,
        first: usize,
    ) -> Result<Vec<RequestRow>, ProjectionError> {
        self.read(move |c, _| requests::list(c, &filter, after, first.min(MAX_PAGE_SIZE)))
            .await
    }

    /// One correction request by its stream id (`correction_request-<uuid>`).
    pub async fn correction_request(
        &self,
        stream: &str,
    ) -> Result<Option<RequestRow>, ProjectionError> {
        let stream = stream.to_owned();
        self.read(move |c, _| requests::one(c, &stream)).await
    }

    /// Open requests with a deadline before `today` (`YYYY-MM-DD`), in filing order.
    pub async fn requests_past_deadline(
        &self,
        today: String,
        first: usize,
    ) -> Result<Vec<RequestRow>, ProjectionError> {
        self.read(move |c, _| requests::past_deadline(c, &today, first))
            .await
    }

    /// Open requests with a recorded overdue deadline (the `/metrics` gauge).
    pub async fn overdue_requests(&self) -> Result<u64, ProjectionError> {
        self.read(|c, _| requests::overdue_count(c)).await
    }

    /// Events the projector could not apply, after position `after`, ascending.
    pub async fn failures(
        &self,
        after: Option<u64>,
        first: usize,
    ) -> Result<Vec<ProjectionFailure>, ProjectionError> {
        self.read(move |c, _| query::failures(c, after, first))
            .await
    }

    /// Where the search pages read since open ran (see [`SearchPages`]).
    pub fn search_pages(&self) -> SearchPages {
        self.shared().pages.read()
    }

    /// blake3 (hex) over every read-model table's rows in a deterministic order: equal digests
    /// mean equal read models, whatever the batching or restarts that produced them.
    pub async fn digest(&self) -> Result<String, ProjectionError> {
        self.read(|c, _| query::digest(c)).await
    }
}

/// How much a read may cost, which decides where it runs.
#[derive(Clone, Copy)]
enum Cost {
    /// A few index seeks: on the calling thread when a reader is idle
    /// (`BlockingPool::run_short`).
    Short,
    /// Anything that may grow with the data: always on a blocking thread.
    Unbounded,
}

/// Reads of at most this many records by key are [`Cost::Short`]: a hostile query naming
/// many records still goes to the blocking pool, so it cannot hold an async worker thread.
const SHORT_READ_RECORDS: usize = 8;

/// Pages of at most this many records try the calling thread first, under a budget of
/// [`PAGE_STEPS`] (see the `budget` module): decoding this many states whose text is not
/// kept (~19,000 instructions each, callgrind) costs about half a million instructions.
pub(crate) const SHORT_PAGE_RECORDS: usize = 25;

/// The VM steps a page may take on the calling thread: ~35× the 289 a 20-citizen name prefix
/// page took at 1/10 of the city (an index range from its first key, the same steps at any
/// size: `search::tests::a_name_prefix_page_reads_only_its_own_rows`).
const PAGE_STEPS: u32 = 10_000;

/// A writer job under way ([`Shared::writing`]); its end moves the readers' epoch.
struct Writing<'a>(&'a Shared);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.epoch.end_write();
        self.0.readers.each_idle(Reader::release);
    }
}

impl Shared {
    /// Publishes the committed checkpoint `next` (what [`Projections::wait_for`] waits on),
    /// after moving the readers' epoch: a read that follows sees what was committed.
    fn publish(&self, next: u64) {
        self.epoch.moved();
        self.readers.each_idle(Reader::release);
        self.position.send_replace(next);
    }

    /// A writer job: until the guard drops, readers keep no snapshot, and those idle in the
    /// pool end the ones they hold (they would keep the WAL from its checkpoints, and a bulk
    /// load's truncation waits for every reader: `read_snapshot`).
    fn writing(&self) -> Writing<'_> {
        self.epoch.begin_write();
        self.readers.each_idle(Reader::release);
        Writing(self)
    }

    async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        cost: Cost,
        f: impl FnOnce(&Connection, SearchFlavour) -> Result<T, ProjectionError> + Send + 'static,
    ) -> Result<T, ProjectionError> {
        let flavour = self.flavour;
        let path = self.path.clone();
        let open = move || Reader::open(schema::open_reader(&path, schema::Mapping::Whole)?, &path);
        // One snapshot per query: a page's index scan and its state reads see the same
        // commits even while the projector commits (`read_snapshot`).
        let shared = self.clone();
        let run = move |reader: &mut Reader| {
            let result = f(reader.snapshot(&shared.epoch)?, flavour);
            reader.settle(&shared.epoch, result.is_ok());
            result
        };
        match cost {
            Cost::Short => self.readers.run_short(open, run).await,
            Cost::Unbounded => self.readers.run(open, run).await,
        }
        .map_err(|e| ProjectionError::Storage(format!("read task failed: {e}")))?
    }

    /// A page of search results (`first` records at most): on the calling thread under a
    /// [`Budget`] when `first` is small and a reader idle, and again from nothing on a blocking
    /// thread without one if it went over (see the `budget` module); else on a blocking thread.
    async fn read_page<T: Send + 'static>(
        self: &Arc<Self>,
        first: usize,
        f: impl Fn(&Connection, SearchFlavour, &Budget) -> Result<T, ProjectionError>
        + Send
        + Sync
        + 'static,
    ) -> Result<T, ProjectionError> {
        let f = Arc::new(f);
        if first <= SHORT_PAGE_RECORDS {
            let flavour = self.flavour;
            let here = {
                let f = f.clone();
                move |reader: &mut Reader| {
                    let conn = reader.snapshot(&self.epoch)?;
                    let budget = Budget::metered(conn, PAGE_STEPS);
                    let result = f(conn, flavour, &budget);
                    // Before the snapshot may end: its ROLLBACK must not be interrupted.
                    let spent = budget.end(conn);
                    reader.settle(&self.epoch, result.is_ok() && !spent);
                    Ok::<_, ProjectionError>((!spent).then_some(result))
                }
            };
            let place = match self.readers.try_here(here) {
                Ok(Ok(Ok(Some(done)))) => {
                    self.pages.count(PagePlace::CallingThread);
                    return done;
                }
                Ok(Ok(Ok(None))) => PagePlace::OverBudget,
                // No reader idle.
                Err(_) => PagePlace::BlockingThread,
                Ok(Ok(Err(e))) => return Err(e),
                Ok(Err(e)) => return Err(ProjectionError::Storage(format!("read failed: {e}"))),
            };
            self.pages.count(place);
        } else {
            self.pages.count(PagePlace::BlockingThread);
        }
        self.read(Cost::Unbounded, move |c, flavour| {
            f(c, flavour, &Budget::unbounded())
        })
        .await
    }

    /// Runs `f` with the writer connection on a blocking thread, reopening it if a previous
    /// run was abandoned.
    async fn with_writer<T: Send + 'static>(
        &self,
        writer: &mut Writer,
        f: impl FnOnce(&mut Connection) -> Result<T, ProjectionError> + Send + 'static,
    ) -> Result<T, ProjectionError> {
        let _writing = self.writing();
        let existing = writer.conn.take();
        let path = self.path.clone();
        let flavour = self.flavour;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let mut conn = match existing {
                Some(conn) => conn,
                None => match schema::open_writer(&path, Some(flavour)) {
                    Ok((conn, _, _)) => conn,
                    Err(e) => return (None, Err(e)),
                },
            };
            let result = f(&mut conn);
            (Some(conn), result)
        })
        .await
        .map_err(|e| ProjectionError::Storage(format!("write task failed: {e}")))?;
        writer.conn = conn;
        result
    }

    async fn project_batch(self: &Arc<Self>, max: usize) -> Result<usize, ProjectionError> {
        let mut writer = self.writer.lock().await;
        if writer.bulk_unfinished {
            return self.bulk(&mut writer).await;
        }
        self.batch(&mut writer, max).await
    }

    /// One step of the projector: the bulk path when far behind the log (or to resume an
    /// interrupted bulk load), else one batch.
    async fn step(self: &Arc<Self>) -> Result<usize, ProjectionError> {
        let mut writer = self.writer.lock().await;
        if writer.bulk_unfinished || self.far_behind() {
            return self.bulk(&mut writer).await;
        }
        self.batch(&mut writer, self.config.batch_size).await
    }

    /// At least [`BulkConfig::threshold`] events behind the head the log has announced, and at
    /// least as many as are projected: then building the indexes anew at the end costs less
    /// than maintaining them row by row.
    fn far_behind(&self) -> bool {
        let position = *self.position.borrow();
        let head = *self.log.watch_head().borrow();
        head.is_some_and(|head| {
            let behind = (head + 1).saturating_sub(position);
            behind >= self.config.bulk.threshold && behind >= position
        })
    }

    async fn batch(&self, writer: &mut Writer, max: usize) -> Result<usize, ProjectionError> {
        if writer.conn.is_none() {
            // The last apply was abandoned mid-way: whether it committed is known only to the
            // file, so restart from the file's checkpoint.
            let checkpoint = self.with_writer(writer, |c| schema::checkpoint(c)).await?;
            self.publish(checkpoint);
            writer.sub = None;
        }
        let from = *self.position.borrow();
        let sub = writer
            .sub
            .get_or_insert_with(|| subscribe(self.log.clone(), from));
        let events = match sub.next_batch(max.max(1)).await {
            Ok(events) => events,
            Err(e) => {
                writer.sub = None;
                return Err(e.into());
            }
        };
        if events.is_empty() {
            return Ok(0);
        }
        let consumed = events.len();
        let flavour = self.flavour;
        let mut refolds = Vec::new();
        for id in redaction::touched(&events) {
            refolds.extend(redaction::refold(self.log.as_ref(), id).await?);
        }
        let refolded = !refolds.is_empty();
        // A full batch says the log holds more: the next one is read while this one is applied
        // (the log's reads run on its own threads), so a catch-up keeps both cores busy.
        let mut sub = writer.sub.take();
        let read_ahead = async {
            match sub.as_mut() {
                Some(sub) if consumed >= max.max(1) => sub.read_ahead(max).await,
                _ => Ok(()),
            }
        };
        let applied = self.with_writer(writer, move |c| {
            apply::apply_batch(c, &events, &refolds, flavour)
        });
        let (applied, read_ahead) = tokio::join!(applied, read_ahead);
        // A failed read ahead drops the subscription: the next batch subscribes again from
        // the position, and meets the error there if it persists.
        writer.sub = sub.filter(|_| read_ahead.is_ok());
        match applied {
            Ok(outcome) => {
                if refolded {
                    // Not for correctness (a refolded state is another text): so that blanked
                    // personal data is not kept decoded in memory.
                    state::forget_read_states();
                }
                self.publish(outcome.next);
                Ok(consumed)
            }
            Err(e) => {
                writer.sub = None;
                Err(e)
            }
        }
    }

    /// The bulk path (module `bulk`) from the committed checkpoint to the log's head as it is
    /// now; returns the events consumed. The log is read ahead on a task of its own (its reads
    /// run on the log's threads) while the load folds and writes on a blocking thread.
    async fn bulk(self: &Arc<Self>, writer: &mut Writer) -> Result<usize, ProjectionError> {
        /// Events per read of the log.
        const CHUNK: u64 = 8192;
        let Some(target) = self.log.head().await?.map(|h| h.position) else {
            return Ok(0);
        };
        let from = *self.position.borrow();
        if from > target && !writer.bulk_unfinished {
            return Ok(0);
        }
        let (chunks, mut received) = tokio::sync::mpsc::channel(4);
        let log = self.log.clone();
        let reader = tokio::spawn(async move {
            let mut next = from;
            while next <= target {
                let read = log
                    .read_all(next, CHUNK.min(target + 1 - next) as usize)
                    .await;
                let stop = match &read {
                    Ok(events) => match events.last() {
                        Some(last) => {
                            next = last.position + 1;
                            false
                        }
                        None => true,
                    },
                    Err(_) => true,
                };
                if chunks.send(read).await.is_err() || stop {
                    return;
                }
            }
        });
        // Dropping this future (the follower stopped) stops the reader, and with it the load,
        // which then leaves the mark behind.
        struct AbortOnDrop(JoinHandle<()>);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let _reader = AbortOnDrop(reader);
        writer.bulk_unfinished = true;
        writer.sub = None;
        let started = std::time::Instant::now();
        let writing = self.writing();
        let existing = writer.conn.take();
        let (path, flavour, config) = (self.path.clone(), self.flavour, self.config.bulk);
        let shared = self.clone();
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let conn = match existing {
                Some(conn) => conn,
                None => match schema::open_writer(&path, Some(flavour)) {
                    Ok((conn, _, _)) => conn,
                    Err(e) => return (None, Err(e)),
                },
            };
            if let Err(e) = bulk::start(&conn, flavour) {
                bulk::abandon(&conn);
                return (Some(conn), Err(e));
            }
            let mut next_chunk = || {
                received
                    .blocking_recv()
                    .map(|chunk| chunk.map_err(Into::into))
            };
            // Counted before the position is published: whoever waits for it sees both.
            let published = AtomicU64::new(from);
            let publish = |next: u64| {
                let before = published.swap(next, Ordering::Relaxed);
                shared
                    .bulk_loaded
                    .fetch_add(next.saturating_sub(before), Ordering::Relaxed);
                shared.publish(next);
            };
            // Watchers are woken only by a change, so one that saw a change during a load
            // knows the indexes were built.
            let indexing = |building: bool| {
                shared
                    .building_indexes
                    .send_if_modified(|now| std::mem::replace(now, building) != building);
            };
            let (conn, result) = bulk::run(
                conn,
                &path,
                flavour,
                config,
                Some(target),
                &mut next_chunk,
                bulk::Observer {
                    publish: &publish,
                    indexing: &indexing,
                },
            );
            indexing(false);
            (
                Some(conn),
                result.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            )
        })
        .await
        .map_err(|e| ProjectionError::Storage(format!("bulk load task failed: {e}")))?;
        drop(writing);
        writer.conn = conn;
        if result.is_ok() {
            self.refold_redacted(writer).await?;
        }
        if let Ok(events) = result {
            writer.bulk_unfinished = false;
            tracing::info!(
                from,
                events,
                seconds = started.elapsed().as_secs_f64(),
                "read models built in bulk from the log"
            );
        }
        result
    }

    /// Re-folds every record with an approved redaction from its whole stream
    /// (`redaction` module): after a bulk load, and at a node's start.
    async fn refold_redacted(&self, writer: &mut Writer) -> Result<usize, ProjectionError> {
        let ids = self.with_writer(writer, |c| redaction::approved(c)).await?;
        let mut refolds = Vec::new();
        for id in ids {
            refolds.extend(redaction::refold(self.log.as_ref(), id).await?);
        }
        let count = refolds.len();
        let flavour = self.flavour;
        self.with_writer(writer, move |c| {
            let tx = c.transaction().map_err(error::storage)?;
            let mut words = schema::WordWrites::default();
            for refold in &refolds {
                redaction::store_refold(&tx, refold, flavour, &mut words)?;
            }
            words.write(&tx)?;
            tx.commit().map_err(error::storage)
        })
        .await?;
        if count > 0 {
            state::forget_read_states();
        }
        Ok(count)
    }

    async fn reset(&self) -> Result<(), ProjectionError> {
        let mut writer = self.writer.lock().await;
        let flavour = self.flavour;
        self.with_writer(&mut writer, move |c| schema::reset(c, flavour))
            .await?;
        writer.sub = None;
        // The tables were dropped with the mark: nothing of an interrupted load is left.
        writer.bulk_unfinished = false;
        self.publish(0);
        Ok(())
    }
}

/// The background projector: batches while there is work, then sleeps on the log's head.
async fn follow(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(100);
    const MAX_BACKOFF: Duration = Duration::from_secs(30);
    let mut head = shared.log.watch_head();
    let mut backoff = FIRST_BACKOFF;
    loop {
        if *stop.borrow() {
            return;
        }
        match shared.step().await {
            Ok(n) if n > 0 => {
                backoff = FIRST_BACKOFF;
                // Let readers' blocking tasks and other work in between long replays.
                tokio::task::yield_now().await;
            }
            Ok(_) => {
                let next = *shared.position.borrow();
                tokio::select! {
                    seen = head.wait_for(|h| h.is_some_and(|h| h >= next)) => {
                        if seen.is_err() {
                            tracing::info!("event log closed; projector stops");
                            return;
                        }
                    }
                    _ = stop.changed() => return,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, retry_in = ?backoff, "projector batch failed");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
