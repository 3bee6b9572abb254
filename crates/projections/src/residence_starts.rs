//! Residence starts, as known now (issue 16, item 4): the `residence_starts` table behind the
//! feed "everyone whose residence in commune X began in month M".
//!
//! One row per residence period a citizen's record now holds to have begun: (commune, start
//! date, citizen, kind). It is a feed of **starts**, not of current residents: a person who
//! moved in in March and away in May stays in March's feed. Rows come from events, never from
//! state diffs (the bulk path sees one state per transaction, not one per event):
//! - `ResidenceChanged { kind, commune, since }` adds the row (commune, since).
//! - A correction of `permanent_residence` / `temporary_residence` (`RecordCorrected`, or a
//!   `CorrectionApproved` applying its proposal's changes) that **fixes the past** (no
//!   `effective_at` in the metadata; for an approval, in the *proposal's* metadata) says the
//!   old residence never held: the old value's row is replaced by the corrected value's. One
//!   that **changes from a date** D (`effective_at` = D) adds a row for the new value starting
//!   D, and the old row stays: the old residence did begin when it was recorded to.
//! - A proposal touching a residence is kept in `residence_proposals` (its residence changes,
//!   without addresses, and its `effective_at`) until it is approved, rejected or withdrawn, so
//!   an approval needs no read of the log.
//! - A merged-away duplicate keeps its rows under its own id: the history is its (the survivor
//!   gains none; the API shows `mergedInto`). A death removes nothing either.
//! - A record re-folded for a redaction ([`crate::redaction`]) has its rows and proposals
//!   derived again from its whole stream with the replacements applied, so the table holds what
//!   the redacted history says and nothing a blanked payload said. (A redaction blanks
//!   addresses; the table never holds an address.)
//!
//! The per-batch projector and the bulk path compute the same [`StartChange`]s from each event
//! that folds onto the record (a failed event changes neither the state nor these rows) and
//! write them with [`write`], in log order.

use rusqlite::{Connection, params};

use crate::work::Work;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use citydb_domain::citizen::{Citizen, Residence, ResidenceKind};
use citydb_domain::{AdminUnitCode, CorrectionId, Date, Event, FieldChange};
use citydb_log::RecordedEvent;

use crate::error::{ProjectionError, storage};
use crate::query::{MAX_PAGE_SIZE, RecordsBySeq, Versioned, narrow};
use crate::search::{Cursor, Edge, Page};

/// Where and when a residence period began.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Start {
    commune: AdminUnitCode,
    since: Date,
}

/// One residence field's correction: the old and new values' starts (`None`: no residence).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fix {
    kind: ResidenceKind,
    old: Option<Start>,
    new: Option<Start>,
}

/// What one event does to a citizen's rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StartChange {
    Began {
        kind: ResidenceKind,
        start: Start,
    },
    /// A correction in force: `from` is its `effective_at` (`None`: it fixes the past).
    Corrected {
        fixes: Vec<Fix>,
        from: Option<Date>,
    },
    /// A proposal touching a residence, kept until it is closed.
    Proposed {
        correction: CorrectionId,
        fixes: Vec<Fix>,
        from: Option<Date>,
    },
    /// An approval: the kept proposal's fixes take effect, as it said.
    Approved {
        correction: CorrectionId,
    },
    /// A rejection or a withdrawal: the kept proposal goes.
    Closed {
        correction: CorrectionId,
    },
}

/// The changes `event` (recorded as `recorded`, on a citizen's stream, folded without error)
/// makes to its citizen's rows.
pub(crate) fn changes_of(event: &Event, recorded: &RecordedEvent) -> Vec<StartChange> {
    let effective_at = || -> Option<Date> {
        recorded
            .metadata()
            .effective_at
            .and_then(|d| d.parse().ok())
    };
    match event {
        Event::ResidenceChanged {
            kind,
            commune,
            since,
            ..
        } => vec![StartChange::Began {
            kind: *kind,
            start: Start {
                commune: *commune,
                since: *since,
            },
        }],
        Event::RecordCorrected { changes, .. } => {
            let fixes = fixes(changes);
            if fixes.is_empty() {
                return Vec::new();
            }
            vec![StartChange::Corrected {
                fixes,
                from: effective_at(),
            }]
        }
        Event::CorrectionProposed {
            correction,
            changes,
            ..
        } => {
            let fixes = fixes(changes);
            if fixes.is_empty() {
                return Vec::new();
            }
            vec![StartChange::Proposed {
                correction: *correction,
                fixes,
                from: effective_at(),
            }]
        }
        Event::CorrectionApproved { correction, .. } => vec![StartChange::Approved {
            correction: *correction,
        }],
        Event::CorrectionRejected { correction, .. }
        | Event::CorrectionWithdrawn { correction, .. } => vec![StartChange::Closed {
            correction: *correction,
        }],
        _ => Vec::new(),
    }
}

