//! Who is calling: principals, their bearer tokens, and the per-request context.
//!
//! Principals are configured in TOML and identified by bearer tokens. The configuration holds
//! only a keyed hash of each token ([`hash_token`]), so the file can be read by operators and
//! kept in version control without granting access.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::citizen_token::{CITIZEN_TOKEN_PREFIX, CitizenTokens, unix_now};
use crate::error::ApiError;

/// What a principal is allowed to do, broadly. Fine-grained scopes (field groups, purposes)
/// matter only for `service`.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A service system (tax, land registry, social insurance) reading on behalf of an officer.
    Service,
    /// Records changes to registers.
    Steward,
    /// Approves stewards' sensitive changes.
    Supervisor,
    /// Reads registers and the access log to check how data was used.
    Auditor,
    /// Operates the installation.
    Admin,
    /// A person reading their own record, its history and who read it, and filing correction
    /// requests (issue 15). Never configured in TOML: a citizen principal comes from a
    /// short-lived citizen token bound to the person's record id ([`Principal::citizen`]).
    Citizen,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Service,
        Role::Steward,
        Role::Supervisor,
        Role::Auditor,
        Role::Admin,
        Role::Citizen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Service => "service",
            Role::Steward => "steward",
            Role::Supervisor => "supervisor",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::Citizen => "citizen",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| s.to_owned())
    }
}

/// A group of personal-data fields that a service is scoped to.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[serde(rename_all = "lowercase")]
pub enum FieldGroup {
    /// Names, date of birth, personal identification number.
    Identity,
    /// Registered addresses.
    Residence,
    /// Parents, spouses, children.
    Family,
    /// Businesses owned or represented.
    Business,
    /// Land parcels held.
    Land,
}

impl FieldGroup {
    pub const ALL: [FieldGroup; 5] = [
        FieldGroup::Identity,
        FieldGroup::Residence,
        FieldGroup::Family,
        FieldGroup::Business,
        FieldGroup::Land,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldGroup::Identity => "identity",
            FieldGroup::Residence => "residence",
            FieldGroup::Family => "family",
            FieldGroup::Business => "business",
            FieldGroup::Land => "land",
        }
    }
}

impl fmt::Display for FieldGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FieldGroup {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldGroup::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| s.to_owned())
    }
}

/// An authenticated caller.
///
/// Invariant: for every role but `service`, `field_groups` holds every [`FieldGroup`]; a
/// service holds exactly the groups it was configured with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub id: String,
    pub role: Role,
    pub field_groups: BTreeSet<FieldGroup>,
    pub purposes: BTreeSet<String>,
    /// For [`Role::Citizen`] only: the record id of the person the token was issued to (a
    /// record id, not a PIN: PINs get corrected and records merged). `None` for every other role.
    pub citizen: Option<Uuid>,
    /// A trusted portal that authenticates people (national e-ID) and may exchange their
    /// identity for citizen tokens (`issue_citizen_tokens = true` in the configuration).
    pub issues_citizen_tokens: bool,
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// Prefix of every token, so that leaked tokens are recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "cdb_";

/// Prefix of every stored token hash, naming the algorithm so it can change later.
pub const TOKEN_HASH_PREFIX: &str = "blake3:";

/// blake3 derive-key context for token hashes. Fixed forever: changing it invalidates every
/// configured token.
const TOKEN_HASH_CONTEXT: &str = "citydb 2025-01-01 API bearer token hash v1";

/// A freshly generated bearer token: `cdb_` followed by 43 base64url characters (32 random
/// bytes). Its `Debug` form hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// 32 bytes from the operating system's CSPRNG.
    pub fn generate() -> Result<Token, AuthError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
        Ok(Token(format!("{TOKEN_PREFIX}{}", base64url(&bytes))))
    }

    /// The secret itself, to hand to the client once.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value to put in the configuration's `token_hash`.
    pub fn hash(&self) -> String {
        hash_token(&self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(cdb_…)")
    }
}

/// `blake3:` + hex of blake3 in derive-key mode over the token.
///
/// A fast hash is right here, unlike for passwords: tokens carry 256 bits of randomness, so
/// nobody can guess one from its hash however fast the hash is, and a slow KDF would only cost
/// us time on every request. Derive-key mode with a fixed context keeps these hashes apart from
/// any other blake3 use of the same bytes.
pub fn hash_token(token: &str) -> String {
    let digest = blake3::derive_key(TOKEN_HASH_CONTEXT, token.as_bytes());
    let mut out = String::with_capacity(TOKEN_HASH_PREFIX.len() + 64);
    out.push_str(TOKEN_HASH_PREFIX);
    out.push_str(&blake3::Hash::from_bytes(digest).to_hex());
    out
}

/// Unpadded base64url (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

