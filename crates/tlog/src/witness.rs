//! C2SP tlog-witness: the `add-checkpoint` request a log sends, and the witness's decision on
//! it — pure, so the HTTP server (`citydb witness`) only parses, persists and answers.

use crate::TlogError;
use crate::checkpoint::{Checkpoint, decode_hash, encode_hash};
use crate::hash::{TreeHash, empty_root};
use crate::note::{NoteSignature, SignerKey, VerifierKey};
use crate::proof::verify_consistency;

/// The body of `POST <prefix>/add-checkpoint`: the size the log believes the witness holds, a
/// consistency proof from it, and the signed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old_size: u64,
    pub proof: Vec<TreeHash>,
    pub checkpoint: String,
}

/// The most consistency proof lines a request may hold (the spec's limit).
pub const MAX_PROOF_LINES: usize = 63;

impl AddCheckpoint {
    pub fn to_body(&self) -> String {
        let mut body = format!("old {}\n", self.old_size);
        for h in &self.proof {
            body.push_str(&encode_hash(h));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(&self.checkpoint);
        body
    }

    pub fn parse(body: &str) -> Result<AddCheckpoint, TlogError> {
        let bad = |why: &str| TlogError::BadNote(format!("add-checkpoint: {why}"));
        let (head, checkpoint) = body
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .filter(|s| {
                !s.is_empty()
                    && s.bytes().all(|b| b.is_ascii_digit())
                    && (s.len() == 1 || !s.starts_with('0'))
            })
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("the first line must be `old <size>`"))?;
        let mut proof = Vec::new();
        for line in lines {
            proof.push(decode_hash(line).ok_or_else(|| bad("a proof line is not a base64 hash"))?);
            if proof.len() > MAX_PROOF_LINES {
                return Err(bad("more than 63 proof lines"));
            }
        }
        Ok(AddCheckpoint {
            old_size: old,
            proof,
            checkpoint: checkpoint.to_owned(),
        })
    }
}

/// Why a witness refuses a checkpoint, with the HTTP status tlog-witness assigns.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    #[error("not signed by the log's key: {0}")]
    Forbidden(String),
    /// The log's idea of the witness's state is stale: the witness holds `latest`.
    #[error("the witness holds a checkpoint of size {latest}")]
    Conflict { latest: u64 },
    /// The checkpoint is not consistent with what the witness cosigned before: the log forked.
    #[error("not consistent with the checkpoint the witness holds: {0}")]
    Inconsistent(String),
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::Forbidden(_) => 403,
            Refusal::UnknownOrigin(_) => 404,
            Refusal::Conflict { .. } => 409,
            Refusal::Inconsistent(_) => 422,
        }
    }
}

/// What a witness holds for one log: the latest checkpoint it cosigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witnessed {
    pub size: u64,
    pub root: TreeHash,
}

