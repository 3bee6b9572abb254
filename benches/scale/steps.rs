//! Running the `citydb` binary: one step to completion with its wall time and peak memory,
//! the export piped into an offline verification, and what their output says.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::BIN;
use crate::report::mb;

// --- running the binary -------------------------------------------------------------------------

pub struct Step {
    pub wall: Duration,
    pub peak_rss_kb: Option<u64>,
    /// Peak of RssAnon, sampled every 10 ms (misses peaks shorter than that).
    pub peak_anon_kb: Option<u64>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Step {
    /// A step that did not run (an earlier run's data reused).
    pub fn skipped() -> Step {
        Step {
            wall: Duration::ZERO,
            peak_rss_kb: None,
            peak_anon_kb: None,
            code: None,
            stdout: String::new(),
            stderr: String::new(),
        }
    }
}

pub fn time_v_available() -> bool {
    Path::new("/usr/bin/time").exists()
        && Command::new("/usr/bin/time")
            .args(["-v", "-o", "/dev/null", "true"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
}

/// Peak resident set size (VmHWM) of a live process, in kB.
pub fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time a process has used so far (user + system), in microseconds: what a load cost the
/// server, whatever else the machine ran (a virtual machine's steal time is not in it).
pub fn cpu_micros(pid: u32) -> Option<u64> {
    static TICKS_PER_S: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let ticks_per_s = (*TICKS_PER_S.get_or_init(|| {
        let out = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14,
    // stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 1_000_000 / ticks_per_s)
}

/// Resident anonymous memory (RssAnon: heap and stacks, not the mapped database files), in kB.
fn rss_anon_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The first child of `pid` (citydb under `/usr/bin/time`).
fn first_child(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Polls a process's RssAnon every 10 ms on a thread until dropped; `peak()` is the highest seen.
pub struct AnonSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl AnonSampler {
    pub fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kb) = rss_anon_kb(pid) {
                    p.fetch_max(kb, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        AnonSampler { peak, stop }
    }

    pub fn peak(&self) -> Option<u64> {
        Some(self.peak.load(Ordering::Relaxed)).filter(|&k| k > 0)
    }
}

impl Drop for AnonSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Runs `citydb ARGS` to completion, its output in files under `logs`, measuring wall time and
/// peak RSS (`/usr/bin/time -v` when available, else VmHWM polled every 10 ms).
pub fn run_step(logs: &Path, name: &str, args: &[&str], use_time: bool) -> Step {
    let out = logs.join(format!("{name}.out"));
    let err = logs.join(format!("{name}.err"));
    let time_file = logs.join(format!("{name}.time"));
    let mut cmd = if use_time {
        let mut c = Command::new("/usr/bin/time");
        c.arg("-v").arg("-o").arg(&time_file).arg(BIN);
        c
    } else {
        Command::new(BIN)
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    eprintln!("[scale] citydb {}", args.join(" "));
    let started = Instant::now();
    let mut child = cmd.spawn().expect("cannot start citydb");
    let mut polled = None;
    let mut anon = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let pid = if use_time {
            first_child(child.id())
        } else {
            Some(child.id())
        };
        if let Some(pid) = pid {
            if !use_time {
                polled = vm_hwm_kb(pid).or(polled);
            }
            anon = anon.max(rss_anon_kb(pid).unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = started.elapsed();
    let peak_rss_kb = if use_time {
        std::fs::read_to_string(&time_file).ok().and_then(|t| {
            t.lines()
                .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
                .and_then(|v| v.trim().parse().ok())
        })
    } else {
        polled
    };
    let step = Step {
        wall,
        peak_rss_kb,
        peak_anon_kb: Some(anon).filter(|&k| k > 0),
        code: status.code(),
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    };
    eprintln!(
        "[scale]   exit {:?} in {:.1} s, peak RSS {} (anonymous {})",
        step.code,
        wall.as_secs_f64(),
        mb(step.peak_rss_kb.map(|k| k * 1024)),
        mb(step.peak_anon_kb.map(|k| k * 1024))
    );
    step
}

/// `citydb export --data DATA | citydb verify --file -`: the whole log written out as an
/// auditor takes it away and checked offline, in one pass with no copy on disk (the export of
/// the whole city is larger than the log). Returns the wall time, the bytes that went through
/// the pipe, and the verifier's run.
pub fn export_and_verify(logs: &Path, export_args: &[&str]) -> (Duration, u64, Step) {
    eprintln!(
        "[scale] citydb {} | citydb verify --file -",
        export_args.join(" ")
    );
    let started = Instant::now();
    let mut export = Command::new(BIN)
        .args(export_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(logs.join("export.err")).unwrap())
        .spawn()
        .expect("cannot start citydb export");
    let mut verify = Command::new(BIN)
        .args(["verify", "--file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(logs.join("verify-export.err")).unwrap())
        .spawn()
        .expect("cannot start citydb verify");
    let mut from = export.stdout.take().unwrap();
    let mut to = verify.stdin.take().unwrap();
    let pump = std::thread::spawn(move || std::io::copy(&mut from, &mut to));
    let bytes = pump.join().unwrap().expect("the export pipe broke");
    let exported = export.wait().unwrap();
    let verified = verify.wait_with_output().unwrap();
    let wall = started.elapsed();
    assert!(exported.success(), "citydb export failed: {exported:?}");
    let step = Step {
        wall,
        peak_rss_kb: None,
        peak_anon_kb: None,
        code: verified.status.code(),
        stdout: String::from_utf8_lossy(&verified.stdout).into_owned(),
        stderr: std::fs::read_to_string(logs.join("verify-export.err")).unwrap_or_default(),
    };
    eprintln!(
        "[scale]   exit {:?} in {:.1} s, {} through the pipe",
        step.code,
        wall.as_secs_f64(),
        mb(Some(bytes))
    );
    (wall, bytes, step)
}

pub fn must(step: &Step, what: &str) {
    assert!(
        step.code == Some(0),
        "{what} failed (exit {:?})\nstdout:\n{}\nstderr:\n{}",
        step.code,
        step.stdout,
        step.stderr
    );
}

/// The `N` in "… N events in …" of `citydb verify`.
pub fn verified_events(stdout: &str) -> Option<u64> {
    let line = stdout.lines().find(|l| l.starts_with("intact:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn dir_sizes(dir: &Path) -> BTreeMap<String, u64> {
    let mut sizes = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if let Ok(m) = e.metadata()
                && m.is_file()
            {
                sizes.insert(e.file_name().to_string_lossy().into_owned(), m.len());
            }
        }
    }
    sizes
}
