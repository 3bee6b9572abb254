//! The load generator: concurrent clients sending one operation's requests, and what they
//! measured.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::ops::{Expect, Op, check};
use crate::server::{Server, metrics, start_floor};
use crate::steps::cpu_micros;
use crate::{Params, XROAD_ISSUE, XROAD_PURPOSE, XROAD_USER};

// --- the load generator -------------------------------------------------------------------------

#[derive(Default)]
pub struct Load {
    pub requests: u64,
    pub failures: u64,
    /// Category → (count, first detail).
    pub failure_kinds: BTreeMap<String, (u64, String)>,
    pub latencies_us: Vec<u32>,
    pub elapsed: Duration,
    pub response_bytes: u64,
}

impl Load {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    pub fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
    /// Counts the failures of `warm` (a warm-up) too; its requests and latencies are not counted.
    pub fn add_failures(&mut self, warm: Load) {
        self.failures += warm.failures;
        for (k, (n, d)) in warm.failure_kinds {
            self.failure_kinds.entry(k).or_insert((0, d)).0 += n;
        }
    }

    pub fn merge(&mut self, other: Load) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.response_bytes += other.response_bytes;
        for (k, (n, d)) in other.failure_kinds {
            let e = self.failure_kinds.entry(k).or_insert((0, d));
            e.0 += n;
        }
        self.latencies_us.extend(other.latencies_us);
    }
}

pub async fn one(client: &reqwest::Client, op: &Op, i: usize, load: &mut Load) {
    let (body, expect) = &op.requests[i % op.requests.len()];
    let mut req = client
        .post(&op.url)
        .header("content-type", "application/json")
        .bearer_auth(&op.token)
        .body(*body);
    if op.xroad {
        req = req
            .header("X-Road-UserId", XROAD_USER)
            .header("X-Road-Issue", XROAD_ISSUE)
            .header("X-Purpose", XROAD_PURPOSE)
            .header("X-Purpose", XROAD_PURPOSE);
    }
    let started = Instant::now();
    let result = match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.bytes().await {
                Ok(bytes) => {
                    let us = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    load.latencies_us.push(us);
                    load.response_bytes += bytes.len() as u64;
                    check(status, &bytes, expect)
                }
                Err(e) => Err(("transport".to_owned(), e.to_string())),
            }
        }
        Err(e) => Err(("transport".to_owned(), e.to_string())),
    };
    load.requests += 1;
    if let Err((kind, detail)) = result {
        load.failures += 1;
        let e = load.failure_kinds.entry(kind).or_insert((0, detail));
        e.0 += 1;
    }
}

/// `clients` tasks send `op`'s requests (round-robin over its keys) until `duration` has passed
/// or `max` requests were sent.
pub async fn drive(
    client: &reqwest::Client,
    op: &Arc<Op>,
    clients: usize,
    duration: Duration,
    max: u64,
) -> Load {
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, op, counter) = (client.clone(), op.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut load = Load::default();
            loop {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if n >= max || Instant::now() >= deadline {
                    break;
                }
                one(&client, &op, n as usize, &mut load).await;
            }
            load
        }));
    }
    let mut total = Load::default();
    for t in tasks {
        total.merge(t.await.unwrap());
    }
    total.elapsed = started.elapsed();
    total.latencies_us.sort_unstable();
    total
}

/// One row of the report's load table.
pub struct Row {
    pub op: String,
    pub role: &'static str,
    pub clients: usize,
    pub load: Load,
    /// Access-log appends and entries per request, from /metrics (`None` without them).
    pub access: Option<(f64, f64)>,
    /// The server's CPU time (user + system) per request, in µs.
    pub cpu_us: Option<f64>,
}

