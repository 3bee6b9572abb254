//! The embedded citizen index's tail: index rows of recent entries that are not yet in
//! `access_by_citizen`, kept in memory and merged into the table in sorted chunks.
//!
//! Why: every citizen read adds a row at its citizen's end of the index. Citizens are random,
//! so inserted one by one each row costs a B-tree descent and a page of its own in the WAL
//! and in the file, on the writer thread that every logged request waits for (a name search
//! page reads twenty citizens). Merged later, sorted by citizen, rows of one citizen and of
//! neighbouring numbers share their pages and the work leaves the commit's path.
//!
//! Invariants:
//! - Which rows the table holds is stored beside it, in `access_index_state` ([`Merged`]),
//!   and changes only in the transaction that inserts those rows. Every other row of the chain
//!   is the tail: derived again from the entries whenever it is needed ([`Tail::load`] at open,
//!   after another writer, for verification), so the tail is never written and never lost.
//! - A citizen's rows in the table are a prefix of its ordinals; its tail rows the rest.
//! - The tail in memory is true of the file while the log's next `seq` is `through` and the
//!   stored state is `merged`: the writer checks both inside every transaction.

use crate::IndexRow;

/// Which rows of the chain `access_by_citizen` holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Merged {
    /// Every row of an entry below this `seq` is in the table.
    pub below: u64,
    /// While a merge round runs (`round_below > below`), the rows of entries below
    /// `round_below` whose citizen number is below `round_citizen` are in the table too.
    pub round_below: u64,
    pub round_citizen: u64,
}

impl Merged {
    /// The state of a table that holds every row of the entries below `next_seq`.
    pub fn all_below(next_seq: u64) -> Merged {
        Merged {
            below: next_seq,
            round_below: next_seq,
            round_citizen: 0,
        }
    }

    /// Whether the table holds the row of `citizen` in entry `seq`.
    pub fn holds(&self, citizen: u32, seq: u64) -> bool {
        seq < self.below || (seq < self.round_below && u64::from(citizen) < self.round_citizen)
    }
}

/// How much the writer keeps before it merges, and how much one merge transaction writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MergePolicy {
    /// A round starts when the tail holds this many rows.
    pub round_rows: usize,
    /// Rows a merge transaction writes while the writer is idle, rounded up to a citizen's last
    /// row.
    pub chunk_rows: usize,
    /// Under load, a chunk follows the group that brings the rows added during the round since
    /// the last chunk to this many, and takes twice as many: merging outpaces the appends, in
    /// steps short enough not to hold the next group long. Not after every small group: a
    /// chunk is a transaction of its own, and appends of citizens read for the first time (new
    /// numbers, at the table's end) were cheap to index one group at a time.
    pub group_rows: usize,
}

impl Default for MergePolicy {
    /// ~1 MB of rows in memory per round (sorted in a few ms when it starts; derived again in
    /// well under a second when a node opens the file); idle chunks of a few ms.
    fn default() -> Self {
        MergePolicy {
            round_rows: 1 << 16,
            chunk_rows: 4096,
            group_rows: 512,
        }
    }
}

/// The rows of entries below `through` that `merged` does not hold.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    /// In `seq` order.
    pub rows: Vec<IndexRow>,
    pub merged: Merged,
    pub through: u64,
    /// Citizen → its last ordinal among `rows`.
    last: foldhash::HashMap<u32, u32>,
    /// The running round's rows the table does not hold yet, by (citizen, ordinal); the next
    /// chunk starts at `next`.
    round: Vec<IndexRow>,
    next: usize,
}

impl Tail {
    /// The tail of a file whose table is in state `merged` and whose next entry is `through`,
    /// from its rows (in `seq` order, as [`tail_rows`] derives them).
    pub fn new(rows: Vec<IndexRow>, merged: Merged, through: u64) -> Tail {
        let mut tail = Tail {
            rows,
            merged,
            through,
            ..Tail::default()
        };
        tail.relearn();
        if merged.round_below > merged.below {
            // Every row of the round's entries the table does not hold: citizens from
            // `round_citizen` on.
            tail.round = tail
                .rows
                .iter()
                .filter(|r| r.seq < merged.round_below)
                .copied()
                .collect();
            tail.round.sort_unstable_by_key(|r| (r.citizen, r.ordinal));
        }
        tail
    }

    fn relearn(&mut self) {
        self.last.clear();
        for r in &self.rows {
            self.last.insert(r.citizen, r.ordinal);
        }
    }

    /// Whether a merge round is unfinished (in the file, or started in memory).
    pub fn in_round(&self) -> bool {
        self.merged.round_below > self.merged.below
    }

