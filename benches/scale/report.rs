//! The markdown report: figures formatted, and the machine they were measured on.

use std::fmt::Write as _;
use std::time::Duration;

use crate::Params;
use crate::load::Load;
use crate::offline::Offline;
use crate::ops::KEYS;
use crate::serving::Served;

pub fn mb(bytes: Option<u64>) -> String {
    match bytes {
        Some(b) if b >= 10 << 30 => format!("{:.0} GB", b as f64 / 1073741824.0),
        Some(b) if b >= 10 << 20 => format!("{:.0} MB", b as f64 / 1048576.0),
        Some(b) => format!("{:.1} MB", b as f64 / 1048576.0),
        None => "–".into(),
    }
}

/// "total (anonymous)" from kB figures.
pub fn rss(total_kb: Option<u64>, anon_kb: Option<u64>) -> String {
    format!(
        "{} ({})",
        mb(total_kb.map(|k| k * 1024)),
        mb(anon_kb.map(|k| k * 1024))
    )
}

pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 100.0 {
        format!("{s:.0} s")
    } else if s >= 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.2} s")
    }
}

pub fn thousands(n: f64) -> String {
    let n = n.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n).collect::<String>() + "…"
    }
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

fn mem_gb() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| format!("{:.0}", kb / 1048576.0))
        .unwrap_or_else(|| "?".into())
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| "?".into())
}

/// The report of a run, as markdown.
pub fn render(
    params: &Params,
    offline: &Offline,
    served: &Served,
    use_time: bool,
    load_before: &str,
    findings: &[String],
) -> String {
    let mut md = String::new();
    steps_table(&mut md, params, offline, served);
    data_dir_table(&mut md, params, offline, served);
    load_table(&mut md, params, served);
    footer(&mut md, offline, served, use_time, load_before, findings);
    md
}

/// The heading, and one row per step with its time, rate, memory and output.
fn steps_table(md: &mut String, params: &Params, offline: &Offline, served: &Served) {
    let (citizens, seed) = (params.citizens, params.seed);
    let Offline { fx, events, .. } = offline;
    let businesses = citizens * 3 / 20;
    let parcels = citizens / 2;
    let _ = writeln!(
        md,
        "#### {} citizens, {} businesses, {} parcels (seed {seed}): {} lines, {} events\n",
        thousands(citizens as f64),
        thousands(businesses as f64),
        thousands(parcels as f64),
        thousands(fx.lines as f64),
        if offline.reused {
            "not counted".to_owned()
        } else {
            thousands(*events as f64)
        },
    );
    if params.postgres {
        let _ = writeln!(
            md,
            "Store: the logs (events, access log) in PostgreSQL — a throwaway local cluster the bench started, its default durability (`fsync`, `synchronous_commit` on) — and every step and the server given `--store`; the data directory holds the projections only.\n"
        );
    }
    let _ = writeln!(
        md,
        "| step | wall time | rate | peak RSS (anonymous) | output |"
    );
    let _ = writeln!(md, "| --- | ---: | ---: | ---: | --- |");
    if offline.reused {
        let _ = writeln!(
            md,
            "| offline steps | not run: an earlier run's data directory and fixture served as they are (`CITYDB_SCALE_REUSE=1`) | | | |"
        );
    } else {
        offline_rows(md, offline);
    }
    serve_rows(md, offline, served);
}

/// `n` things in `d`, per second.
fn rate(n: u64, d: Duration, what: &str) -> String {
    format!(
        "{} {what}/s",
        thousands(n as f64 / d.as_secs_f64().max(1e-9))
    )
}

/// The offline steps' rows of [`steps_table`].
fn offline_rows(md: &mut String, offline: &Offline) {
    let Offline {
        fx,
        events,
        gen_step,
        fixture_bytes,
        import,
        import_summary,
        verify,
        export_wall,
        export_bytes,
        export_verify,
        rebuild_label,
        rebuild_step,
        ..
    } = offline;
    let (events, fixture_bytes, export_wall, export_bytes) =
        (*events, *fixture_bytes, *export_wall, *export_bytes);
    let _ = writeln!(
        md,
        "| `citydb fixtures` | {} | {} | {} | {} ({} lines) |",
        secs(gen_step.wall),
        rate(fx.lines, gen_step.wall, "lines"),
        rss(gen_step.peak_rss_kb, gen_step.peak_anon_kb),
        mb(Some(fixture_bytes)),
        thousands(fx.lines as f64)
    );
    let _ = writeln!(
        md,
        "| `citydb import` (default: 64 jobs, durability normal) | {} | {} ({}) | {} | {} |",
        secs(import.wall),
        rate(events, import.wall, "events"),
        rate(fx.lines, import.wall, "lines"),
        rss(import.peak_rss_kb, import.peak_anon_kb),
        import_summary.replace('|', "/")
    );
    let _ = writeln!(
        md,
        "| `citydb verify` | {} | {} | {} | {} |",
        secs(verify.wall),
        rate(events, verify.wall, "events"),
        rss(verify.peak_rss_kb, verify.peak_anon_kb),
        verify
            .stdout
            .lines()
            .next()
            .unwrap_or_default()
            .split(" (")
            .next()
            .unwrap_or_default()
    );
    let _ = writeln!(
        md,
        "| `citydb export \\| citydb verify --file -` | {} | {} ({}/s) | | {} exported; {} |",
        secs(export_wall),
        rate(events, export_wall, "events"),
        mb(Some(
            (export_bytes as f64 / export_wall.as_secs_f64().max(1e-9)) as u64
        )),
        mb(Some(export_bytes)),
        export_verify
            .stdout
            .lines()
            .next()
            .unwrap_or_default()
            .split(" (")
            .next()
            .unwrap_or_default()
    );
    if let Some(s) = rebuild_step {
        let _ = writeln!(
            md,
            "| {rebuild_label} | {} | {} | {} | {} |",
            secs(s.wall),
            rate(events, s.wall, "events"),
            rss(s.peak_rss_kb, s.peak_anon_kb),
            s.stdout.lines().next().unwrap_or_default()
        );
    }
}

