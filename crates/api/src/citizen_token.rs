//! Citizen tokens: short-lived bearer tokens, signed by citydb, that make a person a
//! [`Role::Citizen`] principal bound to their **record id** (issue 15).
//!
//! Citizens are millions, so they are not configured principals. A trusted portal that has
//! authenticated the person (national e-ID) exchanges its own credential and the person's PIN or
//! record id for a citizen token (`issueCitizenToken`, docs/privacy.md); tests and the demo use
//! `citydb token --role citizen`. No restart, no per-citizen state on the server: a token
//! carries its own claims and a MAC under the installation's citizen-token key.
//!
//! Format: `cdbc_` + base64url(claims) + `.` + base64url(mac), where claims are
//! `0x01 ‖ token id (16) ‖ record uuid (16) ‖ issued-at (i64 BE seconds) ‖
//! expires-at (i64 BE seconds) ‖ issuer (UTF-8, ≤ 128 bytes)` and the MAC is blake3's keyed hash
//! of the claims under a key derived from the installation key with [`MAC_CONTEXT`].
//!
//! Invariants:
//! - a token is accepted only if its MAC verifies (constant-time), it has not expired, it was
//!   not issued in the future (beyond [`CLOCK_SKEW`]), it lives at most [`MAX_LIFETIME`], and it
//!   is not revoked (by token id, or every token of the citizen issued before a moment);
//! - a revocation is durable before it is acknowledged (written to the revocation file with
//!   fsync and an atomic rename) and takes effect for the next request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{AuthError, FieldGroup, Principal, Role};

/// Prefix of every citizen token (a configured principal's token starts with `cdb_`).
pub const CITIZEN_TOKEN_PREFIX: &str = "cdbc_";

/// blake3 derive-key context of the MAC key. Changing it invalidates every citizen token.
pub const MAC_CONTEXT: &str = "citydb 2026-12 citizen token MAC v1";

/// Longest a citizen token may live: a day (the demo's and `citydb token`'s tokens). A portal's
/// exchange issues far shorter ones ([`EXCHANGE_MAX_LIFETIME`]).
pub const MAX_LIFETIME: i64 = 24 * 3600;

/// Longest lifetime `issueCitizenToken` grants: an hour; the portal exchanges again.
pub const EXCHANGE_MAX_LIFETIME: i64 = 3600;

/// Default lifetime of an exchanged token: 15 minutes.
pub const EXCHANGE_DEFAULT_LIFETIME: i64 = 900;

/// Tolerated clock difference between nodes for `issued_at`.
pub const CLOCK_SKEW: i64 = 60;

/// Longest issuer id in a token.
pub const MAX_ISSUER: usize = 128;

/// First line of a key file.
const KEY_FILE_HEADER: &str = "citydb citizen-token key v1";

/// What a valid citizen token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CitizenClaims {
    pub token_id: Uuid,
    /// The citizen's record id (the uuid of `citizen-<uuid>`).
    pub citizen: Uuid,
    /// The principal that issued it (the portal, or `citydb-cli`).
    pub issuer: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl CitizenClaims {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(49 + self.issuer.len());
        out.push(1);
        out.extend_from_slice(self.token_id.as_bytes());
        out.extend_from_slice(self.citizen.as_bytes());
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out.extend_from_slice(self.issuer.as_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<CitizenClaims> {
        if bytes.len() < 49 || bytes[0] != 1 || bytes.len() > 49 + MAX_ISSUER {
            return None;
        }
        let uuid = |at: usize| Uuid::from_slice(&bytes[at..at + 16]).ok();
        let int = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            i64::from_be_bytes(b)
        };
        Some(CitizenClaims {
            token_id: uuid(1)?,
            citizen: uuid(17)?,
            issued_at: int(33),
            expires_at: int(41),
            issuer: String::from_utf8(bytes[49..].to_vec()).ok()?,
        })
    }

    /// The principal this token makes of its bearer.
    pub fn principal(&self) -> Principal {
        Principal {
            id: format!("citizen-{}", self.citizen),
            role: Role::Citizen,
            // Every group of their own record; other citizens are refused by record, not group.
            field_groups: FieldGroup::ALL.into_iter().collect(),
            purposes: Default::default(),
            citizen: Some(self.citizen),
            issues_citizen_tokens: false,
        }
    }
}

