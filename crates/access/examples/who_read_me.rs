//! "Who read my data" at city scale: the latency of one citizen's page of the access log
//! (`EntryStore::for_citizen`, what `accessLog(citizen:)` serves) on an embedded access log
//! that holds a city's worth of reads. docs/benchmarks.md ("Who read my data") reports it.
//!
//! ```sh
//! cargo run --release -p citydb-access --example who_read_me [-- CITIZENS REQUESTS LOOKUPS]
//! ```
//!
//! The log is filled through the store's own writer (32 concurrent clients, group commit,
//! `synchronous=FULL`) with REQUESTS requests of a service: four in five read one citizen (a
//! PIN lookup), one in five twenty (a page of a name search), the citizens drawn from
//! CITIZENS. Then LOOKUPS citizens, drawn at random, each ask for their newest 20 reads: once
//! one at a time (latency), once from 32 concurrent clients (throughput).

use std::sync::Arc;
use std::time::{Duration, Instant};

use citydb_access::{Draft, EntryStore, SqliteEntries};
use citydb_sqlite::{SqliteConfig, SqliteLog};
use uuid::Uuid;

/// A small deterministic generator (xorshift64*): the same citizens are read on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn request(n: u64, reads: Vec<Uuid>) -> Draft {
    Draft {
        principal: ["social-insurance", "tax", "land-registry", "one-stop-shop"][n as usize % 4]
            .into(),
        role: "service".into(),
        end_user: Some(format!("officer-{:04}", n % 500)),
        case: Some(format!("HS-2026-{:07}", n / 5)),
        purpose: Some("benefit-eligibility".into()),
        operation: if reads.len() > 1 {
            "SearchCitizens"
        } else {
            "ByPin"
        }
        .into(),
        correlation_id: Uuid::now_v7(),
        reads: reads
            .into_iter()
            .map(|c| (c, "identity".to_owned()))
            .collect(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (citizens, requests, lookups) = (
        arg(1, 2_000_000) as usize,
        arg(2, 5_000_000),
        arg(3, 10_000) as usize,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access-log.db");
    let config = SqliteConfig::default();
    let _v1 = SqliteLog::open(&path, config.clone()).expect("v1 log");
    let entries = Arc::new(SqliteEntries::open(&path, &config).expect("v2 entries"));
    let pool: Arc<Vec<Uuid>> = Arc::new((0..citizens).map(|_| Uuid::now_v7()).collect());

    // Fill: 32 clients, each its own share of the requests.
    let started = Instant::now();
    let clients = 32u64;
    let workers = (0..clients).map(|w| {
        let (entries, pool) = (entries.clone(), pool.clone());
        tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w + 1));
            let mut n = w;
            while n < requests {
                let per = if n % 5 == 4 { 20 } else { 1 };
                // A request names each citizen once.
                let mut reads: Vec<Uuid> = Vec::with_capacity(per);
                while reads.len() < per.min(pool.len()) {
                    let c = pool[rng.below(pool.len())];
                    if !reads.contains(&c) {
                        reads.push(c);
                    }
                }
                entries.append(request(n, reads)).await.expect("append");
                n += clients;
            }
        })
    });
    for w in futures_util::future::join_all(workers).await {
        w.expect("writer");
    }
    let fill = started.elapsed();
    let reads = requests * 4 / 5 + requests / 5 * 20;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(path.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!(
        "filled: {requests} requests, {reads} citizen reads of {citizens} citizens in {:.1} s \
         ({:.0} requests/s); file {:.0} MB",
        fill.as_secs_f64(),
        requests as f64 / fill.as_secs_f64(),
        bytes as f64 / 1e6
    );

    // One at a time.
    let mut rng = Rng(42);
    let asked: Vec<Uuid> = (0..lookups).map(|_| pool[rng.below(pool.len())]).collect();
    let mut times = Vec::with_capacity(lookups);
    let mut found = 0usize;
    for c in &asked {
        let t = Instant::now();
        let page = entries.for_citizen(*c, None, 20).await.expect("page");
        times.push(t.elapsed());
        found += page.len();
        // Newest first: the citizen's ordinals strictly decrease.
        assert!(page.windows(2).all(|w| w[0].ordinal > w[1].ordinal));
    }
    times.sort();
    println!(
        "one client: {lookups} pages of ≤ 20 reads ({:.1} reads per page): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        found as f64 / lookups as f64,
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );

    // 32 concurrent clients.
    let asked = Arc::new(asked);
    let started = Instant::now();
    let readers = (0..32usize).map(|r| {
        let (entries, asked) = (entries.clone(), asked.clone());
        tokio::spawn(async move {
            let mut i = r;
            while i < asked.len() {
                entries.for_citizen(asked[i], None, 20).await.expect("page");
                i += 32;
            }
        })
    });
    for r in futures_util::future::join_all(readers).await {
        r.expect("reader");
    }
    println!(
        "32 clients: {:.0} pages/s",
        lookups as f64 / started.elapsed().as_secs_f64()
    );
}