/// The server's rows of [`steps_table`]: until ready, under the loads, the access log after.
fn serve_rows(md: &mut String, offline: &Offline, served: &Served) {
    let Served {
        ready_after,
        serve_anon,
        serve_hwm,
        access_verify,
        access_events,
        ..
    } = served;
    let (ready_after, serve_anon, serve_hwm, access_events) =
        (*ready_after, *serve_anon, *serve_hwm, *access_events);
    if offline.reused || offline.rebuild_step.is_some() {
        let _ = writeln!(
            md,
            "| `citydb serve` start until `/readyz` 200 | {} | | | projections up to date |",
            secs(ready_after),
        );
    } else {
        let _ = writeln!(
            md,
            "| projections: `citydb serve` without `projections.db` until `/readyz` 200 | {} | {} | | |",
            secs(ready_after),
            rate(offline.events, ready_after, "events"),
        );
    }
    let _ = writeln!(
        md,
        "| `citydb serve` start until its check of `projections.db` ended (the loads start after it) | {} | | | the node serves meanwhile |",
        secs(served.checked_after),
    );
    let _ = writeln!(
        md,
        "| `citydb serve` under the loads below | | | {} | |",
        rss(serve_hwm, serve_anon)
    );
    let _ = writeln!(
        md,
        "| `citydb verify --access-log` after the loads | {} | {} | {} | {} |",
        secs(access_verify.wall),
        access_events
            .map(|n| rate(n, access_verify.wall, "entries"))
            .unwrap_or_default(),
        rss(access_verify.peak_rss_kb, access_verify.peak_anon_kb),
        access_verify
            .stdout
            .lines()
            .next()
            .unwrap_or_default()
            .split(" (")
            .next()
            .unwrap_or_default()
    );
}

/// The data directory's files after import, when serving, and after the loads; and what the
/// access log costs per hour of load.
fn data_dir_table(md: &mut String, params: &Params, offline: &Offline, served: &Served) {
    let clients = params.clients;
    let Served {
        sizes_ready,
        sizes_load,
        rows,
        access_events,
        ..
    } = served;
    let sizes_import = &offline.sizes_import;
    let access_events = *access_events;
    let _ = writeln!(md, "\nData directory (bytes on disk, `ls -l`):\n");
    let _ = writeln!(
        md,
        "| file | after import | serving (before the loads) | after the loads |"
    );
    let _ = writeln!(md, "| --- | ---: | ---: | ---: |");
    let mut names: Vec<&String> = sizes_import
        .keys()
        .chain(sizes_ready.keys())
        .chain(sizes_load.keys())
        .collect();
    names.sort();
    names.dedup();
    for n in names {
        let _ = writeln!(
            md,
            "| `{n}` | {} | {} | {} |",
            mb(sizes_import.get(n).copied()),
            mb(sizes_ready.get(n).copied()),
            mb(sizes_load.get(n).copied())
        );
    }
    if let (Some(n), Some(size)) = (access_events, sizes_load.get("access-log.db")) {
        let _ = writeln!(
            md,
            "\nThe access log holds {} entries after the loads ({} bytes each on disk, all tables and indexes included); at the rate of (a) with {} clients below that is {} per hour of sustained load.",
            thousands(n as f64),
            thousands(*size as f64 / n.max(1) as f64),
            clients,
            rows.iter()
                .find(|r| r.clients == clients)
                .map(|r| mb(Some(
                    (r.load.rps() * 3600.0 * *size as f64 / n.max(1) as f64) as u64
                )))
                .unwrap_or_default(),
        );
    }
}

