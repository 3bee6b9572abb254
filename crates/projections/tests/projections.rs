//! The read models against an event log (in memory) filled through `decide`.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use citydb_domain::business::{ChangeLegalRepresentatives, DissolveBusiness, RenameBusiness};
use citydb_domain::citizen::{MergeCitizens, RecordDeath, ResidenceKind};
use citydb_domain::parcel::{Holder, RetireParcel, TransferKind, TransferRights};
use citydb_domain::*;
use citydb_projections::*;

use common::*;

const WAIT: Duration = Duration::from_secs(10);

/// Citizen `n` moves to "Số n Lạch Tray" in `commune`.
fn move_to(n: u128, commune: &str, since: &str) -> Command {
    residence(cid(n), commune, &format!("Số {n} Lạch Tray"), since)
}

/// A small city: people, businesses with representatives and branches, parcels with holders,
/// and a few lifecycle events (moves, a death, a merge, a transfer, a dissolution).
async fn small_city(w: &World) {
    w.run(register_citizen(
        1,
        ("Nguyễn", "Văn", "Hoà"),
        Sex::Male,
        1980,
    ))
    .await;
    w.run(register_citizen(
        2,
        ("Trần", "Thị", "Lan"),
        Sex::Female,
        1985,
    ))
    .await;
    w.run(register_citizen(3, ("Lê", "", "Minh"), Sex::Male, 1950))
        .await;
    w.run(register_citizen(4, ("Lê", "", "Minh"), Sex::Male, 1950))
        .await;
    w.run(move_to(1, "11311", "2010-01-01")).await;
    w.run(move_to(2, "10507", "2012-01-01")).await;
    w.run(move_to(1, "10507", "2020-01-01")).await;
    w.run(Command::RecordDeath(RecordDeath {
        citizen: cid(3),
        date: "2024-02-03".parse().expect("date"),
    }))
    .await;
    w.run(Command::MergeCitizens(MergeCitizens {
        survivor: cid(3),
        duplicate: cid(4),
        reason: "two records of one person".to_owned(),
        legal_basis: basis(),
    }))
    .await;
    w.run(register_business(
        1,
        "Công ty TNHH Hải Cảng",
        "11311",
        vec![cid(1)],
    ))
    .await;
    w.run(register_business(
        2,
        "Công ty Cổ phần Đồ Sơn",
        "10507",
        vec![cid(2), cid(1)],
    ))
    .await;
    w.run(register_branch(3, 1, 1, vec![cid(2)])).await;
    w.run(register_branch(4, 1, 2, vec![cid(2)])).await;
    w.run(register_parcel(
        1,
        pkey_in("11311", 12, 345),
        "ODT",
        halves(Holder::Citizen(cid(1)), Holder::Business(bid(1))),
    ))
    .await;
    w.run(register_parcel(
        2,
        pkey_in("10507", 3, 7),
        "LUC",
        whole(Holder::Citizen(cid(2))),
    ))
    .await;
    w.run(register_parcel(
        3,
        pkey_in("11311", 12, 346),
        "ODT",
        whole(Holder::Citizen(cid(2))),
    ))
    .await;
    w.run(Command::TransferRights(TransferRights {
        parcel: pid(3),
        kind: TransferKind::Sale,
        holders: whole(Holder::Business(bid(2))),
        date: date("2025-03-01"),
        release_mortgages: vec![],
    }))
    .await;
    w.run(Command::ChangeLegalRepresentatives(
        ChangeLegalRepresentatives {
            business: bid(2),
            legal_representatives: vec![cid(2)],
            date: date("2025-04-01"),
        },
    ))
    .await;
    w.run(Command::RetireParcel(RetireParcel {
        parcel: pid(2),
        date: date("2025-05-01"),
        reason: "thu hồi đất".to_owned(),
    }))
    .await;
    w.run(Command::DissolveBusiness(DissolveBusiness {
        business: bid(4),
        on: date("2025-06-01"),
    }))
    .await;
    // A pending correction: the state's `corrections` map must survive the JSON round trip.
    w.run(Command::ProposeCorrection(command::ProposeCorrection {
        record: cid(2).into(),
        correction: CorrectionId(uuid::Uuid::from_u128(0xD001)),
        changes: vec![FieldChange {
            field: "name.given".to_owned(),
            old: json!("Lan"),
            new: json!("Lân"),
        }],
        reason: "typo in the birth register".to_owned(),
        legal_basis: basis(),
    }))
    .await;
}

