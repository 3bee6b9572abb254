//! Searches: citizens and businesses by name and filters, parcels by filters, one keyset page at
//! a time. `lib.rs` runs them on tokio's blocking threads.
//!
//! # Order
//! A search walks one total order of *positions* `(tier, key, seq)`: `seq` is the log position
//! of the record's first event (unique, fixed for the record's lifetime, larger for newer
//! records); `key` is the name key a tier is ordered by, or empty in a tier ordered by `seq`
//! alone. A name search has these tiers, each holding only records that no earlier tier holds:
//!
//! 0. the exact key (diacritics and all, tone placement canonical) starts with the query's
//!    exact key as whole words — ordered by `(name_exact, seq)`;
//! 1. the folded key (diacritics and `đ` folded, in Rust: SQLite's `remove_diacritics` leaves
//!    `đ` alone) starts with the query's folded key, the last word as a prefix — ordered by
//!    `(name_folded, seq)`;
//! 2. (FTS5 only) every exact query word is a word of the name, anywhere — by `seq`;
//! 3. (FTS5 only) every folded query word is a word of the name, anywhere, the last one as a
//!    prefix — by `seq`. Read from the citizens' word triples (`name_triples`) when the query
//!    has two whole words the prefix does not start, from the FTS5 doclists otherwise (without
//!    the prefix when a whole word starts with it: that word implies it, `folded_expression`).
//!
//! Tiers 0 and 1 are ranges of the B-tree indexes `(name_exact, seq)` and
//! `(name_folded, seq, name_exact)` ("family middle given-prefix", as Vietnamese write names): a
//! page seeks to its start and reads only its own rows, O(log n + page), however many people
//! share the family name, and without a filter only the index (the folded tier's test that a
//! row is not the exact tier's reads `name_exact` from the index, not the table). Tiers 2
//! and 3 are the FTS5 doclists of the exact and the folded words (two tables, see
//! `schema::FTS_TABLES`), for the other word orders (a given name alone, words not at the
//! start); they are read only once the ranges are exhausted. Filters (commune, status, birth
//! years) are tested on the rows of a range, so a filter that few of a name's rows pass reads
//! more of it, as any index-ordered scan does. A search without a name, and a parcel search,
//! is one tier ordered by `seq`.
//!
//! # Cursors and the invariant
//! A cursor is the position of the last row of a page, not a row or an offset; the next page is
//! the rows whose current position is strictly after it. Hence, between any two pages, whatever
//! is added, removed or renamed: every record whose position did not change and that matched
//! all along is returned exactly once, in order — never repeated, never skipped. A record added
//! or renamed during the walk shows up (once) when its new position lies after the cursor and
//! not otherwise; a record renamed from behind the cursor to ahead of it is returned at both
//! names (its position is new), which no keyset over a mutable name can avoid.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Instant;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};

use crate::budget::Budget;
use crate::work::Work;

use citydb_domain::business::Business;
use citydb_domain::citizen::{Citizen, Summary};
use citydb_domain::parcel::Parcel;
use citydb_domain::{exact_key, folded_key};

use crate::apply::to_i64;
use crate::error::{ProjectionError, storage};
use crate::name_triples;
use crate::query::{
    BusinessFilter, CitizenFilter, Kind, MAX_NAME_TOKENS, MAX_PAGE_SIZE, ParcelFilter,
    RecordsBySeq, Summaries, Versioned, narrow, parcel_status_column, text, text_in,
};
use crate::schema::{BUSINESS_WORDS, CITIZEN_WORDS, NameWords, SearchFlavour};

/// Cursor format version: 2 carries the key of keyed tiers (version 1, `(tier, seq)` of the
/// FTS5-only search, is refused: its tiers meant something else).
const CURSOR_VERSION: u8 = 2;

/// Highest tier number a search has.
const LAST_TIER: u8 = 3;

/// An opaque keyset pagination cursor: a position `(tier, key, seq)` in a search's order.
/// Stable across inserts and renames; valid for the search that issued it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cursor(String);

/// A position in a search's order (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Position {
    tier: u8,
    key: String,
    seq: i64,
}