/// Decides an `add-checkpoint` request: `Ok` carries the new state to persist (before
/// answering) and the cosignature to return.
pub fn add_checkpoint(
    request: &str,
    logs: &[VerifierKey],
    held: Option<&Witnessed>,
    witness: &SignerKey,
    now: u64,
) -> Result<(Checkpoint, Witnessed, NoteSignature), Refusal> {
    let req = AddCheckpoint::parse(request).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    let note = crate::note::Note::parse(&req.checkpoint)
        .map_err(|e| Refusal::BadRequest(e.to_string()))?;
    let checkpoint =
        Checkpoint::parse_text(&note.text).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    let keys: Vec<VerifierKey> = logs
        .iter()
        .filter(|k| k.name() == checkpoint.origin)
        .cloned()
        .collect();
    if keys.is_empty() {
        return Err(Refusal::UnknownOrigin(checkpoint.origin));
    }
    note.verify(&keys)
        .map_err(|e| Refusal::Forbidden(e.to_string()))?;
    if req.old_size > checkpoint.size {
        return Err(Refusal::BadRequest(format!(
            "old size {} is above the checkpoint's size {}",
            req.old_size, checkpoint.size
        )));
    }
    let held_size = held.map_or(0, |h| h.size);
    if req.old_size != held_size {
        return Err(Refusal::Conflict { latest: held_size });
    }
    if checkpoint.size == 0 && checkpoint.root != empty_root() {
        return Err(Refusal::Inconsistent(
            "an empty tree with another root".into(),
        ));
    }
    match held {
        None => {
            if !req.proof.is_empty() {
                return Err(Refusal::Inconsistent(
                    "a proof from size 0 must be empty".into(),
                ));
            }
        }
        Some(h) => verify_consistency(
            h.size,
            checkpoint.size,
            &h.root,
            &checkpoint.root,
            &req.proof,
        )
        .map_err(|e| Refusal::Inconsistent(e.to_string()))?,
    }
    let cosignature = witness.cosign(&note.text, now);
    let state = Witnessed {
        size: checkpoint.size,
        root: checkpoint.root,
    };
    Ok((checkpoint, state, cosignature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{KeyKind, Note};
    use crate::tree::Query;
    use crate::tree::tests::grown;

    fn signed(log: &SignerKey, size: u64, root: TreeHash) -> String {
        let text = Checkpoint {
            origin: log.name().into(),
            size,
            root,
        }
        .text();
        Note {
            signatures: vec![log.sign(&text)],
            text,
        }
        .to_string()
    }

    #[test]
    fn a_witness_follows_a_growing_log_and_refuses_a_fork() {
        let log = SignerKey::from_seed("citydb.test/log", KeyKind::Log, [1; 32]).unwrap();
        let w = SignerKey::from_seed("w.test", KeyKind::Cosigner, [2; 32]).unwrap();
        let tiles = grown(100);
        let root = |size| Query::Root { size }.answer(&tiles).unwrap()[0];
        let logs = [log.verifier()];
        let req = |old, proof: Vec<TreeHash>, size, root| {
            AddCheckpoint {
                old_size: old,
                proof,
                checkpoint: signed(&log, size, root),
            }
            .to_body()
        };

        let (_, held, sig) =
            add_checkpoint(&req(0, vec![], 10, root(10)), &logs, None, &w, 7).unwrap();
        let mut note = Note::parse(&signed(&log, 10, root(10))).unwrap();
        note.add_signatures([sig]);
        assert_eq!(
            note.verify(&[log.verifier(), w.verifier()])
                .unwrap()
                .cosigners
                .len(),
            1
        );

        let proof = Query::Consistency { old: 10, new: 60 }
            .answer(&tiles)
            .unwrap();
        let (_, held2, _) = add_checkpoint(
            &req(10, proof.clone(), 60, root(60)),
            &logs,
            Some(&held),
            &w,
            8,
        )
        .unwrap();
        assert_eq!(held2.size, 60);
        // A stale old size gets the size held (409).
        let stale =
            add_checkpoint(&req(10, proof, 60, root(60)), &logs, Some(&held2), &w, 9).unwrap_err();
        assert_eq!(stale, Refusal::Conflict { latest: 60 });
        // A fork: another history of 80 leaves whose proof cannot lead from the root held.
        let other = grown(80);
        let forked_root = {
            let mut r = Query::Root { size: 80 }.answer(&other).unwrap()[0];
            r[0] ^= 1;
            r
        };
        let proof = Query::Consistency { old: 60, new: 80 }
            .answer(&other)
            .unwrap();
        let fork = add_checkpoint(
            &req(60, proof, 80, forked_root),
            &logs,
            Some(&held2),
            &w,
            10,
        )
        .unwrap_err();
        assert_eq!(fork.status(), 422);
        // Same size, another root.
        let same = add_checkpoint(&req(60, vec![], 60, root(59)), &logs, Some(&held2), &w, 10)
            .unwrap_err();
        assert_eq!(same.status(), 422);
        // Unknown origin, bad signature, malformed.
        let stranger = SignerKey::from_seed("other.test/log", KeyKind::Log, [3; 32]).unwrap();
        let body = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: signed(&stranger, 1, root(1)),
        }
        .to_body();
        assert_eq!(
            add_checkpoint(&body, &logs, None, &w, 1)
                .unwrap_err()
                .status(),
            404
        );
        let impostor = SignerKey::from_seed("citydb.test/log", KeyKind::Log, [4; 32]).unwrap();
        let body = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: signed(&impostor, 1, root(1)),
        }
        .to_body();
        assert_eq!(
            add_checkpoint(&body, &logs, None, &w, 1)
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(
            add_checkpoint("old 1\n", &logs, None, &w, 1)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            add_checkpoint(&req(20, vec![], 10, root(10)), &logs, None, &w, 1)
                .unwrap_err()
                .status(),
            400
        );
    }
}
