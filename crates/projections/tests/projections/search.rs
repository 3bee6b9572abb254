//! Name search: diacritics, ranking, prefix ranges and other word orders, renames, and pages
//! that stay whole while records are added and renamed.

use super::*;

#[tokio::test]
async fn name_search_ignores_diacritics_and_ranks_exact_matches_first() {
    let w = World::new();
    let people = [
        (1, ("Nguyễn", "Văn", "Hoà")),
        (2, ("Nguyễn", "Văn", "Hòa")), // old tone placement: the same exact name
        (3, ("Nguyễn", "Văn", "Hóa")),
        (4, ("Nguyen", "Van", "Hoa")),
        (5, ("Nguyễn", "Văn", "Hoàng")),
        (6, ("Trần", "Thị", "Hoà")),
        (7, ("Nguyễn", "Thị", "Lan")),
        (8, ("Đặng", "Văn", "Hoà")),
    ];
    for (n, name) in people {
        w.run(register_citizen(n, name, Sex::Male, 1990)).await;
    }
    w.run(register_business(
        1,
        "Công ty TNHH Hải Cảng",
        "11311",
        vec![cid(1)],
    ))
    .await;
    w.run(register_business(
        2,
        "Công ty Cổ phần Hai Cang",
        "11311",
        vec![cid(1)],
    ))
    .await;

    for flavour in [SearchFlavour::Fts5, SearchFlavour::Plain] {
        let p = w
            .projections(
                &format!("projections-{}.db", flavour.as_str()),
                ProjectionConfig {
                    follow: false,
                    search: Some(flavour),
                    ..ProjectionConfig::default()
                },
            )
            .await;
        assert_eq!(p.search_flavour(), flavour);
        p.catch_up().await.expect("catch up");
        let search = |name: &str, birth_year: Option<u16>| {
            let p = p.clone();
            let filter = CitizenFilter {
                name: Some(name.to_owned()),
                birth_year_from: birth_year,
                birth_year_to: birth_year,
                ..CitizenFilter::default()
            };
            async move {
                let page = p.search_citizens(&filter, 50, None).await.expect("search");
                assert!(!page.has_next_page);
                citizen_ids(&page)
            }
        };
        let n = |ns: &[u128]| ns.iter().map(|n| cid(*n)).collect::<Vec<_>>();

        // Unaccented query: the unaccented name is the exact match, then every folded match,
        // including the prefix "hoa" -> "Hoàng", in registration order.
        assert_eq!(
            search("nguyen van hoa", None).await,
            n(&[4, 1, 2, 3, 5]),
            "{flavour:?}"
        );
        // Either tone placement finds both spellings first.
        assert_eq!(
            search("Nguyễn Văn Hòa", None).await,
            n(&[1, 2, 3, 4, 5]),
            "{flavour:?}"
        );
        assert_eq!(
            search("NGUYỄN  VĂN HOÀ", None).await,
            n(&[1, 2, 3, 4, 5]),
            "{flavour:?}"
        );
        assert_eq!(
            search("Nguyễn Văn Hóa", None).await,
            n(&[3, 1, 2, 4, 5]),
            "{flavour:?}"
        );
        assert_eq!(
            search("dang van hoa", None).await,
            n(&[8]),
            "đ folds to d: {flavour:?}"
        );
        assert_eq!(
            search("Nguyễn Văn Hòa", Some(1991)).await,
            n(&[]),
            "{flavour:?}"
        );
        assert_eq!(
            search("  ", None).await.len(),
            8,
            "no words: no name filter"
        );
        assert_eq!(search("xyz", None).await, n(&[]), "{flavour:?}");
        // Quotes and FTS5 operators are words, not syntax.
        assert_eq!(
            search("\"hoa\" OR NOT *", None).await,
            n(&[]),
            "{flavour:?}"
        );

        if flavour == SearchFlavour::Fts5 {
            // Any word of the name, not only its start.
            assert_eq!(search("Hoà", None).await, n(&[1, 2, 6, 8, 3, 4, 5]));
            assert_eq!(search("hoa", None).await, n(&[4, 1, 2, 3, 5, 6, 8]));
            assert_eq!(search("van hoa", None).await, n(&[4, 1, 2, 3, 5, 8]));
            assert_eq!(search("Thị", None).await, n(&[6, 7]));
        } else {
            // Full-name prefix only.
            assert_eq!(search("nguyen van", None).await, n(&[4, 1, 2, 3, 5]));
            assert_eq!(search("Hoà", None).await, n(&[]));
        }

        let businesses = p
            .search_businesses(
                &BusinessFilter {
                    name: Some("Công ty TNHH Hải".to_owned()),
                    ..BusinessFilter::default()
                },
                10,
                None,
            )
            .await
            .expect("search");
        let found: Vec<BusinessId> = businesses.edges.iter().map(|e| e.node.state.id).collect();
        assert_eq!(found, vec![bid(1)], "{flavour:?}");
        if flavour == SearchFlavour::Fts5 {
            let found = p
                .search_businesses(
                    &BusinessFilter {
                        name: Some("Hai Cang".to_owned()),
                        ..BusinessFilter::default()
                    },
                    10,
                    None,
                )
                .await
                .expect("search");
            let found: Vec<BusinessId> = found.edges.iter().map(|e| e.node.state.id).collect();
            assert_eq!(found, vec![bid(2), bid(1)], "exact unaccented name first");
        }
    }
}

