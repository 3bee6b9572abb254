//! Plumbing shared by backends that funnel every write through one writer task: the request
//! it receives and what it wrote. Both the SQLite and the PostgreSQL writers use these, so
//! appends and verbatim copies are queued, grouped and answered the same way; [`plan`] turns
//! each request into the rows to insert, so that a store's writer keeps only its SQL.

pub mod plan;

use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::append::{AppendOutcome, StreamAppend};
use crate::chain::{LogHead, LogVerifier, VerifyReport};
use crate::error::LogError;
use crate::event::RecordedEvent;

/// One request to a writer: an append, or a copy of recorded events
/// ([`EventLog::copy_in`](crate::EventLog::copy_in)). Both go through the same queue, group
/// commit and ordering.
pub enum WriteRequest {
    Append {
        appends: Vec<StreamAppend>,
        reply: oneshot::Sender<Result<AppendOutcome, LogError>>,
    },
    Copy {
        events: Vec<RecordedEvent>,
        reply: oneshot::Sender<Result<LogHead, LogError>>,
    },
}

/// What a request wrote.
#[derive(Debug)]
pub enum Written {
    Append(AppendOutcome),
    Copy(LogHead),
}

impl Written {
    /// The last position written, if any.
    pub fn last_position(&self) -> Option<u64> {
        match self {
            Written::Append(outcome) => outcome.last_position,
            Written::Copy(head) => Some(head.position),
        }
    }
}

impl WriteRequest {
    /// Sends the result to whoever asked. The caller may have given up waiting; what was
    /// committed stays committed all the same.
    pub fn answer(self, result: Result<Written, LogError>) {
        match self {
            WriteRequest::Append { reply, .. } => {
                let _ = reply.send(result.and_then(|w| match w {
                    Written::Append(outcome) => Ok(outcome),
                    Written::Copy(_) => Err(mismatch()),
                }));
            }
            WriteRequest::Copy { reply, .. } => {
                let _ = reply.send(result.and_then(|w| match w {
                    Written::Copy(head) => Ok(head),
                    Written::Append(_) => Err(mismatch()),
                }));
            }
        }
    }

    /// Events the request writes (at least 1, so an empty version check still counts against
    /// a group's limit).
    pub fn events(&self) -> usize {
        match self {
            WriteRequest::Append { appends, .. } => appends.iter().map(|a| a.events.len()).sum(),
            WriteRequest::Copy { events, .. } => events.len(),
        }
        .max(1)
    }

    /// Payload bytes the request writes.
    pub fn bytes(&self) -> usize {
        match self {
            WriteRequest::Append { appends, .. } => appends
                .iter()
                .flat_map(|a| &a.events)
                .map(|e| e.size())
                .sum(),
            WriteRequest::Copy { events, .. } => events.iter().map(RecordedEvent::size).sum(),
        }
    }

    /// The streams and event ids the request names.
    pub fn names(&self) -> (Vec<&str>, Vec<Uuid>) {
        match self {
            WriteRequest::Append { appends, .. } => (
                appends.iter().map(|a| a.stream.as_str()).collect(),
                appends
                    .iter()
                    .flat_map(|a| &a.events)
                    .map(|e| e.event_id)
                    .collect(),
            ),
            WriteRequest::Copy { events, .. } => (
                events.iter().map(|e| e.stream_id.as_str()).collect(),
                events.iter().map(|e| e.event_id).collect(),
            ),
        }
    }
}

/// Whether a store accepts writes now: what a node's readiness asks every few seconds, so that
/// a node whose store refuses writes (a read-only file or mount, a standby database, an
/// unreachable server) is taken out of traffic. Implemented next to the code that opens the
/// store (`citydb-store`), by asking the store itself, not by looking at permission bits.
#[async_trait::async_trait]
pub trait WriteProbe: Send + Sync {
    /// `Ok` when writes can be made, else why not, in words for an operator. Never a path or a
    /// credential: `/readyz` answers anyone.
    async fn check(&self) -> Result<(), String>;
}

/// Queues an append for a writer and waits for its answer: `Closed` when the writer is gone.
/// The store validates the request first ([`crate::validate_append`]), with its own limits.
pub async fn send_append(
    queue: &mpsc::Sender<WriteRequest>,
    appends: Vec<StreamAppend>,
) -> Result<AppendOutcome, LogError> {
    let (reply, answer) = oneshot::channel();
    queue
        .send(WriteRequest::Append { appends, reply })
        .await
        .map_err(|_| LogError::Closed)?;
    answer.await.map_err(|_| LogError::Closed)?
}