impl Cursor {
    fn new(at: &Position) -> Self {
        let mut bytes = vec![b'c', CURSOR_VERSION, at.tier];
        bytes.extend_from_slice(&at.seq.to_be_bytes());
        bytes.extend_from_slice(at.key.as_bytes());
        // One buffer for the whole cursor: a `format!` per byte made a page's twenty cursors
        // 12 % of a name search's instructions (`hex::encode` collects `char`s, 2 % more).
        let mut text = vec![0; 2 * bytes.len()];
        // The lengths match and hex digits are ASCII: neither step fails (an empty cursor
        // would be refused by `decode`).
        Cursor(
            hex::encode_to_slice(&bytes, &mut text)
                .ok()
                .and_then(|()| String::from_utf8(text).ok())
                .unwrap_or_default(),
        )
    }

    fn decode(&self) -> Result<Position, ProjectionError> {
        let text = self.0.as_bytes();
        if text.len() < 22 || !text.len().is_multiple_of(2) {
            return Err(ProjectionError::InvalidCursor);
        }
        let bytes = hex::decode(text).map_err(|_| ProjectionError::InvalidCursor)?;
        if bytes[0] != b'c' || bytes[1] != CURSOR_VERSION || bytes[2] > LAST_TIER {
            return Err(ProjectionError::InvalidCursor);
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[3..11]);
        let key =
            String::from_utf8(bytes[11..].to_vec()).map_err(|_| ProjectionError::InvalidCursor)?;
        Ok(Position {
            tier: bytes[2],
            key,
            seq: i64::from_be_bytes(seq),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A cursor at `(tier, key, seq)` in another keyset order of this crate (the residence
    /// starts' `(kind, since, seq)`), in the same opaque format.
    pub(crate) fn at(tier: u8, key: &str, seq: i64) -> Self {
        Cursor::new(&Position {
            tier,
            key: key.to_owned(),
            seq,
        })
    }

    /// The `(tier, key, seq)` a cursor holds; the caller checks that they fit its order.
    pub(crate) fn parts(&self) -> Result<(u8, String, i64), ProjectionError> {
        let at = self.decode()?;
        Ok((at.tier, at.key, at.seq))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Cursor {
    type Err = ProjectionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let cursor = Cursor(s.to_owned());
        cursor.decode()?;
        Ok(cursor)
    }
}

/// One row of a page, with the cursor that resumes after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge<T> {
    pub cursor: Cursor,
    pub node: T,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub edges: Vec<Edge<T>>,
    pub has_next_page: bool,
}

impl<T> Page<T> {
    pub fn end_cursor(&self) -> Option<&Cursor> {
        self.edges.last().map(|e| &e.cursor)
    }
}

/// One tier of a search: a FROM clause, its order, and conditions.
///
/// Its SQL is made of `'static` text (the kinds' fragments are made once, [`NameSql`]) and
/// written into one string per statement: a `format!` per condition and per statement was
/// ~3 % of a name search's instructions (docs/benchmarks.md, "A search's SQL from fixed
/// text"). Only the parameters are the request's.
struct Tier {
    from: &'static str,
    /// The name key column the tier is ordered by before `seq` (an index `(column, seq)`
    /// exists), with the range of keys it reads: from `start` (inclusive) to `end` (exclusive;
    /// `None`: to the last key). `None`: the tier is ordered by `seq` alone.
    key: Option<KeyRange>,
    seq: &'static str,
    /// Whether a row can come twice from `from` (a name with two words in the triples' range):
    /// the statement then reads `DISTINCT` rows.
    distinct: bool,
    /// Whether a full-text table drives the tier: its index merges the query words' doclists
    /// inside one VM step, work a [`Budget`] cannot meter.
    full_text: bool,
    conditions: Vec<&'static str>,
    params: Vec<SqlValue>,
}

struct KeyRange {
    column: &'static str,
    start: String,
    end: Option<String>,
}

/// A filter on a column of the kind's table (`k`): its condition in a tier ordered by `seq`,
/// and in a keyed tier (see [`Tier::filter`]).
struct Filter {
    plain: &'static str,
    keyed: &'static str,
}

/// A [`Filter`] on `condition`, its keyed form the same with `+` before the column.
macro_rules! filter {
    ($condition:literal) => {
        Filter {
            plain: $condition,
            keyed: concat!("+", $condition),
        }
    };
}

const COMMUNE: Filter = filter!("k.commune = ?");
const STATUS: Filter = filter!("k.status = ?");
const BORN_FROM: Filter = filter!("k.birth_year >= ?");
const BORN_TO: Filter = filter!("k.birth_year <= ?");

/// One statement of a tier: its SQL, and its parameters (the tier's, then the start's and the
/// limit).
struct Statement<'t> {
    sql: String,
    tier: &'t [SqlValue],
    start: Vec<SqlValue>,
}

impl Statement<'_> {
    fn params(&self) -> impl Iterator<Item = &SqlValue> {
        self.tier.iter().chain(&self.start)
    }
}

impl Tier {
    fn new(from: &'static str, seq: &'static str) -> Self {
        Tier {
            from,
            key: None,
            seq,
            distinct: false,
            full_text: false,
            conditions: Vec::new(),
            params: Vec::new(),
        }
    }

    fn condition(&mut self, sql: &'static str, params: impl IntoIterator<Item = SqlValue>) {
        self.conditions.push(sql);
        self.params.extend(params);
    }

    /// Adds a filter. In a keyed tier the column is written `+column`, which no index can
    /// serve: the planner then reads the name index's range (in the order the tier returns)
    /// rather than, say, the commune index and a sort of its rows. Not `INDEXED BY`: a search
    /// during a bulk load, which drops the indexes, must still plan.
    fn filter(&mut self, filter: &Filter, value: SqlValue) {
        let sql = if self.key.is_some() {
            filter.keyed
        } else {
            filter.plain
        };
        self.condition(sql, [value]);
    }

    /// Where this tier's reads start when resuming after `after` (`None`: from its start), in
    /// order. A keyed tier resumes with two index ranges: the rest of the cursor's key (that
    /// key, `seq` after the cursor's), then the keys after it. Two, not one row-value range
    /// `(key, seq) > (?, ?)`: SQLite seeks such a range on its first column only when the
    /// second is the rowid, which would read every earlier row of a shared name (thousands of
    /// "nguyen van hung") before the page.
    fn reads<'a>(&self, after: Option<&'a Position>) -> Vec<Start<'a>> {
        match (&self.key, after) {
            (_, None) => vec![Start::First],
            (None, Some(at)) => vec![Start::Within("", at.seq)],
            (Some(range), Some(at)) => {
                if at.key < range.start {
                    vec![Start::First]
                } else if range.end.as_ref().is_some_and(|end| at.key >= *end) {
                    Vec::new()
                } else {
                    vec![Start::Within(&at.key, at.seq), Start::PastKey(&at.key)]
                }
            }
        }
    }

