//! The test vectors of `docs/audit-format.md`: the implementation must produce them, the byte
//! layout written out by hand here (as an auditor would, from the document alone) must produce
//! them too, and the document must show them.

use citydb_log::Hash;
use citydb_log::chain::{self, ChainLink, EVENT_HASH_CONTEXT, Envelope};
use uuid::Uuid;

struct Vector {
    position: u64,
    stream_id: &'static str,
    stream_version: u64,
    event_id: &'static str,
    event_type: &'static str,
    schema_version: u32,
    recorded_at: i64,
    metadata: &'static str,
    data: &'static str,
    /// Index of the previous event of the same stream in `VECTORS`, if any.
    prev_in_stream: Option<usize>,
}

const VECTORS: &[Vector] = &[
    Vector {
        position: 0,
        stream_id: "citizen-0193e3a4-7c1b-7d2e-8f00-000000000001",
        stream_version: 0,
        event_id: "0193e3a4-7c1b-7d2e-8f00-0000000000e1",
        event_type: "CitizenRegistered",
        schema_version: 1,
        recorded_at: 1_764_201_600_000_000,
        metadata: r#"{"actor":"steward-1","role":"steward"}"#,
        data: r#"{"pin":"031199000123","family":"Nguyễn","given":"Hoà"}"#,
        prev_in_stream: None,
    },
    Vector {
        position: 1,
        stream_id: "business-0193e3a4-7c1b-7d2e-8f00-000000000002",
        stream_version: 0,
        event_id: "0193e3a4-7c1b-7d2e-8f00-0000000000e2",
        event_type: "BusinessRegistered",
        schema_version: 1,
        recorded_at: 1_764_201_600_000_250,
        metadata: r#"{"actor":"steward-1"}"#,
        data: r#"{"code":"0200566628"}"#,
        prev_in_stream: None,
    },
    Vector {
        position: 2,
        stream_id: "citizen-0193e3a4-7c1b-7d2e-8f00-000000000001",
        stream_version: 1,
        event_id: "0193e3a4-7c1b-7d2e-8f00-0000000000e3",
        event_type: "ResidenceChanged",
        schema_version: 2,
        recorded_at: 1_764_201_600_000_250,
        metadata: r#"{}"#,
        data: r#"{"commune":"11311","kind":"permanent"}"#,
        prev_in_stream: Some(0),
    },
];

/// The encoding written out from the document, independently of `chain::event_hash`.
fn by_hand(v: &Vector, prev_stream: &[u8; 32], prev_log: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let data_hash = *blake3::hash(v.data.as_bytes()).as_bytes();
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&v.position.to_be_bytes());
    bytes.extend_from_slice(&(v.stream_id.len() as u32).to_be_bytes());
    bytes.extend_from_slice(v.stream_id.as_bytes());
    bytes.extend_from_slice(&v.stream_version.to_be_bytes());
    bytes.extend_from_slice(Uuid::parse_str(v.event_id).unwrap().as_bytes());
    bytes.extend_from_slice(&(v.event_type.len() as u32).to_be_bytes());
    bytes.extend_from_slice(v.event_type.as_bytes());
    bytes.extend_from_slice(&v.schema_version.to_be_bytes());
    bytes.extend_from_slice(&v.recorded_at.to_be_bytes());
    bytes.extend_from_slice(&(v.metadata.len() as u32).to_be_bytes());
    bytes.extend_from_slice(v.metadata.as_bytes());
    bytes.extend_from_slice(&data_hash);
    bytes.extend_from_slice(prev_stream);
    bytes.extend_from_slice(prev_log);
    let hash = *blake3::Hasher::new_derive_key("citydb 2026-11 event log v1 event hash")
        .update(&bytes)
        .finalize()
        .as_bytes();
    (data_hash, hash)
}

#[test]
fn vectors_match_implementation_hand_encoding_and_document() {
    assert_eq!(EVENT_HASH_CONTEXT, "citydb 2026-11 event log v1 event hash");
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/audit-format.md"
    ))
    .expect("docs/audit-format.md");
    let mut hashes: Vec<Hash> = Vec::new();
    let mut printed = String::new();
    for v in VECTORS {
        let prev_log = hashes.last().copied().unwrap_or(Hash::ZERO);
        let prev_stream = v.prev_in_stream.map(|i| hashes[i]).unwrap_or(Hash::ZERO);
        let env = Envelope {
            position: v.position,
            stream_id: v.stream_id,
            stream_version: v.stream_version,
            event_id: Uuid::parse_str(v.event_id).unwrap(),
            event_type: v.event_type,
            schema_version: v.schema_version,
            recorded_at: v.recorded_at,
            metadata: v.metadata.as_bytes(),
        };
        let link = ChainLink::compute(&env, v.data.as_bytes(), prev_stream, prev_log);
        let (data_hash, hash) = by_hand(v, prev_stream.as_bytes(), prev_log.as_bytes());
        assert_eq!(link.data_hash.0, data_hash, "position {}", v.position);
        assert_eq!(link.hash.0, hash, "position {}", v.position);
        assert_eq!(chain::data_hash(v.data.as_bytes()), link.data_hash);
        printed.push_str(&format!(
            "position {}: data_hash {} hash {}\n",
            v.position, link.data_hash, link.hash
        ));
        hashes.push(link.hash);
    }
    for (i, v) in VECTORS.iter().enumerate() {
        let data_hash = chain::data_hash(v.data.as_bytes()).to_hex();
        for expected in [data_hash, hashes[i].to_hex()] {
            assert!(
                doc.contains(&expected),
                "docs/audit-format.md must show {expected}; computed:\n{printed}"
            );
        }
    }
}
