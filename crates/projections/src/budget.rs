//! The work a read may do on an async worker thread.
//!
//! A page of search results usually costs a few hundred SQLite VM steps (an index range read
//! from its first key, docs/benchmarks.md), less than handing the read to a blocking thread
//! and back. But its cost is not bounded by its shape: a filter that few rows pass, or a tier
//! that skips the rows an earlier tier returned, can read a large part of a table. So such a
//! read first runs on the calling thread under a [`Budget`], and gives up as soon as it would
//! spend more; it then runs again, whole, on a blocking thread with no budget. What it gave up
//! is lost work of at most the budget, never a wrong answer: the second run starts from
//! nothing, in a snapshot of its own.
//!
//! Invariant: a budgeted read never holds an async worker thread for more than its budget of
//! VM steps plus the decoding of at most [`crate::SHORT_PAGE_RECORDS`] states. Work SQLite does
//! not count in steps (a full-text index merging its doclists inside one step) is refused under
//! a budget ([`Budget::unmetered`]). A budget meters steps, not waits: on a cold page cache a
//! page's seeks wait for the disk on the worker thread, as the key lookups of
//! `BlockingPool::run_short` do.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rusqlite::Connection;

use crate::ProjectionError;

/// SQLite VM steps between two calls of the progress handler: a typical page ends before the
/// first call.
const STEPS_PER_CALL: i32 = 1_000;

/// Where a read runs, and so how much it may do.
pub(crate) struct Budget {
    /// `None`: on a blocking thread, unbounded. `Some`: set once the read went over its
    /// budget (the progress handler interrupted SQLite, or unmetered work was refused).
    spent: Option<Arc<AtomicBool>>,
}

impl Budget {
    /// No bound: the read runs on a blocking thread.
    pub(crate) fn unbounded() -> Self {
        Budget { spent: None }
    }

    /// At most about `steps` VM steps on `conn` from now on (rounded up to
    /// [`STEPS_PER_CALL`]), until [`Budget::end`]. A statement over it fails with SQLite's
    /// `SQLITE_INTERRUPT`; the read's error is then a sign to run it again, not an answer.
    pub(crate) fn metered(conn: &Connection, steps: u32) -> Self {
        let spent = Arc::new(AtomicBool::new(false));
        let calls_allowed = steps.div_ceil(STEPS_PER_CALL.unsigned_abs());
        let mut calls = 0u32;
        let flag = spent.clone();
        conn.progress_handler(
            STEPS_PER_CALL,
            Some(move || {
                calls += 1;
                let over = calls > calls_allowed;
                if over {
                    flag.store(true, Ordering::Relaxed);
                }
                over
            }),
        );
        Budget { spent: Some(spent) }
    }

    /// Removes the progress handler from `conn` (before the read's snapshot ends: its
    /// `ROLLBACK` must not be interrupted) and tells whether the read went over its budget.
    pub(crate) fn end(self, conn: &Connection) -> bool {
        match self.spent {
            None => false,
            Some(spent) => {
                conn.progress_handler(0, None::<fn() -> bool>);
                spent.load(Ordering::Relaxed)
            }
        }
    }

    /// Asks for work SQLite does not count in VM steps (a full-text tier, whose index merges
    /// doclists as long as a common word's inside one step): allowed without a budget,
    /// refused with one, which spends it.
    pub(crate) fn unmetered(&self) -> Result<(), ProjectionError> {
        match &self.spent {
            None => Ok(()),
            Some(spent) => {
                spent.store(true, Ordering::Relaxed);
                Err(ProjectionError::Storage(
                    "a full-text read asked for under a budget".into(),
                ))
            }
        }
    }
}

/// Where the search pages read since the projections opened ran: what an operator watches
/// to see whether searches fit their budget (`citydb_search_pages_total` on `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchPages {
    /// Read whole on the calling thread, under a budget.
    pub calling_thread: u64,
    /// Given up on the calling thread (over the budget, or a full-text tier), then read on a
    /// blocking thread.
    pub over_budget: u64,
    /// Read on a blocking thread from the start: a page larger than a budgeted one, or no
    /// reader idle.
    pub blocking_thread: u64,
}

/// [`SearchPages`]' counters.
#[derive(Default)]
pub(crate) struct PageCounters {
    calling_thread: AtomicU64,
    over_budget: AtomicU64,
    blocking_thread: AtomicU64,
}

/// Where one page ran.
#[derive(Clone, Copy)]
pub(crate) enum PagePlace {
    CallingThread,
    OverBudget,
    BlockingThread,
}

impl PageCounters {
    pub(crate) fn count(&self, place: PagePlace) {
        let counter = match place {
            PagePlace::CallingThread => &self.calling_thread,
            PagePlace::OverBudget => &self.over_budget,
            PagePlace::BlockingThread => &self.blocking_thread,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> SearchPages {
        SearchPages {
            calling_thread: self.calling_thread.load(Ordering::Relaxed),
            over_budget: self.over_budget.load(Ordering::Relaxed),
            blocking_thread: self.blocking_thread.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of `n` rows.
    fn table(n: i64) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY)")
            .unwrap();
        let mut insert = conn.prepare("INSERT INTO t VALUES (?1)").unwrap();
        for x in 0..n {
            insert.execute([x]).unwrap();
        }
        drop(insert);
        conn
    }

    fn count(conn: &Connection) -> rusqlite::Result<i64> {
        conn.query_row("SELECT count(*) FROM t WHERE x % 7 = 3", [], |r| r.get(0))
    }

    #[test]
    fn a_read_within_its_budget_runs_as_without_one() {
        let conn = table(100);
        let budget = Budget::metered(&conn, 10_000);
        assert_eq!(count(&conn).unwrap(), 14);
        assert!(!budget.end(&conn));
    }

    #[test]
    fn a_read_over_its_budget_is_interrupted_and_says_so() {
        let conn = table(20_000);
        let budget = Budget::metered(&conn, 10_000);
        let err = count(&conn).unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::OperationInterrupted)
        );
        assert!(budget.end(&conn));
        // Ended: the handler is gone, the same read runs whole.
        assert_eq!(count(&conn).unwrap(), 2_857);
    }

    #[test]
    fn unmetered_work_is_refused_only_under_a_budget() {
        let conn = table(1);
        assert!(Budget::unbounded().unmetered().is_ok());
        assert!(!Budget::unbounded().end(&conn));
        let budget = Budget::metered(&conn, 10_000);
        assert!(budget.unmetered().is_err());
        assert!(budget.end(&conn));
    }
}