#[tokio::test]
async fn renames_move_records_in_the_name_index() {
    let w = World::new();
    w.run(register_citizen(
        1,
        ("Nguyễn", "Văn", "Hoà"),
        Sex::Male,
        1990,
    ))
    .await;
    w.run(register_business(
        1,
        "Công ty TNHH Hải Cảng",
        "11311",
        vec![cid(1)],
    ))
    .await;
    let p = w
        .projections("projections.db", ProjectionConfig::default())
        .await;
    let outcome = w
        .run(Command::RenameBusiness(RenameBusiness {
            business: bid(1),
            names: names("Công ty TNHH Bạch Đằng"),
            date: date("2025-01-01"),
        }))
        .await;
    p.wait_for(outcome.last_position.expect("position"), WAIT)
        .await
        .expect("projected");
    let search = |name: &str| {
        let p = p.clone();
        let filter = BusinessFilter {
            name: Some(name.to_owned()),
            ..BusinessFilter::default()
        };
        async move {
            p.search_businesses(&filter, 10, None)
                .await
                .expect("search")
                .edges
                .len()
        }
    };
    assert_eq!(search("hai cang").await, 0);
    assert_eq!(search("bach dang").await, 1);
}

/// Walks every page of a citizen search, adding `add_between` new matching records (through the
/// log and the following projector) before each next page.
async fn walk_pages(
    w: &World,
    p: &Projections,
    filter: &CitizenFilter,
    page_size: usize,
    mut next_new: u128,
    add_between: usize,
) -> Vec<CitizenId> {
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = p
            .search_citizens(filter, page_size, after.clone())
            .await
            .expect("page");
        assert!(page.edges.len() <= page_size);
        seen.extend(citizen_ids(&page));
        if !page.has_next_page {
            break;
        }
        after = page.end_cursor().cloned();
        for _ in 0..add_between {
            let name = if next_new.is_multiple_of(2) {
                ("Nguyễn", "Văn", "Hoà")
            } else {
                ("Nguyen", "Van", "Hoa")
            };
            let outcome = w
                .run(register_citizen(next_new, name, Sex::Male, 1990))
                .await;
            p.wait_for(outcome.last_position.expect("position"), WAIT)
                .await
                .expect("projected");
            next_new += 1;
        }
    }
    seen
}