fn ids<T>(page: &Page<Versioned<T>>, id: impl Fn(&T) -> RecordId) -> Vec<RecordId> {
    page.edges.iter().map(|e| id(&e.node.state)).collect()
}

fn citizen_ids(page: &Page<Versioned<citizen::Citizen>>) -> Vec<CitizenId> {
    page.edges.iter().map(|e| e.node.state.id).collect()
}

#[tokio::test]
async fn queries_return_the_projected_records() {
    let w = World::new();
    small_city(&w).await;
    let p = w.manual("projections.db").await;
    assert_eq!(
        p.search_flavour(),
        SearchFlavour::Fts5,
        "the bundled SQLite has FTS5"
    );
    let end = p.catch_up().await.expect("catch up");
    assert_eq!(end, w.head().await + 1);
    assert!(p.is_caught_up().await.expect("caught up"));

    // Every record equals the log's own replay, with the log's stream version.
    for id in [
        RecordId::from(cid(1)),
        cid(2).into(),
        cid(3).into(),
        cid(4).into(),
        bid(1).into(),
        bid(2).into(),
        bid(3).into(),
        bid(4).into(),
        pid(1).into(),
        pid(2).into(),
        pid(3).into(),
    ] {
        let projected = p.record(id).await.expect("query").expect("projected");
        assert_eq!(Some(projected.state), w.replayed(id).await, "{id}");
        let stream: citydb_log::StreamId = id.to_string().parse().expect("stream");
        let version = w.log.stream_version(&stream).await.expect("version");
        assert_eq!(Some(projected.version), version, "{id}");
    }

    let hoa = p.citizen(cid(1)).await.expect("query").expect("citizen 1");
    assert_eq!(hoa.version, 2);
    assert_eq!(
        hoa.state.permanent_residence.as_ref().map(|r| r.commune),
        Some(unit("10507"))
    );
    let by_pin = p
        .citizen_by_pin(&hoa.state.pin)
        .await
        .expect("query")
        .expect("by pin");
    assert_eq!(by_pin, hoa);
    assert!(p.citizen(cid(99)).await.expect("query").is_none());
    assert!(p.business(bid(1)).await.expect("query").is_some());
    assert!(
        p.citizen(CitizenId(bid(1).0))
            .await
            .expect("query")
            .is_none()
    );

    let b1 = p.business(bid(1)).await.expect("q").expect("b1");
    assert_eq!(b1.state.branches, vec![bid(3), bid(4)]);
    assert_eq!(
        p.business_by_code(&b1.state.code)
            .await
            .expect("q")
            .map(|b| b.state.id),
        Some(bid(1))
    );
    let parcel = p
        .parcel_by_key(&pkey_in("11311", 12, 345))
        .await
        .expect("q")
        .expect("parcel");
    assert_eq!(parcel.state.id, pid(1));

    // Status and merge.
    let c4 = p.citizen(cid(4)).await.expect("q").expect("c4");
    assert_eq!(c4.state.merged_into, Some(cid(3)));
    let filter = |status| CitizenFilter {
        status: Some(status),
        ..CitizenFilter::default()
    };
    let page = p
        .search_citizens(&filter(CitizenStatus::Merged), 10, None)
        .await
        .expect("search");
    assert_eq!(citizen_ids(&page), vec![cid(4)]);
    let page = p
        .search_citizens(&filter(CitizenStatus::Deceased), 10, None)
        .await
        .expect("search");
    assert_eq!(citizen_ids(&page), vec![cid(3)]);
    let page = p
        .search_citizens(&filter(CitizenStatus::Alive), 10, None)
        .await
        .expect("search");
    assert_eq!(citizen_ids(&page), vec![cid(1), cid(2)]);

    // Commune: residence for citizens, head office for businesses, key for parcels.
    let page = p
        .search_citizens(
            &CitizenFilter {
                admin_unit: Some(unit("10507")),
                ..CitizenFilter::default()
            },
            10,
            None,
        )
        .await
        .expect("search");
    assert_eq!(citizen_ids(&page), vec![cid(1), cid(2)]);
    let page = p
        .search_citizens(
            &CitizenFilter {
                birth_year_from: Some(1981),
                birth_year_to: Some(1990),
                ..CitizenFilter::default()
            },
            10,
            None,
        )
        .await
        .expect("search");
    assert_eq!(citizen_ids(&page), vec![cid(2)]);
    let page = p
        .search_businesses(
            &BusinessFilter {
                admin_unit: Some(unit("10507")),
                ..BusinessFilter::default()
            },
            10,
            None,
        )
        .await
        .expect("search");
    assert_eq!(
        ids(&page, |b| b.id.into()),
        vec![bid(2).into(), bid(3).into(), bid(4).into()]
    );
    let page = p
        .search_businesses(
            &BusinessFilter {
                status: Some(BusinessStatusKind::Dissolved),
                ..BusinessFilter::default()
            },
            10,
            None,
        )
        .await
        .expect("search");
    assert_eq!(ids(&page, |b| b.id.into()), vec![RecordId::from(bid(4))]);
    let parcels = |filter: ParcelFilter| {
        let p = p.clone();
        async move {
            let page = p.search_parcels(&filter, 10, None).await.expect("search");
            page.edges
                .iter()
                .map(|e| e.node.state.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        parcels(ParcelFilter {
            admin_unit: Some(unit("11311")),
            ..ParcelFilter::default()
        })
        .await,
        vec![pid(1), pid(3)]
    );
    assert_eq!(
        parcels(ParcelFilter {
            land_use: Some("ODT".parse().expect("code")),
            ..ParcelFilter::default()
        })
        .await,
        vec![pid(1), pid(3)]
    );
    assert_eq!(
        parcels(ParcelFilter {
            status: Some(ParcelStatusKind::Retired),
            ..ParcelFilter::default()
        })
        .await,
        vec![pid(2)]
    );
    assert_eq!(
        parcels(ParcelFilter {
            holder: Some(bid(2).into()),
            ..ParcelFilter::default()
        })
        .await,
        vec![pid(3)]
    );
    assert_eq!(
        parcels(ParcelFilter {
            holder: Some(cid(2).into()),
            land_use: Some("LUC".parse().expect("code")),
            ..ParcelFilter::default()
        })
        .await,
        vec![pid(2)]
    );

    // Batch loaders.
    let citizens = p
        .citizens_by_ids(&[cid(1), cid(2), cid(99), cid(1)])
        .await
        .expect("load");
    assert_eq!(citizens.len(), 2);
    assert_eq!(citizens[&cid(2)].state.name.given(), "Lan");
    assert_eq!(
        p.businesses_by_ids(&[bid(1), bid(3)])
            .await
            .expect("load")
            .len(),
        2
    );
    assert_eq!(
        p.parcels_by_ids(&[pid(3)]).await.expect("load")[&pid(3)].version,
        1
    );

    let holders = p
        .holders_of(&[pid(1), pid(3), pid(99)])
        .await
        .expect("holders");
    let half: Share = "1/2".parse().expect("share");
    assert_eq!(
        holders[&pid(1)]
            .iter()
            .map(|h| (h.holder, h.share))
            .collect::<Vec<_>>(),
        vec![
            (Holder::Citizen(cid(1)), half),
            (Holder::Business(bid(1)), half)
        ]
    );
    assert_eq!(holders[&pid(3)][0].holder, Holder::Business(bid(2)));
    assert!(holders[&pid(99)].is_empty());

    let held = p
        .parcels_held_by(&[cid(1).into(), cid(2).into(), bid(2).into(), cid(3).into()])
        .await
        .expect("held");
    assert_eq!(held[&RecordId::from(cid(1))], vec![pid(1)]);
    assert_eq!(
        held[&RecordId::from(cid(2))],
        vec![pid(2)],
        "transferred away from parcel 3"
    );
    assert_eq!(held[&RecordId::from(bid(2))], vec![pid(3)]);
    assert!(held[&RecordId::from(cid(3))].is_empty());

    let represented = p
        .businesses_represented_by(&[cid(1), cid(2), cid(3)])
        .await
        .expect("represented");
    assert_eq!(
        represented[&cid(1)],
        vec![bid(1)],
        "removed from business 2"
    );
    assert_eq!(represented[&cid(2)], vec![bid(2), bid(3), bid(4)]);
    assert!(represented[&cid(3)].is_empty());
    let reps = p
        .representatives_of(&[bid(1), bid(2), bid(3)])
        .await
        .expect("reps");
    assert_eq!(reps[&bid(1)], vec![cid(1)]);
    assert_eq!(reps[&bid(2)], vec![cid(2)]);
    assert_eq!(reps[&bid(3)], vec![cid(2)]);

    // Change feed index: no command markers; filters by category and type.
    let all = p.changes(None, &[], &[], 10_000).await.expect("changes");
    let markers = (0..=w.head().await).count() - all.len();
    assert_eq!(markers, 21, "one command marker per command, none indexed");
    let parcels_only = p
        .changes(None, &["parcel".to_owned()], &[], 100)
        .await
        .expect("changes");
    assert_eq!(parcels_only.len(), 5);
    let registered = p
        .changes(
            None,
            &["citizen".to_owned(), "business".to_owned()],
            &["CitizenRegistered".to_owned()],
            100,
        )
        .await
        .expect("changes");
    assert_eq!(registered.len(), 4);
    let after = p
        .changes(
            Some(registered[1]),
            &[],
            &["CitizenRegistered".to_owned()],
            1,
        )
        .await
        .expect("changes");
    assert_eq!(after, vec![registered[2]]);
    for position in &registered {
        let event = w.log.read_all(*position, 1).await.expect("read");
        assert_eq!(event[0].event_type, "CitizenRegistered");
    }
    assert!(p.failures(None, 10).await.expect("failures").is_empty());
}

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

#[tokio::test]
async fn rebuilding_from_scratch_gives_an_identical_digest() {
    let w = World::new();
    small_city(&w).await;
    w.append_raw(
        "citizen-00000000-0000-0000-0000-00000000dead",
        &[("CitizenDeceased", 1, json!({"date": "2020"}))],
    )
    .await;
    let p = w.manual("projections.db").await;
    p.catch_up().await.expect("catch up");
    let digest = p.digest().await.expect("digest");

    p.rebuild().await.expect("rebuild");
    assert_eq!(p.position(), w.head().await + 1);
    assert_eq!(p.digest().await.expect("digest"), digest);

    // Other files, other batch sizes: the same read models.
    for batch_size in [1, 3, 1000] {
        let other = w
            .projections(
                &format!("other-{batch_size}.db"),
                ProjectionConfig {
                    follow: false,
                    batch_size,
                    ..ProjectionConfig::default()
                },
            )
            .await;
        other.catch_up().await.expect("catch up");
        assert_eq!(
            other.digest().await.expect("digest"),
            digest,
            "batch {batch_size}"
        );
    }

    // One more event changes the digest.
    w.run(move_to(2, "11311", "2025-07-01")).await;
    p.catch_up().await.expect("catch up");
    assert_ne!(p.digest().await.expect("digest"), digest);
}

#[tokio::test]
async fn stopping_between_batches_neither_loses_nor_doubles_events() {
    let w = World::new();
    small_city(&w).await;
    // Counters that double application would show: branches and moves accumulate.
    for suffix in 3..=12u16 {
        w.run(register_branch(
            100 + u128::from(suffix),
            1,
            suffix,
            vec![cid(2)],
        ))
        .await;
    }
    for (i, commune) in ["11311", "10507", "11311", "10507", "11311"]
        .iter()
        .enumerate()
    {
        w.run(move_to(2, commune, &format!("202{i}-02-01"))).await;
    }
    let fresh = w.manual("fresh.db").await;
    fresh.catch_up().await.expect("catch up");
    let expected = fresh.digest().await.expect("digest");
    let end = fresh.position();

    // Stop after a few batches, reopen, go on; several times, with odd batch sizes.
    let config = ProjectionConfig {
        follow: false,
        batch_size: 7,
        ..ProjectionConfig::default()
    };
    let mut stops = 0;
    loop {
        let p = w.projections("interrupted.db", config.clone()).await;
        let before = p.position();
        for _ in 0..3 {
            p.project_batch(7).await.expect("batch");
        }
        let after = p.position();
        assert!(after <= before + 21);
        drop(p);
        stops += 1;
        if after == end {
            break;
        }
    }
    assert!(stops > 3);
    let p = w.projections("interrupted.db", config).await;
    assert_eq!(p.position(), end);
    assert_eq!(p.digest().await.expect("digest"), expected);
    let b1 = p.business(bid(1)).await.expect("q").expect("b1");
    assert_eq!(b1.state.branches.len(), 12, "each BranchAdded applied once");
    let stream: citydb_log::StreamId = RecordId::from(bid(1)).to_string().parse().expect("id");
    assert_eq!(
        Some(b1.version),
        w.log.stream_version(&stream).await.expect("v")
    );
    let c2 = p.citizen(cid(2)).await.expect("q").expect("c2");
    assert_eq!(
        c2.version, 7,
        "registration, 6 moves and a proposal, each once"
    );

    // The same with the background follower dropped at arbitrary points.
    for round in 0..4u64 {
        let p = w
            .projections(
                &format!("followed-{round}.db"),
                ProjectionConfig {
                    batch_size: 2 + round as usize,
                    ..ProjectionConfig::default()
                },
            )
            .await;
        tokio::time::sleep(Duration::from_millis(2 * round)).await;
        drop(p);
        let p = w
            .projections(&format!("followed-{round}.db"), ProjectionConfig::default())
            .await;
        p.wait_for(end - 1, WAIT).await.expect("caught up");
        assert_eq!(p.digest().await.expect("digest"), expected, "round {round}");
    }
}

#[tokio::test]
async fn wait_for_returns_once_a_write_is_projected() {
    let w = World::new();
    let p = w
        .projections("projections.db", ProjectionConfig::default())
        .await;
    assert_eq!(p.position(), 0);
    assert!(matches!(
        p.wait_for(0, Duration::from_millis(50)).await,
        Err(ProjectionError::Timeout {
            position: 0,
            projected: 0
        })
    ));
    for n in 1..=5u128 {
        let outcome = w
            .run(register_citizen(n, ("Phạm", "", "Hùng"), Sex::Male, 1970))
            .await;
        let last = outcome.last_position.expect("position");
        p.wait_for(last, WAIT).await.expect("projected");
        assert!(p.position() > last);
        // Read-your-writes: the record is there right after wait_for.
        assert!(p.citizen(cid(n)).await.expect("query").is_some());
    }
    // Stopped, the projector falls behind; started again, it catches up.
    assert!(p.stop().await);
    let outcome = w
        .run(register_citizen(6, ("Phạm", "", "Hùng"), Sex::Male, 1970))
        .await;
    let last = outcome.last_position.expect("position");
    assert!(p.wait_for(last, Duration::from_millis(100)).await.is_err());
    p.start().expect("start");
    p.wait_for(last, WAIT).await.expect("projected");
    assert!(p.citizen(cid(6)).await.expect("query").is_some());
}

#[tokio::test]
async fn unprojectable_events_are_recorded_and_the_projector_goes_on() {
    let w = World::new();
    w.run(register_citizen(1, ("Vũ", "", "Hải"), Sex::Male, 1990))
        .await;
    let stream = RecordId::from(cid(1)).to_string();
    // An event type this build does not know, a payload that does not fit its type, a
    // registration on a stream that has one, and a first event that is no registration.
    let bad = w
        .append_raw(
            &stream,
            &[
                ("CitizenTeleported", 1, json!({"to": "Mars"})),
                ("ResidenceChanged", 2, json!({"commune": "nope"})),
                ("ResidenceChanged", 9, json!({})),
            ],
        )
        .await;
    let orphan = "citizen-00000000-0000-0000-0000-00000000beef";
    w.append_raw(orphan, &[("CitizenDeceased", 1, json!({"date": "2020"}))])
        .await;
    // Good events after the bad ones still apply. (Appended raw: the test handler, like the
    // registry, cannot load a stream holding events it does not understand.)
    let moved = Event::ResidenceChanged {
        kind: ResidenceKind::Permanent,
        commune: unit("10507"),
        address: "Số 1 Lạch Tray".to_owned(),
        since: date("2015-01-01"),
    };
    let good = w
        .append_raw(
            &stream,
            &[(
                moved.event_type(),
                moved.schema_version(),
                moved.to_json().expect("json"),
            )],
        )
        .await;
    w.run(register_citizen(2, ("Vũ", "", "Hà"), Sex::Female, 1992))
        .await;

    let p = w
        .projections("projections.db", ProjectionConfig::default())
        .await;
    p.wait_for(w.head().await, WAIT).await.expect("not wedged");
    let failures = p.failures(None, 100).await.expect("failures");
    let first_bad = bad.first_position.expect("position");
    assert_eq!(
        failures.iter().map(|f| f.position).collect::<Vec<_>>(),
        vec![first_bad, first_bad + 1, first_bad + 2, first_bad + 3]
    );
    assert!(
        failures[0].reason.contains("unknown event type"),
        "{failures:?}"
    );
    assert!(failures[1].reason.contains("upcast"), "{failures:?}");
    assert!(failures[2].reason.contains("newer"), "{failures:?}");
    assert!(failures[3].reason.contains("registration"), "{failures:?}");
    assert_eq!(failures[3].stream_id, orphan);
    assert_eq!(
        p.failures(Some(first_bad + 1), 1).await.expect("failures")[0].position,
        first_bad + 2
    );

    let c1 = p.citizen(cid(1)).await.expect("query").expect("c1");
    assert_eq!(
        c1.state.permanent_residence.map(|r| r.commune),
        Some(unit("10507"))
    );
    assert_eq!(c1.version, 4, "failed events are consumed, not retried");
    assert_eq!(c1.last_position, good.first_position.expect("position"));
    assert!(p.citizen(cid(2)).await.expect("query").is_some());
    assert!(
        p.record(orphan.parse().expect("id"))
            .await
            .expect("query")
            .is_none()
    );
}

#[tokio::test]
async fn a_damaged_file_is_found_on_open_and_rebuilt_from_the_log() {
    let w = World::new();
    small_city(&w).await;
    let p = w.manual("projections.db").await;
    p.catch_up().await.expect("catch up");
    let digest = p.digest().await.expect("digest");
    drop(p);

    // Garbage over four whole pages in the middle of the file, as a disk fault leaves it
    // (the header, and so the application_id, intact).
    let path = w.path("projections.db");
    rusqlite::Connection::open(&path)
        .expect("open")
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    let page = 4096u64;
    let len = std::fs::metadata(&path).expect("size").len();
    assert!(len >= 8 * page, "too small to damage in the middle: {len}");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        file.seek(SeekFrom::Start(len / 2 / page * page))
            .expect("seek");
        let garbage: Vec<u8> = (0..4 * page).map(|i| (i * 7 + 0xA5) as u8).collect();
        file.write_all(&garbage).expect("write");
    }

    let p = w.manual("projections.db").await;
    assert_eq!(
        p.position(),
        0,
        "the damaged file was kept (its checkpoint survived)"
    );
    p.catch_up().await.expect("catch up");
    assert_eq!(p.digest().await.expect("digest"), digest);
    drop(p);

    // A WAL left without its file is not replayed onto a new one.
    std::fs::remove_file(&path).expect("remove");
    std::fs::write(w.path("projections.db-wal"), b"stale").expect("write");
    let p = w.manual("projections.db").await;
    assert_eq!(p.position(), 0);
    p.catch_up().await.expect("catch up");
    assert_eq!(p.digest().await.expect("digest"), digest);
}

#[tokio::test]
async fn a_file_from_another_schema_is_rebuilt_and_a_foreign_file_refused() {
    let w = World::on_sqlite();
    small_city(&w).await;
    let p = w.manual("projections.db").await;
    p.catch_up().await.expect("catch up");
    let digest = p.digest().await.expect("digest");
    drop(p);

    {
        let conn = rusqlite::Connection::open(w.path("projections.db")).expect("open");
        conn.execute_batch("PRAGMA user_version = 999; DELETE FROM records;")
            .expect("tamper");
    }
    let p = w.manual("projections.db").await;
    assert_eq!(p.position(), 0, "dropped for the version mismatch");
    assert!(p.citizen(cid(1)).await.expect("query").is_none());
    p.catch_up().await.expect("catch up");
    assert_eq!(p.digest().await.expect("digest"), digest);
    drop(p);

    // Switching search flavour rebuilds too.
    let plain = w
        .projections(
            "projections.db",
            ProjectionConfig {
                follow: false,
                search: Some(SearchFlavour::Plain),
                ..ProjectionConfig::default()
            },
        )
        .await;
    assert_eq!(plain.position(), 0);
    drop(plain);

    // The log file itself (or any other database) is refused and left alone.
    let log_path = w.path("log.db");
    let before = std::fs::read(&log_path).expect("read log");
    let refused = Projections::open(&log_path, w.log.clone(), ProjectionConfig::default()).await;
    assert!(matches!(
        refused,
        Err(ProjectionError::NotAProjectionsFile { .. })
    ));
    assert_eq!(std::fs::read(&log_path).expect("read log"), before);
}
