//! Test kit (feature `testkit`, never on a product path): an SQLite VFS that behaves like an
//! operating system's page cache in front of a disk that can lose power.
//!
//! [`PowerCutVfs`] wraps the platform's default VFS. A write (or truncation) of a file goes
//! into an in-memory overlay of that file — the pages not yet synced — shared by every
//! connection that has the file open, as the page cache is; reads see the overlay over the
//! file; `xSync` writes the file's overlay through and then syncs the real file. Locks, the
//! WAL index (`xShm*`), file controls, sector size and device characteristics are the real
//! VFS's. [`PowerCutVfs::cut_power`] is the power cut: from then on every write, sync,
//! truncation and read fails (the machine is gone) and the unsynced overlays are dropped, or
//! torn: a random subset of their 4 KiB pages reaches the disk, as a drive may write some
//! cached blocks and not others. What is on the real files afterwards is what a machine would
//! find after the reboot; reopen them with the default VFS to check what survived.
//!
//! Not modelled: directory entries (creating and deleting a file is durable at once) and
//! tearing inside a 4 KiB page.
//!
//! The same VFS injects faults for the fault-code tests: [`PowerCutVfs::fail_writes`] makes
//! every write answer an SQLite result code (`SQLITE_FULL` for a full disk), and
//! [`PowerCutVfs::open_read_only`] opens databases read-only, as on a read-only file system.
//!
//! Safety: every `extern "C"` function below is called by SQLite only, with the pointers its
//! VFS contract promises (a file allocated with `szOsFile` bytes, the VFS it was registered
//! with). A registered VFS is leaked: SQLite may use it until the process ends.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CString, c_int};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::ffi;

/// The unit the overlay keeps and tears: SQLite's default page size, and a disk block.
const CHUNK: u64 = 4096;

/// A registered power-cut VFS. Open a log through it with `SqliteConfig { vfs:
/// Some(vfs.name().into()), .. }`.
pub struct PowerCutVfs {
    name: String,
    state: &'static State,
}

/// What a power cut did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Files that had unsynced pages.
    pub files: usize,
    /// Unsynced pages lost.
    pub pages_lost: usize,
    /// Unsynced pages that reached the disk anyway (tearing).
    pub pages_written: usize,
}

/// Why the VFS could not be registered.
#[derive(Debug, thiserror::Error)]
#[error("cannot register the power-cut VFS: {0}")]
pub struct RegisterError(String);

struct State {
    /// One overlay per file path, shared by every handle on it (the page cache is per file).
    files: Mutex<HashMap<String, Arc<Mutex<Overlay>>>>,
    cut: AtomicBool,
    /// 0, or the result code every write answers.
    write_fault: AtomicI32,
    read_only: AtomicBool,
    /// Syncs that wrote an overlay through: a count, for the tests' figures.
    flushes: AtomicU64,
    /// Writes through overlays so far, and the one to cut the power after (0: none).
    writes: AtomicU64,
    cut_at_write: AtomicU64,
    tear_at_write: Mutex<Option<u64>>,
    /// What the cut did, once it happened.
    last_cut: Mutex<Option<CutReport>>,
}

/// The registered VFS: SQLite sees `vfs`, the first field, and hands its address back.
#[repr(C)]
struct Registered {
    vfs: ffi::sqlite3_vfs,
    real: *mut ffi::sqlite3_vfs,
    state: &'static State,
    _name: CString,
}

/// One open file: SQLite allocates `szOsFile` bytes; the real VFS's file follows this header.
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    state: *const State,
    /// `Arc::into_raw` of the file's overlay; null for a file without a name (a temporary
    /// file), which goes straight through.
    overlay: *const Mutex<Overlay>,
}

