//! Word triples of citizens' folded names: the index that answers a name search's tier 3 (the
//! folded words anywhere, the last one a prefix) by reading the names that match, instead of
//! intersecting FTS5 doclists.
//!
//! # Why
//! FTS5 intersects doclists by leapfrogging, and a seek inside a doclist page is a linear walk.
//! So `"duong" "van" "p"*` walks most of the doclists of `van` and of `p*` — O(the rows of the
//! common words) — to find the twenty names that hold all three. That is what every
//! "family middle g" query pays when its prefix range does not fill a page: 1–5 ms a query at
//! 1/10 of the city, ~14 ms at the whole city (docs/benchmarks.md).
//!
//! # The table
//! For each citizen whose folded key is ASCII and has at most [`MAX_WORDS`] distinct words, one
//! row `(pair, word, seq)` for each pair of distinct words `a < b` (`pair` = `"a b"`) and each
//! third distinct word `word` of the name: 3 rows for a three-word name, 12 for four. Every
//! other citizen has one *unindexed* row `('', '', seq)`. The key `(pair, word, seq)` is the
//! whole row (`WITHOUT ROWID`); the table exists with FTS5 only (its unindexed rows are checked
//! with FTS5).
//!
//! # The invariant
//! A query with two distinct whole words `x < y` and a last-word prefix `p` that neither `x`
//! nor `y` starts with reads the rows `pair = "x y"` with `word` in `[p, p_end)`, plus the
//! unindexed rows. **Every citizen whose folded words match the FTS5 expression
//! `"x" "y" … "p"*` has one of those rows**: a matching name holds `x`, `y` and a word starting
//! with `p`, which is neither `x` nor `y`, so it is a third distinct word — if the name's words
//! are the ones FTS5 sees. For ASCII text they are: FTS5's `unicode61` tokenizer splits ASCII on
//! everything but letters and digits and lowercases it, as [`crate::search::tokens`] does on a
//! folded (lowercased) key. Outside ASCII the two could disagree, so such names are unindexed
//! and checked with FTS5 itself. A name can hold two words in the range (`phuc`, `phong`): the
//! tier reads `DISTINCT` seqs. Names with more than two distinct whole words in the query, and
//! unindexed rows, are checked with the FTS5 expression (a rowid seek per word), so the tier
//! returns exactly the FTS5 tier's rows, in the same order (by `seq`).
//!
//! A query the triples cannot serve (fewer than two distinct whole words, or a whole word that
//! starts with the prefix) keeps the FTS5 tier.
//!
//! A rename deletes the rows [`rows`] gives for the old folded key, so whatever changes what
//! `rows` returns (the ASCII rule, [`MAX_WORDS`], the tokenizer) needs a new projections schema
//! version: every file is then rebuilt with the new rule, and no row of the old one is left.

use std::collections::{BTreeSet, HashMap};

use rusqlite::Connection;

use crate::error::{ProjectionError, storage};
use crate::search::words;

/// The table's name.
pub(crate) const TABLE: &str = "citizen_name_triples";

/// Distinct words past which a name is unindexed: 8 words make 28 pairs × 6 = 168 rows; a
/// hostile name of 50 words would make 58,800.
pub(crate) const MAX_WORDS: usize = 8;

/// `WITHOUT ROWID`: the key is the row, so the table is its own index (one B-tree written, not
/// a table and an index).
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS citizen_name_triples (
    pair TEXT NOT NULL,    -- two distinct folded words of the name, a < b, as 'a b'; '' = unindexed
    word TEXT NOT NULL,    -- a third distinct folded word of the name; '' = unindexed
    seq  INTEGER NOT NULL, -- = citizens.seq
    PRIMARY KEY (pair, word, seq)
) WITHOUT ROWID;";

/// The distinct words of a folded name key, sorted; `None` when the name is unindexed.
fn indexed_words(folded: &str) -> Option<Vec<&str>> {
    if !folded.is_ascii() {
        return None;
    }
    let mut words: Vec<&str> = words(folded).collect();
    words.sort_unstable();
    words.dedup();
    (words.len() <= MAX_WORDS).then_some(words)
}

/// Calls `f(a, b, word)` for each pair of distinct words `a < b` and each third word of
/// `words` (distinct and sorted; as text, or as numbers in the same order).
fn each_triple<T: Copy>(words: &[T], mut f: impl FnMut(T, T, T)) {
    for (i, a) in words.iter().enumerate() {
        for (j, b) in words.iter().enumerate().skip(i + 1) {
            for (k, word) in words.iter().enumerate() {
                if k != i && k != j {
                    f(*a, *b, *word);
                }
            }
        }
    }
}