/// Why a citizen token could not be issued or a revocation not recorded.
#[derive(Debug, thiserror::Error)]
pub enum CitizenTokenError {
    #[error("cannot read the citizen-token key {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("the lifetime must be between 1 and {max} seconds, got {got}")]
    Lifetime { got: i64, max: i64 },
    #[error("the issuer id must be 1 to {MAX_ISSUER} bytes")]
    Issuer,
    #[error("cannot record the revocation in {path}: {reason}")]
    Revocations { path: String, reason: String },
    #[error("the system's random number generator failed: {0}")]
    Random(String),
}

/// The installation's citizen-token key: 32 random bytes in a file readable by the owner only,
/// shared by every node that accepts citizen tokens.
#[derive(Clone)]
pub struct CitizenTokenKey([u8; 32]);

impl std::fmt::Debug for CitizenTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CitizenTokenKey(…)")
    }
}

impl CitizenTokenKey {
    pub fn generate() -> Result<Self, CitizenTokenError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| CitizenTokenError::Random(e.to_string()))?;
        Ok(CitizenTokenKey(bytes))
    }

    /// The key file's text: a header line, then the key in base64url.
    pub fn to_file_text(&self) -> String {
        format!("{KEY_FILE_HEADER}\n{}\n", B64URL.encode(self.0))
    }

    pub fn from_file_text(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()?.trim() != KEY_FILE_HEADER {
            return None;
        }
        let bytes = B64URL.decode(lines.next()?.trim()).ok()?;
        Some(CitizenTokenKey(bytes.try_into().ok()?))
    }

    pub fn load(path: &Path) -> Result<Self, CitizenTokenError> {
        let bad = |reason: String| CitizenTokenError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        Self::from_file_text(&text).ok_or_else(|| {
            bad(format!(
                "not a citizen-token key (expected `{KEY_FILE_HEADER}` and 32 bytes in base64url)"
            ))
        })
    }

    fn mac_key(&self) -> [u8; 32] {
        blake3::derive_key(MAC_CONTEXT, &self.0)
    }
}

/// Revoked tokens, kept until they would have expired anyway, and per-citizen cut-offs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Revocations {
    /// token id → its expiry (pruned once past).
    #[serde(default)]
    tokens: BTreeMap<Uuid, i64>,
    /// citizen record id → tokens issued at or before this second are revoked.
    #[serde(default)]
    citizens: BTreeMap<Uuid, i64>,
}

/// Issues and checks citizen tokens; holds the revocations (in memory, and in a file when
/// configured, so they survive a restart and `POST /admin/reload` re-reads them).
#[derive(Debug)]
pub struct CitizenTokens {
    key: CitizenTokenKey,
    revocations: RwLock<Revocations>,
    file: Option<PathBuf>,
}

impl CitizenTokens {
    /// Tokens under `key`; revocations kept in `file` (read now when it exists).
    pub fn new(key: CitizenTokenKey, file: Option<PathBuf>) -> Result<Self, CitizenTokenError> {
        let tokens = CitizenTokens {
            key,
            revocations: RwLock::new(Revocations::default()),
            file,
        };
        tokens.reload()?;
        Ok(tokens)
    }

