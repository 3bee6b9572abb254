//! `citydb fixtures`: deterministic Hải Phòng data as import NDJSON, to a file or standard output.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

pub fn run(citizens: u64, seed: u64, out: &Path) -> anyhow::Result<ExitCode> {
    let config = citydb_fixtures::FixtureConfig::scaled(citizens, seed);
    let stats = if out == Path::new("-") {
        citydb_fixtures::write_ndjson(&config, std::io::BufWriter::new(std::io::stdout().lock()))?
    } else {
        let file = std::fs::File::create(out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        citydb_fixtures::write_ndjson(&config, std::io::BufWriter::new(file))?
    };
    eprintln!("{} lines, {} bytes", stats.lines, stats.bytes);
    Ok(ExitCode::SUCCESS)
}
