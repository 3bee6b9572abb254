//! `citydb verify`: the hash chain of a whole log, one stream, or an export file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::{log_file, open_existing_log};
use crate::{progress, verify};
use citydb_store::Store;

pub async fn run(
    data: &Path,
    store: &Store,
    stream: Option<String>,
    file: Option<PathBuf>,
    expected_head: Option<citydb_log::LogHead>,
    access_log: bool,
) -> anyhow::Result<ExitCode> {
    if let Some(path) = file {
        let (input, len): (Box<dyn std::io::Read + Send>, Option<u64>) = if path.as_os_str() == "-"
        {
            (Box::new(std::io::stdin()), None)
        } else {
            let f = std::fs::File::open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let len = f.metadata().ok().map(|m| m.len());
            (Box::new(f), len)
        };
        let progress = progress::bytes(len, "verifying");
        let reader = std::io::BufReader::with_capacity(1 << 16, input);
        let outcome = tokio::task::spawn_blocking({
            let progress = progress.clone();
            move || verify::verify_file(reader, expected_head, &progress)
        })
        .await
        .context("the verification task failed")??;
        progress.finish_and_clear();
        let code = verify::report(&outcome, &path.display().to_string(), true);
        return Ok(ExitCode::from(code));
    }
    let name = log_file(access_log);
    let log = open_existing_log(data, store, name).await?;
    let what = data.join(name).display().to_string();
    let whole_log = stream.is_none();
    let outcome = match stream {
        Some(s) => {
            let id: citydb_log::StreamId = s.parse().with_context(|| format!("stream {s:?}"))?;
            let progress = progress::spinner("verifying");
            let result = log.verify_stream(&id).await;
            progress.finish_and_clear();
            match result {
                // A stream with no events is not "intact": it is not there (a typo in the id,
                // or the wrong store), and an auditor must not read it as a pass.
                Ok(report) if report.events == 0 => anyhow::bail!("no stream {s} in {what}"),
                Ok(report) => verify::Outcome::Report(report),
                Err(citydb_log::LogError::Corrupted { position, reason }) => {
                    verify::Outcome::Undecodable {
                        at: format!("position {position}"),
                        reason,
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => {
            let progress = progress::events("verifying");
            let outcome = verify::verify_log(log, expected_head, &progress).await?;
            progress.finish_and_clear();
            outcome
        }
    };
    Ok(ExitCode::from(verify::report(&outcome, &what, whole_log)))
}
