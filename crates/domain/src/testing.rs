//! Builders of valid ids, values and commands for tests, shared by every
//! crate's tests (enable the `testing` feature in `[dev-dependencies]`).
//!
//! Ids are derived from small numbers so a test reads `cid(1)`, `bid(2)`;
//! every builder returns a value the domain accepts (a PIN consistent with
//! sex and year, an enterprise code with its check digit, a current Hải
//! Phòng commune). Builders panic on malformed literals: their arguments are
//! test constants, never input.

use serde_json::Value;
use uuid::Uuid;

use crate::business::{Address, BusinessNames, RegisterBusiness};
use crate::citizen::{ChangeResidence, RegisterCitizen, RegistrationOrigin, ResidenceKind};
use crate::command::{ApproveCorrection, Command};
use crate::date::{Date, PartialDate};
use crate::ids::{
    AdminUnitCode, BusinessId, CheckDigit, CitizenId, CorrectionId, EnterpriseCode, ParcelId,
    ParcelKey, PersonalIdNumber, RecordId, Sex, check_digit,
};
use crate::name::PersonName;
use crate::parcel::{Holder, Holding, Mortgage, RegisterParcel};
use crate::quantity::{Share, Vnd};
use crate::stewardship::{Actor, FieldChange, LegalBasis, StewardRole};

/// The administrative unit every builder places things in unless told otherwise.
pub const HOME_UNIT: &str = "11311";

// --- actors -----------------------------------------------------------------

pub fn steward() -> Actor {
    Actor {
        id: "steward-lan".to_owned(),
        role: StewardRole::Steward,
    }
}

pub fn steward2() -> Actor {
    Actor {
        id: "steward-minh".to_owned(),
        role: StewardRole::Steward,
    }
}

pub fn supervisor() -> Actor {
    Actor {
        id: "supervisor-hoa".to_owned(),
        role: StewardRole::Supervisor,
    }
}

// --- ids and values -----------------------------------------------------------

pub fn cid(n: u128) -> CitizenId {
    CitizenId(Uuid::from_u128(0xC000 + n))
}
pub fn bid(n: u128) -> BusinessId {
    BusinessId(Uuid::from_u128(0xB000 + n))
}
pub fn pid(n: u128) -> ParcelId {
    ParcelId(Uuid::from_u128(0xA000 + n))
}
pub fn corr(n: u128) -> CorrectionId {
    CorrectionId(Uuid::from_u128(0xD000 + n))
}
pub fn date(s: &str) -> Date {
    s.parse().expect("date literal")
}
pub fn unit(s: &str) -> AdminUnitCode {
    s.parse().expect("unit code literal")
}
pub fn basis() -> LegalBasis {
    LegalBasis {
        document_number: "123/QĐ-UBND".to_owned(),
        document_date: date("2025-08-01"),
    }
}

/// A valid Hải Phòng PIN encoding `sex` and `year`.
pub fn pin(serial: u32, sex: Sex, year: u16) -> PersonalIdNumber {
    let g = (year / 100 - 19) * 2 + u16::from(sex == Sex::Female);
    format!("031{g}{:02}{serial:06}", year % 100)
        .parse()
        .expect("pin")
}

/// A valid (strict) Hải Phòng enterprise code derived from `n`.
pub fn enterprise(n: u32) -> EnterpriseCode {
    (n..)
        .find_map(|m| {
            let nine: String = format!("02{:07}", m + 1);
            let digits: [u8; 9] = nine
                .bytes()
                .map(|b| b - b'0')
                .collect::<Vec<_>>()
                .try_into()
                .expect("nine digits");
            match check_digit(&digits) {
                CheckDigit::Digit(d) => Some(format!("{nine}{d}").parse().expect("code")),
                CheckDigit::None => None,
            }
        })
        .expect("some code")
}

/// A parcel key in [`HOME_UNIT`].
pub fn pkey(sheet: u32, number: u32) -> ParcelKey {
    pkey_in(HOME_UNIT, sheet, number)
}

/// A parcel key in administrative unit `commune` (as both the unit and its 2025 predecessor).
pub fn pkey_in(commune: &str, sheet: u32, number: u32) -> ParcelKey {
    ParcelKey::new(unit(commune), unit(commune), sheet, number).expect("parcel key")
}

pub fn whole(holder: Holder) -> Vec<Holding> {
    vec![Holding {
        holder,
        share: Share::WHOLE,
    }]
}