    /// The statement reading this tier's next `want` rows from `start`. Keyed tiers select
    /// `(seq, key)`, others `(seq, '')`.
    fn statement(&self, start: &Start<'_>, want: usize) -> Statement<'_> {
        let mut sql = String::with_capacity(512);
        sql.push_str("SELECT ");
        if self.distinct {
            sql.push_str("DISTINCT ");
        }
        sql.push_str(self.seq);
        sql.push_str(", ");
        sql.push_str(self.key.as_ref().map_or("''", |range| range.column));
        sql.push_str(" FROM ");
        sql.push_str(self.from);
        sql.push_str(" WHERE ");
        for condition in &self.conditions {
            sql.push_str(condition);
            sql.push_str(" AND ");
        }
        let mut params = Vec::with_capacity(4);
        match &self.key {
            Some(range) => {
                let column = range.column;
                match start {
                    Start::Within(key, seq) => {
                        push_all(&mut sql, &[column, " = ? AND ", self.seq, " > ?"]);
                        params.extend([text(*key), SqlValue::Integer(*seq)]);
                    }
                    Start::First | Start::PastKey(_) => {
                        let (op, key) = match start {
                            Start::PastKey(key) => (" > ?", *key),
                            _ => (" >= ?", range.start.as_str()),
                        };
                        push_all(&mut sql, &[column, op]);
                        params.push(text(key));
                        if let Some(end) = &range.end {
                            push_all(&mut sql, &[" AND ", column, " < ?"]);
                            params.push(text(end.clone()));
                        }
                    }
                }
                push_all(&mut sql, &[" ORDER BY ", column, ", ", self.seq]);
            }
            None => {
                let seq = match start {
                    Start::Within(_, seq) => *seq,
                    Start::First | Start::PastKey(_) => i64::MIN,
                };
                push_all(&mut sql, &[self.seq, " > ? ORDER BY ", self.seq]);
                params.push(SqlValue::Integer(seq));
            }
        }
        sql.push_str(" LIMIT ?");
        params.push(SqlValue::Integer(to_i64(want as u64)));
        Statement {
            sql,
            tier: &self.params,
            start: params,
        }
    }
}

fn push_all(sql: &mut String, parts: &[&str]) {
    for part in parts {
        sql.push_str(part);
    }
}

/// Where one statement of a tier starts reading (see [`Tier::reads`]).
enum Start<'a> {
    /// At the tier's first row.
    First,
    /// After `seq` among the rows whose key is the given one (a keyed tier), or after `seq`
    /// (a tier ordered by `seq`, key empty).
    Within(&'a str, i64),
    /// At the first key after the given one (a keyed tier).
    PastKey(&'a str),
}

/// Splits a key into the tokens the FTS5 `unicode61` tokenizer would see (exactly so for
/// ASCII text, which `name_triples` relies on).
pub(crate) fn tokens(key: &str) -> Vec<String> {
    words(key).map(str::to_owned).collect()
}

/// The tokens of [`tokens`], borrowed.
pub(crate) fn words(key: &str) -> impl Iterator<Item = &str> {
    key.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
}

/// An FTS5 expression matching every token, the last one as a prefix if asked. Tokens are
/// quoted, so nothing a user types is read as FTS5 syntax.
fn fts_expression(tokens: &[String], prefix_last: bool) -> String {
    let mut expression = String::with_capacity(tokens.iter().map(|t| t.len() + 4).sum());
    for (i, token) in tokens.iter().enumerate() {
        if i > 0 {
            expression.push(' ');
        }
        expression.push('"');
        for part in token.split('"').enumerate() {
            if part.0 > 0 {
                expression.push_str("\"\"");
            }
            expression.push_str(part.1);
        }
        expression.push('"');
        if prefix_last && i + 1 == tokens.len() {
            expression.push('*');
        }
    }
    expression
}

/// [`fts_expression`] of a name's folded words, the last one a prefix — without that prefix
/// when another query word starts with it (`to duy t`, `trinh duc t`): a name that holds that
/// word holds a word starting with the prefix, so `"to" "duy" "t"*` and `"to" "duy"` match the
/// same names, and the second does not merge the doclists of every word starting with `t`
/// (0.4–1.5 ms a page at 1/10 with one client, most of the slowest pages of a drawn (b1);
/// docs/benchmarks.md, 2026-12-06). Only for ASCII words, which FTS5's `unicode61` tokenizer
/// reads as [`tokens`] does (see `name_triples`); a prefix alone is kept.
fn folded_expression(words: &[String]) -> String {
    if let Some((prefix, whole)) = words.split_last()
        && words.iter().all(|w| w.is_ascii())
        && whole.iter().any(|w| w.starts_with(prefix.as_str()))
    {
        return fts_expression(whole, false);
    }
    fts_expression(words, true)
}

/// The least string greater than every string that starts with `prefix` (UTF-8 byte order is
/// code point order, which is SQLite's BINARY collation): the last character that can be
/// incremented, incremented, and what follows it dropped. `None` when there is none (every
/// string starting with `prefix` is then at the end of the order).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// A kind's name tiers' SQL that names its tables, made once per kind ([`name_sql`]).
struct NameSql {
    /// `<kind> k`.
    kind: String,
    /// Tier 2: the exact words' table joined to the kind's, its `rowid`, its match.
    exact_words: String,
    exact_words_seq: String,
    exact_words_match: String,
    /// Tier 3 from the FTS5 doclists: the folded words' table joined, its `rowid`, its match.
    folded_words: String,
    folded_words_seq: String,
    folded_words_match: String,
    /// Tier 3 from the triples: their range drives (`CROSS JOIN`), then the row must match
    /// the folded words — every row (`check_all`), or only those the triples do not index.
    triples: String,
    triples_match_all: String,
    triples_match_unindexed: String,
    /// Not in tier 2, tested last in tier 3 (the dearest test): the row's exact words, looked
    /// up by its rowid, a seek in each query word's doclist.
    not_exact_words: String,
}

impl NameSql {
    fn new(tables: &NameWords) -> Self {
        let NameWords {
            kind,
            folded,
            exact,
            ..
        } = *tables;
        let folded_match = format!(
            "EXISTS (SELECT 1 FROM {folded} WHERE {folded} MATCH ? AND {folded}.rowid = k.seq)"
        );
        NameSql {
            kind: format!("{kind} k"),
            exact_words: format!("{exact} JOIN {kind} k ON k.seq = {exact}.rowid"),
            exact_words_seq: format!("{exact}.rowid"),
            exact_words_match: format!("{exact} MATCH ?"),
            folded_words: format!("{folded} JOIN {kind} k ON k.seq = {folded}.rowid"),
            folded_words_seq: format!("{folded}.rowid"),
            folded_words_match: format!("{folded} MATCH ?"),
            triples: format!(
                "{triples} t CROSS JOIN {kind} k ON k.seq = t.seq",
                triples = name_triples::TABLE
            ),
            triples_match_unindexed: format!("(t.pair <> '' OR {folded_match})"),
            triples_match_all: folded_match,
            not_exact_words: format!(
                "NOT EXISTS (SELECT 1 FROM {exact} WHERE {exact} MATCH ? AND {exact}.rowid = k.seq)"
            ),
        }
    }
}

/// The SQL of `tables`' kind, made on first use.
fn name_sql(tables: &NameWords) -> &'static NameSql {
    static CITIZENS: LazyLock<NameSql> = LazyLock::new(|| NameSql::new(&CITIZEN_WORDS));
    static BUSINESSES: LazyLock<NameSql> = LazyLock::new(|| NameSql::new(&BUSINESS_WORDS));
    if tables.kind == BUSINESS_WORDS.kind {
        &BUSINESSES
    } else {
        &CITIZENS
    }
}

/// Tier 0's own test: the exact key is the query's, or starts with it and a space (inside
/// the tier's key range); `+`: a condition, not another way into the index (an OR of two
/// lookups, then a sort).
const IN_EXACT_KEYED: &str = "(+k.name_exact = ? OR +k.name_exact >= ?)";
/// Not in tier 0: the exact key is not the query's and does not start with it and a space.
/// '!' follows ' ' in code point order, so [exact, exact + "!") holds those and, in between,
/// only keys with a control character after the query, which the condition drops.
const NOT_IN_EXACT: &str = "NOT (k.name_exact = ? OR (k.name_exact >= ? AND k.name_exact < ?))";
/// Not in tier 1: the folded key does not start with the query's (a range with an end, or
/// open when no string follows every string starting with the query).
const NOT_IN_FOLDED: &str = "NOT (k.name_folded >= ? AND k.name_folded < ?)";
const NOT_IN_FOLDED_OPEN: &str = "NOT k.name_folded >= ?";
/// The triples' range: the names of fewer words than a triple (`pair` empty), and the pair's
/// rows whose third word starts with the prefix (with an end, or open).
const TRIPLES_RANGE: &str = "(t.pair = '' OR (t.pair = ? AND t.word >= ? AND t.word < ?))";
const TRIPLES_RANGE_OPEN: &str = "(t.pair = '' OR (t.pair = ? AND t.word >= ?))";

/// The name tiers of a search (see the module docs). `None` when the name has no searchable
/// token (then the name does not filter).
fn name_tiers(
    flavour: SearchFlavour,
    tables: &NameWords,
    name: &str,
) -> Result<Option<Vec<Tier>>, ProjectionError> {
    let (exact, folded) = (exact_key(name), folded_key(name));
    let (exact_words, folded_words) = (tokens(&exact), tokens(&folded));
    if folded_words.is_empty() || exact_words.is_empty() {
        return Ok(None);
    }
    if folded_words.len() > MAX_NAME_TOKENS {
        return Err(ProjectionError::InvalidQuery(format!(
            "a name search takes at most {MAX_NAME_TOKENS} words"
        )));
    }
    let sql = name_sql(tables);
    let words_end = format!("{exact}!");
    let words_start = format!("{exact} ");
    let not_in_exact = |tier: &mut Tier| {
        tier.condition(
            NOT_IN_EXACT,
            [
                text(exact.clone()),
                text(words_start.clone()),
                text(words_end.clone()),
            ],
        );
    };
    let folded_end = prefix_end(&folded);
    let not_in_folded = |tier: &mut Tier| match &folded_end {
        Some(end) => tier.condition(NOT_IN_FOLDED, [text(folded.clone()), text(end.clone())]),
        None => tier.condition(NOT_IN_FOLDED_OPEN, [text(folded.clone())]),
    };

    let mut by_exact = Tier::new(&sql.kind, "k.seq");
    by_exact.key = Some(KeyRange {
        column: "k.name_exact",
        start: exact.clone(),
        end: Some(words_end.clone()),
    });
    by_exact.condition(
        IN_EXACT_KEYED,
        [text(exact.clone()), text(words_start.clone())],
    );

    let mut by_folded = Tier::new(&sql.kind, "k.seq");
    by_folded.key = Some(KeyRange {
        column: "k.name_folded",
        start: folded.clone(),
        end: folded_end.clone(),
    });
    not_in_exact(&mut by_folded);

    let mut tiers = vec![by_exact, by_folded];
    if flavour == SearchFlavour::Fts5 {
        let exact_expr = fts_expression(&exact_words, false);
        let mut anywhere_exact = Tier::new(&sql.exact_words, &sql.exact_words_seq);
        anywhere_exact.condition(&sql.exact_words_match, [text(exact_expr.clone())]);
        anywhere_exact.full_text = true;
        let folded_expr = folded_expression(&folded_words);
        let triples = if tables.triples {
            name_triples::range(&folded_words, prefix_end)
        } else {
            None
        };
        let mut anywhere_folded = match triples {
            // The names holding the words, read from the triples' range (see `name_triples`):
            // its rows, not the FTS5 doclists of every word.
            Some(range) => {
                let mut tier = Tier::new(&sql.triples, "t.seq");
                tier.distinct = true;
                match range.end {
                    Some(end) => tier.condition(
                        TRIPLES_RANGE,
                        [text(range.pair), text(range.start), text(end)],
                    ),
                    None => {
                        tier.condition(TRIPLES_RANGE_OPEN, [text(range.pair), text(range.start)])
                    }
                }
                let matches = if range.check_all {
                    &sql.triples_match_all
                } else {
                    &sql.triples_match_unindexed
                };
                tier.condition(matches, [text(folded_expr)]);
                tier
            }
            None => {
                let mut tier = Tier::new(&sql.folded_words, &sql.folded_words_seq);
                tier.condition(&sql.folded_words_match, [text(folded_expr)]);
                tier.full_text = true;
                tier
            }
        };
        for tier in [&mut anywhere_exact, &mut anywhere_folded] {
            not_in_exact(tier);
            not_in_folded(tier);
        }
        anywhere_folded.condition(&sql.not_exact_words, [text(exact_expr)]);
        tiers.extend([anywhere_exact, anywhere_folded]);
    }
    Ok(Some(tiers))
}

/// The rows of a page, whether more follow, and what reading them cost.
struct PagePositions {
    rows: Vec<Position>,
    has_next_page: bool,
    work: Work,
}

/// Runs `sql` and appends its `(seq, key)` rows to `out` as positions of `tier`, adding what
/// it cost to `work`. Traced per statement (`search statement read`, with its time: FTS5 can
/// spend milliseconds inside one VM step, which the steps do not show) when TRACE is on for
/// this module; the clock is read only then.
fn read_rows(
    conn: &Connection,
    statement: &Statement<'_>,
    tier: u8,
    out: &mut Vec<Position>,
    work: &mut Work,
) -> Result<(), ProjectionError> {
    let sql = statement.sql.as_str();
    let mut stmt = conn.prepare_cached(sql).map_err(storage)?;
    Work::reset(&mut stmt);
    let traced = tracing::enabled!(tracing::Level::TRACE).then(|| (Instant::now(), out.len()));
    {
        let rows = stmt
            .query_map(params_from_iter(statement.params()), |r| {
                let key = text_in(r, 1)?.ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        1,
                        rusqlite::types::Type::Null,
                        "a search key is NULL".into(),
                    )
                })?;
                Ok((r.get::<_, i64>(0)?, key.to_owned()))
            })
            .map_err(storage)?;
        for row in rows {
            let (seq, key) = row.map_err(storage)?;
            out.push(Position { tier, key, seq });
        }
    }
    if let Some((started, before)) = traced {
        let mut this = Work::default();
        this.add(&stmt);
        // The statement's text has placeholders only: the searched name is not logged.
        tracing::trace!(
            tier,
            rows = out.len() - before,
            vm_steps = this.vm_steps,
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            sql,
            "search statement read"
        );
    }
    work.add(&stmt);
    Ok(())
}

