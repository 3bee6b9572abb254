//! `citydb migrate`: copy a whole log verbatim between stores, resumably, verifying both sides.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;

use crate::out::say;
use crate::progress::Progress;
use crate::summary::Summary;
use citydb_log::{EventLog, LogError};
use citydb_sqlite::{SqliteConfig, SqliteLog, SqliteTiles};
use citydb_store::{Store, StoreConfig};
use citydb_tlog::TileStore;

/// Opens one side of a migration: a `postgres://` URL (its event log, or its access log), or
/// an SQLite file, which must exist unless it is the target.
async fn open_endpoint(
    spec: &str,
    access_log: bool,
    create: bool,
) -> anyhow::Result<(Arc<dyn EventLog>, Arc<dyn TileStore>)> {
    if let Ok(store @ Store::Postgres(_)) = spec.parse::<Store>() {
        let opened = citydb_store::open(&store, Path::new("."), &StoreConfig::default())
            .await
            .with_context(|| format!("cannot open {spec}"))?;
        return Ok(if access_log {
            (opened.access.v1, opened.access_tree)
        } else {
            (opened.log, opened.tree)
        });
    }
    let path = Path::new(spec);
    if !create && !path.exists() {
        anyhow::bail!("no log at {}", path.display());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let log = SqliteLog::open(path, SqliteConfig::default())
        .with_context(|| format!("cannot open {}", path.display()))?;
    let tree = SqliteTiles::open(path, &SqliteConfig::default())
        .map_err(|e| anyhow::anyhow!("cannot open the Merkle tree of {}: {e}", path.display()))?;
    Ok((Arc::new(log), Arc::new(tree)))
}

pub async fn run(from: &str, to: &str, access_log: bool, batch: usize) -> anyhow::Result<ExitCode> {
    if access_log {
        let source = match from.parse::<Store>() {
            Ok(store @ Store::Postgres(_)) => {
                citydb_store::open(&store, Path::new("."), &StoreConfig::default())
                    .await
                    .with_context(|| format!("cannot open {from}"))?
                    .access
            }
            _ if Path::new(from).exists() => citydb_store::open_embedded_access_log_to_read(
                Path::new(from),
                &SqliteConfig::default(),
            )
            .with_context(|| format!("cannot open {from}"))?,
            _ => anyhow::bail!("no log at {from}"),
        };
        super::refuse_v2_entries(&source, from).await?;
    }
    let (source, _) = open_endpoint(from, access_log, false).await?;
    let (target, target_tree) = open_endpoint(to, access_log, true).await?;
    let progress = Progress::events("migrate");
    if let Some(head) = source.head().await? {
        progress.set_length(head.position + 1);
    }
    let started = Instant::now();
    let copied = citydb_log::copy_log(&*source, &*target, batch.max(1), |n| {
        progress.set_position(n)
    })
    .await;
    progress.finish();
    match copied {
        Ok(report) => {
            // The target's tree, grown over what was copied (its leaves are the same event
            // hashes as the source's: the same tree, the same roots).
            super::keep_tree(target_tree, &citydb_tlog::LogLeaves(target.clone())).await?;
            say!(
                "copied {} events ({} streams) in {:.1?}; both heads at {}",
                report.events,
                report.streams,
                started.elapsed(),
                report.target_head.map_or_else(
                    || "nothing (empty log)".to_owned(),
                    |h| format!("position {} hash {}", h.position, h.hash)
                ),
            );
            if report.resumed_from > 0 {
                say!("resumed after position {}", report.resumed_from - 1);
            }
            let code = Summary {
                events: Some(report.events),
                streams: Some(report.streams),
                head: report.target_head.as_ref().map(Into::into),
                ..Summary::new("migrate")
            }
            .write(0, Some((report.events, "events")))?;
            Ok(ExitCode::from(code))
        }
        Err(
            e @ (LogError::Corrupted { .. }
            | LogError::CopyDiverged { .. }
            | LogError::CopyRefused { .. }),
        ) => {
            eprintln!("migration refused: {e}");
            let code = Summary {
                reason: Some(e.to_string()),
                ..Summary::new("migrate")
            }
            .write(2, None)?;
            Ok(ExitCode::from(code))
        }
        Err(e) => Err(e.into()),
    }
}
