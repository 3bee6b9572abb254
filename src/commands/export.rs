//! `citydb export`: the whole event log (or access log) as NDJSON, to a file or standard output.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::{log_file, open_existing_log};
use crate::{export, progress};
use citydb_store::Store;

pub async fn run(
    data: &Path,
    store: &Store,
    out: Option<PathBuf>,
    format: export::Format,
    access_log: bool,
) -> anyhow::Result<ExitCode> {
    let log = open_existing_log(data, store, log_file(access_log)).await?;
    let progress = progress::events("exporting");
    let summary = match &out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut writer = std::io::BufWriter::with_capacity(1 << 16, file);
            let summary = export::export(log, &mut writer, format, &progress).await?;
            writer
                .into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            summary
        }
        None => {
            let mut writer = std::io::BufWriter::new(std::io::stdout().lock());
            let summary = export::export(log, &mut writer, format, &progress).await?;
            writer.flush()?;
            summary
        }
    };
    progress.finish_and_clear();
    match summary.head {
        Some(h) => eprintln!(
            "exported {} events of {}; head: position {} hash {}",
            summary.events,
            log_file(access_log),
            h.position,
            h.hash
        ),
        None => eprintln!("exported 0 events: {} is empty", log_file(access_log)),
    }
    Ok(ExitCode::SUCCESS)
}
