//! The `-wal` file's blocks written before the commits that use them: what every group-commit
//! writer on a citydb SQLite file does between two groups (the event log's, in
//! [`crate::writer`], and the access log's v2 entries, in `citydb_access`).
//!
//! A durable commit ends with an fsync of the WAL. When the commit's frames extend the file,
//! that fsync also writes the new blocks' allocation (ext4's extent tree, the inode's size);
//! when they overwrite blocks already written, it writes the data alone. On this machine's
//! virtual disk the first kind took 270–390 µs and the second 140–210 µs for the same 8 KiB
//! (docs/benchmarks.md, "The WAL's blocks written ahead"). `fallocate` does not help: writing
//! into an allocated but unwritten extent converts it, which is the same metadata write. A
//! WAL that has been rewound is overwritten in place, but every start of a writer begins with
//! an empty WAL (the writers truncate it when they close), so a server's first
//! `restart_pages` pages of each log (128 MiB: the first ~16,000 logged requests with one
//! client) were all appends.
//!
//! So a writer that commits one request at a time keeps the WAL file ahead of SQLite's frames
//! by zeros it wrote itself, about 1 MiB at a time, each chunk synced once, between two
//! requests: one slow fsync for a hundred commits, paid when no request waits for it. Under
//! load, where a group of requests shares one fsync, it writes none (see
//! [`WalAhead::after_group`]).
//!
//! Invariants:
//! - Zeros are written only past the file's end, read while holding the file's write lock
//!   (`BEGIN IMMEDIATE`): no frame of any connection, in any process, is ever overwritten,
//!   and no writer can append while they are written. SQLite reads a WAL's frames up to the
//!   first whose salt or checksum does not match, so zeros past the last frame are never read
//!   as frames, after a crash either.
//! - They go through SQLite's own file object for the WAL (`SQLITE_FCNTL_JOURNAL_POINTER`),
//!   so through the configured VFS: the fault and power-loss tests see them like any write.
//! - The file is never extended past the size the writer's rewinds keep it under
//!   (`restart_pages` frames): in steady state the WAL reaches that size anyway.
//! - Best effort: a failure changes speed, never data (the zeros are not part of any
//!   transaction; the `BEGIN IMMEDIATE` around them is rolled back), and it never waits for
//!   another writer's lock.
//! - Only on a connection whose every commit syncs the WAL (`synchronous` FULL or EXTRA, the
//!   store's default `Durability::Full`). With NORMAL or OFF no commit waits for an fsync, so
//!   there is nothing to speed up, and the zeros' own fsync would be the only one: under OFF
//!   it can make part of a WAL durable that SQLite never synced (after a rewind, say) beside
//!   a database file that it never synced either, and a power cut then leaves a malformed
//!   store where, with no sync at all, the store had only lost its latest events
//!   (`tests/power_loss.rs`, `the_power_cut_catches_a_store_that_does_not_sync`, failed once
//!   in CI with "database disk image is malformed"; not reproduced in 39 local runs).

use std::ffi::{c_int, c_void};

use rusqlite::{Connection, ffi};

/// Extend when fewer bytes than this are left past the frames SQLite may have written.
const LOW_WATER: i64 = 1 << 20;
/// Then extend to this much past them: ~1 MiB at a time, 3–7 ms of writing and syncing here.
const HIGH_WATER: i64 = 2 << 20;
/// The zeros are written in pieces of this size (one buffer, reused). Under 128 KiB: the unix
/// VFS writes at most 0x1ffff bytes a call and reports a longer write as a full disk.
const PIECE: usize = 64 * 1024;
/// A WAL file's header (`WAL_HDRSIZE`) and each frame's header (`WAL_FRAME_HDRSIZE`).
const WAL_HEADER: i64 = 32;
const FRAME_HEADER: i64 = 24;

/// What one writer knows about its WAL file's written blocks. Owned by the writer's thread.
pub struct WalAhead {
    /// Bytes per frame: the page size and the frame's header.
    frame: i64,
    /// The size past which nothing is written ahead (the rewind's bound).
    cap: i64,
    /// An upper bound of where SQLite's next frame goes: the file's size when first seen,
    /// plus every frame the writer's connection wrote since. (A rewind moves the real position
    /// back to the start; the bound then only reaches `cap` sooner.)
    end: Option<i64>,
    /// The file's size after the last extension (or when last looked at).
    written: i64,
    zeros: Vec<u8>,
    /// Whether the connection's commits sync the WAL; if not, nothing is ever written ahead.
    commits_sync: bool,
}

