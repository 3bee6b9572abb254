//! `citydb keygen`: a new Ed25519 signer key in the C2SP signed-note text form — a log's
//! checkpoint key (signature type 0x01) or a witness's cosigning key (tlog-cosignature type
//! 0x04) — written to a new file readable by its owner only; its verifier key (vkey) on
//! standard output, one line, for whoever must check its signatures.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::out::say;
use citydb_tlog::{KeyKind, SignerKey};

/// Exit status when the key file already exists: a key is never overwritten, because the
/// signatures already made with it (checkpoints, cosignatures) could no longer be checked
/// by anyone who only has the file.
pub const EXISTS: u8 = 2;

pub fn run(origin: &str, cosigner: bool, out: &Path) -> anyhow::Result<ExitCode> {
    let kind = if cosigner {
        KeyKind::Cosigner
    } else {
        KeyKind::Log
    };
    let key = SignerKey::generate(origin, kind).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !write_new_key(
        out,
        &key.to_file_text(),
        "choose another --out, or remove the old key knowingly",
    )? {
        return Ok(ExitCode::from(EXISTS));
    }
    say!("{}", key.verifier());
    if kind == KeyKind::Log {
        // The node signs its access log's checkpoints with the same key under another name:
        // witnesses and verifiers of the access log need that verifier key too. Standard
        // output stays the one line scripts read.
        let access = key
            .renamed(&citydb_api::published::access_origin(origin))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        eprintln!(
            "the access log's verifier key (same key, origin {}):",
            access.name()
        );
        eprintln!("{}", access.verifier());
    }
    Ok(ExitCode::SUCCESS)
}

/// `citydb keygen --citizen-token --out FILE`: a new citizen-token key (32 random bytes), in a
/// new file readable by its owner only. Nothing is printed but the path: the key is the secret.
pub fn citizen_token(out: &Path) -> anyhow::Result<ExitCode> {
    let key = citydb_api::CitizenTokenKey::generate()?;
    if !write_new_key(
        out,
        &key.to_file_text(),
        "every citizen token issued under it would stop working",
    )? {
        return Ok(ExitCode::from(EXISTS));
    }
    say!("citizen-token key written to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Writes a new key file (0600, synced); `false`, with the reason on standard error, when the
/// file exists: a key is never overwritten (`why` says what overwriting would break).
fn write_new_key(out: &Path, text: &str, why: &str) -> anyhow::Result<bool> {
    let mut file = match create_secret(out) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "error: {} already exists; a key file is never overwritten ({why})",
                out.display()
            );
            return Ok(false);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", out.display())),
    };
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(true)
}

/// Creates `path`, failing if it exists (no race between a check and the creation), with
/// mode 0600 from the start on Unix: the secret is never readable by others, not even briefly.
fn create_secret(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}
