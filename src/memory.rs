//! The process's allocator, and handing freed heap back to the system between the phases of a
//! long command.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// mimalloc instead of glibc's malloc: a bulk import allocates and frees hundreds of millions
/// of small values (commands, events, JSON), and glibc's `malloc`, `free` and their
/// consolidation were 21 % of its CPU; the server's reads spend less per request too
/// (docs/benchmarks.md, "mimalloc").
#[global_allocator]
static ALLOCATOR: Mimalloc = Mimalloc;

/// The alignment `mi_malloc` gives every block it returns that is at least this large
/// (`MI_MAX_ALIGN_SIZE`, `sizeof(max_align_t)`; smaller blocks are aligned to their size's
/// power of two, as glibc's).
const MALLOC_ALIGN: usize = 16;

/// mimalloc asked for plain blocks when plain blocks are aligned enough.
///
/// The `mimalloc` crate's allocator passes every allocation through `mi_malloc_aligned`,
/// whose test of the free block's alignment costs ~20 instructions more than `mi_malloc`, and
/// which takes a slower path for every block over 1 KiB: a (c) read made ~300 allocations
/// (docs/benchmarks.md, "mimalloc asked for plain blocks"). Here a layout whose alignment is
/// at most [`MALLOC_ALIGN`] and at most its size goes to `mi_malloc` (what std's allocator
/// does with glibc), and the block's alignment is still checked: a block that is not aligned
/// as asked (none is, by mimalloc's design) is freed and asked for again through the aligned
/// call, so no layout depends on that design.
struct Mimalloc;

/// Whether a plain block of `layout`'s size is aligned enough for it.
#[inline]
fn plain(layout: Layout) -> bool {
    layout.align() <= MALLOC_ALIGN && layout.align() <= layout.size()
}

/// Whether `p` is aligned to `align` (a power of two); a null pointer is.
#[inline]
fn aligned(p: *mut c_void, align: usize) -> bool {
    (p as usize) & (align - 1) == 0
}

/// A block for `layout` from `alloc_plain` if such a block is aligned enough, else from
/// `alloc_aligned`.
///
/// # Safety
/// `alloc_plain` and `alloc_aligned` are a pair of mimalloc's allocation calls (`mi_malloc`
/// and `mi_malloc_aligned`, or their zeroing forms); `layout`'s size is not zero.
#[inline]
unsafe fn plain_or_aligned(
    layout: Layout,
    alloc_plain: unsafe extern "C" fn(usize) -> *mut c_void,
    alloc_aligned: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    // SAFETY: the calls take any size and a power-of-two alignment (a `Layout`'s); a block is
    // freed by `mi_free` whichever call made it.
    unsafe {
        if plain(layout) {
            let p = alloc_plain(layout.size());
            if aligned(p, layout.align()) {
                return p.cast();
            }
            mi_free(p);
        }
        alloc_aligned(layout.size(), layout.align()).cast()
    }
}

// SAFETY: every block comes from mimalloc and goes back to it through `mi_free`, which takes
// blocks from its plain and aligned calls alike; each returned block is aligned to the layout's
// alignment (checked for the plain calls, guaranteed by the aligned ones) and at least as
// large as its size; null reports a failure, as `GlobalAlloc` asks.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `plain_or_aligned` asks.
        unsafe { plain_or_aligned(layout, mi_malloc, mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `plain_or_aligned` asks.
        unsafe { plain_or_aligned(layout, mi_zalloc, mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from one of this allocator's calls (the caller's contract).
        unsafe { mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's contract); a
        // moved block that is not aligned as asked is copied into an aligned one, then freed.
        unsafe {
            let align = layout.align();
            if align <= MALLOC_ALIGN && align <= new_size {
                let p = mi_realloc(ptr.cast(), new_size);
                if aligned(p, align) {
                    return p.cast();
                }
                let q = mi_malloc_aligned(new_size, align);
                if q.is_null() {
                    // The old block is gone (moved to `p`) and `p` is no use to the caller:
                    // failing here would lose its contents, so this is the allocation failure
                    // `handle_alloc_error` reports (it aborts the process).
                    std::alloc::handle_alloc_error(Layout::from_size_align_unchecked(
                        new_size, align,
                    ));
                }
                std::ptr::copy_nonoverlapping(p.cast::<u8>(), q.cast::<u8>(), new_size);
                mi_free(p);
                return q.cast();
            }
            mi_realloc_aligned(ptr.cast(), new_size, align).cast()
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size from 1 to 1,100 bytes (past mimalloc's 1 KiB of small blocks, and some
    /// larger: its medium and large blocks) with every alignment from 1 to
    /// 4,096: the block is aligned as asked, holds what is written into it, comes zeroed from
    /// `alloc_zeroed`, and keeps its contents through a `realloc` that grows it and one that
    /// shrinks it.
    #[test]
    fn every_layout_gets_an_aligned_block_that_keeps_its_contents() {
        let sizes = (1..=1_100).chain([1_536, 4_095, 4_096, 8_192, 65_537, 300_001]);
        for size in sizes {
            for align in (0..=12).map(|shift| 1usize << shift) {
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                // SAFETY: a non-zero size; each block is freed once with its layout.
                unsafe {
                    let p = ALLOCATOR.alloc(layout);
                    assert!(!p.is_null(), "{size} bytes aligned to {align}");
                    assert_eq!(p as usize % align, 0, "{size} bytes aligned to {align}");
                    let fill = |p: *mut u8, n: usize| {
                        for i in 0..n {
                            p.add(i).write((i % 251) as u8);
                        }
                    };
                    let holds =
                        |p: *mut u8, n: usize| (0..n).all(|i| p.add(i).read() == (i % 251) as u8);
                    fill(p, size);
                    let grown = size * 2 + 17;
                    let q = ALLOCATOR.realloc(p, layout, grown);
                    assert_eq!(
                        q as usize % align,
                        0,
                        "grown to {grown}, aligned to {align}"
                    );
                    assert!(holds(q, size), "{size} bytes kept when grown");
                    let grown_layout = Layout::from_size_align_unchecked(grown, align);
                    let shrunk = size.div_ceil(3);
                    let r = ALLOCATOR.realloc(q, grown_layout, shrunk);
                    assert_eq!(
                        r as usize % align,
                        0,
                        "shrunk to {shrunk}, aligned to {align}"
                    );
                    assert!(holds(r, shrunk), "{shrunk} bytes kept when shrunk");
                    ALLOCATOR.dealloc(r, Layout::from_size_align_unchecked(shrunk, align));

                    let z = ALLOCATOR.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "zeroed {size} aligned to {align}");
                    assert!((0..size).all(|i| z.add(i).read() == 0), "zeroed {size}");
                    ALLOCATOR.dealloc(z, layout);
                }
            }
        }
    }
}
