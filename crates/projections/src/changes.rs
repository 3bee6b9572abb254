//! The change feed: one row per projected event (command markers aside), for the API's
//! `changes` query, filtered by stream category and event type.
//!
//! A row holds its event's `(category, event type)` pair as a small integer code
//! (`change_kinds.code`), not as two strings, and the feed has one index, `(kind, position)`.
//! Two text indexes over the city's 13 M rows took 29.5 s of an 84.6 s index build at the end of
//! a whole-city rebuild (docs/benchmarks.md); a filter by category, by event type or by both is
//! the set of codes whose pairs match, which `change_kinds` (tens of rows) answers.
//!
//! Invariant: a code, once committed, names the same pair for the life of the file. Codes are
//! handed out in order of first appearance in the log by the one writer, inside the transaction
//! that writes the first row using it, and every [`ChangeRows`] reads the committed codes when
//! it is made (inside its transaction), so a rolled-back code is never reused for another pair
//! and a rebuild of the same log gives the same codes.

use std::collections::HashMap;

use rusqlite::types::Value as SqlValue;
use rusqlite::{CachedStatement, Connection, params, params_from_iter};

use citydb_log::RecordedEvent;

use crate::apply::{from_i64, to_i64};
use crate::error::{ProjectionError, storage};
use crate::query::{MAX_PAGE_SIZE, placeholders};

/// Most positions one [`changes`] call returns.
const MAX_CHANGES: usize = MAX_PAGE_SIZE * 10;

/// Most kinds a filtered page merges range by range. The city's domain has a few dozen pairs;
/// SQLite refuses a compound SELECT of more than 500 terms, and a filter matching more kinds
/// than this matches most of the feed anyway.
const MAX_MERGED_KINDS: usize = 64;

/// Writes change-feed rows within one transaction: the row statement prepared once (looking it
/// up in the statement cache for each of a load's millions of rows cost more than binding
/// them), and the file's codes, read when made.
pub(crate) struct ChangeRows<'c> {
    conn: &'c Connection,
    rows: CachedStatement<'c>,
    /// Event type → the categories it has been seen in, with their codes. Looked up by the
    /// event's own `&str`s, without building a key; an event type is seen in a few categories
    /// at most.
    codes: HashMap<String, Vec<(String, i64)>>,
    /// The next code to hand out.
    next: i64,
}

impl<'c> ChangeRows<'c> {
    /// Reads the file's codes through `conn`, which is inside the transaction the rows go into.
    pub(crate) fn new(conn: &'c Connection) -> Result<Self, ProjectionError> {
        let mut codes: HashMap<String, Vec<(String, i64)>> = HashMap::new();
        let mut next = 1;
        {
            let mut stmt = conn
                .prepare_cached("SELECT code, category, event_type FROM change_kinds")
                .map_err(storage)?;
            let mut kinds = stmt.query([]).map_err(storage)?;
            while let Some(kind) = kinds.next().map_err(storage)? {
                let code: i64 = kind.get(0).map_err(storage)?;
                let category: String = kind.get(1).map_err(storage)?;
                let event_type: String = kind.get(2).map_err(storage)?;
                codes.entry(event_type).or_default().push((category, code));
                next = next.max(code + 1);
            }
        }
        let rows = conn
            .prepare_cached("INSERT INTO changes(position, kind, stream_id) VALUES (?1, ?2, ?3)")
            .map_err(storage)?;
        Ok(ChangeRows {
            conn,
            rows,
            codes,
            next,
        })
    }

    /// One change-feed row for `event`.
    pub(crate) fn record(&mut self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let kind = self.code(event.stream_id.category(), &event.event_type)?;
        self.rows
            .execute(params![
                to_i64(event.position),
                kind,
                event.stream_id.as_str()
            ])
            .map_err(storage)?;
        Ok(())
    }

