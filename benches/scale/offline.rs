//! Phase 1, the offline steps: `citydb fixtures`, `import`, `verify`, `export | verify --file -`
//! and (when the binary has it) `rebuild-projections`, each measured.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use crate::fixture::{Fixture, read_fixture};
use crate::steps::{Step, dir_sizes, export_and_verify, must, run_step, verified_events};
use crate::{BIN, Dirs, Params};

/// What the offline steps measured, and the fixture's keys for the loads.
pub struct Offline {
    /// The data directory and fixture of an earlier run, served as they are: none of the
    /// steps below ran, and their figures are not reported.
    pub reused: bool,
    pub has_rebuild: bool,
    pub gen_step: Step,
    pub fixture_bytes: u64,
    pub fx: Fixture,
    pub import: Step,
    /// The first line of `citydb import`'s summary.
    pub import_summary: String,
    pub sizes_import: BTreeMap<String, u64>,
    pub verify: Step,
    /// Events in the log, as `citydb verify` counted them.
    pub events: u64,
    pub export_wall: Duration,
    pub export_bytes: u64,
    pub export_verify: Step,
    pub rebuild_label: &'static str,
    pub rebuild_step: Option<Step>,
}

pub fn run(params: &Params, dirs: &Dirs, use_time: bool, findings: &mut Vec<String>) -> Offline {
    let logs = &dirs.logs;
    let fixture_s = dirs.fixture_s.as_str();
    let help = Command::new(BIN).arg("--help").output().unwrap();
    let has_rebuild = String::from_utf8_lossy(&help.stdout).contains("rebuild-projections");
    let citizens_s = params.citizens.to_string();
    let seed_s = params.seed.to_string();
    let gen_step = run_step(
        logs,
        "fixtures",
        &[
            "fixtures",
            "--citizens",
            &citizens_s,
            "--seed",
            &seed_s,
            "--out",
            fixture_s,
        ],
        use_time,
    );
    must(&gen_step, "citydb fixtures");
    let fixture_bytes = std::fs::metadata(&dirs.fixture).unwrap().len();
    eprintln!("[scale] reading the fixture for keys");
    let fx = read_fixture(&dirs.fixture);

    let import = run_step(
        logs,
        "import",
        &dirs.with_data(&["import", fixture_s]),
        use_time,
    );
    if import.code == Some(3) {
        findings.push(format!(
            "`citydb import` rejected lines of a fresh fixture: {}",
            import
                .stdout
                .lines()
                .take(6)
                .collect::<Vec<_>>()
                .join(" / ")
        ));
    } else {
        must(&import, "citydb import");
    }
    let import_summary = import.stdout.lines().next().unwrap_or_default().to_owned();
    let sizes_import = dir_sizes(&dirs.data);

    let verify = run_step(logs, "verify", &dirs.with_data(&["verify"]), use_time);
    must(&verify, "citydb verify");
    let events = verified_events(&verify.stdout).expect("verify printed no event count");
    let (export_wall, export_bytes, export_verify) =
        export_and_verify(logs, &dirs.with_data(&["export"]));
    must(&export_verify, "citydb export | citydb verify --file -");
    assert_eq!(
        verified_events(&export_verify.stdout),
        Some(events),
        "the export holds a different number of events than the log"
    );
    assert_eq!(
        export_verify.stdout.lines().nth(1),
        verify.stdout.lines().nth(1),
        "the export's head is not the log's"
    );

    let (rebuild_label, rebuild_step) = if has_rebuild {
        let s = run_step(
            logs,
            "rebuild-projections",
            &dirs.with_data(&["rebuild-projections"]),
            use_time,
        );
        must(&s, "citydb rebuild-projections");
        if s.stdout.contains("could not be applied") {
            findings.push(format!(
                "projection failures after rebuild: {}",
                s.stdout.trim()
            ));
        }
        ("`citydb rebuild-projections`", Some(s))
    } else {
        ("", None)
    };

    Offline {
        reused: false,
        has_rebuild,
        gen_step,
        fixture_bytes,
        fx,
        import,
        import_summary,
        sizes_import,
        verify,
        events,
        export_wall,
        export_bytes,
        export_verify,
        rebuild_label,
        rebuild_step,
    }
}

/// The offline side of a run that serves an earlier run's data directory (`CITYDB_SCALE_REUSE`):
/// only the fixture is read, for the loads' keys. The projections are served as they are.
pub fn reuse(dirs: &Dirs) -> Offline {
    eprintln!("[scale] reusing {} and its fixture", dirs.data.display());
    let fx = read_fixture(&dirs.fixture);
    Offline {
        reused: true,
        has_rebuild: true,
        gen_step: Step::skipped(),
        fixture_bytes: std::fs::metadata(&dirs.fixture).map_or(0, |m| m.len()),
        fx,
        import: Step::skipped(),
        import_summary: String::new(),
        sizes_import: dir_sizes(&dirs.data),
        verify: Step::skipped(),
        events: 0,
        export_wall: Duration::ZERO,
        export_bytes: 0,
        export_verify: Step::skipped(),
        rebuild_label: "",
        rebuild_step: None,
    }
}
