//! C2SP tlog-checkpoint (the note text of a tree head) and tlog-proof@v1 (a receipt: an
//! inclusion proof with the signed checkpoint it leads to, checkable offline).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::TlogError;
use crate::hash::{TreeHash, leaf_hash};
use crate::note::{Note, Verified, VerifierKey};
use crate::proof::verify_inclusion;

/// A tree head: the origin of the log, its size and its root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: TreeHash,
}

impl Checkpoint {
    /// The note text: origin, size and base64 root, one per line (citydb adds no extension
    /// lines: monitors cannot audit them).
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a checkpoint's note text, strictly (extension lines are allowed and ignored).
    pub fn parse_text(text: &str) -> Result<Checkpoint, TlogError> {
        let bad = |why: &str| TlogError::BadCheckpoint(why.to_owned());
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("the text must end with a newline"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() < 3 || lines.iter().any(|l| l.is_empty()) {
            return Err(bad("expected origin, size and root on non-empty lines"));
        }
        let size_line = lines[1];
        if !size_line.bytes().all(|b| b.is_ascii_digit())
            || (size_line.len() > 1 && size_line.starts_with('0'))
        {
            return Err(bad("the size must be a decimal without leading zeroes"));
        }
        let size: u64 = size_line
            .parse()
            .map_err(|_| bad("the size is too large"))?;
        let root =
            decode_hash(lines[2]).ok_or_else(|| bad("the root must be 32 bytes in base64"))?;
        Ok(Checkpoint {
            origin: lines[0].to_owned(),
            size,
            root,
        })
    }

    /// Parses a signed checkpoint and checks it: a trusted log key of its origin signed it.
    pub fn open(
        note: &str,
        trusted: &[VerifierKey],
    ) -> Result<(Checkpoint, Note, Verified), TlogError> {
        let note = Note::parse(note)?;
        let checkpoint = Checkpoint::parse_text(&note.text)?;
        let verified = note.verify(trusted)?;
        if !verified.log_keys.iter().any(|k| k == &checkpoint.origin) {
            return Err(TlogError::BadCheckpoint(format!(
                "signed by {:?}, not by the log of origin {:?}",
                verified.log_keys, checkpoint.origin
            )));
        }
        Ok((checkpoint, note, verified))
    }
}

pub(crate) fn decode_hash(b64: &str) -> Option<TreeHash> {
    let bytes = B64.decode(b64).ok()?;
    bytes.try_into().ok()
}

pub(crate) fn encode_hash(hash: &TreeHash) -> String {
    B64.encode(hash)
}

/// A C2SP tlog-proof@v1 receipt. citydb's `extra` is the entry itself: the 32-byte blake3
/// event hash at `index` (docs/audit-format.md), so the receipt names the event it proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub entry: [u8; 32],
    pub index: u64,
    pub proof: Vec<TreeHash>,
    /// The signed checkpoint, verbatim (with any cosignatures).
    pub checkpoint: String,
}

const RECEIPT_HEADER: &str = "c2sp.org/tlog-proof@v1";

impl std::fmt::Display for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{RECEIPT_HEADER}")?;
        writeln!(f, "extra {}", B64.encode(self.entry))?;
        writeln!(f, "index {}", self.index)?;
        for h in &self.proof {
            writeln!(f, "{}", encode_hash(h))?;
        }
        writeln!(f)?;
        write!(f, "{}", self.checkpoint)
    }
}

impl Receipt {
    pub fn parse(text: &str) -> Result<Receipt, TlogError> {
        let bad = |why: &str| TlogError::BadReceipt(why.to_owned());
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(RECEIPT_HEADER) {
            return Err(bad("the first line must be c2sp.org/tlog-proof@v1"));
        }
        let mut line = lines.next().ok_or_else(|| bad("no index line"))?;
        let mut entry = None;
        if let Some(extra) = line.strip_prefix("extra ") {
            let bytes = B64.decode(extra).map_err(|_| bad("extra is not base64"))?;
            entry = Some(
                <[u8; 32]>::try_from(bytes)
                    .map_err(|_| bad("citydb's extra is the 32-byte event hash"))?,
            );
            line = lines.next().ok_or_else(|| bad("no index line"))?;
        }
        let entry =
            entry.ok_or_else(|| bad("no extra line: citydb's receipts carry the event hash"))?;
        let index = line
            .strip_prefix("index ")
            .filter(|i| {
                !i.is_empty()
                    && i.bytes().all(|b| b.is_ascii_digit())
                    && (i.len() == 1 || !i.starts_with('0'))
            })
            .and_then(|i| i.parse::<u64>().ok())
            .ok_or_else(|| bad("bad index line"))?;
        let mut proof = Vec::new();
        for l in lines {
            proof.push(decode_hash(l).ok_or_else(|| bad("a proof line is not a base64 hash"))?);
            if proof.len() > 63 {
                return Err(bad("the proof has more than 63 hashes"));
            }
        }
        Ok(Receipt {
            entry,
            index,
            proof,
            checkpoint: checkpoint.to_owned(),
        })
    }

    /// Checks the receipt offline: the checkpoint is signed by a trusted key of its origin, and
    /// the entry is at `index` in the tree it signs.
    pub fn verify(&self, trusted: &[VerifierKey]) -> Result<(Checkpoint, Verified), TlogError> {
        let (checkpoint, _, verified) = Checkpoint::open(&self.checkpoint, trusted)?;
        verify_inclusion(
            &leaf_hash(&self.entry),
            self.index,
            checkpoint.size,
            &self.proof,
            &checkpoint.root,
        )?;
        Ok((checkpoint, verified))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_text_is_strict() {
        let c = Checkpoint {
            origin: "citydb.test/log".into(),
            size: 7,
            root: [3; 32],
        };
        assert_eq!(Checkpoint::parse_text(&c.text()).unwrap(), c);
        for bad in [
            "o\n07\nAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\n",
            "o\n7\nAwMD\n",
            "o\n7\n",
            "\n7\nAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\n",
            "o\n-1\nAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\n",
            "o\n7\nAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=",
        ] {
            assert!(Checkpoint::parse_text(bad).is_err(), "{bad:?}");
        }
    }
}
