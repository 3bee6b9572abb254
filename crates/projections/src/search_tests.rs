//! The search's order, cursors and cost, on name rows written straight into a fresh schema (the
//! projector's own writes are tested through the log in `tests/projections/search.rs`).

use super::*;
use crate::schema::reset;
use rusqlite::OptionalExtension;

const FAMILIES: [&str; 8] = [
    "Nguyễn", "Nguyễn", "Nguyễn", "Trần", "Lê", "Phạm", "Đặng", "Hoàng",
];
const MIDDLES: [&str; 4] = ["Văn", "Thị", "Hữu", "Văn"];
const GIVENS: [&str; 13] = [
    "Hùng", "Hải", "Hà", "Hiền", "Lan", "Minh", "Anh", "Hoà", "Hòa", "Đức", "Hien", "Nguyên",
    "Hoàng",
];

/// Citizen `i`'s name: spread over families, middles and givens so that `nguyen van h` is a
/// large share, with both tone placements, an unaccented given name, "Hoàng" (a folded
/// prefix of "Hoà"), and "Nguyên" as a given name (so `nguyen` also matches words that are
/// not the start).
fn name_of(i: usize) -> String {
    format!(
        "{} {} {}",
        FAMILIES[i % FAMILIES.len()],
        MIDDLES[(i / 8) % MIDDLES.len()],
        GIVENS[(i / 32) % GIVENS.len()]
    )
}

/// `n` citizens named by `name_of`, seq 10, 20, 30, …, in a fresh file of `flavour`.
fn city(flavour: SearchFlavour, n: usize) -> Connection {
    let conn = Connection::open_in_memory().expect("open");
    reset(&conn, flavour).expect("schema");
    let tx = conn.unchecked_transaction().expect("tx");
    for i in 0..n {
        add(&tx, flavour, 10 * (i as i64 + 1), &name_of(i));
    }
    tx.commit().expect("commit");
    conn
}

/// Writes citizen `seq`'s name rows as the projector does (`apply::store_citizen`): the keys
/// in `citizens`, the FTS5 row replaced.
fn add(conn: &Connection, flavour: SearchFlavour, seq: i64, name: &str) {
    let before: Option<String> = conn
        .query_row(
            "SELECT name_folded FROM citizens WHERE seq = ?1",
            [seq],
            |r| r.get(0),
        )
        .optional()
        .expect("citizen lookup");
    conn.execute(
        "INSERT OR REPLACE INTO citizens(seq, pin, name_exact, name_folded, commune, birth_year, status)
         VALUES (?1, ?2, ?3, ?4, '11311', 1990, 'alive')",
        rusqlite::params![seq, format!("{seq:012}"), exact_key(name), folded_key(name)],
    )
    .expect("citizen row");
    if flavour == SearchFlavour::Fts5 {
        CITIZEN_WORDS
            .replace(
                conn,
                seq,
                before.as_deref(),
                &folded_key(name),
                &exact_key(name),
            )
            .expect("fts rows");
    }
}

fn page(
    conn: &Connection,
    flavour: SearchFlavour,
    name: &str,
    first: usize,
    after: Option<&Cursor>,
) -> PagePositions {
    let filter = CitizenFilter {
        name: Some(name.to_owned()),
        ..CitizenFilter::default()
    };
    let tiers = citizen_tiers(flavour, &filter).expect("tiers");
    page_positions(conn, &tiers, first, after, &Budget::unbounded()).expect("page")
}

/// Every page of a search, `size` at a time, as `(tier, seq)`.
fn walk(conn: &Connection, flavour: SearchFlavour, name: &str, size: usize) -> Vec<(u8, i64)> {
    let mut out = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let p = page(conn, flavour, name, size, after.as_ref());
        assert!(p.rows.len() <= size);
        out.extend(p.rows.iter().map(|r| (r.tier, r.seq)));
        if !p.has_next_page {
            return out;
        }
        after = p.rows.last().map(Cursor::new);
    }
}