/// Checks a configured hash's form and returns it normalised (lowercase hex).
fn parse_token_hash(s: &str) -> Result<String, &'static str> {
    let hex = s
        .strip_prefix(TOKEN_HASH_PREFIX)
        .ok_or("it must start with `blake3:`")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("it must be `blake3:` followed by 64 hex digits");
    }
    Ok(format!("{TOKEN_HASH_PREFIX}{}", hex.to_ascii_lowercase()))
}

// ---------------------------------------------------------------------------------------------
// Configuration

/// Why an auth configuration was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AuthConfigError {
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
    #[error("the auth configuration is not valid TOML for principals: {0}")]
    Syntax(String),
    #[error("principal #{index} has an empty id")]
    EmptyId { index: usize },
    #[error(
        "principal {id:?} has unknown role {role:?} (expected service, steward, supervisor, auditor or admin)"
    )]
    UnknownRole { id: String, role: String },
    #[error(
        "principal {id:?} has unknown field group {group:?} (expected identity, residence, family, business or land)"
    )]
    UnknownFieldGroup { id: String, group: String },
    #[error(
        "principal {id:?} has role \"citizen\": citizens are not configured; they get short-lived citizen tokens (docs/privacy.md)"
    )]
    CitizenInConfig { id: String },
    #[error("principal {id:?} has a bad token_hash: {reason}")]
    BadHash { id: String, reason: &'static str },
    #[error("principal id {0:?} appears more than once")]
    DuplicateId(String),
    #[error("principals {first:?} and {second:?} have the same token_hash")]
    DuplicateHash { first: String, second: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    principal: Vec<RawPrincipal>,
}

// Role and groups are read as strings so that an unknown value becomes a typed error naming the
// principal, rather than a serde message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrincipal {
    id: String,
    role: String,
    token_hash: String,
    #[serde(default)]
    field_groups: Vec<String>,
    #[serde(default)]
    purposes: Vec<String>,
    #[serde(default)]
    issue_citizen_tokens: bool,
}

/// One configured principal with the hash of its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrincipalEntry {
    pub principal: Principal,
    /// Normalised `blake3:<64 lowercase hex>`.
    pub token_hash: String,
}

/// A validated auth configuration: ids and token hashes are unique.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthConfig {
    pub principals: Vec<PrincipalEntry>,
}

impl AuthConfig {
    pub fn load(path: impl AsRef<Path>) -> Result<AuthConfig, AuthConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| AuthConfigError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        AuthConfig::from_toml_str(&text)
    }

    pub fn from_toml_str(text: &str) -> Result<AuthConfig, AuthConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| AuthConfigError::Syntax(e.to_string()))?;
        let mut ids = BTreeSet::new();
        let mut hashes: HashMap<String, String> = HashMap::new();
        let mut principals = Vec::with_capacity(raw.principal.len());
        for (index, p) in raw.principal.into_iter().enumerate() {
            let id = p.id.trim().to_owned();
            if id.is_empty() {
                return Err(AuthConfigError::EmptyId { index });
            }
            let role: Role = p
                .role
                .parse()
                .map_err(|role| AuthConfigError::UnknownRole {
                    id: id.clone(),
                    role,
                })?;
            if role == Role::Citizen {
                return Err(AuthConfigError::CitizenInConfig { id });
            }
            let token_hash =
                parse_token_hash(&p.token_hash).map_err(|reason| AuthConfigError::BadHash {
                    id: id.clone(),
                    reason,
                })?;
            let mut field_groups = BTreeSet::new();
            for g in &p.field_groups {
                let group: FieldGroup =
                    g.parse()
                        .map_err(|group| AuthConfigError::UnknownFieldGroup {
                            id: id.clone(),
                            group,
                        })?;
                field_groups.insert(group);
            }
            if role != Role::Service {
                // Only services are scoped by field group; see the `Principal` invariant.
                field_groups = FieldGroup::ALL.into_iter().collect();
            }
            if !ids.insert(id.clone()) {
                return Err(AuthConfigError::DuplicateId(id));
            }
            if let Some(first) = hashes.insert(token_hash.clone(), id.clone()) {
                return Err(AuthConfigError::DuplicateHash { first, second: id });
            }
            principals.push(PrincipalEntry {
                principal: Principal {
                    id,
                    role,
                    field_groups,
                    purposes: p.purposes.into_iter().collect(),
                    citizen: None,
                    issues_citizen_tokens: p.issue_citizen_tokens,
                },
                token_hash,
            });
        }
        Ok(AuthConfig { principals })
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication

/// Why a request was not authenticated. All of these reach the client as `UNAUTHENTICATED`
/// with a message that does not say whether a token exists.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    MissingToken,
    #[error("malformed Authorization header: expected `Bearer <token>`")]
    Malformed,
    #[error("invalid bearer token")]
    UnknownToken,
    #[error("the system's random number generator failed: {0}")]
    Random(String),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Random(_) => ApiError::internal(e),
            _ => ApiError::unauthenticated(e.to_string()),
        }
    }
}