/// Queues a copy of recorded events for a writer and waits for its answer (see
/// [`send_append`]); the writer checks it in its transaction ([`plan::plan_copy`]).
pub async fn send_copy(
    queue: &mpsc::Sender<WriteRequest>,
    events: Vec<RecordedEvent>,
) -> Result<LogHead, LogError> {
    let (reply, answer) = oneshot::channel();
    queue
        .send(WriteRequest::Copy { events, reply })
        .await
        .map_err(|_| LogError::Closed)?;
    answer.await.map_err(|_| LogError::Closed)?
}

/// Raises a published head to `position`, never lowers it (two writers of one PostgreSQL
/// database, or a listener and a writer, may publish out of order). Readers waiting on the
/// head are woken only when it moved.
pub fn publish_head(head: &watch::Sender<Option<u64>>, position: u64) {
    head.send_if_modified(|h| {
        let newer = *h < Some(position);
        if newer {
            *h = Some(position);
        }
        newer
    });
}

/// The position ranges a log of `count` events is verified in: one below `threshold` events,
/// else up to `wanted` consecutive ranges of equal size, `(from, to)` with `to` exclusive and
/// `None` for the last (to the end, including anything appended meanwhile). Rounding the size
/// up can leave fewer ranges than wanted (5 events in 4: ranges of 2 make 3); none is empty, so
/// none starts past the end and reads as a gap.
pub fn verify_ranges(count: u64, threshold: u64, wanted: u64) -> Vec<(u64, Option<u64>)> {
    if count == 0 {
        return Vec::new();
    }
    let segments = if count < threshold {
        1
    } else {
        wanted.max(1).min(count)
    };
    let step = count.div_ceil(segments);
    let segments = count.div_ceil(step);
    (0..segments)
        .map(|k| (k * step, (k + 1 < segments).then_some((k + 1) * step)))
        .collect()
}

/// Joins the verifiers of consecutive ranges ([`verify_ranges`]), in order, into the report
/// of the whole log; the first range that could not be read fails the whole, unless a range
/// before it already broke the chain (one pass would have stopped there). `LogVerifier::join`
/// checks each seam; the stream links the segments set aside ([`LogVerifier::bounded`]) are
/// checked at the end.
pub fn join_segments(
    segments: impl IntoIterator<Item = Result<LogVerifier, LogError>>,
    expected_head: Option<LogHead>,
) -> Result<VerifyReport, LogError> {
    let mut joined: Option<LogVerifier> = None;
    for segment in segments {
        let segment = match segment {
            Ok(segment) => segment,
            Err(e) => match joined {
                Some(ref before) if before.has_failed() => break,
                _ => return Err(e),
            },
        };
        joined = Some(match joined {
            None => segment,
            Some(before) => before.join(segment),
        });
    }
    joined
        .unwrap_or_else(|| LogVerifier::new(expected_head))
        .try_finish()
}

fn mismatch() -> LogError {
    LogError::Storage("the writer answered a request with another kind of result".into())
}

