//! The queries the API serves, as blocking functions on a read connection: single records,
//! natural-key lookups, batch loaders, the change feed and the digest. The searches, with their
//! order and cursors, are in [`crate::search`]. `lib.rs` runs them on tokio's blocking threads.

use std::collections::HashMap;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use citydb_domain::business::{Business, BusinessStatusKind};
use citydb_domain::citizen::{Citizen, CitizenStatus, Summary};
use citydb_domain::parcel::{Holder, Holding, Parcel, ParcelStatusKind};
use citydb_domain::{
    AdminUnitCode, BusinessId, CitizenId, EnterpriseCode, LandUseCode, ParcelId, ParcelKey,
    PartialDate, PersonName, PersonalIdNumber, Record, RecordId, Share,
};

use crate::apply::{from_i64, to_i64};
use crate::error::{ProjectionError, storage};
use crate::name_triples;
use crate::schema::DIGEST_TABLES;
use crate::state;

/// Largest page a search returns; larger `first` values are clamped to it.
pub const MAX_PAGE_SIZE: usize = 500;

/// Most tokens a name search may have.
pub const MAX_NAME_TOKENS: usize = 12;

/// Most children [`children_of`] returns per parent: the list a record page shows, bounded
/// whatever the data (a civil register names a handful; a bad load could name thousands).
pub const MAX_CHILDREN: usize = 100;

/// Ids per `IN (…)` list in the batch loaders.
const CHUNK: usize = 500;

/// A record's state as projected, with where it stands in its stream and in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned<T> {
    pub state: T,
    /// The last stream version the projector consumed for this record.
    pub version: u64,
    /// The log position of that event.
    pub last_position: u64,
}

/// The value the `parcels.status` column holds for a parcel of `kind`: the
/// projection keeps only whether a parcel is active, so `Retired`, `Split` and
/// `Merged` all select parcels no longer active.
pub(crate) fn parcel_status_column(kind: ParcelStatusKind) -> &'static str {
    match kind {
        ParcelStatusKind::Active => "active",
        ParcelStatusKind::Retired | ParcelStatusKind::Split | ParcelStatusKind::Merged => "retired",
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CitizenFilter {
    /// Diacritic-insensitive; exact matches (diacritics and tone placement) rank first.
    pub name: Option<String>,
    /// The administrative unit of the permanent residence, or of the temporary residence for
    /// those with none (column `commune`).
    pub admin_unit: Option<AdminUnitCode>,
    pub status: Option<CitizenStatus>,
    /// Inclusive.
    pub birth_year_from: Option<u16>,
    /// Inclusive.
    pub birth_year_to: Option<u16>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BusinessFilter {
    /// Searches the Vietnamese, abbreviated and English names.
    pub name: Option<String>,
    /// The administrative unit of the head office (column `commune`).
    pub admin_unit: Option<AdminUnitCode>,
    pub status: Option<BusinessStatusKind>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParcelFilter {
    /// The administrative unit of the parcel key (column `commune`).
    pub admin_unit: Option<AdminUnitCode>,
    pub land_use: Option<LandUseCode>,
    /// Active, or not: any other kind selects every parcel no longer active.
    pub status: Option<ParcelStatusKind>,
    /// A citizen or business holding rights on the parcel.
    pub holder: Option<RecordId>,
}

/// An event the projector could not apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectionFailure {
    pub position: u64,
    pub stream_id: String,
    pub stream_version: u64,
    pub event_type: String,
    pub reason: String,
}

// --- single records -----------------------------------------------------------------------------

fn record_by_id(
    conn: &Connection,
    id: RecordId,
) -> Result<Option<Versioned<Record>>, ProjectionError> {
    conn.prepare_cached("SELECT version, last_position, state FROM records WHERE record_id = ?1")
        .and_then(|mut s| s.query_row([id.to_string()], stored_state).optional())
        .map_err(storage)?
        .map(versioned)
        .transpose()
}

/// Reads records by `seq` through one prepared statement: a page of twenty search results
/// looked the statement up in the connection's cache, and put it back, twenty times
/// (docs/benchmarks.md, "A search page's states read in one statement").
pub(crate) struct RecordsBySeq<'c>(rusqlite::CachedStatement<'c>);

impl<'c> RecordsBySeq<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Result<Self, ProjectionError> {
        conn.prepare_cached("SELECT version, last_position, state FROM records WHERE seq = ?1")
            .map(Self)
            .map_err(storage)
    }

    pub(crate) fn read(&mut self, seq: i64) -> Result<Option<Versioned<Record>>, ProjectionError> {
        self.0
            .query_row([seq], stored_state)
            .optional()
            .map_err(storage)?
            .map(versioned)
            .transpose()
    }
}