#[tokio::test]
async fn pages_have_no_duplicates_or_gaps_while_records_are_added() {
    let w = World::new();
    for n in 1..=40u128 {
        // Mixed spellings, so a name search has both tiers interleaved in registration order.
        let name = match n % 3 {
            0 => ("Nguyễn", "Văn", "Hoà"),
            1 => ("Nguyen", "Van", "Hoa"),
            _ => ("Nguyễn", "Văn", "Hòa"),
        };
        w.run(register_citizen(n, name, Sex::Male, 1990)).await;
    }
    let p = w
        .projections("projections.db", ProjectionConfig::default())
        .await;
    p.wait_for(w.head().await, WAIT).await.expect("caught up");
    let original: HashSet<CitizenId> = (1..=40).map(cid).collect();

    for (filter, size) in [
        (
            CitizenFilter {
                name: Some("Nguyễn Văn Hòa".to_owned()),
                ..CitizenFilter::default()
            },
            7,
        ),
        (CitizenFilter::default(), 6),
        (
            CitizenFilter {
                name: Some("nguyen van".to_owned()),
                status: Some(CitizenStatus::Alive),
                ..CitizenFilter::default()
            },
            9,
        ),
    ] {
        let first_new = 1000 + 100 * u128::try_from(size).expect("small");
        let seen = walk_pages(&w, &p, &filter, size, first_new, 3).await;
        let unique: HashSet<CitizenId> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "no duplicates: {filter:?}");
        assert!(original.is_subset(&unique), "no gaps: {filter:?}");
        // A fresh walk over the now larger set, without concurrent inserts, returns everything
        // in the same relative order.
        let again = walk_pages(&w, &p, &filter, size, 0, 0).await;
        let positions: Vec<usize> = seen
            .iter()
            .filter_map(|id| again.iter().position(|x| x == id))
            .collect();
        assert_eq!(positions.len(), seen.len());
        if filter.name.is_none() {
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "stable order");
        }
    }

    // Cursors are opaque and checked.
    assert!(matches!(
        "not-a-cursor".parse::<Cursor>(),
        Err(ProjectionError::InvalidCursor)
    ));
    let page = p
        .search_citizens(&CitizenFilter::default(), 1, None)
        .await
        .expect("page");
    let cursor = page.end_cursor().expect("cursor").clone();
    assert_eq!(
        cursor.to_string().parse::<Cursor>().expect("round trip"),
        cursor
    );
    let empty = p
        .search_citizens(&CitizenFilter::default(), 0, None)
        .await
        .expect("page");
    assert!(empty.edges.is_empty() && empty.has_next_page);
}

/// A projections file of `w`'s log in `flavour`, caught up and following.
async fn following(w: &World, flavour: SearchFlavour) -> Projections {
    let p = w
        .projections(
            &format!("following-{}.db", flavour.as_str()),
            ProjectionConfig {
                search: Some(flavour),
                ..ProjectionConfig::default()
            },
        )
        .await;
    p.wait_for(w.head().await, WAIT).await.expect("caught up");
    p
}

fn by_name(name: &str) -> CitizenFilter {
    CitizenFilter {
        name: Some(name.to_owned()),
        ..CitizenFilter::default()
    }
}

/// Every page of `filter`, `size` at a time, with `between` run before each next page.
async fn walk_citizens<F, Fut>(
    p: &Projections,
    filter: &CitizenFilter,
    size: usize,
    mut between: F,
) -> Vec<CitizenId>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut seen = Vec::new();
    let mut after = None;
    for page_no in 0.. {
        let page = p
            .search_citizens(filter, size, after.clone())
            .await
            .expect("page");
        assert!(page.edges.len() <= size);
        seen.extend(citizen_ids(&page));
        if !page.has_next_page {
            break;
        }
        after = page.end_cursor().cloned();
        between(page_no).await;
    }
    seen
}

