//! The read-model file: its tables, its version, and what happens on a mismatch.
//!
//! The file is disposable: the log is the truth. When the stored schema version (or the search
//! flavour, FTS5 or plain) differs from this build's, every table is dropped and recreated, and
//! the projector replays the log from position 0. The file is marked with its own
//! `application_id`, so pointing citydb at the wrong file (the log, say) is refused instead of
//! wiping it.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::{ProjectionError, storage};
use crate::name_triples;

/// `PRAGMA application_id` of a projections file: "cdrp" (citydb read projections).
pub const APPLICATION_ID: i32 = 0x6364_7270;

/// `PRAGMA user_version`. Bump it whenever a table, an index, or what the projector writes into
/// them changes: existing files are then rebuilt from the log on open.
/// 2: B-tree indexes on the name keys in both search flavours (name search by ordered range).
/// 3: `correction_requests`, citizens' correction requests (issue 15).
/// 4: `parents`, each citizen's current father and mother, for a parent's children (issue 17).
/// 5: `residence_starts` and `residence_proposals`, the feed of residence starts as known now
///    (issue 16, item 4).
/// 6: the FTS5 word indexes split into a folded and an exact table per kind, prefix indexes up
///    to 8 letters on the folded words (a name search's word tiers, issue 13).
/// 7: the change feed's `(category, event type)` as a code of `change_kinds`, one index
///    `(kind, position)` instead of two text indexes (issue 12).
/// 8: `citizen_name_triples`, word triples of citizens' folded names, for the folded words
///    anywhere without intersecting FTS5 doclists (issue 13; `name_triples`).
/// 9: the folded name indexes carry the exact name, `(name_folded, seq, name_exact)`: a name
///    search's folded tier reads only the index (issue 13).
/// 10: `records.record_id`'s uniqueness is the index `records_record_id`, which a bulk load into
///    an empty file builds at its end like the others (issue 12).
/// 11: `records` holds what a search page shows of a citizen (`family`, `middle`, `given`,
///    `birth_date`, `restricted`): a page that asks nothing else reads them beside the
///    version instead of decoding each state (`search_citizen_summaries`, issue 13).
pub const SCHEMA_VERSION: i32 = 11;

/// The read-model tables, in the order `digest()` hashes them, each with the `ORDER BY` that
/// makes its rows deterministic. The FTS5 tables are left out: they hold nothing that the
/// `citizens`/`businesses` name columns do not. `digest()` adds the citizens' word triples
/// when the file has them (FTS5 only).
pub(crate) const DIGEST_TABLES: &[(&str, &str)] = &[
    ("meta", "key"),
    ("records", "seq"),
    ("citizens", "seq"),
    ("businesses", "seq"),
    ("parcels", "seq"),
    ("parcel_land_use", "seq, land_use"),
    ("holdings", "parcel_id, holder_id"),
    ("representatives", "business_id, citizen_id"),
    ("parents", "child_id, parent_id"),
    ("change_kinds", "code"),
    ("changes", "position"),
    ("projection_errors", "position"),
    ("correction_requests", "seq"),
    ("residence_starts", "commune, since, citizen_seq, kind"),
    ("residence_proposals", "citizen_seq, correction"),
];

const TABLES: &str = "
-- Key/value facts about this file: `checkpoint` (next log position to project) and `search`.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Current state of every record. `seq` is the log position of the record's first event: unique,
-- deterministic across rebuilds, and growing with time, so it is the tie-break order of every
-- listing and the rowid the per-kind tables and the name indexes share.
-- No FOREIGN KEY clauses: the projector writes a record and its index rows in one transaction,
-- and enforcing them would only slow that down and get in the way of dropping tables.
CREATE TABLE records (
    seq           INTEGER PRIMARY KEY,
    record_id     TEXT NOT NULL,          -- the stream id, e.g. citizen-<uuid>; unique (records_record_id)
    kind          TEXT NOT NULL,          -- citizen | business | parcel
    version       INTEGER NOT NULL,       -- last stream version consumed
    last_position INTEGER NOT NULL,       -- log position of that event
    -- A citizen's summary (citydb_domain::citizen::Summary) as the state holds it: what a
    -- search page shows, read here with the version instead of decoding `state`. The name's
    -- parts, the birth date as text, 1 when restricted; NULL for other kinds.
    family        TEXT,
    middle        TEXT,
    given         TEXT,
    birth_date    TEXT,
    restricted    INTEGER,
    state         TEXT NOT NULL           -- the domain Record as JSON
);

CREATE TABLE citizens (
    seq         INTEGER PRIMARY KEY,      -- = records.seq
    pin         TEXT NOT NULL,
    name_exact  TEXT NOT NULL,            -- citydb_domain::exact_key of the full name
    name_folded TEXT NOT NULL,            -- citydb_domain::folded_key of the full name
    commune     TEXT,                     -- permanent residence, else temporary residence
    birth_year  INTEGER NOT NULL,
    status      TEXT NOT NULL,            -- alive | deceased | merged
    merged_into TEXT                      -- survivor's record id
);

