//! The Merkle tree test vectors of docs/audit-format.md ("Merkle tree test vectors"), computed
//! independently in Python (`tools/test_verify_tlog.py`), checked against this crate.
//!
//! The vectors are read from the document itself, so the page an auditor reads and the code
//! cannot drift apart: a changed value on either side fails here.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use citydb_tlog::contract::TestLeaves;
use citydb_tlog::hash::leaf_hash;
use citydb_tlog::memory::MemoryTiles;
use citydb_tlog::note::NoteSignature;
use citydb_tlog::proof::{verify_consistency, verify_inclusion};
use citydb_tlog::{Checkpoint, KeyKind, Note, Query, Receipt, SignerKey, Tlog, VerifierKey};

const SECTION: &str = "### Merkle tree test vectors";

/// The section's text, up to the next heading of level 2 or 3.
fn section() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/audit-format.md");
    let doc = std::fs::read_to_string(path).expect("docs/audit-format.md");
    let start = doc.find(SECTION).expect("the test-vector section");
    let rest = &doc[start + SECTION.len()..];
    let end = rest
        .find("\n## ")
        .into_iter()
        .chain(rest.find("\n### "))
        .min()
        .unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// The ```text blocks of the section, each with its final newline.
fn blocks(section: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        match (&mut current, line) {
            (None, "```text") => current = Some(String::new()),
            (Some(_), "```") => out.extend(current.take()),
            (Some(block), l) => {
                block.push_str(l);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed code block");
    out
}

/// `label   value` lines: the label is everything before the last run of spaces.
fn labelled(block: &str) -> Vec<(String, String)> {
    block
        .lines()
        .map(|l| {
            let (label, value) = l.trim_end().rsplit_once(' ').expect("label and value");
            (label.trim().to_owned(), value.to_owned())
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(s: &str) -> [u8; 32] {
    assert_eq!(s.len(), 64, "{s}");
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}

/// `name(a)` or `name(a, b)`.
fn call(label: &str) -> (&str, Vec<u64>) {
    let (name, args) = label.split_once('(').expect("name(args)");
    let args = args.strip_suffix(')').expect("closing parenthesis");
    let args = args
        .split(',')
        .map(|a| a.trim().parse().expect("a decimal argument"))
        .collect();
    (name, args)
}

/// The tree of the vectors' entries, kept by the crate as a node keeps it.
async fn tree(size: u64) -> Tlog {
    let tlog = Tlog::new(Arc::new(MemoryTiles::new()), "citydb.test/log");
    assert_eq!(tlog.catch_up(&TestLeaves::first(size)).await.unwrap(), size);
    tlog
}

#[tokio::test]
async fn the_tree_vectors_of_the_audit_format_page_are_this_crates_answers() {
    let blocks = blocks(&section());
    let vectors = labelled(&blocks[0]);
    let tlog = tree(8).await;
    let entries = TestLeaves::first(8).0;
    // Proof lines come one hash per line: gather them by label, in order.
    let mut proofs: Vec<(String, Vec<[u8; 32]>)> = Vec::new();
    let mut checked = std::collections::BTreeMap::<&str, usize>::new();
    for (label, value) in &vectors {
        let (name, args) = call(label);
        let value = unhex32(value);
        match (name, args.as_slice()) {
            ("entry", [i]) => assert_eq!(entries[*i as usize], value, "{label}"),
            ("leaf_hash", [i]) => assert_eq!(leaf_hash(&entries[*i as usize]), value, "{label}"),
            ("root", [n]) => assert_eq!(tlog.root(*n).await.unwrap(), value, "{label}"),
            ("inclusion" | "consistency", [_, _]) => {
                match proofs.last_mut() {
                    Some((l, hashes)) if l == label => hashes.push(value),
                    _ => proofs.push((label.clone(), vec![value])),
                }
                continue;
            }
            _ => panic!("an unknown vector {label:?}"),
        }
        *checked.entry(name).or_default() += 1;
    }
    for (label, printed) in &proofs {
        let (name, args) = call(label);
        let (a, b) = (args[0], args[1]);
        let root = tlog.root(b).await.unwrap();
        let query = if name == "inclusion" {
            Query::Inclusion { index: a, size: b }
        } else {
            Query::Consistency { old: a, new: b }
        };
        let ours = tlog.answer(query).await.unwrap();
        assert_eq!(
            ours.iter().map(|h| hex(h)).collect::<Vec<_>>(),
            printed.iter().map(|h| hex(h)).collect::<Vec<_>>(),
            "{label}"
        );
        if name == "inclusion" {
            verify_inclusion(&leaf_hash(&entries[a as usize]), a, b, printed, &root).unwrap();
        } else {
            let old_root = tlog.root(a).await.unwrap();
            verify_consistency(a, b, &old_root, &root, printed).unwrap();
        }
        *checked.entry(name).or_default() += 1;
    }
    // The page prints every kind of vector (a section emptied by mistake must fail).
    for kind in ["entry", "leaf_hash", "root", "inclusion", "consistency"] {
        assert!(
            checked.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} vector"
        );
    }
    assert!(checked["root"] >= 5, "{checked:?}");
}

/// The test keys, checkpoint, cosigned checkpoint and receipt of the page, recomputed: Ed25519
/// signatures are deterministic, so every byte must match.
#[tokio::test]
async fn the_keys_notes_and_receipt_of_the_audit_format_page_are_this_crates_bytes() {
    let section = section();
    let blocks = blocks(&section);
    assert_eq!(
        blocks.len(),
        5,
        "vectors, keys, checkpoint, cosigned, receipt"
    );
    let keys: std::collections::HashMap<String, String> =
        labelled(&blocks[1]).into_iter().collect();
    let signer = |who: &str, name: &str, kind| {
        let seed = unhex32(&keys[&format!("{who} seed")]);
        let key = SignerKey::from_seed(name, kind, seed).unwrap();
        let vkey = key.verifier().to_string();
        let parts: Vec<&str> = vkey.splitn(3, '+').collect();
        assert_eq!(vkey, keys[&format!("{who} vkey")], "{who} vkey");
        assert_eq!(parts[1], keys[&format!("{who} key ID")], "{who} key ID");
        let public = B64.decode(parts[2]).unwrap();
        assert_eq!(
            hex(&public[1..]),
            keys[&format!("{who} public key")],
            "{who} public key"
        );
        // The printed vkey parses to the same key.
        assert_eq!(
            VerifierKey::parse(&keys[&format!("{who} vkey")]).unwrap(),
            key.verifier()
        );
        key
    };
    let log = signer("log", "citydb.test/log", KeyKind::Log);
    let witness = signer("witness", "citydb.test/witness", KeyKind::Cosigner);

    let tlog = tree(7).await;
    let checkpoint = Checkpoint {
        origin: "citydb.test/log".into(),
        size: 7,
        root: tlog.root(7).await.unwrap(),
    };
    let mut note = Note {
        text: checkpoint.text(),
        signatures: vec![log.sign(&checkpoint.text())],
    };
    assert_eq!(note.to_string(), blocks[2], "the signed checkpoint");
    let (opened, _, _) = Checkpoint::open(&blocks[2], &[log.verifier()]).unwrap();
    assert_eq!(opened, checkpoint);

    // The cosignature's time is the one the page states.
    let time: u64 = section
        .split("at time ")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|t| t.parse().ok())
        .expect("the cosignature's time in the text");
    note.add_signatures([witness.cosign(&checkpoint.text(), time)]);
    assert_eq!(note.to_string(), blocks[3], "the cosigned checkpoint");
    let (_, _, verified) =
        Checkpoint::open(&blocks[3], &[log.verifier(), witness.verifier()]).unwrap();
    assert_eq!(
        verified.cosigners,
        vec![("citydb.test/witness".to_owned(), time)]
    );
    let cosignature = NoteSignature::parse_line(blocks[3].lines().last().unwrap()).unwrap();
    assert_eq!(
        hex(&cosignature.bytes[..12]),
        format!("{}{time:016x}", keys["witness key ID"])
    );

    let receipt = Receipt {
        entry: TestLeaves::first(3).0[2],
        index: 2,
        proof: tlog
            .answer(Query::Inclusion { index: 2, size: 7 })
            .await
            .unwrap(),
        checkpoint: blocks[2].clone(),
    };
    assert_eq!(receipt.to_string(), blocks[4], "the receipt");
    assert_eq!(Receipt::parse(&blocks[4]).unwrap(), receipt);
    let (proven, _) = receipt.verify(&[log.verifier()]).unwrap();
    assert_eq!(proven, checkpoint);
}