const PEOPLE: [(&str, &str, &str); 12] = [
    ("Nguyễn", "Văn", "Hùng"),
    ("Nguyễn", "Văn", "Hải"),
    ("Nguyen", "Van", "Hai"),
    ("Nguyễn", "Văn", "Hà"),
    ("Nguyễn", "Thị", "Hiền"),
    ("Trần", "Văn", "Hiền"),
    ("Nguyễn", "Văn", "Hoàng"),
    ("Hoàng", "Văn", "Nguyên"),
    ("Đặng", "Văn", "Hải"),
    ("Nguyễn", "Văn", "Hưng"),
    ("Lê", "Nguyễn", "Văn Hải"),
    ("Nguyễn", "Văn", "Anh"),
];

/// The first-page order the search documents, on names chosen for it: the exact words first,
/// then the folded prefix in folded-name order, then (FTS5) the words elsewhere.
#[tokio::test]
async fn a_name_search_is_the_prefix_range_in_name_order_then_other_word_orders() {
    let w = World::new();
    for (n, name) in PEOPLE.iter().enumerate() {
        w.run(register_citizen(n as u128 + 1, *name, Sex::Male, 1990))
            .await;
    }
    for flavour in [SearchFlavour::Fts5, SearchFlavour::Plain] {
        let p = following(&w, flavour).await;
        let search = |name: &str| {
            let p = p.clone();
            let filter = by_name(name);
            async move {
                let page = p.search_citizens(&filter, 50, None).await.expect("search");
                citizen_ids(&page)
            }
        };
        let n = |ns: &[u128]| ns.iter().map(|n| cid(*n)).collect::<Vec<_>>();
        // Folded prefix, in folded-name order: ha, hai (2, then 3), hoang, hung (1, then 10
        // "Hưng", the same folded name).
        let mut want = vec![4, 2, 3, 7, 1, 10];
        if flavour == SearchFlavour::Fts5 {
            // "Hoàng Văn Nguyên" and "Lê Nguyễn Văn Hải", in registration order.
            want.extend([8, 11]);
        }
        assert_eq!(search("nguyen van h").await, n(&want), "{flavour:?}");
        // Typed with its diacritics, the exact name comes first, then the unaccented one, then
        // (FTS5) the exact words not at the start.
        let mut want = vec![2, 3];
        if flavour == SearchFlavour::Fts5 {
            want.push(11);
        }
        assert_eq!(search("Nguyễn Văn Hải").await, n(&want), "{flavour:?}");
        // `đ` folds to d, in Rust.
        assert_eq!(search("dang van h").await, n(&[9]), "{flavour:?}");
        assert_eq!(search("Đặng").await, n(&[9]), "{flavour:?}");
        // A given name alone is no name's start: FTS5 finds it anywhere, exact words first.
        if flavour == SearchFlavour::Fts5 {
            assert_eq!(search("Hiền").await, n(&[5, 6]));
            assert_eq!(search("hien").await, n(&[5, 6]));
            assert_eq!(search("hai").await, n(&[3, 2, 9, 11]));
        } else {
            assert_eq!(search("hien").await, n(&[]));
        }
    }
}

/// Walks every query at several page sizes: the pages concatenated are the one-page answer,
/// with no record twice.
#[tokio::test]
async fn pages_concatenate_to_the_whole_answer() {
    let w = World::new();
    for n in 1..=60u128 {
        let (family, middle, given) = PEOPLE[n as usize % PEOPLE.len()];
        let given = format!("{given} {}", ["", "Anh", "Minh"][n as usize % 3]);
        w.run(register_citizen(
            n,
            (family, middle, &given),
            Sex::Male,
            1990,
        ))
        .await;
    }
    for flavour in [SearchFlavour::Fts5, SearchFlavour::Plain] {
        let p = following(&w, flavour).await;
        for name in [
            "nguyen van h",
            "Nguyễn Văn Hải",
            "hai",
            "nguyen",
            "van hai anh",
        ] {
            let filter = by_name(name);
            let whole = citizen_ids(&p.search_citizens(&filter, 500, None).await.expect("all"));
            let unique: HashSet<CitizenId> = whole.iter().copied().collect();
            assert_eq!(unique.len(), whole.len(), "{name:?}: {flavour:?}");
            if flavour == SearchFlavour::Fts5 {
                assert!(!whole.is_empty(), "{name:?}");
            }
            for size in [1, 4, 7] {
                let pages = walk_citizens(&p, &filter, size, |_| async {}).await;
                assert_eq!(pages, whole, "{name:?} by {size}: {flavour:?}");
            }
        }
    }
}