/// Holdings with the given shares (`"1/2"`), in order.
pub fn shares(holders: &[(Holder, &str)]) -> Vec<Holding> {
    holders
        .iter()
        .map(|(holder, share)| Holding {
            holder: *holder,
            share: share.parse().expect("share"),
        })
        .collect()
}

pub fn mortgage(contract: &str, creditor: BusinessId) -> Mortgage {
    Mortgage {
        contract_number: contract.to_owned(),
        creditor,
        amount: Vnd(1_000_000_000),
        registered_on: date("2025-01-10"),
    }
}

pub fn fc(field: &str, old: Value, new: Value) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        old,
        new,
    }
}

pub fn names(vi: &str) -> BusinessNames {
    BusinessNames {
        vietnamese: vi.to_owned(),
        english: None,
        abbreviated: None,
    }
}

pub fn office() -> Address {
    Address {
        commune: unit(HOME_UNIT),
        street: "1 Điện Biên Phủ".to_owned(),
    }
}

// --- commands -------------------------------------------------------------------

/// Citizen `n`, named "Nguyễn Thị Hòa {n}", born in [`HOME_UNIT`].
pub fn register_citizen(n: u128, sex: Sex, year: u16) -> RegisterCitizen {
    register_named_citizen(n, ("Nguyễn", "Thị", &format!("Hòa {n}")), sex, year)
}

/// Citizen `n` with the given (family, middle, given) name.
pub fn register_named_citizen(
    n: u128,
    (family, middle, given): (&str, &str, &str),
    sex: Sex,
    year: u16,
) -> RegisterCitizen {
    RegisterCitizen {
        citizen: cid(n),
        pin: pin(u32::try_from(n).expect("small n"), sex, year),
        name: PersonName::new(family, middle, given).expect("name"),
        sex,
        birth_date: PartialDate::year_only(u32::from(year)).expect("year"),
        birth_place: unit(HOME_UNIT),
        father: None,
        mother: None,
        origin: RegistrationOrigin::Registration,
    }
}

/// The `CitizenRegistered` event `register` records (for tests that build streams by hand).
pub fn citizen_registered(register: RegisterCitizen) -> crate::event::Event {
    crate::event::Event::CitizenRegistered {
        citizen: register.citizen,
        pin: register.pin,
        name: register.name,
        sex: register.sex,
        birth_date: register.birth_date,
        birth_place: register.birth_place,
        father: register.father,
        mother: register.mother,
        origin: register.origin,
    }
}

pub fn register_business(n: u128, code: EnterpriseCode, reps: Vec<CitizenId>) -> RegisterBusiness {
    RegisterBusiness {
        business: bid(n),
        code,
        names: names(&format!("Công ty TNHH Hải Cảng {n}")),
        head_office: office(),
        legal_representatives: reps,
        charter_capital: Vnd(5_000_000_000),
        business_lines: vec!["5210".parse().expect("vsic")],
        registration_date: date("2024-03-01"),
        origin: RegistrationOrigin::Registration,
    }
}

/// Parcel `n` (land use ODT) of `area` square metres.
pub fn register_parcel(
    n: u128,
    key: ParcelKey,
    area: &str,
    holders: Vec<Holding>,
) -> RegisterParcel {
    RegisterParcel {
        parcel: pid(n),
        key,
        national_parcel_id: None,
        area: area.parse().expect("area"),
        land_use: vec!["ODT".parse().expect("land use")],
        address: "Số 5 Lạch Tray".to_owned(),
        geometry: None,
        holders,
    }
}

/// A move of `citizen`'s permanent residence.
pub fn residence(citizen: CitizenId, commune: &str, address: &str, since: &str) -> Command {
    Command::ChangeResidence(ChangeResidence {
        citizen,
        kind: ResidenceKind::Permanent,
        commune: unit(commune),
        address: address.to_owned(),
        since: date(since),
    })
}

/// Approval of correction `n` on `record`, by a supervisor other than the proposer, or (with
/// `by_proposer`) by the proposing steward acting as supervisor — which four-eyes refuses.
pub fn approval(record: RecordId, n: u128, by_proposer: bool) -> (Command, Actor) {
    let actor = if by_proposer {
        Actor {
            id: steward().id,
            role: StewardRole::Supervisor,
        }
    } else {
        supervisor()
    };
    let approve = ApproveCorrection {
        record,
        correction: corr(n),
    };
    (Command::ApproveCorrection(approve), actor)
}
