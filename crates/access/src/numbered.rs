//! Which citizens the embedded access log has numbered, as a Bloom filter the writer keeps:
//! a citizen it rules out is read for the first time, and is numbered without a lookup.
//!
//! A name search logs twenty citizens, most of them — while the log is young — never read
//! before; each cost a lookup in `access_citizens`' unique index that found nothing
//! (~4,000 instructions, 6 % of a search page's, docs/benchmarks.md). The filter holds every
//! citizen numbered `0..covered`; numbers are dense and never reused, so the rows another
//! writer added since are those numbered `covered..`, read before the filter is trusted. A
//! row that does not read as a number and a citizen id (damage, which `citydb verify
//! --access-log` reports) turns the filter off: the writer then looks every citizen up, as it
//! did without one, and neither it nor a tool that opens the file to verify it fails for it.

use std::hash::BuildHasher;

use citydb_log::bloom::{BlockedBloom, Digest};
use rusqlite::Connection;
use uuid::Uuid;

use crate::AccessError;

/// Keys the first filter is sized for; it grows fourfold when full.
const FIRST_CAPACITY: u64 = 1 << 20;

pub(crate) struct NumberedCitizens {
    filter: BlockedBloom,
    /// The filter holds every citizen numbered below this.
    covered: u32,
    /// Seeded per process: the ids are the register's, but the filter's cost should not be
    /// anyone's to choose.
    hasher: foldhash::fast::RandomState,
    /// `false` once a row could not be read (see the module docs): nothing is ruled out.
    trusted: bool,
}

impl NumberedCitizens {
    /// Nothing read yet: the first question reads the whole table (a tool's writer, which
    /// never appends, never asks).
    pub(crate) fn unloaded() -> Self {
        Self::with_capacity(FIRST_CAPACITY)
    }

    /// Every citizen the file numbers now, read once when a node's writer opens (at the whole
    /// city's two million, ~0.3 s) rather than in the first request's group.
    pub(crate) fn load(conn: &Connection) -> Result<Self, AccessError> {
        let defined: i64 = conn
            .query_row(
                "SELECT coalesce(max(number) + 1, 0) FROM access_citizens",
                [],
                |r| r.get(0),
            )
            .map_err(crate::sqlite::storage)?;
        let Ok(defined) = u32::try_from(defined) else {
            let mut damaged = Self::unloaded();
            damaged.trusted = false;
            return Ok(damaged);
        };
        let mut numbered = Self::with_capacity((u64::from(defined) * 4).max(FIRST_CAPACITY));
        numbered.catch_up(conn, defined)?;
        Ok(numbered)
    }

    fn with_capacity(capacity: u64) -> Self {
        NumberedCitizens {
            filter: BlockedBloom::with_capacity(capacity),
            covered: 0,
            hasher: foldhash::fast::RandomState::default(),
            trusted: true,
        }
    }

    /// Whether `citizen` is certainly not among the `defined` citizens of the file, inside the
    /// transaction that read `defined`.
    pub(crate) fn rules_out(
        &mut self,
        conn: &Connection,
        citizen: Uuid,
        defined: u32,
    ) -> Result<bool, AccessError> {
        if self.trusted && (self.covered != defined || u64::from(defined) > self.filter.capacity())
        {
            self.catch_up(conn, defined)?;
        }
        Ok(self.trusted && !self.filter.may_hold(self.digest(citizen)))
    }

    /// After a commit: the citizens it numbered, in order. A number past `covered` (the group
    /// asked the filter nothing, so rows of another writer may lie between) waits for the next
    /// catch-up instead.
    pub(crate) fn learn(&mut self, numbered: &[(u32, Uuid)]) {
        for (number, citizen) in numbered {
            if *number == self.covered {
                self.filter.insert(self.digest(*citizen));
                self.covered += 1;
            }
        }
    }

    /// Adds the rows numbered `covered..defined`. Fewer rows than covered (the file was
    /// replaced under the writer) or more than the filter was sized for: starts over from the
    /// whole table, in a filter four times the size.
    fn catch_up(&mut self, conn: &Connection, defined: u32) -> Result<(), AccessError> {
        if self.covered > defined || u64::from(defined) > self.filter.capacity() {
            let capacity = (u64::from(defined) * 4).max(FIRST_CAPACITY);
            *self = Self::with_capacity(capacity);
        }
        let mut rows = conn
            .prepare_cached(
                "SELECT number, citizen FROM access_citizens WHERE number >= ?1 ORDER BY number",
            )
            .map_err(crate::sqlite::storage)?;
        let mut rows = rows.query([self.covered]).map_err(crate::sqlite::storage)?;
        while let Some(row) = rows.next().map_err(crate::sqlite::storage)? {
            let Some((number, citizen)) = numbered_row(row) else {
                self.trusted = false;
                return Ok(());
            };
            // Numbers are dense as writers assign them; a file whose numbers skip (damaged:
            // `citydb verify --access-log` reports it) still has every citizen it holds in
            // the filter, and opens, so that it can be verified and rebuilt.
            self.filter.insert(self.digest(citizen));
            self.covered = self.covered.max(number.saturating_add(1));
        }
        Ok(())
    }

