//! [`resident_pages`]: how much of a file the kernel's page cache holds, for the tests of a
//! bulk load's page-cache advice (`page_cache.rs`).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Pages of `path` in the page cache now, and the file's pages (4 KiB each), from `mincore`
/// over a mapping of the file. `None` where pages cannot be dropped (tmpfs keeps them all), or
/// if the file cannot be opened or mapped.
pub fn resident_pages(path: &Path) -> Option<(usize, usize)> {
    const PAGE: usize = 4096;
    let file = File::open(path).ok()?;
    // SAFETY: fstatfs fills the zeroed struct it is given from an open descriptor.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut fs) } != 0 || fs.f_type == libc::TMPFS_MAGIC {
        return None;
    }
    let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
    if len == 0 {
        return Some((0, 0));
    }
    let mut resident = vec![0u8; len.div_ceil(PAGE)];
    // SAFETY: a read-only shared mapping of the `len` bytes of an open file, unmapped before
    // returning; mincore writes one byte a page into `resident`, which has a byte per page.
    let mapped = unsafe {
        let at = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        if at == libc::MAP_FAILED {
            return None;
        }
        let ok = libc::mincore(at, len, resident.as_mut_ptr()) == 0;
        libc::munmap(at, len);
        ok
    };
    mapped.then(|| {
        (
            resident.iter().filter(|b| **b & 1 == 1).count(),
            resident.len(),
        )
    })
}