/// Citizens read as [`Summary`]s — the `records` row's id, version and summary columns
/// (schema 11), no state decoded — by `seq` (a search page) or by record id (a parcel's
/// holders, a business's representatives). One statement for all the keys of a read, as
/// [`RecordsBySeq`].
pub(crate) struct Summaries<'c> {
    statement: rusqlite::CachedStatement<'c>,
    /// The key's column, for errors.
    key: &'static str,
}

/// The columns [`Summaries::read`] reads, in its order.
macro_rules! summary_select {
    ($key:literal) => {
        concat!(
            "SELECT version, last_position, record_id, family, middle, given, birth_date,
                    restricted
             FROM records WHERE ",
            $key,
            " = ?1"
        )
    };
}

impl<'c> Summaries<'c> {
    pub(crate) fn by_seq(conn: &'c Connection) -> Result<Self, ProjectionError> {
        conn.prepare_cached(summary_select!("seq"))
            .map(|statement| Self {
                statement,
                key: "seq",
            })
            .map_err(storage)
    }

    pub(crate) fn by_record_id(conn: &'c Connection) -> Result<Self, ProjectionError> {
        conn.prepare_cached(summary_select!("record_id"))
            .map(|statement| Self {
                statement,
                key: "record_id",
            })
            .map_err(storage)
    }

    /// The citizen at `key`, or `None` if no record is there. A record of another kind, or a
    /// summary column that is NULL or does not parse, is corruption.
    pub(crate) fn read(
        &mut self,
        key: impl rusqlite::ToSql + std::fmt::Display,
    ) -> Result<Option<Versioned<Summary>>, ProjectionError> {
        // The id and the birth date are parsed from the row's own text, not copied first.
        type Row = (
            i64,
            i64,
            Option<CitizenId>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<Result<PartialDate, String>>,
            Option<bool>,
        );
        let row: Option<Row> = self
            .statement
            .query_row([&key], |r| {
                let id = match text_in(r, 2)?.map(str::parse::<RecordId>) {
                    Some(Ok(RecordId::Citizen(id))) => Some(id),
                    _ => None,
                };
                let birth =
                    text_in(r, 6)?.map(|t| t.parse::<PartialDate>().map_err(|e| e.to_string()));
                let owned = |at| text_in(r, at).map(|t| t.map(str::to_owned));
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    id,
                    owned(3)?,
                    owned(4)?,
                    owned(5)?,
                    birth,
                    r.get(7)?,
                ))
            })
            .optional()
            .map_err(storage)?;
        let Some((version, last, id, family, middle, given, birth, restricted)) = row else {
            return Ok(None);
        };
        let column = self.key;
        let corrupt =
            |what: &str| ProjectionError::Corrupt(format!("the citizen at {column} {key}: {what}"));
        let Some(id) = id else {
            return Err(corrupt("a record of another kind"));
        };
        let (Some(family), Some(middle), Some(given), Some(birth), Some(restricted)) =
            (family, middle, given, birth, restricted)
        else {
            return Err(corrupt("its summary columns are empty"));
        };
        let name = PersonName::from_parts([family, middle, given])
            .map_err(|e| corrupt(&format!("stored name: {e}")))?;
        let birth_date = birth.map_err(|e| corrupt(&format!("stored birth date: {e}")))?;
        Ok(Some(Versioned {
            state: Summary {
                id,
                name,
                birth_date,
                restricted,
            },
            version: from_i64(version),
            last_position: from_i64(last),
        }))
    }
}

