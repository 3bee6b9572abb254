//! Advice to the kernel's page cache about a whole file: [`WrittenPages`], a bulk load's
//! committed pages handed back, and [`read_into_page_cache`], a file asked for in order before
//! a pass that reads it all in another order.
//!
//! ## Written pages
//!
//! Why: a bulk load of the whole city writes ~21 GB of log through the page cache of a machine
//! with ~19 GB to spare. The kernel keeps what was written last, so the log's pages push out the
//! ones read again: the projections built beside the load (`projections.db`, ~6 GB, its B-trees
//! read back as they grow and scanned by its index build), and the importer's states set aside
//! in a temporary file. Nothing reads the log's committed pages during such a load — rows only
//! go to the end of its table, whose right edge the loader's own page cache holds — so the
//! loader tells the kernel so after each commit. Measured at the whole city: 4–6 GB less read
//! from disk and ~5 % off the import (docs/benchmarks.md, "A bulk load's pages out of the page
//! cache").
//!
//! It is advice (`posix_fadvise(POSIX_FADV_DONTNEED)`): the kernel drops the file's clean
//! pages, starts writing any dirty ones, and loses nothing; a failure changes only speed, so it
//! is not an error. Elsewhere than on Linux it does nothing.

use std::fs::File;
use std::path::Path;

/// A file whose cached pages are handed back after each commit of a load.
pub(crate) struct WrittenPages {
    /// A descriptor of its own: advice applies to the file (its inode's pages), whichever
    /// descriptor gives it. `None` if the file could not be opened: no advice then.
    file: Option<File>,
}

impl WrittenPages {
    pub(crate) fn of(path: &Path) -> WrittenPages {
        WrittenPages {
            file: File::open(path).ok(),
        }
    }

    /// Asks the kernel to drop the file's cached pages: after a commit they are clean (synced)
    /// unless the store runs without syncs, and then they are only written sooner.
    pub(crate) fn hand_back(&self) {
        #[cfg(target_os = "linux")]
        if let Some(file) = &self.file {
            use std::os::fd::AsRawFd;
            // SAFETY: the descriptor is open for as long as `file` lives; offset 0 and length
            // 0 mean the whole file; the call reads and writes no memory of ours.
            unsafe {
                libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = &self.file;
    }
}

/// Bytes asked for at once: the kernel reads at most its read-ahead window (`read_ahead_kb`,
/// 8 MiB on these machines) per `POSIX_FADV_WILLNEED`, so a whole file is asked for in pieces.
const PIECE: u64 = 8 << 20;

/// Asks the kernel to read the file at `path` into its page cache from start to end, piece by
/// piece, until `stop` is set. Returns once every read is asked for, about as long as the disk
/// takes to read the file, without waiting for the last ones.
///
/// Why: `PRAGMA quick_check` reads every page of a file, but in the order of its B-trees,
/// which after years of inserts is not the order of the file: from a cold cache it reads one
/// page at a time at random: the whole city's projections (6 GB) took 110-124 s to check from
/// a cold cache, and 13 s with this beside the check, which turns its reads into hits
/// (docs/benchmarks.md, "A bulk import into a store that holds a city"). Advice only: a failure changes speed, not what the check finds. Elsewhere than on
/// Linux it does nothing.
pub fn read_into_page_cache(path: &Path, stop: &std::sync::atomic::AtomicBool) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        use std::sync::atomic::Ordering;
        let Ok(file) = File::open(path) else {
            return;
        };
        let Ok(len) = file.metadata().map(|m| m.len()) else {
            return;
        };
        let mut offset = 0;
        while offset < len && !stop.load(Ordering::Relaxed) {
            let piece = PIECE.min(len - offset);
            let (Ok(at), Ok(n)) = (i64::try_from(offset), i64::try_from(piece)) else {
                return;
            };
            // SAFETY: the descriptor is open while `file` lives; the call reads and writes no
            // memory of ours.
            if unsafe { libc::posix_fadvise(file.as_raw_fd(), at, n, libc::POSIX_FADV_WILLNEED) }
                != 0
            {
                return;
            }
            offset += piece;
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (path, stop);
}

#[cfg(all(test, target_os = "linux", feature = "testkit"))]
mod tests {
    use super::*;
    use crate::testkit::resident_pages;
    use std::io::Write;

    #[test]
    fn written_and_synced_pages_leave_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pages");
        let mut file = File::create(&path).unwrap();
        file.write_all(&vec![7u8; 4 << 20]).unwrap();
        file.sync_all().unwrap();
        let Some((before, pages)) = resident_pages(&path) else {
            eprintln!("skipped: the temporary directory keeps its pages (tmpfs)");
            return;
        };
        assert_eq!(pages, 1024);
        assert!(before > pages / 2, "{before} of {pages} pages cached");
        WrittenPages::of(&path).hand_back();
        let (after, _) = resident_pages(&path).unwrap();
        assert!(after < pages / 10, "{after} of {pages} pages still cached");
    }

    #[test]
    fn a_whole_file_comes_into_the_page_cache_unless_stopped() {
        use std::sync::atomic::AtomicBool;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pages");
        let mut file = File::create(&path).unwrap();
        // More than two pieces, and a last one that is not whole.
        file.write_all(&vec![7u8; (2 * PIECE as usize) + (1 << 20)])
            .unwrap();
        file.sync_all().unwrap();
        WrittenPages::of(&path).hand_back();
        let Some((before, pages)) = resident_pages(&path) else {
            eprintln!("skipped: the temporary directory keeps its pages (tmpfs)");
            return;
        };
        assert!(
            before < pages / 10,
            "{before} of {pages} pages cached before"
        );
        read_into_page_cache(&path, &AtomicBool::new(true));
        // Long enough for reads asked for to arrive (below, they all do within milliseconds).
        std::thread::sleep(std::time::Duration::from_millis(300));
        let (stopped, _) = resident_pages(&path).unwrap();
        assert!(
            stopped < pages / 10,
            "stopped at once, yet {stopped} of {pages} pages cached"
        );
        read_into_page_cache(&path, &AtomicBool::new(false));
        // The reads were asked for, not waited for.
        let mut cached = 0;
        for _ in 0..500 {
            cached = resident_pages(&path).unwrap().0;
            if cached == pages {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(cached, pages, "{cached} of {pages} pages cached");
    }
}
