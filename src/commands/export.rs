//! `citydb export`: the whole event log (or access log) as NDJSON, to a file or standard output.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::{log_file, open_access_log, open_existing_log, refuse_v2_entries};
use crate::export;
use crate::progress::Progress;
use crate::summary::{self, Summary};
use citydb_store::Store;

pub async fn run(
    data: &Path,
    store: &Store,
    out: Option<PathBuf>,
    format: export::Format,
    access_log: bool,
) -> anyhow::Result<ExitCode> {
    if out.is_none() && summary::on_stdout() {
        anyhow::bail!(
            "the export and the JSON summary cannot share standard output: use --out FILE or --summary-file PATH"
        );
    }
    if access_log {
        refuse_v2_entries(&open_access_log(data, store).await?, "the access log").await?;
    }
    let log = open_existing_log(data, store, log_file(access_log)).await?;
    let progress = Progress::events("export");
    let (summary, bytes) = match &out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut writer = Counted::new(std::io::BufWriter::with_capacity(1 << 16, file));
            export::write_header(&mut writer, format, access_log)?;
            let summary = export::export(log, &mut writer, format, &progress).await?;
            let bytes = writer.written;
            writer
                .inner
                .into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            (summary, bytes)
        }
        None => {
            let mut writer = Counted::new(std::io::BufWriter::new(std::io::stdout().lock()));
            export::write_header(&mut writer, format, access_log)?;
            let summary = export::export(log, &mut writer, format, &progress).await?;
            writer.flush()?;
            (summary, writer.written)
        }
    };
    progress.finish();
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
    let code = Summary {
        events: Some(summary.events),
        bytes: Some(bytes),
        head: summary.head.as_ref().map(Into::into),
        // What the header line states.
        hash_format: Some(u64::from(citydb_log::chain::FORMAT_VERSION)),
        ..Summary::new("export")
    }
    .write(0, Some((summary.events, "events")))?;
    Ok(ExitCode::from(code))
}

/// A writer that counts the bytes written through it (the summary's `bytes`), per buffered
/// write of the export, not per byte.
struct Counted<W> {
    inner: W,
    written: u64,
}

impl<W> Counted<W> {
    fn new(inner: W) -> Self {
        Counted { inner, written: 0 }
    }
}

impl<W: std::io::Write> std::io::Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
