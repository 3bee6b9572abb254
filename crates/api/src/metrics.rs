//! Prometheus metrics, written by hand in the text exposition format (version 0.0.4): counters
//! and histograms are plain atomics, so recording one costs an uncontended read lock and an
//! atomic add.
//!
//! What a node exposes on `/metrics` (see `docs/operations.md` for what to alert on):
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `citydb_up` | gauge | |
//! | `citydb_ready` | gauge | |
//! | `citydb_build_info` | gauge | `version` |
//! | `citydb_process_start_time_seconds` | gauge | |
//! | `citydb_http_requests_total` | counter | `route`, `method`, `status` |
//! | `citydb_http_request_duration_seconds` | histogram | `route` |
//! | `citydb_graphql_operations_total` | counter | `type`, `outcome` |
//! | `citydb_log_appends_total` | counter | `outcome` |
//! | `citydb_log_appended_events_total` | counter | |
//! | `citydb_access_log_writes_total` | counter | `outcome` |
//! | `citydb_access_log_entries_total` | counter | |
//! | `citydb_search_pages_total` | counter | `place` |
//! | `citydb_log_head_position` | gauge | |
//! | `citydb_projection_position` | gauge | |
//! | `citydb_projection_lag_events` | gauge | |
//!
//! Label values come from closed sets (route templates, status codes, operation types, error
//! codes), never from request content, so the number of series stays bounded.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use citydb_log::{
    AppendOutcome, Direction, EventLog, LogError, LogHead, RecordedEvent, StreamAppend, StreamId,
    VerifyReport,
};

/// Upper bounds of the latency histogram's buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Outcome label of a GraphQL operation without errors.
pub const OUTCOME_OK: &str = "ok";

/// A family of counters (or histograms) keyed by their label values.
struct Family<K, V> {
    series: RwLock<HashMap<K, Arc<V>>>,
}

