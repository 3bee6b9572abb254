//! What a read cost SQLite, from its statements' counters: the tests of ordered pages assert
//! that a page reads only its own rows (no sort, no full scan, the same VM steps whatever the
//! city's size) by counting, never by timing.

use rusqlite::{Statement, StatementStatus};

/// What reading a page cost SQLite, summed over the statements that read it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Work {
    /// Virtual machine steps: grows with the rows a statement reads, not with B-tree depth.
    pub(crate) vm_steps: i64,
    /// Sorts (an ORDER BY not given by an index).
    pub(crate) sorts: i64,
    /// Steps of full table scans.
    pub(crate) full_scan_steps: i64,
}

const COUNTERS: [StatementStatus; 3] = [
    StatementStatus::VmStep,
    StatementStatus::Sort,
    StatementStatus::FullscanStep,
];

impl Work {
    /// Starts `stmt`'s counters from zero: they are per statement and cumulative, and a
    /// cached statement keeps them across runs.
    pub(crate) fn reset(stmt: &mut Statement<'_>) {
        for status in COUNTERS {
            stmt.reset_status(status);
        }
    }

    /// Adds what `stmt` counted since its [`Work::reset`].
    pub(crate) fn add(&mut self, stmt: &Statement<'_>) {
        self.vm_steps += i64::from(stmt.get_status(StatementStatus::VmStep));
        self.sorts += i64::from(stmt.get_status(StatementStatus::Sort));
        self.full_scan_steps += i64::from(stmt.get_status(StatementStatus::FullscanStep));
    }
}
