//! The text log's lines, with the request log's written without `fmt`'s machinery.
//!
//! `serve` logs one line per request (`citydb::http`, [`crate::log_lines`]). Formatted by
//! `tracing_subscriber`'s default (`Full`) format, that line cost ~11,000 instructions of a
//! ~280,000-instruction PIN lookup: the timestamp through its calendar arithmetic and
//! `write!`, every field through `Debug` (a string quoted char by char), every piece through
//! `fmt::Write` (docs/benchmarks.md, "The request line written directly").
//!
//! [`Lines`] writes those lines itself, byte for byte as the default format would with colours
//! off — the timestamp (the date part computed once a second), the padded level, the target,
//! the message, then ` name=value` per field, strings quoted as `Debug` quotes them — and hands
//! every other line, and every line on a colour terminal, to the default format. Invariant:
//! the text is the default format's (`lines_are_the_default_formats` holds the two to it);
//! a value that needs escaping goes through `Debug` as it did.

use std::fmt::{self, Write as _};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::SystemTime as Clock;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The target whose lines are written here: the request log (`crates/api/src/server.rs`).
const DIRECT_TARGET: &str = "citydb::http";

/// The default text format, with the request log's lines written directly.
pub struct Lines {
    inner: Format<Full, Clock>,
    /// The second last formatted and its `YYYY-MM-DDTHH:MM:SS` text.
    second: Mutex<(u64, String)>,
}

impl Lines {
    pub fn new() -> Self {
        Lines {
            inner: Format::default(),
            second: Mutex::new((u64::MAX, String::new())),
        }
    }

    /// `now` as the default timer writes it: RFC 3339 in UTC with microseconds.
    fn timestamp(&self, now: SystemTime, out: &mut String) {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let second = since.as_secs();
        {
            let mut kept = self.second.lock().unwrap_or_else(|e| e.into_inner());
            if kept.0 != second {
                // `YYYY-MM-DDTHH:MM:SS`: the export's RFC 3339 text of the whole second, less its
                // fraction.
                let micros = i64::try_from(second).unwrap_or(i64::MAX / 1_000_000) * 1_000_000;
                let mut text = crate::export::rfc3339_micros(micros);
                text.truncate(text.find('.').unwrap_or(text.len()));
                *kept = (second, text);
            }
            out.push_str(&kept.1);
        }
        out.push('.');
        push_decimal(out, u64::from(since.subsec_micros()), 6);
        out.push('Z');
    }
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        // Only lines outside any span: the default format prints a span's context before the
        // target, and the request log is logged outside one.
        if meta.target() != DIRECT_TARGET
            || writer.has_ansi_escapes()
            || ctx.lookup_current().is_some()
        {
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::with_capacity(160);
        self.timestamp(SystemTime::now(), &mut line);
        line.push(' ');
        line.push_str(level(*meta.level()));
        line.push(' ');
        line.push_str(meta.target());
        line.push_str(": ");
        let mut fields = Fields {
            line: &mut line,
            first: true,
        };
        event.record(&mut fields);
        line.push('\n');
        writer.write_str(&line)
    }
}

/// A level as the default format pads it (colours off).
fn level(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

/// The default format's field visitor (`DefaultVisitor`), without `fmt` for the common values:
/// the message bare, then ` name=value`, separated by one space.
struct Fields<'a> {
    line: &'a mut String,
    first: bool,
}

impl Fields<'_> {
    fn name(&mut self, field: &Field) {
        if !std::mem::take(&mut self.first) {
            self.line.push(' ');
        }
        if field.name() != "message" {
            self.line.push_str(field.name());
            self.line.push('=');
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            return self.record_debug(field, &format_args!("{value}"));
        }
        self.name(field);
        // `Debug` quotes a string and escapes what is not printable ASCII, a quote or a
        // backslash; text with none of those is itself between quotes.
        if value
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
        {
            self.line.push('"');
            self.line.push_str(value);
            self.line.push('"');
        } else {
            let _ = write!(self.line, "{value:?}");
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field);
        push_decimal(self.line, value, 1);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field);
        if value < 0 {
            self.line.push('-');
        }
        push_decimal(self.line, value.unsigned_abs(), 1);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.name(field);
        let _ = write!(self.line, "{value:?}");
    }
}

/// Appends `n` in decimal, with leading zeros to `width` digits.
fn push_decimal(out: &mut String, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    while n > 0 || at + width > digits.len() {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tracing_subscriber::fmt::MakeWriter;

    /// Lines written to memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn log_with(format: impl FnOnce(Captured) -> tracing::Dispatch) -> String {
        let out = Captured::default();
        let dispatch = format(out.clone());
        tracing::dispatcher::with_default(&dispatch, || {
            for (path, status, latency, principal) in [
                ("/graphql", 200u16, 0.412f64, "tax-office"),
                ("/graphql/\"quoted\"\\", 500, 12.0, "-"),
                ("/đường/ngõ\n", 404, 0.001, "svc one"),
            ] {
                let method = "POST";
                let latency_ms = latency;
                if status >= 500 {
                    tracing::warn!(target: "citydb::http", method, path, status, latency_ms, principal, "request");
                } else {
                    tracing::info!(target: "citydb::http", method, path, status, latency_ms, principal, "request");
                }
            }
            tracing::info!(target: "citydb::other", answer = 42, "not the request log");
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    /// Each line without its timestamp (the two formats run at different instants).
    fn untimed(text: &str) -> Vec<String> {
        text.lines()
            .map(|l| l.split_once(' ').map(|(_, rest)| rest.to_owned()).unwrap())
            .collect()
    }

    /// The direct lines are the default format's, field for field, including values that
    /// need escaping; other targets go through the default format. Fails if a byte differs.
    #[test]
    fn lines_are_the_default_formats() {
        let default = log_with(|out| {
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(out)
                .finish()
                .into()
        });
        let direct = log_with(|out| {
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(out)
                .event_format(Lines::new())
                .finish()
                .into()
        });
        assert_eq!(untimed(&direct), untimed(&default), "\n{direct}\n{default}");
        assert_eq!(direct.lines().count(), 4);
        assert!(
            direct.contains(r#"path="/graphql" status=200 latency_ms=0.412"#),
            "{direct}"
        );
        // The timestamps have the default's shape: 2026-12-07T09:02:26.123456Z.
        for line in direct.lines() {
            let stamp = line.split(' ').next().unwrap();
            assert_eq!(stamp.len(), 27, "{stamp}");
            assert!(
                stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
                "{stamp}"
            );
        }
    }

    #[test]
    fn timestamps_are_utc_rfc_3339_with_microseconds() {
        let lines = Lines::new();
        let at = |seconds: u64, micros: u32| {
            let mut out = String::new();
            let t = UNIX_EPOCH + std::time::Duration::new(seconds, micros * 1_000);
            lines.timestamp(t, &mut out);
            out
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        // Dates checked with Python's datetime.utcfromtimestamp.
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_796_635_346, 123_456), "2026-12-07T09:22:26.123456Z");
        assert_eq!(at(4_107_542_399, 999_999), "2100-02-28T23:59:59.999999Z");
        // The same second again comes from the kept text.
        assert_eq!(at(1_796_635_346, 5), "2026-12-07T09:22:26.000005Z");
    }
}
