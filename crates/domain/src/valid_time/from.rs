//! From when one event's fact holds ([`valid_from`]) and the day an event was recorded in
//! Vietnam ([`recorded_on`]); see the module documentation of `valid_time`.

use serde::Serialize;

use crate::date::{Date, PartialDate, civil_from_days};
use crate::event::Event;
use crate::ids::CorrectionId;

/// Vietnam's offset from UTC (no daylight saving): a day is recorded in local time.
const VIETNAM_OFFSET_MICROS: i64 = 7 * 3_600 * 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

/// From when an event's fact holds, and on what basis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum ValidFrom {
    /// The event's data states it, in `field`.
    Stated {
        date: PartialDate,
        field: &'static str,
    },
    /// The command stated it: `effective_at` in the metadata.
    Effective { date: Date },
    /// Nothing stated: the day it was recorded, in Vietnam's time zone.
    Recorded { date: Date },
    /// A correction of wrongly recorded data: the corrected value held whenever the value it
    /// replaces was recorded to hold.
    FixesPast,
    /// An approval: from when its proposal says (a `from` date, or it fixes the past).
    AsProposed { correction: CorrectionId },
    /// Not a fact about the record's subject; only the recorded axis applies.
    NotAFact,
}

impl ValidFrom {
    /// The date, when this basis names one.
    pub fn date(&self) -> Option<PartialDate> {
        match self {
            Self::Stated { date, .. } => Some(*date),
            Self::Effective { date } | Self::Recorded { date } => Some(PartialDate::from(*date)),
            Self::FixesPast | Self::AsProposed { .. } | Self::NotAFact => None,
        }
    }
}

/// The day `recorded_at` (µs since the Unix epoch, UTC) falls on in Vietnam.
pub fn recorded_on(recorded_at_micros: i64) -> Date {
    let days = (recorded_at_micros + VIETNAM_OFFSET_MICROS).div_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    // civil_from_days of any i64 microsecond count is a valid calendar date; the fallback is
    // unreachable and keeps this total.
    Date::new(y as u32, m as u32, d as u32).unwrap_or(Date::trusted(1970, 1, 1))
}

