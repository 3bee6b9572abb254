//! Log lines written by a thread of their own, so that a request never waits on standard error.
//!
//! `serve` logs one line per request (`citydb::http`). Written from the request's own task,
//! each line was a `write` to standard error before the response left: at 32 clients that is
//! thousands of small writes a second on the runtime's workers, and on a file, each one can
//! wait behind the journal commit of the access log's `fdatasync` on the same file system
//! (at 1/10, one client's PIN lookup p50: 0.64 ms without the line, 0.75 ms with it, 0.69 ms
//! written from here; docs/benchmarks.md, "The request log off the request's path").
//!
//! Here a line is formatted where it is logged, as before, then appended to a shared buffer
//! under a mutex. One thread writes the buffer out: it sleeps until a line comes, lets lines
//! gather for [`INTERVAL`], and writes them in one `write`. A logger never wakes it, except
//! the one whose line finds it asleep: handing each line to a thread through a channel woke
//! that thread once a request, which cost more CPU than the `write` it saved (32 clients:
//! 170–197 µs of server CPU a request against 145–159).
//!
//! Only the request log ([`GATHERED_TARGET`] at INFO and below) gathers: it is the one source
//! of lines at the rate of requests. Any other line (start-up, readiness, warnings, errors)
//! is written before its logger goes on, with the lines gathered before it, as a direct write
//! to standard error would be: a `kill -9` can lose request lines of the last interval, never
//! an error that preceded it.
//!
//! Invariants:
//! - **Lossless.** A full buffer ([`CAPACITY`]) makes the logger wait until it is written; no
//!   line is dropped. A log that cannot keep up slows the server down instead of losing lines
//!   silently.
//! - **In order, whole.** Lines reach the output in the order they took the mutex, each one
//!   whole: the formatter writes a formatted event in one `write_all`, which is one `write`
//!   here, appended under the mutex.
//! - **Flushed before exit.** [`Flush`] waits, when dropped, until every line appended before
//!   it is written. `main` drops it when the command returns, before it prints a command's
//!   final error, so that error stays the last line.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long lines gather before they are written: a line reaches standard error at most this
/// late, and the writing thread wakes at most about twice this often.
pub const INTERVAL: Duration = Duration::from_millis(10);

/// Bytes of lines that may wait to be written (about 5,000 request lines).
pub const CAPACITY: usize = 1 << 20;

/// How long an exiting command waits for its last lines to be written, and a line written at
/// once waits for its write.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// The target whose lines gather: the request log (crates/api/src/server.rs, `observe`).
pub const GATHERED_TARGET: &str = "citydb::http";

/// A `MakeWriter` for `tracing_subscriber::fmt` that appends each line to the shared buffer.
#[derive(Clone)]
pub struct LogLines {
    shared: Arc<Shared>,
}

/// Waits, when dropped, until every line appended before it has been written.
pub struct Flush {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// The writing thread waits here: for a first line, or for the interval to pass.
    wake_writer: Condvar,
    /// Loggers waiting for room, and flushes waiting for their lines, wait here.
    written: Condvar,
    capacity: usize,
    interval: Duration,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    /// Bytes ever appended, and ever written: a flush waits until `written` reaches the
    /// `appended` it saw.
    appended: u64,
    written: u64,
    /// The writing thread is waiting for a first line (a logger must wake it).
    idle: bool,
    /// A flush or a full buffer asks for a write now, without the interval.
    now: bool,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // No code panics while holding it; if something did, the buffer is still bytes to write.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the thread that writes the lines to `out`, every `interval`, holding at most
/// `capacity` bytes (a line more) before loggers wait.
pub fn spawn<W: Write + Send + 'static>(
    out: W,
    capacity: usize,
    interval: Duration,
) -> io::Result<(LogLines, Flush)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        wake_writer: Condvar::new(),
        written: Condvar::new(),
        capacity,
        interval,
    });
    let writer = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("citydb-log".into())
        .spawn(move || write_lines(&writer, out))?;
    Ok((
        LogLines {
            shared: Arc::clone(&shared),
        },
        Flush { shared },
    ))
}

fn write_lines<W: Write>(shared: &Shared, mut out: W) {
    let mut batch: Vec<u8> = Vec::new();
    let mut state = lock(&shared.state);
    loop {
        while state.pending.is_empty() && !state.now {
            state.idle = true;
            state = shared
                .wake_writer
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.idle = false;
        state = shared
            .wake_writer
            .wait_timeout_while(state, shared.interval, |state| !state.now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        state.now = false;
        std::mem::swap(&mut state.pending, &mut batch);
        let appended = state.appended;
        drop(state);
        // A failed write has nowhere to be reported (it is the log): the lines are dropped,
        // so that loggers never wait forever behind a broken output.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        state = lock(&shared.state);
        state.written = appended;
        shared.written.notify_all();
    }
}

impl<'a> MakeWriter<'a> for LogLines {
    type Writer = AppendedLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        self.line(false)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        self.line(meta.target() == GATHERED_TARGET && *meta.level() >= tracing::Level::INFO)
    }
}

impl LogLines {
    fn line(&self, gathers: bool) -> AppendedLine<'_> {
        AppendedLine {
            shared: &self.shared,
            gathers,
        }
    }
}

