//! Whether a database in WAL mode has had a commit, read from its WAL index without a lock or a
//! system call: [`WalIndexWatch`].
//!
//! Why: a reader that keeps its read transaction from one read to the next (the projections'
//! readers, `citydb_projections::read_snapshot`) must begin a new one as soon as any connection,
//! in this process or another, has committed. SQLite tells only at the start of a transaction;
//! this tells between two, by the WAL index header every commit rewrites.
//!
//! The header is the first 48 bytes of the `-shm` file, which every connection of every process
//! maps (SQLite's `walformat.html`, "The WAL-Index Header"): two copies, written second copy
//! first on each commit, read by SQLite first copy first and trusted only when both agree. Its
//! change counter, last frame, salts and checksums change with every commit and every rewind of
//! the WAL. [`WalIndexWatch::header`] reads both copies the same way and answers `None` while
//! they differ (a commit under way): a caller then treats the file as changed.
//!
//! Invariant: a header read before a transaction begins and read equal later means no commit
//! came between: the transaction, begun after the first read, holds everything committed.
//! Safety of the mapping: the `-shm` file is never truncated while a connection has the
//! database open (SQLite truncates it only when its first connection opens it), and a watch is
//! made for a connection that has the file open and lives no longer than it.

use std::path::Path;

/// Bytes of one copy of the WAL index header.
const HEADER_LEN: usize = 48;

/// One copy of a WAL index header, as [`WalIndexWatch::header`] reads it.
pub type WalIndexHeader = [u8; HEADER_LEN];

/// A read-only mapping of the first page of a database's `-shm` file.
pub struct WalIndexWatch {
    #[cfg(unix)]
    map: std::ptr::NonNull<u8>,
}

// SAFETY: the mapping is read-only and only read through volatile loads; sharing or sending
// the pointer between threads is as safe as the reads themselves.
unsafe impl Send for WalIndexWatch {}
unsafe impl Sync for WalIndexWatch {}

/// Bytes mapped: one page, which holds both header copies.
#[cfg(unix)]
const MAPPED: usize = 4096;

impl WalIndexWatch {
    /// Maps the WAL index of the database at `db`, which a connection of the caller has open in
    /// WAL mode and has read from (so that SQLite has made the index). `None` when there is no
    /// index to map (another journal mode, a platform without `mmap`): the caller then never
    /// keeps a transaction.
    pub fn open(db: &Path) -> Option<WalIndexWatch> {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            let mut shm = db.as_os_str().to_owned();
            shm.push("-shm");
            let file = std::fs::File::open(&shm).ok()?;
            if file.metadata().ok()?.len() < MAPPED as u64 {
                return None;
            }
            // SAFETY: a fresh read-only shared mapping of a file we opened, of a length the
            // file has; the descriptor may close after the call, the mapping stays.
            let map = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    MAPPED,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    0,
                )
            };
            if map == libc::MAP_FAILED {
                return None;
            }
            std::ptr::NonNull::new(map.cast::<u8>()).map(|map| WalIndexWatch { map })
        }
        #[cfg(not(unix))]
        {
            let _ = db;
            None
        }
    }

    /// The header, if both copies agree now; `None` while a commit is writing it.
    pub fn header(&self) -> Option<WalIndexHeader> {
        #[cfg(unix)]
        {
            let first = self.copy(0);
            std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
            let second = self.copy(HEADER_LEN);
            (first == second).then_some(first)
        }
        #[cfg(not(unix))]
        None
    }

    #[cfg(unix)]
    fn copy(&self, offset: usize) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        for (i, byte) in out.iter_mut().enumerate() {
            // SAFETY: `offset + i` < 96 < MAPPED, inside the live read-only mapping; volatile,
            // because other connections write these bytes.
            *byte = unsafe { std::ptr::read_volatile(self.map.as_ptr().add(offset + i)) };
        }
        out
    }
}

impl Drop for WalIndexWatch {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: the mapping `open` made, unmapped once.
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), MAPPED);
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn the_header_changes_with_each_commit_of_any_connection_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);",
            )
            .unwrap();
        let reader = Connection::open(&path).unwrap();
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(&reader), 1);
        let watch = WalIndexWatch::open(&path).expect("a WAL index to map");
        let before = watch.header().expect("a settled header");
        // Reads change nothing.
        assert_eq!(count(&reader), 1);
        assert_eq!(watch.header(), Some(before));
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let after = watch.header().expect("a settled header");
        assert_ne!(after, before, "a commit rewrites the header");
        // A checkpoint that rewinds the WAL changes it too.
        writer
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        writer.execute("INSERT INTO t VALUES (3)", []).unwrap();
        assert_ne!(watch.header(), Some(after));
        drop(reader);
        drop(writer);
    }

    #[test]
    fn no_index_no_watch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (x);").unwrap();
        assert!(
            WalIndexWatch::open(&path).is_none(),
            "a rollback journal has no index"
        );
    }
}