/// Pages stay whole while records are added and renamed between them: every record whose
/// name did not change comes exactly once, in the order of the undisturbed answer; a record
/// added or renamed to after the cursor comes once at its new place, one renamed to before
/// it (or out of the search) does not come.
#[tokio::test]
async fn pages_stay_whole_while_records_are_added_and_renamed() {
    let w = World::new();
    for n in 1..=30u128 {
        let given = ["Hùng", "Hải", "Hà", "Hoàng", "Hưng"][n as usize % 5];
        let name = if n % 2 == 0 {
            ("Nguyễn", "Văn", given)
        } else {
            ("Nguyen", "Van", given)
        };
        w.run(register_citizen(n, name, Sex::Male, 1990)).await;
    }
    let p = following(&w, SearchFlavour::Fts5).await;
    let filter = by_name("nguyen van h");
    let before = citizen_ids(&p.search_citizens(&filter, 500, None).await.expect("all"));
    assert_eq!(before.len(), 30);
    // Folded-name order: every "ha" first, every "hung" last.
    let (first_ha, last_hung) = (before[0], before[29]);
    let last_given = p
        .citizen(last_hung)
        .await
        .expect("read")
        .expect("there")
        .state
        .name
        .given()
        .to_owned();
    let mut renamed = HashSet::new();
    let mut added = Vec::new();
    let pages = walk_citizens(&p, &filter, 4, |page_no| {
        let (w, p) = (&w, &p);
        let step = match page_no {
            // A new "hung" (after the cursor), a new "ha" (before it).
            0 => Some((
                register_citizen(100, ("Nguyễn", "Văn", "Hưng"), Sex::Male, 1990),
                None,
            )),
            1 => Some((
                register_citizen(101, ("Nguyễn", "Văn", "Hà"), Sex::Male, 1990),
                None,
            )),
            // A "hung" not yet seen renamed out of the search. (A seen "ha" renamed to "hung"
            // would come twice: its position is new, see the search docs.)
            2 => Some((
                correct_given(last_hung, &last_given, "Bình"),
                Some(last_hung),
            )),
            _ => None,
        };
        match &step {
            Some((_, Some(id))) => {
                renamed.insert(*id);
            }
            Some((Command::RegisterCitizen(r), None)) => added.push(r.citizen),
            _ => {}
        }
        async move {
            let Some((command, rename)) = step else {
                return;
            };
            let mut outcome = w.run(command).await;
            if let Some(id) = rename {
                outcome = w
                    .try_run_as(&approve(id), &supervisor())
                    .await
                    .expect("approve");
            }
            p.wait_for(outcome.last_position.expect("position"), WAIT)
                .await
                .expect("projected");
        }
    })
    .await;
    let unique: HashSet<CitizenId> = pages.iter().copied().collect();
    assert_eq!(unique.len(), pages.len(), "no record twice");
    let unchanged: Vec<CitizenId> = before
        .iter()
        .copied()
        .filter(|id| !renamed.contains(id))
        .collect();
    let seen_unchanged: Vec<CitizenId> = pages
        .iter()
        .copied()
        .filter(|id| unchanged.contains(id))
        .collect();
    assert_eq!(
        seen_unchanged, unchanged,
        "each unchanged record once, in order"
    );
    assert!(pages.contains(&cid(100)), "added after the cursor");
    assert!(!pages.contains(&cid(101)), "added before the cursor");
    assert!(!pages.contains(&last_hung), "renamed out before its page");
    assert!(pages.contains(&first_ha));
    assert_eq!(added, [cid(100), cid(101)]);
}