/// The `(pair, word)` rows of a folded name key (see the module docs); `('', '')` alone when
/// the name is unindexed.
pub(crate) fn rows(folded: &str) -> Vec<(String, String)> {
    let Some(words) = indexed_words(folded) else {
        return vec![(String::new(), String::new())];
    };
    let mut out = Vec::new();
    each_triple(&words, |a, b, word| {
        out.push((format!("{a} {b}"), word.to_owned()));
    });
    out
}

/// Creates the table.
pub(crate) fn create(conn: &Connection) -> Result<(), ProjectionError> {
    conn.execute_batch(CREATE_TABLE).map_err(storage)
}

/// Replaces citizen `seq`'s rows: those of `before` (its folded key as last indexed, if it
/// was) by those of `folded`.
pub(crate) fn replace(
    tx: &Connection,
    seq: i64,
    before: Option<&str>,
    folded: &str,
) -> Result<(), ProjectionError> {
    if let Some(before) = before {
        let mut delete = tx
            .prepare_cached(
                "DELETE FROM citizen_name_triples WHERE pair = ?1 AND word = ?2 AND seq = ?3",
            )
            .map_err(storage)?;
        for (pair, word) in rows(before) {
            delete
                .execute(rusqlite::params![pair, word, seq])
                .map_err(storage)?;
        }
    }
    insert(tx, seq, folded)
}

/// One row, for the per-batch path and the bulk fill alike.
const INSERT: &str = "INSERT INTO citizen_name_triples(pair, word, seq) VALUES (?1, ?2, ?3)";

fn insert(conn: &Connection, seq: i64, folded: &str) -> Result<(), ProjectionError> {
    let mut insert = conn.prepare_cached(INSERT).map_err(storage)?;
    for (pair, word) in rows(folded) {
        insert
            .execute(rusqlite::params![pair, word, seq])
            .map_err(storage)?;
    }
    Ok(())
}

/// Empties the table (the bulk path refills it with [`fill`]).
pub(crate) fn clear(conn: &Connection) -> Result<(), ProjectionError> {
    conn.execute_batch("DELETE FROM citizen_name_triples;")
        .map_err(storage)
}

/// Fills the (empty) table from `citizens.name_folded`. The rows are made in memory as word
/// numbers (24 bytes a row: ~170 MB for the whole city's ~7 M), sorted by the key and
/// inserted in that order, so the B-tree is written left to right rather than at a random
/// place per row. `"a b"` strings sort as `(a, b)` does: a space sorts before every letter
/// and digit, and words hold none.
pub(crate) fn fill(conn: &Connection) -> Result<(), ProjectionError> {
    let mut numbers: HashMap<String, u32> = HashMap::new();
    let mut triples: Vec<([u32; 3], i64)> = Vec::new();
    let mut unindexed: Vec<i64> = Vec::new();
    {
        let mut names = conn
            .prepare("SELECT seq, name_folded FROM citizens ORDER BY seq")
            .map_err(storage)?;
        let mut rows_of = names.query([]).map_err(storage)?;
        while let Some(row) = rows_of.next().map_err(storage)? {
            let seq: i64 = row.get(0).map_err(storage)?;
            let folded = row.get_ref(1).and_then(|v| v.as_str().map_err(Into::into));
            let Some(words) = indexed_words(folded.map_err(storage)?) else {
                unindexed.push(seq);
                continue;
            };
            let mut number = |word: &str| match numbers.get(word) {
                Some(n) => *n,
                None => {
                    let n = u32::try_from(numbers.len()).unwrap_or(u32::MAX);
                    numbers.insert(word.to_owned(), n);
                    n
                }
            };
            let numbered: Vec<u32> = words.iter().map(|w| number(w)).collect();
            each_triple(&numbered, |a, b, word| triples.push(([a, b, word], seq)));
        }
    }
    // Renumber the words in their text order, so that sorting numbers sorts the key.
    let mut by_text: Vec<(&str, u32)> = numbers.iter().map(|(w, n)| (w.as_str(), *n)).collect();
    by_text.sort_unstable();
    let mut rank = vec![0u32; by_text.len()];
    for (r, (_, n)) in by_text.iter().enumerate() {
        rank[*n as usize] = u32::try_from(r).unwrap_or(u32::MAX);
    }
    for (words, _) in &mut triples {
        for w in words.iter_mut() {
            *w = rank[*w as usize];
        }
    }
    triples.sort_unstable();
    let mut insert = conn.prepare(INSERT).map_err(storage)?;
    for seq in unindexed {
        insert
            .execute(rusqlite::params!["", "", seq])
            .map_err(storage)?;
    }
    let mut pair = String::new();
    for ([a, b, word], seq) in triples {
        let text = |r: u32| by_text[r as usize].0;
        pair.clear();
        pair.push_str(text(a));
        pair.push(' ');
        pair.push_str(text(b));
        insert
            .execute(rusqlite::params![pair, text(word), seq])
            .map_err(storage)?;
    }
    Ok(())
}

