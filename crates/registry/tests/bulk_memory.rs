//! A bulk import's memory is gone before the store's last step: the sink's `finish` (on a real
//! store, the build of every deferred index) runs without the run's record states, keys and
//! command ids beside it. Before `BulkRegistry::close`, `finish` moved the sink out of `self`
//! with a pattern and kept the rest alive until it returned: the whole city's index build ran
//! on top of 2.4 GB that nobody used.
//!
//! A test binary of its own: its counting allocator sees every allocation of the process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

use async_trait::async_trait;
use citydb_fixtures::{FixtureConfig, write_ndjson};
use citydb_log::backend::plan::Tip;
use citydb_log::bulk::BulkSink;
use citydb_log::{LogError, RecordedEvent, StreamId};
use citydb_registry::{BulkRegistry, CommandRequest};

/// Bytes allocated and not yet freed, by every thread.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call is passed to the system allocator unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// A store that keeps nothing (so that what stays on the heap is the registry's), and notes the
/// live heap when it is asked to finish.
struct Forgetful {
    at_finish: Arc<AtomicIsize>,
}

#[async_trait]
impl BulkSink for Forgetful {
    fn tip(&self) -> Tip {
        Tip::EMPTY
    }
    async fn read_stream(&mut self, _: &StreamId) -> Result<Vec<RecordedEvent>, LogError> {
        Ok(Vec::new())
    }
    async fn read_event(&mut self, _: u64) -> Result<Option<RecordedEvent>, LogError> {
        Ok(None)
    }
    async fn write(&mut self, _: Vec<RecordedEvent>) -> Result<(), LogError> {
        Ok(())
    }
    async fn commit(&mut self) -> Result<(), LogError> {
        Ok(())
    }
    async fn finish(self: Box<Self>) -> Result<(), LogError> {
        self.at_finish.store(live(), Ordering::Relaxed);
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_runs_memory_is_dropped_before_the_store_finishes() {
    let mut file = Vec::new();
    write_ndjson(&FixtureConfig::scaled(2000, 7), &mut file).unwrap();
    let requests: Vec<CommandRequest> = file
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    drop(file);

    let at_finish = Arc::new(AtomicIsize::new(0));
    let sink = Forgetful {
        at_finish: at_finish.clone(),
    };
    let start = live();
    let mut registry = BulkRegistry::new(Box::new(sink), citydb_log::DEFAULT_MAX_EVENT_SIZE);
    let mut executed = 0;
    for request in &requests {
        if registry.execute(request.clone()).await.is_ok() {
            executed += 1;
        }
    }
    assert!(
        executed > 5000,
        "too few commands to mean anything: {executed}"
    );
    let held = live() - start;
    assert!(held > 4 << 20, "the run holds only {held} bytes");
    registry.finish().await.unwrap();
    let left = at_finish.load(Ordering::Relaxed) - start;
    assert!(
        left < held / 20,
        "the store finished beside {left} of the run's {held} bytes"
    );
    drop(requests);
}
