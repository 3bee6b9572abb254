//! `citydb import`: executes NDJSON command requests through the registry.
//!
//! One line = one `CommandRequest` (see `citydb_registry::CommandRequest` for the shape). A
//! line that does not parse, or whose command is refused, is counted and reported with its
//! reason; it never stops the import. Re-running an import adds nothing: every line carries a
//! command id, and an executed id answers from its marker.

use std::fmt;
use std::io::BufRead;
use std::path::Path;

use anyhow::Context as _;

use citydb_api::Node;
use citydb_registry::{CommandRequest, Registry};

/// How many rejection reasons a summary keeps verbatim.
const KEPT_REJECTIONS: usize = 50;

#[derive(Debug, Default)]
pub struct ImportSummary {
    pub lines: u64,
    pub accepted: u64,
    pub already_imported: u64,
    pub rejected: u64,
    /// `(line number, reason)`, the first [`KEPT_REJECTIONS`].
    pub rejections: Vec<(u64, String)>,
    pub last_position: Option<u64>,
}

impl ImportSummary {
    fn reject(&mut self, line: u64, reason: String) {
        self.rejected += 1;
        if self.rejections.len() < KEPT_REJECTIONS {
            self.rejections.push((line, reason));
        }
    }
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} lines: {} accepted, {} already imported, {} rejected",
            self.lines, self.accepted, self.already_imported, self.rejected
        )?;
        for (line, reason) in &self.rejections {
            write!(f, "\n  line {line}: {reason}")?;
        }
        if self.rejected as usize > self.rejections.len() {
            write!(
                f,
                "\n  … and {} more",
                self.rejected as usize - self.rejections.len()
            )?;
        }
        Ok(())
    }
}

pub async fn import_file(node: &Node, path: &Path) -> anyhow::Result<ImportSummary> {
    let summary = if path == Path::new("-") {
        import_lines(&node.registry, std::io::stdin().lock()).await?
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        import_lines(&node.registry, std::io::BufReader::new(file)).await?
    };
    Ok(summary)
}

/// Executes each line in order (later lines may depend on earlier ones: a marriage on two
/// registrations).
pub async fn import_lines(
    registry: &Registry,
    reader: impl BufRead,
) -> anyhow::Result<ImportSummary> {
    let mut summary = ImportSummary::default();
    for (index, line) in reader.lines().enumerate() {
        let number = index as u64 + 1;
        let line = line.with_context(|| format!("cannot read line {number}"))?;
        if line.trim().is_empty() {
            continue;
        }
        summary.lines += 1;
        let request: CommandRequest = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                summary.reject(number, format!("INVALID_INPUT: {e}"));
                continue;
            }
        };
        match registry.execute(request).await {
            Ok(done) if done.already_executed => summary.already_imported += 1,
            Ok(done) => {
                summary.accepted += 1;
                summary.last_position = done.last_position.or(summary.last_position);
            }
            Err(e) => summary.reject(number, format!("{}: {e}", e.code())),
        }
    }
    Ok(summary)
}