CREATE TABLE businesses (
    seq         INTEGER PRIMARY KEY,      -- = records.seq
    code        TEXT NOT NULL,
    name        TEXT NOT NULL,            -- the Vietnamese name as registered
    name_exact  TEXT NOT NULL,            -- exact_key of every name (Vietnamese, abbreviated, English)
    name_folded TEXT NOT NULL,            -- folded_key of the same
    commune     TEXT NOT NULL,            -- head office
    status      TEXT NOT NULL,            -- active | suspended | dissolved
    parent      TEXT                      -- parent's record id, for branches
);

CREATE TABLE parcels (
    seq         INTEGER PRIMARY KEY,      -- = records.seq
    parcel_key  TEXT NOT NULL,            -- canonical COMMUNE/PREDECESSOR:SHEET/PARCEL
    commune     TEXT NOT NULL,
    status      TEXT NOT NULL,            -- active | retired (retired, split or merged away)
    merged_into TEXT                      -- target parcel's record id
);

CREATE TABLE parcel_land_use (
    seq      INTEGER NOT NULL,
    land_use TEXT NOT NULL,
    PRIMARY KEY (seq, land_use)
) WITHOUT ROWID;

-- Rights holders: parcel <-> citizen or business, with the share as written (\"1/2\").
CREATE TABLE holdings (
    parcel_id TEXT NOT NULL,
    holder_id TEXT NOT NULL,
    share     TEXT NOT NULL,
    ord       INTEGER NOT NULL,           -- position in the parcel's holder list
    PRIMARY KEY (parcel_id, holder_id)
) WITHOUT ROWID;

CREATE TABLE representatives (
    business_id TEXT NOT NULL,
    citizen_id  TEXT NOT NULL,
    ord         INTEGER NOT NULL,
    PRIMARY KEY (business_id, citizen_id)
) WITHOUT ROWID;

-- Each citizen's current father and mother, one row per parent, written from the child's state
-- (like holdings from the parcel's): a parent's children are the rows naming them. A merged
-- duplicate keeps its rows (links are not rewritten on a merge, docs/domain.md).
CREATE TABLE parents (
    child_id    TEXT NOT NULL,            -- citizen-<uuid>
    parent_id   TEXT NOT NULL,            -- citizen-<uuid>, the father or the mother
    child_birth TEXT NOT NULL,            -- the child's birth date as recorded, YYYY[-MM[-DD]]:
                                          -- text order is date order, a year before its dates
    PRIMARY KEY (child_id, parent_id)
) WITHOUT ROWID;

-- The (stream category, event type) pairs of the change feed, each a code handed out on its
-- first appearance in the log (crate::changes).
CREATE TABLE change_kinds (
    code       INTEGER PRIMARY KEY,
    category   TEXT NOT NULL,
    event_type TEXT NOT NULL,
    UNIQUE (category, event_type)
);

-- Every projected event but command markers, for the change feed's filters.
CREATE TABLE changes (
    position   INTEGER PRIMARY KEY,
    kind       INTEGER NOT NULL,          -- change_kinds.code
    stream_id  TEXT NOT NULL
);

-- Events the projector could not apply (see the crate docs): it records them and goes on.
CREATE TABLE projection_errors (
    position       INTEGER PRIMARY KEY,
    stream_id      TEXT NOT NULL,
    stream_version INTEGER NOT NULL,
    event_type     TEXT NOT NULL,
    reason         TEXT NOT NULL
);

-- Citizens' correction requests (`correction_request-<uuid>` streams, crate::requests).
CREATE TABLE correction_requests (
    seq            INTEGER PRIMARY KEY,   -- log position of the submission
    request_id     TEXT NOT NULL UNIQUE,  -- the stream id
    citizen_id     TEXT NOT NULL,         -- citizen-<uuid>
    field          TEXT NOT NULL,
    status         TEXT NOT NULL,         -- submitted | acknowledged | resolved | refused | withdrawn
    submitted      TEXT NOT NULL,         -- YYYY-MM-DD, so text order is date order
    acknowledge_by TEXT NOT NULL,
    due_by         TEXT NOT NULL,
    overdue        INTEGER NOT NULL,      -- 1: open with a recorded overdue deadline that binds
    correction_id  TEXT,                  -- the correction that resolved it
    version        INTEGER NOT NULL,
    last_position  INTEGER NOT NULL,
    state          TEXT NOT NULL          -- the domain CorrectionRequest as JSON
);

-- Residence starts as known now (crate::residence_starts): one row per residence period a
-- citizen's record now holds to have begun, from ResidenceChanged events and residence
-- corrections (one fixing the past replaces the old value's row; one with effective_at D adds
-- the new value's row from D). A feed of starts, not of current residents: a move away leaves
-- the row. A merged-away duplicate keeps its rows. The primary key is the feed's order within
-- a commune: a page of one commune and month is an ordered range, no sort.
CREATE TABLE residence_starts (
    commune     TEXT NOT NULL,            -- admin unit code
    since       TEXT NOT NULL,            -- YYYY-MM-DD, so text order is date order
    citizen_seq INTEGER NOT NULL,         -- = records.seq of the citizen
    kind        TEXT NOT NULL,            -- permanent | temporary
    PRIMARY KEY (commune, since, citizen_seq, kind)
) WITHOUT ROWID;

-- Proposed corrections of a residence, until approved, rejected or withdrawn: what an approval
-- applies, and whether it fixes the past (effective_at NULL) or changes from a date.
CREATE TABLE residence_proposals (
    citizen_seq  INTEGER NOT NULL,
    correction   TEXT NOT NULL,           -- the correction's uuid
    effective_at TEXT,                    -- the proposal's effective_at, YYYY-MM-DD
    fixes        TEXT NOT NULL,           -- JSON: [{kind, old: {commune, since}?, new: ...}]
    PRIMARY KEY (citizen_seq, correction)
) WITHOUT ROWID;
";

/// The record ids' uniqueness, and the lookup by id of every query and of the per-batch path:
/// a secondary index like [`SECONDARY_INDEXES`], built first. A bulk load keeps it when the
/// file has records (it looks them up by id, see [`drop_indexes`]), hence `IF NOT EXISTS`.
/// Into an empty file, building it at the end instead of row by row made a whole-city rebuild
/// 165.7 → 153.7 s (docs/benchmarks.md).
const RECORD_ID_INDEX: &str =
    "CREATE UNIQUE INDEX IF NOT EXISTS records_record_id ON records(record_id)";
const RECORD_ID_INDEX_NAME: &str = "records_record_id";

/// The secondary indexes of the tables above. Apart from [`TABLES`] so that the bulk path
/// ([`crate::bulk`]) can drop them, load the rows, and create them once at the end: one sort
/// per index instead of a B-tree insertion per row. The `*_name_exact` and `*_name_folded`
/// indexes are the ordered ranges a name search pages through (see [`crate::search`]), in
/// both search flavours. The folded ones also hold `name_exact`, which the folded tier tests
/// (a name the exact tier returned is not returned again): without it each row of the range
/// was a seek into the table (two B-tree descents a row where the index alone needs none).
///
/// The record ids' index ([`RECORD_ID_INDEX`]) comes first, apart.
const SECONDARY_INDEXES: &str = "
CREATE INDEX citizens_pin ON citizens(pin);
CREATE INDEX citizens_commune ON citizens(commune, seq);
CREATE INDEX citizens_status ON citizens(status, seq);
CREATE INDEX citizens_birth_year ON citizens(birth_year, seq);
CREATE INDEX citizens_merged_into ON citizens(merged_into) WHERE merged_into IS NOT NULL;
CREATE INDEX citizens_name_exact ON citizens(name_exact, seq);
CREATE INDEX citizens_name_folded ON citizens(name_folded, seq, name_exact);
CREATE INDEX businesses_code ON businesses(code);
CREATE INDEX businesses_commune ON businesses(commune, seq);
CREATE INDEX businesses_status ON businesses(status, seq);
CREATE INDEX businesses_parent ON businesses(parent) WHERE parent IS NOT NULL;
CREATE INDEX businesses_name_exact ON businesses(name_exact, seq);
CREATE INDEX businesses_name_folded ON businesses(name_folded, seq, name_exact);
CREATE INDEX parcels_key ON parcels(parcel_key);
CREATE INDEX parcels_commune ON parcels(commune, seq);
CREATE INDEX parcels_status ON parcels(status, seq);
CREATE INDEX parcel_land_use_code ON parcel_land_use(land_use, seq);
CREATE INDEX holdings_holder ON holdings(holder_id, parcel_id);
CREATE INDEX representatives_citizen ON representatives(citizen_id, business_id);
CREATE INDEX parents_parent ON parents(parent_id, child_birth, child_id);
CREATE INDEX changes_kind ON changes(kind, position);
CREATE INDEX correction_requests_status ON correction_requests(status, seq);
CREATE INDEX correction_requests_citizen ON correction_requests(citizen_id, seq);
CREATE INDEX residence_starts_citizen ON residence_starts(citizen_seq);
";

/// Word indexes when FTS5 is available, for the words of a name anywhere (a name search's later
/// tiers): for each kind, one table of the folded words and one of the exact words of each name,
/// rowid = `seq`. Contentless (the text lives in `citizens`/`businesses`) with deletes enabled,
/// and no positions (`detail = none`: a search matches words, not phrases).
///
/// Two tables, not two columns of one: a column filter (`exact : "hien"`) walks every row the
/// word has in *either* column and drops the others one by one, so the exact word `hien`, which
/// few names hold, cost the walk of every folded `hien` (every Hiền, Hiến, Hiển, …). The folded
/// table has prefix indexes up to 8 letters, the longest Vietnamese syllable folded
/// (`nghieng` is 7): a prefix query on the last word (`h*` of `nguyen van h`, a whole given name
/// `hien*`) reads one doclist instead of merging the doclists of every word with that prefix.
/// The exact words are matched whole, so their table has none.
const FTS_TABLES: [NameWords; 2] = [CITIZEN_WORDS, BUSINESS_WORDS];

/// The word indexes ([`FTS_TABLES`]) of one kind of named record.
#[derive(Clone, Copy)]
pub(crate) struct NameWords {
    /// `citizens` or `businesses`, with `seq` and the `name_exact` and `name_folded` columns
    /// the words are indexed from.
    pub(crate) kind: &'static str,
    /// The folded words' table (rowid = `seq`), column `folded`.
    pub(crate) folded: &'static str,
    /// The exact words' table (rowid = `seq`), column `exact`.
    pub(crate) exact: &'static str,
    /// Whether the kind's folded names also have word triples ([`crate::name_triples`]):
    /// citizens' names (a few words each), not businesses' (a dozen words make 660 rows).
    pub(crate) triples: bool,
}

pub(crate) const CITIZEN_WORDS: NameWords = NameWords {
    kind: "citizens",
    folded: "citizen_names_folded",
    exact: "citizen_names_exact",
    triples: true,
};
pub(crate) const BUSINESS_WORDS: NameWords = NameWords {
    kind: "businesses",
    folded: "business_names_folded",
    exact: "business_names_exact",
    triples: false,
};

/// The name-word rows a transaction of the per-batch path changes, written after all its
/// other statements and in `seq` order ([`WordWrites::write`]).
///
/// FTS5 holds the terms of a transaction in memory and writes them as one segment at the
/// commit, unless it must flush earlier: (1) before every statement that opens a statement
/// journal (e.g. an `INSERT OR REPLACE` into a table with indexes and `NOT NULL` columns)
/// SQLite calls `xSavepoint` on every virtual table the transaction has written, and FTS5
/// flushes; (2) FTS5 flushes when a row's rowid is below the last one it was given. With the
/// words written among the records' other rows, in the order of the batch's map of records,
/// each record's words became a segment of their own, which FTS5's automerge merged again and
/// again: a quarter of a catch-up's CPU at the whole city (docs/benchmarks.md, "Name words
/// written last in a batch"). Nothing in a batch reads the word tables, so the order within
/// the transaction is free.
#[derive(Default)]
pub(crate) struct WordWrites(Vec<WordWrite>);

struct WordWrite {
    words: NameWords,
    seq: i64,
    before: Option<String>,
    folded: String,
    exact: String,
}

impl WordWrites {
    /// Asks for [`NameWords::replace`] of record `seq`'s words at [`write`](Self::write).
    pub(crate) fn replace(
        &mut self,
        words: NameWords,
        seq: i64,
        before: Option<&str>,
        folded: &str,
        exact: &str,
    ) {
        self.0.push(WordWrite {
            words,
            seq,
            before: before.map(str::to_owned),
            folded: folded.to_owned(),
            exact: exact.to_owned(),
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Writes every replacement asked for, by `seq` (the rowid), a record's own in the order
    /// they were asked for (a record renamed twice ends with its last name's words).
    pub(crate) fn write(mut self, tx: &Connection) -> Result<(), ProjectionError> {
        // Stable: a record's replacements stay in order.
        self.0.sort_by_key(|w| w.seq);
        for w in self.0 {
            w.words
                .replace(tx, w.seq, w.before.as_deref(), &w.folded, &w.exact)?;
        }
        Ok(())
    }
}

impl NameWords {
    /// Indexes the words of record `seq`'s name keys, replacing those it had if it was indexed
    /// (`before`: its folded key as last indexed).
    pub(crate) fn replace(
        &self,
        tx: &Connection,
        seq: i64,
        before: Option<&str>,
        folded: &str,
        exact: &str,
    ) -> Result<(), ProjectionError> {
        if self.triples {
            name_triples::replace(tx, seq, before, folded)?;
        }
        let existed = before.is_some();
        for (table, column, text) in [
            (self.folded, "folded", folded),
            (self.exact, "exact", exact),
        ] {
            if existed {
                tx.prepare_cached(&format!("DELETE FROM {table} WHERE rowid = ?1"))
                    .and_then(|mut s| s.execute([seq]))
                    .map_err(storage)?;
            }
            tx.prepare_cached(&format!(
                "INSERT INTO {table}(rowid, {column}) VALUES (?1, ?2)"
            ))
            .and_then(|mut s| s.execute(rusqlite::params![seq, text]))
            .map_err(storage)?;
        }
        Ok(())
    }

    /// Creates both tables (and the triples' table).
    fn create(&self, conn: &Connection) -> Result<(), ProjectionError> {
        if self.triples {
            name_triples::create(conn)?;
        }
        const OPTIONS: &str = "content = '', contentless_delete = 1, detail = none,
            tokenize = 'unicode61 remove_diacritics 0'";
        conn.execute_batch(&format!(
            "CREATE VIRTUAL TABLE {folded} USING fts5(folded, {OPTIONS},
                 prefix = '1 2 3 4 5 6 7 8');
             CREATE VIRTUAL TABLE {exact} USING fts5(exact, {OPTIONS});",
            folded = self.folded,
            exact = self.exact,
        ))
        .map_err(storage)
    }

    /// Empties both tables (the bulk path refills them at the end).
    fn clear(&self, conn: &Connection) -> Result<(), ProjectionError> {
        if self.triples {
            name_triples::clear(conn)?;
        }
        for table in [self.folded, self.exact] {
            conn.execute_batch(&format!(
                "INSERT INTO {table}({table}) VALUES ('delete-all');"
            ))
            .map_err(storage)?;
        }
        Ok(())
    }

    /// Fills both tables (and the triples' table) from the kind's name columns, in `seq` order.
    fn fill(&self, conn: &Connection) -> Result<(), ProjectionError> {
        if self.triples {
            let started = std::time::Instant::now();
            name_triples::fill(conn)?;
            tracing::info!(elapsed = ?started.elapsed(), kind = self.kind, "projections: name triples filled");
        }
        let kind = self.kind;
        for (table, column) in [(self.folded, "folded"), (self.exact, "exact")] {
            let started = std::time::Instant::now();
            conn.execute_batch(&format!(
                "INSERT INTO {table}(rowid, {column}) SELECT seq, name_{column} FROM {kind} ORDER BY seq;"
            ))
            .map_err(storage)?;
            tracing::info!(elapsed = ?started.elapsed(), table, "projections: word index filled");
        }
        Ok(())
    }
}

/// Which name search the file was built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchFlavour {
    /// The full-name prefix ranges, then SQLite FTS5 over folded and exact tokens: the words
    /// anywhere, prefix on the last one.
    Fts5,
    /// The full-name prefix ranges only (family name first).
    Plain,
}

impl SearchFlavour {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchFlavour::Fts5 => "fts5",
            SearchFlavour::Plain => "plain",
        }
    }
}

/// Whether the linked SQLite has FTS5.
pub(crate) fn fts5_available(conn: &Connection) -> Result<bool, ProjectionError> {
    conn.query_row("SELECT sqlite_compileoption_used('ENABLE_FTS5')", [], |r| {
        r.get::<_, bool>(0)
    })
    .map_err(storage)
}

pub(crate) fn configure(conn: &Connection) -> Result<(), ProjectionError> {
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(storage)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(storage)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(ProjectionError::Storage(format!(
            "cannot switch the projections file to WAL (journal mode is {mode})"
        )));
    }
    // The file is disposable and every batch commits together with its checkpoint, so losing the
    // last commits to a power cut only means re-projecting them: no fsync per batch.
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768;")
        .map_err(storage)?;
    Ok(())
}

/// Opens (creating if needed) the writer connection and brings the file to this build's schema,
/// dropping everything first if it was built by another version or search flavour.
pub(crate) fn open_writer(
    path: &Path,
    want: Option<SearchFlavour>,
) -> Result<(Connection, SearchFlavour, bool), ProjectionError> {
    let conn = Connection::open(path).map_err(storage)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(storage)?;
    stable_plans(&conn)?;
    let fts5 = fts5_available(&conn)?;
    let want = match want {
        Some(SearchFlavour::Fts5) if !fts5 => {
            return Err(ProjectionError::Storage(
                "FTS5 was asked for but the linked SQLite does not have it".into(),
            ));
        }
        Some(flavour) => flavour,
        None if fts5 => SearchFlavour::Fts5,
        None => SearchFlavour::Plain,
    };
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(storage)?;
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(storage)?;
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            [],
            |r| r.get(0),
        )
        .map_err(storage)?;
    if app_id != APPLICATION_ID && (app_id != 0 || tables > 0) {
        return Err(ProjectionError::NotAProjectionsFile {
            path: path.display().to_string(),
        });
    }
    // Only now that the file is known to be ours (or empty) may anything be written to it.
    configure(&conn)?;
    let flavour: Option<String> = if tables > 0 {
        conn.query_row("SELECT value FROM meta WHERE key = 'search'", [], |r| {
            r.get(0)
        })
        .optional()
        .unwrap_or(None)
    } else {
        None
    };
    let current = app_id == APPLICATION_ID
        && version == SCHEMA_VERSION
        && flavour.as_deref() == Some(want.as_str());
    let rebuilt = !current;
    if rebuilt {
        if tables > 0 {
            tracing::info!(
                path = %path.display(),
                found_version = version,
                found_search = flavour.as_deref().unwrap_or("none"),
                want_version = SCHEMA_VERSION,
                want_search = want.as_str(),
                "projections file is from another schema; rebuilding it from the log"
            );
        }
        reset(&conn, want)?;
    }
    Ok((conn, want, rebuilt))
}