/// Maps bearer tokens to principals.
#[derive(Debug, Default)]
pub struct Authenticator {
    /// Keyed by token hash. Looking up by hash, not by token, means the secret itself is never
    /// compared or stored, and the map's timing reveals only facts about hashes, which do not
    /// help anyone find a token. Replaced whole by [`Authenticator::replace`] (a reload): a
    /// request sees either the old principals or the new ones, never a mix.
    by_hash: RwLock<Arc<HashMap<String, Arc<Principal>>>>,
    /// Citizen tokens (`cdbc_…`), when the installation accepts them.
    citizen_tokens: RwLock<Option<Arc<CitizenTokens>>>,
}

impl Authenticator {
    pub fn new(config: AuthConfig) -> Self {
        Authenticator {
            by_hash: RwLock::new(Arc::new(Self::index(config))),
            citizen_tokens: RwLock::new(None),
        }
    }

    /// Accepts citizen tokens issued under `tokens`' key from now on.
    pub fn accept_citizen_tokens(&self, tokens: Arc<CitizenTokens>) {
        *self
            .citizen_tokens
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(tokens);
    }

    /// The citizen tokens this installation issues and accepts, if any.
    pub fn citizen_tokens(&self) -> Option<Arc<CitizenTokens>> {
        self.citizen_tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn index(config: AuthConfig) -> HashMap<String, Arc<Principal>> {
        config
            .principals
            .into_iter()
            .map(|e| (e.token_hash, Arc::new(e.principal)))
            .collect()
    }

    /// Replaces every principal at once (a revoked token stops working for the next request).
    pub fn replace(&self, config: AuthConfig) {
        let index = Arc::new(Self::index(config));
        *self.by_hash.write().unwrap_or_else(|e| e.into_inner()) = index;
    }

    /// How many principals are configured.
    pub fn len(&self) -> usize {
        self.current().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn current(&self) -> Arc<HashMap<String, Arc<Principal>>> {
        self.by_hash
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The principal a raw token belongs to, shared: every request of a principal holds the
    /// same one (a reload makes new ones; a request in flight keeps the one it was admitted
    /// with), so authenticating and handing the context to the schema copy no sets.
    pub fn authenticate_token(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        if token.starts_with(CITIZEN_TOKEN_PREFIX) {
            let tokens = self.citizen_tokens().ok_or(AuthError::UnknownToken)?;
            return Ok(Arc::new(tokens.verify(token, unix_now())?.principal()));
        }
        self.current()
            .get(&hash_token(token))
            .cloned()
            .ok_or(AuthError::UnknownToken)
    }

    /// The principal named by the `Authorization: Bearer <token>` header.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Principal>, AuthError> {
        let value = headers.get(AUTHORIZATION).ok_or(AuthError::MissingToken)?;
        let token = bearer_token(value.to_str().map_err(|_| AuthError::Malformed)?)?;
        self.authenticate_token(token)
    }
}

/// The token of a `Bearer <token>` credential; the scheme is case-insensitive (RFC 9110).
pub fn bearer_token(value: &str) -> Result<&str, AuthError> {
    let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::Malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

// ---------------------------------------------------------------------------------------------
// Request context

/// Headers naming the officer on whose behalf a service asks, in order of preference.
pub const END_USER_HEADERS: [&str; 2] = ["x-road-userid", "x-end-user"];
/// Headers naming the case or dossier, in order of preference.
pub const CASE_HEADERS: [&str; 2] = ["x-road-issue", "x-case-id"];
pub const PURPOSE_HEADER: &str = "x-purpose";
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// Longest accepted end user, case or purpose value, in bytes.
pub const MAX_CONTEXT_VALUE_LEN: usize = 256;

/// Everything known about one request (or one WebSocket connection): who asks, for whom, in
/// which case, for what purpose. Resolvers read it with `ctx.data::<RequestContext>()`; it
/// goes into the access log with every read of personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestContext {
    pub principal: Arc<Principal>,
    /// The officer on whose behalf a service system asks (`X-Road-UserId` or `X-End-User`).
    pub end_user: Option<String>,
    /// The case or dossier the request belongs to (`X-Road-Issue` or `X-Case-Id`).
    pub case: Option<String>,
    /// Why the data is needed (`X-Purpose`), one of the principal's purposes.
    pub purpose: Option<String>,
    /// From `X-Correlation-Id` when that is a valid UUID, otherwise a fresh UUIDv7.
    pub correlation_id: Uuid,
}

impl RequestContext {
    /// Reads the context headers. A malformed value (not UTF-8, control characters, too long)
    /// is `INVALID_INPUT`: silently dropping an end user would let a read go unattributed.
    pub fn from_headers(
        principal: impl Into<Arc<Principal>>,
        headers: &HeaderMap,
    ) -> Result<Self, ApiError> {
        let correlation_id = headers
            .get(CORRELATION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Uuid::try_parse(v.trim()).ok())
            .filter(|u| !u.is_nil())
            .unwrap_or_else(Uuid::now_v7);
        Ok(RequestContext {
            principal: principal.into(),
            end_user: first_header(headers, &END_USER_HEADERS)?,
            case: first_header(headers, &CASE_HEADERS)?,
            purpose: first_header(headers, &[PURPOSE_HEADER])?,
            correlation_id,
        })
    }

    /// Refuses unless the caller may read personal data in all of `groups`:
    /// - a service must name both an end user and a case;
    /// - a service may read only its configured field groups (the refused group is named in
    ///   the message and in `extensions.field`);
    /// - a principal configured with purposes must name one (`X-Purpose`), and a purpose, when
    ///   given, must be one of the principal's purposes (always checked for services; for
    ///   other roles only when they have purposes configured).
    pub fn require_personal_data_access(&self, groups: &[FieldGroup]) -> Result<(), ApiError> {
        let p = &self.principal;
        if p.role == Role::Service && (self.end_user.is_none() || self.case.is_none()) {
            return Err(ApiError::forbidden(format!(
                "service {:?} must name the end user (X-Road-UserId or X-End-User) and the case \
                 (X-Road-Issue or X-Case-Id) to read personal data",
                p.id
            )));
        }
        if let Some(group) = groups.iter().find(|g| !p.field_groups.contains(g)) {
            return Err(ApiError::forbidden_field(
                format!(
                    "principal {:?} may not read the field group `{group}`",
                    p.id
                ),
                group.as_str(),
            ));
        }
        // Purpose binding (Decree 356/2025, docs/privacy.md): a principal configured with
        // purposes names one of them on every personal read, and it is logged with the read.
        if self.purpose.is_none() && !p.purposes.is_empty() {
            return Err(ApiError::forbidden_field(
                format!(
                    "principal {:?} must name the purpose of this read in X-Purpose (one of: {})",
                    p.id,
                    p.purposes.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
                "purpose",
            ));
        }
        if let Some(purpose) = &self.purpose
            && (p.role == Role::Service || !p.purposes.is_empty())
            && !p.purposes.contains(purpose)
        {
            return Err(ApiError::forbidden_field(
                format!(
                    "purpose {purpose:?} is not among the purposes of principal {:?}",
                    p.id
                ),
                "purpose",
            ));
        }
        Ok(())
    }

    /// Refuses unless the principal has one of `roles`.
    pub fn require_role(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.principal.role) {
            return Ok(());
        }
        let wanted: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden(format!(
            "this operation needs the role {}; principal {:?} is {}",
            wanted.join(" or "),
            self.principal.id,
            self.principal.role
        )))
    }

    /// The request context of a resolver's GraphQL context. Missing context means the schema
    /// is being executed outside [`crate::router`]; that is our bug, not the client's.
    pub fn of<'a>(ctx: &'a async_graphql::Context<'_>) -> Result<&'a RequestContext, ApiError> {
        ctx.data_opt::<RequestContext>()
            .ok_or_else(|| ApiError::internal("no RequestContext in the GraphQL context"))
    }
}

fn first_header(headers: &HeaderMap, names: &[&str]) -> Result<Option<String>, ApiError> {
    for name in names {
        let Some(value) = headers.get(*name) else {
            continue;
        };
        let text = value
            .to_str()
            .map_err(|_| {
                ApiError::invalid_field(format!("header {name} is not ASCII text"), *name)
            })?
            .trim();
        if text.is_empty() {
            continue;
        }
        if text.len() > MAX_CONTEXT_VALUE_LEN {
            return Err(ApiError::invalid_field(
                format!("header {name} is longer than {MAX_CONTEXT_VALUE_LEN} bytes"),
                *name,
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(ApiError::invalid_field(
                format!("header {name} holds control characters"),
                *name,
            ));
        }
        return Ok(Some(text.to_owned()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn generated_tokens_have_the_documented_shape() {
        let t = Token::generate().unwrap();
        let body = t.as_str().strip_prefix(TOKEN_PREFIX).unwrap();
        assert_eq!(body.len(), 43);
        assert!(
            body.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(t, Token::generate().unwrap());
        assert!(!format!("{t:?}").contains(body));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Ok("abc"));
        assert_eq!(bearer_token("bearer  abc "), Ok("abc"));
        assert_eq!(bearer_token("Basic abc"), Err(AuthError::Malformed));
        assert_eq!(bearer_token("Bearer"), Err(AuthError::Malformed));
    }
}
