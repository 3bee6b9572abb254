//! The projector going on: waiting for a write, and events it cannot project.

use super::*;

#[tokio::test]
async fn wait_for_returns_once_a_write_is_projected() {
    let w = World::new();
    let p = w
        .projections("projections.db", ProjectionConfig::default())
        .await;
    assert_eq!(p.position(), 0);
    assert!(matches!(
        p.wait_for(0, Duration::from_millis(50)).await,
        Err(ProjectionError::Timeout {
            position: 0,
            projected: 0
        })
    ));
    for n in 1..=5u128 {
        let outcome = w
            .run(register_citizen(n, ("Phạm", "", "Hùng"), Sex::Male, 1970))
            .await;
        let last = outcome.last_position.expect("position");
        p.wait_for(last, WAIT).await.expect("projected");
        assert!(p.position() > last);
        // Read-your-writes: the record is there right after wait_for.
        assert!(p.citizen(cid(n)).await.expect("query").is_some());
    }
    // Stopped, the projector falls behind; started again, it catches up.
    assert!(p.stop().await);
    let outcome = w
        .run(register_citizen(6, ("Phạm", "", "Hùng"), Sex::Male, 1970))
        .await;
    let last = outcome.last_position.expect("position");
    assert!(p.wait_for(last, Duration::from_millis(100)).await.is_err());
    p.start().expect("start");
    p.wait_for(last, WAIT).await.expect("projected");
    assert!(p.citizen(cid(6)).await.expect("query").is_some());
}

#[tokio::test]
async fn unprojectable_events_are_recorded_and_the_projector_goes_on() {
    let w = World::new();
    w.run(register_citizen(1, ("Vũ", "", "Hải"), Sex::Male, 1990))
        .await;
    let stream = RecordId::from(cid(1)).to_string();
    // An event type this build does not know, a payload that does not fit its type, a
    // registration on a stream that has one, and a first event that is no registration.
    let bad = w
        .append_raw(
            &stream,
            &[
                ("CitizenTeleported", 1, json!({"to": "Mars"})),
                ("ResidenceChanged", 2, json!({"commune": "nope"})),
                ("ResidenceChanged", 9, json!({})),
            ],
        )
        .await;
    let orphan = "citizen-00000000-0000-0000-0000-00000000beef";
    w.append_raw(orphan, &[("CitizenDeceased", 1, json!({"date": "2020"}))])
        .await;
    // Good events after the bad ones still apply. (Appended raw: the test handler, like the
    // registry, cannot load a stream holding events it does not understand.)
    let moved = Event::ResidenceChanged {
        kind: ResidenceKind::Permanent,
        commune: unit("10507"),
        address: "Số 1 Lạch Tray".to_owned(),
        since: date("2015-01-01"),
    };
    let good = w
        .append_raw(
            &stream,
            &[(
                moved.event_type(),
                moved.schema_version(),
                moved.to_json().expect("json"),
            )],
        )
        .await;
    w.run(register_citizen(2, ("Vũ", "", "Hà"), Sex::Female, 1992))
        .await;

    let p = w
        .projections("projections.db", ProjectionConfig::default())
        .await;
    p.wait_for(w.head().await, WAIT).await.expect("not wedged");
    let failures = p.failures(None, 100).await.expect("failures");
    let first_bad = bad.first_position.expect("position");
    assert_eq!(
        failures.iter().map(|f| f.position).collect::<Vec<_>>(),
        vec![first_bad, first_bad + 1, first_bad + 2, first_bad + 3]
    );
    assert!(
        failures[0].reason.contains("unknown event type"),
        "{failures:?}"
    );
    assert!(failures[1].reason.contains("upcast"), "{failures:?}");
    assert!(failures[2].reason.contains("newer"), "{failures:?}");
    assert!(failures[3].reason.contains("registration"), "{failures:?}");
    assert_eq!(failures[3].stream_id, orphan);
    assert_eq!(
        p.failures(Some(first_bad + 1), 1).await.expect("failures")[0].position,
        first_bad + 2
    );

    let c1 = p.citizen(cid(1)).await.expect("query").expect("c1");
    assert_eq!(
        c1.state.permanent_residence.map(|r| r.commune),
        Some(unit("10507"))
    );
    assert_eq!(c1.version, 4, "failed events are consumed, not retried");
    assert_eq!(c1.last_position, good.first_position.expect("position"));
    assert!(p.citizen(cid(2)).await.expect("query").is_some());
    assert!(
        p.record(orphan.parse().expect("id"))
            .await
            .expect("query")
            .is_none()
    );
}
