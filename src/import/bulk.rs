//! The bulk import: the file's commands one after the other, in file order, through a
//! [`BulkRegistry`] that holds the store alone.
//!
//! File order one at a time is the reference a careful import reproduces, so every line gets
//! the answer it would get there. The store commits whole commands only (in transactions of its
//! choosing): a kill leaves a prefix of the file's commands in the store, and the same command
//! run again answers those "already imported" (their markers) and goes on.
//!
//! Lines are read and parsed on a thread of their own, [`BATCH`] at a time, while this task
//! decides: parsing was about an eighth of the importer's CPU, and the importer's thread is the
//! one the load waits for (docs/benchmarks.md, "The whole city"). File order is kept: one
//! parser, one queue.

use std::io::BufRead;

use anyhow::Context as _;

use citydb_registry::BulkRegistry;

use super::{ImportSummary, Request, Requests};
use crate::progress::Progress;

/// Requests parsed per message from the parser thread.
const BATCH: usize = 256;

/// Batches queued ahead of the registry: bounds what the parser holds in memory.
const QUEUE: usize = 16;

/// One message from the parser: the next requests, and where the file stands after them.
struct Parsed {
    requests: Vec<Request>,
    number: u64,
    bytes: u64,
}

/// Executes every line of `reader` through `registry`; the caller finishes the registry (the
/// last commit). `Err` when the store failed (what was committed stays: re-run).
pub async fn import_lines(
    registry: &mut BulkRegistry,
    reader: impl BufRead + Send + 'static,
    progress: &Progress,
) -> anyhow::Result<ImportSummary> {
    let (batches, mut parsed) = tokio::sync::mpsc::channel(QUEUE);
    std::thread::Builder::new()
        .name("citydb-import-parse".into())
        .spawn(move || parse(reader, batches))
        .context("cannot start the parser thread")?;
    let mut summary = ImportSummary::default();
    let mut bytes = 0;
    while let Some(batch) = parsed.recv().await {
        let batch = batch?;
        for next in batch.requests {
            summary.lines += 1;
            let (line, request) = match next {
                Request::Parsed { line, request } => (line, request),
                Request::Refused { line, message } => {
                    summary.reject(line, "INVALID_INPUT", message);
                    continue;
                }
            };
            let result = registry.execute(request).await;
            summary.record(line, result).map_err(|e| {
                anyhow::Error::new(e).context(format!(
                    "the import stopped at line {line}: the store failed (committed lines stay; re-run to continue)"
                ))
            })?;
        }
        bytes = batch.bytes;
        progress.read(batch.number, bytes);
        progress.set_message(summary.brief());
    }
    summary.bytes = bytes;
    Ok(summary.finish())
}

/// The parser thread: every request of `reader` in file order, then the end of the channel (a
/// read error is the last message). Stops early when the importer is gone.
fn parse(reader: impl BufRead, batches: tokio::sync::mpsc::Sender<anyhow::Result<Parsed>>) {
    let mut requests = Requests::new(reader);
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        let mut end = false;
        while batch.len() < BATCH {
            match requests.next_request() {
                Ok(Some(request)) => batch.push(request),
                Ok(None) => {
                    end = true;
                    break;
                }
                Err(e) => {
                    let _ = batches.blocking_send(Err(e));
                    return;
                }
            }
        }
        let message = Parsed {
            requests: batch,
            number: requests.number,
            bytes: requests.bytes,
        };
        if batches.blocking_send(Ok(message)).is_err() || end {
            return;
        }
    }
}