/// A bounded pool of blocking connections (SQLite readers, say) used from async code.
///
/// At most `size` closures run at once, each on tokio's blocking threads with a connection of
/// its own; the others wait their turn here, asynchronously. Connections are opened on first
/// need and kept: the number of connections never exceeds `size`, so none is ever opened for
/// one call and closed after it (which, for SQLite, re-reads the schema and re-maps the file:
/// under 64 concurrent callers that churn cost more than the reads themselves).
pub struct BlockingPool<C> {
    idle: std::sync::Mutex<Vec<C>>,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl<C: Send + 'static> BlockingPool<C> {
    pub fn new(size: usize) -> std::sync::Arc<Self> {
        std::sync::Arc::new(BlockingPool {
            idle: std::sync::Mutex::new(Vec::with_capacity(size.max(1))),
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(size.max(1))),
        })
    }

    /// Runs `f` on each connection idle now (those in use are left to their callers): for
    /// state a connection keeps between runs that must not outlive an event, such as a read
    /// snapshot once its file has changed.
    pub fn each_idle(&self, mut f: impl FnMut(&mut C)) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.iter_mut().for_each(&mut f);
        }
    }

    /// Runs `f` with an idle connection, or one made by `open` if none is idle. A connection
    /// goes back to the pool even when `f` fails: a failed read leaves no state behind
    /// (callers that could leave one by accident, such as a failed transaction, must end it;
    /// state kept on purpose, such as a read snapshot kept between reads, is theirs to end,
    /// with [`each_idle`](Self::each_idle) for the connections in the pool).
    /// `Err(TaskFailed)` if `f` or `open` panicked.
    pub async fn run<T, E>(
        self: &std::sync::Arc<Self>,
        open: impl FnOnce() -> Result<C, E> + Send + 'static,
        f: impl FnOnce(&mut C) -> Result<T, E> + Send + 'static,
    ) -> Result<Result<T, E>, TaskFailed>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        // The semaphore is never closed, so acquiring only waits.
        let permit = self.permits.clone().acquire_owned().await.ok();
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let idle = pool.idle.lock().ok().and_then(|mut idle| idle.pop());
            let mut conn = match idle {
                Some(conn) => conn,
                None => match open() {
                    Ok(conn) => conn,
                    Err(e) => return Err(e),
                },
            };
            let result = f(&mut conn);
            if let Ok(mut idle) = pool.idle.lock() {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| TaskFailed(e.to_string()))
    }

    /// [`BlockingPool::run`] for work bounded by a few index seeks (a record by its key): when
    /// a connection is idle and a permit free at once, `f` runs right here on the calling
    /// thread, sparing the hand-off to a blocking thread and back, which costs more than such
    /// a read (docs/benchmarks.md, "… key lookups on the calling thread"); otherwise as
    /// `run`. Never for work that grows with the data (a scan, a page of search results): it
    /// holds an async worker thread while it runs.
    pub async fn run_short<T, E, F>(
        self: &std::sync::Arc<Self>,
        open: impl FnOnce() -> Result<C, E> + Send + 'static,
        f: F,
    ) -> Result<Result<T, E>, TaskFailed>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&mut C) -> Result<T, E> + Send + 'static,
    {
        match self.try_here(f) {
            Ok(done) => done,
            Err(f) => self.run(open, f).await,
        }
    }

    /// Runs `f` on the calling thread when a connection is idle and a permit free at once, as
    /// [`BlockingPool::run_short`] does; hands `f` back untouched when not, for the caller to
    /// [`run`](BlockingPool::run) it. For callers whose work is bounded by a budget of their own
    /// rather than by its shape (a page of search results, `citydb_projections`).
    #[allow(clippy::type_complexity)]
    pub fn try_here<T, E, F>(&self, f: F) -> Result<Result<Result<T, E>, TaskFailed>, F>
    where
        F: FnOnce(&mut C) -> Result<T, E>,
    {
        let ready = self
            .permits
            .clone()
            .try_acquire_owned()
            .ok()
            .and_then(|permit| {
                let conn = self.idle.lock().ok().and_then(|mut idle| idle.pop())?;
                Some((permit, conn))
            });
        let Some((_permit, mut conn)) = ready else {
            return Err(f);
        };
        // As on a blocking thread, a panic is an error of this call, not of the caller's task;
        // the connection it held is dropped, not returned.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut conn)))
            .map_err(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                TaskFailed(format!("panicked: {what}"))
            });
        if result.is_ok()
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push(conn);
        }
        Ok(result)
    }
}

