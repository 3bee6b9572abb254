//! WAL checkpoints off a writer thread: what every group-commit writer on a citydb SQLite file
//! uses (the event log's, in [`crate::writer`], and the access log's v2 entries, in
//! `citydb_access`).
//!
//! With SQLite's automatic checkpoints, every 1,000 pages one commit also copies the WAL into
//! the database file and fsyncs it, inside the writer's `COMMIT`: every append of that group,
//! and every one queued behind it, waits for it. A writer that serialises durable appends (one
//! fsync per group) is the pipeline every request goes through, so that wait caps the whole
//! server's throughput (docs/benchmarks.md, "The access log's checkpoints off its writer").
//! Instead the writer runs with `wal_autocheckpoint = 0`, nudges a [`Checkpointer`] after each
//! commit, and calls [`Checkpointer::restart_if_due`] between groups.
//!
//! Invariants:
//! - The checkpointer's connection has the writer's `synchronous` setting, so a checkpoint
//!   syncs the database file before SQLite counts its pages as copied back (a WAL rewound past
//!   pages that were never synced would lose them at a power cut).
//! - A checkpoint's failure (a busy file, an I/O error) is never the writer's: the commits it
//!   was copying are already durable in the WAL; it only postpones the copy to the next nudge.
//! - The `-wal` file stays bounded: past `restart_pages` the writer rewinds it itself.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// A thread that runs PASSIVE checkpoints (which never block the writer) on its own
/// connection, at most every [`Checkpointer::MIN_INTERVAL`], when the writer nudges it.
pub struct Checkpointer {
    signals: Arc<Signals>,
    /// 0, or the WAL's frames when the thread set the rewind due: it stays due until the
    /// writer sees fewer frames than that, i.e. until SQLite has actually rewound the WAL.
    restart_due: Arc<AtomicI64>,
    /// Held while either side checkpoints. Two checkpoints of one file exclude each other in
    /// SQLite too, but there the loser sleeps in its busy handler: a writer's rewind behind a
    /// running PASSIVE checkpoint stalls every append for the busy wait. Here the writer only
    /// tries it. (Most of the rewind's stall was its own copy, not this collision: see
    /// `restart_if_due`.)
    running: Arc<Mutex<()>>,
    /// `None` once [`Checkpointer::close`] has joined it.
    thread: Option<JoinHandle<()>>,
}

/// What the writer tells the thread, as flags rather than messages: a nudge wakes the thread
/// only when it sets `pending`, so however many groups commit during one interval, the thread
/// wakes at most once for them (with a message per commit it woke for every one, to note that
/// a pass was already due: one more context switch in every group of every request's path).
#[derive(Default)]
struct Signals {
    pending: AtomicBool,
    closed: AtomicBool,
}

impl Checkpointer {
    const MIN_INTERVAL: Duration = Duration::from_millis(100);

    /// Before a rewind, passes back to back until one copies at most `CLOSING_PAGES` pages (at
    /// most `CLOSING_PASSES` of them).
    const CLOSING_PASSES: usize = 8;
    const CLOSING_PAGES: i64 = 64;