/// Runs the tiers in order from the cursor, returning up to `first` positions and whether more
/// follow. A full-text tier asks `budget` first ([`Budget::unmetered`]).
fn page_positions(
    conn: &Connection,
    tiers: &[Tier],
    first: usize,
    after: Option<&Cursor>,
    budget: &Budget,
) -> Result<PagePositions, ProjectionError> {
    let first = first.min(MAX_PAGE_SIZE);
    let after = after.map(Cursor::decode).transpose()?;
    let mut out: Vec<Position> = Vec::with_capacity(first + 1);
    let mut work = Work::default();
    for (tier_no, tier) in tiers.iter().enumerate() {
        let tier_no = u8::try_from(tier_no).unwrap_or(u8::MAX);
        let resume = match &after {
            Some(at) if tier_no < at.tier => continue,
            Some(at) if tier_no == at.tier => Some(at),
            _ => None,
        };
        for start in tier.reads(resume) {
            let want = first + 1 - out.len();
            if want == 0 {
                break;
            }
            if tier.full_text {
                budget.unmetered()?;
            }
            let statement = tier.statement(&start, want);
            read_rows(conn, &statement, tier_no, &mut out, &mut work)?;
        }
    }
    let has_next_page = out.len() > first;
    out.truncate(first);
    Ok(PagePositions {
        rows: out,
        has_next_page,
        work,
    })
}