/// The order the module docs state, computed from the rows in Rust: the specification the
/// SQL must meet.
fn specified(conn: &Connection, flavour: SearchFlavour, name: &str) -> Vec<(u8, i64)> {
    let (e, f) = (exact_key(name), folded_key(name));
    let (e_words, f_words) = (tokens(&e), tokens(&f));
    let mut stmt = conn
        .prepare("SELECT seq, name_exact, name_folded FROM citizens")
        .expect("prepare");
    let rows: Vec<(i64, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    let holds = |words: &[String], name_words: &[String], prefix_last: bool| {
        words.iter().enumerate().all(|(i, w)| {
            name_words
                .iter()
                .any(|n| n == w || (prefix_last && i + 1 == words.len() && n.starts_with(w)))
        })
    };
    let mut found: Vec<(u8, String, i64)> = rows
        .into_iter()
        .filter_map(|(seq, exact, folded)| {
            let tier = if exact == e || exact.starts_with(&format!("{e} ")) {
                (0, exact)
            } else if folded.starts_with(&f) {
                (1, folded)
            } else if flavour == SearchFlavour::Plain {
                return None;
            } else if holds(&e_words, &tokens(&exact), false) {
                (2, String::new())
            } else if holds(&f_words, &tokens(&folded), true) {
                (3, String::new())
            } else {
                return None;
            };
            Some((tier.0, tier.1, seq))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(t, _, s)| (t, s)).collect()
}

#[test]
fn pages_concatenate_to_the_specified_order() {
    for flavour in [SearchFlavour::Fts5, SearchFlavour::Plain] {
        let conn = city(flavour, 1_500);
        for name in [
            "nguyen van h",
            "Nguyễn Văn Hoà",
            "nguyễn văn hòa",
            "Nguyễn Văn",
            "hien",
            "Hiền",
            "van hai",
            "dang",
            "Đặng Thị H",
            "nguyen",
        ] {
            let want = specified(&conn, flavour, name);
            // Without FTS5, words that do not start a name find nothing.
            if flavour == SearchFlavour::Fts5 {
                assert!(!want.is_empty(), "{name:?} finds something");
            }
            for size in [1, 7, 20, 500] {
                assert_eq!(
                    walk(&conn, flavour, name, size),
                    want,
                    "{name:?} by {size}: {flavour:?}"
                );
            }
        }
    }
}

#[test]
fn exact_words_rank_before_folded_prefixes_and_other_word_orders() {
    let conn = city(SearchFlavour::Fts5, 400);
    let tiers_of = |name: &str| -> Vec<u8> {
        let mut tiers: Vec<u8> = walk(&conn, SearchFlavour::Fts5, name, 500)
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        tiers.dedup();
        tiers
    };
    // Either tone placement is the exact name; the folded prefix "Hoàng" is not; "Hoàng Văn
    // Nguyên" holds the folded words in another order.
    assert_eq!(tiers_of("Nguyễn Văn Hòa"), [0, 1, 3]);
    assert_eq!(tiers_of("nguyen van h"), [1, 3]);
    assert_eq!(tiers_of("Hiền"), [2, 3]);
    assert_eq!(tiers_of("nguyen"), [1, 3]);
    // `đ` folds to d in the keys (SQLite's remove_diacritics would leave it).
    assert_eq!(tiers_of("dang thi h"), [1]);
    assert_eq!(tiers_of("Đặng Thị Hùng"), [0]);
}

/// Reads pages at the start and deep in the `nguyen van h` range, in a small and a large
/// city: an index range read from the cursor costs the same steps whatever the city's size or
/// the page's depth; a scan or a sort would grow with either.
#[test]
fn a_name_prefix_page_reads_only_its_own_rows() {
    let size = 20;
    for flavour in [SearchFlavour::Fts5, SearchFlavour::Plain] {
        let mut costs = Vec::new();
        for n in [2_000, 40_000] {
            let conn = city(flavour, n);
            let mut after: Option<Cursor> = None;
            for depth in 0..8 {
                let p = page(&conn, flavour, "nguyen van h", size, after.as_ref());
                assert_eq!(p.rows.len(), size, "{flavour:?} n={n} page {depth}");
                assert!(p.has_next_page);
                assert_eq!(p.work.sorts, 0, "no sort: {flavour:?}");
                assert_eq!(p.work.full_scan_steps, 0, "no scan: {flavour:?}");
                costs.push((n, depth, p.work.vm_steps));
                after = p.rows.last().map(Cursor::new);
            }
        }
        let least = costs.iter().map(|c| c.2).min().unwrap_or_default();
        let most = costs.iter().map(|c| c.2).max().unwrap_or_default();
        // 21 rows (one tells whether more follow), each an index step, a table seek and a few
        // comparisons; the first page also opens the (empty) exact tier.
        assert!(
            most - least <= 40 && most < 40 * (size as i64 + 1),
            "{flavour:?}: steps per page (city, depth, steps) {costs:?}"
        );
    }
}

/// `page` under a budget of `steps` VM steps: `None` when it gave up (over the budget, or a
/// full-text tier refused), which must then be an error, never a page.
fn budgeted_page(
    conn: &Connection,
    flavour: SearchFlavour,
    name: &str,
    first: usize,
    after: Option<&Cursor>,
    steps: u32,
) -> Option<Vec<(u8, i64)>> {
    let filter = CitizenFilter {
        name: Some(name.to_owned()),
        ..CitizenFilter::default()
    };
    let tiers = citizen_tiers(flavour, &filter).expect("tiers");
    let budget = Budget::metered(conn, steps);
    let result = page_positions(conn, &tiers, first, after, &budget);
    if budget.end(conn) {
        assert!(result.is_err(), "{name:?}: over its budget, yet a page");
        return None;
    }
    let p = result.expect("page within its budget");
    Some(p.rows.iter().map(|r| (r.tier, r.seq)).collect())
}

/// Every page of a search read under a small budget is the page read without one, or gives up
/// (then the server reads it again on a blocking thread): a budget changes where a page is
/// read, never what it holds. The first page of a name prefix fits; a page that reaches a
/// full-text tier, or that skips many rows of an earlier tier, does not.
/// The `search statement read` events of whatever `f` runs on this thread: `(tier, rows)`.
fn statements_traced(f: impl FnOnce()) -> Vec<(u64, u64)> {
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    #[derive(Default)]
    struct Fields {
        message: String,
        tier: u64,
        rows: u64,
    }
    impl Visit for Fields {
        fn record_u64(&mut self, field: &Field, value: u64) {
            match field.name() {
                "tier" => self.tier = value,
                "rows" => self.rows = value,
                _ => {}
            }
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.message = format!("{value:?}");
            }
        }
    }
    struct Statements(Arc<Mutex<Vec<(u64, u64)>>>);
    impl<S: tracing::Subscriber> Layer<S> for Statements {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            let mut fields = Fields::default();
            event.record(&mut fields);
            if fields.message == "search statement read" {
                self.0
                    .lock()
                    .expect("events")
                    .push((fields.tier, fields.rows));
            }
        }
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Statements(seen.clone()));
    tracing::subscriber::with_default(subscriber, f);
    seen.lock().expect("events").clone()
}