    /// Re-reads the revocation file (another node, or an operator, may have added to it).
    pub fn reload(&self) -> Result<(), CitizenTokenError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let bad = |reason: String| CitizenTokenError::Revocations {
            path: path.display().to_string(),
            reason,
        };
        let read = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Revocations::default(),
            Err(e) => return Err(bad(e.to_string())),
        };
        *self.revocations.write().unwrap_or_else(|e| e.into_inner()) = read;
        Ok(())
    }

    /// A new token for `citizen`, valid for `lifetime` seconds from `now`.
    pub fn issue(
        &self,
        citizen: Uuid,
        issuer: &str,
        lifetime: i64,
        now: i64,
    ) -> Result<(String, CitizenClaims), CitizenTokenError> {
        if !(1..=MAX_LIFETIME).contains(&lifetime) {
            return Err(CitizenTokenError::Lifetime {
                got: lifetime,
                max: MAX_LIFETIME,
            });
        }
        if issuer.is_empty() || issuer.len() > MAX_ISSUER {
            return Err(CitizenTokenError::Issuer);
        }
        // Seconds are the claims' grain: a token issued in the very second its citizen's tokens
        // were revoked (log out, then log in again) is dated a second later so that it is not
        // caught by that cut-off (well within CLOCK_SKEW).
        let issued_at = self
            .revocations
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .citizens
            .get(&citizen)
            .map_or(now, |cut| now.max(cut + 1));
        let claims = CitizenClaims {
            token_id: Uuid::now_v7(),
            citizen,
            issuer: issuer.to_owned(),
            issued_at,
            expires_at: issued_at + lifetime,
        };
        let body = claims.encode();
        let mac = blake3::keyed_hash(&self.key.mac_key(), &body);
        let token = format!(
            "{CITIZEN_TOKEN_PREFIX}{}.{}",
            B64URL.encode(&body),
            B64URL.encode(mac.as_bytes())
        );
        Ok((token, claims))
    }

    /// The claims of a valid, unexpired, unrevoked token. Every failure is the same
    /// `UnknownToken` to the caller: which check failed is nobody's business but the log's.
    pub fn verify(&self, token: &str, now: i64) -> Result<CitizenClaims, AuthError> {
        let rest = token
            .strip_prefix(CITIZEN_TOKEN_PREFIX)
            .ok_or(AuthError::UnknownToken)?;
        let (body, mac) = rest.split_once('.').ok_or(AuthError::UnknownToken)?;
        // Bound the work before decoding: a token is at most a few hundred bytes.
        if body.len() > 4 * (49 + MAX_ISSUER) / 3 + 4 || mac.len() != 43 {
            return Err(AuthError::UnknownToken);
        }
        let body = B64URL.decode(body).map_err(|_| AuthError::UnknownToken)?;
        let mac: [u8; 32] = B64URL
            .decode(mac)
            .ok()
            .and_then(|m| m.try_into().ok())
            .ok_or(AuthError::UnknownToken)?;
        // blake3::Hash equality is constant-time.
        if blake3::keyed_hash(&self.key.mac_key(), &body) != blake3::Hash::from(mac) {
            return Err(AuthError::UnknownToken);
        }
        let claims = CitizenClaims::decode(&body).ok_or(AuthError::UnknownToken)?;
        let fresh = claims.expires_at > now
            && claims.issued_at <= now + CLOCK_SKEW
            && claims.expires_at - claims.issued_at <= MAX_LIFETIME;
        if !fresh {
            return Err(AuthError::UnknownToken);
        }
        let revoked = self.revocations.read().unwrap_or_else(|e| e.into_inner());
        if revoked.tokens.contains_key(&claims.token_id)
            || revoked
                .citizens
                .get(&claims.citizen)
                .is_some_and(|cut| claims.issued_at <= *cut)
        {
            return Err(AuthError::UnknownToken);
        }
        Ok(claims)
    }

    /// Revokes one token (its expiry is kept so the entry can be pruned once it is past).
    pub fn revoke(
        &self,
        token_id: Uuid,
        expires_at: i64,
        now: i64,
    ) -> Result<(), CitizenTokenError> {
        self.change(now, |r| {
            r.tokens.insert(token_id, expires_at);
        })
    }

    /// Revokes every token of `citizen` issued up to `now`.
    pub fn revoke_citizen(&self, citizen: Uuid, now: i64) -> Result<(), CitizenTokenError> {
        self.change(now, |r| {
            let cut = r.citizens.entry(citizen).or_insert(now);
            *cut = (*cut).max(now);
        })
    }

    /// Applies a change durably: the file first (fsync, rename), then memory, so an
    /// acknowledged revocation is never forgotten by a restart.
    fn change(&self, now: i64, f: impl FnOnce(&mut Revocations)) -> Result<(), CitizenTokenError> {
        let mut guard = self.revocations.write().unwrap_or_else(|e| e.into_inner());
        let mut next = guard.clone();
        f(&mut next);
        next.tokens.retain(|_, exp| *exp > now);
        // A cut-off older than the longest lifetime revokes nothing that could still be valid.
        next.citizens.retain(|_, cut| *cut + MAX_LIFETIME > now);
        if let Some(path) = &self.file {
            write_durably(path, &next).map_err(|reason| CitizenTokenError::Revocations {
                path: path.display().to_string(),
                reason,
            })?;
        }
        *guard = next;
        Ok(())
    }
}

