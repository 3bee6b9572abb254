//! `citydb verify`: the hash chain of a whole log, one stream, or an export file. The whole
//! access log (`--access-log`) is its v1 events and its v2 entries, one chain, and the citizen
//! index derived from it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::{log_file, open_access_log, open_existing_log};
use crate::out::say;
use crate::progress::Progress;
use crate::summary::Summary;
use crate::verify;
use citydb_api::AccessLog;
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
        let progress = Progress::bytes("verify", len);
        let reader = std::io::BufReader::with_capacity(1 << 16, input);
        let verified = tokio::task::spawn_blocking({
            let progress = progress.clone();
            move || verify::verify_file(reader, expected_head, &progress)
        })
        .await
        .context("the verification task failed")??;
        progress.finish();
        let what = path.display().to_string();
        let code = verify::report(&verified.outcome, &what, true);
        let format = verified.hash_format;
        say!(
            "hash format {}: {}",
            format.version,
            if format.stated {
                "stated in the export's header"
            } else {
                "no header (an export written before citydb stated it)"
            }
        );
        let summary = Summary {
            bytes: Some(progress.position()),
            hash_format: Some(format.version),
            hash_format_stated: Some(format.stated),
            ..verify::summary(&verified.outcome, "export", &what)
        };
        return write(summary, &verified.outcome, code);
    }
    let name = log_file(access_log);
    let what = match store {
        Store::Embedded => data.join(name).display().to_string(),
        // Not the URL: it may hold a password.
        Store::Postgres(_) => format!(
            "the PostgreSQL store's {}",
            if access_log {
                "access log"
            } else {
                "event log"
            }
        ),
    };
    if access_log && stream.is_none() {
        // The whole access log: its v1 events, then its v2 entries and their citizen index.
        let access = AccessLog::new(open_access_log(data, store).await?);
        let progress = Progress::spinner("verify");
        let report = access
            .verify_against(expected_head)
            .await
            .map_err(|e| anyhow::anyhow!("cannot verify {what}: {e}"))?;
        progress.set_position(report.events);
        progress.finish();
        let outcome = verify::Outcome::Report(report);
        let code = verify::report(&outcome, &what, true);
        return write(
            verify::summary(&outcome, "access_log", &what),
            &outcome,
            code,
        );
    }
    let log = open_existing_log(data, store, name).await?;
    let whole_log = stream.is_none();
    let outcome = match stream {
        Some(s) => {
            let id: citydb_log::StreamId = s.parse().with_context(|| format!("stream {s:?}"))?;
            let progress = Progress::spinner("verify");
            let result = log.verify_stream(&id).await;
            if let Ok(report) = &result {
                progress.set_position(report.events);
            }
            progress.finish();
            match result {
                // A stream with no events is not "intact": it is not there (a typo in the id,
                // or the wrong store), and an auditor must not read it as a pass.
                // (A stream whose first event is broken has 0 verified events too: broken.)
                Ok(report) if report.events == 0 && report.is_intact() => {
                    anyhow::bail!("no stream {s} in {what}")
                }
                Ok(report) => verify::Outcome::Report(report),
                Err(citydb_log::LogError::Corrupted { position, reason }) => {
                    verify::Outcome::Undecodable {
                        at: verify::Place::Position(position),
                        reason,
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => {
            let progress = Progress::events("verify");
            let outcome = verify::verify_log(log, expected_head, &progress).await?;
            progress.finish();
            outcome
        }
    };
    let code = verify::report(&outcome, &what, whole_log);
    let verified = if whole_log { "log" } else { "stream" };
    write(verify::summary(&outcome, verified, &what), &outcome, code)
}

fn write(summary: Summary, outcome: &verify::Outcome, code: u8) -> anyhow::Result<ExitCode> {
    let events = match outcome {
        verify::Outcome::Report(report) => Some((report.events, "events")),
        verify::Outcome::Undecodable { .. } => None,
    };
    Ok(ExitCode::from(summary.write(code, events)?))
}