/// Every operation once (to show a failure early), the (a) response kept for the floor, (a)
/// with one client (unloaded latency), then every operation with `clients` clients; each load
/// after a warm-up whose failures count. Returns the rows and the kept response.
pub async fn measure(
    client: &reqwest::Client,
    ops: &[Arc<Op>],
    url: &str,
    service: &str,
    server: &Server,
    params: &Params,
    findings: &mut Vec<String>,
) -> (Vec<Row>, Vec<u8>) {
    let (server_addr, server_pid) = (server.addr.as_str(), server.child.id());
    let cpu = || cpu_micros(server_pid);
    let per_request = |before: Option<u64>, after: Option<u64>, load: &Load| {
        Some((after? - before?) as f64 / (load.requests > 0).then_some(load.requests)? as f64)
    };
    let (clients, seconds, max_requests) = (params.clients, params.seconds, params.max_requests);
    let duration = Duration::from_secs(seconds);
    let warmup = Duration::from_secs(1);
    let mut rows: Vec<Row> = Vec::new();
    // Every operation once, sequentially, to show a failure early and keep a real response.
    for op in ops {
        let mut probe = Load::default();
        one(client, op, 0, &mut probe).await;
        if let Some((k, (_, d))) = probe.failure_kinds.iter().next() {
            eprintln!("[scale] first {} failed: {k}: {d}", op.label);
        }
    }
    let (b, _) = &ops[0].requests[0];
    let resp = client
        .post(url)
        .bearer_auth(service)
        .header("content-type", "application/json")
        .header("X-Road-UserId", XROAD_USER)
        .header("X-Road-Issue", XROAD_ISSUE)
        .header("X-Purpose", XROAD_PURPOSE)
        .body(*b)
        .send()
        .await
        .unwrap();
    let mut captured = resp.bytes().await.unwrap().to_vec();
    if check(200, &captured, &Expect::AnyCitizen).is_err() {
        // Fall back to a well-formed response of the same shape so the floor still runs.
        captured = serde_json::to_vec(&json!({"data":{"citizen":{"pin":"000000000000"}}})).unwrap();
        findings.push("the captured (a) response was not a citizen; floor uses a stub".into());
    }

    // Unloaded latency: one client.
    let single = &ops[0];
    let warm = drive(client, single, 1, warmup, max_requests).await;
    let cpu_before = cpu();
    let mut load = drive(
        client,
        single,
        1,
        Duration::from_secs(seconds.min(5)),
        max_requests,
    )
    .await;
    let cpu_us = per_request(cpu_before, cpu(), &load);
    load.add_failures(warm);
    rows.push(Row {
        op: single.label.clone(),
        role: single.role,
        clients: 1,
        load,
        access: None,
        cpu_us,
    });

    for op in ops {
        eprintln!(
            "[scale] load: {} as {}, {clients} clients",
            op.label, op.role
        );
        let warm = drive(client, op, clients, warmup, max_requests).await;
        let before = metrics(client, server_addr).await;
        let cpu_before = cpu();
        let mut load = drive(client, op, clients, duration, max_requests).await;
        let cpu_us = per_request(cpu_before, cpu(), &load);
        let after = metrics(client, server_addr).await;
        load.add_failures(warm);
        let access = match (before, after) {
            (Some(b), Some(a)) if load.requests > 0 => Some((
                (a.0 - b.0) / load.requests as f64,
                (a.1 - b.1) / load.requests as f64,
            )),
            _ => None,
        };
        eprintln!(
            "[scale]   {} req in {:.1} s = {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} failures",
            load.requests,
            load.elapsed.as_secs_f64(),
            load.rps(),
            load.pct(0.5),
            load.pct(0.99),
            load.failures
        );
        rows.push(Row {
            op: op.label.clone(),
            role: op.role,
            clients,
            load,
            access,
            cpu_us,
        });
    }
    (rows, captured)
}

/// The HTTP floor: (a)'s requests against an axum handler answering `bytes`, with one client
/// and with `clients`, after a warm-up.
pub fn floor(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    first: &Op,
    service: &str,
    bytes: Vec<u8>,
    params: &Params,
) -> (Load, Load) {
    let (clients, seconds, max_requests) = (params.clients, params.seconds, params.max_requests);
    let duration = Duration::from_secs(seconds);
    let warmup = Duration::from_secs(1);
    let floor_addr = start_floor(bytes);
    let floor_op = Arc::new(Op {
        label: "HTTP floor: axum, fixed bytes".into(),
        role: "–",
        url: format!("http://{floor_addr}/graphql"),
        token: service.to_owned(),
        xroad: true,
        requests: first
            .requests
            .iter()
            .map(|(b, _)| (*b, Expect::AnyCitizen))
            .collect(),
    });
    let floor = rt.block_on(async {
        let _ = drive(client, &floor_op, clients, warmup, max_requests).await;
        let one_client = drive(
            client,
            &floor_op,
            1,
            Duration::from_secs(seconds.min(5)),
            max_requests,
        )
        .await;
        let many = drive(client, &floor_op, clients, duration, max_requests).await;
        (one_client, many)
    });
    eprintln!(
        "[scale] floor: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        floor.1.rps(),
        floor.1.pct(0.5),
        floor.1.pct(0.99)
    );
    floor
}
