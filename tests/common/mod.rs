//! A real citydb node on a free loopback port, with one token per principal of the test
//! configuration, and helpers to talk GraphQL to it.

#![allow(dead_code)]

pub mod binary;

use std::collections::HashMap;
use std::net::SocketAddr;

use serde_json::{Value, json};
use uuid::Uuid;

use citydb_api::{AuthConfig, Node, NodeOptions, Token};
use citydb_store::{Store, StoreConfig};

/// The principals of the test configuration: (id, role, field groups, purposes).
pub const PRINCIPALS: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "social-insurance",
        "service",
        &["identity", "residence", "family", "business", "land"],
        &["social-insurance"],
    ),
    ("tax-office", "service", &["business"], &["tax"]),
    // The citizens' portal: authenticates people (e-ID) and exchanges for citizen tokens.
    ("portal", "service", &["identity"], &["citizen-login"]),
    ("steward-1", "steward", &[], &[]),
    ("steward-2", "steward", &[], &[]),
    ("supervisor-1", "supervisor", &[], &[]),
    ("auditor-1", "auditor", &[], &[]),
    ("admin-1", "admin", &[], &[]),
];

pub struct Server {
    pub addr: SocketAddr,
    pub node: Node,
    pub tokens: HashMap<&'static str, String>,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub async fn start() -> Server {
    start_on(Store::Embedded).await
}

/// A node on `store`, with its own data directory (for its projections when the store is
/// shared) and its own tokens.
pub async fn start_on(store: Store) -> Server {
    start_with_store(store, StoreConfig::default(), |_| {}).await
}

/// A node on the embedded store whose options `configure` has changed.
pub async fn start_with(configure: impl FnOnce(&mut NodeOptions)) -> Server {
    start_with_store(Store::Embedded, StoreConfig::default(), configure).await
}

