//! Applying a batch of log events to the read models: one SQLite transaction per batch, checkpoint
//! included, so a crash leaves either the whole batch or none of it.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use citydb_domain::business::Business;
use citydb_domain::citizen::Citizen;
use citydb_domain::parcel::{Parcel, ParcelStatus};
use citydb_domain::{
    Event, Record, RecordId, RecordKind, UpcastError, evolve, exact_key, folded_key, upcast_slice,
};
use citydb_log::RecordedEvent;

use crate::error::{ProjectionError, storage};
use crate::query::parcel_status_column;
use crate::schema::{BUSINESS_WORDS, CITIZEN_WORDS, SearchFlavour, WordWrites, checkpoint};
use crate::state;

/// What one batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BatchOutcome {
    /// The checkpoint after the batch: the next position to project.
    pub next: u64,
    /// Events that failed to upcast or evolve (recorded in `projection_errors`).
    pub failed: usize,
}

/// A record touched by the batch, loaded once and written back once.
struct Slot {
    id: RecordId,
    /// `None` until the record's first event has been applied.
    seq: Option<i64>,
    /// Last stream version consumed (applied or failed).
    version: Option<u64>,
    last_position: u64,
    /// The state as stored before the batch, to skip index rows that did not change.
    before: Option<Record>,
    state: Option<Record>,
    dirty: bool,
}

/// `refolds`: records re-folded from their whole stream because the batch holds a blanked event
/// or a redaction approval of theirs (`crate::redaction`); their events here are not folded one
/// by one, and their rows are written from the re-fold, in this transaction.
pub(crate) fn apply_batch(
    conn: &mut Connection,
    events: &[RecordedEvent],
    refolds: &[crate::redaction::Refold],
    flavour: SearchFlavour,
) -> Result<BatchOutcome, ProjectionError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(storage)?;
    // The committed checkpoint, not the caller's idea of it, decides what is new: events below it
    // were projected already (a subscription restarted from an older position) and are skipped.
    let mut next = checkpoint(&tx)?;
    let mut slots: HashMap<String, Slot> = HashMap::new();
    let mut failed = 0;
    let mut change_rows = crate::changes::ChangeRows::new(&tx)?;
    let mut words = WordWrites::default();
    // A large batch's upcasts, and below its encodings, are computed on a second thread
    // (`ahead`) while this one does the SQLite work that needs them.
    std::thread::scope(|scope| -> Result<(), ProjectionError> {
        let upcasts = crate::ahead::in_order(scope, events.iter(), |event| {
            // Only a record's events are folded.
            RecordKind::from_category(event.stream_id.category()).map(|_| upcast(event))
        })?;
        for (event, upcast) in events.iter().zip(upcasts) {
            if event.position < next {
                continue;
            }
            if event.position != next {
                return Err(ProjectionError::Corrupt(format!(
                    "expected log position {next}, got {}",
                    event.position
                )));
            }
            next += 1;
            let category = event.stream_id.category();
            // Command markers record that a command ran; they change no read model.
            if category == "command" {
                continue;
            }
            change_rows.record(event)?;
            if !crate::requests::project(&tx, event)? {
                failed += 1;
            }
            if RecordKind::from_category(category).is_none() {
                // Key claims and categories this build does not know feed no read model.
                continue;
            }
            let stream = event.stream_id.as_str();
            if refolds.iter().any(|r| r.stream == stream) {
                continue;
            }
            if !slots.contains_key(stream) {
                let Ok(id) = stream.parse::<RecordId>() else {
                    failed += 1;
                    record_error(&tx, event, "the stream id is not a record id")?;
                    continue;
                };
                // A stream's first event, at or past the checkpoint: its record was never
                // projected, so the file cannot hold it (as in the bulk path's fold).
                let slot = if event.stream_version == 0 {
                    Slot::new(id, None)
                } else {
                    load(&tx, id)?
                };
                slots.insert(stream.to_owned(), slot);
            }
            let Some(slot) = slots.get_mut(stream) else {
                continue;
            };
            if slot.version.is_some_and(|v| event.stream_version <= v) {
                // Already folded into the stored state; the checkpoint makes this unreachable, but
                // folding twice would corrupt the state, so it is checked rather than assumed.
                continue;
            }
            let Some(upcast) = upcast else {
                // `RecordKind::from_category` was checked above.
                continue;
            };
            match fold_upcast(slot.id, &slot.state, upcast) {
                Ok((record, domain_event)) => {
                    slot.state = Some(record);
                    let seq = *slot.seq.get_or_insert(to_i64(event.position));
                    if let RecordId::Citizen(_) = slot.id {
                        let changes = crate::residence_starts::changes_of(&domain_event, event);
                        crate::residence_starts::write(&tx, seq, &changes)?;
                    }
                }
                Err(reason) => {
                    failed += 1;
                    record_error(&tx, event, &reason)?;
                }
            }
            slot.version = Some(event.stream_version);
            slot.last_position = event.position;
            slot.dirty = true;
        }
        Ok(())
    })?;
    // By `seq`, as the bulk path does: the batch's new records are then appended at the end of
    // `records` and the kind tables (SQLite fills a page it appends to, and splits one it
    // inserts into the middle of), and the rows the records change are met in file order.
    let mut dirty: Vec<&Slot> = slots.values().filter(|s| s.dirty).collect();
    dirty.sort_unstable_by_key(|slot| slot.seq);
    // A stream whose first event failed has no state: nothing to show, only its errors.
    let rows: Vec<(StoredRecord, Option<&Record>)> = dirty
        .into_iter()
        .filter_map(|slot| {
            let (Some(record), Some(seq), Some(version)) = (&slot.state, slot.seq, slot.version)
            else {
                return None;
            };
            let row = StoredRecord {
                id: slot.id,
                seq,
                version,
                last_position: slot.last_position,
                record,
            };
            Some((row, slot.before.as_ref()))
        })
        .collect();
    std::thread::scope(|scope| -> Result<(), ProjectionError> {
        let encodings =
            crate::ahead::in_order(scope, rows.iter(), |(row, _)| encode(row.id, row.record))?;
        for ((row, before), encoded) in rows.iter().zip(encodings) {
            store(
                &tx,
                row,
                &encoded?,
                Prior::State(*before),
                flavour,
                &mut words,
            )?;
        }
        Ok(())
    })?;
    drop(change_rows);
    for refold in refolds {
        crate::redaction::store_refold(&tx, refold, flavour, &mut words)?;
    }
    // Last: see `WordWrites`.
    words.write(&tx)?;
    tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'checkpoint'")
        .and_then(|mut s| s.execute([next.to_string()]))
        .map_err(storage)?;
    tx.commit().map_err(storage)?;
    Ok(BatchOutcome { next, failed })
}