/// With TRACE on, every statement of a page is traced with its tier and rows: in tier order,
/// and the rows they read are the page's (and the one that says a next page exists).
#[test]
fn each_statement_of_a_page_is_traced() {
    let flavour = SearchFlavour::Fts5;
    let conn = city(flavour, 600);
    for (name, size) in [("nguyen van h", 20), ("hien", 500), ("van hai", 7)] {
        let mut read = None;
        let traced = statements_traced(|| read = Some(page(&conn, flavour, name, size, None)));
        let read = read.expect("a page");
        let rows: u64 = traced.iter().map(|(_, rows)| rows).sum();
        assert_eq!(
            rows,
            (read.rows.len() + usize::from(read.has_next_page)) as u64,
            "{name:?}: {traced:?}"
        );
        assert!(traced.windows(2).all(|w| w[0].0 <= w[1].0), "{traced:?}");
        let tiers: Vec<u64> = read.rows.iter().map(|r| u64::from(r.tier)).collect();
        assert!(
            tiers
                .iter()
                .all(|t| traced.iter().any(|(tier, _)| tier == t))
        );
    }
    // "hien" reads past the prefix tiers (full text): more than the two ranges.
    let traced = statements_traced(|| {
        page(&conn, flavour, "hien", 500, None);
    });
    assert!(traced.iter().any(|(tier, _)| *tier >= 2), "{traced:?}");
}