/// One formatted event on its way to the buffer.
pub struct AppendedLine<'a> {
    shared: &'a Shared,
    /// Whether the line may wait for the interval, or is written before the logger goes on.
    gathers: bool,
}

impl Write for AppendedLine<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let shared = self.shared;
        let mut state = lock(&shared.state);
        while state.pending.len() >= shared.capacity {
            state.now = true;
            shared.wake_writer.notify_one();
            state = shared
                .written
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.idle && state.pending.is_empty() {
            shared.wake_writer.notify_one();
        }
        state.pending.extend_from_slice(buf);
        state.appended += buf.len() as u64;
        if !self.gathers {
            let appended = state.appended;
            wait_written(shared, state, appended);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Flush {
    fn drop(&mut self) {
        let state = lock(&self.shared.state);
        let appended = state.appended;
        wait_written(&self.shared, state, appended);
    }
}

/// Has the writing thread write now, and waits (at most [`FLUSH_WAIT`]) until the first
/// `appended` bytes ever appended are written.
///
/// One request is enough: if the writing thread is writing an earlier batch, it finds `now`
/// set when it comes back and writes the rest at once.
fn wait_written(shared: &Shared, mut state: MutexGuard<'_, State>, appended: u64) {
    if state.written >= appended {
        return;
    }
    state.now = true;
    shared.wake_writer.notify_one();
    let _ = shared
        .written
        .wait_timeout_while(state, FLUSH_WAIT, |state| state.written < appended);
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use super::*;

    /// An output shared with the test, optionally slow, counting its writes.
    #[derive(Clone, Default)]
    struct Output {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
        delay: Duration,
    }

    impl Write for Output {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            std::thread::sleep(self.delay);
            self.bytes.lock().unwrap().extend_from_slice(buf);
            *self.writes.lock().unwrap() += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Logs a request line (one that gathers).
    fn log(lines: &LogLines, text: &str) {
        lines.line(true).write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn every_line_arrives_whole_and_in_each_threads_order_after_a_flush() {
        let output = Output::default();
        let (lines, flush) = spawn(output.clone(), 256, Duration::from_millis(1)).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let lines = lines.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        log(
                            &lines,
                            &format!("thread {t} line {i} {}\n", "x".repeat(i % 50)),
                        );
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(flush);
        let text = String::from_utf8(output.bytes.lock().unwrap().clone()).unwrap();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            let t: usize = words[1].parse().unwrap();
            let i: usize = words[3].parse().unwrap();
            assert_eq!(i, next[t], "thread {t}'s lines out of order or missing");
            assert_eq!(words[4].len(), i % 50, "line {line:?} torn");
            next[t] += 1;
        }
        assert_eq!(
            next, [5_000; 4],
            "every line written by the time the flush returned"
        );
        // Lines that gathered while a write was under way went out together.
        assert!(*output.writes.lock().unwrap() < 20_000);
    }

    #[test]
    fn any_other_line_is_written_before_its_logger_goes_on_after_the_lines_before_it() {
        let output = Output::default();
        let (lines, _flush) = spawn(output.clone(), CAPACITY, Duration::from_secs(60)).unwrap();
        log(&lines, "request 1\n");
        log(&lines, "request 2\n");
        assert!(
            output.bytes.lock().unwrap().is_empty(),
            "request lines gather"
        );
        lines.make_writer().write_all(b"error\n").unwrap();
        assert_eq!(
            String::from_utf8(output.bytes.lock().unwrap().clone()).unwrap(),
            "request 1\nrequest 2\nerror\n"
        );
    }

    #[test]
    fn a_full_buffer_makes_the_logger_wait_instead_of_dropping_lines() {
        let output = Output {
            delay: Duration::from_millis(2),
            ..Output::default()
        };
        let (lines, flush) = spawn(output.clone(), 1, INTERVAL).unwrap();
        for i in 0..200 {
            log(&lines, &format!("{i}\n"));
        }
        drop(flush);
        let text = String::from_utf8(output.bytes.lock().unwrap().clone()).unwrap();
        let written: Vec<usize> = text.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(written, (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn lines_logged_at_a_steady_pace_are_written_once_an_interval() {
        let output = Output::default();
        let (lines, flush) = spawn(output.clone(), CAPACITY, Duration::from_millis(20)).unwrap();
        let started = Instant::now();
        for i in 0..200 {
            log(&lines, &format!("{i}\n"));
            std::thread::sleep(Duration::from_micros(500));
        }
        let took = started.elapsed();
        drop(flush);
        let writes = *output.writes.lock().unwrap();
        // One write per 20 ms interval, plus the flush's: a line's own write (or wake-up)
        // would make 200. A slow machine stretches the loop, hence the bound from its time.
        let intervals = (took.as_millis() / 20) as usize;
        assert!(
            writes <= intervals + 2,
            "{writes} writes for 200 lines over {took:?}"
        );
        let text = String::from_utf8(output.bytes.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 200);
    }
}
