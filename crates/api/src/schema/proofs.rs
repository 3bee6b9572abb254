//! Proofs over GraphQL: the signed checkpoint, inclusion proofs (of any position for auditors,
//! of a record's own events with its history) and consistency proofs, in the encodings of
//! C2SP (base64 hashes; the signed note verbatim; a tlog-proof@v1 receipt) so that an auditor
//! checks them with the tools they already trust (docs/audit-format.md).

use async_graphql::{Enum, SimpleObject};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use citydb_tlog::{Checkpoint, Note, Query as TreeQuery, Receipt};

use crate::error::ApiError;
use crate::published::{Published, PublishedLog, tree_error};

/// Which log's tree.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum PublishedLogName {
    /// The event log of the registers (leaves: event hashes).
    #[default]
    Events,
    /// The access log (leaves: access-log entry hashes).
    AccessLog,
}

impl PublishedLogName {
    pub fn of(self, published: &Published) -> &PublishedLog {
        match self {
            PublishedLogName::Events => &published.events,
            PublishedLogName::AccessLog => &published.access,
        }
    }
}

/// A checkpoint the log signed (C2SP tlog-checkpoint), with any witness cosignatures.
#[derive(SimpleObject, Clone)]
pub struct SignedCheckpoint {
    pub origin: String,
    pub tree_size: i64,
    /// The tree's root, base64 (as in the note).
    pub root_hash: String,
    /// The signed note, verbatim: check it with the log's verifier key.
    pub note: String,
    /// Names on the note's signature lines other than the log's (witness cosignatures, not
    /// verified here: verify them with the witnesses' keys).
    pub cosigners: Vec<String>,
}

impl SignedCheckpoint {
    pub fn parse(note: &str) -> Result<SignedCheckpoint, ApiError> {
        let parsed = Note::parse(note).map_err(tree_error)?;
        let checkpoint = Checkpoint::parse_text(&parsed.text).map_err(tree_error)?;
        Ok(SignedCheckpoint {
            cosigners: parsed
                .signatures
                .iter()
                .filter(|s| s.name != checkpoint.origin)
                .map(|s| s.name.clone())
                .collect(),
            origin: checkpoint.origin,
            tree_size: checkpoint.size as i64,
            root_hash: B64.encode(checkpoint.root),
            note: note.to_owned(),
        })
    }
}

/// RFC 6962 inclusion proof of one entry.
#[derive(SimpleObject)]
pub struct InclusionProof {
    pub position: i64,
    pub tree_size: i64,
    /// The entry (leaf data): the event's blake3 hash, hex, as `LogEvent.hash`.
    pub entry: String,
    /// From the leaf's sibling up to the root's child, base64.
    pub hashes: Vec<String>,
    pub root_hash: String,
    /// The signed checkpoint of `treeSize`, when there is one.
    pub checkpoint: Option<SignedCheckpoint>,
    /// The same as a C2SP tlog-proof@v1 receipt (what `citydb prove` prints), when signed.
    pub receipt: Option<String>,
}

/// RFC 6962 consistency proof between two sizes of the tree.
#[derive(SimpleObject)]
pub struct ConsistencyProof {
    pub from_size: i64,
    pub to_size: i64,
    pub from_root: String,
    pub to_root: String,
    pub hashes: Vec<String>,
}

fn size_arg(v: i64, field: &str) -> Result<u64, ApiError> {
    u64::try_from(v).map_err(|_| ApiError::invalid_field("must not be negative", field))
}

fn b64(hashes: &[citydb_tlog::TreeHash]) -> Vec<String> {
    hashes.iter().map(|h| B64.encode(h)).collect()
}

/// The latest checkpoint (signing one now if `fresh` and the log grew).
pub async fn checkpoint(
    log: &PublishedLog,
    fresh: bool,
) -> Result<Option<SignedCheckpoint>, ApiError> {
    let note = if fresh && log.signs() {
        log.refresh().await?
    } else {
        log.latest_note().await?
    };
    note.as_deref().map(SignedCheckpoint::parse).transpose()
}

/// The tree size a proof of `position` is given against when none is asked for: the latest
/// checkpoint's if it covers the position; else a checkpoint signed now (a node with a key);
/// else the tree as it is, unsigned.
async fn covering_size(log: &PublishedLog, position: u64) -> Result<u64, ApiError> {
    if let Some(note) = log.latest_note().await? {
        let c = SignedCheckpoint::parse(&note)?;
        if c.tree_size as u64 > position {
            return Ok(c.tree_size as u64);
        }
    }
    if log.signs()
        && let Some(note) = log.refresh().await?
    {
        return Ok(SignedCheckpoint::parse(&note)?.tree_size as u64);
    }
    log.catch_up().await
}

pub async fn inclusion(
    log: &PublishedLog,
    position: i64,
    tree_size: Option<i64>,
) -> Result<InclusionProof, ApiError> {
    let position = size_arg(position, "position")?;
    let size = match tree_size {
        Some(s) => size_arg(s, "treeSize")?,
        None => covering_size(log, position).await?,
    };
    if position >= size {
        return Err(ApiError::invalid_field(
            format!("position {position} is not in a tree of {size} entries"),
            "position",
        ));
    }
    if log.tlog().size().await.map_err(tree_error)? < size && log.catch_up().await? < size {
        return Err(ApiError::invalid_field(
            format!("the log has fewer than {size} entries"),
            "treeSize",
        ));
    }
    let tlog = log.tlog();
    let hashes = tlog
        .answer(TreeQuery::Inclusion {
            index: position,
            size,
        })
        .await
        .map_err(tree_error)?;
    let root = tlog.root(size).await.map_err(tree_error)?;
    let entry = tlog.entry(position).await.map_err(tree_error)?;
    let checkpoint = match log.latest_note().await? {
        Some(note) => Some(SignedCheckpoint::parse(&note)?).filter(|c| c.tree_size as u64 == size),
        None => None,
    };
    let receipt = checkpoint.as_ref().map(|c| {
        Receipt {
            entry,
            index: position,
            proof: hashes.clone(),
            checkpoint: c.note.clone(),
        }
        .to_string()
    });
    Ok(InclusionProof {
        position: position as i64,
        tree_size: size as i64,
        entry: entry.iter().map(|b| format!("{b:02x}")).collect(),
        hashes: b64(&hashes),
        root_hash: B64.encode(root),
        checkpoint,
        receipt,
    })
}

pub async fn consistency(
    log: &PublishedLog,
    from: i64,
    to: Option<i64>,
) -> Result<ConsistencyProof, ApiError> {
    let from = size_arg(from, "from")?;
    let to = match to {
        Some(t) => size_arg(t, "to")?,
        None => match log.latest_note().await? {
            Some(note) => SignedCheckpoint::parse(&note)?.tree_size as u64,
            None => log.catch_up().await?,
        },
    };
    if from > to {
        return Err(ApiError::invalid_field(
            format!("from ({from}) is above to ({to})"),
            "from",
        ));
    }
    if log.tlog().size().await.map_err(tree_error)? < to && log.catch_up().await? < to {
        return Err(ApiError::invalid_field(
            format!("the log has fewer than {to} entries"),
            "to",
        ));
    }
    let tlog = log.tlog();
    let hashes = tlog
        .answer(TreeQuery::Consistency { old: from, new: to })
        .await
        .map_err(tree_error)?;
    Ok(ConsistencyProof {
        from_size: from as i64,
        to_size: to as i64,
        from_root: B64.encode(tlog.root(from).await.map_err(tree_error)?),
        to_root: B64.encode(tlog.root(to).await.map_err(tree_error)?),
        hashes: b64(&hashes),
    })
}