#[test]
fn a_page_under_a_budget_is_the_same_page_or_gives_up() {
    for flavour in [SearchFlavour::Fts5, SearchFlavour::Plain] {
        let conn = city(flavour, 3_000);
        for name in ["nguyen van h", "Nguyễn Văn", "hien", "Đặng Thị H"] {
            let (mut fitted, mut gave_up) = (Vec::new(), Vec::new());
            let mut after: Option<Cursor> = None;
            for depth in 0.. {
                let whole = page(&conn, flavour, name, 20, after.as_ref());
                let rows: Vec<(u8, i64)> = whole.rows.iter().map(|r| (r.tier, r.seq)).collect();
                match budgeted_page(&conn, flavour, name, 20, after.as_ref(), 1_000) {
                    Some(under) => {
                        assert_eq!(under, rows, "{name:?} page {depth}: {flavour:?}");
                        fitted.push(depth);
                    }
                    None => gave_up.push(depth),
                }
                if !whole.has_next_page {
                    break;
                }
                after = whole.rows.last().map(Cursor::new);
            }
            let first_fits = fitted.first() == Some(&0);
            match (name, flavour) {
                // An index range from its first key: every page fits but the last, which
                // looks past the range's end into the next tiers.
                ("nguyen van h" | "Đặng Thị H", _) => {
                    assert!(first_fits, "{name:?} {flavour:?}")
                }
                // Words anywhere: a full-text tier from the first page.
                ("hien", SearchFlavour::Fts5) => {
                    assert_eq!(gave_up.first(), Some(&0), "{name:?} {flavour:?}")
                }
                // The exact tier's last page goes on into the folded tier, which skips every
                // row the exact tier returned (562 here): over the budget.
                ("Nguyễn Văn", _) => {
                    assert!(first_fits, "{name:?} {flavour:?}");
                    assert!(!gave_up.is_empty(), "{name:?} {flavour:?}: {fitted:?}");
                }
                _ => {}
            }
        }
    }
}

/// SQLite's plan for the statement reading 21 rows of `tier` from `start`, its steps joined
/// by "; ".
fn plan_of(conn: &Connection, tier: &Tier, start: &Start<'_>) -> String {
    let statement = tier.statement(start, 21);
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", statement.sql))
        .expect("explain");
    let plan: Vec<String> = stmt
        .query_map(params_from_iter(statement.params()), |r| {
            r.get::<_, String>(3)
        })
        .expect("plan")
        .collect::<Result<_, _>>()
        .expect("plan");
    plan.join("; ")
}

#[test]
fn name_prefix_tiers_are_index_ranges_in_index_order() {
    for flavour in [SearchFlavour::Fts5, SearchFlavour::Plain] {
        let conn = city(flavour, 100);
        let filter = CitizenFilter {
            name: Some("Nguyễn Văn H".to_owned()),
            status: Some(citydb_domain::citizen::CitizenStatus::Alive),
            ..CitizenFilter::default()
        };
        let tiers = citizen_tiers(flavour, &filter).expect("tiers");
        for (tier, index, key) in [
            (0, "citizens_name_exact", "nguyễn văn h"),
            (1, "citizens_name_folded", "nguyen van ha"),
        ] {
            let resume = Position {
                tier,
                key: key.to_owned(),
                seq: 50,
            };
            let mut starts = tiers[usize::from(tier)].reads(Some(&resume));
            assert_eq!(
                starts.len(),
                2,
                "the rest of the key, then the keys after it"
            );
            starts.push(Start::First);
            for start in &starts {
                let plan = plan_of(&conn, &tiers[usize::from(tier)], start);
                let column = &index["citizens_".len()..];
                let range = match start {
                    Start::Within(..) => format!("({column}=? AND seq>?)"),
                    Start::PastKey(_) | Start::First => {
                        format!("({column}>? AND {column}<?)")
                    }
                };
                assert!(
                    plan.contains(&format!("USING INDEX {index} {range}")),
                    "{flavour:?} tier {tier}: {plan}"
                );
                assert!(!plan.contains("TEMP B-TREE"), "{flavour:?}: {plan}");
            }
        }
    }
}

