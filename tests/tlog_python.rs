//! The auditor outside Rust: `tools/verify_tlog.py` (checkpoints, cosignatures, inclusion and
//! consistency proofs, tlog-proof receipts, tiles over HTTP) passes its own test suite,
//! `tools/test_verify_tlog.py`, which also checks that docs/audit-format.md prints the test
//! vectors its reference implementation computes. Without Python's `cryptography` or `blake3`
//! the test is skipped loudly (a failure under `CITYDB_REQUIRE_ALL=1`, as in CI).

use std::path::Path;
use std::process::Command;

#[test]
fn the_python_tlog_verifier_passes_its_tests() {
    let modules = Command::new("python3")
        .args(["-c", "import cryptography, blake3"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !modules {
        citydb_postgres::testkit::skip(
            "tools/test_verify_tlog.py in tests/tlog_python.rs",
            "`python3 -c 'import cryptography, blake3'` fails",
            "python3 -m pip install cryptography blake3",
        );
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/test_verify_tlog.py");
    // With the binary, its DemoServerTest runs against a real `serve --demo`: the checkpoint,
    // tiles, receipts and GraphQL proofs of both logs, and `citydb verify --proof` on the
    // receipts the document prints.
    let out = Command::new("python3")
        .arg(script)
        .env("CITYDB_BIN", env!("CARGO_BIN_EXE_citydb"))
        .output()
        .expect("run python3");
    // unittest reports on standard error; show it whichever way the run went.
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tools/test_verify_tlog.py failed:\n{report}"
    );
    assert!(report.contains("\nOK"), "no unittest verdict:\n{report}");
    assert!(
        !report.contains("skipped="),
        "the demo server test was skipped:\n{report}"
    );
}
