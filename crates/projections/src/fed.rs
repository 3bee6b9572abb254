//! Read models built from the rows a bulk load of the log hands over as it stores them
//! (`BulkSink::hand_over_rows`), instead of read back from the log once it is loaded: a bulk
//! import into an empty store folds and writes them on the bulk path ([`crate::bulk`]) while
//! it decides and stores the next lines, and while the log builds its own indexes.
//!
//! **Invariant: the file is complete only for a complete log.** The rows arrive once stored,
//! before their transaction commits, so a failed load may have handed over rows the log does
//! not keep. The build therefore ends well only when the caller says where the committed log
//! ends (`end`, told once every row is committed, which may be before the store closes the
//! rows' channel) and the rows ended exactly there. If the load failed (`end` closed untold),
//! or ended elsewhere, the build fails and the file keeps its bulk mark, so the next open
//! removes it and rebuilds the read models from the log.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::Duration;

use citydb_log::RecordedEvent;

use crate::bulk::{self, Observer};
use crate::error::ProjectionError;
use crate::schema;

/// How long the build waits for rows before it looks whether the end was told.
const POLL: Duration = Duration::from_millis(20);

/// Builds a new projections file at `path` (whatever was there is removed) from `rows`, which
/// start at log position 0 and come in log order; `end` then receives the next position of
/// the committed log, or closes if the load failed. `observer` hears each commit and the
/// index build. Blocking: it runs on this thread and a writer thread of its own. Returns the
/// events built.
pub(crate) fn build(
    path: &Path,
    config: &crate::ProjectionConfig,
    rows: Receiver<Vec<RecordedEvent>>,
    end: Receiver<u64>,
    observer: Observer<'_>,
) -> Result<u64, ProjectionError> {
    schema::remove_file_set(path)?;
    let (conn, flavour, _) = schema::open_writer(path, config.search)?;
    if let Err(e) = bulk::start(&conn, flavour) {
        bulk::abandon(&conn);
        return Err(e);
    }
    let mut handed_over = 0u64;
    let mut told: Option<u64> = None;
    let mut ended = false;
    let mut next_chunk = || {
        if ended {
            return None;
        }
        let end = loop {
            if let Some(end) = told.filter(|end| handed_over >= *end) {
                break Ok(end);
            }
            match rows.recv_timeout(POLL) {
                Ok(chunk) => {
                    if let Some(last) = chunk.last() {
                        handed_over = last.position + 1;
                    }
                    return Some(Ok(chunk));
                }
                // The rows' channel stays open until the store has built its own indexes;
                // the end, told once the rows are committed, ends the build before that.
                Err(RecvTimeoutError::Timeout) if told.is_none() => match end.try_recv() {
                    Ok(end) => told = Some(end),
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => break Err(()),
                },
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    break told.or_else(|| end.recv().ok()).ok_or(());
                }
            }
        };
        ended = true;
        match end {
            Ok(end) if end == handed_over => None,
            Ok(end) => Some(Err(ProjectionError::Storage(format!(
                "the load ended at log position {end}, but handed over rows up to {handed_over}"
            )))),
            Err(()) => Some(Err(ProjectionError::Storage(
                "the load that fed the projections did not complete".into(),
            ))),
        }
    };
    let (_conn, result) = bulk::run(
        conn,
        path,
        flavour,
        config.bulk,
        None,
        &mut next_chunk,
        observer,
    );
    result
}
