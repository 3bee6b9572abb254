//! Every query of the read models over a small city.

use super::*;

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
