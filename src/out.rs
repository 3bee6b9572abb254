//! Standard output of the CLI, safe when its reader goes away.
//!
//! `citydb verify … | head -1` closes the pipe after the first line. `println!` panics on the
//! next write ("failed printing to stdout: Broken pipe") and the verdict (exit 0 or 2) is lost
//! to a panic's 101. Every report line the CLI prints goes through [`line`] (or [`text`])
//! instead: once standard output is closed, the rest of the report is dropped quietly and the
//! command still ends with its own exit status (verify's verdict stays 0 or 2). Commands whose
//! output *is* the product (`export`, `fixtures` to stdout) get the write error back; `main`
//! recognises it with [`is_closed_pipe`] and ends with exit 1 and one line saying the output
//! was cut, since a consumer must not take a truncated export for a whole one.

use std::fmt;
use std::io::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to standard output failed: later lines are not attempted.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Set when standard output carries the JSON summary (`--summary json`): the human report
/// then goes to standard error, so standard output holds the JSON object alone.
static REPORT_ON_STDERR: AtomicBool = AtomicBool::new(false);

/// Sends every later report line to standard error (see [`REPORT_ON_STDERR`]).
pub fn report_on_stderr() {
    REPORT_ON_STDERR.store(true, Ordering::Relaxed);
}

/// Writes the JSON summary and a newline to standard output, like [`text`].
pub fn json_line(json: &str) {
    stdout(&format!("{json}\n"));
}

/// Prints one line on standard output; see the module documentation.
macro_rules! say {
    ($($arg:tt)*) => { $crate::out::line(format_args!($($arg)*)) };
}
pub(crate) use say;

/// Writes `args` and a newline to standard output. A closed pipe ends the output silently;
/// any other failure (a full disk behind a redirection) is reported once on stderr. Neither
/// panics nor changes the exit status.
pub fn line(args: fmt::Arguments<'_>) {
    text(&format!("{args}\n"));
}

/// Writes `s` as is (no newline added); see [`line`].
pub fn text(s: &str) {
    if REPORT_ON_STDERR.load(Ordering::Relaxed) {
        let _ = io::stderr().lock().write_all(s.as_bytes());
        return;
    }
    stdout(s);
}

fn stdout(s: &str) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if !is_closed_pipe(&e) {
            let _ = writeln!(
                io::stderr(),
                "warning: cannot write to standard output: {e}"
            );
        }
    }
}

/// Whether `e` (anywhere in its chain) is a write to a pipe nobody reads any more.
pub fn is_closed_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        let kind = match (
            c.downcast_ref::<io::Error>(),
            c.downcast_ref::<serde_json::Error>(),
        ) {
            (Some(io), _) => Some(io.kind()),
            // serde_json's `source()` skips the io::Error it wraps: ask it directly.
            (_, Some(json)) => json.io_error_kind(),
            _ => None,
        };
        if kind == Some(io::ErrorKind::BrokenPipe) {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_broken_pipe_under_context() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe))
            .context("writing the export");
        assert!(is_closed_pipe(e.as_ref()));
        struct Closed;
        impl io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let json = serde_json::to_writer(Closed, &"an event").expect_err("the pipe is closed");
        assert!(is_closed_pipe(
            anyhow::Error::new(json).context("export").as_ref()
        ));
        let other = anyhow::Error::new(io::Error::from(io::ErrorKind::StorageFull));
        assert!(!is_closed_pipe(other.as_ref()));
    }
}
