//! Citizen tokens from the command line (issue 15): `keygen --citizen-token`, `token --role
//! citizen` by PIN and by record id, and the demo's citizen token, against a real `serve`.

use super::*;
use common::binary::Serving;
use serde_json::json;

const DEMO_PIN: &str = "030174835130";
const DEMO_RECORD: &str = "citizen-22ed2420-9431-8001-b22c-d4ed4c85775b";
const OWN: &str = "query($p: String!) { citizen(pin: $p) { id name { full } } }";

fn token_of(out: &Output) -> String {
    stdout(out)
        .lines()
        .find(|l| l.starts_with("cdbc_"))
        .unwrap_or_else(|| panic!("no token printed:\n{}", text(out)))
        .to_owned()
}

#[test]
fn keygen_makes_a_citizen_token_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("citizen-key");
    let k = key.to_str().unwrap();
    let out = citydb(&["keygen", "--citizen-token", "--out", k]);
    expect_code(&out, 0);
    let text_before = std::fs::read_to_string(&key).unwrap();
    assert!(text_before.starts_with("citydb citizen-token key v1\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // Never overwritten: every token issued under it would stop working.
    let again = citydb(&["keygen", "--citizen-token", "--out", k]);
    expect_code(&again, 2);
    assert_eq!(std::fs::read_to_string(&key).unwrap(), text_before);
    // A citizen token needs the citizen and the key.
    let missing = citydb(&["token", "--id", "support", "--role", "citizen"]);
    assert_ne!(missing.status.code(), Some(0), "{}", text(&missing));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn citizen_tokens_from_the_cli_and_the_demo_read_only_their_own_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    let server = Serving::start(&["--data", d, "--demo"]);
    server.wait_ready().await;
    let key = data.join("demo-citizen-token-key");
    let k = key.to_str().unwrap();

    // By PIN (looked up in the projections, beside the running server) and by record id.
    let by_pin = citydb(&[
        "token",
        "--id",
        "support",
        "--role",
        "citizen",
        "--citizen",
        DEMO_PIN,
        "--citizen-token-key",
        k,
        "--data",
        d,
        "--ttl",
        "600",
    ]);
    expect_code(&by_pin, 0);
    let by_id = citydb(&[
        "token",
        "--id",
        "support",
        "--role",
        "citizen",
        "--citizen",
        DEMO_RECORD,
        "--citizen-token-key",
        k,
    ]);
    expect_code(&by_id, 0);
    let demo: Value =
        serde_json::from_slice(&std::fs::read(data.join("demo-tokens.json")).unwrap()).unwrap();
    let demo_token = demo["citizen"]
        .as_str()
        .expect("a citizen demo token")
        .to_owned();
    for token in [token_of(&by_pin), token_of(&by_id), demo_token] {
        let mine = server.gql(&token, OWN, json!({ "p": DEMO_PIN }), &[]).await;
        assert_eq!(mine["data"]["citizen"]["id"], DEMO_RECORD, "{mine}");
        let other = server
            .gql(&token, OWN, json!({ "p": "031190000001" }), &[])
            .await;
        assert_eq!(
            other["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{other}"
        );
    }

    // A PIN nobody holds, a business record, a key that is not one: refused, nothing printed.
    for (citizen, key_path) in [
        ("031190999999", k),
        ("business-22ed2420-9431-8001-b22c-d4ed4c85775b", k),
        (DEMO_RECORD, d),
    ] {
        let out = citydb(&[
            "token",
            "--id",
            "support",
            "--role",
            "citizen",
            "--citizen",
            citizen,
            "--citizen-token-key",
            key_path,
            "--data",
            d,
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(!stdout(&out).contains("cdbc_"), "{}", text(&out));
    }
    // A token made under another key is not accepted.
    let other_key = dir.path().join("other-key");
    expect_code(
        &citydb(&[
            "keygen",
            "--citizen-token",
            "--out",
            other_key.to_str().unwrap(),
        ]),
        0,
    );
    let foreign = citydb(&[
        "token",
        "--id",
        "support",
        "--role",
        "citizen",
        "--citizen",
        DEMO_RECORD,
        "--citizen-token-key",
        other_key.to_str().unwrap(),
    ]);
    let body = server
        .gql(&token_of(&foreign), OWN, json!({ "p": DEMO_PIN }), &[])
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );
    server.stop();
}