/// The files SQLite keeps for a database at `path`: the file, its WAL and its shared memory.
pub(crate) fn file_set(path: &Path) -> [std::path::PathBuf; 4] {
    [
        path.to_path_buf(),
        beside(path, "-wal"),
        beside(path, "-shm"),
        damage_mark(path),
    ]
}

fn beside(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    std::path::PathBuf::from(name)
}

/// Where a check made after open ([`IntegrityCheck::AfterOpen`]) leaves the damage it found:
/// a file beside the projections file, not a row in it (a damaged file may refuse writes).
/// The next open finds it, removes the file set and rebuilds.
pub(crate) fn damage_mark(path: &Path) -> std::path::PathBuf {
    beside(path, ".damaged")
}

/// Leaves `reason` beside the file at `path`, so that its next open removes it and rebuilds the
/// read models from the log ([`damage`] reads it back).
pub(crate) fn mark_damaged(path: &Path, reason: &str) -> Result<(), ProjectionError> {
    std::fs::write(damage_mark(path), reason).map_err(|e| {
        ProjectionError::Storage(format!(
            "cannot mark {} as damaged ({reason}): {e}",
            path.display()
        ))
    })
}

/// When SQLite's `PRAGMA quick_check` reads the whole projections file: one pass over it, as
/// long as reading it (about 9 s at the whole city, 13 s from a cold cache; docs/benchmarks.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IntegrityCheck {
    /// Before the file is used: a damaged file is rebuilt at once. For tools and tests.
    #[default]
    AtOpen,
    /// Left to [`crate::Projections::check_integrity`], called once the node serves (a server
    /// does not wait for it before `/readyz`); what it finds is marked for the next open.
    AfterOpen,
}

