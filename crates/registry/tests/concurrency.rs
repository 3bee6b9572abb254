//! Idempotency, natural-key uniqueness, retries and cross-record consistency under concurrency,
//! on a real SQLite log.

mod common;

use std::sync::Arc;

use tokio::sync::Barrier;

use citydb_domain::citizen::*;
use citydb_domain::*;
use citydb_log::EventLog;
use citydb_registry::{CommandRequest, Registry, RegistryError};
use common::*;
use uuid::Uuid;

fn request(command: Command) -> CommandRequest {
    CommandRequest::new(Uuid::now_v7(), command, steward())
}

// --- idempotency by command id -----------------------------------------------------------

#[tokio::test]
async fn a_command_id_executes_once_when_sent_twice() {
    let env = open();
    let req = request(Command::RegisterCitizen(register_citizen(
        1,
        Sex::Female,
        1990,
    )));
    let first = env.registry.execute(req.clone()).await.unwrap();
    let head = env.head().await;
    let second = env.registry.execute(req.clone()).await.unwrap();
    assert!(!first.already_executed);
    assert!(second.already_executed);
    assert_eq!(
        second,
        citydb_registry::Executed {
            already_executed: true,
            ..first.clone()
        }
    );
    assert_eq!(env.head().await, head, "the re-send wrote nothing");
    assert_eq!(
        env.registry.command_result(req.command_id).await.unwrap(),
        Some(second)
    );
    // A refusal writes nothing, so its id has no result and stays usable.
    let refused = request(Command::RegisterCitizen(register_citizen(
        1,
        Sex::Female,
        1990,
    )));
    let err = env.registry.execute(refused.clone()).await.unwrap_err();
    assert_eq!(err.code(), "RECORD_EXISTS");
    assert_eq!(
        env.registry
            .command_result(refused.command_id)
            .await
            .unwrap(),
        None
    );
    // The same id for another command is refused, and writes nothing.
    let reused = CommandRequest {
        command: residence(cid(1), "10507", "1 Lê Lợi", "2024-01-01"),
        ..req
    };
    assert!(matches!(
        env.registry.execute(reused).await,
        Err(RegistryError::CommandIdReused { .. })
    ));
    assert_eq!(env.head().await, head);
    env.check_replay().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_id_executes_once_when_sent_concurrently() {
    let env = open();
    env.ok(Command::RegisterCitizen(register_citizen(
        1,
        Sex::Male,
        1980,
    )))
    .await;
    for round in 0..20u32 {
        // Alternately a command whose re-execution would be refused (RECORD_EXISTS) and one
        // that would apply twice: both must execute exactly once and answer both senders alike.
        let n = u128::from(round);
        let (req, writes) = if round % 2 == 0 {
            let register = register_citizen(10 + n, Sex::Female, 1990);
            (request(Command::RegisterCitizen(register)), 3)
        } else {
            let moving = residence(cid(1), "10507", &format!("{round} Trần Phú"), "2024-01-01");
            (request(moving), 2)
        };
        let head = env.head().await.map(|h| h.position);
        let start = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let registry = env.registry.clone();
                let req = req.clone();
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    registry.execute(req).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap().unwrap());
        }
        assert_eq!(
            results.iter().filter(|r| !r.already_executed).count(),
            1,
            "exactly one execution: {results:?}"
        );
        let strip = |r: &citydb_registry::Executed| citydb_registry::Executed {
            already_executed: false,
            ..r.clone()
        };
        assert_eq!(strip(&results[0]), strip(&results[1]));
        let now = env.head().await.map(|h| h.position);
        assert_eq!(now, head.map(|p| p + writes), "round {round}");
    }
    assert_eq!(env.version(cid(1)).await, 10);
    env.check_replay().await;
}

