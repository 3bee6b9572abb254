//! The read models against an event log (in memory) filled through `decide`.

mod bulk;
mod children;
#[path = "../common/mod.rs"]
mod common;
mod progress;
mod queries;
mod rebuild;
mod redaction;
mod requests;
mod residence_starts;
mod search;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use citydb_domain::business::{ChangeLegalRepresentatives, DissolveBusiness, RenameBusiness};
use citydb_domain::citizen::{MergeCitizens, RecordDeath, ResidenceKind};
use citydb_domain::parcel::{Holder, RetireParcel, TransferKind, TransferRights};
use citydb_domain::redaction::{LiftRestriction, RestrictRecord};
use citydb_domain::*;
use citydb_projections::*;

use common::*;

const WAIT: Duration = Duration::from_secs(10);

/// Citizen `n` moves to "Số n Lạch Tray" in `commune`.
fn move_to(n: u128, commune: &str, since: &str) -> Command {
    residence(cid(n), commune, &format!("Số {n} Lạch Tray"), since)
}

/// A small city: people, businesses with representatives and branches, parcels with holders,
/// and a few lifecycle events (moves, a death, a merge, a transfer, a dissolution).
async fn small_city(w: &World) {
    w.run(register_citizen(
        1,
        ("Nguyễn", "Văn", "Hoà"),
        Sex::Male,
        1980,
    ))
    .await;
    w.run(register_citizen(
        2,
        ("Trần", "Thị", "Lan"),
        Sex::Female,
        1985,
    ))
    .await;
    w.run(register_citizen(3, ("Lê", "", "Minh"), Sex::Male, 1950))
        .await;
    w.run(register_citizen(4, ("Lê", "", "Minh"), Sex::Male, 1950))
        .await;
    w.run(move_to(1, "11311", "2010-01-01")).await;
    w.run(move_to(2, "10507", "2012-01-01")).await;
    w.run(move_to(1, "10507", "2020-01-01")).await;
    w.run(Command::RecordDeath(RecordDeath {
        citizen: cid(3),
        date: "2024-02-03".parse().expect("date"),
    }))
    .await;
    w.run(Command::MergeCitizens(MergeCitizens {
        survivor: cid(3),
        duplicate: cid(4),
        reason: "two records of one person".to_owned(),
        legal_basis: basis(),
    }))
    .await;
    w.run(register_business(
        1,
        "Công ty TNHH Hải Cảng",
        "11311",
        vec![cid(1)],
    ))
    .await;
    w.run(register_business(
        2,
        "Công ty Cổ phần Đồ Sơn",
        "10507",
        vec![cid(2), cid(1)],
    ))
    .await;
    w.run(register_branch(3, 1, 1, vec![cid(2)])).await;
    w.run(register_branch(4, 1, 2, vec![cid(2)])).await;
    w.run(register_parcel(
        1,
        pkey_in("11311", 12, 345),
        "ODT",
        halves(Holder::Citizen(cid(1)), Holder::Business(bid(1))),
    ))
    .await;
    w.run(register_parcel(
        2,
        pkey_in("10507", 3, 7),
        "LUC",
        whole(Holder::Citizen(cid(2))),
    ))
    .await;
    w.run(register_parcel(
        3,
        pkey_in("11311", 12, 346),
        "ODT",
        whole(Holder::Citizen(cid(2))),
    ))
    .await;
    w.run(Command::TransferRights(TransferRights {
        parcel: pid(3),
        kind: TransferKind::Sale,
        holders: whole(Holder::Business(bid(2))),
        date: date("2025-03-01"),
        release_mortgages: vec![],
    }))
    .await;
    w.run(Command::ChangeLegalRepresentatives(
        ChangeLegalRepresentatives {
            business: bid(2),
            legal_representatives: vec![cid(2)],
            date: date("2025-04-01"),
        },
    ))
    .await;
    w.run(Command::RetireParcel(RetireParcel {
        parcel: pid(2),
        date: date("2025-05-01"),
        reason: "thu hồi đất".to_owned(),
    }))
    .await;
    w.run(Command::DissolveBusiness(DissolveBusiness {
        business: bid(4),
        on: date("2025-06-01"),
    }))
    .await;
    // A pending correction: the state's `corrections` map must survive the JSON round trip.
    w.run(Command::ProposeCorrection(command::ProposeCorrection {
        record: cid(2).into(),
        correction: CorrectionId(uuid::Uuid::from_u128(0xD001)),
        changes: vec![FieldChange {
            field: "name.given".to_owned(),
            old: json!("Lan"),
            new: json!("Lân"),
        }],
        reason: "typo in the birth register".to_owned(),
        legal_basis: basis(),
    }))
    .await;
}

fn ids<T>(page: &Page<Versioned<T>>, id: impl Fn(&T) -> RecordId) -> Vec<RecordId> {
    page.edges.iter().map(|e| id(&e.node.state)).collect()
}

fn citizen_ids(page: &Page<Versioned<citizen::Citizen>>) -> Vec<CitizenId> {
    page.edges.iter().map(|e| e.node.state.id).collect()
}
