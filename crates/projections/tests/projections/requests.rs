//! The correction-request read model: kept by the per-batch catch-up, equal after a rebuild
//! (the bulk path), and a corrupt request event recorded, not fatal.

use citydb_domain::correction_request::{Deadline, RequestEvent, RequestId, RequestStatus};
use uuid::Uuid;

use super::*;

fn request(n: u128) -> RequestId {
    RequestId(Uuid::from_u128(0xE000 + n))
}

fn submitted(n: u128, citizen: u128) -> RequestEvent {
    RequestEvent::CorrectionRequestSubmitted {
        request: request(n),
        citizen: cid(citizen),
        field: "birth_date".to_owned(),
        proposed_value: "1990-03-04".to_owned(),
        reason: "thiếu ngày sinh".to_owned(),
        evidence: vec!["GKS 12/1990".to_owned()],
        submitted: date("2026-12-01"),
        acknowledge_by: date("2026-12-03"),
        due_by: date("2026-12-11"),
    }
}

async fn append(w: &World, n: u128, events: &[RequestEvent]) {
    let raw: Vec<(&str, u32, serde_json::Value)> = events
        .iter()
        .map(|e| (e.event_type(), 1, serde_json::to_value(e).unwrap()))
        .collect();
    w.append_raw(&request(n).stream_id(), &raw).await;
}

#[tokio::test]
async fn requests_are_projected_filtered_and_rebuilt_alike() {
    let w = World::new();
    let p = w.manual("p.db").await;
    append(&w, 1, &[submitted(1, 1)]).await;
    append(
        &w,
        2,
        &[
            submitted(2, 2),
            RequestEvent::CorrectionRequestOverdue {
                deadline: Deadline::Acknowledge,
                due: date("2026-12-03"),
                on: date("2026-12-04"),
            },
        ],
    )
    .await;
    append(
        &w,
        3,
        &[
            submitted(3, 1),
            RequestEvent::CorrectionRequestAcknowledged {
                steward: "steward-1".to_owned(),
                on: date("2026-12-02"),
            },
            RequestEvent::CorrectionRequestResolved {
                citizen: cid(1),
                correction: corr(7),
                steward: "steward-1".to_owned(),
                on: date("2026-12-05"),
            },
        ],
    )
    .await;
    p.catch_up().await.unwrap();

    let all = p
        .correction_requests(RequestFilter::default(), None, 10)
        .await
        .unwrap();
    let ids: Vec<RequestId> = all.iter().map(|r| r.request.id).collect();
    assert_eq!(ids, [request(1), request(2), request(3)]);
    let overdue = p
        .correction_requests(
            RequestFilter {
                overdue: Some(true),
                ..RequestFilter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].request.id, request(2));
    assert_eq!(p.overdue_requests().await.unwrap(), 1);
    let mine = p
        .correction_requests(
            RequestFilter {
                citizen: Some(format!("citizen-{}", cid(1))),
                status: Some(RequestStatus::Resolved),
                ..RequestFilter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].version, 2);
    // Paging: after the first row's seq.
    let next = p
        .correction_requests(RequestFilter::default(), Some(all[0].seq), 1)
        .await
        .unwrap();
    assert_eq!(next[0].request.id, request(2));
    // Past deadline on 12 Dec: request 1 (both deadlines) and 2 (open); 3 is closed.
    let late = p
        .requests_past_deadline("2026-12-12".to_owned(), 10)
        .await
        .unwrap();
    let late: Vec<RequestId> = late.iter().map(|r| r.request.id).collect();
    assert_eq!(late, [request(1), request(2)]);
    assert!(
        p.requests_past_deadline("2026-12-03".to_owned(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let one = p
        .correction_request(&request(3).stream_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.request.status, RequestStatus::Resolved);

    // The same models after a rebuild (the bulk path) as from the per-batch catch-up.
    let before = p.digest().await.unwrap();
    p.rebuild().await.unwrap();
    p.catch_up().await.unwrap();
    assert_eq!(p.digest().await.unwrap(), before);
    assert_eq!(
        p.correction_requests(RequestFilter::default(), None, 10)
            .await
            .unwrap(),
        all
    );
}

#[tokio::test]
async fn an_event_that_cannot_be_folded_is_recorded_and_skipped() {
    let w = World::new();
    let p = w.manual("p.db").await;
    // A withdrawal with no submission before it.
    append(
        &w,
        1,
        &[RequestEvent::CorrectionRequestWithdrawn {
            on: date("2026-12-01"),
        }],
    )
    .await;
    append(&w, 2, &[submitted(2, 2)]).await;
    p.catch_up().await.unwrap();
    let failures = p.failures(None, 10).await.unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let listed = p
        .correction_requests(RequestFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].request.id, request(2));
}