/// Without filters a name tier is read from its index alone: the folded tier's test that a
/// row is not the exact tier's (`NOT name_exact …`) is answered by the index's `name_exact`
/// column, not a seek into the table per row. Businesses alike.
#[test]
fn unfiltered_name_tiers_read_only_their_index() {
    for flavour in [SearchFlavour::Fts5, SearchFlavour::Plain] {
        let conn = city(flavour, 100);
        let citizens = CitizenFilter {
            name: Some("Nguyễn Văn H".to_owned()),
            ..CitizenFilter::default()
        };
        let citizen_tiers = citizen_tiers(flavour, &citizens).expect("tiers");
        let business_tiers =
            search_tiers(flavour, &BUSINESS_WORDS, Some("Công ty Nam")).expect("tiers");
        for (tiers, kind, keys) in [
            (
                &citizen_tiers,
                "citizens",
                ["nguyễn văn h", "nguyen van ha"],
            ),
            (
                &business_tiers,
                "businesses",
                ["công ty nam", "cong ty nam a"],
            ),
        ] {
            for (tier, column) in [(0, "name_exact"), (1, "name_folded")] {
                let resume = Position {
                    tier,
                    key: keys[usize::from(tier)].to_owned(),
                    seq: 50,
                };
                let mut starts = tiers[usize::from(tier)].reads(Some(&resume));
                assert_eq!(
                    starts.len(),
                    2,
                    "{kind} tier {tier}: resumes within the range"
                );
                starts.push(Start::First);
                for start in &starts {
                    let plan = plan_of(&conn, &tiers[usize::from(tier)], start);
                    assert!(
                        plan.contains(&format!("USING COVERING INDEX {kind}_{column} ")),
                        "{flavour:?} {kind} tier {tier}: {plan}"
                    );
                }
            }
        }
    }
}

/// Names whose words come in other orders, with four words, repeated words, two words
/// sharing the prefix, non-ASCII folded words and more words than the triples index
/// (`name_triples::MAX_WORDS`): tier 3 read from the triples returns what the FTS5 tier and
/// the specification return, and some of them are renamed on the way.
#[test]
fn the_word_triples_find_what_the_words_anywhere_find() {
    let flavour = SearchFlavour::Fts5;
    let conn = city(flavour, 300);
    let extra = [
        "Văn Dương Phúc",
        "Dương Phúc Văn",
        "Dương Văn Phúc Phong",
        "Văn Phong Dương",
        "Dương Dương Văn Phát",
        "Nguyễn Thị Văn Hà",
        "Thị Nguyễn Hà",
        "Hà Văn An Anh",
        "An Văn Hà",
        "Ngô 吴 Văn Phúc",
        "Ngô Văn Phúc Ⅻ",
        "Lò Văn A B C D E F G Phúc",
        "Văn Nguyễn Hùng",
        "Văn-Nguyễn Hải",
        "Văn Dương",
        "Dương Văn Dương",
        "Hà Văn",
        "Văn Hà Hà",
    ];
    let tx = conn.unchecked_transaction().expect("tx");
    for (i, name) in extra.iter().enumerate() {
        add(&tx, flavour, 100_000 + i as i64, name);
    }
    // Renamed after being indexed: the old triples go, the new ones come.
    add(&tx, flavour, 100_000, "Phúc Văn Dương");
    add(&tx, flavour, 100_003, "Trần Thị Lan");
    tx.commit().expect("commit");
    let mut served = 0;
    for name in [
        "van duong p",
        "duong van p",
        "phuc van d",
        "van phuc",
        "duong van ph",
        "nguyen thi h",
        "thi nguyen h",
        "nguyen thi van h",
        "van an a",
        "van ha a",
        "ngo van p",
        "van phuc g",
        "lo van p",
        "b c d",
        "van nguyen h",
        "hai van n",
        "van hoang n",
        "duong duong p",
        "xyz van p",
        "văn dương p",
        // The prefix starts a whole word: the words alone (two-word names included).
        "van duong d",
        "duong van v",
        "nguyen thi t",
        "van v",
        "ngo van n",
        "ha van h",
        "phuc van p",
    ] {
        let folded = tokens(&folded_key(name));
        if name_triples::range(&folded, prefix_end).is_some() {
            served += 1;
        }
        let want = specified(&conn, flavour, name);
        for size in [1, 3, 20] {
            assert_eq!(walk(&conn, flavour, name, size), want, "{name:?} by {size}");
        }
    }
    assert!(served >= 12, "the triples served {served} queries");
}

