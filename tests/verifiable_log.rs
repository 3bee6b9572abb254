//! The verifiable log of a running node (issue 14): checkpoints and tiles published without a
//! token and checked here as an outside verifier would (from the signed note and the tiles
//! alone, with `citydb_tlog`'s verifiers), proofs over GraphQL, a record's history with its
//! proofs, the access log's own tree, and who may ask for what.

mod common;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use citydb_tlog::hash::leaf_hash;
use citydb_tlog::proof::{verify_consistency, verify_inclusion};
use citydb_tlog::{Checkpoint, KeyKind, Receipt, SignerKey, TileRequest, TreeHash, VerifierKey};
use common::*;

fn key() -> SignerKey {
    SignerKey::from_seed("citydb.test/log", KeyKind::Log, [7; 32]).unwrap()
}

async fn signing_node() -> Server {
    start_with(|o| {
        o.publish.signer = Some(Arc::new(key()));
        // Long: the tests sign on demand (`fresh: true`), so what is signed is known.
        o.publish.interval = std::time::Duration::from_secs(3600);
    })
    .await
}

async fn register(s: &Server, n: u32) -> String {
    let (id, _) = citizen(s, n, "Trần", "Văn", "Nam", false, 1980).await;
    format!("citizen-{id}")
}

fn hash(b64: &Value) -> TreeHash {
    B64.decode(b64.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hashes(v: &Value) -> Vec<TreeHash> {
    v.as_array().unwrap().iter().map(hash).collect()
}

fn unhex(hex: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

async fn get(s: &Server, path: &str) -> (u16, Vec<u8>, Option<String>) {
    let r = s
        .http
        .get(format!("http://{}{path}", s.addr))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let cache = r
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, r.bytes().await.unwrap().to_vec(), cache)
}

async fn fresh_checkpoint(s: &Server, log: &str) -> Value {
    let data = s
        .ok(
            "auditor-1",
            &format!("{{ checkpoint(fresh: true, log: {log}) {{ origin treeSize rootHash note cosigners }} }}"),
            json!({}),
        )
        .await;
    data["checkpoint"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verifier_with_only_the_vkey_checks_the_checkpoint_and_rebuilds_the_root_from_the_tiles()
{
    let s = signing_node().await;
    for n in 0..300 {
        register(&s, n).await;
    }
    let cp = fresh_checkpoint(&s, "EVENTS").await;
    let size = cp["treeSize"].as_u64().unwrap();
    assert!(size >= 300, "{cp}");

    // Published without a token, not cacheable for long, signed by the log's key.
    let (status, body, cache) = get(&s, "/log/checkpoint").await;
    assert_eq!(status, 200);
    assert!(cache.unwrap().contains("max-age=2"));
    let note = String::from_utf8(body).unwrap();
    assert_eq!(note, cp["note"].as_str().unwrap());
    let vkey = VerifierKey::parse(&key().verifier().to_string()).unwrap();
    let (checkpoint, _, _) = Checkpoint::open(&note, &[vkey]).unwrap();
    assert_eq!(checkpoint.size, size);

    // Every entry bundle and level-0 tile, fetched as tlog-tiles names them: the bundles hold
    // the event hashes, each tile hashes its bundle, and the root recomputes from the leaves.
    let mut leaves = Vec::new();
    for n in 0..size.div_ceil(256) {
        let width = (size - n * 256).min(256);
        let key = |level| citydb_tlog::TileKey { level, index: n };
        let path = |level| {
            TileRequest {
                key: key(level),
                width,
            }
            .path()
        };
        let (st, bundle, cache) = get(
            &s,
            &format!("/log/tile/{}", path(citydb_tlog::Level::Entries)),
        )
        .await;
        assert_eq!(st, 200);
        assert!(cache.unwrap().contains("immutable"));
        let (st, tile, _) = get(
            &s,
            &format!("/log/tile/{}", path(citydb_tlog::Level::Hashes(0))),
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(bundle.len() as u64, width * 34);
        assert_eq!(tile.len() as u64, width * 32);
        for (i, entry) in bundle.chunks(34).enumerate() {
            assert_eq!(&entry[..2], &[0, 32]);
            let leaf = leaf_hash(&entry[2..]);
            assert_eq!(&tile[i * 32..i * 32 + 32], &leaf);
            leaves.push(leaf);
        }
    }
    assert_eq!(reference_root(&leaves), checkpoint.root);
    // The entries are the log's event hashes, in position order.
    let data = s
        .ok(
            "auditor-1",
            "{ inclusionProof(position: 0) { entry } logHead { position hash } }",
            json!({}),
        )
        .await;
    let first_entry = unhex(data["inclusionProof"]["entry"].as_str().unwrap());
    assert_eq!(leaves[0], leaf_hash(&first_entry));
    assert_eq!(data["logHead"]["position"].as_u64().unwrap() + 1, size);

    // Tiles the tree does not hold yet, and paths in any other spelling, are 404.
    for path in [
        "/log/tile/0/999",
        "/log/tile/0/000.p/0",
        "/log/tile/0/0",
        "/log/tile/9/000",
    ] {
        assert_eq!(get(&s, path).await.0, 404, "{path}");
    }
}

/// RFC 6962's definition, straight from the leaves.
fn reference_root(leaves: &[TreeHash]) -> TreeHash {
    match leaves.len() {
        0 => citydb_tlog::hash::empty_root(),
        1 => leaves[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            citydb_tlog::hash::node_hash(
                &reference_root(&leaves[..k]),
                &reference_root(&leaves[k..]),
            )
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_over_graphql_verify_and_a_record_history_carries_its_own() {
    let s = signing_node().await;
    let record = register(&s, 1).await;
    for n in 2..40 {
        register(&s, n).await;
    }
    let first = fresh_checkpoint(&s, "EVENTS").await;
    let (old_size, old_root) = (
        first["treeSize"].as_u64().unwrap(),
        hash(&first["rootHash"]),
    );

    // The record's history: each event with its proof against the latest checkpoint.
    let data = s
        .ok(
            "auditor-1",
            "query($r: String!) { history(record: $r) { position hash inclusionProof { position treeSize entry hashes rootHash receipt checkpoint { treeSize } } } }",
            json!({ "r": record }),
        )
        .await;
    let events = data["history"].as_array().unwrap();
    assert!(!events.is_empty());
    let vkey = key().verifier();
    for e in events {
        let p = &e["inclusionProof"];
        assert_eq!(p["entry"], e["hash"]);
        assert_eq!(p["treeSize"].as_u64().unwrap(), old_size);
        let entry = unhex(p["entry"].as_str().unwrap());
        verify_inclusion(
            &leaf_hash(&entry),
            p["position"].as_u64().unwrap(),
            old_size,
            &hashes(&p["hashes"]),
            &old_root,
        )
        .unwrap();
        // The receipt is the same proof, checkable offline.
        let receipt = Receipt::parse(p["receipt"].as_str().unwrap()).unwrap();
        assert_eq!(receipt.entry, entry);
        receipt.verify(std::slice::from_ref(&vkey)).unwrap();
    }

    // The log grows; an event newer than every checkpoint gets one signed for it.
    let newer = register(&s, 99).await;
    let data = s
        .ok(
            "auditor-1",
            "query($r: String!) { history(record: $r) { position inclusionProof { treeSize checkpoint { treeSize } } } }",
            json!({ "r": newer }),
        )
        .await;
    let p = &data["history"][0]["inclusionProof"];
    let new_size = p["treeSize"].as_u64().unwrap();
    assert!(new_size > old_size);
    assert_eq!(p["checkpoint"]["treeSize"].as_u64().unwrap(), new_size);

    // The old checkpoint is a prefix of the new one.
    let data = s
        .ok(
            "auditor-1",
            "query($f: Int!) { consistencyProof(from: $f) { fromSize toSize fromRoot toRoot hashes } }",
            json!({ "f": old_size }),
        )
        .await;
    let c = &data["consistencyProof"];
    assert_eq!(hash(&c["fromRoot"]), old_root);
    assert_eq!(c["toSize"].as_u64().unwrap(), new_size);
    verify_consistency(
        old_size,
        new_size,
        &old_root,
        &hash(&c["toRoot"]),
        &hashes(&c["hashes"]),
    )
    .unwrap();

    // Any position, any size, for auditors.
    let data = s
        .ok(
            "auditor-1",
            "{ inclusionProof(position: 3, treeSize: 10) { entry hashes rootHash checkpoint { treeSize } } }",
            json!({}),
        )
        .await;
    let p = &data["inclusionProof"];
    assert!(
        p["checkpoint"].is_null(),
        "no checkpoint of size 10 was signed"
    );
    verify_inclusion(
        &leaf_hash(&unhex(p["entry"].as_str().unwrap())),
        3,
        10,
        &hashes(&p["hashes"]),
        &hash(&p["rootHash"]),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_proof_requests_get_typed_errors_and_only_auditors_get_arbitrary_proofs() {
    let s = signing_node().await;
    register(&s, 1).await;
    let q = "{ inclusionProof(position: 0) { treeSize } }";
    assert_eq!(code(&s.gql("", q, json!({})).await), "UNAUTHENTICATED");
    assert_eq!(code(&s.gql("steward-1", q, json!({})).await), "FORBIDDEN");
    assert_eq!(
        code(&s.gql("social-insurance", q, json!({})).await),
        "FORBIDDEN"
    );
    for bad in [
        "{ inclusionProof(position: -1) { treeSize } }",
        "{ inclusionProof(position: 5, treeSize: 3) { treeSize } }",
        "{ inclusionProof(position: 0, treeSize: 1000000) { treeSize } }",
        "{ consistencyProof(from: 7, to: 3) { toSize } }",
        "{ consistencyProof(from: 0, to: 1000000) { toSize } }",
    ] {
        assert_eq!(
            code(&s.gql("auditor-1", bad, json!({})).await),
            "INVALID_INPUT",
            "{bad}"
        );
    }
    // The checkpoint is public anyway: any principal may read it over GraphQL.
    let data = s
        .ok("steward-1", "{ checkpoint { treeSize } }", json!({}))
        .await;
    assert!(data["checkpoint"].is_object() || data["checkpoint"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_has_its_own_tree_so_a_logged_read_can_be_proven() {
    let s = signing_node().await;
    let (id, pin) = citizen(&s, 5, "Lê", "Thị", "Hoa", true, 1990).await;
    let before = fresh_checkpoint(&s, "ACCESS_LOG").await;
    let before_size = before["treeSize"].as_u64().unwrap();
    // A personal read is logged ...
    s.ok(
        "social-insurance",
        "query($p: String!) { citizen(pin: $p) { name { full } } }",
        json!({ "p": pin }),
    )
    .await;
    let data = s
        .ok(
            "auditor-1",
            "query($c: String!) { accessLog(citizen: $c) { hash } }",
            json!({ "c": format!("citizen-{id}") }),
        )
        .await;
    let logged = data["accessLog"][0]["hash"].as_str().unwrap().to_owned();
    // ... and is then a leaf of the access log's tree, under its own origin and key.
    let after = fresh_checkpoint(&s, "ACCESS_LOG").await;
    assert_eq!(after["origin"], "citydb.test/log/access-log");
    let size = after["treeSize"].as_u64().unwrap();
    assert!(size > before_size);
    let data = s
        .ok(
            "auditor-1",
            "query($p: Int!) { inclusionProof(log: ACCESS_LOG, position: $p) { entry receipt } }",
            json!({ "p": size - 1 }),
        )
        .await;
    assert_eq!(data["inclusionProof"]["entry"], logged.as_str());
    let access_key = key()
        .renamed("citydb.test/log/access-log")
        .unwrap()
        .verifier();
    Receipt::parse(data["inclusionProof"]["receipt"].as_str().unwrap())
        .unwrap()
        .verify(&[access_key])
        .unwrap();
    let (status, body, _) = get(&s, "/access-log/checkpoint").await;
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        after["note"].as_str().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_key_keeps_the_tree_and_says_it_signs_nothing() {
    let s = start().await;
    register(&s, 1).await;
    let (status, body, _) = get(&s, "/log/checkpoint").await;
    assert_eq!(status, 404);
    assert!(String::from_utf8(body).unwrap().contains("--signing-key"));
    let data = s
        .ok("auditor-1", "{ checkpoint(fresh: true) { treeSize } inclusionProof(position: 0) { treeSize checkpoint { treeSize } receipt } }", json!({}))
        .await;
    assert!(data["checkpoint"].is_null());
    assert!(data["inclusionProof"]["treeSize"].as_u64().unwrap() >= 1);
    assert!(data["inclusionProof"]["receipt"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_postgres_publish_one_tree_and_consistent_checkpoints() {
    use citydb_postgres::testkit::TestCluster;
    let Some(cluster) = TestCluster::shared_or_skip(
        "two_nodes_on_postgres_publish_one_tree_and_consistent_checkpoints",
    ) else {
        return;
    };
    let url = cluster.create_database().await.unwrap();
    let node = |url: String| async move {
        start_with_store(
            citydb_store::Store::Postgres(url),
            citydb_store::StoreConfig::default(),
            |o| {
                o.publish.signer = Some(Arc::new(key()));
                o.publish.interval = std::time::Duration::from_secs(3600);
            },
        )
        .await
    };
    let a = node(url.clone()).await;
    let b = node(url).await;
    for n in 0..20 {
        register(if n % 2 == 0 { &a } else { &b }, n).await;
    }
    let first = fresh_checkpoint(&a, "EVENTS").await;
    register(&b, 50).await;
    let second = fresh_checkpoint(&b, "EVENTS").await;
    let (m, n) = (
        first["treeSize"].as_u64().unwrap(),
        second["treeSize"].as_u64().unwrap(),
    );
    assert!(n > m);
    // Node b proves that a's checkpoint is a prefix of its own.
    let data = b
        .ok(
            "auditor-1",
            "query($f: Int!, $t: Int!) { consistencyProof(from: $f, to: $t) { hashes } }",
            json!({ "f": m, "t": n }),
        )
        .await;
    verify_consistency(
        m,
        n,
        &hash(&first["rootHash"]),
        &hash(&second["rootHash"]),
        &hashes(&data["consistencyProof"]["hashes"]),
    )
    .unwrap();
    // Both serve the same tiles.
    let path = format!("/log/tile/0/000.p/{}", m.min(255));
    assert_eq!(get(&a, &path).await.1, get(&b, &path).await.1);
}

/// Rewrites one stored tile of the embedded event log's tree, as damage or an attacker with
/// write access to the file would.
fn damage_tile(s: &Server, level: i64, byte: usize) {
    let db = rusqlite::Connection::open(s.data_dir().join("log.db")).unwrap();
    let mut hashes: Vec<u8> = db
        .query_row(
            "SELECT hashes FROM tlog_tiles WHERE level = ?1 AND idx = 0",
            [level],
            |r| r.get(0),
        )
        .unwrap();
    hashes[byte] ^= 1;
    db.execute(
        "UPDATE tlog_tiles SET hashes = ?1 WHERE level = ?2 AND idx = 0",
        rusqlite::params![hashes, level],
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_refuses_to_sign_over_a_tree_that_contradicts_its_last_checkpoint() {
    let s = signing_node().await;
    for n in 0..5 {
        register(&s, n).await;
    }
    let signed = fresh_checkpoint(&s, "EVENTS").await;
    register(&s, 10).await;
    // A leaf hash under the signed checkpoint changed: the root at its size is no longer its
    // root, so no later checkpoint may be signed (it could not be consistent with it).
    damage_tile(&s, 0, 0);
    let q = "{ checkpoint(fresh: true) { treeSize } }";
    assert_eq!(
        code(&s.gql("auditor-1", q, json!({})).await),
        "TREE_INCONSISTENT"
    );
    // What was published stays what it was.
    let (status, body, _) = get(&s, "/log/checkpoint").await;
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        signed["note"].as_str().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_refuses_to_sign_over_a_tree_that_is_not_its_log() {
    let s = signing_node().await;
    for n in 0..5 {
        register(&s, n).await;
    }
    fresh_checkpoint(&s, "EVENTS").await;
    register(&s, 10).await;
    // The stored entries no longer end with the log's event hash there.
    let size = s
        .ok("auditor-1", "{ checkpoint { treeSize } }", json!({}))
        .await["checkpoint"]["treeSize"]
        .as_u64()
        .unwrap() as usize;
    damage_tile(&s, -1, (size - 1) * 32);
    let q = "{ checkpoint(fresh: true) { treeSize } }";
    assert_eq!(
        code(&s.gql("auditor-1", q, json!({})).await),
        "TREE_INCONSISTENT"
    );
}