/// Upcasts and evolves one event onto the state of record `id`, returning the new state and
/// the upcast event; the error is the reason recorded. The state is cloned, not taken: on
/// failure the record keeps its last good state.
pub(crate) fn fold(
    id: RecordId,
    state: &Option<Record>,
    event: &RecordedEvent,
) -> Result<(Record, Event), String> {
    fold_upcast(id, state, upcast(event))
}

/// The domain event `event` carries, or why it carries none (the reason recorded).
fn upcast(event: &RecordedEvent) -> Result<Event, String> {
    if event.data.is_empty() {
        return Err("the payload has been redacted".to_owned());
    }
    upcast_slice(&event.event_type, event.schema_version, &event.data).map_err(|e| match e {
        e @ UpcastError::NotJson(_) => e.to_string(),
        e => format!("upcast: {e}"),
    })
}

/// [`fold`] of an event already upcast.
fn fold_upcast(
    id: RecordId,
    state: &Option<Record>,
    upcast: Result<Event, String>,
) -> Result<(Record, Event), String> {
    let domain_event = upcast?;
    let record = evolve(state.clone(), &domain_event).map_err(|e| format!("evolve: {e}"))?;
    if record.id() != id {
        return Err(format!(
            "the event describes {} but is on stream {}",
            record.id(),
            id
        ));
    }
    Ok((record, domain_event))
}

