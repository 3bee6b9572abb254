//! Configuration and tokens.

use super::*;

#[test]
fn token_hash_round_trip() {
    let token = Token::generate().unwrap();
    let hash = token.hash();
    assert_eq!(hash, citydb_api::hash_token(token.as_str()));
    assert!(hash.starts_with("blake3:") && hash.len() == 7 + 64);
    let config = AuthConfig::from_toml_str(&format!(
        "[[principal]]\nid = \"a\"\nrole = \"admin\"\ntoken_hash = \"{}\"\n",
        hash.to_uppercase().replace("BLAKE3:", "blake3:")
    ))
    .unwrap();
    let auth = Authenticator::new(config);
    let p = auth.authenticate_token(token.as_str()).unwrap();
    assert_eq!(p.id, "a");
    assert_eq!(p.role, Role::Admin);
    // Non-service roles see every field group.
    assert_eq!(p.field_groups.len(), FieldGroup::ALL.len());
    assert!(
        auth.authenticate_token(Token::generate().unwrap().as_str())
            .is_err()
    );
}

#[test]
fn auth_config_errors_are_typed() {
    use citydb_api::AuthConfigError as E;
    let h1 = Token::generate().unwrap().hash();
    let h2 = Token::generate().unwrap().hash();
    let one = |id: &str, role: &str, hash: &str, extra: &str| {
        format!(
            "[[principal]]\nid = \"{id}\"\nrole = \"{role}\"\ntoken_hash = \"{hash}\"\n{extra}\n"
        )
    };
    let parse = AuthConfig::from_toml_str;

    // Citizens are millions: they get signed citizen tokens, never a configured entry.
    assert!(matches!(
        parse(&one("c", "citizen", &h1, "")),
        Err(E::CitizenInConfig { id }) if id == "c"
    ));

    assert!(matches!(
        parse(&one("a", "mayor", &h1, "")),
        Err(E::UnknownRole { id, role }) if id == "a" && role == "mayor"
    ));
    assert!(matches!(
        parse(&one("a", "service", "sha256:00", "")),
        Err(E::BadHash { id, .. }) if id == "a"
    ));
    assert!(matches!(
        parse(&one("a", "service", "blake3:abc", "")),
        Err(E::BadHash { .. })
    ));
    // The token itself instead of its hash.
    assert!(matches!(
        parse(&one(
            "a",
            "service",
            Token::generate().unwrap().as_str(),
            ""
        )),
        Err(E::BadHash { .. })
    ));
    assert!(matches!(
        parse(&format!("{}{}", one("a", "service", &h1, ""), one("a", "steward", &h2, ""))),
        Err(E::DuplicateId(id)) if id == "a"
    ));
    assert!(matches!(
        parse(&format!("{}{}", one("a", "service", &h1, ""), one("b", "steward", &h1, ""))),
        Err(E::DuplicateHash { first, second }) if first == "a" && second == "b"
    ));
    assert!(matches!(
        parse(&one("a", "service", &h1, "field_groups = [\"health\"]")),
        Err(E::UnknownFieldGroup { group, .. }) if group == "health"
    ));
    assert!(matches!(
        parse(&one("a", "service", &h1, "token = \"cdb_x\"")),
        Err(E::Syntax(_))
    ));
    assert!(matches!(parse("[[principal]\n"), Err(E::Syntax(_))));
    assert!(matches!(
        parse(&one(" ", "service", &h1, "")),
        Err(E::EmptyId { index: 0 })
    ));
    assert!(matches!(
        AuthConfig::load("/nonexistent/citydb-auth.toml"),
        Err(E::Io { .. })
    ));

    // A service keeps exactly its groups.
    let config = parse(&one("a", "service", &h1, "field_groups = [\"land\"]")).unwrap();
    let p = &config.principals[0].principal;
    assert_eq!(
        p.field_groups.iter().copied().collect::<Vec<_>>(),
        vec![FieldGroup::Land]
    );
    assert!(parse("").unwrap().principals.is_empty());
}

#[test]
fn request_context_from_headers() {
    use axum_headers::*;
    let principal = citydb_api::Principal {
        id: "tax-office".into(),
        role: Role::Service,
        field_groups: [FieldGroup::Identity].into(),
        purposes: ["tax-registration".to_owned()].into(),
        citizen: None,
        issues_citizen_tokens: false,
    };
    let mut h = HeaderMap::new();
    h.insert("x-end-user", HeaderValue::from_static("fallback"));
    h.insert("x-road-userid", HeaderValue::from_static("EE-officer"));
    h.insert("x-case-id", HeaderValue::from_static("case-9"));
    h.insert("x-correlation-id", HeaderValue::from_static("not-a-uuid"));
    let ctx = RequestContext::from_headers(principal.clone(), &h).unwrap();
    assert_eq!(ctx.end_user.as_deref(), Some("EE-officer"));
    assert_eq!(ctx.case.as_deref(), Some("case-9"));
    assert_eq!(ctx.purpose, None);
    assert_eq!(ctx.correlation_id.get_version_num(), 7);
    // Purpose binding: a principal with purposes names one on every personal read.
    let err = ctx
        .require_personal_data_access(&[FieldGroup::Identity])
        .unwrap_err();
    assert_eq!(err.code().as_str(), "FORBIDDEN");
    assert_eq!(err.extensions_json()["field"], "purpose");
    h.insert("x-purpose", HeaderValue::from_static("tax-registration"));
    let ctx = RequestContext::from_headers(principal.clone(), &h).unwrap();
    assert!(
        ctx.require_personal_data_access(&[FieldGroup::Identity])
            .is_ok()
    );
    let err = ctx
        .require_personal_data_access(&[FieldGroup::Identity, FieldGroup::Family])
        .unwrap_err();
    assert_eq!(err.code().as_str(), "FORBIDDEN");
    assert_eq!(err.extensions_json()["field"], "family");
    assert!(ctx.require_role(&[Role::Steward]).is_err());
    assert!(ctx.require_role(&[Role::Service]).is_ok());

    let id = Uuid::now_v7();
    h.insert(
        "x-correlation-id",
        HeaderValue::from_str(&id.to_string()).unwrap(),
    );
    assert_eq!(
        RequestContext::from_headers(principal.clone(), &h)
            .unwrap()
            .correlation_id,
        id
    );

    h.insert(
        "x-case-id",
        HeaderValue::from_str(&"x".repeat(300)).unwrap(),
    );
    let err = RequestContext::from_headers(principal, &h).unwrap_err();
    assert_eq!(err.code().as_str(), "INVALID_INPUT");
}

mod axum_headers {
    pub use axum::http::{HeaderMap, HeaderValue};
}