/// The residence fields among a correction's changes.
fn fixes(changes: &[FieldChange]) -> Vec<Fix> {
    let start = |value: &Value| {
        // The event folded, so its values parsed as residences; `null` is no residence.
        serde_json::from_value::<Option<Residence>>(value.clone())
            .ok()
            .flatten()
            .map(|r| Start {
                commune: r.commune,
                since: r.since,
            })
    };
    changes
        .iter()
        .filter_map(|c| {
            let kind = match c.field.as_str() {
                "permanent_residence" => ResidenceKind::Permanent,
                "temporary_residence" => ResidenceKind::Temporary,
                _ => return None,
            };
            Some(Fix {
                kind,
                old: start(&c.old),
                new: start(&c.new),
            })
        })
        .collect()
}

fn kind_column(kind: ResidenceKind) -> &'static str {
    match kind {
        ResidenceKind::Permanent => "permanent",
        ResidenceKind::Temporary => "temporary",
    }
}

/// The cursor tier of a kind: permanent before temporary on the same day and citizen.
fn kind_tier(kind: ResidenceKind) -> u8 {
    match kind {
        ResidenceKind::Permanent => 0,
        ResidenceKind::Temporary => 1,
    }
}

fn kind_of_tier(tier: u8) -> Option<ResidenceKind> {
    match tier {
        0 => Some(ResidenceKind::Permanent),
        1 => Some(ResidenceKind::Temporary),
        _ => None,
    }
}

/// Writes `changes` of the citizen whose `records.seq` is `citizen`, in order.
pub(crate) fn write(
    conn: &Connection,
    citizen: i64,
    changes: &[StartChange],
) -> Result<(), ProjectionError> {
    for change in changes {
        match change {
            StartChange::Began { kind, start } => insert(conn, citizen, *kind, *start)?,
            StartChange::Corrected { fixes, from } => correct(conn, citizen, fixes, *from)?,
            StartChange::Proposed {
                correction,
                fixes,
                from,
            } => {
                let json = serde_json::to_string(fixes)
                    .map_err(|e| ProjectionError::Corrupt(format!("proposal {correction}: {e}")))?;
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO residence_proposals(citizen_seq, correction, effective_at, fixes)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        citizen,
                        correction.to_string(),
                        from.map(|d| d.to_string()),
                        json
                    ])
                })
                .map_err(storage)?;
            }
            StartChange::Approved { correction } => {
                if let Some(kept) = take_proposal(conn, citizen, *correction)? {
                    correct(conn, citizen, &kept.fixes, kept.from)?;
                }
            }
            StartChange::Closed { correction } => {
                take_proposal(conn, citizen, *correction)?;
            }
        }
    }
    Ok(())
}

fn insert(
    conn: &Connection,
    citizen: i64,
    kind: ResidenceKind,
    start: Start,
) -> Result<(), ProjectionError> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO residence_starts(commune, since, citizen_seq, kind)
         VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| {
        s.execute(params![
            start.commune.to_string(),
            start.since.to_string(),
            citizen,
            kind_column(kind)
        ])
    })
    .map_err(storage)?;
    Ok(())
}

fn correct(
    conn: &Connection,
    citizen: i64,
    fixes: &[Fix],
    from: Option<Date>,
) -> Result<(), ProjectionError> {
    for fix in fixes {
        match from {
            // The old value never held: its row goes, the corrected value's row replaces it.
            None => {
                if let Some(old) = fix.old {
                    conn.prepare_cached(
                        "DELETE FROM residence_starts
                         WHERE commune = ?1 AND since = ?2 AND citizen_seq = ?3 AND kind = ?4",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            old.commune.to_string(),
                            old.since.to_string(),
                            citizen,
                            kind_column(fix.kind)
                        ])
                    })
                    .map_err(storage)?;
                }
                if let Some(new) = fix.new {
                    insert(conn, citizen, fix.kind, new)?;
                }
            }
            // The old value held until `date`; the new one begins then.
            Some(date) => {
                if let Some(new) = fix.new {
                    let start = Start {
                        commune: new.commune,
                        since: date,
                    };
                    insert(conn, citizen, fix.kind, start)?;
                }
            }
        }
    }
    Ok(())
}

/// A kept proposal: its residence fixes and its `effective_at` (`None`: it fixes the past).
struct Proposal {
    fixes: Vec<Fix>,
    from: Option<Date>,
}