impl WalAhead {
    /// For the writer connection `conn` (in WAL mode) whose checkpointer rewinds the WAL past
    /// `restart_pages` frames.
    pub fn new(conn: &Connection, restart_pages: i64) -> WalAhead {
        let page: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap_or(4096);
        let frame = page + FRAME_HEADER;
        // 2 is FULL, 3 EXTRA; an unreadable setting counts as not syncing (nothing written).
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap_or(0);
        WalAhead {
            frame,
            cap: WAL_HEADER + restart_pages.max(0).saturating_mul(frame),
            end: None,
            written: 0,
            zeros: Vec::new(),
            commits_sync: synchronous >= 2,
        }
    }

    /// Call after each group is answered, on the writer's thread, with no transaction open:
    /// `requests` in the group, `queued` whether more wait. Writes zeros ahead (about 1 MiB,
    /// 3–7 ms of writing and syncing here) only when the group was one request and nothing
    /// waits: a writer whose every commit is one request's wait gains the most, and nobody
    /// waits behind the zeros. Under load, where one fsync is shared by a group, the zeros
    /// would double the WAL's writes and hold up the requests queued behind them: with 32
    /// clients the server lost 9–17 % when they were written after every group
    /// (docs/benchmarks.md, "The WAL's blocks written ahead"). Returns the bytes written.
    /// Never on a connection whose commits do not sync (see the module's invariants).
    pub fn after_group(&mut self, conn: &Connection, requests: usize, queued: bool) -> i64 {
        if !self.commits_sync {
            return 0;
        }
        if requests > 1 || queued {
            // SQLite's count of written frames keeps adding up until the next look.
            return 0;
        }
        self.keep(conn)
    }

    /// Counts the frames written since the last look and, when the zeros ahead of them run
    /// low, writes more.
    fn keep(&mut self, conn: &Connection) -> i64 {
        let frames = written_frames(conn);
        let Some(end) = self.end.as_mut() else {
            return self.extend(conn, frames);
        };
        *end = end.saturating_add(frames.saturating_mul(self.frame));
        let wanted = self.cap.min(end.saturating_add(LOW_WATER));
        if self.written >= wanted {
            return 0;
        }
        self.extend(conn, 0)
    }

    /// Under the write lock: the file's real size, then zeros up to `HIGH_WATER` past `end`.
    fn extend(&mut self, conn: &Connection, frames_before_first_look: i64) -> i64 {
        if !begin_now(conn) {
            return 0;
        }
        let added = match wal_file(conn) {
            Some(file) => {
                let size = file.size().unwrap_or(0);
                let end = *self.end.get_or_insert(
                    // First look: SQLite's position is at most the file's size.
                    size.saturating_add(frames_before_first_look.saturating_mul(self.frame)),
                );
                let target = self.cap.min(end.saturating_add(HIGH_WATER));
                self.written = size;
                if size < target && self.write_zeros(&file, size, target) {
                    self.written = target;
                    target - size
                } else {
                    0
                }
            }
            None => 0,
        };
        let _ = conn.execute_batch("ROLLBACK");
        added
    }

    fn write_zeros(&mut self, file: &WalFile, from: i64, to: i64) -> bool {
        if self.zeros.is_empty() {
            self.zeros = vec![0; PIECE];
        }
        let mut at = from;
        while at < to {
            let n = usize::try_from(to - at).map_or(PIECE, |left| left.min(PIECE));
            if !file.write(&self.zeros[..n], at) {
                return false;
            }
            at += n as i64;
        }
        file.sync()
    }
}

/// `BEGIN IMMEDIATE` without waiting: when another connection (another process: a careful
/// import beside the server) holds the write lock, the zeros wait for a later group rather
/// than the writer for the busy handler. The connection's busy timeout is put back.
fn begin_now(conn: &Connection) -> bool {
    let Ok(timeout) = conn.query_row("PRAGMA busy_timeout", [], |r| r.get::<_, i64>(0)) else {
        return false;
    };
    if conn.execute_batch("PRAGMA busy_timeout = 0").is_err() {
        return false;
    }
    let begun = conn.execute_batch("BEGIN IMMEDIATE").is_ok();
    let restored = conn
        .execute_batch(&format!("PRAGMA busy_timeout = {timeout}"))
        .is_ok();
    if begun && !restored {
        let _ = conn.execute_batch("ROLLBACK");
        return false;
    }
    begun
}

