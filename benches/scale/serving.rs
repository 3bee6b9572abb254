//! Phase 2, serving: `citydb serve` on the imported data, every operation's load and the HTTP
//! floor, then the server stopped and its access log verified.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use crate::load::{self, Load, Row};
use crate::offline::Offline;
use crate::ops;
use crate::report::loadavg;
use crate::server::{start_server, stop_server};
use crate::steps::{AnonSampler, Step, dir_sizes, run_step, verified_events};
use crate::{Dirs, Params};

/// What serving measured.
pub struct Served {
    /// From the start of `citydb serve` until `/readyz` answered 200.
    pub ready_after: Duration,
    /// From the start until its check of `projections.db` ended (the loads begin after it).
    pub checked_after: Duration,
    pub sizes_ready: BTreeMap<String, u64>,
    pub rows: Vec<Row>,
    /// The floor with one client, and with `clients`.
    pub floor: (Load, Load),
    pub load_after: String,
    pub serve_anon: Option<u64>,
    pub serve_hwm: Option<u64>,
    pub sizes_load: BTreeMap<String, u64>,
    pub access_verify: Step,
    pub access_events: Option<u64>,
}

pub fn run(
    params: &Params,
    dirs: &Dirs,
    offline: &Offline,
    config_path: &Path,
    tokens: &HashMap<&'static str, String>,
    use_time: bool,
    findings: &mut Vec<String>,
) -> Served {
    let data = &dirs.data;
    // Without rebuild-projections, the first start builds the projections.
    if !offline.has_rebuild {
        for f in ["projections.db", "projections.db-wal", "projections.db-shm"] {
            let _ = std::fs::remove_file(data.join(f));
        }
    }
    eprintln!("[scale] starting citydb serve");
    let server = start_server(&dirs.with_data(&[]), config_path, &dirs.logs);
    eprintln!(
        "[scale]   ready on {} after {:.2} s; its projections file checked after {:.2} s",
        server.addr,
        server.ready_after.as_secs_f64(),
        server.checked_after.as_secs_f64()
    );
    let sizes_ready = dir_sizes(data);
    let serve_sampler = AnonSampler::start(server.child.id());
    let url = format!("http://{}/graphql", server.addr);

    let service = tokens["service"].clone();
    let steward = tokens["steward"].clone();
    let mut ops = ops::operations(&offline.fx, params.seed, &url, &service, &steward);
    if !params.only.is_empty() {
        ops.retain(|o| params.only.iter().any(|p| o.label.starts_with(p.as_str())));
        assert!(!ops.is_empty(), "CITYDB_SCALE_OPS matches no operation");
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .unwrap();
    // The next-page operation needs the cursors of first pages: fetched now, run after them.
    if let Some(at) = ops.iter().position(|o| o.label.starts_with("(b1)")) {
        let next = rt.block_on(ops::next_pages(&client, &ops[at]));
        ops.insert(at + 1, next);
    }
    let (rows, floor_bytes) = rt.block_on(load::measure(
        &client, &ops, &url, &service, &server, params, findings,
    ));
    let floor = load::floor(&rt, &client, &ops[0], &service, floor_bytes, params);
    let load_after = loadavg();
    let ready_after = server.ready_after;
    let checked_after = server.checked_after;
    let serve_anon = serve_sampler.peak();
    drop(serve_sampler);
    let serve_hwm = stop_server(server);
    let sizes_load = dir_sizes(data);

    let access_verify = run_step(
        &dirs.logs,
        "verify-access-log",
        &dirs.with_data(&["verify", "--access-log"]),
        use_time,
    );
    if access_verify.code != Some(0) {
        findings.push(format!(
            "`citydb verify --access-log` exit {:?}: {}",
            access_verify.code,
            access_verify.stdout.trim()
        ));
    }
    let access_events = verified_events(&access_verify.stdout);
    Served {
        ready_after,
        checked_after,
        sizes_ready,
        rows,
        floor,
        load_after,
        serve_anon,
        serve_hwm,
        sizes_load,
        access_verify,
        access_events,
    }
}