/// From when `event`'s fact holds: its own date, else the metadata's `effective_at`, else the
/// day it was recorded (see the module documentation).
pub fn valid_from(event: &Event, effective_at: Option<Date>, recorded: Date) -> ValidFrom {
    use Event::*;
    let stated = |date: PartialDate, field: &'static str| ValidFrom::Stated { date, field };
    let day = |date: &Date, field: &'static str| stated(PartialDate::from(*date), field);
    let unstated = || match effective_at {
        Some(date) => ValidFrom::Effective { date },
        None => ValidFrom::Recorded { date: recorded },
    };
    match event {
        KeyClaimed { .. } | KeyReleased { .. } => ValidFrom::NotAFact,
        CitizenRegistered { birth_date, .. } => stated(*birth_date, "birth_date"),
        ResidenceChanged { since, .. } => day(since, "since"),
        MarriageRegistered { date, .. } | DivorceRegistered { date, .. } => day(date, "date"),
        SpouseDeceased { date, .. } | CitizenDeceased { date } => stated(*date, "date"),
        IdentityCardIssued { issue_date, .. } => day(issue_date, "issue_date"),
        CitizenNameChanged { .. } | ParentsSet { .. } | MergedInto { .. } | Absorbed { .. } => {
            unstated()
        }
        BusinessRegistered {
            registration_date, ..
        } => day(registration_date, "registration_date"),
        BranchAdded { .. } => unstated(),
        BusinessRenamed { date, .. }
        | HeadOfficeMoved { date, .. }
        | LegalRepresentativesChanged { date, .. }
        | CharterCapitalChanged { date, .. }
        | BusinessLinesChanged { date, .. } => day(date, "date"),
        BusinessSuspended { from, .. } => day(from, "from"),
        BusinessResumed { on } | BusinessDissolved { on } => day(on, "on"),
        ParcelRegistered { .. } => unstated(),
        RightsTransferred { date, .. }
        | LandUseChanged { date, .. }
        | CertificateRevoked { date, .. }
        | MortgageReleased { date, .. }
        | ParcelSplit { date, .. }
        | ParcelMergedInto { date, .. }
        | ParcelRetired { date, .. } => day(date, "date"),
        CertificateIssued { certificate } => day(&certificate.issue_date, "certificate.issue_date"),
        MortgageRegistered { mortgage } => day(&mortgage.registered_on, "mortgage.registered_on"),
        // A correction or proposal with `effective_at` changes from that date; without, it
        // fixes the past. A proposal's basis is what its approval will hold from.
        RecordCorrected { .. } | CorrectionProposed { .. } => match effective_at {
            Some(date) => ValidFrom::Effective { date },
            None => ValidFrom::FixesPast,
        },
        CorrectionApproved { correction, .. } => ValidFrom::AsProposed {
            correction: *correction,
        },
        CorrectionRejected { .. }
        | CorrectionWithdrawn { .. }
        | RedactionProposed { .. }
        | RedactionApproved { .. }
        | RedactionRejected { .. }
        | RecordRestricted { .. }
        | RestrictionLifted { .. } => ValidFrom::NotAFact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::citizen::state::ResidenceKind;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn the_recorded_day_is_vietnamese() {
        // 2026-11-30T17:00:00Z is already 1 December in Hải Phòng.
        let micros = 1_796_058_000_000_000;
        assert_eq!(recorded_on(micros), d("2026-12-01"));
        assert_eq!(recorded_on(micros - 1), d("2026-11-30"));
        assert_eq!(recorded_on(0), d("1970-01-01"));
    }

    #[test]
    fn the_data_wins_then_effective_at_then_the_recorded_day() {
        let moved = Event::ResidenceChanged {
            kind: ResidenceKind::Permanent,
            commune: "11311".parse().unwrap(),
            address: "Số 8".into(),
            since: d("2026-10-01"),
        };
        assert_eq!(
            valid_from(&moved, None, d("2026-11-20")),
            ValidFrom::Stated {
                date: PartialDate::from(d("2026-10-01")),
                field: "since"
            }
        );
        let parents = Event::ParentsSet {
            father: None,
            mother: None,
        };
        assert_eq!(
            valid_from(&parents, Some(d("2020-05-01")), d("2026-11-20")),
            ValidFrom::Effective {
                date: d("2020-05-01")
            }
        );
        assert_eq!(
            valid_from(&parents, None, d("2026-11-20")),
            ValidFrom::Recorded {
                date: d("2026-11-20")
            }
        );
        let died = Event::CitizenDeceased {
            date: "1998".parse().unwrap(),
        };
        assert_eq!(
            valid_from(&died, None, d("2026-11-20")).date(),
            Some("1998".parse().unwrap()),
            "a late-registered death holds from its (partial) date"
        );
    }

    #[test]
    fn corrections_fix_the_past_unless_they_say_from_when() {
        let corrected = Event::RecordCorrected {
            changes: vec![],
            reason: "sai".into(),
            legal_basis: crate::LegalBasis {
                document_number: "1/QĐ".into(),
                document_date: d("2026-01-02"),
            },
            steward: "s".into(),
        };
        assert_eq!(
            valid_from(&corrected, None, d("2026-11-20")),
            ValidFrom::FixesPast
        );
        assert_eq!(
            valid_from(&corrected, Some(d("2026-03-01")), d("2026-11-20")),
            ValidFrom::Effective {
                date: d("2026-03-01")
            }
        );
        let approved = Event::CorrectionApproved {
            correction: CorrectionId(uuid::Uuid::nil()),
            supervisor: "s".into(),
        };
        assert!(matches!(
            valid_from(&approved, None, d("2026-11-20")),
            ValidFrom::AsProposed { .. }
        ));
    }
}
