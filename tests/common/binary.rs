//! The real `citydb` binary as a server: started on a free port, its address read from the
//! line it prints, its log collected, killed when the test ends however it ends.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_citydb");

pub struct Serving {
    child: Child,
    /// `http://ADDR`.
    pub base: String,
    /// Standard output after the address line, and standard error, as they arrive.
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub http: reqwest::Client,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Serving {
    /// Runs `citydb serve ARGS --listen 127.0.0.1:0` and returns once it printed its address.
    pub fn start(args: &[&str]) -> Serving {
        Self::start_with(args, |_| {})
    }

    /// Like [`start`](Self::start), with a chance to adjust the command (environment, user).
    pub fn start_with(args: &[&str], adjust: impl FnOnce(&mut Command)) -> Serving {
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        adjust(&mut command);
        let mut child = command.spawn().expect("start citydb serve");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.split(" on http://").nth(1) {
                        break format!("http://{}", rest.split('/').next().unwrap());
                    }
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "serve printed no address; stderr:\n{}",
                        stderr.lock().unwrap().join("\n")
                    );
                }
            }
        };
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Serving {
            child,
            base,
            stdout,
            stderr,
            http: reqwest::Client::new(),
            stderr_reader: Some(stderr_reader),
        }
    }

    /// The server's process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `/readyz`: the status and the JSON body.
    pub async fn readyz(&self) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .expect("the port answers");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The first `/readyz` answer once the node is open (before, the reason is "opening the
    /// data directory").
    pub async fn readyz_once_open(&self) -> (u16, Value) {
        let started = Instant::now();
        loop {
            let answer = self.readyz().await;
            if answer.1["reason"] != "opening the data directory" {
                return answer;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "never opened");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Probes `/readyz` until 200; returns every answer before it. A generous bound, only a
    /// safety net against a hang.
    pub async fn wait_ready(&self) -> Vec<(u16, Value)> {
        let started = Instant::now();
        let mut before = Vec::new();
        loop {
            let answer = self.readyz().await;
            if answer.0 == 200 {
                return before;
            }
            before.push(answer);
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "never ready: {before:?}\n{}",
                self.stderr.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// POSTs a GraphQL operation with `token` and extra headers; the JSON body.
    pub async fn gql(
        &self,
        token: &str,
        query: &str,
        variables: Value,
        headers: &[(&str, &str)],
    ) -> Value {
        let mut req = self
            .http
            .post(format!("{}/graphql", self.base))
            .bearer_auth(token)
            .json(&serde_json::json!({ "query": query, "variables": variables }));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
            .await
            .expect("POST /graphql")
            .json()
            .await
            .expect("a JSON answer")
    }

    /// Stops the server (SIGKILL: its files stay as a crash leaves them) and returns its
    /// standard error. Request log lines of the last few milliseconds may be missing
    /// (src/log_lines.rs); every other line is there.
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader ends at the pipe's end, which the dead process closed.
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops a serving process with SIGTERM and waits for it to exit, with SIGKILL after 30 s (a
/// test must not hang on a server that does not stop).
pub fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs the binary to completion with `args` and collects its output; `RUST_LOG` from the
/// environment is removed so that log lines never mix into what a test reads.
pub fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_citydb"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run citydb")
}