/// The text in column `at` of `r`, borrowed from the row (`None` for NULL).
pub(crate) fn text_in<'r>(
    r: &'r rusqlite::Row<'_>,
    at: usize,
) -> rusqlite::Result<Option<&'r str>> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(at, rusqlite::types::Type::Text, e)
    };
    // UTF-8 checked with SIMD (rusqlite's own check goes a byte at a time through text that is
    // not ASCII: names).
    match r.get_ref(at)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        rusqlite::types::ValueRef::Text(bytes) => simdutf8::basic::from_utf8(bytes)
            .map(Some)
            .map_err(|e| failed(e.into())),
        _ => Err(failed(rusqlite::types::FromSqlError::InvalidType.into())),
    }
}

/// A row's `version, last_position` and its state (columns 0–2), as the single-record reads
/// select them.
fn stored_state(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredState> {
    Ok((r.get(0)?, r.get(1)?, state_in(r, 2)?))
}

type StoredState = (i64, i64, Result<Record, serde_json::Error>);

/// The state in column `at`, decoded from the row's own bytes: reading it as a `String` first
/// checked ~1 KB as UTF-8 and copied it, on every read, hit or miss of the decoded-states cache.
/// The decode checks every string it reads, so nothing unchecked reaches a `Record`.
fn state_in(
    r: &rusqlite::Row<'_>,
    at: usize,
) -> rusqlite::Result<Result<Record, serde_json::Error>> {
    let bytes = r.get_ref(at)?.as_bytes().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(at, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(state::from_json_for_read(bytes))
}

fn versioned((version, last, state): StoredState) -> Result<Versioned<Record>, ProjectionError> {
    let state = state
        .map_err(|e| ProjectionError::Corrupt(format!("a stored state cannot be read: {e}")))?;
    Ok(Versioned {
        state,
        version: from_i64(version),
        last_position: from_i64(last),
    })
}

/// Narrows a record to one kind; a record of another kind under that id is corruption.
pub(crate) trait Kind: Sized {
    fn from_record(record: Record) -> Option<Self>;
}

impl Kind for Record {
    fn from_record(record: Record) -> Option<Self> {
        Some(record)
    }
}

impl Kind for Citizen {
    fn from_record(record: Record) -> Option<Self> {
        match record {
            Record::Citizen(c) => Some(c),
            _ => None,
        }
    }
}

impl Kind for Business {
    fn from_record(record: Record) -> Option<Self> {
        match record {
            Record::Business(b) => Some(b),
            _ => None,
        }
    }
}

impl Kind for Parcel {
    fn from_record(record: Record) -> Option<Self> {
        match record {
            Record::Parcel(p) => Some(p),
            _ => None,
        }
    }
}

pub(crate) fn narrow<T: Kind>(v: Versioned<Record>) -> Result<Versioned<T>, ProjectionError> {
    let id = v.state.id();
    let state = T::from_record(v.state)
        .ok_or_else(|| ProjectionError::Corrupt(format!("{id} holds a record of another kind")))?;
    Ok(Versioned {
        state,
        version: v.version,
        last_position: v.last_position,
    })
}

pub(crate) fn one<T: Kind>(
    conn: &Connection,
    id: RecordId,
) -> Result<Option<Versioned<T>>, ProjectionError> {
    record_by_id(conn, id)?.map(narrow).transpose()
}

/// Looks a record up by a natural key column: one statement, the key's index then the record's
/// row (`sql` is one of the `*_BY_*` below). Should two rows share a key (possible only
/// transiently, or for a merged duplicate), the current record wins over a merged one, then the
/// older one.
pub(crate) fn by_key<T: Kind>(
    conn: &Connection,
    sql: &str,
    key: String,
) -> Result<Option<Versioned<T>>, ProjectionError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.query_row([key], stored_state).optional())
        .map_err(storage)?
        .map(|stored| versioned(stored).and_then(narrow))
        .transpose()
}

// The key's row is chosen in a subquery, so that only its `seq` is read, not the state. A
// preference ("a current record wins over a merged duplicate") is two subqueries, the preferred
// one first: each reads the key's index in `seq` order (the index holds the rowid after the
// key) and stops at its first row, and `coalesce` runs the second only when the first found
// nothing. `ORDER BY status = 'merged', seq LIMIT 1` gave the same row through a temporary
// b-tree per lookup — about 20,000 instructions, 6 % of a PIN lookup's (docs/benchmarks.md,
// "Point reads without a temporary b-tree").
pub(crate) const CITIZEN_BY_PIN: &str = "SELECT version, last_position, state FROM records
     WHERE seq = coalesce(
         (SELECT seq FROM citizens WHERE pin = ?1 AND status <> 'merged' ORDER BY seq LIMIT 1),
         (SELECT seq FROM citizens WHERE pin = ?1 ORDER BY seq LIMIT 1))";