/// Removes a projections file with its WAL and shared memory, without opening it (a damaged
/// file may not open at all). The WAL goes too: replayed onto a new file it would write the
/// old pages into it.
pub(crate) fn remove_file_set(path: &Path) -> Result<(), ProjectionError> {
    for file in file_set(path) {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ProjectionError::Storage(format!(
                    "cannot remove {}: {e}",
                    file.display()
                )));
            }
        }
    }
    Ok(())
}

/// Why the projections file at `path` is damaged, or `None` when it is sound, absent, or not
/// a projections file at all (which [`open_writer`] refuses without touching it).
///
/// With [`IntegrityCheck::AtOpen`], `PRAGMA quick_check` reads every page once and checks the
/// b-tree structure (not that indexes match their tables: that is `integrity_check`, far
/// slower): a file damaged by a disk fault or a stray write is found before the first query
/// fails on it. With `AfterOpen` only what a check after an earlier open marked counts here.
pub(crate) fn damage(path: &Path, check: IntegrityCheck) -> Option<String> {
    if let Ok(found) = std::fs::read_to_string(damage_mark(path)) {
        return Some(format!(
            "a check after an earlier open found: {}",
            found.trim()
        ));
    }
    if !path.exists() {
        // A WAL left without its file would be replayed onto the new one.
        return file_set(path)[1]
            .exists()
            .then(|| "a WAL is left without its database file".to_owned());
    }
    let conn = match Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(conn) => conn,
        Err(e) => return header_is_ours(path).then(|| e.to_string()),
    };
    let _ = conn.busy_timeout(Duration::from_secs(10));
    match conn.query_row("PRAGMA application_id", [], |r| r.get::<_, i32>(0)) {
        Ok(APPLICATION_ID) => {}
        Ok(_) => return None,
        Err(e) => return header_is_ours(path).then(|| e.to_string()),
    }
    if check == IntegrityCheck::AtOpen
        && let Some(damage) = quick_check(&conn)
    {
        return Some(damage);
    }
    match has_bulk_mark(&conn) {
        Ok(false) => None,
        Ok(true) => Some("a bulk build of the read models was interrupted".to_owned()),
        // No meta table: an empty file, or one open_writer recreates anyway.
        Err(_) => None,
    }
}

