//! Handing freed heap back to the system between the phases of a long command.

/// Returns the pages of freed allocations to the system.
///
/// glibc keeps what small allocations free in its arenas for reuse, so a process's resident
/// memory does not shrink when it drops millions of them. A bulk import of the whole city
/// drops gigabytes of record states before the store builds its indexes and the projections
/// are built: without this, those phases run on top of memory nobody uses.
pub fn give_back_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes no pointers and only walks glibc's own arenas, under their
    // locks; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
