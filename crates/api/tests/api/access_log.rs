//! Access log: reads are recorded, and fail closed when they cannot be.

use super::*;

#[tokio::test]
async fn reads_are_access_logged_and_chain_verifies() {
    let s = start().await;
    let a = Uuid::now_v7();
    let b = Uuid::now_v7();
    let query = format!(r#"{{ x: citizen(id: "{a}") {{ name }} y: citizen(id: "{b}") {{ id }} }}"#);
    let (status, body) = send(
        s.post(Some(&s.tokens.tax), json!({ "query": query }))
            .header(OFFICER.0, OFFICER.1)
            .header(CASE.0, CASE.1)
            .header("X-Purpose", "tax-registration"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["x"]["name"], "Nguyễn Văn An");

    let entries = s.access.for_citizen(a, 10, None).await.unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e.read.principal, "tax-office");
    assert_eq!(e.read.role, Role::Service);
    assert_eq!(e.read.end_user.as_deref(), Some(OFFICER.1));
    assert_eq!(e.read.case.as_deref(), Some(CASE.1));
    assert_eq!(e.read.purpose.as_deref(), Some("tax-registration"));
    assert_eq!(e.read.field_groups, vec![FieldGroup::Identity]);
    assert_eq!(e.read.operation, "citizen");
    assert_eq!(e.hash.len(), 64);

    // A second read by an auditor: newest first, paging by version.
    let (_, body) = s
        .gql(
            Some(&s.tokens.auditor),
            &format!(r#"{{ citizen(id: "{a}") {{ name }} }}"#),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let entries = s.access.for_citizen(a, 10, None).await.unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].read.principal, "auditor-minh");
    assert_eq!(entries[0].version, 1);
    let older = s
        .access
        .for_citizen(a, 10, Some(entries[0].version))
        .await
        .unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].read.principal, "tax-office");
    assert!(
        s.access
            .for_citizen(a, 10, Some(0))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.access.for_citizen(b, 10, None).await.unwrap().len(), 1);

    let report = s.access.verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    // This test schema records each field's read on its own: three entries.
    assert_eq!(report.events, 3);
    assert_eq!(entries[0].position, 2);
    assert!(older[0].position < 2);
}

#[tokio::test]
async fn reads_fail_closed_when_the_access_log_cannot_record() {
    let s = start().await;
    s.flaky.fail.store(true, Ordering::SeqCst);
    let (status, body) = s
        .gql(
            Some(&s.tokens.steward),
            &format!(r#"{{ citizen(id: "{}") {{ name }} }}"#, Uuid::now_v7()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), "INTERNAL");
    assert!(body["data"].is_null(), "data leaked: {body}");
    assert!(!body.to_string().contains("sdb1"), "detail leaked: {body}");
}