impl<K: Eq + Hash + Clone + Ord, V: Default> Family<K, V> {
    fn new() -> Self {
        Family {
            series: RwLock::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K) -> Arc<V> {
        let series = self.series.read().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = series.get(key) {
            return v.clone();
        }
        drop(series);
        let mut series = self.series.write().unwrap_or_else(|p| p.into_inner());
        series.entry(key.clone()).or_default().clone()
    }

    /// Every series, sorted by label values, for stable output.
    fn snapshot(&self) -> Vec<(K, Arc<V>)> {
        let series = self.series.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<(K, Arc<V>)> =
            series.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// A cumulative histogram: one atomic per bucket, plus the sum (in microseconds) and the count.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&b| seconds <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

type Counter = AtomicU64;

/// A gauge read when `/metrics` is scraped; `None` leaves it out.
pub type GaugeFn = Arc<dyn Fn() -> Option<f64> + Send + Sync>;

/// The projections' search-page counts, read when `/metrics` is scraped.
pub type SearchPagesFn = Arc<dyn Fn() -> citydb_projections::SearchPages + Send + Sync>;

struct Gauge {
    name: &'static str,
    help: &'static str,
    read: GaugeFn,
}

/// Every metric of one node. Cheap to share (`Arc<Metrics>`).
pub struct Metrics {
    start_time: f64,
    http_requests: Family<(String, String, u16), Counter>,
    http_latency: Family<String, Histogram>,
    graphql_operations: Family<(&'static str, String), Counter>,
    log_appends: Family<&'static str, Counter>,
    log_events: Counter,
    access_writes: Family<&'static str, Counter>,
    access_entries: Counter,
    gauges: RwLock<Vec<Gauge>>,
    search_pages: RwLock<Option<SearchPagesFn>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Which log a [`MeteredLog`] counts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    /// The event log (`citydb_log_*`).
    Events,
    /// The access log (`citydb_access_log_*`).
    Access,
}

impl Metrics {
    pub fn new() -> Self {
        let metrics = Metrics {
            start_time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            http_requests: Family::new(),
            http_latency: Family::new(),
            graphql_operations: Family::new(),
            log_appends: Family::new(),
            log_events: Counter::default(),
            access_writes: Family::new(),
            access_entries: Counter::default(),
            gauges: RwLock::new(Vec::new()),
            search_pages: RwLock::new(None),
        };
        // Series an alert may watch exist from the start, at 0.
        for outcome in ["ok", "failed"] {
            metrics.log_appends.get(&outcome);
            metrics.access_writes.get(&outcome);
        }
        metrics
    }

    /// One HTTP request: `route` is the matched route template (never the raw path).
    pub fn http_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .get(&(route.to_owned(), method.to_owned(), status))
            .fetch_add(1, Ordering::Relaxed);
        self.http_latency.get(&route.to_owned()).observe(elapsed);
    }

    /// One GraphQL operation: `kind` is `query`, `mutation`, `subscription` or `unknown` (the
    /// document did not parse, or the request was refused before it was read); `outcome` is
    /// [`OUTCOME_OK`] or the first error's `extensions.code`.
    pub fn graphql_operation(&self, kind: &'static str, outcome: &str) {
        let outcome = if outcome == OUTCOME_OK || is_known_code(outcome) {
            outcome
        } else {
            "OTHER"
        };
        self.graphql_operations
            .get(&(kind, outcome.to_owned()))
            .fetch_add(1, Ordering::Relaxed);
    }

    fn append(&self, kind: LogKind, result: &Result<AppendOutcome, LogError>, events: u64) {
        let outcome = match result {
            Ok(o) if o.already_recorded => "already_recorded",
            Ok(_) => "ok",
            Err(_) => "failed",
        };
        let (family, total) = match kind {
            LogKind::Events => (&self.log_appends, &self.log_events),
            LogKind::Access => (&self.access_writes, &self.access_entries),
        };
        family.get(&outcome).fetch_add(1, Ordering::Relaxed);
        if matches!(result, Ok(o) if !o.already_recorded) {
            total.fetch_add(events, Ordering::Relaxed);
        }
    }

    /// One write of the access log (one entry, `reads` citizens read), which goes to its own
    /// store rather than through a [`MeteredLog`].
    pub fn access_log_write(&self, ok: bool, reads: u64) {
        let outcome = if ok { "ok" } else { "failed" };
        self.access_writes
            .get(&outcome)
            .fetch_add(1, Ordering::Relaxed);
        if ok {
            self.access_entries.fetch_add(reads, Ordering::Relaxed);
        }
    }

    /// Adds a gauge read at every scrape (a position, a lag, readiness).
    pub fn register_gauge(&self, name: &'static str, help: &'static str, read: GaugeFn) {
        let mut gauges = self.gauges.write().unwrap_or_else(|p| p.into_inner());
        gauges.retain(|g| g.name != name);
        gauges.push(Gauge { name, help, read });
    }

    /// Registers where the projections' search pages run (`citydb_search_pages_total`).
    pub fn register_search_pages(&self, read: SearchPagesFn) {
        *self.search_pages.write().unwrap_or_else(|p| p.into_inner()) = Some(read);
    }

    /// Registers the log head, the projection position and the lag between them.
    pub fn register_projection_gauges(
        &self,
        head: watch::Receiver<Option<u64>>,
        projected: watch::Receiver<u64>,
    ) {
        let h = head.clone();
        self.register_gauge(
            "citydb_log_head_position",
            "Position of the last event of the log (absent while the log is empty).",
            Arc::new(move || h.borrow().map(|p| p as f64)),
        );
        let p = projected.clone();
        self.register_gauge(
            "citydb_projection_position",
            "Next log position the projections will apply (every event below it is projected).",
            Arc::new(move || Some(*p.borrow() as f64)),
        );
        self.register_gauge(
            "citydb_projection_lag_events",
            "Events in the log not yet in the projections (head + 1 - projection position).",
            Arc::new(move || {
                let next = head.borrow().map_or(0, |h| h + 1);
                Some(next.saturating_sub(*projected.borrow()) as f64)
            }),
        );
    }

    /// The text exposition format.
    pub fn render(&self, ready: bool) -> String {
        let mut out = String::with_capacity(4096);
        let _ = self.write_all(&mut out, ready);
        out
    }

    fn write_all(&self, out: &mut String, ready: bool) -> std::fmt::Result {
        header(out, "citydb_up", "gauge", "1 while the process serves.")?;
        writeln!(out, "citydb_up 1")?;
        header(
            out,
            "citydb_ready",
            "gauge",
            "1 when the node is ready for traffic (projections caught up), else 0.",
        )?;
        writeln!(out, "citydb_ready {}", u8::from(ready))?;
        header(out, "citydb_build_info", "gauge", "The running version.")?;
        writeln!(
            out,
            "citydb_build_info{{version=\"{}\"}} 1",
            escape(env!("CARGO_PKG_VERSION"))
        )?;
        header(
            out,
            "citydb_process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
        )?;
        writeln!(out, "citydb_process_start_time_seconds {}", self.start_time)?;

        header(
            out,
            "citydb_http_requests_total",
            "counter",
            "HTTP requests by matched route, method and status.",
        )?;
        for ((route, method, status), c) in self.http_requests.snapshot() {
            writeln!(
                out,
                "citydb_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {}",
                escape(&route),
                escape(&method),
                c.load(Ordering::Relaxed)
            )?;
        }
        header(
            out,
            "citydb_http_request_duration_seconds",
            "histogram",
            "HTTP request latency by matched route, in seconds.",
        )?;
        for (route, h) in self.http_latency.snapshot() {
            let route = escape(&route);
            let mut cumulative = 0;
            for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&h.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                writeln!(
                    out,
                    "citydb_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                )?;
            }
            let count = h.count.load(Ordering::Relaxed);
            writeln!(
                out,
                "citydb_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            )?;
            writeln!(
                out,
                "citydb_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            )?;
            writeln!(
                out,
                "citydb_http_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            )?;
        }

        header(
            out,
            "citydb_graphql_operations_total",
            "counter",
            "GraphQL operations over HTTP by type and outcome (ok, or the first error's code).",
        )?;
        for ((kind, outcome), c) in self.graphql_operations.snapshot() {
            writeln!(
                out,
                "citydb_graphql_operations_total{{type=\"{kind}\",outcome=\"{}\"}} {}",
                escape(&outcome),
                c.load(Ordering::Relaxed)
            )?;
        }

        header(
            out,
            "citydb_log_appends_total",
            "counter",
            "Appends to the event log by outcome (ok, already_recorded, failed).",
        )?;
        for (outcome, c) in self.log_appends.snapshot() {
            writeln!(
                out,
                "citydb_log_appends_total{{outcome=\"{outcome}\"}} {}",
                c.load(Ordering::Relaxed)
            )?;
        }
        header(
            out,
            "citydb_log_appended_events_total",
            "counter",
            "Events appended to the event log.",
        )?;
        writeln!(
            out,
            "citydb_log_appended_events_total {}",
            self.log_events.load(Ordering::Relaxed)
        )?;
        header(
            out,
            "citydb_access_log_writes_total",
            "counter",
            "Appends to the access log by outcome (ok, already_recorded, failed).",
        )?;
        for (outcome, c) in self.access_writes.snapshot() {
            writeln!(
                out,
                "citydb_access_log_writes_total{{outcome=\"{outcome}\"}} {}",
                c.load(Ordering::Relaxed)
            )?;
        }
        header(
            out,
            "citydb_access_log_entries_total",
            "counter",
            "Personal-data reads written to the access log.",
        )?;
        writeln!(
            out,
            "citydb_access_log_entries_total {}",
            self.access_entries.load(Ordering::Relaxed)
        )?;

        let search_pages = self.search_pages.read().unwrap_or_else(|p| p.into_inner());
        if let Some(read) = search_pages.as_ref() {
            let pages = read();
            header(
                out,
                "citydb_search_pages_total",
                "counter",
                "Search pages by where they ran: whole on the calling thread under a budget, \
                 given up there and read on a blocking thread, or on a blocking thread from the start.",
            )?;
            for (place, n) in [
                ("calling_thread", pages.calling_thread),
                ("over_budget", pages.over_budget),
                ("blocking_thread", pages.blocking_thread),
            ] {
                writeln!(out, "citydb_search_pages_total{{place=\"{place}\"}} {n}")?;
            }
        }

        let gauges = self.gauges.read().unwrap_or_else(|p| p.into_inner());
        for g in gauges.iter() {
            if let Some(value) = (g.read)() {
                header(out, g.name, "gauge", g.help)?;
                writeln!(out, "{} {value}", g.name)?;
            }
        }
        Ok(())
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) -> std::fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn is_known_code(code: &str) -> bool {
    crate::error::ErrorCode::ALL
        .iter()
        .any(|c| c.as_str() == code)
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An [`EventLog`] that counts appends into [`Metrics`] and forwards everything (the
/// backend's own verification and time search included) to the log it wraps.
pub struct MeteredLog {
    inner: Arc<dyn EventLog>,
    metrics: Arc<Metrics>,
    kind: LogKind,
}

impl MeteredLog {
    pub fn new(inner: Arc<dyn EventLog>, metrics: Arc<Metrics>, kind: LogKind) -> Self {
        MeteredLog {
            inner,
            metrics,
            kind,
        }
    }
}

// The trait is declared with `#[async_trait]`; these are the signatures that macro generates,
// written out so that this crate needs no proc-macro of its own for one wrapper.
impl EventLog for MeteredLog {
    fn append<'life0, 'async_trait>(
        &'life0 self,
        appends: Vec<StreamAppend>,
    ) -> BoxFuture<'async_trait, Result<AppendOutcome, LogError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let events = appends.iter().map(|a| a.events.len() as u64).sum();
            let result = self.inner.append(appends).await;
            self.metrics.append(self.kind, &result, events);
            result
        })
    }

    fn read_stream<'life0, 'life1, 'async_trait>(
        &'life0 self,
        stream: &'life1 StreamId,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> BoxFuture<'async_trait, Result<Vec<RecordedEvent>, LogError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.read_stream(stream, from, direction, max)
    }

    fn read_stream_to_end<'life0, 'life1, 'async_trait>(
        &'life0 self,
        stream: &'life1 StreamId,
        from: u64,
    ) -> BoxFuture<'async_trait, Result<Vec<RecordedEvent>, LogError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.read_stream_to_end(stream, from)
    }

    fn read_all<'life0, 'async_trait>(
        &'life0 self,
        from: u64,
        max: usize,
    ) -> BoxFuture<'async_trait, Result<Vec<RecordedEvent>, LogError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.read_all(from, max)
    }

    fn stream_version<'life0, 'life1, 'async_trait>(
        &'life0 self,
        stream: &'life1 StreamId,
    ) -> BoxFuture<'async_trait, Result<Option<u64>, LogError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.stream_version(stream)
    }

