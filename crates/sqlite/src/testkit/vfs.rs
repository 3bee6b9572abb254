//! The VFS's `extern "C"` side: the functions SQLite calls, each a thin shell over the
//! overlay logic of the parent module or a delegation to the real VFS.
//!
//! Safety: every function here is called by SQLite only, with the pointers its VFS contract
//! promises (a file allocated with `szOsFile` bytes, the VFS it was registered with).

use std::collections::BTreeMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use rusqlite::ffi;

use super::{File, Overlay, REAL_OFFSET, RealFile, Registered, State, lock, offset_int};

unsafe fn registered<'a>(vfs: *mut ffi::sqlite3_vfs) -> &'a Registered {
    // SAFETY: SQLite passes back the `vfs` field of a leaked `Registered` (its first field).
    unsafe { &*vfs.cast::<Registered>() }
}

unsafe fn real_of(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: the file was allocated with `REAL_OFFSET` + the real file's size.
    unsafe { file.cast::<u8>().add(REAL_OFFSET).cast() }
}

pub(super) unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    mut flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: see the module's safety note.
    unsafe {
        let reg = registered(vfs);
        let header = file.cast::<File>();
        (*header).base.pMethods = ptr::null();
        if reg.state.cut.load(Ordering::SeqCst) {
            return ffi::SQLITE_CANTOPEN;
        }
        if reg.state.read_only.load(Ordering::SeqCst) && flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
            flags = (flags & !(ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE))
                | ffi::SQLITE_OPEN_READONLY;
        }
        let real = real_of(file);
        (*real).pMethods = ptr::null();
        let Some(open) = (*reg.real).xOpen else {
            return ffi::SQLITE_CANTOPEN;
        };
        let rc = open(reg.real, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        let overlay = if name.is_null() {
            ptr::null()
        } else {
            let key = CStr::from_ptr(name).to_string_lossy().into_owned();
            let real_file = RealFile(real);
            let mut files = lock(&reg.state.files);
            let overlay = match files.get(&key) {
                Some(overlay) => overlay.clone(),
                None => {
                    let size = real_file.size().unwrap_or(0);
                    let overlay = Arc::new(Mutex::new(Overlay {
                        size,
                        floor: size,
                        chunks: BTreeMap::new(),
                        handle: None,
                    }));
                    files.insert(key, overlay.clone());
                    overlay
                }
            };
            Arc::into_raw(overlay)
        };
        ptr::write(ptr::addr_of_mut!((*header).state), reg.state);
        ptr::write(ptr::addr_of_mut!((*header).overlay), overlay);
        (*header).base.pMethods = &IO_METHODS;
        ffi::SQLITE_OK
    }
}

pub(super) unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    // SAFETY: see the module's safety note.
    unsafe {
        let reg = registered(vfs);
        if reg.state.cut.load(Ordering::SeqCst) {
            // The machine is off: nothing happens to the disk any more.
            return ffi::SQLITE_IOERR_DELETE;
        }
        if !name.is_null() {
            let key = CStr::from_ptr(name).to_string_lossy().into_owned();
            if let Some(overlay) = lock(&reg.state.files).remove(&key) {
                // A handle still open on it keeps its own reference; forget the disk handle.
                lock(&overlay).handle = None;
            }
        }
        match (*reg.real).xDelete {
            Some(delete) => delete(reg.real, name, sync_dir),
            None => ffi::SQLITE_IOERR_DELETE,
        }
    }
}

static IO_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // Version 2: with the WAL index (xShm*), without memory mapping (xFetch), so that every
    // read goes through xRead and sees the overlay.
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

/// The file's state, its overlay (if any) and its real file.
struct Parts<'a> {
    state: &'a State,
    overlay: Option<&'a Mutex<Overlay>>,
    real: RealFile,
}

unsafe fn parts<'a>(file: *mut ffi::sqlite3_file) -> Parts<'a> {
    // SAFETY: `x_open` wrote the header of every file whose methods are `IO_METHODS`.
    unsafe {
        let header = &*file.cast::<File>();
        Parts {
            state: &*header.state,
            overlay: header.overlay.as_ref(),
            real: RealFile(real_of(file)),
        }
    }
}

