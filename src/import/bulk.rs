//! The bulk import: the file's commands one after the other, in file order, through a
//! [`BulkRegistry`] that holds the store alone.
//!
//! File order one at a time is the reference a careful import reproduces, so every line gets
//! the answer it would get there. The store commits whole commands only (in transactions of its
//! choosing): a kill leaves a prefix of the file's commands in the store, and the same command
//! run again answers those "already imported" (their markers) and goes on.

use std::io::BufRead;

use citydb_registry::BulkRegistry;

use super::{ImportSummary, Request, Requests};
use crate::progress::Progress;

/// Executes every line of `reader` through `registry`; the caller finishes the registry (the
/// last commit). `Err` when the store failed (what was committed stays: re-run).
pub async fn import_lines(
    registry: &mut BulkRegistry,
    reader: impl BufRead,
    progress: &Progress,
) -> anyhow::Result<ImportSummary> {
    let mut summary = ImportSummary::default();
    let mut requests = Requests::new(reader);
    while let Some(next) = requests.next_request()? {
        summary.lines += 1;
        if requests.number.is_multiple_of(256) {
            progress.read(requests.number, requests.bytes);
            progress.set_message(summary.brief());
        }
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
    progress.read(requests.number, requests.bytes);
    progress.set_message(summary.brief());
    summary.bytes = requests.bytes;
    Ok(summary.finish())
}