fn write_durably(path: &Path, revocations: &Revocations) -> Result<(), String> {
    use std::io::Write;
    let json = serde_json::to_vec_pretty(revocations).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
    f.write_all(&json).map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(file: Option<PathBuf>) -> CitizenTokens {
        CitizenTokens::new(CitizenTokenKey::generate().unwrap(), file).unwrap()
    }

    #[test]
    fn a_token_round_trips_and_binds_the_record() {
        let t = tokens(None);
        let citizen = Uuid::now_v7();
        let (token, claims) = t.issue(citizen, "portal", 600, 1_000).unwrap();
        assert!(token.starts_with(CITIZEN_TOKEN_PREFIX));
        assert_eq!(t.verify(&token, 1_001).unwrap(), claims);
        let p = claims.principal();
        assert_eq!((p.role, p.citizen), (Role::Citizen, Some(citizen)));
        // Expired, from the future, and under another key: refused.
        assert!(t.verify(&token, 1_600).is_err());
        assert!(t.verify(&token, 1_000 - CLOCK_SKEW - 1).is_err());
        assert!(tokens(None).verify(&token, 1_001).is_err());
    }

    #[test]
    fn a_changed_byte_is_refused() {
        let t = tokens(None);
        let (token, _) = t.issue(Uuid::now_v7(), "portal", 600, 1_000).unwrap();
        let body_end = token.find('.').unwrap();
        for at in CITIZEN_TOKEN_PREFIX.len()..token.len() {
            if at == body_end {
                continue;
            }
            let mut bytes = token.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(bytes).unwrap();
            if forged != token {
                assert!(t.verify(&forged, 1_001).is_err(), "byte {at} changed");
            }
        }
        assert!(t.verify("cdbc_", 1_001).is_err());
        assert!(t.verify(&"cdbc_A.".repeat(1000), 1_001).is_err());
    }

    #[test]
    fn lifetime_and_issuer_are_bounded() {
        let t = tokens(None);
        assert!(t.issue(Uuid::now_v7(), "p", 0, 0).is_err());
        assert!(t.issue(Uuid::now_v7(), "p", MAX_LIFETIME + 1, 0).is_err());
        assert!(t.issue(Uuid::now_v7(), "", 60, 0).is_err());
        assert!(
            t.issue(Uuid::now_v7(), &"p".repeat(MAX_ISSUER + 1), 60, 0)
                .is_err()
        );
    }

    #[test]
    fn revocations_are_durable_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("revoked.json");
        let t = tokens(Some(file.clone()));
        let key = t.key.clone();
        let a = Uuid::now_v7();
        let (one, c1) = t.issue(a, "portal", 600, 1_000).unwrap();
        let (two, _) = t.issue(a, "portal", 600, 1_000).unwrap();
        let (other, _) = t.issue(Uuid::now_v7(), "portal", 600, 1_000).unwrap();
        t.revoke(c1.token_id, c1.expires_at, 1_010).unwrap();
        assert!(t.verify(&one, 1_011).is_err());
        assert!(t.verify(&two, 1_011).is_ok());
        // A restart reads the file: the revocation holds.
        let again = CitizenTokens::new(key.clone(), Some(file.clone())).unwrap();
        assert!(again.verify(&one, 1_011).is_err());
        again.revoke_citizen(a, 1_020).unwrap();
        assert!(again.verify(&two, 1_021).is_err());
        assert!(again.verify(&other, 1_021).is_ok());
        // A token issued after the cut-off works, even within the same second.
        let (three, _) = again.issue(a, "portal", 600, 1_020).unwrap();
        assert!(again.verify(&three, 1_021).is_ok());
        assert!(again.verify(&two, 1_021).is_err());
        // Pruned once nothing they revoke could still be valid.
        again
            .revoke(Uuid::now_v7(), 10, 1_020 + MAX_LIFETIME)
            .unwrap();
        let kept: Revocations = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert!(
            kept.tokens.is_empty() && kept.citizens.is_empty(),
            "{kept:?}"
        );
    }

    #[test]
    fn key_files_round_trip() {
        let key = CitizenTokenKey::generate().unwrap();
        let back = CitizenTokenKey::from_file_text(&key.to_file_text()).unwrap();
        assert_eq!(back.0, key.0);
        assert!(CitizenTokenKey::from_file_text("citydb citizen-token key v1\nAAAA\n").is_none());
        assert!(CitizenTokenKey::from_file_text("something else\n").is_none());
    }
}