fn load_page<T: Kind>(
    conn: &Connection,
    positions: PagePositions,
) -> Result<Page<Versioned<T>>, ProjectionError> {
    let mut records = RecordsBySeq::new(conn)?;
    read_page(positions, |seq| records.read(seq)?.map(narrow).transpose())
}

/// Reads each row of a page with `read`, in the same transaction as the search (so the row
/// is there), with its cursor.
fn read_page<T>(
    positions: PagePositions,
    mut read: impl FnMut(i64) -> Result<Option<T>, ProjectionError>,
) -> Result<Page<T>, ProjectionError> {
    let work = positions.work;
    tracing::trace!(
        rows = positions.rows.len(),
        vm_steps = work.vm_steps,
        sorts = work.sorts,
        full_scan_steps = work.full_scan_steps,
        "search page read"
    );
    let mut edges = Vec::with_capacity(positions.rows.len());
    for at in positions.rows {
        let node = read(at.seq)?.ok_or_else(|| {
            ProjectionError::Corrupt(format!("index row {} has no record", at.seq))
        })?;
        edges.push(Edge {
            cursor: Cursor::new(&at),
            node,
        });
    }
    Ok(Page {
        edges,
        has_next_page: positions.has_next_page,
    })
}

/// The tiers a search of `tables` runs: its name tiers when a name is given, else one tier
/// over the whole table (a name with no searchable token searches nothing by name).
fn search_tiers(
    flavour: SearchFlavour,
    tables: &NameWords,
    name: Option<&str>,
) -> Result<Vec<Tier>, ProjectionError> {
    let named = match name {
        Some(name) => name_tiers(flavour, tables, name)?,
        None => None,
    };
    Ok(match named {
        Some(tiers) => tiers,
        None => vec![Tier::new(&name_sql(tables).kind, "k.seq")],
    })
}

