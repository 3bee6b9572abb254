//! `citydb prove` (a C2SP tlog-proof@v1 receipt for one position), `citydb verify --proof`
//! (a receipt checked offline) and `citydb verify --checkpoint` (the current log checked
//! against a checkpoint saved earlier). docs/audit-format.md specifies the formats.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use super::{open_access_log, open_existing_log};
use crate::out::say;
use citydb_api::published::{AccessLeaves, PublishedLog};
use citydb_store::{Store, StoreConfig};
use citydb_tlog::{Checkpoint, LogLeaves, Receipt, SignerKey, VerifierKey};

/// Exit status of a proof or checkpoint that does not verify (as `verify`'s broken chain).
const BROKEN: u8 = 2;

/// The event log's (or the access log's) published tree, over the store's stored tree.
async fn published(
    data: &Path,
    store: &Store,
    access_log: bool,
    signer: Option<SignerKey>,
) -> anyhow::Result<Arc<PublishedLog>> {
    // The log first: an embedded tree lives in its log's file, which must exist.
    let leaves: Arc<dyn citydb_tlog::Leaves> = if access_log {
        Arc::new(AccessLeaves(open_access_log(data, store).await?))
    } else {
        Arc::new(LogLeaves(open_existing_log(data, store, "log.db").await?))
    };
    let tiles = citydb_store::open_tree(store, data, &StoreConfig::default(), access_log)
        .await
        .context("cannot open the Merkle tree")?;
    let origin = signer
        .as_ref()
        .map_or_else(String::new, |s| s.name().to_owned());
    Ok(PublishedLog::new(
        tiles,
        leaves,
        &origin,
        signer.map(Arc::new),
        &[],
    ))
}

fn read_signer(path: &Path, access_log: bool) -> anyhow::Result<SignerKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let key = SignerKey::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if access_log {
        return key
            .renamed(&citydb_api::published::access_origin(key.name()))
            .map_err(|e| anyhow::anyhow!("{e}"));
    }
    Ok(key)
}

/// `citydb prove --position N`: the receipt against the latest checkpoint covering N (or, with
/// `--signing-key`, one signed now), on standard output.
pub async fn run(
    data: &Path,
    store: &Store,
    position: u64,
    access_log: bool,
    signing_key: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let signer = signing_key
        .as_deref()
        .map(|p| read_signer(p, access_log))
        .transpose()?;
    let log = published(data, store, access_log, signer).await?;
    let proof = citydb_api::schema::proofs::inclusion(&log, position as i64, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(receipt) = proof.receipt else {
        anyhow::bail!(
            "no signed checkpoint covers position {position} yet: wait for the server to sign one \
             (every few seconds while the log grows) or pass --signing-key"
        );
    };
    print!("{receipt}");
    Ok(ExitCode::SUCCESS)
}

/// Verifier keys given on the command line: each a vkey, or a file of vkeys (one per line).
pub fn verifier_keys(args: &[String]) -> anyhow::Result<Vec<VerifierKey>> {
    let mut keys = Vec::new();
    for arg in args {
        let text = match std::fs::read_to_string(arg) {
            Ok(text) => text,
            Err(_) => arg.clone(),
        };
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            keys.push(VerifierKey::parse(line).map_err(|e| anyhow::anyhow!("{line:?}: {e}"))?);
        }
    }
    if keys.is_empty() {
        anyhow::bail!("give the log's verifier key with --vkey (a vkey, or a file holding it)");
    }
    Ok(keys)
}

/// `citydb verify --proof FILE --vkey KEY`: offline, no store needed.
pub fn verify_receipt(
    path: &Path,
    vkeys: &[String],
    entry: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let keys = verifier_keys(vkeys)?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let receipt = Receipt::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if let Some(expected) = entry {
        let hex: String = receipt.entry.iter().map(|b| format!("{b:02x}")).collect();
        if !hex.eq_ignore_ascii_case(expected) {
            eprintln!("BROKEN: the receipt proves event hash {hex}, not {expected}");
            return Ok(ExitCode::from(BROKEN));
        }
    }
    match receipt.verify(&keys) {
        Ok((checkpoint, verified)) => {
            let hex: String = receipt.entry.iter().map(|b| format!("{b:02x}")).collect();
            say!(
                "OK: event hash {hex} is entry {} of the log {} of {} entries (root {}), signed by {}{}",
                receipt.index,
                checkpoint.origin,
                checkpoint.size,
                base64_root(&checkpoint),
                verified.log_keys.join(", "),
                cosigners(&verified)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("BROKEN: {e}");
            Ok(ExitCode::from(BROKEN))
        }
    }
}

fn base64_root(c: &Checkpoint) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(c.root)
}

fn cosigners(v: &citydb_tlog::note::Verified) -> String {
    if v.cosigners.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = v.cosigners.iter().map(|(n, _)| n.as_str()).collect();
        format!(", cosigned by {}", names.join(", "))
    }
}

/// `citydb verify --checkpoint OLD`: the current log (its tree caught up) holds the history
/// OLD signed, as a prefix. With `--vkey`, OLD's signature is checked first.
pub async fn verify_checkpoint(
    data: &Path,
    store: &Store,
    path: &Path,
    vkeys: &[String],
    access_log: bool,
) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let old = if vkeys.is_empty() {
        let note = citydb_tlog::Note::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
        Checkpoint::parse_text(&note.text).map_err(|e| anyhow::anyhow!("{e}"))?
    } else {
        match Checkpoint::open(&text, &verifier_keys(vkeys)?) {
            Ok((c, _, _)) => c,
            Err(e) => {
                eprintln!("BROKEN: {}: {e}", path.display());
                return Ok(ExitCode::from(BROKEN));
            }
        }
    };
    let log = published(data, store, access_log, None).await?;
    let size = log.catch_up().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    if size < old.size {
        eprintln!(
            "BROKEN: the log has {size} entries, fewer than the {} the checkpoint signed (history was cut off)",
            old.size
        );
        return Ok(ExitCode::from(BROKEN));
    }
    let tlog = log.tlog();
    let now = tlog.root(size).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let proof = tlog
        .answer(citydb_tlog::Query::Consistency {
            old: old.size,
            new: size,
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The proof is checked as an outside verifier would, from the old root alone.
    match citydb_tlog::proof::verify_consistency(old.size, size, &old.root, &now, &proof) {
        Ok(()) => {
            say!(
                "OK: the log of {size} entries extends the checkpoint of {} entries ({})",
                old.size,
                old.origin
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(_) => {
            eprintln!(
                "BROKEN: the log's first {} entries are not the history the checkpoint signed (history was rewritten)",
                old.size
            );
            Ok(ExitCode::from(BROKEN))
        }
    }
}
