//! The process's allocator, and handing freed heap back to the system between the phases of a
//! long command.

/// mimalloc instead of glibc's malloc: a bulk import allocates and frees hundreds of millions
/// of small values (commands, events, JSON), and glibc's `malloc`, `free` and their
/// consolidation were 21 % of its CPU; the server's reads spend less per request too
/// (docs/benchmarks.md, "mimalloc").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns the pages of freed allocations to the system.
///
/// An allocator keeps what it frees for reuse, so a process's resident memory does not shrink
/// by itself when it drops millions of small values. A bulk import of the whole city drops
/// gigabytes of record states before the store builds its indexes and the projections are
/// built: without this, those phases run on top of memory nobody uses.
pub fn give_back_freed() {
    // SAFETY: `mi_collect` takes no pointers; it walks mimalloc's own heaps and may be called
    // from any thread at any time.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}