/// What tier 3 reads from the table for a query (see the module docs).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Range {
    /// The two whole words, `"x y"`.
    pub(crate) pair: String,
    /// The last word, a prefix: the range of `word` starts here…
    pub(crate) start: String,
    /// …and ends before this (`None`: at the end of the order).
    pub(crate) end: Option<String>,
    /// Whether every row must also match the FTS5 expression (the query has whole words beyond
    /// the pair); otherwise only unindexed rows must.
    pub(crate) check_all: bool,
}

/// The range of the table that holds every name matching the folded `words`, the last one a
/// prefix; `None` when the triples cannot serve the query. `prefix_end` is the search's own.
pub(crate) fn range(
    words: &[String],
    prefix_end: impl Fn(&str) -> Option<String>,
) -> Option<Range> {
    let (prefix, whole) = words.split_last()?;
    let whole: BTreeSet<&str> = whole.iter().map(String::as_str).collect();
    if whole.iter().any(|w| w.starts_with(prefix.as_str())) {
        return None;
    }
    let mut chosen = whole.iter();
    let (x, y) = (chosen.next()?, chosen.next()?);
    Some(Range {
        pair: format!("{x} {y}"),
        start: prefix.clone(),
        end: prefix_end(prefix),
        check_all: whole.len() > 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn a_three_word_name_has_three_rows_and_four_twelve() {
        let mut three = rows("duong van phuc");
        three.sort();
        assert_eq!(
            three,
            [
                ("duong phuc".to_owned(), "van".to_owned()),
                ("duong van".to_owned(), "phuc".to_owned()),
                ("phuc van".to_owned(), "duong".to_owned()),
            ]
        );
        assert_eq!(rows("nguyen thi thu ha").len(), 12);
        // Repeated words count once: two distinct words make no triple.
        assert!(rows("nguyen nguyen an").is_empty());
    }

    #[test]
    fn names_the_triples_cannot_hold_are_unindexed() {
        let unindexed = vec![(String::new(), String::new())];
        assert_eq!(rows("ngô 吴 an"), unindexed);
        let long: Vec<String> = (0..=MAX_WORDS).map(|i| format!("w{i}")).collect();
        assert_eq!(rows(&long.join(" ")), unindexed);
        let most: Vec<String> = (0..MAX_WORDS).map(|i| format!("w{i}")).collect();
        assert_eq!(rows(&most.join(" ")).len(), 28 * 6);
    }

    /// The bulk path's fill writes, in key order, exactly the rows the row-by-row path writes.
    #[test]
    fn a_fill_writes_every_names_rows() {
        let conn = Connection::open_in_memory().expect("open");
        crate::schema::reset(&conn, crate::schema::SearchFlavour::Fts5).expect("schema");
        let names = [
            "nguyen van an",
            "van nguyen anh thu",
            "ngô 吴 an",
            "a b c d e f g h i",
            "le le van",
            "tran",
            "an-binh van chi",
        ];
        let mut want = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let seq = 10 * (i as i64 + 1);
            conn.execute(
                "INSERT INTO citizens(seq, pin, name_exact, name_folded, birth_year, status)
                 VALUES (?1, ?2, ?3, ?3, 1990, 'alive')",
                rusqlite::params![seq, format!("{seq:012}"), name],
            )
            .expect("citizen");
            want.extend(rows(name).into_iter().map(|(p, w)| (p, w, seq)));
        }
        want.sort();
        fill(&conn).expect("fill");
        let mut stmt = conn
            .prepare("SELECT pair, word, seq FROM citizen_name_triples")
            .expect("read");
        let got: Vec<(String, String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(got, want);
        assert_eq!(got.iter().filter(|r| r.0.is_empty()).count(), 2, "{got:?}");
    }

    #[test]
    fn a_query_needs_two_whole_words_none_starting_with_the_prefix() {
        let end = |p: &str| Some(format!("{p}~"));
        assert_eq!(
            range(&words("van duong p"), end),
            Some(Range {
                pair: "duong van".into(),
                start: "p".into(),
                end: Some("p~".into()),
                check_all: false,
            })
        );
        assert!(range(&words("nguyen thi thu h"), end).is_some_and(|r| r.check_all));
        assert_eq!(range(&words("nguyen h"), end), None);
        assert_eq!(range(&words("nguyen nguyen h"), end), None);
        // `an` starts with `a`: a name whose only a-word is `an` has no row for it.
        assert_eq!(range(&words("van an a"), end), None);
        assert_eq!(range(&[], end), None);
    }
}