pub(crate) const BUSINESS_BY_CODE: &str = "SELECT version, last_position, state FROM records
     WHERE seq = (SELECT seq FROM businesses WHERE code = ?1 ORDER BY seq LIMIT 1)";
pub(crate) const PARCEL_BY_KEY: &str = "SELECT version, last_position, state FROM records
     WHERE seq = coalesce(
         (SELECT seq FROM parcels WHERE parcel_key = ?1 AND status = 'active' ORDER BY seq LIMIT 1),
         (SELECT seq FROM parcels WHERE parcel_key = ?1 ORDER BY seq LIMIT 1))";

pub(crate) fn pin_key(pin: &PersonalIdNumber) -> String {
    pin.to_string()
}
pub(crate) fn code_key(code: &EnterpriseCode) -> String {
    code.to_string()
}
pub(crate) fn parcel_key(key: &ParcelKey) -> String {
    key.to_string()
}

// --- batch loaders --------------------------------------------------------------------------------

/// Batches of at most this many keys are read one key per execution of the statement: SQLite
/// answers `IN (?, ?, …)` of two values or more through a temporary b-tree of the values
/// (`OpenEphemeral`: a page cache, a zeroed page, its teardown at reset — about 20,000
/// instructions), where each further execution of the one-key statement (an equality) costs a
/// few thousand. Point reads load one to a few records this way (holders, representatives).
const ONE_BY_ONE: usize = 8;

/// How many keys one execution reads, for a batch of `keys`.
fn chunk_len(keys: usize) -> usize {
    if keys <= ONE_BY_ONE { 1 } else { CHUNK }
}

pub(crate) fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 2);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s
}

pub(crate) fn many<K, T>(
    conn: &Connection,
    ids: &[K],
) -> Result<HashMap<K, Versioned<T>>, ProjectionError>
where
    K: Copy + Eq + std::hash::Hash + Into<RecordId>,
    T: Kind,
{
    let mut by_text: HashMap<String, K> =
        ids.iter().map(|k| ((*k).into().to_string(), *k)).collect();
    let keys: Vec<String> = by_text.keys().cloned().collect();
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(chunk_len(keys.len())) {
        let sql = format!(
            "SELECT record_id, version, last_position, state FROM records WHERE record_id IN ({})",
            placeholders(chunk.len())
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
        let mut rows = stmt.query(params_from_iter(chunk)).map_err(storage)?;
        while let Some(row) = rows.next().map_err(storage)? {
            let text: String = row.get(0).map_err(storage)?;
            let v = versioned((
                row.get(1).map_err(storage)?,
                row.get(2).map_err(storage)?,
                state_in(row, 3).map_err(storage)?,
            ))?;
            if let Some(key) = by_text.remove(&text) {
                out.insert(key, narrow(v)?);
            }
        }
    }
    Ok(out)
}

/// The summaries of the citizens `ids` that have a record (see [`Summaries`]).
pub(crate) fn summaries(
    conn: &Connection,
    ids: &[CitizenId],
) -> Result<HashMap<CitizenId, Versioned<Summary>>, ProjectionError> {
    let mut by_id = Summaries::by_record_id(conn)?;
    let mut out = HashMap::with_capacity(ids.len());
    for id in ids {
        if let Some(summary) = by_id.read(RecordId::from(*id).to_string())? {
            out.insert(*id, summary);
        }
    }
    Ok(out)
}

/// Rows `(from, to, extra)` of a link table for every `from` in `ids`, ordered by `from`, then
/// by the fourth column `sql_prefix` selects (an integer: the link's place in its list, or the
/// record's `seq`). Sorted here, not by an `ORDER BY`: the rows of a few keys are few, and
/// SQLite sorts them through a temporary b-tree (see [`ONE_BY_ONE`]). Text compares as SQLite's
/// BINARY collation does, byte by byte.
fn links(
    conn: &Connection,
    sql_prefix: &str,
    ids: &[String],
) -> Result<Vec<(String, String, Option<String>)>, ProjectionError> {
    let mut out: Vec<(String, String, Option<String>, i64)> = Vec::new();
    for chunk in ids.chunks(chunk_len(ids.len())) {
        let sql = format!("{sql_prefix} ({})", placeholders(chunk.len()));
        let mut stmt = conn.prepare_cached(&sql).map_err(storage)?;
        let mut rows = stmt.query(params_from_iter(chunk)).map_err(storage)?;
        while let Some(row) = rows.next().map_err(storage)? {
            out.push((
                row.get(0).map_err(storage)?,
                row.get(1).map_err(storage)?,
                row.get(2).map_err(storage)?,
                row.get(3).map_err(storage)?,
            ));
        }
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.3.cmp(&b.3)));
    Ok(out
        .into_iter()
        .map(|(from, to, extra, _)| (from, to, extra))
        .collect())
}

