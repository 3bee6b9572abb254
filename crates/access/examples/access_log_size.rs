//! Bytes on disk per logged request, v1 against v2, and the v2 write rate with concurrent
//! clients. docs/benchmarks.md ("Compact access log") reports its output.
//!
//! ```sh
//! cargo run --release -p citydb-access --example access_log_size [-- REQUESTS [CLIENTS]]
//! ```
//!
//! Embedded store: a fresh `access-log.db` per scenario (`synchronous=FULL`), its size taken
//! after a WAL checkpoint as (page_count - freelist_count) × page_size, before and after the
//! measured requests. PostgreSQL (when a test cluster can be started, as the tests do):
//! `pg_total_relation_size` of the access tables, before and after.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use citydb_access::{Draft, EntryStore, PostgresEntries, SqliteEntries};
use citydb_log::{EventLog, ExpectedVersion, Metadata, NewEvent, StreamAppend, StreamId};
use citydb_postgres::testkit::TestCluster;
use citydb_postgres::{PostgresConfig, PostgresLog};
use citydb_sqlite::{SqliteConfig, SqliteLog};
use uuid::Uuid;

/// A request as a service at the counter makes it: one of 500 officers, a dossier looked up a
/// few times (a new case every 5 requests), one purpose, one operation.
fn request(n: u64, citizens: Vec<Uuid>) -> Draft {
    Draft {
        principal: "social-insurance".into(),
        role: "service".into(),
        end_user: Some(format!("officer-{:04}", n % 500)),
        case: Some(format!("HS-2026-{:07}", n / 5)),
        purpose: Some("benefit-eligibility".into()),
        operation: if citizens.len() > 1 {
            "SearchCitizens"
        } else {
            "ByPin"
        }
        .into(),
        correlation_id: Uuid::now_v7(),
        reads: citizens
            .into_iter()
            .map(|c| (c, "identity".to_owned()))
            .collect(),
    }
}

/// The same request as v1 events: one `PersonalDataRead` per citizen.
fn v1_request(d: &Draft) -> Vec<StreamAppend> {
    let metadata = Metadata {
        actor: Some(d.principal.clone()),
        role: Some(d.role.clone()),
        correlation_id: Some(d.correlation_id),
        end_user: d.end_user.clone(),
        case_id: d.case.clone(),
        effective_at: None,
        ..Metadata::default()
    };
    d.reads
        .iter()
        .map(|(c, _)| {
            let data = serde_json::json!({
                "principal": d.principal, "role": d.role, "end_user": d.end_user,
                "case": d.case, "purpose": d.purpose, "field_groups": ["identity"],
                "operation": d.operation, "correlation_id": d.correlation_id,
            });
            StreamAppend::new(
                StreamId::new("access", *c).expect("stream"),
                ExpectedVersion::Any,
                vec![NewEvent::new("PersonalDataRead", 1, &data, &metadata).expect("event")],
            )
        })
        .collect()
}

fn file_bytes(path: &Path) -> u64 {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    let q = |p: &str| -> u64 {
        conn.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, i64>(0))
            .expect("pragma") as u64
    };
    (q("page_count") - q("freelist_count")) * q("page_size")
}

/// Citizens read by the requests: `fresh` ones (first read ever) or from a pool read before.
struct Citizens {
    pool: Vec<Uuid>,
    next: usize,
}

impl Citizens {
    /// A pool of citizens; unless `fresh`, each read once through `entries` (interned and
    /// indexed), as in a log that has run for a while.
    async fn read_before(entries: &dyn EntryStore, fresh: bool) -> Citizens {
        let citizens = Citizens {
            pool: (0..POOL).map(|_| Uuid::now_v7()).collect(),
            next: 0,
        };
        if !fresh {
            for (n, chunk) in citizens.pool.chunks(20).enumerate() {
                entries
                    .append(request(n as u64, chunk.to_vec()))
                    .await
                    .expect("warm-up");
            }
        }
        citizens
    }

    fn take(&mut self, n: usize, fresh: bool) -> Vec<Uuid> {
        if fresh {
            return (0..n).map(|_| Uuid::now_v7()).collect();
        }
        let mut out: Vec<Uuid> = Vec::with_capacity(n);
        while out.len() < n {
            // A stride that visits the pool in a scattered order.
            self.next = (self.next + 7919) % self.pool.len();
            let c = self.pool[self.next];
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }
}

/// Runs `requests` requests of `per` citizens each from `clients` concurrent clients.
async fn run_v2(
    store: Arc<dyn EntryStore>,
    citizens: &mut Citizens,
    requests: u64,
    per: usize,
    fresh: bool,
    clients: usize,
) -> f64 {
    let drafts: Vec<Draft> = (0..requests)
        .map(|n| request(n, citizens.take(per, fresh)))
        .collect();
    let queue = Arc::new(std::sync::Mutex::new(drafts));
    let started = Instant::now();
    let workers = (0..clients).map(|_| {
        let (store, queue) = (store.clone(), queue.clone());
        tokio::spawn(async move {
            loop {
                let Some(d) = queue.lock().expect("queue").pop() else {
                    break;
                };
                store.append(d).await.expect("appended");
            }
        })
    });
    for w in futures_util::future::join_all(workers).await {
        w.expect("worker");
    }
    requests as f64 / started.elapsed().as_secs_f64()
}

async fn run_v1(log: Arc<dyn EventLog>, requests: u64, per: usize, clients: usize) -> f64 {
    let mut citizens = Citizens {
        pool: Vec::new(),
        next: 0,
    };
    let drafts: Vec<Draft> = (0..requests)
        .map(|n| request(n, citizens.take(per, true)))
        .collect();
    let queue = Arc::new(std::sync::Mutex::new(drafts));
    let started = Instant::now();
    let workers = (0..clients).map(|_| {
        let (log, queue) = (log.clone(), queue.clone());
        tokio::spawn(async move {
            loop {
                let Some(d) = queue.lock().expect("queue").pop() else {
                    break;
                };
                log.append(v1_request(&d)).await.expect("appended");
            }
        })
    });
    for w in futures_util::future::join_all(workers).await {
        w.expect("worker");
    }
    requests as f64 / started.elapsed().as_secs_f64()
}

const POOL: usize = 20_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let requests: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let clients: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(32);
    println!("{requests} requests per scenario, {clients} concurrent clients");
    println!("store | scenario | bytes/request | requests/s | commits");
    let config = SqliteConfig::default();