pub(crate) fn record_error(
    tx: &Connection,
    event: &RecordedEvent,
    reason: &str,
) -> Result<(), ProjectionError> {
    tracing::warn!(
        position = event.position,
        stream = %event.stream_id,
        stream_version = event.stream_version,
        event_type = %event.event_type,
        reason,
        "event cannot be projected; recorded in projection_errors and skipped"
    );
    tx.prepare_cached(
        "INSERT OR REPLACE INTO projection_errors(position, stream_id, stream_version, event_type, reason)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            to_i64(event.position),
            event.stream_id.as_str(),
            to_i64(event.stream_version),
            event.event_type,
            reason
        ])
    })
    .map_err(storage)?;
    Ok(())
}

fn load(tx: &Connection, id: RecordId) -> Result<Slot, ProjectionError> {
    Ok(Slot::new(id, load_stored(tx, id)?))
}

impl Slot {
    /// The slot of record `id` as the file holds it (`None`: not at all).
    fn new(id: RecordId, stored: Option<Loaded>) -> Slot {
        match stored {
            None => Slot {
                id,
                seq: None,
                version: None,
                last_position: 0,
                before: None,
                state: None,
                dirty: false,
            },
            Some(stored) => Slot {
                id,
                seq: Some(stored.seq),
                version: Some(stored.version),
                last_position: stored.last_position,
                before: Some(stored.state.clone()),
                state: Some(stored.state),
                dirty: false,
            },
        }
    }
}

/// A record as the file holds it.
pub(crate) struct Loaded {
    pub seq: i64,
    pub version: u64,
    pub last_position: u64,
    pub state: Record,
}