/// One row per load, and the floor's two rows.
fn load_table(md: &mut String, params: &Params, served: &Served) {
    let (clients, seconds, max_requests) = (params.clients, params.seconds, params.max_requests);
    let (rows, floor) = (&served.rows, &served.floor);
    let floor_rps = floor.1.rps();
    let floor_p50 = floor.1.pct(0.5);
    let _ = writeln!(
        md,
        "\nGraphQL over loopback, {clients} concurrent clients (1 where marked), {seconds} s each after a 1 s warm-up (at most {} requests), keys drawn from {} records per operation; every response checked:\n",
        thousands(max_requests as f64),
        thousands(KEYS as f64),
    );
    let _ = writeln!(
        md,
        "| operation | as | clients | requests | failures (incl. warm-up) | req/s | p50 ms | p90 ms | p99 ms | max ms | KB/resp | server CPU µs/req | access-log appends / entries per req | req/s vs floor | p50 vs floor |"
    );
    let _ = writeln!(
        md,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in rows {
        let vs = if r.clients == clients {
            Some((r.load.rps() / floor_rps, r.load.pct(0.5) / floor_p50))
        } else {
            Some((
                r.load.rps() / floor.0.rps(),
                r.load.pct(0.5) / floor.0.pct(0.5),
            ))
        };
        load_row(
            md, &r.op, r.role, r.clients, &r.load, r.access, r.cpu_us, vs,
        );
    }
    load_row(
        md,
        "HTTP floor: axum handler, fixed (a) response",
        "–",
        1,
        &floor.0,
        None,
        None,
        None,
    );
    load_row(
        md,
        "HTTP floor: axum handler, fixed (a) response",
        "–",
        clients,
        &floor.1,
        None,
        None,
        None,
    );
}

#[allow(clippy::too_many_arguments)]
fn load_row(
    md: &mut String,
    label: &str,
    role: &str,
    c: usize,
    l: &Load,
    access: Option<(f64, f64)>,
    cpu_us: Option<f64>,
    vs: Option<(f64, f64)>,
) {
    let _ = writeln!(
        md,
        "| {label} | {role} | {c} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {} | {} | {} | {} |",
        thousands(l.requests as f64),
        l.failures,
        thousands(l.rps()),
        l.pct(0.5),
        l.pct(0.9),
        l.pct(0.99),
        l.pct(1.0),
        l.response_bytes as f64 / l.requests.max(1) as f64 / 1024.0,
        cpu_us
            .map(|us| format!("{us:.0}"))
            .unwrap_or_else(|| "–".into()),
        access
            .map(|(w, e)| format!("{w:.2} / {e:.2}"))
            .unwrap_or_else(|| "–".into()),
        vs.map(|(r, _)| format!("{:.1} %", r * 100.0))
            .unwrap_or_else(|| "–".into()),
        vs.map(|(_, p)| format!("{p:.1}×"))
            .unwrap_or_else(|| "–".into()),
    );
}

/// The failures, the keys used, the machine, and the findings.
fn footer(
    md: &mut String,
    offline: &Offline,
    served: &Served,
    use_time: bool,
    load_before: &str,
    findings: &[String],
) {
    let fx = &offline.fx;
    let (rows, floor, load_after) = (&served.rows, &served.floor, &served.load_after);
    let mut failures = String::new();
    for r in rows {
        for (k, (n, d)) in &r.load.failure_kinds {
            let _ = writeln!(
                failures,
                "- {} ({}): {n} × {k}; first: {}",
                r.op,
                r.clients,
                truncate(d, 400)
            );
        }
    }
    for (k, (n, d)) in floor
        .0
        .failure_kinds
        .iter()
        .chain(floor.1.failure_kinds.iter())
    {
        let _ = writeln!(failures, "- floor: {n} × {k}; first: {}", truncate(d, 400));
    }
    let _ = writeln!(
        md,
        "\nKeys: {} citizens, {} parcels, {} businesses of the fixture usable as expected answers ({} records left out: touched by corrections, renames, merges, splits or retirements).",
        thousands(fx.citizens.len() as f64),
        thousands(fx.parcels.len() as f64),
        thousands(fx.businesses.len() as f64),
        fx.excluded
    );
    let _ = writeln!(
        md,
        "Peak RSS: {}; in parentheses the peak of RssAnon (heap, not the mapped SQLite files; sampled every 10 ms). Machine: {} × {}, {} GB RAM, {}; load average (1, 5, 15 min) {load_before} at the start, {load_after} after the loads.",
        if use_time {
            "`/usr/bin/time -v`"
        } else {
            "VmHWM polled from /proc"
        },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model(),
        mem_gb(),
        kernel()
    );
    if failures.is_empty() && findings.is_empty() {
        let _ = writeln!(md, "\nFailures: none.");
    } else {
        let _ = writeln!(md, "\nFailures and findings:\n\n{failures}");
        for f in findings {
            let _ = writeln!(md, "- {f}");
        }
    }
}