/// The tiers of a citizen search, every filter added to each.
fn citizen_tiers(
    flavour: SearchFlavour,
    filter: &CitizenFilter,
) -> Result<Vec<Tier>, ProjectionError> {
    let mut tiers = search_tiers(flavour, &CITIZEN_WORDS, filter.name.as_deref())?;
    for t in &mut tiers {
        if let Some(unit) = filter.admin_unit {
            t.filter(&COMMUNE, text(unit.to_string()));
        }
        if let Some(status) = filter.status {
            t.filter(&STATUS, text(status.as_str()));
        }
        if let Some(from) = filter.birth_year_from {
            t.filter(&BORN_FROM, SqlValue::Integer(from.into()));
        }
        if let Some(to) = filter.birth_year_to {
            t.filter(&BORN_TO, SqlValue::Integer(to.into()));
        }
    }
    Ok(tiers)
}

pub(crate) fn search_citizens(
    conn: &Connection,
    flavour: SearchFlavour,
    filter: &CitizenFilter,
    first: usize,
    after: Option<&Cursor>,
    budget: &Budget,
) -> Result<Page<Versioned<Citizen>>, ProjectionError> {
    let tiers = citizen_tiers(flavour, filter)?;
    load_page(conn, page_positions(conn, &tiers, first, after, budget)?)
}