/// A closure run by a [`BlockingPool`] panicked (or its blocking task was cancelled).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TaskFailed(String);

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{BlockingPool, verify_ranges};

    #[test]
    fn verify_ranges_cover_the_log_once_without_empty_ranges() {
        assert!(verify_ranges(0, 2, 4).is_empty());
        assert_eq!(verify_ranges(10, 50, 4), [(0, None)]);
        assert_eq!(
            verify_ranges(5, 2, 4),
            [(0, Some(2)), (2, Some(4)), (4, None)]
        );
        assert_eq!(
            verify_ranges(3, 2, 8),
            [(0, Some(1)), (1, Some(2)), (2, None)]
        );
        assert_eq!(verify_ranges(8, 2, 0), [(0, None)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn opens_no_more_connections_than_its_size_under_many_callers() {
        let pool = BlockingPool::<usize>::new(3);
        let opened = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let (pool, opened, running, most) =
                (pool.clone(), opened.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(
                    move || Ok::<_, ()>(opened.fetch_add(1, Ordering::SeqCst)),
                    move |_conn| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    },
                )
                .await
            }));
        }
        for t in tasks {
            assert!(matches!(t.await, Ok(Ok(Ok(())))));
        }
        assert!(opened.load(Ordering::SeqCst) <= 3, "opened {opened:?}");
        assert!(most.load(Ordering::SeqCst) <= 3, "ran {most:?} at once");
        assert!(most.load(Ordering::SeqCst) >= 2, "never ran in parallel");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_run_stays_on_the_calling_thread_only_with_an_idle_connection() {
        let pool = BlockingPool::<u8>::new(1);
        let here = std::thread::current().id();
        let on = |pool: Arc<BlockingPool<u8>>| async move {
            pool.run_short(
                || Ok::<u8, ()>(1),
                |c| Ok((std::thread::current().id(), *c)),
            )
            .await
        };
        // No connection yet: opened on a blocking thread.
        let (thread, conn) = on(pool.clone()).await.unwrap().unwrap();
        assert_ne!(thread, here);
        assert_eq!(conn, 1);
        // Now one is idle: the next run uses it right here.
        let (thread, conn) = on(pool.clone()).await.unwrap().unwrap();
        assert_eq!(thread, here);
        assert_eq!(conn, 1, "the connection was reused, not opened again");
        // A panic is this call's error; the connection it held is dropped, and the next call
        // opens another.
        let failed = pool
            .run_short(|| Ok::<u8, ()>(2), |_| -> Result<(), ()> { panic!("boom") })
            .await;
        assert!(failed.unwrap_err().to_string().contains("boom"));
        assert!(matches!(
            pool.run_short(|| Ok::<u8, ()>(2), |c| Ok(*c)).await,
            Ok(Ok(2))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_idle_visits_the_idle_connections_only() {
        let pool = BlockingPool::<u8>::new(2);
        // Two runs that hold a connection at once (each waits for the other): two opened,
        // then both idle.
        let both = Arc::new(std::sync::Barrier::new(2));
        let run = |both: Arc<std::sync::Barrier>| {
            pool.run(
                || Ok::<u8, ()>(1),
                move |c| {
                    both.wait();
                    Ok(*c)
                },
            )
        };
        let (a, b) = tokio::join!(run(both.clone()), run(both));
        assert!(matches!((a, b), (Ok(Ok(1)), Ok(Ok(1)))));
        let mut seen = 0;
        pool.each_idle(|c| {
            seen += 1;
            *c = 7;
        });
        assert_eq!(seen, 2);
        // One taken by a run that holds it while `each_idle` runs: only the other is visited.
        let held = pool.clone();
        let visited = pool
            .run(
                || Ok::<u8, ()>(0),
                move |c| {
                    let mut n = 0;
                    held.each_idle(|_| n += 1);
                    Ok::<_, ()>((*c, n))
                },
            )
            .await;
        assert!(matches!(visited, Ok(Ok((7, 1)))));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_run_waits_its_turn_when_every_connection_is_busy() {
        let pool = BlockingPool::<u8>::new(1);
        let (started, release) = (
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(std::sync::Barrier::new(2)),
        );
        let long = {
            let (pool, started, release) = (pool.clone(), started.clone(), release.clone());
            tokio::spawn(async move {
                pool.run(
                    || Ok::<u8, ()>(1),
                    move |_| {
                        started.notify_one();
                        release.wait();
                        Ok(())
                    },
                )
                .await
            })
        };
        started.notified().await;
        let short = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run_short(|| Ok::<u8, ()>(2), |c| Ok(*c)).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!short.is_finished(), "ran beside the busy connection");
        release.wait();
        assert!(matches!(long.await, Ok(Ok(Ok(())))));
        assert!(
            matches!(short.await, Ok(Ok(Ok(1)))),
            "waited, then reused it"
        );
    }

    #[tokio::test]
    async fn a_failed_open_is_returned_and_the_next_call_opens_again() {
        let pool = BlockingPool::<u8>::new(1);
        let first = pool.run(|| Err::<u8, _>("no"), |_| Ok(())).await;
        assert!(matches!(first, Ok(Err("no"))));
        let second = pool.run(|| Ok::<u8, &str>(7), |c| Ok(*c)).await;
        assert!(matches!(second, Ok(Ok(7))));
    }
}