/// A node on `store` opened with `config`, whose options `configure` has changed.
pub async fn start_with_store(
    store: Store,
    config: StoreConfig,
    configure: impl FnOnce(&mut NodeOptions),
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut toml = String::new();
    let mut tokens = HashMap::new();
    for (id, role, groups, purposes) in PRINCIPALS {
        let token = Token::generate().unwrap();
        toml.push_str(&format!(
            "[[principal]]\nid = {id:?}\nrole = {role:?}\ntoken_hash = {:?}\nfield_groups = {groups:?}\npurposes = {purposes:?}\nissue_citizen_tokens = {}\n\n",
            token.hash(),
            *id == "portal"
        ));
        tokens.insert(*id, token.as_str().to_owned());
    }
    let auth = AuthConfig::from_toml_str(&toml).unwrap();
    let mut options = NodeOptions::new(dir.path(), auth);
    // Citizen tokens under a fresh key, their revocations in the data directory.
    options.citizen_tokens = Some(std::sync::Arc::new(
        citydb_api::CitizenTokens::new(
            citydb_api::CitizenTokenKey::generate().unwrap(),
            Some(dir.path().join("citizen-token-revocations.json")),
        )
        .unwrap(),
    ));
    configure(&mut options);
    let opened = citydb_store::open(&store, &options.data_dir, &config)
        .await
        .unwrap();
    // The trees stored beside the logs, as `citydb serve` keeps them.
    options.publish.trees = Some(citydb_api::published::Trees {
        events: opened.tree,
        access: opened.access_tree,
    });
    let node = Node::open(opened.log, opened.access, opened.probe, options)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = node.router();
    tokio::spawn(async move {
        citydb_api::serve(listener, router, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Server {
        addr,
        node,
        tokens,
        http: reqwest::Client::new(),
        _dir: dir,
        _shutdown: tx,
    }
}

/// X-Road style headers a service must send to read personal data.
pub const XROAD: &[(&str, &str)] = &[
    ("X-Road-UserId", "officer-7"),
    ("X-Road-Issue", "HS-2026-0042"),
];

impl Server {
    /// The node's data directory (the embedded store's files).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// POSTs a GraphQL operation as `who` (a principal id, or "" for no token).
    pub async fn gql_with(
        &self,
        who: &str,
        query: &str,
        variables: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url())
            .json(&json!({ "query": query, "variables": variables }));
        if !who.is_empty() {
            req = req.bearer_auth(self.tokens.get(who).map(String::as_str).unwrap_or(who));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// POSTs as `who`, adding the X-Road headers for services.
    pub async fn gql(&self, who: &str, query: &str, variables: Value) -> Value {
        // A service names the officer and the case, and its purpose (purpose binding).
        let purpose = PRINCIPALS
            .iter()
            .find(|(id, role, _, _)| *id == who && *role == "service")
            .and_then(|(_, _, _, purposes)| purposes.first());
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(purpose) = purpose {
            headers.extend_from_slice(XROAD);
            headers.push(("X-Purpose", purpose));
        }
        self.gql_with(who, query, variables, &headers).await.1
    }

    /// Like `gql`, but panics on any error.
    pub async fn ok(&self, who: &str, query: &str, variables: Value) -> Value {
        let body = self.gql(who, query, variables).await;
        assert!(body.get("errors").is_none(), "{who}: {query}\n{body:#}");
        body["data"].clone()
    }
}

/// The first error's `extensions.code`, or "OK".
pub fn code(body: &Value) -> String {
    match body.get("errors") {
        Some(errors) => errors[0]["extensions"]["code"]
            .as_str()
            .unwrap_or("NO_CODE")
            .to_owned(),
        None => "OK".to_owned(),
    }
}

// --- domain commands as GraphQL inputs ----------------------------------------------------------

/// A PIN consistent with sex and year (province 031, Hải Phòng).
pub fn pin(n: u32, female: bool, year: u16) -> String {
    let century_digit = (year / 100 - 19) * 2 + u16::from(female);
    format!("031{century_digit}{:02}{n:06}", year % 100)
}

pub fn register_citizen(
    id: Uuid,
    pin: &str,
    family: &str,
    middle: &str,
    given: &str,
    female: bool,
    birth: &str,
) -> Value {
    json!({
        "citizen": id, "pin": pin,
        "name": { "family": family, "middle": middle, "given": given },
        "sex": if female { "FEMALE" } else { "MALE" },
        "birthDate": birth, "birthPlace": "11311",
        "father": null, "mother": null,
        "origin": { "kind": "REGISTRATION" }
    })
}

pub fn change_residence(id: Uuid, commune: &str, address: &str, since: &str) -> Value {
    json!({ "citizen": id, "kind": "PERMANENT", "commune": commune, "address": address, "since": since })
}

pub const REGISTER_CITIZEN: &str = r#"mutation($input: RegisterCitizenInput!) {
  registerCitizen(input: $input, reason: "khai sinh", legalBasis: "12/TP-HT ngày 02/01/2025") {
    commandId position citizens { id version name { full } }
  }
}"#;

pub const CHANGE_RESIDENCE: &str = r#"mutation($input: ChangeResidenceInput!, $expected: ExpectedVersion) {
  changeResidence(input: $input, expected: $expected, reason: "chuyển hộ khẩu") {
    changed { id version } citizens { id version permanentResidence { commune { code name } address } }
  }
}"#;

/// Registers a citizen through the API as steward-1; returns the record id `citizen-…`.
pub async fn citizen(
    server: &Server,
    n: u32,
    family: &str,
    middle: &str,
    given: &str,
    female: bool,
    year: u16,
) -> (Uuid, String) {
    let id = Uuid::now_v7();
    let pin = pin(n, female, year);
    let input = register_citizen(id, &pin, family, middle, given, female, &year.to_string());
    server
        .ok("steward-1", REGISTER_CITIZEN, json!({ "input": input }))
        .await;
    (id, pin)
}