/// Removes a kept proposal, returning it.
fn take_proposal(
    conn: &Connection,
    citizen: i64,
    correction: CorrectionId,
) -> Result<Option<Proposal>, ProjectionError> {
    let key = correction.to_string();
    let row: Option<(Option<String>, String)> = {
        use rusqlite::OptionalExtension;
        conn.prepare_cached(
            "SELECT effective_at, fixes FROM residence_proposals
             WHERE citizen_seq = ?1 AND correction = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![citizen, key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(storage)?
    };
    let Some((from, json)) = row else {
        return Ok(None);
    };
    conn.prepare_cached(
        "DELETE FROM residence_proposals WHERE citizen_seq = ?1 AND correction = ?2",
    )
    .and_then(|mut s| s.execute(params![citizen, key]))
    .map_err(storage)?;
    let fixes: Vec<Fix> = serde_json::from_str(&json)
        .map_err(|e| ProjectionError::Corrupt(format!("proposal {key}: {e}")))?;
    let from = from
        .map(|d| {
            d.parse::<Date>()
                .map_err(|e| ProjectionError::Corrupt(format!("proposal {key}: {e}")))
        })
        .transpose()?;
    Ok(Some(Proposal { fixes, from }))
}

/// Forgets the citizen's rows and kept proposals, ahead of deriving them again from the whole
/// stream (a re-fold for a redaction).
pub(crate) fn forget(conn: &Connection, citizen: i64) -> Result<(), ProjectionError> {
    for sql in [
        "DELETE FROM residence_starts WHERE citizen_seq = ?1",
        "DELETE FROM residence_proposals WHERE citizen_seq = ?1",
    ] {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([citizen]))
            .map_err(storage)?;
    }
    Ok(())
}

/// Which starts a page lists: one commune, start dates in `[from, until)`, optionally one kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResidenceStartFilter {
    pub commune: AdminUnitCode,
    /// First start date listed.
    pub from: Date,
    /// First start date no longer listed (the first day of the next month, for a month).
    pub until: Date,
    pub kind: Option<ResidenceKind>,
}

/// One residence start, with the citizen's record as now projected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResidenceStart {
    pub citizen: Versioned<Citizen>,
    pub kind: ResidenceKind,
    pub commune: AdminUnitCode,
    pub since: Date,
}

/// A page of starts in (start date, citizen's `seq`, kind) order after `after`: an ordered
/// range of the table's primary key (commune, since, citizen_seq, kind), read from the cursor
/// on — O(log n + page) rows, plus the rows of the other kind when `kind` is given.
pub(crate) fn page(
    conn: &Connection,
    filter: &ResidenceStartFilter,
    first: usize,
    after: Option<&Cursor>,
) -> Result<Page<ResidenceStart>, ProjectionError> {
    let first = first.clamp(1, MAX_PAGE_SIZE);
    let (rows, _) = positions(conn, filter, first, after)?;
    let has_next_page = rows.len() > first;
    let mut edges = Vec::with_capacity(first);
    let mut citizens = RecordsBySeq::new(conn)?;
    for (since, seq, kind) in rows.into_iter().take(first) {
        let kind = match kind.as_str() {
            "permanent" => ResidenceKind::Permanent,
            "temporary" => ResidenceKind::Temporary,
            other => {
                return Err(ProjectionError::Corrupt(format!(
                    "residence start of kind {other:?}"
                )));
            }
        };
        let since: Date = since
            .parse()
            .map_err(|e| ProjectionError::Corrupt(format!("residence start {since:?}: {e}")))?;
        let citizen = citizens
            .read(seq)?
            .ok_or_else(|| {
                ProjectionError::Corrupt(format!("a residence start names no record ({seq})"))
            })
            .and_then(narrow::<Citizen>)?;
        edges.push(Edge {
            cursor: Cursor::at(kind_tier(kind), &since.to_string(), seq),
            node: ResidenceStart {
                citizen,
                kind,
                commune: filter.commune,
                since,
            },
        });
    }
    Ok(Page {
        edges,
        has_next_page,
    })
}

/// A row's place in the feed's order, as stored: (since, citizen_seq, kind).
type Key = (String, i64, String);

