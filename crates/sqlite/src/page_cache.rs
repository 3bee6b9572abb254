//! [`WrittenPages`]: a bulk load's committed pages handed back to the kernel's page cache.
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
}
