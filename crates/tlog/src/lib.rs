//! citydb's verifiable log in the open standards: an RFC 6962 Merkle tree (SHA-256) whose
//! leaf *i* is the 32-byte blake3 hash of the event at log position *i*, stored and served as
//! C2SP tlog tiles, with C2SP signed checkpoints, inclusion and consistency proofs, tlog-proof
//! receipts and tlog-witness cosignatures.
//!
//! - [`hash`], [`tree`], [`proof`]: the tree's hashes, proofs computed from tiles, proofs
//!   checked (RFC 6962 / RFC 9162).
//! - [`tile`], [`grow`]: tiles as tlog-tiles names them, and how the stored tree grows.
//! - [`note`], [`checkpoint`]: signed notes, keys, checkpoints and receipts.
//! - [`witness`]: the witness's side of `add-checkpoint` and the log's request to it.
//! - [`TileStore`]: where a tree is kept (each store implements it beside its log; [`memory`]
//!   holds one in memory); [`Tlog`] keeps a tree caught up with its [`Leaves`] and signs
//!   checkpoints that are always consistent with the last one signed.
//!
//! Invariant: the tree is derived from the log. Its leaves are the log's event hashes in
//! position order, it only ever grows, and before it grows its last leaf is compared with the
//! log's, so a log that was rewritten or restored under it is detected, never signed over.

pub mod checkpoint;
pub mod contract;
pub mod grow;
pub mod hash;
pub mod memory;
pub mod note;
pub mod proof;
mod store;
pub mod tile;
pub mod tree;
pub mod witness;

pub use checkpoint::{Checkpoint, Receipt};
pub use hash::TreeHash;
pub use note::{KeyKind, Note, SignerKey, VerifierKey};
pub use store::{Leaves, LogLeaves, TileStore, Tlog, entry_bundle};
pub use tile::{Level, TileKey, TileRequest};
pub use tree::{Query, TileSet};

/// Everything that can go wrong in the tree, its proofs and its notes.
#[derive(Debug, thiserror::Error)]
pub enum TlogError {
    #[error("tile {0:?} is not stored")]
    MissingTile(TileKey),
    #[error("index {index} is outside a tree of {size} leaves")]
    OutOfRange { index: u64, size: u64 },
    #[error("the proof does not verify: {0}")]
    ProofFailed(&'static str),
    #[error("bad tile path {0:?}")]
    BadTilePath(String),
    #[error("{0}")]
    BadKey(String),
    #[error("bad note: {0}")]
    BadNote(String),
    #[error("the signature of {0} does not verify")]
    BadSignature(String),
    #[error("no trusted log key signed the note")]
    NotSigned,
    #[error("bad checkpoint: {0}")]
    BadCheckpoint(String),
    #[error("bad receipt: {0}")]
    BadReceipt(String),
    /// The tree's leaf at `position` is not the log's event hash there: the log was rewritten
    /// or restored under its tree. Nothing is signed over such a log.
    #[error(
        "the tree's leaf at position {position} is not the log's event hash there (the log was rewritten or restored under its tree)"
    )]
    Diverged { position: u64 },
    /// Signing would contradict the last checkpoint signed (a smaller tree, or another root at
    /// its size): refused, because a log must never sign two inconsistent checkpoints.
    #[error("refusing to sign: {0}")]
    Inconsistent(String),
    /// Another writer grew the stored tree first; reading again and retrying resolves it.
    #[error("the stored tree is no longer at size {expected}")]
    Conflict { expected: u64 },
    #[error("the tree's storage failed: {0}")]
    Storage(String),
}