    /// Starts the thread `name` on `conn`, a connection to the writer's file with the writer's
    /// `synchronous` setting. `restart_pages`: WAL frames (pages) past which the writer
    /// restarts the WAL.
    pub fn start(
        name: &str,
        conn: Connection,
        restart_pages: i64,
    ) -> std::io::Result<Checkpointer> {
        let signals = Arc::new(Signals::default());
        let restart_due = Arc::new(AtomicI64::new(0));
        let running = Arc::new(Mutex::new(()));
        let (told, due, busy) = (signals.clone(), restart_due.clone(), running.clone());
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                loop {
                    // Until a commit since the last pass (`park` may also return for nothing).
                    while !told.pending.swap(false, Ordering::Acquire) {
                        if told.closed.load(Ordering::Acquire) {
                            return;
                        }
                        std::thread::park();
                    }
                    let started = Instant::now();
                    // While a rewind is due, the writer copies what is left between two groups: a
                    // pass now would only stand in its way.
                    if due.load(Ordering::Relaxed) == 0 {
                        let _running = busy.lock().unwrap_or_else(|p| p.into_inner());
                        let (mut frames, mut copied) = passive(&conn);
                        if frames >= restart_pages {
                            // The writer will wait for its own copy of what this leaves: pass again
                            // at once while a pass still finds much to copy, each one only what was
                            // committed during the one before.
                            for _ in 0..Self::CLOSING_PASSES {
                                let before = copied;
                                let (now, copied_now) = passive(&conn);
                                if now == 0 {
                                    break; // failed: the writer copies the rest
                                }
                                (frames, copied) = (now, copied_now);
                                if copied - before <= Self::CLOSING_PAGES {
                                    break;
                                }
                            }
                            due.store(frames.max(1), Ordering::Relaxed);
                        }
                    }
                    // At most one checkpoint per interval: sleep out the rest of it. Commits
                    // meanwhile leave `pending` set for after it; closing ends the wait at once.
                    let deadline = started + Self::MIN_INTERVAL;
                    loop {
                        if told.closed.load(Ordering::Acquire) {
                            return;
                        }
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        std::thread::park_timeout(left);
                    }
                }
            })?;
        Ok(Checkpointer {
            signals,
            restart_due,
            running,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits until its connection is closed (a reopen in the same process
    /// must not share the old WAL index).
    pub fn close(mut self) {
        if let Some(thread) = self.thread.take() {
            self.signals.closed.store(true, Ordering::Release);
            thread.thread().unpark();
            let _ = thread.join();
        }
    }

    /// Lets the WAL start over from its beginning once it has grown past `restart_pages`. Call
    /// it on the writer's thread, with the writer's connection, between two groups.
    ///
    /// A PASSIVE checkpoint copies pages back but never rewinds the WAL: SQLite rewinds it only
    /// when a writer's transaction starts while every page is copied back (and no reader still
    /// reads from it). Under constant appends that moment never comes, since each commit adds
    /// pages while the background thread copies, and the WAL grew by the size of every page
    /// each commit touched (23 GB in five minutes of bulk import). So once the rewind is due,
    /// the thread stops copying and the writer copies the rest itself, between two groups,
    /// with no commit in between: its next transaction then starts the WAL over. Nothing here
    /// waits for a reader (the RESTART checkpoint used before waited up to 100 ms for readers
    /// of older snapshots): a PASSIVE checkpoint does not, and SQLite's rewind only tries. A
    /// reader of an older snapshot leaves pages uncopied, or the rewind not done; both are
    /// tried again at the next group (below). What the writer does wait for is the copy itself: the pages
    /// committed since the thread's last pass, written back at random places and synced. After
    /// one pass that was 10–180 ms under a logged name-search load on this machine's virtual
    /// disk, and set that load's p99 (131–145 ms); so before it sets the rewind due the thread
    /// passes again at once until a pass copies little (`CLOSING_PAGES`), and the p99 went back
    /// to 38–59 ms (docs/benchmarks.md).
    ///
    /// The rewind stays due until it has happened: a reader that still reads frames of the WAL
    /// when the writer's transaction starts (one that began before the copy ended) keeps SQLite
    /// from rewinding, and the WAL then grows on. Clearing it after the copy alone let the WAL
    /// reach 40–60 MiB past a 4 MiB limit, appending flat out beside four constant readers
    /// (`crates/sqlite/tests/wal.rs`; 16–19 MiB at that test's steadier pace). So between every two groups while it is due, the writer
    /// copies the last group's pages (a small PASSIVE checkpoint) and tries again at its next
    /// transaction, until it sees the WAL shorter than when the rewind was set due.
    ///
    /// Never behind the background thread's checkpoint: while that runs, this waits for the
    /// next group (the thread starts none while a rewind is due).
    pub fn restart_if_due(&self, conn: &Connection) {
        let due_at = self.restart_due.load(Ordering::Relaxed);
        if due_at == 0 {
            return;
        }
        let Ok(_running) = self.running.try_lock() else {
            return;
        };
        let (frames, _) = passive(conn);
        // `passive` reads (0, 0) when it fails: only a real count below `due_at` is a rewind.
        if frames > 0 && frames < due_at {
            self.restart_due.store(0, Ordering::Relaxed);
        }
    }

    /// After a commit: a checkpoint is due within [`Checkpointer::MIN_INTERVAL`].
    pub fn nudge(&self) {
        // Already pending: the thread will pass anyway, and waking it again would only cost a
        // context switch.
        if !self.signals.pending.swap(true, Ordering::AcqRel)
            && let Some(thread) = &self.thread
        {
            thread.thread().unpark();
        }
    }
}

impl Drop for Checkpointer {
    /// A writer that ends without [`Checkpointer::close`] (a panic) still stops the thread,
    /// without waiting for it.
    fn drop(&mut self) {
        if let Some(thread) = &self.thread {
            self.signals.closed.store(true, Ordering::Release);
            thread.thread().unpark();
        }
    }
}

/// One PASSIVE checkpoint: the WAL's frames and how many of them are copied back, `(0, 0)` if
/// it failed (a busy database, an I/O error: that only postpones the copy to the next pass).
fn passive(conn: &Connection) -> (i64, i64) {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    })
    .unwrap_or((0, 0))
}