/// What `PRAGMA quick_check` finds wrong in the file `conn` reads (at most 10 complaints), or
/// `None` when its b-trees are sound. The file is asked from the disk in order meanwhile
/// ([`citydb_sqlite::read_into_page_cache`]): the check reads it in its B-trees' order, one
/// page at a time, which from a cold cache is minutes at the whole city.
pub(crate) fn quick_check(conn: &Connection) -> Option<String> {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let complaints: Result<Vec<String>, rusqlite::Error> = std::thread::scope(|scope| {
        if let Some(path) = conn.path().filter(|p| !p.is_empty()) {
            let (path, stop) = (Path::new(path), &stop);
            // Without the thread the check only runs slower from a cold cache.
            let _ = std::thread::Builder::new()
                .name("citydb-check-ahead".into())
                .spawn_scoped(scope, move || {
                    citydb_sqlite::read_into_page_cache(path, stop)
                });
        }
        let complaints = conn.prepare("PRAGMA quick_check(10)").and_then(|mut stmt| {
            stmt.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        complaints
    });
    match complaints {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => None,
        Ok(rows) => Some(rows.join("; ")),
        Err(e) => Some(e.to_string()),
    }
}

/// Whether the file's own header (read as bytes, not through SQLite) says it is a citydb
/// projections file: SQLite's magic string, and our `application_id` at offset 68.
fn header_is_ours(path: &Path) -> bool {
    let mut header = [0u8; 72];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .is_ok()
        && header.starts_with(b"SQLite format 3\0")
        && header[68..72] == APPLICATION_ID.to_be_bytes()
}

/// Drops every table and creates this build's schema, with the checkpoint at 0. One
/// transaction: readers see either the old models or the empty new ones.
pub(crate) fn reset(conn: &Connection, flavour: SearchFlavour) -> Result<(), ProjectionError> {
    let tx = conn.unchecked_transaction().map_err(storage)?;
    // Virtual tables first: dropping one drops its shadow tables with it.
    for virtual_first in [true, false] {
        let names: Vec<String> = {
            let mut stmt = tx
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                     AND (sql LIKE 'CREATE VIRTUAL%') = ?1",
                )
                .map_err(storage)?;
            stmt.query_map([virtual_first], |r| r.get(0))
                .map_err(storage)?
                .collect::<Result<_, _>>()
                .map_err(storage)?
        };
        for name in names {
            tx.execute_batch(&format!(
                "DROP TABLE IF EXISTS \"{}\"",
                name.replace('"', "\"\"")
            ))
            .map_err(storage)?;
        }
    }
    tx.execute_batch(TABLES).map_err(storage)?;
    tx.execute_batch(RECORD_ID_INDEX).map_err(storage)?;
    tx.execute_batch(SECONDARY_INDEXES).map_err(storage)?;
    if flavour == SearchFlavour::Fts5 {
        for words in FTS_TABLES {
            words.create(&tx)?;
        }
    }
    tx.execute(
        "INSERT INTO meta(key, value) VALUES ('checkpoint', '0'), ('search', ?1)",
        [flavour.as_str()],
    )
    .map_err(storage)?;
    tx.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
    ))
    .map_err(storage)?;
    tx.commit().map_err(storage)
}