    /// The citizen's last ordinal in the tail.
    pub fn last_ordinal(&self, citizen: u32) -> Option<u32> {
        self.last.get(&citizen).copied()
    }

    /// After a group committed `rows` (in `seq` order) up to `through`.
    pub fn append(&mut self, rows: &[IndexRow], through: u64) {
        for r in rows {
            self.last.insert(r.citizen, r.ordinal);
        }
        self.rows.extend_from_slice(rows);
        self.through = through;
    }

    /// The citizen's tail rows, as the reader copies them.
    pub fn of(&self, citizen: u32) -> Vec<IndexRow> {
        self.rows
            .iter()
            .filter(|r| r.citizen == citizen)
            .copied()
            .collect()
    }

    /// The next merge transaction, if one is due: the rows to insert (sorted, whole citizens)
    /// and the state they leave the table in. Starts a round when the tail has grown to
    /// `policy.round_rows`. Takes `rows` rows (rounded up to a citizen's last), or
    /// `policy.chunk_rows` when `rows` is 0.
    pub fn chunk(&mut self, policy: &MergePolicy, rows: usize) -> Option<(&[IndexRow], Merged)> {
        if self.merged.round_below <= self.merged.below {
            if self.rows.len() < policy.round_rows.max(1) {
                return None;
            }
            // Every row in the tail is of an entry below `through`, which is past `below`.
            self.round = self.rows.clone();
            self.round.sort_unstable_by_key(|r| (r.citizen, r.ordinal));
            self.next = 0;
            self.merged.round_below = self.through;
            self.merged.round_citizen = 0;
        }
        let start = self.next.min(self.round.len());
        let take = if rows > 0 { rows } else { policy.chunk_rows };
        let mut end = (start + take.max(1)).min(self.round.len());
        if let Some(last) = end.checked_sub(1).and_then(|i| self.round.get(i)) {
            let citizen = last.citizen;
            while self.round.get(end).is_some_and(|r| r.citizen == citizen) {
                end += 1;
            }
        }
        // A round found in the file with nothing left of it (its last chunk's rows were the
        // last ones) still ends with a transaction: the one that records its end.
        let after = match self.round.get(end) {
            None => Merged::all_below(self.merged.round_below),
            Some(_) => Merged {
                round_citizen: u64::from(self.round[end - 1].citizen) + 1,
                ..self.merged
            },
        };
        Some((&self.round[start..end], after))
    }

    /// After the chunk `chunk` proposed committed, leaving the table in state `after`.
    pub fn merged(&mut self, rows: usize, after: Merged) {
        self.next += rows;
        self.merged = after;
        if after.round_below == after.below {
            self.rows.retain(|r| r.seq >= after.below);
            self.round = Vec::new();
            self.next = 0;
            self.relearn();
        }
    }
}