/// [`search_citizens`]' page, each citizen read as a [`Summary`] (`Summaries`):
/// the same rows in the same order, for a caller that shows nothing a summary lacks.
pub(crate) fn search_citizen_summaries(
    conn: &Connection,
    flavour: SearchFlavour,
    filter: &CitizenFilter,
    first: usize,
    after: Option<&Cursor>,
    budget: &Budget,
) -> Result<Page<Versioned<Summary>>, ProjectionError> {
    let tiers = citizen_tiers(flavour, filter)?;
    let positions = page_positions(conn, &tiers, first, after, budget)?;
    let mut summaries = Summaries::by_seq(conn)?;
    read_page(positions, |seq| summaries.read(seq))
}

pub(crate) fn search_businesses(
    conn: &Connection,
    flavour: SearchFlavour,
    filter: &BusinessFilter,
    first: usize,
    after: Option<&Cursor>,
    budget: &Budget,
) -> Result<Page<Versioned<Business>>, ProjectionError> {
    let mut tiers = search_tiers(flavour, &BUSINESS_WORDS, filter.name.as_deref())?;
    for t in &mut tiers {
        if let Some(unit) = filter.admin_unit {
            t.filter(&COMMUNE, text(unit.to_string()));
        }
        if let Some(status) = filter.status {
            t.filter(&STATUS, text(status.as_str()));
        }
    }
    load_page(conn, page_positions(conn, &tiers, first, after, budget)?)
}

pub(crate) fn search_parcels(
    conn: &Connection,
    filter: &ParcelFilter,
    first: usize,
    after: Option<&Cursor>,
    budget: &Budget,
) -> Result<Page<Versioned<Parcel>>, ProjectionError> {
    // Drive the scan from the land-use index when there is one to use: it yields seqs in order.
    let mut tier = match filter.land_use {
        Some(code) => {
            let mut t = Tier::new("parcel_land_use u JOIN parcels k ON k.seq = u.seq", "u.seq");
            t.condition("u.land_use = ?", [text(code.to_string())]);
            t
        }
        None => Tier::new("parcels k", "k.seq"),
    };
    if let Some(unit) = filter.admin_unit {
        tier.condition("k.commune = ?", [text(unit.to_string())]);
    }
    if let Some(status) = filter.status {
        tier.condition("k.status = ?", [text(parcel_status_column(status))]);
    }
    if let Some(holder) = filter.holder {
        tier.condition(
            "k.seq IN (SELECT r.seq FROM holdings h JOIN records r ON r.record_id = h.parcel_id
                       WHERE h.holder_id = ?)",
            [text(holder.to_string())],
        );
    }
    load_page(conn, page_positions(conn, &[tier], first, after, budget)?)
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