/// Frames the connection wrote since the last call (SQLite's `CACHE_WRITE` count, reset).
fn written_frames(conn: &Connection) -> i64 {
    let (mut current, mut highest): (c_int, c_int) = (0, 0);
    // SAFETY: the handle is valid while `conn` is borrowed, and the out-pointers are live.
    let rc = unsafe {
        ffi::sqlite3_db_status(
            conn.handle(),
            ffi::SQLITE_DBSTATUS_CACHE_WRITE,
            &mut current,
            &mut highest,
            1,
        )
    };
    if rc == ffi::SQLITE_OK {
        i64::from(current)
    } else {
        0
    }
}

/// SQLite's open file object of a connection's WAL, borrowed for one transaction.
struct WalFile(*mut ffi::sqlite3_file);

fn wal_file(conn: &Connection) -> Option<WalFile> {
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: JOURNAL_POINTER stores a `sqlite3_file*` (owned by the pager, valid while the
    // connection is open and in WAL mode) through the pointer it is given.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_JOURNAL_POINTER,
            (&mut file as *mut *mut ffi::sqlite3_file).cast::<c_void>(),
        )
    };
    // A file object with no methods is not open (no WAL yet, or a rollback journal).
    // SAFETY: `file` is null or points to the pager's file object.
    if rc != ffi::SQLITE_OK || file.is_null() || unsafe { (*file).pMethods.is_null() } {
        return None;
    }
    Some(WalFile(file))
}

impl WalFile {
    fn size(&self) -> Option<i64> {
        let mut size: ffi::sqlite3_int64 = 0;
        // SAFETY: an open file object (checked in `wal_file`) and a live out-pointer.
        let rc = unsafe {
            let methods = &*(*self.0).pMethods;
            methods.xFileSize.map(|f| f(self.0, &mut size))
        };
        (rc == Some(ffi::SQLITE_OK)).then_some(size)
    }

    fn write(&self, bytes: &[u8], at: i64) -> bool {
        let Ok(n) = c_int::try_from(bytes.len()) else {
            return false;
        };
        // SAFETY: as in `size`; `bytes` outlives the call.
        let rc = unsafe {
            let methods = &*(*self.0).pMethods;
            methods
                .xWrite
                .map(|f| f(self.0, bytes.as_ptr().cast::<c_void>(), n, at))
        };
        rc == Some(ffi::SQLITE_OK)
    }

    fn sync(&self) -> bool {
        // SAFETY: as in `size`.
        let rc = unsafe {
            let methods = &*(*self.0).pMethods;
            methods.xSync.map(|f| f(self.0, ffi::SQLITE_SYNC_NORMAL))
        };
        rc == Some(ffi::SQLITE_OK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_len(dir: &tempfile::TempDir) -> u64 {
        std::fs::metadata(dir.path().join("t.db-wal")).map_or(0, |m| m.len())
    }

    fn open(dir: &tempfile::TempDir) -> Connection {
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE IF NOT EXISTS t (x INTEGER PRIMARY KEY, v BLOB);",
        )
        .unwrap();
        conn
    }

    fn commit(conn: &Connection, x: i64) {
        conn.execute("INSERT INTO t VALUES (?1, zeroblob(3000))", [x])
            .unwrap();
    }

    fn rows(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    /// The files as a crash leaves them (copied while `dir`'s connections are open, no
    /// checkpoint, the WAL index not copied), reopened: SQLite recovers from the WAL.
    fn crash_image(dir: &tempfile::TempDir) -> (tempfile::TempDir, Connection) {
        let copy = tempfile::tempdir().unwrap();
        for name in ["t.db", "t.db-wal"] {
            std::fs::copy(dir.path().join(name), copy.path().join(name)).unwrap();
        }
        let conn = open(&copy);
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        (copy, conn)
    }

    #[test]
    fn the_wal_file_stays_ahead_of_the_frames_and_within_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir);
        // 8 MiB of frames before a rewind.
        let mut ahead = WalAhead::new(&conn, 2048);
        let cap = ahead.cap as u64;
        commit(&conn, 0);
        assert!(ahead.keep(&conn) > 0, "the first look writes zeros ahead");
        let mut extensions = 0;
        for x in 1..3000 {
            let before = wal_len(&dir);
            commit(&conn, x);
            // The commit's frames overwrote zeros: the file did not grow under SQLite.
            let committed = wal_len(&dir);
            if before < cap {
                assert_eq!(committed, before, "commit {x} appended to the WAL");
            }
            if ahead.keep(&conn) > 0 {
                extensions += 1;
            }
            assert!(wal_len(&dir) <= cap.max(committed), "zeros past the bound");
        }
        // 3,000 commits of a frame or two, ~12–24 MiB: up to the 8 MiB bound in chunks, then
        // nothing more (the WAL is never rewound here, so SQLite appends past the bound).
        let most = ahead.cap / (HIGH_WATER - LOW_WATER) + 1;
        assert!((1..=most).contains(&extensions), "{extensions} extensions");
        assert!(wal_len(&dir) > cap);
        assert_eq!(rows(&conn), 3000);
    }