    /// The code of `(category, event_type)`, handed out (and written) on its first appearance.
    fn code(&mut self, category: &str, event_type: &str) -> Result<i64, ProjectionError> {
        if let Some(seen) = self.codes.get(event_type)
            && let Some((_, code)) = seen.iter().find(|(c, _)| c == category)
        {
            return Ok(*code);
        }
        let code = self.next;
        self.conn
            .prepare_cached(
                "INSERT INTO change_kinds(code, category, event_type) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![code, category, event_type]))
            .map_err(storage)?;
        self.next += 1;
        self.codes
            .entry(event_type.to_owned())
            .or_default()
            .push((category.to_owned(), code));
        Ok(code)
    }
}

/// Positions of change-feed rows after `after` (all when `None`) whose category is one of
/// `categories` and whose event type is one of `event_types` (an empty list: any), ascending, at
/// most `first` (capped at [`MAX_CHANGES`]).
///
/// A filtered page reads only its own rows, however rare or common its kinds: one ordered range
/// of `(kind, position)` per matching code, merged by SQLite (`MERGE (UNION ALL)`), which stops
/// at the page's end. `kind IN (…) ORDER BY position` would instead either walk the whole feed
/// by position, filtering (a rare event type: every row read), or read every row of the kinds
/// and sort them (a common one).
pub(crate) fn changes(
    conn: &Connection,
    after: Option<u64>,
    categories: &[String],
    event_types: &[String],
    first: usize,
) -> Result<Vec<u64>, ProjectionError> {
    let after = after.map_or(-1, to_i64);
    let first = to_i64(first.min(MAX_CHANGES) as u64);
    let mut stmt;
    let mut params = vec![SqlValue::Integer(after), SqlValue::Integer(first)];
    if categories.is_empty() && event_types.is_empty() {
        stmt = conn
            .prepare_cached(
                "SELECT position FROM changes WHERE position > ?1 ORDER BY position LIMIT ?2",
            )
            .map_err(storage)?;
    } else {
        let codes = codes_of(conn, categories, event_types)?;
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let sql = if codes.len() <= MAX_MERGED_KINDS {
            page_sql(codes.len())
        } else {
            // Most of the file's kinds: their rows are most of the feed, so walking it by
            // position and keeping theirs reads little more than the page.
            format!(
                "SELECT position FROM changes WHERE position > ?1 AND kind IN ({})
                 ORDER BY position LIMIT ?2",
                (3..codes.len() + 3)
                    .map(|i| format!("?{i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        stmt = conn.prepare_cached(&sql).map_err(storage)?;
        params.extend(codes.into_iter().map(SqlValue::Integer));
    }
    let rows = stmt
        .query_map(params_from_iter(params), |r| r.get::<_, i64>(0))
        .map_err(storage)?;
    rows.map(|r| r.map(from_i64).map_err(storage)).collect()
}

/// The codes of the pairs whose category is one of `categories` and event type one of
/// `event_types` (an empty list: any).
fn codes_of(
    conn: &Connection,
    categories: &[String],
    event_types: &[String],
) -> Result<Vec<i64>, ProjectionError> {
    let mut filter = Vec::new();
    let mut params = Vec::new();
    for (column, values) in [("category", categories), ("event_type", event_types)] {
        if !values.is_empty() {
            filter.push(format!("{column} IN ({})", placeholders(values.len())));
            params.extend(values.iter().map(|v| SqlValue::Text(v.clone())));
        }
    }
    let mut stmt = conn
        .prepare(&format!(
            "SELECT code FROM change_kinds WHERE {} ORDER BY code",
            filter.join(" AND ")
        ))
        .map_err(storage)?;
    let rows = stmt
        .query_map(params_from_iter(params), |r| r.get::<_, i64>(0))
        .map_err(storage)?;
    rows.map(|r| r.map_err(storage)).collect()
}

/// A filtered page's statement over `codes` codes: `?1` the position after, `?2` the page's
/// size, `?3…` the codes.
fn page_sql(codes: usize) -> String {
    let arms: Vec<String> = (0..codes)
        .map(|i| {
            format!(
                "SELECT position FROM changes WHERE kind = ?{} AND position > ?1",
                i + 3
            )
        })
        .collect();
    format!("{} ORDER BY position LIMIT ?2", arms.join(" UNION ALL "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: u64, stream: &str, event_type: &str) -> RecordedEvent {
        crate::test_events::recorded(position, stream, 0, event_type)
    }

    const CITIZEN: &str = "citizen-22ed2420-9431-8001-bb5f-56f9937c3062";
    const BUSINESS: &str = "business-22ed2420-9431-8001-88e8-98707043824f";

    fn write(conn: &Connection, events: &[RecordedEvent], commit: bool) {
        let tx = conn.unchecked_transaction().unwrap();
        let mut rows = ChangeRows::new(&tx).unwrap();
        for e in events {
            rows.record(e).unwrap();
        }
        drop(rows);
        if commit {
            tx.commit().unwrap();
        }
    }

    fn positions(conn: &Connection, categories: &[&str], types: &[&str]) -> Vec<u64> {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        changes(conn, None, &own(categories), &own(types), 1_000).unwrap()
    }

    /// A code handed out in a transaction that rolls back is not left behind in the writer:
    /// the next transaction hands the same number to another pair, and every filter still finds
    /// exactly its own rows. One event type in two categories gets two codes.
    #[test]
    fn codes_follow_what_is_committed_and_filters_match_their_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, _, _) = crate::schema::open_writer(&dir.path().join("p.db"), None).unwrap();
        write(&conn, &[event(0, CITIZEN, "CitizenRegistered")], false);
        write(
            &conn,
            &[
                event(1, BUSINESS, "RecordCorrected"),
                event(2, CITIZEN, "RecordCorrected"),
                event(3, CITIZEN, "RecordCorrected"),
            ],
            true,
        );
        write(&conn, &[event(4, CITIZEN, "CitizenMoved")], true);
        let kinds: Vec<(i64, String, String)> = conn
            .prepare("SELECT code, category, event_type FROM change_kinds ORDER BY code")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            kinds,
            vec![
                (1, "business".into(), "RecordCorrected".into()),
                (2, "citizen".into(), "RecordCorrected".into()),
                (3, "citizen".into(), "CitizenMoved".into()),
            ]
        );
        assert!(positions(&conn, &[], &["CitizenRegistered"]).is_empty());
        assert_eq!(positions(&conn, &[], &[]), vec![1, 2, 3, 4]);
        assert_eq!(positions(&conn, &[], &["RecordCorrected"]), vec![1, 2, 3]);
        assert_eq!(positions(&conn, &["citizen"], &[]), vec![2, 3, 4]);
        assert_eq!(
            positions(&conn, &["citizen"], &["RecordCorrected"]),
            vec![2, 3]
        );
        assert_eq!(
            positions(
                &conn,
                &["business", "parcel"],
                &["RecordCorrected", "CitizenMoved"]
            ),
            vec![1]
        );
        assert!(positions(&conn, &["parcel"], &[]).is_empty());
        // A later writer reads the codes back and reuses them.
        write(&conn, &[event(5, BUSINESS, "RecordCorrected")], true);
        let count: i64 = conn
            .query_row("SELECT count(*) FROM change_kinds", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 3);
        assert_eq!(positions(&conn, &["business"], &[]), vec![1, 5]);
    }

    /// A filtered page is ordered ranges of the kind index merged, never a walk of the whole
    /// feed or a sort of every matching row (the page would cost as much as the feed is long).
    #[test]
    fn a_filtered_page_reads_ranges_of_the_kind_index() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, _, _) = crate::schema::open_writer(&dir.path().join("p.db"), None).unwrap();
        for codes in [1, 3, MAX_MERGED_KINDS] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {}", page_sql(codes)))
                .unwrap()
                .query_map(params_from_iter(vec![0_i64; codes + 2]), |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let searches: Vec<&String> = plan.iter().filter(|l| l.contains("changes")).collect();
            assert_eq!(searches.len(), codes, "{plan:?}");
            for line in &searches {
                assert!(
                    line.starts_with("SEARCH changes USING COVERING INDEX changes_kind"),
                    "{plan:?}"
                );
            }
            assert!(!plan.iter().any(|l| l.contains("TEMP B-TREE")), "{plan:?}");
        }
    }

    /// More kinds than a page merges: the walk by position finds the same rows, in order.
    #[test]
    fn a_filter_matching_many_kinds_pages_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, _, _) = crate::schema::open_writer(&dir.path().join("p.db"), None).unwrap();
        let n = MAX_MERGED_KINDS as u64 + 6;
        let events: Vec<RecordedEvent> = (0..2 * n)
            .map(|p| event(p, CITIZEN, &format!("Type{}", p % n)))
            .collect();
        write(&conn, &events, true);
        write(&conn, &[event(2 * n, BUSINESS, "Type0")], true);
        let all: Vec<u64> = (0..2 * n).collect();
        assert_eq!(positions(&conn, &["citizen"], &[]), all);
        let after = changes(&conn, Some(9), &["citizen".to_owned()], &[], 5).unwrap();
        assert_eq!(after, vec![10, 11, 12, 13, 14]);
        let few = positions(&conn, &["citizen", "business"], &["Type0", "Type3"]);
        assert_eq!(few, vec![0, 3, n, n + 3, 2 * n]);
    }
}