/// The same command id executes elsewhere between this execution's marker check and its loads:
/// the decision here (RECORD_EXISTS) must not be returned; the recorded result is.
#[tokio::test]
async fn a_refusal_caused_by_the_same_command_id_answers_with_its_result() {
    let env = open();
    let req = request(Command::RegisterCitizen(register_citizen(
        1,
        Sex::Female,
        1990,
    )));
    let citizen_stream = citydb_registry::record_stream(cid(1).into()).unwrap();
    let interleave = Arc::new(Interleave::on_read(env.log.clone(), move |s| {
        *s == citizen_stream
    }));
    let other = env.registry.clone();
    let same = req.clone();
    interleave.before_append(move || async move {
        other.execute(same).await.expect("the first execution");
    });
    let racing = Registry::new(interleave.clone() as Arc<dyn EventLog>);
    let done = racing
        .execute(req.clone())
        .await
        .expect("answered, not refused");
    assert!(done.already_executed);
    assert_eq!(
        Some(done),
        env.registry.command_result(req.command_id).await.unwrap()
    );
    assert_eq!(env.check_replay().await, 3);
}

// --- natural keys ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pin_one_citizen_under_concurrency() {
    let env = open();
    let shared_pin = pin(1, Sex::Female, 1990);
    let start = Arc::new(Barrier::new(8));
    let tasks: Vec<_> = (0..8u128)
        .map(|n| {
            let registry = env.registry.clone();
            let start = start.clone();
            let mut cmd = register_citizen(100 + n, Sex::Female, 1990);
            cmd.pin = shared_pin;
            tokio::spawn(async move {
                start.wait().await;
                registry
                    .execute(request(Command::RegisterCitizen(cmd)))
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (n, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(done) => winners.push((n as u128, done)),
            Err(e) => assert_eq!(e.code(), "DUPLICATE_KEY", "{e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let winner = cid(100 + winners[0].0);
    assert_eq!(
        env.registry
            .load_key(&NaturalKey::Pin(shared_pin))
            .await
            .unwrap(),
        Some(winner.into())
    );
    for n in 0..8u128 {
        let loaded = env.registry.load_record(cid(100 + n).into()).await.unwrap();
        assert_eq!(loaded.is_some(), cid(100 + n) == winner);
    }
    assert_eq!(env.check_replay().await, 3, "key, record, marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_enterprise_code_one_business_under_concurrency() {
    let env = open();
    env.ok(Command::RegisterCitizen(register_citizen(
        1,
        Sex::Male,
        1970,
    )))
    .await;
    let code = enterprise(1);
    let start = Arc::new(Barrier::new(8));
    let tasks: Vec<_> = (0..8u128)
        .map(|n| {
            let registry = env.registry.clone();
            let start = start.clone();
            let cmd = register_business(10 + n, code, vec![cid(1)]);
            tokio::spawn(async move {
                start.wait().await;
                registry
                    .execute(request(Command::RegisterBusiness(cmd)))
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => winners += 1,
            Err(e) => assert_eq!(e.code(), "DUPLICATE_KEY", "{e:?}"),
        }
    }
    assert_eq!(winners, 1);
    let holder = env
        .registry
        .load_key(&NaturalKey::Enterprise(code))
        .await
        .unwrap()
        .expect("held");
    assert!(matches!(holder, RecordId::Business(_)));
    env.check_replay().await;
}

/// The PIN race made deterministic: another registration claims the PIN between this one's
/// load and append; the retry reloads the key stream and refuses.
#[tokio::test]
async fn a_pin_claimed_meanwhile_is_refused_on_retry() {
    let env = open();
    let shared_pin = pin(1, Sex::Male, 1990);
    let interleave = Arc::new(Interleave::new(env.log.clone(), |a| {
        writes(a, "CitizenRegistered")
    }));
    let other = env.registry.clone();
    interleave.before_append(move || async move {
        let mut first = register_citizen(1, Sex::Male, 1990);
        first.pin = shared_pin;
        other
            .execute(request(Command::RegisterCitizen(first)))
            .await
            .expect("the competitor claims the PIN");
    });
    let racing = Registry::new(interleave.clone() as Arc<dyn EventLog>);
    let mut second = register_citizen(2, Sex::Male, 1990);
    second.pin = shared_pin;
    let head = env.head().await;
    let err = racing
        .execute(request(Command::RegisterCitizen(second)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "DUPLICATE_KEY", "{err:?}");
    assert_eq!(
        err.domain(),
        Some(&DomainError::DuplicateKey {
            key: NaturalKey::Pin(shared_pin),
            holder: cid(1).into(),
        })
    );
    // Only the competitor's append (key, record, marker) landed.
    assert_eq!(
        env.head().await.map(|h| h.position),
        head.map_or(Some(2), |h| Some(h.position + 3))
    );
    assert_eq!(env.registry.load_record(cid(2).into()).await.unwrap(), None);
    env.check_replay().await;
}

// --- retries ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stewards_moving_one_citizen_both_succeed() {
    let env = open();
    env.ok(Command::RegisterCitizen(register_citizen(
        1,
        Sex::Male,
        1980,
    )))
    .await;
    for round in 0..10u32 {
        let before = env.version(cid(1)).await;
        let start = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = [steward(), steward2()]
            .into_iter()
            .enumerate()
            .map(|(i, actor)| {
                let registry = env.registry.clone();
                let start = start.clone();
                let cmd = residence(
                    cid(1),
                    "10507",
                    &format!("{round}.{i} Lạch Tray"),
                    "2024-01-01",
                );
                tokio::spawn(async move {
                    start.wait().await;
                    registry
                        .execute(CommandRequest::new(Uuid::now_v7(), cmd, actor))
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().expect("both succeed after a retry");
        }
        assert_eq!(env.version(cid(1)).await, before + 2);
    }
    env.check_replay().await;
}

/// With an expected version, two stewards who read the same version cannot both write: the
/// second is refused with STALE_VERSION instead of being retried over the first one's change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expected_version_makes_the_loser_fail_instead_of_retrying() {
    let env = open();
    env.ok(Command::RegisterCitizen(register_citizen(
        1,
        Sex::Male,
        1980,
    )))
    .await;
    for round in 0..10u32 {
        let seen = env.version(cid(1)).await;
        let start = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = [steward(), steward2()]
            .into_iter()
            .enumerate()
            .map(|(i, actor)| {
                let registry = env.registry.clone();
                let start = start.clone();
                let cmd = residence(
                    cid(1),
                    "10507",
                    &format!("{round}.{i} Lạch Tray"),
                    "2024-01-01",
                );
                tokio::spawn(async move {
                    let mut request = CommandRequest::new(Uuid::now_v7(), cmd, actor);
                    request.expected = Some(citydb_registry::ExpectedRecordVersion {
                        record: cid(1).into(),
                        version: seen,
                    });
                    start.wait().await;
                    registry.execute(request).await
                })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) => assert_eq!(e.code(), "STALE_VERSION", "{e}"),
            }
        }
        assert_eq!(ok, 1, "exactly one of two writers at the same version wins");
        assert_eq!(env.version(cid(1)).await, seen + 1);
    }
    env.check_replay().await;
}

/// The same race made deterministic: the second steward's change lands between the first
/// one's load and append.
#[tokio::test]
async fn a_lost_race_is_reloaded_and_retried() {
    let env = open();
    env.ok(Command::RegisterCitizen(register_citizen(
        1,
        Sex::Male,
        1980,
    )))
    .await;
    let interleave = Arc::new(Interleave::new(env.log.clone(), |a| {
        writes(a, "ResidenceChanged")
    }));
    let other = env.registry.clone();
    interleave.before_append(move || async move {
        other
            .execute(CommandRequest::new(
                Uuid::now_v7(),
                residence(cid(1), "10507", "2 Cầu Đất", "2024-01-01"),
                steward2(),
            ))
            .await
            .expect("the competing change commits");
    });
    let racing = Registry::new(interleave.clone() as Arc<dyn EventLog>);
    let done = racing
        .execute(request(residence(
            cid(1),
            "10507",
            "1 Cầu Đất",
            "2024-02-01",
        )))
        .await
        .unwrap();
    // Registered at 0, the competitor at 1, ours (decided again on version 1) at 2.
    assert_eq!(done.version_of(cid(1).into()), Some(2));
    let c = env.citizen(cid(1)).await;
    assert_eq!(
        c.permanent_residence.map(|r| r.address),
        Some("1 Cầu Đất".to_owned())
    );
    env.check_replay().await;
}

#[tokio::test]
async fn retries_are_bounded() {
    let env = open();
    env.ok(Command::RegisterCitizen(register_citizen(
        1,
        Sex::Male,
        1980,
    )))
    .await;
    let interleave = Arc::new(Interleave::new(env.log.clone(), |a| {
        writes(a, "CorrectionProposed")
    }));
    // Every attempt loses: a competitor moves the citizen just before each append.
    for i in 0..3u32 {
        let other = env.registry.clone();
        interleave.before_append(move || async move {
            other
                .execute(request(residence(
                    cid(1),
                    "10507",
                    &format!("{i} Cầu Đất"),
                    "2024-01-01",
                )))
                .await
                .expect("competitor");
        });
    }
    let racing = Registry::new(interleave.clone() as Arc<dyn EventLog>).with_max_retries(2);
    let rename = Command::ChangeCitizenName(ChangeCitizenName {
        citizen: cid(1),
        name: PersonName::new("Trần", "Văn", "Bảo").unwrap(),
        legal_basis: basis(),
        correction: None,
    });
    let req = request(rename);
    match racing.execute(req.clone()).await {
        Err(RegistryError::Conflict { stream, attempts }) => {
            assert_eq!(attempts, 3);
            assert_eq!(stream.as_str(), RecordId::from(cid(1)).to_string());
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(env.version(cid(1)).await, 3, "only the competitors wrote");
    // The same id goes through once the contention is over.
    let done = racing.execute(req).await.unwrap();
    assert_eq!(done.version_of(cid(1).into()), Some(4));
    env.check_replay().await;
}

// --- cross-record consistency ---------------------------------------------------------------

/// A representative's death lands between the business registration's load and append: the
/// registration must be decided again and refused.
#[tokio::test]
async fn a_representative_dying_meanwhile_blocks_the_registration() {
    let env = open();
    env.ok(Command::RegisterCitizen(register_citizen(
        1,
        Sex::Male,
        1950,
    )))
    .await;
    let interleave = Arc::new(Interleave::new(env.log.clone(), |a| {
        writes(a, "BusinessRegistered")
    }));
    let other = env.registry.clone();
    interleave.before_append(move || async move {
        other
            .execute(request(Command::RecordDeath(RecordDeath {
                citizen: cid(1),
                date: "2025-01".parse().unwrap(),
            })))
            .await
            .expect("death recorded");
    });
    let racing = Registry::new(interleave.clone() as Arc<dyn EventLog>);
    let err = racing
        .execute(request(Command::RegisterBusiness(register_business(
            1,
            enterprise(1),
            vec![cid(1)],
        ))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "DECEASED_REPRESENTATIVE", "{err:?}");
    assert_eq!(env.registry.load_record(bid(1).into()).await.unwrap(), None);
    assert_eq!(
        env.registry
            .load_key(&NaturalKey::Enterprise(enterprise(1)))
            .await
            .unwrap(),
        None
    );
    env.check_replay().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_a_business_with_a_deceased_representative() {
    let env = open();
    let rounds = 24u32;
    for round in 0..rounds {
        let n = u128::from(round);
        env.ok(Command::RegisterCitizen(register_citizen(
            n,
            Sex::Male,
            1950,
        )))
        .await;
        let start = Arc::new(Barrier::new(2));
        let registry = env.registry.clone();
        let go = start.clone();
        let register = tokio::spawn(async move {
            go.wait().await;
            registry
                .execute(request(Command::RegisterBusiness(register_business(
                    n,
                    enterprise(round * 3),
                    vec![cid(n)],
                ))))
                .await
        });
        let registry = env.registry.clone();
        let go = start.clone();
        let die = tokio::spawn(async move {
            go.wait().await;
            registry
                .execute(request(Command::RecordDeath(RecordDeath {
                    citizen: cid(n),
                    date: "2025-01".parse().unwrap(),
                })))
                .await
        });
        let registered = register.await.unwrap();
        let died = die.await.unwrap().expect("a death is always recorded");
        match registered {
            // Committed first, while the representative was alive.
            Ok(done) => assert!(
                done.last_position < died.first_position,
                "round {round}: registration {done:?} after death {died:?}"
            ),
            Err(e) => assert_eq!(e.code(), "DECEASED_REPRESENTATIVE", "round {round}: {e:?}"),
        }
    }
    env.check_replay().await;
}
