//! `citydb witness`: a C2SP tlog-witness for the logs whose verifier keys it is given, with its
//! own cosigning key and its state in one SQLite file (`crate::witness`).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use crate::out::say;
use crate::witness::{Witness, router, state::WitnessState};
use citydb_tlog::{KeyKind, SignerKey, VerifierKey};

pub async fn run(
    key: &Path,
    logs: &[String],
    state: &Path,
    listen: &str,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(key)
        .with_context(|| format!("cannot read the witness key {}", key.display()))?;
    let key = SignerKey::parse(&text)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("bad witness key {}", key.display()))?;
    if key.verifier().kind() != KeyKind::Cosigner {
        anyhow::bail!(
            "--key is a log's key; a witness cosigns with a key made by `citydb keygen --cosigner`"
        );
    }
    if logs.is_empty() {
        anyhow::bail!("no --log-key VKEY: the witness would refuse every checkpoint (404)");
    }
    let mut trusted = Vec::new();
    for vkey in logs {
        let parsed = VerifierKey::parse(vkey)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("bad --log-key {vkey:?}"))?;
        if parsed.kind() != KeyKind::Log {
            anyhow::bail!("--log-key {vkey:?} is a cosigner's key, not a log's");
        }
        trusted.push(parsed);
    }
    let state = WitnessState::open(state)?;
    for log in &trusted {
        let kept = state.inconsistent_count(log.name())?;
        if kept > 0 {
            tracing::warn!(
                origin = log.name(),
                kept,
                "the state file keeps inconsistent checkpoints of this log as evidence of a fork"
            );
        }
    }
    let vkey = key.verifier();
    let witness = Arc::new(Witness::new(key, trusted, state));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    say!("citydb witness {vkey} serving on http://{addr}/add-checkpoint");
    tracing::info!(%addr, witness = %vkey, logs = logs.len(), "witnessing");
    citydb_api::serve(listener, router(witness), citydb_api::shutdown_signal())
        .await
        .context("the witness server failed")?;
    say!("citydb witness stopped");
    Ok(ExitCode::SUCCESS)
}