    fn digest(&self, citizen: Uuid) -> Digest {
        [
            self.hasher.hash_one(citizen),
            self.hasher.hash_one((citizen, 0x5bd1_e995u32)),
        ]
    }
}

/// A row's number and citizen id, if it holds them as writers write them.
fn numbered_row(row: &rusqlite::Row<'_>) -> Option<(u32, Uuid)> {
    let number = u32::try_from(row.get::<_, i64>(0).ok()?).ok()?;
    let citizen = Uuid::from_slice(row.get_ref(1).ok()?.as_blob().ok()?).ok()?;
    Some((number, citizen))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Connection {
        let conn = Connection::open_in_memory().expect("memory");
        conn.execute_batch(
            "CREATE TABLE access_citizens (number INTEGER PRIMARY KEY, citizen BLOB NOT NULL UNIQUE)",
        )
        .expect("table");
        conn
    }

    fn add(conn: &Connection, number: u32, citizen: Uuid) {
        conn.execute(
            "INSERT INTO access_citizens (number, citizen) VALUES (?1, ?2)",
            rusqlite::params![number, citizen.as_bytes().as_slice()],
        )
        .expect("insert");
    }

    #[test]
    fn a_numbered_citizen_is_never_ruled_out() {
        let conn = table();
        let mut numbered = NumberedCitizens::with_capacity(16);
        let ids: Vec<Uuid> = (0..200).map(|_| Uuid::now_v7()).collect();
        // Half numbered by "another writer" (rows only), half learnt after this writer's
        // commits; then the filter, full, starts over from the table.
        for (n, id) in ids.iter().enumerate() {
            add(&conn, n as u32, *id);
            if n % 2 == 1 {
                numbered.learn(&[(n as u32, *id)]);
            }
        }
        for id in &ids {
            assert!(!numbered.rules_out(&conn, *id, 200).expect("asked"), "{id}");
        }
        assert_eq!(numbered.covered, 200);
        let strangers = (0..1000)
            .filter(|_| {
                !numbered
                    .rules_out(&conn, Uuid::now_v7(), 200)
                    .expect("asked")
            })
            .count();
        assert!(
            strangers < 30,
            "{strangers} of 1,000 strangers maybe numbered"
        );
    }

    #[test]
    fn a_table_with_fewer_rows_than_covered_is_read_again() {
        let conn = table();
        let mut numbered = NumberedCitizens::unloaded();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        numbered.learn(&[(0, a)]);
        // The file replaced: number 0 is now `b`'s.
        add(&conn, 0, b);
        numbered.covered = 2;
        assert!(!numbered.rules_out(&conn, b, 1).expect("asked"));
        assert_eq!(numbered.covered, 1);
    }

    #[test]
    fn a_gap_in_the_numbers_still_leaves_every_numbered_citizen_in() {
        let conn = table();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        add(&conn, 0, a);
        add(&conn, 100, b);
        let mut numbered = NumberedCitizens::load(&conn).expect("loaded");
        assert_eq!(numbered.covered, 101);
        assert!(!numbered.rules_out(&conn, a, 101).expect("asked"));
        assert!(!numbered.rules_out(&conn, b, 101).expect("asked"));
    }

    #[test]
    fn a_row_that_does_not_read_turns_the_filter_off_without_failing() {
        for damage in [
            "UPDATE access_citizens SET citizen = x'00' WHERE number = 1",
            "UPDATE access_citizens SET citizen = 'text' WHERE number = 1",
            "UPDATE access_citizens SET number = 5000000000 WHERE number = 1",
        ] {
            let conn = table();
            let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
            add(&conn, 0, a);
            add(&conn, 1, b);
            conn.execute(damage, []).expect(damage);
            let mut numbered = NumberedCitizens::load(&conn).expect(damage);
            // Nobody is ruled out, not even a stranger: every citizen is looked up.
            for c in [a, b, Uuid::now_v7()] {
                assert!(!numbered.rules_out(&conn, c, 2).expect(damage), "{damage}");
            }
        }
    }
}
