//! `citydb rebuild-projections`: remove projections.db without opening it and rebuild the read
//! models from the log.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::open_existing_log;
use crate::out::say;
use crate::progress::Progress;
use crate::summary::Summary;
use citydb_projections::{ProjectionConfig, Projections};
use citydb_store::Store;

/// Runs `work` (a rebuild or a catch-up of `projections`), moving `progress` with the
/// projections' position past `from` (where the work began) every 100 ms, and saying so once
/// the indexes are being built (the position then stands still for minutes at the whole city).
pub async fn watched<T>(
    projections: &Projections,
    progress: &Progress,
    from: u64,
    work: impl std::future::Future<Output = T>,
) -> T {
    let position = projections.watch_position();
    let building_indexes = projections.watch_building_indexes();
    tokio::pin!(work);
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                progress.set_position(position.borrow().saturating_sub(from));
                if *building_indexes.borrow() {
                    progress.set_stage("building the indexes");
                }
            }
        }
    };
    progress.set_position(position.borrow().saturating_sub(from));
    result
}

pub async fn run(data: &Path, store: &Store) -> anyhow::Result<ExitCode> {
    let log = open_existing_log(data, store, "log.db").await?;
    let path = data.join("projections.db");
    let config = ProjectionConfig {
        follow: false,
        ..ProjectionConfig::default()
    };
    // Never opened first: a damaged file may not open at all ("database disk image is
    // malformed"), and everything in it comes back from the log anyway.
    Projections::remove(&path).with_context(|| format!("cannot replace {}", path.display()))?;
    let projections = Projections::open(&path, log.clone(), config).await?;
    let started = Instant::now();
    let progress = Progress::events("rebuild-projections");
    if let Some(head) = log.head().await? {
        progress.set_length(head.position + 1);
    }
    let result = watched(&projections, &progress, 0, projections.rebuild()).await;
    progress.finish();
    result.context("the rebuild failed")?;
    // Approved redactions whose blanking a crash interrupted are completed here too (the
    // rebuilt rows already read redacted: folds apply the approvals' replacements).
    let registry = citydb_registry::Registry::new(log.clone());
    for record in projections.redacted_records().await? {
        registry.complete_redactions(record).await?;
    }
    let failures = projections.failures(None, 1000).await?;
    say!(
        "projections rebuilt: {} events in {:.1} s",
        projections.position(),
        started.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        say!(
            "{} event(s) could not be applied (recorded in projection_errors), e.g. position {}: {}",
            failures.len(),
            failures[0].position,
            failures[0].reason
        );
    }
    let events = projections.position();
    let code = Summary {
        events: Some(events),
        ..Summary::new("rebuild-projections")
    }
    .write(0, Some((events, "events")))?;
    Ok(ExitCode::from(code))
}