/// Where the real file starts, 8-byte aligned.
const REAL_OFFSET: usize = std::mem::size_of::<File>().next_multiple_of(8);

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl PowerCutVfs {
    /// Registers a new VFS, under a name of its own, wrapping the default one.
    pub fn register() -> Result<PowerCutVfs, RegisterError> {
        let name = format!(
            "citydb-power-cut-{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        );
        let c_name = CString::new(name.clone()).map_err(|e| RegisterError(e.to_string()))?;
        // SAFETY: `sqlite3_vfs_find(NULL)` initialises SQLite and returns the default VFS,
        // which lives as long as the process.
        let real = unsafe { ffi::sqlite3_vfs_find(ptr::null()) };
        if real.is_null() {
            return Err(RegisterError("SQLite has no default VFS".into()));
        }
        let state: &'static State = Box::leak(Box::new(State {
            files: Mutex::new(HashMap::new()),
            cut: AtomicBool::new(false),
            write_fault: AtomicI32::new(0),
            read_only: AtomicBool::new(false),
            flushes: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            cut_at_write: AtomicU64::new(0),
            tear_at_write: Mutex::new(None),
            last_cut: Mutex::new(None),
        }));
        // SAFETY: `real` is a valid VFS; copying it keeps its helpers (randomness, time, full
        // path names, dlopen), none of which depends on the VFS pointer they are given.
        let mut vfs = unsafe { *real };
        vfs.szOsFile = c_int::try_from(REAL_OFFSET)
            .ok()
            .and_then(|header| header.checked_add(vfs.szOsFile))
            .ok_or_else(|| RegisterError("file structure too large".into()))?;
        vfs.pNext = ptr::null_mut();
        vfs.zName = c_name.as_ptr();
        vfs.xOpen = Some(x_open);
        vfs.xDelete = Some(x_delete);
        let registered: &'static mut Registered = Box::leak(Box::new(Registered {
            vfs,
            real,
            state,
            _name: c_name,
        }));
        // SAFETY: the VFS is leaked, so it outlives every connection that may use it.
        let rc = unsafe { ffi::sqlite3_vfs_register(&mut registered.vfs, 0) };
        if rc != ffi::SQLITE_OK {
            return Err(RegisterError(format!("sqlite3_vfs_register answered {rc}")));
        }
        Ok(PowerCutVfs { name, state })
    }

    /// The name to open connections with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Cuts the power: every later write, sync, truncation and read fails, and every page not
    /// yet synced is lost — or, with `tear: Some(seed)`, each reaches the disk or not, by a
    /// coin toss from `seed`.
    pub fn cut_power(&self, tear: Option<u64>) -> CutReport {
        self.state.cut_power(tear)
    }

    /// Cuts the power right after the `n`-th write through the VFS (counted from now on, 1
    /// for the next), with `tear` as for [`PowerCutVfs::cut_power`]: a moment in the middle of
    /// a commit, between its writes and its sync, which no caller could choose.
    pub fn cut_power_at_write(&self, n: u64, tear: Option<u64>) {
        *lock(&self.state.tear_at_write) = tear;
        let now = self.state.writes.load(Ordering::SeqCst);
        self.state
            .cut_at_write
            .store(now + n.max(1), Ordering::SeqCst);
    }

    /// What the power cut did, once there was one.
    pub fn last_cut(&self) -> Option<CutReport> {
        *lock(&self.state.last_cut)
    }

    /// Whether the power has been cut.
    pub fn is_cut(&self) -> bool {
        self.state.cut.load(Ordering::SeqCst)
    }

    /// Makes every write answer `code` (an SQLite result code such as `SQLITE_FULL`), or
    /// write again with `None`.
    pub fn fail_writes(&self, code: Option<c_int>) {
        self.state
            .write_fault
            .store(code.unwrap_or(0), Ordering::SeqCst);
    }

    /// Opens database files read-only from now on, as a read-only file system would.
    pub fn open_read_only(&self, read_only: bool) {
        self.state.read_only.store(read_only, Ordering::SeqCst);
    }

    /// How many syncs wrote an overlay through so far.
    pub fn flushes(&self) -> u64 {
        self.state.flushes.load(Ordering::Relaxed)
    }
}