/// Tier 3 from the triples reads the `(pair, word)` range of their index and the names by
/// their key, whatever the filters; the unindexed rows by the same index.
#[test]
fn the_triples_tier_reads_its_range_of_the_index() {
    let flavour = SearchFlavour::Fts5;
    let conn = city(flavour, 100);
    for status in [None, Some(citydb_domain::citizen::CitizenStatus::Alive)] {
        let filter = CitizenFilter {
            name: Some("van nguyen h".to_owned()),
            status,
            ..CitizenFilter::default()
        };
        let tiers = citizen_tiers(flavour, &filter).expect("tiers");
        for start in [Start::First, Start::Within("", 50)] {
            let plan = plan_of(&conn, &tiers[3], &start);
            assert!(
                plan.contains("SEARCH t USING PRIMARY KEY (pair=? AND word>? AND word<?)")
                    && plan.contains("SEARCH t USING PRIMARY KEY (pair=?)")
                    && plan.contains("SEARCH k USING INTEGER PRIMARY KEY (rowid=?)")
                    // The FTS5 checks seek the row (`=`: by rowid), they walk no doclist.
                    && plan
                        .split("; ")
                        .filter(|step| step.starts_with("SCAN"))
                        .all(|step| step.contains("VIRTUAL TABLE INDEX 0:=")),
                "{plan}"
            );
        }
    }
}

#[test]
fn a_cursor_holds_its_place_while_rows_are_added_and_renamed() {
    let flavour = SearchFlavour::Fts5;
    let conn = city(flavour, 600);
    let name = "nguyen van h";
    let before = walk(&conn, flavour, name, 500);
    let first = page(&conn, flavour, name, 25, None);
    let cursor = first.rows.last().map(Cursor::new).expect("a full page");
    // Around the cursor: new names before and after it, a record renamed from after it to
    // before it, one renamed out of the search, one renamed into it.
    let (moved_back, moved_out) = (before[40].1, before[41].1);
    add(&conn, flavour, 100_000, "Nguyễn Văn A"); // not a match
    add(&conn, flavour, 100_010, "Nguyen Van Ha"); // before the cursor: not seen
    add(&conn, flavour, 100_020, "Nguyễn Văn Hữu"); // after it
    add(&conn, flavour, moved_back, "Nguyen Van H");
    add(&conn, flavour, moved_out, "Trần Văn Bình");
    add(&conn, flavour, 20, "Nguyễn Văn Hưng");
    let mut rest = Vec::new();
    let mut after = Some(cursor);
    while let Some(c) = after {
        let p = page(&conn, flavour, name, 25, Some(&c));
        rest.extend(p.rows.iter().map(|r| (r.tier, r.seq)));
        after = if p.has_next_page {
            p.rows.last().map(Cursor::new)
        } else {
            None
        };
    }
    let seen: Vec<(u8, i64)> = first
        .rows
        .iter()
        .map(|r| (r.tier, r.seq))
        .chain(rest.iter().copied())
        .collect();
    // Seq 20 ("Nguyễn Văn Hùng") became "Nguyễn Văn Hưng": the same folded key, so the same
    // position.
    let unchanged: Vec<(u8, i64)> = before
        .iter()
        .copied()
        .filter(|(_, s)| ![moved_back, moved_out].contains(s))
        .collect();
    let seen_unchanged: Vec<(u8, i64)> = seen
        .iter()
        .copied()
        .filter(|r| unchanged.contains(r))
        .collect();
    assert_eq!(
        seen_unchanged, unchanged,
        "unchanged rows: once each, in order"
    );
    let seqs: Vec<i64> = seen.iter().map(|r| r.1).collect();
    assert!(seqs.contains(&100_020), "added after the cursor: seen");
    assert!(
        !seqs.contains(&100_010),
        "added before the cursor: not seen"
    );
    assert!(
        !seqs.contains(&moved_back),
        "renamed to before the cursor: not seen"
    );
    assert!(
        !seqs.contains(&moved_out),
        "renamed out of the search: not seen"
    );
    assert!(!seqs.contains(&100_000));
}