/// The `meta` key present while the bulk path ([`crate::bulk`]) is building the file: committed
/// (and synced) before the first row is written unsynced, removed (and synced) after the last
/// index is built. A file that still has it was left by an interrupted bulk build: its indexes
/// may be missing and, after a power cut, any page may be older than the others, so
/// [`damage`] reports it and the file is removed and rebuilt.
pub(crate) const BULK_MARK: &str = "bulk-build";

/// Whether the file carries [`BULK_MARK`].
pub(crate) fn has_bulk_mark(conn: &Connection) -> Result<bool, ProjectionError> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM meta WHERE key = ?1)",
        [BULK_MARK],
        |r| r.get(0),
    )
    .map_err(storage)
}

/// Drops every secondary index and empties the FTS5 name indexes, ahead of a bulk load that
/// rebuilds them with [`build_indexes`]. The tables' own keys stay. So does the record ids'
/// index if the file has records — and it is built first if an interrupted load into an empty
/// file left records without it: the load looks those records up by id when their streams go
/// on. Into an empty file the load needs no lookup by id (it reads a record it wrote back by
/// its `seq`, [`crate::bulk`]).
pub(crate) fn drop_indexes(
    conn: &Connection,
    flavour: SearchFlavour,
) -> Result<(), ProjectionError> {
    let has_records: bool = conn
        .query_row("SELECT EXISTS(SELECT 1 FROM records)", [], |r| r.get(0))
        .map_err(storage)?;
    if has_records {
        conn.execute_batch(RECORD_ID_INDEX).map_err(storage)?;
    }
    let names: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            .map_err(storage)?;
        stmt.query_map([], |r| r.get(0))
            .map_err(storage)?
            .collect::<Result<_, _>>()
            .map_err(storage)?
    };
    for name in names {
        if has_records && name == RECORD_ID_INDEX_NAME {
            continue;
        }
        conn.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))
            .map_err(storage)?;
    }
    if flavour == SearchFlavour::Fts5 {
        for words in FTS_TABLES {
            words.clear(conn)?;
        }
    }
    Ok(())
}