fn parse_id(text: &str) -> Result<RecordId, ProjectionError> {
    text.parse()
        .map_err(|_| ProjectionError::Corrupt(format!("{text:?} is not a record id")))
}

fn dedup_texts<K: Copy + Into<RecordId>>(ids: &[K]) -> Vec<String> {
    let mut texts: Vec<String> = ids.iter().map(|k| (*k).into().to_string()).collect();
    texts.sort_unstable();
    texts.dedup();
    texts
}

pub(crate) fn holders_of(
    conn: &Connection,
    parcels: &[ParcelId],
) -> Result<HashMap<ParcelId, Vec<Holding>>, ProjectionError> {
    let mut out: HashMap<ParcelId, Vec<Holding>> =
        parcels.iter().map(|p| (*p, Vec::new())).collect();
    let rows = links(
        conn,
        "SELECT parcel_id, holder_id, share, ord FROM holdings WHERE parcel_id IN",
        &dedup_texts(parcels),
    )?;
    for (parcel, holder, share) in rows {
        let RecordId::Parcel(parcel) = parse_id(&parcel)? else {
            return Err(ProjectionError::Corrupt(format!(
                "{parcel} is not a parcel"
            )));
        };
        let holder = match parse_id(&holder)? {
            RecordId::Citizen(c) => Holder::Citizen(c),
            RecordId::Business(b) => Holder::Business(b),
            RecordId::Parcel(p) => {
                return Err(ProjectionError::Corrupt(format!(
                    "parcel {p} holds a parcel"
                )));
            }
        };
        let share_text = share.unwrap_or_default();
        let share: Share = share_text
            .parse()
            .map_err(|_| ProjectionError::Corrupt(format!("share {share_text:?}")))?;
        out.entry(parcel)
            .or_default()
            .push(Holding { holder, share });
    }
    Ok(out)
}

pub(crate) fn parcels_held_by(
    conn: &Connection,
    holders: &[RecordId],
) -> Result<HashMap<RecordId, Vec<ParcelId>>, ProjectionError> {
    let mut out: HashMap<RecordId, Vec<ParcelId>> =
        holders.iter().map(|h| (*h, Vec::new())).collect();
    let rows = links(
        conn,
        "SELECT h.holder_id, h.parcel_id, NULL, r.seq FROM holdings h
         JOIN records r ON r.record_id = h.parcel_id WHERE h.holder_id IN",
        &dedup_texts(holders),
    )?;
    for (holder, parcel, _) in rows {
        let RecordId::Parcel(parcel) = parse_id(&parcel)? else {
            return Err(ProjectionError::Corrupt(format!(
                "{parcel} is not a parcel"
            )));
        };
        out.entry(parse_id(&holder)?).or_default().push(parcel);
    }
    Ok(out)
}

