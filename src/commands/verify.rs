//! `citydb verify`: the hash chain of a whole log, one stream, or an export file. The whole
//! access log (`--access-log`) is its v1 events and its v2 entries, one chain, and the citizen
//! index derived from it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::{log_file, open_access_log, open_existing_log};
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
        let outcome = tokio::task::spawn_blocking({
            let progress = progress.clone();
            move || verify::verify_file(reader, expected_head, &progress)
        })
        .await
        .context("the verification task failed")??;
        progress.finish();
        let code = verify::report(&outcome, &path.display().to_string(), true);
        let summary = Summary {
            bytes: Some(progress.position()),
            ..summary_of(&outcome)
        };
        return write(summary, &outcome, code);
    }
    let name = log_file(access_log);
    let what = data.join(name).display().to_string();
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
        return write(summary_of(&outcome), &outcome, code);
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
            let progress = Progress::events("verify");
            let outcome = verify::verify_log(log, expected_head, &progress).await?;
            progress.finish();
            outcome
        }
    };
    let code = verify::report(&outcome, &what, whole_log);
    write(summary_of(&outcome), &outcome, code)
}

/// The counts of a verification for its summary.
fn summary_of(outcome: &verify::Outcome) -> Summary {
    match outcome {
        verify::Outcome::Report(report) => Summary {
            events: Some(report.events),
            streams: Some(report.streams),
            head: report.head.as_ref().map(Into::into),
            reason: report
                .corruption
                .as_ref()
                .map(|c| format!("broken at position {}: {}", c.position, c.breach)),
            ..Summary::new("verify")
        },
        verify::Outcome::Undecodable { at, reason } => Summary {
            reason: Some(format!("broken at {at}: cannot be decoded: {reason}")),
            ..Summary::new("verify")
        },
    }
}

fn write(summary: Summary, outcome: &verify::Outcome, code: u8) -> anyhow::Result<ExitCode> {
    let events = match outcome {
        verify::Outcome::Report(report) => Some((report.events, "events")),
        verify::Outcome::Undecodable { .. } => None,
    };
    Ok(ExitCode::from(summary.write(code, events)?))
}
