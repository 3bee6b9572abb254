//! Completing approved redactions when a node starts.
//!
//! A redaction's approval is appended first and its blanking (the event's payload and its
//! command's marker, `citydb_registry::Registry::complete_redactions`) follows; a crash in
//! between leaves the payloads in the log. Every state already reads redacted (folds apply the
//! approval's replacement), and blanking is idempotent, so a node re-runs it at start for every
//! record whose approval its projections have seen, then re-folds those records' rows
//! (`citydb_projections::Projections::refold_redacted`), in the background: serving does not
//! wait for it.

use std::sync::Arc;
use std::time::Duration;

use citydb_log::EventLog;
use citydb_projections::Projections;
use citydb_registry::Registry;

/// How long the completion waits for the projections to reach the log's head at start.
const CATCH_UP: Duration = Duration::from_secs(3600);

pub(crate) fn complete_at_start(
    log: Arc<dyn EventLog>,
    registry: Registry,
    projections: Projections,
) {
    tokio::spawn(async move {
        if let Err(e) = complete(log.as_ref(), &registry, &projections).await {
            tracing::warn!(error = %e, "approved redactions could not be completed at start");
        }
    });
}

async fn complete(
    log: &dyn EventLog,
    registry: &Registry,
    projections: &Projections,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if let Some(head) = log.head().await? {
        projections.wait_for(head.position, CATCH_UP).await?;
    }
    let mut blanked = 0;
    for record in projections.redacted_records().await? {
        blanked += registry.complete_redactions(record).await?.blanked;
    }
    let refolded = projections.refold_redacted().await?;
    if blanked > 0 {
        tracing::warn!(
            blanked,
            refolded,
            "payloads of approved redactions were still in the log at start: blanked now"
        );
    }
    Ok(())
}