/// Creates the indexes [`drop_indexes`] dropped and fills the FTS5 name indexes from the name
/// columns, which hold exactly what the row-by-row path indexes (`folded_key`/`exact_key` of
/// the citizen's full name, of every name of a business).
///
/// Each step's time is logged (`citydb_projections` at `info`): at the whole city this is
/// the bulk import's tail (docs/benchmarks.md).
pub(crate) fn build_indexes(
    conn: &Connection,
    flavour: SearchFlavour,
) -> Result<(), ProjectionError> {
    let started = std::time::Instant::now();
    let all = std::iter::once(RECORD_ID_INDEX).chain(SECONDARY_INDEXES.split(';'));
    for index in all.map(str::trim) {
        if index.is_empty() {
            continue;
        }
        let one = std::time::Instant::now();
        conn.execute_batch(index).map_err(storage)?;
        tracing::debug!(elapsed = ?one.elapsed(), index, "projections: index built");
    }
    tracing::info!(elapsed = ?started.elapsed(), "projections: secondary indexes built");
    if flavour == SearchFlavour::Fts5 {
        for words in FTS_TABLES {
            words.fill(conn)?;
        }
    }
    Ok(())
}

/// The next position to project, as committed.
pub(crate) fn checkpoint(conn: &Connection) -> Result<u64, ProjectionError> {
    let text: String = conn
        .query_row("SELECT value FROM meta WHERE key = 'checkpoint'", [], |r| {
            r.get(0)
        })
        .map_err(storage)?;
    text.parse()
        .map_err(|_| ProjectionError::Corrupt(format!("checkpoint {text:?} is not a number")))
}