    // v1 on the embedded store.
    for per in [1usize, 20] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("access-log.db");
        let log: Arc<dyn EventLog> = Arc::new(SqliteLog::open(&path, config.clone()).expect("v1"));
        let before = file_bytes(&path);
        let rate = run_v1(log, requests, per, clients).await;
        let grew = file_bytes(&path) - before;
        println!(
            "embedded | v1, {per} citizen(s) per request | {:.0} | {rate:.0} | -",
            grew as f64 / requests as f64
        );
    }

    // v2 on the embedded store: cold (citizens read for the first time) and warm.
    for (per, fresh) in [(1usize, true), (1, false), (20, true), (20, false)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("access-log.db");
        let _v1 = SqliteLog::open(&path, config.clone()).expect("v1");
        let entries = Arc::new(SqliteEntries::open(&path, &config).expect("v2"));
        let mut citizens = Citizens::read_before(&*entries, fresh).await;
        entries.merge_index().await.expect("merged");
        let before = (file_bytes(&path), entries.commits());
        let rate = run_v2(
            entries.clone(),
            &mut citizens,
            requests,
            per,
            fresh,
            clients,
        )
        .await;
        // What a node opening the file now pays to derive the tail again from the entries.
        let opening = Instant::now();
        drop(SqliteEntries::open(&path, &config).expect("reopened"));
        println!(
            "embedded | (opening the file again, its tail derived: {:.0} ms)",
            opening.elapsed().as_secs_f64() * 1000.0
        );
        // The index rows still in the tail are written now, so that the size counts them, and
        // the time it takes is counted in a second rate: the appends' work, all of it done.
        let merging = Instant::now();
        entries.merge_index().await.expect("merged");
        let merged_rate =
            requests as f64 / (requests as f64 / rate + merging.elapsed().as_secs_f64());
        let grew = file_bytes(&path) - before.0;
        println!(
            "embedded | v2, {per} citizen(s) per request, {} | {:.0} | {rate:.0} ({merged_rate:.0} with the tail merged) | {}",
            if fresh { "first reads" } else { "read before" },
            grew as f64 / requests as f64,
            entries.commits() - before.1
        );
    }

    // PostgreSQL, when a private cluster can be started.
    let Ok(cluster) = TestCluster::start() else {
        println!("postgres | skipped: no PostgreSQL binaries");
        return;
    };
    let size = |url: String, tables: &'static str| async move {
        let db = citydb_postgres::testkit::connect(&url)
            .await
            .expect("connect");
        db.batch_execute("CHECKPOINT").await.expect("checkpoint");
        let row = db
            .query_one(
                &format!(
                    "SELECT sum(pg_total_relation_size(c.oid))::int8 FROM pg_class c
                     WHERE c.relkind = 'r' AND c.relname IN ({tables})"
                ),
                &[],
            )
            .await
            .expect("size");
        row.get::<_, Option<i64>>(0).unwrap_or(0) as u64
    };
    for per in [1usize, 20] {
        let url = cluster.create_database().await.expect("database");
        let log: Arc<dyn EventLog> = Arc::new(
            PostgresLog::connect(&url, PostgresConfig::default())
                .await
                .expect("v1"),
        );
        let before = size(url.clone(), "'events'").await;
        let rate = run_v1(log, requests, per, clients).await;
        let grew = size(url.clone(), "'events'").await - before;
        println!(
            "postgres | v1, {per} citizen(s) per request | {:.0} | {rate:.0} | -",
            grew as f64 / requests as f64
        );
    }
    const V2_TABLES: &str =
        "'access_entries', 'access_strings', 'access_citizens', 'access_by_citizen_chunks'";
    for (per, fresh) in [(1usize, true), (1, false), (20, true), (20, false)] {
        let url = cluster.create_database().await.expect("database");
        let _v1 = PostgresLog::connect(&url, PostgresConfig::default())
            .await
            .expect("v1");
        let entries = Arc::new(
            PostgresEntries::connect(&url, std::time::Duration::from_secs(10))
                .await
                .expect("v2"),
        );
        let mut citizens = Citizens::read_before(&*entries, fresh).await;
        let before = (size(url.clone(), V2_TABLES).await, entries.commits());
        let rate = run_v2(
            entries.clone(),
            &mut citizens,
            requests,
            per,
            fresh,
            clients,
        )
        .await;
        let grew = size(url.clone(), V2_TABLES).await - before.0;
        println!(
            "postgres | v2, {per} citizen(s) per request, {} | {:.0} | {rate:.0} | {}",
            if fresh { "first reads" } else { "read before" },
            grew as f64 / requests as f64,
            entries.commits() - before.1
        );
    }
}