/// The stored row of record `id`, if any.
pub(crate) fn load_stored(
    tx: &Connection,
    id: RecordId,
) -> Result<Option<Loaded>, ProjectionError> {
    let row: Option<(i64, i64, i64, String)> = tx
        .prepare_cached(
            "SELECT seq, version, last_position, state FROM records WHERE record_id = ?1",
        )
        .and_then(|mut s| {
            s.query_row([id.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
        })
        .map_err(storage)?;
    row.map(|(seq, version, last_position, json)| loaded(id, seq, version, last_position, &json))
        .transpose()
}

/// The stored row at `seq` (a record's first event's position, the table's key) if it is
/// record `id`'s; `None` if it is another record's. The row must exist: for a caller that wrote
/// it. Needs no index of the record ids.
pub(crate) fn load_stored_at(
    tx: &Connection,
    id: RecordId,
    seq: i64,
) -> Result<Option<Loaded>, ProjectionError> {
    let (record_id, version, last_position, json): (String, i64, i64, String) = tx
        .prepare_cached(
            "SELECT record_id, version, last_position, state FROM records WHERE seq = ?1",
        )
        .and_then(|mut s| {
            s.query_row([seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()
        })
        .map_err(storage)?
        .ok_or_else(|| {
            ProjectionError::Corrupt(format!("no row at seq {seq}, looking for {id}"))
        })?;
    if record_id != id.to_string() {
        return Ok(None);
    }
    loaded(id, seq, version, last_position, &json).map(Some)
}

fn loaded(
    id: RecordId,
    seq: i64,
    version: i64,
    last_position: i64,
    json: &str,
) -> Result<Loaded, ProjectionError> {
    let state = state::from_json(json).map_err(|e| {
        ProjectionError::Corrupt(format!("stored state of {id} cannot be read: {e}"))
    })?;
    Ok(Loaded {
        seq,
        version: from_i64(version),
        last_position: from_i64(last_position),
        state,
    })
}

/// A record's row as [`store`] writes it.
pub(crate) struct StoredRecord<'a> {
    pub id: RecordId,
    /// Log position of the record's first applied event.
    pub seq: i64,
    /// Last stream version consumed (applied or failed).
    pub version: u64,
    pub last_position: u64,
    pub record: &'a Record,
}

/// What the file holds for a record before [`store`] writes it.
#[derive(Clone, Copy)]
pub(crate) enum Prior<'a> {
    /// The per-batch path: the state as stored (`None`: no row yet), so that index rows that
    /// did not change are left alone and the FTS5 row is replaced only when the name changed.
    State(Option<&'a Record>),
    /// The bulk path, which keeps no copy of the stored state: the child rows (holders, land
    /// use, representatives) are rewritten, deleted first if the record was `stored` before,
    /// and the FTS5 name index is left to [`crate::schema::build_indexes`] at the end.
    Rewrite { stored: bool },
}

impl Prior<'_> {
    /// Whether rows of the record may exist in the file.
    fn stored(self) -> bool {
        match self {
            Prior::State(before) => before.is_some(),
            Prior::Rewrite { stored } => stored,
        }
    }
}

/// The parts of a record's rows that cost CPU to compute: its state as JSON and its name keys.
/// Apart from [`store`] so that the bulk path computes them on its folding thread while the
/// writer thread does the SQLite work.
pub(crate) struct Encoded {
    pub(crate) json: String,
    /// The searched name (a citizen's full name, every name of a business) and its keys;
    /// `None` for a parcel.
    name: Option<NameKeys>,
}

struct NameKeys {
    text: String,
    exact: String,
    folded: String,
}

impl NameKeys {
    fn of(text: String) -> NameKeys {
        NameKeys {
            exact: exact_key(&text),
            folded: folded_key(&text),
            text,
        }
    }
}

pub(crate) fn encode(id: RecordId, record: &Record) -> Result<Encoded, ProjectionError> {
    let json = state::to_json(record)
        .map_err(|e| ProjectionError::Corrupt(format!("cannot serialise {id}: {e}")))?;
    let name = match record {
        Record::Citizen(c) => Some(NameKeys::of(c.name.full())),
        Record::Business(b) => Some(NameKeys::of(business_search_text(b))),
        Record::Parcel(_) => None,
    };
    Ok(Encoded { json, name })
}

pub(crate) fn store(
    tx: &Connection,
    row: &StoredRecord<'_>,
    encoded: &Encoded,
    prior: Prior<'_>,
    flavour: SearchFlavour,
    words: &mut WordWrites,
) -> Result<(), ProjectionError> {
    let StoredRecord {
        id,
        seq,
        version,
        last_position,
        record,
    } = *row;
    let json = &encoded.json;
    // A citizen's summary columns (NULL for other kinds): see `records` in the schema.
    let citizen = match record {
        Record::Citizen(c) => Some(c),
        _ => None,
    };
    tx.prepare_cached(
        "INSERT INTO records(seq, record_id, kind, version, last_position,
                             family, middle, given, birth_date, restricted, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT(seq) DO UPDATE SET
             version = excluded.version, last_position = excluded.last_position,
             family = excluded.family, middle = excluded.middle, given = excluded.given,
             birth_date = excluded.birth_date, restricted = excluded.restricted,
             state = excluded.state",
    )
    .and_then(|mut s| {
        s.execute(params![
            seq,
            id.to_string(),
            record.kind().as_str(),
            to_i64(version),
            to_i64(last_position),
            citizen.map(|c| c.name.family()),
            citizen.map(|c| c.name.middle()),
            citizen.map(|c| c.name.given()),
            citizen.map(|c| c.birth_date.to_string()),
            citizen.map(|c| c.privacy.is_restricted()),
            json
        ])
    })
    .map_err(storage)?;
    match (record, &encoded.name) {
        (Record::Citizen(c), Some(name)) => store_citizen(tx, seq, c, name, prior, flavour, words),
        (Record::Business(b), Some(name)) => {
            store_business(tx, seq, b, name, prior, flavour, words)
        }
        (Record::Parcel(p), _) => store_parcel(tx, seq, p, prior.stored()),
        (_, None) => Err(ProjectionError::Corrupt(format!(
            "{id} was encoded without its name keys"
        ))),
    }
}

/// A record's row in its kind's table (`citizens`, `businesses`, `parcels`; `seq` first).
///
/// Written with an `INSERT` for a record not stored before and an `UPDATE` otherwise (an
/// `INSERT` after all if the `UPDATE` found no row), not with `INSERT OR REPLACE`: on these
/// tables, which have secondary indexes and `NOT NULL` columns, a `REPLACE` opens a statement
/// journal — every page it touches copied aside first — and has each FTS5 table the
/// transaction wrote flush its terms (see `WordWrites`). Measured with SQLite 3.50: 5× the
/// time of the `INSERT` or `UPDATE` (docs/benchmarks.md, "Name words written last in a batch").
struct KindRow {
    insert: &'static str,
    update: &'static str,
}

impl KindRow {
    const CITIZENS: KindRow = KindRow {
        insert: "INSERT INTO citizens(seq, pin, name_exact, name_folded, commune, birth_year, status, merged_into)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        update: "UPDATE citizens SET pin = ?2, name_exact = ?3, name_folded = ?4, commune = ?5,
                     birth_year = ?6, status = ?7, merged_into = ?8
                 WHERE seq = ?1",
    };
    const BUSINESSES: KindRow = KindRow {
        insert: "INSERT INTO businesses(seq, code, name, name_exact, name_folded, commune, status, parent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        update: "UPDATE businesses SET code = ?2, name = ?3, name_exact = ?4, name_folded = ?5,
                     commune = ?6, status = ?7, parent = ?8
                 WHERE seq = ?1",
    };
    const PARCELS: KindRow = KindRow {
        insert: "INSERT INTO parcels(seq, parcel_key, commune, status, merged_into)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
        update: "UPDATE parcels SET parcel_key = ?2, commune = ?3, status = ?4, merged_into = ?5
                 WHERE seq = ?1",
    };

    /// `stored`: the record was stored before, so its row should exist.
    fn write(
        &self,
        tx: &Connection,
        stored: bool,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<(), ProjectionError> {
        let run = |sql: &str| {
            tx.prepare_cached(sql)
                .and_then(|mut s| s.execute(params))
                .map_err(storage)
        };
        if stored && run(self.update)? == 1 {
            return Ok(());
        }
        run(self.insert).map(drop)
    }
}

/// Every name a business is searched by, in one string.
fn business_search_text(b: &Business) -> String {
    let mut text = b.names.vietnamese.clone();
    for other in [&b.names.abbreviated, &b.names.english]
        .into_iter()
        .flatten()
    {
        text.push(' ');
        text.push_str(other);
    }
    text
}

fn store_citizen(
    tx: &Connection,
    seq: i64,
    c: &Citizen,
    name: &NameKeys,
    prior: Prior<'_>,
    flavour: SearchFlavour,
    words: &mut WordWrites,
) -> Result<(), ProjectionError> {
    let NameKeys {
        text: full,
        exact,
        folded,
    } = name;
    let commune = c
        .permanent_residence
        .as_ref()
        .or(c.temporary_residence.as_ref())
        .map(|r| r.commune.to_string());
    KindRow::CITIZENS.write(
        tx,
        prior.stored(),
        params![
            seq,
            c.pin.to_string(),
            exact,
            folded,
            commune,
            c.birth_date.year(),
            c.status().as_str(),
            c.merged_into.map(|m| RecordId::from(m).to_string()),
        ],
    )?;
    store_parents(tx, c, prior)?;
    let Prior::State(before) = prior else {
        return Ok(());
    };
    let name_before = match before {
        Some(Record::Citizen(old)) => Some(old.name.full()),
        _ => None,
    };
    if flavour == SearchFlavour::Fts5 && name_before.as_deref() != Some(full.as_str()) {
        let folded_before = name_before.as_deref().map(folded_key);
        words.replace(CITIZEN_WORDS, seq, folded_before.as_deref(), folded, exact);
    }
    Ok(())
}

/// The citizen's rows in `parents`: one per current parent, keyed by the child, so a
/// `ParentsSet` that replaces a parent (or a correction of the birth date, which orders a
/// parent's children) rewrites them and leaves no row naming the old parent. The per-batch
/// path rewrites them only when father, mother or birth date changed; the bulk path always,
/// so both leave the same rows.
fn store_parents(tx: &Connection, c: &Citizen, prior: Prior<'_>) -> Result<(), ProjectionError> {
    let changed = match prior {
        Prior::State(Some(Record::Citizen(old))) => {
            (old.father, old.mother, old.birth_date) != (c.father, c.mother, c.birth_date)
        }
        Prior::State(_) | Prior::Rewrite { .. } => true,
    };
    if !changed {
        return Ok(());
    }
    let child = RecordId::from(c.id).to_string();
    if prior.stored() {
        tx.prepare_cached("DELETE FROM parents WHERE child_id = ?1")
            .and_then(|mut s| s.execute([&child]))
            .map_err(storage)?;
    }
    let birth = c.birth_date.to_string();
    let mut insert = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO parents(child_id, parent_id, child_birth) VALUES (?1, ?2, ?3)",
        )
        .map_err(storage)?;
    for parent in [c.father, c.mother].into_iter().flatten() {
        insert
            .execute(params![child, RecordId::from(parent).to_string(), birth])
            .map_err(storage)?;
    }
    Ok(())
}

fn store_business(
    tx: &Connection,
    seq: i64,
    b: &Business,
    name: &NameKeys,
    prior: Prior<'_>,
    flavour: SearchFlavour,
    words: &mut WordWrites,
) -> Result<(), ProjectionError> {
    let NameKeys {
        text,
        exact,
        folded,
    } = name;
    let id = RecordId::from(b.id).to_string();
    KindRow::BUSINESSES.write(
        tx,
        prior.stored(),
        params![
            seq,
            b.code.to_string(),
            b.names.vietnamese,
            exact,
            folded,
            b.head_office.commune.to_string(),
            b.status.kind().as_str(),
            b.parent.map(|p| RecordId::from(p).to_string()),
        ],
    )?;
    let reps_changed = match prior {
        Prior::State(before) => {
            let (text_before, reps_before) = match before {
                Some(Record::Business(old)) => (
                    Some(business_search_text(old)),
                    Some(old.legal_representatives.as_slice()),
                ),
                _ => (None, None),
            };
            if flavour == SearchFlavour::Fts5 && text_before.as_deref() != Some(text.as_str()) {
                let folded_before = text_before.as_deref().map(folded_key);
                words.replace(BUSINESS_WORDS, seq, folded_before.as_deref(), folded, exact);
            }
            reps_before != Some(b.legal_representatives.as_slice())
        }
        Prior::Rewrite { .. } => true,
    };
    if reps_changed {
        if prior.stored() {
            tx.prepare_cached("DELETE FROM representatives WHERE business_id = ?1")
                .and_then(|mut s| s.execute([&id]))
                .map_err(storage)?;
        }
        let mut insert = tx
            .prepare_cached(
                "INSERT OR REPLACE INTO representatives(business_id, citizen_id, ord) VALUES (?1, ?2, ?3)",
            )
            .map_err(storage)?;
        for (ord, rep) in b.legal_representatives.iter().enumerate() {
            insert
                .execute(params![id, RecordId::from(*rep).to_string(), ord as i64])
                .map_err(storage)?;
        }
    }
    Ok(())
}

/// `stored`: rows of the parcel may exist, so its land use and holders are deleted first.
fn store_parcel(
    tx: &Connection,
    seq: i64,
    p: &Parcel,
    stored: bool,
) -> Result<(), ProjectionError> {
    let id = RecordId::from(p.id).to_string();
    let merged_into = match &p.status {
        ParcelStatus::MergedInto { target, .. } => Some(RecordId::from(*target).to_string()),
        _ => None,
    };
    KindRow::PARCELS.write(
        tx,
        stored,
        params![
            seq,
            p.key.to_string(),
            p.key.unit().to_string(),
            parcel_status_column(p.status.kind()),
            merged_into,
        ],
    )?;
    if stored {
        tx.prepare_cached("DELETE FROM parcel_land_use WHERE seq = ?1")
            .and_then(|mut s| s.execute([seq]))
            .map_err(storage)?;
        tx.prepare_cached("DELETE FROM holdings WHERE parcel_id = ?1")
            .and_then(|mut s| s.execute([&id]))
            .map_err(storage)?;
    }
    {
        let mut insert = tx
            .prepare_cached("INSERT OR IGNORE INTO parcel_land_use(seq, land_use) VALUES (?1, ?2)")
            .map_err(storage)?;
        for code in &p.land_use {
            insert
                .execute(params![seq, code.to_string()])
                .map_err(storage)?;
        }
    }
    let mut insert = tx
        .prepare_cached(
            "INSERT OR REPLACE INTO holdings(parcel_id, holder_id, share, ord) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(storage)?;
    for (ord, holding) in p.holders.iter().enumerate() {
        insert
            .execute(params![
                id,
                RecordId::from(holding.holder).to_string(),
                holding.share.to_string(),
                ord as i64
            ])
            .map_err(storage)?;
    }
    Ok(())
}

/// Positions and versions fit in SQLite's i64 for any log that can exist; saturate rather than
/// wrap if one did not.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn from_i64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