const RENAME: u128 = 0xE000;

/// A steward's proposal to correct citizen `id`'s given name (approved by [`approve`]).
fn correct_given(id: CitizenId, old: &str, new: &str) -> Command {
    Command::ProposeCorrection(command::ProposeCorrection {
        record: id.into(),
        correction: CorrectionId(uuid::Uuid::from_u128(RENAME)),
        changes: vec![FieldChange {
            field: "name.given".to_owned(),
            old: json!(old),
            new: json!(new),
        }],
        reason: "sai tên".to_owned(),
        legal_basis: basis(),
    })
}

fn approve(id: CitizenId) -> Command {
    Command::ApproveCorrection(command::ApproveCorrection {
        record: id.into(),
        correction: CorrectionId(uuid::Uuid::from_u128(RENAME)),
    })
}

/// Where each search page ran is counted: a small name-prefix page on the calling thread, a
/// page that reaches a full-text tier given up there and read on a blocking thread, a page
/// larger than a budgeted one on a blocking thread. Each answer is the same wherever it ran.
#[tokio::test]
async fn search_pages_are_counted_by_where_they_ran() {
    let w = World::new();
    for (n, name) in [
        (1, ("Nguyễn", "Văn", "Hoà")),
        (2, ("Nguyễn", "Văn", "Hùng")),
        (3, ("Trần", "Thị", "Hoà")),
    ] {
        w.run(register_citizen(n, name, Sex::Male, 1990)).await;
    }
    let p = following(&w, SearchFlavour::Fts5).await;
    assert_eq!(p.search_pages(), SearchPages::default());
    let found = |page: Page<Versioned<citydb_domain::citizen::Citizen>>| citizen_ids(&page);
    // Larger than a budgeted page: a blocking thread from the start (the reader it opens is
    // the idle one the pages below find: readers are opened on first need).
    let page = p.search_citizens(&by_name("nguyen van"), 100, None).await;
    assert_eq!(found(page.expect("search")), [cid(1), cid(2)]);
    // The first of two pages of a prefix range: the calling thread.
    let page = p.search_citizens(&by_name("nguyen van"), 1, None).await;
    assert_eq!(found(page.expect("search")), [cid(1)]);
    // A given name alone: the prefix tiers hold nothing, the words-anywhere tier is full-text.
    let page = p.search_citizens(&by_name("Hoà"), 10, None).await;
    assert_eq!(found(page.expect("search")), [cid(1), cid(3)]);
    assert_eq!(
        p.search_pages(),
        SearchPages {
            calling_thread: 1,
            over_budget: 1,
            blocking_thread: 1,
        }
    );
}

/// Leaves FTS5 wrote to level 0 of `table` (its structure record's write counter: rowid 10 of
/// `<table>_data`, a 4-byte cookie, an optional 4-byte version 2 marker, then the number of
/// levels and of segments and the counter as varints). One flush of the terms FTS5 holds in
/// memory writes at least one leaf.
fn fts5_leaves_written(conn: &rusqlite::Connection, table: &str) -> u64 {
    let block: Vec<u8> = conn
        .query_row(
            &format!("SELECT block FROM {table}_data WHERE id = 10"),
            [],
            |r| r.get(0),
        )
        .expect("structure record");
    let mut at = 4;
    if block.get(4..8) == Some(&[0xff, 0x00, 0x00, 0x01][..]) {
        at += 4;
    }
    // SQLite's varint: big-endian groups of 7 bits, the high bit set on all but the last
    // (of at most 9 bytes; these small numbers never need the ninth).
    let mut varint = || {
        let mut value = 0u64;
        loop {
            let byte = block[at];
            at += 1;
            value = (value << 7) | u64::from(byte & 0x7f);
            if byte & 0x80 == 0 {
                return value;
            }
        }
    };
    let _levels = varint();
    let _segments = varint();
    varint()
}

