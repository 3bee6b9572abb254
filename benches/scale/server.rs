//! The server under load (`citydb serve`), and the HTTP floor it is compared with.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::BIN;
use crate::steps::vm_hwm_kb;

// --- the server ---------------------------------------------------------------------------------

pub struct Server {
    pub child: Child,
    pub addr: String,
    pub ready_after: Duration,
    /// From the start until the integrity check of `projections.db` that a node runs once it
    /// serves had read the whole file (the loads are measured after it).
    pub checked_after: Duration,
}

/// `citydb serve` on `data_args` (`--data DIR`, and `--store URL` on PostgreSQL).
pub fn start_server(data_args: &[&str], config: &Path, logs: &Path) -> Server {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(data_args)
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(logs.join("serve.err")).unwrap())
        .spawn()
        .expect("cannot start citydb serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("http://").nth(1)
                && line.contains("serving")
            {
                let addr = rest.split('/').next().unwrap_or_default().to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(600))
        .expect("citydb serve printed no address");
    let ready_url = format!("http://{addr}/readyz");
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "citydb serve exited; see {}",
            logs.join("serve.err").display()
        );
        if probe_ok(&ready_url) {
            break;
        }
        assert!(Instant::now() < deadline, "not ready after an hour");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready_after = started.elapsed();
    // A node serves before the check of its projections file ends; the check reads the whole
    // file (6 GB at the whole city) and takes a share of the CPU and the disk meanwhile. The
    // loads measure a node in steady state, so they start after it.
    let err_log = logs.join("serve.err");
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let log = std::fs::read_to_string(&err_log).unwrap_or_default();
        if log.contains(CHECKED) {
            break;
        }
        assert!(
            !log.contains("the projections file is damaged"),
            "the node found its projections file damaged; see {}",
            err_log.display()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "citydb serve exited; see {}",
            err_log.display()
        );
        assert!(
            Instant::now() < deadline,
            "no end of the projections file's check after 30 minutes; see {}",
            err_log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Server {
        child,
        addr,
        ready_after,
        checked_after: started.elapsed(),
    }
}

/// What `citydb serve` logs (INFO) once the check of its projections file found it sound.
const CHECKED: &str = "the projections file's b-trees are sound";

/// Whether GET `url` answers 200: a tiny HTTP/1.1 client over std (no runtime needed).
fn probe_ok(url: &str) -> bool {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(mut s) = std::net::TcpStream::connect(host) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 32];
    let n = s.read(&mut buf).unwrap_or(0);
    buf[..n].starts_with(b"HTTP/1.1 200")
}

pub fn stop_server(mut server: Server) -> Option<u64> {
    let hwm = vm_hwm_kb(server.child.id());
    let _ = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = server.child.kill();
            let _ = server.child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    hwm
}

pub async fn metrics(client: &reqwest::Client, addr: &str) -> Option<(f64, f64)> {
    let text = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let sum = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter(|l| !l.contains("outcome=\"failed\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    if !text.contains("citydb_access_log") {
        return None;
    }
    Some((
        sum("citydb_access_log_writes_total"),
        sum("citydb_access_log_entries_total"),
    ))
}

/// The HTTP floor: an axum handler answering every POST with the same bytes, on its own runtime.
pub fn start_floor(bytes: Vec<u8>) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let bytes = axum::body::Bytes::from(bytes);
            let app = axum::Router::new().route(
                "/graphql",
                axum::routing::post(move |_body: axum::body::Bytes| {
                    let bytes = bytes.clone();
                    async move { ([("content-type", "application/json")], bytes) }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// The principals of the run, written to `<work>/principals.toml` with `citydb token`: a
/// service reading every field group, and a steward. Returns the file and the tokens by role.
pub fn principals(work: &Path) -> (PathBuf, HashMap<&'static str, String>) {
    let mut config = String::new();
    let mut tokens = HashMap::new();
    for (id, role, groups) in [
        (
            "bench-portal",
            "service",
            &["identity", "residence", "family", "business", "land"][..],
        ),
        ("bench-steward", "steward", &[][..]),
    ] {
        let mut args = vec!["token", "--id", id, "--role", role];
        for g in groups {
            args.extend(["--field-group", g]);
        }
        if role == "service" {
            args.extend(["--purpose", crate::XROAD_PURPOSE]);
        }
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success(), "citydb token failed");
        let text = String::from_utf8(out.stdout).unwrap();
        let token = text.lines().nth(1).unwrap().trim_start_matches('#').trim();
        tokens.insert(role, token.to_owned());
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            config.push_str(l);
            config.push('\n');
        }
        config.push('\n');
    }
    let config_path = work.join("principals.toml");
    std::fs::write(&config_path, config).unwrap();
    (config_path, tokens)
}