    #[test]
    fn zeros_are_written_only_after_a_lone_request_with_nothing_queued() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir);
        let mut ahead = WalAhead::new(&conn, 4096);
        commit(&conn, 0);
        let committed = wal_len(&dir);
        assert_eq!(ahead.after_group(&conn, 2, false), 0, "a group of two");
        assert_eq!(
            ahead.after_group(&conn, 1, true),
            0,
            "a request queued behind"
        );
        assert_eq!(wal_len(&dir), committed);
        assert!(ahead.after_group(&conn, 1, false) > 0, "a lone request");
        assert!(wal_len(&dir) >= committed + HIGH_WATER as u64);
    }

    /// With `synchronous` OFF or NORMAL (`Durability::Off`, `Normal`) nothing is written
    /// ahead: the zeros' fsync would be the only one, making part of the WAL durable beside a
    /// database file that never was.
    #[test]
    fn nothing_is_written_ahead_of_commits_that_do_not_sync() {
        for synchronous in ["OFF", "NORMAL"] {
            let dir = tempfile::tempdir().unwrap();
            let conn = open(&dir);
            conn.execute_batch(&format!("PRAGMA synchronous = {synchronous}"))
                .unwrap();
            let mut ahead = WalAhead::new(&conn, 4096);
            commit(&conn, 0);
            let committed = wal_len(&dir);
            assert_eq!(ahead.after_group(&conn, 1, false), 0, "{synchronous}");
            assert_eq!(wal_len(&dir), committed, "{synchronous}");
        }
    }

    #[test]
    fn a_file_another_writer_holds_is_skipped_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir);
        conn.busy_timeout(std::time::Duration::from_secs(60))
            .unwrap();
        let other = open(&dir);
        let mut ahead = WalAhead::new(&conn, 4096);
        commit(&conn, 0);
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = std::time::Instant::now();
        assert_eq!(ahead.after_group(&conn, 1, false), 0);
        // Not the 60 s of the busy handler (a bound far from any machine's noise).
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        let timeout: i64 = conn
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(timeout, 60_000, "the busy timeout is put back");
        other.execute_batch("ROLLBACK").unwrap();
        assert!(
            ahead.after_group(&conn, 1, false) > 0,
            "tried again at the next group"
        );
    }

    #[test]
    fn zeros_ahead_are_not_frames_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir);
        let mut ahead = WalAhead::new(&conn, 4096);
        for x in 0..50 {
            commit(&conn, x);
            ahead.keep(&conn);
        }
        assert!(wal_len(&dir) >= HIGH_WATER as u64);
        let (copy, reopened) = crash_image(&dir);
        assert_eq!(rows(&reopened), 50);
        // And it goes on appending after its last frame, not after the zeros.
        commit(&reopened, 50);
        drop(reopened);
        assert_eq!(rows(&open(&copy)), 51);
    }

    #[test]
    fn another_writer_between_two_extensions_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir);
        let other = open(&dir);
        let mut ahead = WalAhead::new(&conn, 4096);
        // The other connection's frames are not counted by `conn`: they can pass the zeros
        // and grow the file, and the next extension must start past them.
        let mut expected = 0;
        for x in 0..400 {
            if x % 4 == 0 {
                // ~40 frames: past what `conn` knows of, and soon past its zeros.
                other.execute_batch("BEGIN").unwrap();
                for y in 0..40 {
                    commit(&other, 100_000 + x * 100 + y);
                }
                other.execute_batch("COMMIT").unwrap();
                expected += 40;
            } else {
                conn.execute_batch("BEGIN").unwrap();
                for y in 0..10 {
                    commit(&conn, x * 100 + y);
                }
                conn.execute_batch("COMMIT").unwrap();
                expected += 10;
            }
            ahead.keep(&conn);
        }
        assert!(wal_len(&dir) > 2 * HIGH_WATER as u64);
        drop(other);
        let (_copy, reopened) = crash_image(&dir);
        assert_eq!(rows(&reopened), expected);
    }
}