/// The tail rows of `entries` (each `(seq, citizen numbers read)`, in `seq` order, from the
/// first entry at or after `merged.below`), given the table's state and, for a citizen's first
/// row, its last ordinal in the table (`table_last`).
pub(crate) fn tail_rows<E, I>(
    entries: impl IntoIterator<Item = Result<(u64, I), E>>,
    merged: Merged,
    mut table_last: impl FnMut(u32) -> Result<Option<u32>, E>,
) -> Result<Vec<IndexRow>, E>
where
    I: IntoIterator<Item = u32>,
{
    let mut next: foldhash::HashMap<u32, u32> = foldhash::HashMap::default();
    let mut rows = Vec::new();
    for entry in entries {
        let (seq, citizens) = entry?;
        for citizen in citizens {
            if merged.holds(citizen, seq) {
                continue;
            }
            let ordinal = match next.get(&citizen) {
                Some(n) => *n,
                // The table's rows of a citizen precede its tail rows (invariant above).
                None => table_last(citizen)?.map_or(0, |o| o + 1),
            };
            next.insert(citizen, ordinal + 1);
            rows.push(IndexRow {
                citizen,
                ordinal,
                seq,
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(citizen: u32, ordinal: u32, seq: u64) -> IndexRow {
        IndexRow {
            citizen,
            ordinal,
            seq,
        }
    }

    #[test]
    fn a_round_is_merged_in_chunks_of_whole_citizens_and_leaves_the_newer_rows() {
        let policy = MergePolicy {
            round_rows: 4,
            chunk_rows: 2,
            group_rows: 1,
        };
        let mut tail = Tail::new(Vec::new(), Merged::all_below(10), 10);
        tail.append(&[row(5, 0, 10), row(1, 3, 10), row(5, 1, 11)], 12);
        assert!(tail.chunk(&policy, 0).is_none(), "3 rows: no round yet");
        tail.append(&[row(1, 4, 12), row(9, 0, 12)], 13);

        // Citizen 1's two rows, then citizen 5's (both: a citizen is never split), then 9's.
        let (rows, after) = tail.chunk(&policy, 0).expect("a round");
        assert_eq!(rows, [row(1, 3, 10), row(1, 4, 12)]);
        let want = Merged {
            below: 10,
            round_below: 13,
            round_citizen: 2,
        };
        assert_eq!(after, want);
        assert!(after.holds(1, 12) && !after.holds(5, 10) && !after.holds(1, 13));
        tail.merged(2, after);
        tail.append(&[row(1, 5, 13)], 14);

        let (rows, after) = tail.chunk(&policy, 0).expect("the round goes on");
        assert_eq!(rows, [row(5, 0, 10), row(5, 1, 11)]);
        tail.merged(2, after);
        let (rows, after) = tail.chunk(&policy, 0).expect("the round goes on");
        assert_eq!(rows, [row(9, 0, 12)]);
        assert_eq!(after, Merged::all_below(13));
        tail.merged(1, after);

        // Only the row appended during the round is left, and it is remembered.
        assert_eq!(tail.rows, [row(1, 5, 13)]);
        assert_eq!(tail.last_ordinal(1), Some(5));
        assert_eq!(tail.last_ordinal(5), None);
        assert!(tail.chunk(&policy, 0).is_none());
    }

    #[test]
    fn a_chunk_takes_the_rows_asked_for_else_the_idle_size() {
        let policy = MergePolicy {
            round_rows: 1,
            chunk_rows: 1,
            group_rows: 1,
        };
        let mut tail = Tail::new(Vec::new(), Merged::all_below(0), 0);
        tail.append(&[row(1, 0, 0), row(2, 0, 0), row(3, 0, 0), row(4, 0, 0)], 1);
        let (rows, _) = tail.chunk(&policy, 0).expect("a round");
        assert_eq!(rows, [row(1, 0, 0)]);
        tail.merged(
            1,
            Merged {
                below: 0,
                round_below: 1,
                round_citizen: 2,
            },
        );
        let (rows, after) = tail.chunk(&policy, 3).expect("the round goes on");
        assert_eq!(rows.len(), 3);
        assert_eq!(after, Merged::all_below(1));
    }

    #[test]
    fn tail_rows_skip_what_the_table_holds_and_continue_its_ordinals() {
        // Entries 4..7; the table holds everything below 5, and of 5 and 6 citizen 1's rows.
        let merged = Merged {
            below: 5,
            round_below: 7,
            round_citizen: 2,
        };
        let entries: Vec<Result<(u64, Vec<u32>), ()>> = vec![
            Ok((5, vec![1, 2])),
            Ok((6, vec![2, 1])),
            Ok((7, vec![1, 3])),
        ];
        let in_table = |c: u32| {
            Ok(match c {
                1 => Some(8),
                2 => Some(0),
                _ => None,
            })
        };
        let rows = tail_rows(entries, merged, in_table).expect("rows");
        assert_eq!(
            rows,
            [row(2, 1, 5), row(2, 2, 6), row(1, 9, 7), row(3, 0, 7)]
        );
    }

    #[test]
    fn a_round_found_with_nothing_left_ends_with_an_empty_chunk() {
        // The file's last chunk merged the round's last citizen, but its end was not recorded
        // (a state of a round whose remaining rows are all of later entries).
        let merged = Merged {
            below: 5,
            round_below: 7,
            round_citizen: 10,
        };
        let mut tail = Tail::new(vec![row(3, 2, 7)], merged, 8);
        assert!(tail.in_round());
        let policy = MergePolicy::default();
        let (chunk, after) = tail.chunk(&policy, 0).expect("the round's end");
        assert!(chunk.is_empty());
        assert_eq!(after, Merged::all_below(7));
        tail.merged(0, after);
        assert!(!tail.in_round());
        assert_eq!(tail.rows, [row(3, 2, 7)]);
    }

    #[test]
    fn a_tail_loaded_in_a_round_resumes_it() {
        let merged = Merged {
            below: 5,
            round_below: 7,
            round_citizen: 2,
        };
        let rows = vec![row(2, 1, 5), row(4, 0, 6), row(1, 9, 7)];
        let mut tail = Tail::new(rows, merged, 8);
        let policy = MergePolicy {
            round_rows: 100,
            chunk_rows: 10,
            group_rows: 1,
        };
        let (chunk, after) = tail.chunk(&policy, 0).expect("the round goes on");
        assert_eq!(chunk, [row(2, 1, 5), row(4, 0, 6)]);
        assert_eq!(after, Merged::all_below(7));
    }
}