/// The keys of up to `first + 1` rows after `after`, and what reading them cost.
fn positions(
    conn: &Connection,
    filter: &ResidenceStartFilter,
    first: usize,
    after: Option<&Cursor>,
) -> Result<(Vec<Key>, Work), ProjectionError> {
    // The position to start after: (since, seq, kind tier); before every row without a cursor.
    let (after_since, after_seq, after_tier) = match after {
        Some(cursor) => {
            let (tier, key, seq) = cursor.parts()?;
            let since: Date = key.parse().map_err(|_| ProjectionError::InvalidCursor)?;
            kind_of_tier(tier).ok_or(ProjectionError::InvalidCursor)?;
            (since.to_string(), seq, i64::from(tier))
        }
        None => (String::new(), i64::MIN, -1),
    };
    let kind = filter.kind.map(kind_column);
    // `kind` sorts 'permanent' < 'temporary', as the tiers do; the row value comparison keeps
    // the range on the primary key.
    let mut stmt = conn
        .prepare_cached(
            "SELECT since, citizen_seq, kind FROM residence_starts
             WHERE commune = ?1 AND since >= ?2 AND since < ?3
               AND (since, citizen_seq, kind) > (?4, ?5, CASE ?6 WHEN 0 THEN 'permanent'
                                                             WHEN 1 THEN 'temporary' ELSE '' END)
               AND (?7 IS NULL OR kind = ?7)
             ORDER BY since, citizen_seq, kind
             LIMIT ?8",
        )
        .map_err(storage)?;
    Work::reset(&mut stmt);
    let rows = stmt
        .query_map(
            params![
                filter.commune.to_string(),
                filter.from.to_string(),
                filter.until.to_string(),
                after_since,
                after_seq,
                after_tier,
                kind,
                crate::apply::to_i64(first as u64 + 1),
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .map_err(storage)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(storage)?;
    let mut work = Work::default();
    work.add(&stmt);
    Ok((rows, work))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{SearchFlavour, reset};

    /// A city of `people` citizens, each with starts in four communes over 48 months, and
    /// `in_march` of them starting in commune 11311 in 2025-03.
    fn city(people: i64, in_march: i64) -> Connection {
        let conn = Connection::open_in_memory().expect("open");
        reset(&conn, SearchFlavour::Plain).expect("schema");
        for seq in 0..people {
            for (i, commune) in ["11311", "10507", "11167", "10750"].iter().enumerate() {
                let month = (seq + i as i64) % 48;
                let since = format!("{}-{:02}-15", 2021 + month / 12, month % 12 + 1);
                let since = if *commune == "11311" && since == "2025-03-15" {
                    "2025-02-15".to_owned()
                } else {
                    since
                };
                conn.execute(
                    "INSERT OR IGNORE INTO residence_starts VALUES (?1, ?2, ?3, 'permanent')",
                    params![commune, since, seq],
                )
                .expect("insert");
            }
        }
        for seq in 0..in_march {
            conn.execute(
                "INSERT INTO residence_starts VALUES ('11311', ?1, ?2, ?3)",
                params![
                    format!("2025-03-{:02}", seq % 28 + 1),
                    seq,
                    if seq % 3 == 0 {
                        "temporary"
                    } else {
                        "permanent"
                    }
                ],
            )
            .expect("insert");
        }
        conn
    }

    fn march(kind: Option<ResidenceKind>) -> ResidenceStartFilter {
        ResidenceStartFilter {
            commune: "11311".parse().expect("code"),
            from: "2025-03-01".parse().expect("date"),
            until: "2025-04-01".parse().expect("date"),
            kind,
        }
    }

    /// The rows of every page of `filter`, `first` at a time, and each page's work.
    fn walk(
        conn: &Connection,
        filter: &ResidenceStartFilter,
        first: usize,
    ) -> (Vec<Key>, Vec<Work>) {
        let (mut all, mut works) = (Vec::new(), Vec::new());
        let mut after: Option<Cursor> = None;
        loop {
            let (rows, work) = positions(conn, filter, first, after.as_ref()).expect("page");
            works.push(work);
            let more = rows.len() > first;
            let page: Vec<_> = rows.into_iter().take(first).collect();
            after = page.last().map(|(since, seq, kind)| {
                let tier = if kind == "permanent" { 0 } else { 1 };
                Cursor::at(tier, since, *seq)
            });
            all.extend(page);
            if !more {
                return (all, works);
            }
        }
    }

    #[test]
    fn a_page_is_an_ordered_range_whatever_the_city_s_size() {
        let mut steps = Vec::new();
        for people in [200, 3_000] {
            let conn = city(people, 60);
            let (rows, works) = walk(&conn, &march(None), 7);
            let mut sorted = rows.clone();
            sorted.sort();
            assert_eq!(rows, sorted, "in (since, seq, kind) order");
            assert_eq!(rows.len(), 60, "every March start once");
            for work in &works {
                assert_eq!((work.sorts, work.full_scan_steps), (0, 0), "{work:?}");
            }
            steps.push(works.iter().map(|w| w.vm_steps).max().unwrap_or(0));
            // One kind: the other kind's rows of the month are read past, nothing else.
            let (temporary, works) = walk(&conn, &march(Some(ResidenceKind::Temporary)), 7);
            assert_eq!(temporary.len(), 20);
            assert!(temporary.iter().all(|(_, _, kind)| kind == "temporary"));
            assert!(works.iter().all(|w| w.sorts == 0 && w.full_scan_steps == 0));
        }
        assert_eq!(
            steps[0], steps[1],
            "a page costs the same steps in a city 15 times larger: {steps:?}"
        );
    }
}