pub(crate) fn businesses_represented_by(
    conn: &Connection,
    citizens: &[CitizenId],
) -> Result<HashMap<CitizenId, Vec<BusinessId>>, ProjectionError> {
    let mut out: HashMap<CitizenId, Vec<BusinessId>> =
        citizens.iter().map(|c| (*c, Vec::new())).collect();
    let rows = links(
        conn,
        "SELECT x.citizen_id, x.business_id, NULL, r.seq FROM representatives x
         JOIN records r ON r.record_id = x.business_id WHERE x.citizen_id IN",
        &dedup_texts(citizens),
    )?;
    for (citizen, business, _) in rows {
        let (RecordId::Citizen(citizen), RecordId::Business(business)) =
            (parse_id(&citizen)?, parse_id(&business)?)
        else {
            return Err(ProjectionError::Corrupt(format!(
                "representative link {citizen} -> {business}"
            )));
        };
        out.entry(citizen).or_default().push(business);
    }
    Ok(out)
}

pub(crate) fn representatives_of(
    conn: &Connection,
    businesses: &[BusinessId],
) -> Result<HashMap<BusinessId, Vec<CitizenId>>, ProjectionError> {
    let mut out: HashMap<BusinessId, Vec<CitizenId>> =
        businesses.iter().map(|b| (*b, Vec::new())).collect();
    let rows = links(
        conn,
        "SELECT business_id, citizen_id, NULL, ord FROM representatives WHERE business_id IN",
        &dedup_texts(businesses),
    )?;
    for (business, citizen, _) in rows {
        let (RecordId::Business(business), RecordId::Citizen(citizen)) =
            (parse_id(&business)?, parse_id(&citizen)?)
        else {
            return Err(ProjectionError::Corrupt(format!(
                "representative link {business} -> {citizen}"
            )));
        };
        out.entry(business).or_default().push(citizen);
    }
    Ok(out)
}

/// Each parent's children (the citizens whose current father or mother they are), by birth
/// date as recorded then record id, at most [`MAX_CHILDREN`] each. One ranged read of
/// `parents_parent` per parent, so a parent with many children costs no more than the bound.
pub(crate) fn children_of(
    conn: &Connection,
    parents: &[CitizenId],
) -> Result<HashMap<CitizenId, Vec<CitizenId>>, ProjectionError> {
    let mut out: HashMap<CitizenId, Vec<CitizenId>> = HashMap::with_capacity(parents.len());
    let mut stmt = conn
        .prepare_cached(
            "SELECT child_id FROM parents WHERE parent_id = ?1
             ORDER BY child_birth, child_id LIMIT ?2",
        )
        .map_err(storage)?;
    for parent in parents {
        if out.contains_key(parent) {
            continue;
        }
        let rows = stmt
            .query_map(
                params_from_iter([
                    text(RecordId::from(*parent).to_string()),
                    SqlValue::Integer(to_i64(MAX_CHILDREN as u64)),
                ]),
                |r| r.get::<_, String>(0),
            )
            .map_err(storage)?;
        let mut children = Vec::new();
        for row in rows {
            let child = row.map_err(storage)?;
            let RecordId::Citizen(child) = parse_id(&child)? else {
                return Err(ProjectionError::Corrupt(format!(
                    "{child} is named as a citizen's child"
                )));
            };
            children.push(child);
        }
        out.insert(*parent, children);
    }
    Ok(out)
}

pub(crate) fn text(s: impl Into<String>) -> SqlValue {
    SqlValue::Text(s.into())
}

// --- failures, digest -----------------------------------------------------------------

pub(crate) fn failures(
    conn: &Connection,
    after: Option<u64>,
    first: usize,
) -> Result<Vec<ProjectionFailure>, ProjectionError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT position, stream_id, stream_version, event_type, reason FROM projection_errors
             WHERE position > ?1 ORDER BY position LIMIT ?2",
        )
        .map_err(storage)?;
    let rows = stmt
        .query_map(
            [
                after.map_or(-1, to_i64),
                to_i64(first.min(MAX_PAGE_SIZE) as u64),
            ],
            |r| {
                Ok(ProjectionFailure {
                    position: from_i64(r.get(0)?),
                    stream_id: r.get(1)?,
                    stream_version: from_i64(r.get(2)?),
                    event_type: r.get(3)?,
                    reason: r.get(4)?,
                })
            },
        )
        .map_err(storage)?;
    rows.map(|r| r.map_err(storage)).collect()
}