/// FTS5 flushes the terms it holds before every statement that opens a statement journal
/// (SQLite's `xSavepoint`; an `INSERT OR REPLACE` of a citizen's row opened one) and when a
/// rowid comes below the last: with the name words written among the records' rows, in the
/// order of the batch's map of records, a batch of new citizens became a flush, and a
/// segment, per citizen (300 here), or about one per two once written last but unsorted
/// (128). The per-batch path writes them last and by `seq` (`WordWrites`).
#[tokio::test]
async fn a_batch_of_new_names_is_flushed_to_the_word_index_together() {
    let w = World::new();
    const CITIZENS: u128 = 300;
    let given = ["Hoà", "Hùng", "Lan", "Minh", "Tú"];
    for n in 1..=CITIZENS {
        let name = ("Nguyễn", "Văn", given[(n % 5) as usize]);
        w.run(register_citizen(n, name, Sex::Male, 1990)).await;
    }
    for n in 1..=20 {
        w.run(register_business(
            n,
            &format!("Công ty TNHH Hải Cảng {n}"),
            "11311",
            vec![cid(n)],
        ))
        .await;
    }
    let p = w
        .projections(
            "projections.db",
            ProjectionConfig {
                follow: false,
                search: Some(SearchFlavour::Fts5),
                batch_size: 100_000,
                ..ProjectionConfig::default()
            },
        )
        .await;
    p.catch_up().await.expect("catch up");
    let page = p
        .search_citizens(&by_name("Minh"), 100, None)
        .await
        .expect("search");
    assert_eq!(page.edges.len(), 60, "every Minh found by a word anywhere");
    let conn = rusqlite::Connection::open(w.path("projections.db")).expect("open");
    for table in [
        "citizen_names_folded",
        "citizen_names_exact",
        "business_names_folded",
        "business_names_exact",
    ] {
        let leaves = fts5_leaves_written(&conn, table);
        // One flush at the commit: a leaf or two (the folded table's prefixes make it the
        // largest). A flush per record: at least a leaf each.
        assert!(
            (1..10).contains(&leaves),
            "{table}: {leaves} leaves written to level 0 for one batch"
        );
    }
}