/// Calls the real file's method `$m`, or answers `$missing` when it has none.
macro_rules! delegate {
    ($file:expr, $m:ident, $missing:expr $(, $arg:expr)*) => {{
        let real = real_of($file);
        match (*real).pMethods.as_ref().and_then(|m| m.$m) {
            Some(f) => f(real $(, $arg)*),
            None => $missing,
        }
    }};
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: see the module's safety note.
    unsafe {
        let header = file.cast::<File>();
        let overlay = (*header).overlay;
        if !overlay.is_null() {
            // The overlay outlives the handle (unsynced pages stay in the page cache after a
            // close); only this handle's reference goes. Forget it as the disk handle, too.
            let overlay = Arc::from_raw(overlay);
            let mut guard = lock(&overlay);
            if guard.handle.is_some_and(|h| ptr::eq(h.0, real_of(file))) {
                guard.handle = None;
            }
            drop(guard);
            (*header).overlay = ptr::null();
        }
        delegate!(file, xClose, ffi::SQLITE_OK)
    }
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: see the module's safety note; `buf` holds `amount` bytes.
    unsafe {
        let p = parts(file);
        if p.state.cut.load(Ordering::SeqCst) {
            return ffi::SQLITE_IOERR_READ;
        }
        match p.overlay {
            None => delegate!(file, xRead, ffi::SQLITE_IOERR_READ, buf, amount, offset),
            Some(overlay) => {
                let out = std::slice::from_raw_parts_mut(
                    buf.cast::<u8>(),
                    usize::try_from(amount).unwrap_or(0),
                );
                lock(overlay).read(p.real, out, u64::try_from(offset).unwrap_or(0))
            }
        }
    }
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: see the module's safety note; `buf` holds `amount` bytes.
    unsafe {
        let p = parts(file);
        let fault = p.state.write_fault.load(Ordering::SeqCst);
        if fault != 0 {
            return fault;
        }
        match p.overlay {
            None => delegate!(file, xWrite, ffi::SQLITE_IOERR_WRITE, buf, amount, offset),
            Some(overlay) => {
                let mut overlay = lock(overlay);
                // Checked under the lock, so a write is either before the cut or refused.
                if p.state.cut.load(Ordering::SeqCst) {
                    return ffi::SQLITE_IOERR_WRITE;
                }
                let data = std::slice::from_raw_parts(
                    buf.cast::<u8>(),
                    usize::try_from(amount).unwrap_or(0),
                );
                let rc = overlay.write(p.real, data, u64::try_from(offset).unwrap_or(0));
                drop(overlay);
                p.state.count_write();
                rc
            }
        }
    }
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: see the module's safety note.
    unsafe {
        let p = parts(file);
        match p.overlay {
            None => delegate!(file, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, size),
            Some(overlay) => {
                let mut overlay = lock(overlay);
                if p.state.cut.load(Ordering::SeqCst) {
                    return ffi::SQLITE_IOERR_TRUNCATE;
                }
                overlay.truncate(u64::try_from(size).unwrap_or(0));
                ffi::SQLITE_OK
            }
        }
    }
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: see the module's safety note.
    unsafe {
        let p = parts(file);
        if let Some(overlay) = p.overlay {
            let mut overlay = lock(overlay);
            // Under the lock: a sync either writes through before the cut or fails after it,
            // so nothing acknowledged after a failed sync can count as durable.
            if p.state.cut.load(Ordering::SeqCst) {
                return ffi::SQLITE_IOERR_FSYNC;
            }
            let rc = overlay.flush(p.real);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            p.state.flushes.fetch_add(1, Ordering::Relaxed);
        } else if p.state.cut.load(Ordering::SeqCst) {
            return ffi::SQLITE_IOERR_FSYNC;
        }
        delegate!(file, xSync, ffi::SQLITE_IOERR_FSYNC, flags)
    }
}

unsafe extern "C" fn x_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: see the module's safety note; `size` is a valid out-pointer.
    unsafe {
        let p = parts(file);
        match p.overlay {
            None => delegate!(file, xFileSize, ffi::SQLITE_IOERR_FSTAT, size),
            Some(overlay) => {
                *size = offset_int(lock(overlay).size);
                ffi::SQLITE_OK
            }
        }
    }
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: delegation with the arguments SQLite gave.
    unsafe { delegate!(file, xLock, ffi::SQLITE_IOERR_LOCK, level) }
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: as above.
    unsafe { delegate!(file, xUnlock, ffi::SQLITE_IOERR_UNLOCK, level) }
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: as above.
    unsafe {
        delegate!(
            file,
            xCheckReservedLock,
            ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
            out
        )
    }
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: as above.
    unsafe { delegate!(file, xFileControl, ffi::SQLITE_NOTFOUND, op, arg) }
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as above.
    unsafe { delegate!(file, xSectorSize, 4096) }
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as above.
    unsafe { delegate!(file, xDeviceCharacteristics, 0) }
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    page_size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: as above.
    unsafe {
        delegate!(
            file,
            xShmMap,
            ffi::SQLITE_IOERR_SHMMAP,
            page,
            page_size,
            extend,
            out
        )
    }
}

unsafe extern "C" fn x_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: as above.
    unsafe { delegate!(file, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, offset, n, flags) }
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: as above.
    unsafe { delegate!(file, xShmBarrier, ()) }
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: as above.
    unsafe { delegate!(file, xShmUnmap, ffi::SQLITE_OK, delete) }
}
