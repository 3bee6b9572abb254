//! Throughput and query latency at scale. Ignored by default (slow in debug builds):
//! `cargo test -p citydb-projections --test scale -- --ignored --nocapture`
//! `CITYDB_SCALE_EVENTS` (default 20,000 citizens projected through the log) and
//! `CITYDB_SCALE_ROWS` (default 2,000,000 citizens, the rest cloned straight into the file).

mod common;

use std::time::Instant;

use uuid::Uuid;

use citydb_domain::citizen::RegistrationOrigin;
use citydb_domain::*;
use citydb_log::{ExpectedVersion, Metadata, NewEvent, StreamAppend, StreamId};
use citydb_projections::*;

use common::*;

const FAMILY: &[&str] = &[
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ",
];
const MIDDLE: &[&str] = &["Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", ""];
const GIVEN: &[&str] = &[
    "Hoà", "Hòa", "Hoa", "Lan", "Hùng", "Dũng", "Hải", "Hương", "Mai", "Tuấn", "Hoàng", "Thuỷ",
    "Thúy", "Khoa", "Long", "Phúc", "Quân", "Trang", "Yến", "Sơn",
];

fn event(e: &Event) -> NewEvent {
    NewEvent::new(
        e.event_type(),
        e.schema_version(),
        &e.to_json().expect("json"),
        &Metadata::default(),
    )
    .expect("event")
}