impl State {
    fn cut_power(&self, tear: Option<u64>) -> CutReport {
        // Set first, so that a sync waiting for an overlay's lock finds the power gone.
        if self.cut.swap(true, Ordering::SeqCst) {
            return CutReport::default(); // Already off.
        }
        let files = lock(&self.files);
        let mut report = CutReport::default();
        let mut coin = tear.map(|seed| seed | 1);
        for overlay in files.values() {
            let mut overlay = lock(overlay);
            if overlay.chunks.is_empty() {
                continue;
            }
            report.files += 1;
            let chunks = std::mem::take(&mut overlay.chunks);
            for (index, chunk) in chunks {
                let lands = coin.as_mut().is_some_and(|state| xorshift(state) & 1 == 1);
                let written = lands
                    && overlay
                        .handle
                        .as_ref()
                        .is_some_and(|h| h.write_chunk(index, &chunk, overlay.size));
                if written {
                    report.pages_written += 1;
                } else {
                    report.pages_lost += 1;
                }
            }
        }
        *lock(&self.last_cut) = Some(report);
        report
    }

    /// Counts a write through an overlay; cuts the power if it is the armed one. Called with
    /// no overlay locked (the cut takes them all).
    fn count_write(&self) {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.cut_at_write.load(Ordering::SeqCst) {
            let tear = *lock(&self.tear_at_write);
            self.cut_power(tear);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic cannot happen while one of these is held (no code here panics); recover anyway.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The unsynced state of one file.
struct Overlay {
    /// The file's size as its users see it.
    size: u64,
    /// Bytes of the real file at or past this offset are stale: the file was truncated below
    /// it since the last sync. Never above `size`.
    floor: u64,
    /// Chunk index → the chunk's whole current content, for every chunk written since the
    /// last sync.
    chunks: BTreeMap<u64, Box<[u8]>>,
    /// A real file handle to tear pages in with at a power cut (the last one that wrote).
    handle: Option<RealFile>,
}

/// A real file, as the real VFS opened it.
#[derive(Clone, Copy)]
struct RealFile(*mut ffi::sqlite3_file);

// SAFETY: SQLite's files may be used from any thread (the library is compiled thread-safe);
// the overlay's mutex serialises its own use of the handle.
unsafe impl Send for RealFile {}

impl RealFile {
    fn methods(&self) -> Option<&ffi::sqlite3_io_methods> {
        // SAFETY: `self.0` is a file the real VFS opened; its methods are static.
        unsafe { (*self.0).pMethods.as_ref() }
    }

    fn read(&self, buf: &mut [u8], offset: u64) -> c_int {
        match self.methods().and_then(|m| m.xRead) {
            // SAFETY: the buffer holds `buf.len()` bytes.
            Some(f) => unsafe {
                f(
                    self.0,
                    buf.as_mut_ptr().cast(),
                    len_int(buf.len()),
                    offset_int(offset),
                )
            },
            None => ffi::SQLITE_IOERR_READ,
        }
    }

    fn write(&self, buf: &[u8], offset: u64) -> c_int {
        match self.methods().and_then(|m| m.xWrite) {
            // SAFETY: as for `read`.
            Some(f) => unsafe {
                f(
                    self.0,
                    buf.as_ptr().cast(),
                    len_int(buf.len()),
                    offset_int(offset),
                )
            },
            None => ffi::SQLITE_IOERR_WRITE,
        }
    }

    fn truncate(&self, size: u64) -> c_int {
        match self.methods().and_then(|m| m.xTruncate) {
            // SAFETY: a plain call on the real file.
            Some(f) => unsafe { f(self.0, offset_int(size)) },
            None => ffi::SQLITE_IOERR_TRUNCATE,
        }
    }

    fn size(&self) -> Result<u64, c_int> {
        let mut size: ffi::sqlite3_int64 = 0;
        let rc = match self.methods().and_then(|m| m.xFileSize) {
            // SAFETY: `size` is a valid out-pointer.
            Some(f) => unsafe { f(self.0, &mut size) },
            None => ffi::SQLITE_IOERR_FSTAT,
        };
        if rc == ffi::SQLITE_OK {
            Ok(u64::try_from(size).unwrap_or(0))
        } else {
            Err(rc)
        }
    }

    /// Writes chunk `index`'s bytes below `size` through; whether it worked.
    fn write_chunk(&self, index: u64, chunk: &[u8], size: u64) -> bool {
        let start = index * CHUNK;
        let end = (start + CHUNK).min(size);
        end <= start || self.write(&chunk[..(end - start) as usize], start) == ffi::SQLITE_OK
    }
}

/// SQLite never asks for more than an `int` of bytes at once.
fn len_int(n: usize) -> c_int {
    c_int::try_from(n).unwrap_or(c_int::MAX)
}

fn offset_int(n: u64) -> ffi::sqlite3_int64 {
    ffi::sqlite3_int64::try_from(n).unwrap_or(ffi::sqlite3_int64::MAX)
}

impl Overlay {
    fn read(&self, real: RealFile, out: &mut [u8], offset: u64) -> c_int {
        let end = offset + out.len() as u64;
        // What the disk holds below the floor (a short read zero-fills the rest)...
        let real_end = end.min(self.floor).max(offset);
        if real_end > offset {
            let rc = real.read(&mut out[..(real_end - offset) as usize], offset);
            if rc != ffi::SQLITE_OK && rc != ffi::SQLITE_IOERR_SHORT_READ {
                return rc;
            }
        }
        out[(real_end - offset) as usize..].fill(0);
        // ...then the unsynced chunks over it.
        if !out.is_empty() {
            for (&index, chunk) in self.chunks.range(offset / CHUNK..=(end - 1) / CHUNK) {
                let start = index * CHUNK;
                let (a, b) = (offset.max(start), end.min(start + CHUNK));
                out[(a - offset) as usize..(b - offset) as usize]
                    .copy_from_slice(&chunk[(a - start) as usize..(b - start) as usize]);
            }
        }
        if end > self.size {
            out[(self.size.max(offset) - offset) as usize..].fill(0);
            return ffi::SQLITE_IOERR_SHORT_READ;
        }
        ffi::SQLITE_OK
    }

    fn write(&mut self, real: RealFile, data: &[u8], offset: u64) -> c_int {
        if data.is_empty() {
            return ffi::SQLITE_OK;
        }
        let end = offset + data.len() as u64;
        for index in offset / CHUNK..=(end - 1) / CHUNK {
            let start = index * CHUNK;
            if !self.chunks.contains_key(&index) {
                // The chunk's current content: the disk's below the floor, zeros past it.
                let mut chunk = vec![0u8; CHUNK as usize].into_boxed_slice();
                let disk_end = (start + CHUNK).min(self.floor);
                if disk_end > start {
                    let rc = real.read(&mut chunk[..(disk_end - start) as usize], start);
                    if rc != ffi::SQLITE_OK && rc != ffi::SQLITE_IOERR_SHORT_READ {
                        return rc;
                    }
                }
                self.chunks.insert(index, chunk);
            }
            if let Some(chunk) = self.chunks.get_mut(&index) {
                let (a, b) = (offset.max(start), end.min(start + CHUNK));
                chunk[(a - start) as usize..(b - start) as usize]
                    .copy_from_slice(&data[(a - offset) as usize..(b - offset) as usize]);
            }
        }
        self.size = self.size.max(end);
        self.handle = Some(real);
        ffi::SQLITE_OK
    }

    fn truncate(&mut self, size: u64) {
        self.size = size;
        self.floor = self.floor.min(size);
        drop(self.chunks.split_off(&size.div_ceil(CHUNK)));
        if let Some(chunk) = self.chunks.get_mut(&(size / CHUNK)) {
            chunk[(size % CHUNK) as usize..].fill(0);
        }
    }

    /// Writes everything unsynced through to the real file (not yet synced itself).
    fn flush(&mut self, real: RealFile) -> c_int {
        let on_disk = match real.size() {
            Ok(size) => size,
            Err(rc) => return rc,
        };
        if on_disk > self.floor {
            let rc = real.truncate(self.floor);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        for (&index, chunk) in &self.chunks {
            if !real.write_chunk(index, chunk, self.size) {
                return ffi::SQLITE_IOERR_WRITE;
            }
        }
        match real.size() {
            Ok(size) if size == self.size => {}
            Ok(_) => {
                let rc = real.truncate(self.size);
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
            }
            Err(rc) => return rc,
        }
        self.chunks.clear();
        self.floor = self.size;
        ffi::SQLITE_OK
    }
}

mod vfs;

#[cfg(target_os = "linux")]
mod resident;
#[cfg(target_os = "linux")]
pub use resident::resident_pages;
use vfs::{x_delete, x_open};