/// How a reader gets its pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mapping {
    /// From a mapping of the whole file: what the query readers use.
    Whole,
    /// Copied by pread(2) into the connection's own small page cache. For a connection that
    /// reads gigabytes once (the integrity check) or at random while a bulk load runs: a mapping
    /// would leave every page it touched counted in the process's resident size (the bulk
    /// import's peak RSS is bounded).
    None,
}

/// A read-only connection to the projections file.
pub(crate) fn open_reader(path: &Path, mapping: Mapping) -> Result<Connection, ProjectionError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(storage)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(storage)?;
    stable_plans(&conn)?;
    // Pages are read from a mapping of the file instead of copied by pread(2) into each
    // connection's own page cache (2 MB by default, so a lookup at city scale missed it on
    // most pages): no copy, no heap, one copy of each page in the kernel's cache for every
    // reader. SQLite caps the size at its compile-time maximum (SQLITE_MAX_MMAP_SIZE,
    // `.cargo/config.toml`); past it, and for the WAL, pages are read as before.
    if mapping == Mapping::Whole {
        conn.pragma_update(None, "mmap_size", citydb_sqlite::MAP_WHOLE_FILE)
            .and_then(|()| conn.pragma_update(None, "cache_size", -8192))
            .map_err(storage)?;
    }
    Ok(conn)
}

/// Plans statements without looking at their bound values. Otherwise SQLite re-prepares a
/// cached statement on every run whose plan could depend on a parameter (any `LIMIT ?`): that
/// re-parsing was a fifth of the CPU of reading under load.
pub(crate) fn stable_plans(conn: &Connection) -> Result<(), ProjectionError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map(drop)
    .map_err(storage)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The readers map the whole file of a city: a projections file of the whole city is
    /// ~6.4 GB, and SQLite silently caps the mapping at SQLITE_MAX_MMAP_SIZE (2 GiB unless
    /// `.cargo/config.toml` raises it), past which every page is copied by pread(2).
    #[test]
    fn readers_map_a_whole_city_file() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("projections.db");
        Connection::open(&path)
            .and_then(|c| c.execute_batch("CREATE TABLE t(x)"))
            .expect("a database file");
        let reader = open_reader(&path, Mapping::Whole).expect("a reader");
        let mapped: i64 = reader
            .query_row("PRAGMA mmap_size", [], |r| r.get(0))
            .expect("the mapping's size");
        assert!(
            mapped >= 16 << 30,
            "readers map {mapped} bytes of the file; a whole city's needs ~6.4 GB"
        );
        let copying = open_reader(&path, Mapping::None).expect("a reader");
        let unmapped: i64 = copying
            .query_row("PRAGMA mmap_size", [], |r| r.get(0))
            .expect("the mapping's size");
        assert_eq!(unmapped, 0, "a one-pass reader maps nothing");
    }
}
