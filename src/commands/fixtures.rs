//! `citydb fixtures`: deterministic Hải Phòng data as import NDJSON, to a file or standard output.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use citydb_fixtures::FixtureConfig;

/// `beside`: the citizens and seed of the fixture a store already holds (`--beside`).
pub fn run(
    citizens: u64,
    seed: u64,
    beside: Option<(u64, u64)>,
    out: &Path,
) -> anyhow::Result<ExitCode> {
    let config = FixtureConfig::scaled(citizens, seed);
    // Checked before the output file is created, so a refused config leaves no empty file.
    let generator = match beside {
        None => citydb_fixtures::try_generate(&config)?,
        Some((citizens, seed)) => {
            citydb_fixtures::try_generate_beside(&config, &FixtureConfig::scaled(citizens, seed))?
        }
    };
    let stats = if out == Path::new("-") {
        citydb_fixtures::write_lines(generator, std::io::BufWriter::new(std::io::stdout().lock()))?
    } else {
        let file = std::fs::File::create(out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        citydb_fixtures::write_lines(generator, std::io::BufWriter::new(file))?
    };
    eprintln!("{} lines, {} bytes", stats.lines, stats.bytes);
    Ok(ExitCode::SUCCESS)
}