#[test]
fn cursors_round_trip_and_reject_foreign_text() {
    let at = Position {
        tier: 1,
        key: "nguyễn văn hoà".to_owned(),
        seq: 1_234_567,
    };
    let cursor = Cursor::new(&at);
    // The text clients hold across upgrades: "c", version 2, the tier, the sequence (8 bytes,
    // big-endian) and the key's UTF-8, in lowercase hex.
    assert_eq!(
        cursor.as_str(),
        "630201000000000012d6876e677579e1bb856e2076c4836e20686fc3a0"
    );
    assert_eq!(cursor.decode().ok(), Some(at));
    let parsed: Cursor = cursor.to_string().parse().expect("own cursor");
    assert_eq!(parsed, cursor);
    for bad in [
        "",
        "zz",
        // Version 1, the FTS5-only search's (tier, seq).
        "6301010000000000000094",
        "63030000000000000000ff",
        // Tier 4.
        "630204000000000000000a",
        // A key that is not UTF-8.
        "630201000000000000000aff",
        // Odd length.
        "630201000000000000000a6",
    ] {
        assert!(bad.parse::<Cursor>().is_err(), "{bad}");
    }
}

#[test]
fn search_words_are_quoted_not_parsed() {
    let words = tokens(&folded_key("Nguyễn \"Văn\" OR hoà*"));
    assert_eq!(words, ["nguyen", "van", "or", "hoa"]);
    assert_eq!(
        fts_expression(&words, true),
        "\"nguyen\" \"van\" \"or\" \"hoa\"*"
    );
    // A quote inside a token (`tokens` makes none) is doubled, as FTS5's strings ask.
    let quoted = ["a\"b".to_owned(), "\"".to_owned()];
    assert_eq!(fts_expression(&quoted, false), "\"a\"\"b\" \"\"\"\"");
    assert_eq!(fts_expression(&quoted, true), "\"a\"\"b\" \"\"\"\"*");
    assert_eq!(fts_expression(&[], true), "");
}

/// Each kind's tiers name that kind's tables, never another's.
#[test]
fn each_kind_s_name_sql_names_its_own_tables() {
    for tables in [&CITIZEN_WORDS, &BUSINESS_WORDS] {
        let sql = name_sql(tables);
        assert_eq!(sql.kind, format!("{} k", tables.kind));
        for fragment in [
            &sql.exact_words,
            &sql.exact_words_match,
            &sql.not_exact_words,
        ] {
            assert!(fragment.contains(tables.exact), "{fragment}");
            assert!(!fragment.contains(tables.folded), "{fragment}");
        }
        for fragment in [
            &sql.folded_words,
            &sql.folded_words_match,
            &sql.triples_match_all,
        ] {
            assert!(fragment.contains(tables.folded), "{fragment}");
        }
        for fragment in [&sql.exact_words, &sql.folded_words, &sql.triples] {
            assert!(
                fragment.contains(&format!("JOIN {} k ", tables.kind)),
                "{fragment}"
            );
        }
    }
}

/// A prefix that a whole query word starts with adds nothing to the words: it is dropped, and
/// only then (ASCII words; a prefix alone stays a prefix).
#[test]
fn a_prefix_a_query_word_starts_with_is_left_out() {
    let expression = |name: &str| folded_expression(&tokens(&folded_key(name)));
    assert_eq!(expression("Tô Duy T"), "\"to\" \"duy\"");
    assert_eq!(expression("trinh duc t"), "\"trinh\" \"duc\"");
    assert_eq!(expression("duong gia d"), "\"duong\" \"gia\"");
    assert_eq!(expression("nguyen n"), "\"nguyen\"");
    assert_eq!(expression("van van"), "\"van\"");
    assert_eq!(expression("nguyen van h"), "\"nguyen\" \"van\" \"h\"*");
    assert_eq!(expression("van t"), "\"van\" \"t\"*");
    assert_eq!(expression("h"), "\"h\"*");
    // `吴` is not ASCII: FTS5's tokenizer and `tokens` could disagree, the prefix stays.
    assert_eq!(expression("ngo 吴 n"), "\"ngo\" \"吴\" \"n\"*");
}

#[test]
fn a_prefix_ends_at_its_successor() {
    assert_eq!(prefix_end("nguyen van h").as_deref(), Some("nguyen van i"));
    assert_eq!(prefix_end("hoà").as_deref(), Some("hoá"));
    assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
    assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
    assert_eq!(prefix_end("\u{10FFFF}"), None);
    for s in ["nguyen van h", "nguyen van hz", "nguyen van h\u{10FFFF}"] {
        let end = prefix_end("nguyen van h").expect("end");
        assert!(s < end.as_str());
    }
    assert!("nguyen van i" >= prefix_end("nguyen van h").expect("end").as_str());
}