/// blake3 over every read-model table, rows in primary-key order, each value typed and
/// length-prefixed so that no two different contents hash alike.
pub(crate) fn digest(conn: &Connection) -> Result<String, ProjectionError> {
    use rusqlite::types::ValueRef;
    let mut hasher = blake3::Hasher::new();
    // The triples exist with FTS5 only; they are hashed (not left out like the FTS5 tables)
    // because the row-by-row path keeps them and the bulk path fills them another way.
    let triples: bool = conn
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [name_triples::TABLE],
            |r| r.get(0),
        )
        .map_err(storage)?;
    let optional = triples.then_some((name_triples::TABLE, "pair, word, seq"));
    for (table, order) in DIGEST_TABLES.iter().copied().chain(optional) {
        hasher.update(b"T");
        hasher.update(&(table.len() as u64).to_le_bytes());
        hasher.update(table.as_bytes());
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))
            .map_err(storage)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).map_err(storage)?;
        while let Some(row) = rows.next().map_err(storage)? {
            hasher.update(b"R");
            for i in 0..columns {
                match row.get_ref(i).map_err(storage)? {
                    ValueRef::Null => {
                        hasher.update(b"n");
                    }
                    ValueRef::Integer(n) => {
                        hasher.update(b"i");
                        hasher.update(&n.to_le_bytes());
                    }
                    ValueRef::Real(x) => {
                        hasher.update(b"r");
                        hasher.update(&x.to_le_bytes());
                    }
                    ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
                        hasher.update(b"s");
                        hasher.update(&(bytes.len() as u64).to_le_bytes());
                        hasher.update(bytes);
                    }
                }
            }
        }
    }
    Ok(hasher.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The projections' own schema, with two rows under one PIN: a merged duplicate registered
    /// first, then its survivor.
    #[test]
    fn a_key_shared_with_a_merged_duplicate_finds_the_survivor() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, _, _) = crate::schema::open_writer(&dir.path().join("p.db"), None).unwrap();
        let state = |id: &str, merged_into: &str| {
            format!(
                r#"{{"kind":"citizen","id":"{id}","pin":"031067385902","name":{{"family":"Nguyễn","middle":"Việt","given":"Hưng"}},"sex":"male","birth_date":"1967-02-03","birth_place":"10525","father":null,"mother":null,"permanent_residence":null,"temporary_residence":null,"marriage":null,"identity_card":null,"life":{{"status":"alive"}},"merged_into":{merged_into},"absorbed":[],"origin":{{"kind":"initial_load","source":"test"}},"corrections":{{}}}}"#
            )
        };
        let duplicate = "22ed2420-9431-8001-bb5f-56f9937c3062";
        let survivor = "22ed2420-9431-8001-88e8-98707043824f";
        for (seq, id, status, merged_into) in [
            (1, duplicate, "merged", format!("\"{survivor}\"")),
            (2, survivor, "alive", "null".to_owned()),
        ] {
            conn.execute(
                "INSERT INTO records (seq, record_id, kind, version, last_position, state)
                 VALUES (?1, ?2, 'citizen', ?1, ?1, ?3)",
                rusqlite::params![seq, format!("citizen-{id}"), state(id, &merged_into)],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO citizens (seq, pin, name_exact, name_folded, birth_year, status)
                 VALUES (?1, '031067385902', 'x', 'x', 1967, ?2)",
                rusqlite::params![seq, status],
            )
            .unwrap();
        }
        let found: Versioned<Citizen> = by_key(&conn, CITIZEN_BY_PIN, "031067385902".into())
            .unwrap()
            .unwrap();
        assert_eq!(found.state.id.to_string(), survivor);
        assert_eq!(found.version, 2);
        assert!(
            by_key::<Citizen>(&conn, CITIZEN_BY_PIN, "031067385903".into())
                .unwrap()
                .is_none()
        );
        // A key whose record is of another kind is corruption, not a miss.
        assert!(matches!(
            by_key::<Business>(&conn, CITIZEN_BY_PIN, "031067385902".into()),
            Err(ProjectionError::Corrupt(_))
        ));
        let found_after = |update: &str| -> String {
            conn.execute(update, []).unwrap();
            let found: Versioned<Citizen> = by_key(&conn, CITIZEN_BY_PIN, "031067385902".into())
                .unwrap()
                .unwrap();
            found.state.id.to_string()
        };
        // A key held by merged records alone finds the first of them.
        let all_merged = "UPDATE citizens SET status = 'merged' WHERE seq = 2";
        assert_eq!(found_after(all_merged), duplicate);
        // Two current records under one key (no writer makes them): the first registered.
        assert_eq!(
            found_after("UPDATE citizens SET status = 'alive'"),
            duplicate
        );
    }

    fn uuid(n: u128) -> uuid::Uuid {
        uuid::Uuid::from_u128(0x22ed2420_9431_8003_8000_000000000000 + n)
    }

    #[test]
    fn an_active_parcel_wins_over_a_retired_one_under_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, _, _) = crate::schema::open_writer(&dir.path().join("p.db"), None).unwrap();
        let state = |n: u128, status: &str| {
            format!(
                r#"{{"kind":"parcel","id":"{}","key":"10972/10972:1/1","national_parcel_id":null,"area":"723.40","land_use":["ONT"],"address":"Thôn Tràng Duệ","geometry":null,"holders":[],"certificate":null,"mortgages":[],"status":{status},"origin":{{"kind":"registration"}},"corrections":{{}}}}"#,
                uuid(n)
            )
        };
        let retired = r#"{"status":"retired","on":"2020-01-02","reason":"dồn điền"}"#;
        for (seq, status) in [(1i64, retired), (2, r#"{"status":"active"}"#), (3, retired)] {
            let column = if seq == 2 { "active" } else { "retired" };
            conn.execute(
                "INSERT INTO records (seq, record_id, kind, version, last_position, state)
                 VALUES (?1, ?2, 'parcel', 1, ?1, ?3)",
                rusqlite::params![
                    seq,
                    format!("parcel-{}", uuid(seq as u128)),
                    state(seq as u128, status)
                ],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO parcels (seq, parcel_key, commune, status)
                 VALUES (?1, '10972/10972:1/1', '10972', ?2)",
                rusqlite::params![seq, column],
            )
            .unwrap();
        }
        let found = |conn: &Connection| -> u64 {
            let parcel: Versioned<Parcel> = by_key(conn, PARCEL_BY_KEY, "10972/10972:1/1".into())
                .unwrap()
                .unwrap();
            parcel.last_position
        };
        assert_eq!(found(&conn), 2);
        conn.execute("UPDATE parcels SET status = 'retired'", [])
            .unwrap();
        assert_eq!(found(&conn), 1, "all retired: the first registered");
        assert!(
            by_key::<Parcel>(&conn, PARCEL_BY_KEY, "10972/10972:1/2".into())
                .unwrap()
                .is_none()
        );
    }

    /// Link rows come back by key, then by their place in the list, whether the batch is read
    /// key by key or through one `IN` list, and whatever order the table's primary key gives.
    #[test]
    fn links_come_back_in_list_order_for_small_and_large_batches() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, _, _) = crate::schema::open_writer(&dir.path().join("p.db"), None).unwrap();
        let parcels: Vec<ParcelId> = (1..=12).map(|n| ParcelId(uuid(n))).collect();
        for parcel in &parcels {
            // Holder 3 first in the list, then 1, then 2: not the primary key's order.
            for (ord, holder) in [(0, 3u128), (1, 1), (2, 2)] {
                conn.execute(
                    "INSERT INTO holdings (parcel_id, holder_id, share, ord)
                     VALUES (?1, ?2, '1/3', ?3)",
                    rusqlite::params![
                        RecordId::Parcel(*parcel).to_string(),
                        format!("citizen-{}", uuid(100 + holder)),
                        ord
                    ],
                )
                .unwrap();
            }
        }
        let expected: Vec<Holder> = [3u128, 1, 2]
            .iter()
            .map(|h| Holder::Citizen(CitizenId(uuid(100 + h))))
            .collect();
        for batch in [
            &parcels[..1],
            &parcels[..2],
            &parcels[..ONE_BY_ONE + 1],
            &parcels,
        ] {
            let held = holders_of(&conn, batch).unwrap();
            assert_eq!(held.len(), batch.len());
            for parcel in batch {
                let holders: Vec<Holder> = held[parcel].iter().map(|h| h.holder).collect();
                assert_eq!(holders, expected, "batch of {}", batch.len());
            }
        }
    }
}
