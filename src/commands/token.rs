//! `citydb token`: a new bearer token, printed once, and the principal's configuration entry
//! holding only its hash.

use std::process::ExitCode;

use crate::out::{self, say};
use citydb_api::{FieldGroup, Role, Token};

pub fn run(
    id: &str,
    role: &str,
    field_groups: &[String],
    purposes: &[String],
) -> anyhow::Result<ExitCode> {
    let role: Role = role.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    if role == Role::Citizen {
        anyhow::bail!("citizen tokens are signed by citydb, not configured: use --citizen");
    }
    if role != Role::Service && !field_groups.is_empty() {
        anyhow::bail!("only services are scoped by field group; other roles read every group");
    }
    for group in field_groups {
        group
            .parse::<FieldGroup>()
            .map_err(|_| anyhow::anyhow!("unknown field group {group:?}"))?;
    }
    let token = Token::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut entry = format!(
        "[[principal]]\nid = {}\nrole = \"{}\"\ntoken_hash = \"{}\"\n",
        toml_string(id),
        role.as_str(),
        token.hash()
    );
    if !field_groups.is_empty() {
        let list: Vec<String> = field_groups.iter().map(|g| toml_string(g)).collect();
        entry.push_str(&format!("field_groups = [{}]\n", list.join(", ")));
    }
    if !purposes.is_empty() {
        let list: Vec<String> = purposes.iter().map(|p| toml_string(p)).collect();
        entry.push_str(&format!("purposes = [{}]\n", list.join(", ")));
    }
    say!(
        "# Give this token to {id}; it is not stored anywhere:\n# {}",
        token.as_str()
    );
    out::text(&entry);
    if role == Role::Service && field_groups.is_empty() {
        eprintln!(
            "note: a service with no --field-group reads no personal field; add field_groups to the entry"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `citydb token --role citizen`: a signed citizen token for the person with this PIN (looked
/// up in `data`'s projections, read-only) or record id, printed once.
pub fn citizen(
    issuer: &str,
    citizen: &str,
    key: &std::path::Path,
    ttl: i64,
    data: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let key = citydb_api::CitizenTokenKey::load(key)?;
    let record = match citizen.parse::<citydb_domain::RecordId>() {
        Ok(citydb_domain::RecordId::Citizen(id)) => id,
        Ok(other) => anyhow::bail!("{other} is not a citizen's record"),
        Err(_) => {
            let pin = citizen.parse().map_err(|_| {
                anyhow::anyhow!(
                    "{citizen:?} is neither a PIN (12 digits) nor a citizen-<uuid> record id"
                )
            })?;
            let projections = data.join("projections.db");
            citydb_projections::Projections::citizen_id_by_pin_at(&projections, &pin)?.ok_or_else(
                || anyhow::anyhow!("no citizen with PIN {citizen} in {}", projections.display()),
            )?
        }
    };
    let tokens = citydb_api::CitizenTokens::new(key, None)?;
    let (token, claims) = tokens.issue(
        record.uuid(),
        issuer,
        ttl,
        citydb_api::citizen_token::unix_now(),
    )?;
    say!(
        "# A citizen token for citizen-{} (token id {}), valid until unix time {}:",
        claims.citizen,
        claims.token_id,
        claims.expires_at
    );
    out::text(&format!("{token}\n"));
    Ok(ExitCode::SUCCESS)
}

/// A TOML basic string (JSON string escaping is valid TOML for these characters).
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}