#[tokio::test]
#[ignore = "slow: measures throughput and latency at scale"]
async fn throughput_and_latency_at_scale() {
    let events: u32 = std::env::var("CITYDB_SCALE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rows: i64 = std::env::var("CITYDB_SCALE_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let w = World::new();
    let started = Instant::now();
    for chunk in (0..events).collect::<Vec<_>>().chunks(500) {
        let mut appends = Vec::new();
        for &n in chunk {
            let i = n as usize;
            let sex = if n % 2 == 0 { Sex::Male } else { Sex::Female };
            let year = 1940 + (n % 80) as u16;
            let id = CitizenId(Uuid::from_u128(0x1_0000_0000 + u128::from(n)));
            let pin = pin(n, sex, year);
            let registered = Event::CitizenRegistered {
                citizen: id,
                pin,
                name: PersonName::new(
                    FAMILY[i % FAMILY.len()],
                    MIDDLE[(i / 7) % MIDDLE.len()],
                    GIVEN[(i / 3) % GIVEN.len()],
                )
                .expect("name"),
                sex,
                birth_date: PartialDate::year_only(u32::from(year)).expect("year"),
                birth_place: unit("11311"),
                father: None,
                mother: None,
                origin: RegistrationOrigin::InitialLoad {
                    source: "scale test".to_owned(),
                },
            };
            let key = NaturalKey::Pin(pin);
            let claimed = Event::KeyClaimed {
                key,
                record: id.into(),
            };
            appends.push(StreamAppend::new(
                RecordId::from(id).to_string().parse().expect("stream"),
                ExpectedVersion::NoStream,
                vec![event(&registered)],
            ));
            appends.push(StreamAppend::new(
                StreamId::new("key", key.key_id()).expect("stream"),
                ExpectedVersion::NoStream,
                vec![event(&claimed)],
            ));
        }
        w.log.append(appends).await.expect("append");
    }
    let total = w.head().await + 1;
    eprintln!("appended {total} events in {:?}", started.elapsed());

    let p = w.manual("projections.db").await;
    let started = Instant::now();
    p.catch_up().await.expect("catch up");
    let took = started.elapsed();
    eprintln!(
        "projected {total} events in {took:?}: {:.0} events/s",
        total as f64 / took.as_secs_f64()
    );

    // Clone the projected citizens straight into the file up to `rows`, to time the hot
    // queries at city scale without projecting millions of events in a debug build.
    let started = Instant::now();
    let conn = rusqlite::Connection::open(w.path("projections.db")).expect("open");
    let base: i64 = conn
        .query_row("SELECT max(seq) + 1 FROM records", [], |r| r.get(0))
        .expect("max");
    let have: i64 = conn
        .query_row("SELECT count(*) FROM citizens", [], |r| r.get(0))
        .expect("count");
    let copies = (rows - have).max(0) / have.max(1);
    conn.execute_batch("BEGIN").expect("begin");
    for k in 1..=copies {
        let offset = base * k;
        conn.execute(
            "INSERT INTO records(seq, record_id, kind, version, last_position, state)
             SELECT seq + ?1, printf('citizen-%08x-0000-4000-8000-%012x', ?2, seq), kind, version,
                    last_position, state
             FROM records WHERE seq < ?3",
            rusqlite::params![offset, k, base],
        )
        .expect("records");
        conn.execute(
            "INSERT INTO citizens(seq, pin, name_exact, name_folded, commune, birth_year, status, merged_into)
             SELECT seq + ?1, printf('%012d', seq + ?1), name_exact, name_folded,
                    CASE WHEN (seq + ?2) % 5 = 0 THEN '10507' ELSE '11311' END,
                    birth_year, status, merged_into
             FROM citizens WHERE seq < ?3",
            rusqlite::params![offset, k, base],
        )
        .expect("citizens");
        for (table, column) in [
            ("citizen_names_folded", "folded"),
            ("citizen_names_exact", "exact"),
        ] {
            conn.execute(
                &format!(
                    "INSERT INTO {table}(rowid, {column})
                     SELECT seq, name_{column} FROM citizens WHERE seq >= ?1 AND seq < ?2"
                ),
                rusqlite::params![offset, offset + base],
            )
            .expect("fts");
        }
    }
    conn.execute_batch("COMMIT; ANALYZE;").expect("commit");
    let count: i64 = conn
        .query_row("SELECT count(*) FROM citizens", [], |r| r.get(0))
        .expect("count");
    eprintln!("cloned up to {count} citizens in {:?}", started.elapsed());
    drop(conn);

    let time = |label: &str, started: Instant, n: usize| {
        eprintln!("{label:<48} {:>10.2?}  ({n} rows)", started.elapsed());
    };
    for name in [
        "nguyen van h",
        "nguyen van hoa",
        "Nguyễn Văn Hòa",
        "Nguyễn",
        "hoa",
        "thuy",
        "zzz",
    ] {
        let filter = CitizenFilter {
            name: Some(name.to_owned()),
            ..CitizenFilter::default()
        };
        let started = Instant::now();
        let page = p.search_citizens(&filter, 20, None).await.expect("search");
        time(
            &format!("search {name:?}, first page"),
            started,
            page.edges.len(),
        );
        let mut after = page.end_cursor().cloned();
        for _ in 0..20 {
            let page = p
                .search_citizens(&filter, 20, after.clone())
                .await
                .expect("page");
            after = page.end_cursor().cloned();
        }
        let started = Instant::now();
        let page = p.search_citizens(&filter, 20, after).await.expect("page");
        time(
            &format!("search {name:?}, page 22"),
            started,
            page.edges.len(),
        );
    }
    let combos = [
        (
            "name + commune 10507",
            CitizenFilter {
                name: Some("Trần Thị Lan".to_owned()),
                admin_unit: Some(unit("10507")),
                ..CitizenFilter::default()
            },
        ),
        (
            "name + birth years 1970-1972",
            CitizenFilter {
                name: Some("pham hung".to_owned()),
                birth_year_from: Some(1970),
                birth_year_to: Some(1972),
                ..CitizenFilter::default()
            },
        ),
        (
            "commune 10507",
            CitizenFilter {
                admin_unit: Some(unit("10507")),
                ..CitizenFilter::default()
            },
        ),
        (
            "status deceased (none)",
            CitizenFilter {
                status: Some(CitizenStatus::Deceased),
                ..CitizenFilter::default()
            },
        ),
    ];
    for (label, filter) in combos {
        let started = Instant::now();
        let page = p.search_citizens(&filter, 20, None).await.expect("search");
        time(label, started, page.edges.len());
    }
    let some_pin = pin(events / 2, Sex::Male, 1940 + ((events / 2) % 80) as u16);
    let started = Instant::now();
    let found = p.citizen_by_pin(&some_pin).await.expect("pin");
    time("citizen_by_pin", started, usize::from(found.is_some()));
    let ids: Vec<CitizenId> = (0..100u128)
        .map(|n| CitizenId(Uuid::from_u128(0x1_0000_0000 + n * 7)))
        .collect();
    let started = Instant::now();
    let loaded = p.citizens_by_ids(&ids).await.expect("ids");
    time("citizens_by_ids x100", started, loaded.len());
    let started = Instant::now();
    let changes = p
        .changes(Some(total / 2), &["citizen".to_owned()], &[], 100)
        .await
        .expect("changes");
    time("changes, citizen category, 100", started, changes.len());
}