    fn head<'life0, 'async_trait>(
        &'life0 self,
    ) -> BoxFuture<'async_trait, Result<Option<LogHead>, LogError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.head()
    }

    fn watch_head(&self) -> watch::Receiver<Option<u64>> {
        self.inner.watch_head()
    }

    fn copy_in<'life0, 'async_trait>(
        &'life0 self,
        events: Vec<RecordedEvent>,
    ) -> BoxFuture<'async_trait, Result<LogHead, LogError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.copy_in(events)
    }

    fn held_streams<'life0, 'async_trait>(
        &'life0 self,
    ) -> BoxFuture<'async_trait, Result<Option<citydb_log::bulk::StreamFilter>, LogError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.held_streams()
    }

    fn copied_in_bulk<'life0, 'async_trait>(
        &'life0 self,
    ) -> BoxFuture<'async_trait, Result<(), LogError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.copied_in_bulk()
    }

    fn redact<'life0, 'async_trait>(
        &'life0 self,
        position: u64,
        expected_event_hash: citydb_log::Hash,
    ) -> BoxFuture<'async_trait, Result<citydb_log::Redacted, LogError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.redact(position, expected_event_hash)
    }

    fn verify_log<'life0, 'async_trait>(
        &'life0 self,
        expected_head: Option<LogHead>,
    ) -> BoxFuture<'async_trait, Result<VerifyReport, LogError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.verify_log(expected_head)
    }

    fn verify_stream<'life0, 'life1, 'async_trait>(
        &'life0 self,
        stream: &'life1 StreamId,
    ) -> BoxFuture<'async_trait, Result<VerifyReport, LogError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.verify_stream(stream)
    }

    fn position_at<'life0, 'async_trait>(
        &'life0 self,
        at: i64,
    ) -> BoxFuture<'async_trait, Result<Option<u64>, LogError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.position_at(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::new();
        m.http_request("/graphql", "POST", 200, Duration::from_millis(3));
        m.http_request("/graphql", "POST", 200, Duration::from_millis(30));
        m.graphql_operation("query", OUTCOME_OK);
        m.graphql_operation("mutation", "whatever\"}"); // unknown codes collapse to OTHER
        let text = m.render(true);
        assert!(text.contains(
            "citydb_http_requests_total{route=\"/graphql\",method=\"POST\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "citydb_http_request_duration_seconds_bucket{route=\"/graphql\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "citydb_http_request_duration_seconds_bucket{route=\"/graphql\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains("citydb_graphql_operations_total{type=\"query\",outcome=\"ok\"} 1"));
        assert!(
            text.contains("citydb_graphql_operations_total{type=\"mutation\",outcome=\"OTHER\"} 1")
        );
        assert!(text.contains("citydb_ready 1"));
        assert!(!text.contains("citydb_search_pages_total"));
        m.register_search_pages(Arc::new(|| citydb_projections::SearchPages {
            calling_thread: 7,
            over_budget: 2,
            blocking_thread: 1,
        }));
        let text = m.render(true);
        for line in [
            "citydb_search_pages_total{place=\"calling_thread\"} 7",
            "citydb_search_pages_total{place=\"over_budget\"} 2",
            "citydb_search_pages_total{place=\"blocking_thread\"} 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