/// A search page read as summaries (`search_citizen_summaries`) holds the citizens of the page
/// of whole states, in its order and with its cursors, each one's summary the one its state
/// gives: after the per-batch projector and after a rebuild in bulk, through moves, a death, a
/// merge, a pending correction, a restriction and a lifted one. Read by id, the same.
#[tokio::test]
async fn a_page_of_summaries_is_the_page_of_states_summarised() {
    let w = World::new();
    small_city(&w).await;
    w.run(register_citizen(5, ("Lê", "Văn", "Minh"), Sex::Male, 1990))
        .await;
    for (n, lift) in [(1, false), (5, true)] {
        w.run(Command::RestrictRecord(RestrictRecord {
            record: cid(n).into(),
            reason: "objection to processing".to_owned(),
            legal_basis: basis(),
        }))
        .await;
        if lift {
            let lift = Command::LiftRestriction(LiftRestriction {
                record: cid(n).into(),
                reason: "objection withdrawn".to_owned(),
                legal_basis: basis(),
            });
            w.try_run_as(&lift, &supervisor()).await.expect("lifted");
        }
    }
    let p = w.manual("projections.db").await;
    p.catch_up().await.expect("catch up");
    for round in ["per batch", "rebuilt in bulk"] {
        if round == "rebuilt in bulk" {
            p.rebuild().await.expect("rebuild");
        }
        let mut restricted = 0;
        for name in [None, Some("le minh"), Some("nguyen van h")] {
            let filter = CitizenFilter {
                name: name.map(str::to_owned),
                ..CitizenFilter::default()
            };
            let states = p.search_citizens(&filter, 50, None).await.expect("page");
            let summaries = p
                .search_citizen_summaries(&filter, 50, None)
                .await
                .expect("summaries");
            assert!(!states.edges.is_empty(), "{round} {name:?}");
            let whole_page = states.edges.len();
            assert_eq!(
                summaries.edges.len(),
                states.edges.len(),
                "{round} {name:?}"
            );
            assert_eq!(summaries.has_next_page, states.has_next_page);
            for (s, whole) in summaries.edges.iter().zip(&states.edges) {
                assert_eq!(s.cursor.to_string(), whole.cursor.to_string());
                assert_eq!(
                    s.node.state,
                    citizen::Summary::from(&whole.node.state),
                    "{round}"
                );
                assert_eq!(s.node.version, whole.node.version);
                assert_eq!(s.node.last_position, whole.node.last_position);
                restricted += usize::from(s.node.state.restricted);
            }
            // Page by page, one at a time, through every tier the search has.
            let (mut after, mut pages) = (None, 0);
            loop {
                let states = p
                    .search_citizens(&filter, 1, after.clone())
                    .await
                    .expect("page");
                let summaries = p
                    .search_citizen_summaries(&filter, 1, after.clone())
                    .await
                    .expect("summaries");
                assert_eq!(summaries.edges.len(), states.edges.len());
                for (s, whole) in summaries.edges.iter().zip(&states.edges) {
                    assert_eq!(s.cursor.to_string(), whole.cursor.to_string());
                    assert_eq!(s.node.state.id, whole.node.state.id, "{round} {name:?}");
                }
                assert_eq!(summaries.has_next_page, states.has_next_page);
                pages += 1;
                match states.edges.last() {
                    Some(last) if states.has_next_page => after = Some(last.cursor.clone()),
                    _ => break,
                }
            }
            assert_eq!(pages, whole_page, "{round} {name:?}");
        }
        // Citizen 1 is restricted (listed by the unfiltered page and by `nguyen van h`);
        // citizen 5's restriction was lifted.
        assert_eq!(restricted, 2, "{round}");

        // By id (a relation's citizens): the same summaries; an id without a record is absent.
        let ids: Vec<CitizenId> = (1..=6).map(cid).collect();
        let states = p.citizens_by_ids(&ids).await.expect("states");
        let summaries = p.citizen_summaries_by_ids(&ids).await.expect("summaries");
        assert_eq!(states.len(), 5, "{round}");
        assert_eq!(summaries.len(), states.len(), "{round}");
        for (id, whole) in &states {
            let s = &summaries[id];
            assert_eq!(s.state, citizen::Summary::from(&whole.state), "{round}");
            assert_eq!(
                (s.version, s.last_position),
                (whole.version, whole.last_position)
            );
        }
    }

    // A damaged summary column is corruption, not a guess.
    let id = RecordId::from(cid(1)).to_string();
    let filter = CitizenFilter {
        name: Some("nguyen van h".to_owned()),
        ..CitizenFilter::default()
    };
    for damage in ["given = NULL", "birth_date = '19x0'", "restricted = NULL"] {
        let conn = rusqlite::Connection::open(w.path("projections.db")).expect("open");
        let was: (Option<String>, Option<String>, Option<i64>) = conn
            .query_row(
                "SELECT given, birth_date, restricted FROM records WHERE record_id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("row");
        let sql = format!("UPDATE records SET {damage} WHERE record_id = ?1");
        assert_eq!(conn.execute(&sql, [&id]).expect("damage"), 1);
        match p.search_citizen_summaries(&filter, 10, None).await {
            Err(ProjectionError::Corrupt(m)) => assert!(m.contains("seq"), "{damage}: {m}"),
            other => panic!("{damage}: {other:?}"),
        }
        conn.execute(
            "UPDATE records SET given = ?2, birth_date = ?3, restricted = ?4 WHERE record_id = ?1",
            rusqlite::params![id, was.0, was.1, was.2],
        )
        .expect("repair");
        assert!(p.search_citizen_summaries(&filter, 10, None).await.is_ok());
    }
}
