//! Commune-level administrative units and their codes.
//!
//! Since 1 July 2025 Vietnam has two levels of local government (province,
//! commune). Each new unit reused the code of one of the units merged into it,
//! so a 5-digit code carries no province prefix: [`AdminUnitCode`] is opaque.
//! [`AdminUnitTable`] is Hải Phòng's dated table (Resolution 1669/NQ-UBTVQH15),
//! plus a small table of documented predecessor codes for historical records.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use unicode_normalization::UnicodeNormalization;

use super::lists::{ReferenceList, UnknownCode};
use crate::date::Date;
use crate::name::{exact_key, search_key};

/// Hải Phòng's 114 commune-level units effective 2025-07-01.
const HAI_PHONG_2025_CSV: &str = include_str!("../../../../fixtures/hai-phong-units-2025.csv");

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AdminUnitCodeError {
    #[error("an administrative unit code is exactly 5 digits, got `{0}`")]
    Format(String),
}

/// A 5-digit commune-level unit code (opaque: no province prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AdminUnitCode([u8; 5]);

impl fmt::Display for AdminUnitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{}", char::from(b))?;
        }
        Ok(())
    }
}

impl FromStr for AdminUnitCode {
    type Err = AdminUnitCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bytes: [u8; 5] = t
            .as_bytes()
            .try_into()
            .map_err(|_| AdminUnitCodeError::Format(s.to_owned()))?;
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(AdminUnitCodeError::Format(s.to_owned()));
        }
        Ok(Self(bytes))
    }
}

impl TryFrom<String> for AdminUnitCode {
    type Error = AdminUnitCodeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<AdminUnitCode> for String {
    fn from(c: AdminUnitCode) -> Self {
        c.to_string()
    }
}

/// Ward (phường), commune (xã) or special zone (đặc khu).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    Ward,
    Commune,
    SpecialZone,
}

impl FromStr for UnitKind {
    type Err = AdminTableError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ward" => Ok(Self::Ward),
            "commune" => Ok(Self::Commune),
            "special_zone" => Ok(Self::SpecialZone),
            other => Err(AdminTableError::Kind(other.to_owned())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminUnit {
    pub code: AdminUnitCode,
    /// NFC, with its kind prefix as officially written ("Phường Hồng Bàng").
    pub name: String,
    pub kind: UnitKind,
    pub province_code: u16,
}

/// A pre-2025 unit known to have used `code` until `valid_until` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PredecessorUnit {
    pub code: AdminUnitCode,
    pub name: &'static str,
    pub valid_until: Date,
    /// The post-2025 unit it became part of.
    pub successor: AdminUnitCode,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AdminTableError {
    #[error("unit table header must be `code,name,kind,province_code`")]
    Header,
    #[error("unit table line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("unknown unit kind `{0}`")]
    Kind(String),
    #[error("unit code {0} appears twice")]
    DuplicateCode(AdminUnitCode),
}

/// Why a code could not be resolved on a date.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
pub enum AdminUnitError {
    #[error("unit {code} is not in the table in force on {on}")]
    NotCurrent {
        code: AdminUnitCode,
        on: Date,
        successor: Option<AdminUnitCode>,
    },
}

/// The result of resolving a code on a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvedUnit<'a> {
    /// In the table in force on that date.
    Current(&'a AdminUnit),
    /// A documented pre-2025 unit.
    Historical(&'a PredecessorUnit),
    /// A date before the table took effect and a code we have no record of:
    /// accepted as an opaque historical code, with a warning to the steward.
    UnverifiedHistorical(AdminUnitCode),
}

/// How a code passed [`AdminUnitTable::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitCheck {
    /// In the table in force.
    Current,
    /// A documented pre-2025 unit.
    DocumentedPredecessor,
    /// In the former provinces' block but not documented: accepted with the
    /// warning `UNVERIFIED_PREDECESSOR_COMMUNE`.
    UnverifiedPredecessor,
}

/// A dated table of commune-level units with lookups by code, name and kind.
#[derive(Debug, Clone)]
pub struct AdminUnitTable {
    effective_from: Date,
    units: Vec<AdminUnit>,
    by_code: HashMap<AdminUnitCode, usize>,
    predecessors: Vec<PredecessorUnit>,
}

static HAI_PHONG_2025: LazyLock<AdminUnitTable> = LazyLock::new(|| {
    // The CSV is compiled into the binary and parsed by a unit test, so a
    // failure here is a build defect, not an input error.
    #[allow(clippy::expect_used)]
    let mut table = AdminUnitTable::parse(HAI_PHONG_2025_CSV, effective_2025())
        .expect("embedded Hải Phòng unit table is valid (checked by tests)");
    table.predecessors = hai_phong_predecessors();
    table
});

/// 1 July 2025: the two-level local government takes effect.
pub const EFFECTIVE_2025: Date = Date::trusted(2025, 7, 1);

fn effective_2025() -> Date {
    EFFECTIVE_2025
}

/// Predecessor codes we are sure of. The reference documents only one:
/// the new Phường Hồng Bàng reused 11311, formerly Phường Minh Khai.
/// Other pre-2025 codes resolve as [`ResolvedUnit::UnverifiedHistorical`].
fn hai_phong_predecessors() -> Vec<PredecessorUnit> {
    let code = |s: &str| s.parse::<AdminUnitCode>();
    match code("11311") {
        Ok(c) => vec![PredecessorUnit {
            code: c,
            name: "Phường Minh Khai",
            valid_until: effective_2025(),
            successor: c,
        }],
        Err(_) => Vec::new(),
    }
}

impl AdminUnitTable {
    /// Hải Phòng's units in force from 2025-07-01.
    pub fn hai_phong_2025() -> &'static AdminUnitTable {
        &HAI_PHONG_2025
    }

    /// Parses `code,name,kind,province_code` CSV (no quoting: names contain no commas).
    pub fn parse(csv: &str, effective_from: Date) -> Result<Self, AdminTableError> {
        let mut lines = csv.lines().enumerate();
        match lines.next() {
            Some((_, h)) if h.trim() == "code,name,kind,province_code" => {}
            _ => return Err(AdminTableError::Header),
        }
        let mut units = Vec::new();
        let mut by_code = HashMap::new();
        for (i, line) in lines {
            let line_no = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let err = |message: String| AdminTableError::Line {
                line: line_no,
                message,
            };
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [code, name, kind, province] = fields.as_slice() else {
                return Err(err(format!("expected 4 fields, got {}", fields.len())));
            };
            let code: AdminUnitCode = code
                .parse()
                .map_err(|e: AdminUnitCodeError| err(e.to_string()))?;
            let kind: UnitKind = kind.parse()?;
            let province_code: u16 = province
                .parse()
                .map_err(|_| err(format!("bad province code `{province}`")))?;
            if name.is_empty() {
                return Err(err("empty name".to_owned()));
            }
            if by_code.insert(code, units.len()).is_some() {
                return Err(AdminTableError::DuplicateCode(code));
            }
            units.push(AdminUnit {
                code,
                name: name.nfc().collect(),
                kind,
                province_code,
            });
        }
        Ok(Self {
            effective_from,
            units,
            by_code,
            predecessors: Vec::new(),
        })
    }

    pub fn effective_from(&self) -> Date {
        self.effective_from
    }

    pub fn units(&self) -> &[AdminUnit] {
        &self.units
    }

    pub fn predecessors(&self) -> &[PredecessorUnit] {
        &self.predecessors
    }

    pub fn by_code(&self, code: AdminUnitCode) -> Option<&AdminUnit> {
        self.by_code.get(&code).and_then(|i| self.units.get(*i))
    }

    pub fn of_kind(&self, kind: UnitKind) -> impl Iterator<Item = &AdminUnit> {
        self.units.iter().filter(move |u| u.kind == kind)
    }

    /// Units whose name matches, with or without the kind prefix ("Hồng Bàng"
    /// finds "Phường Hồng Bàng"). Exact matches (tone placement and case
    /// insensitive) rank before diacritic-folded ones.
    pub fn find_by_name(&self, query: &str) -> Vec<&AdminUnit> {
        let keys = |name: &str| {
            let bare = ["Phường ", "Xã ", "Đặc khu "]
                .iter()
                .find_map(|p| name.strip_prefix(p))
                .unwrap_or(name)
                .to_owned();
            [name.to_owned(), bare]
        };
        let q_exact = exact_key(query);
        let q_folded = search_key(query);
        let exact: Vec<&AdminUnit> = self
            .units
            .iter()
            .filter(|u| keys(&u.name).iter().any(|k| exact_key(k) == q_exact))
            .collect();
        let folded = self.units.iter().filter(|u| {
            !exact.iter().any(|e| e.code == u.code)
                && keys(&u.name).iter().any(|k| search_key(k) == q_folded)
        });
        let mut out = exact.clone();
        out.extend(folded);
        out
    }

    /// Whether a fact dated `on` may carry `code` (the rule every command and
    /// filter applies; see docs/domain.md, "Reference codes"):
    ///
    /// * a unit of the current table is accepted on any date (each new unit
    ///   reused one predecessor's code, and stewards record old facts with
    ///   today's codes);
    /// * for a fact dated before the table took effect, or loaded from an
    ///   existing register (`initial_load`), a documented predecessor is
    ///   accepted, and so is any other code in the block of the two former
    ///   provinces' codes ([`Self::predecessor_block`]) — with a warning, since
    ///   we hold no list of them;
    /// * anything else, and any non-current code on a new fact, is an
    ///   [`UnknownCode`] of [`ReferenceList::HaiPhongUnits`].
    pub fn check(
        &self,
        code: AdminUnitCode,
        on: Date,
        initial_load: bool,
    ) -> Result<UnitCheck, UnknownCode> {
        if self.by_code(code).is_some() {
            return Ok(UnitCheck::Current);
        }
        let historical = on < self.effective_from || initial_load;
        if historical {
            if self.predecessors.iter().any(|p| p.code == code) {
                return Ok(UnitCheck::DocumentedPredecessor);
            }
            if self.predecessor_block().contains(&code) {
                return Ok(UnitCheck::UnverifiedPredecessor);
            }
        }
        Err(self.unknown(code))
    }

    /// Whether `code` is in the list at all (current, documented predecessor
    /// or in the predecessor block): what a search filter accepts, since
    /// stored historical facts may carry predecessor codes.
    pub fn knows(&self, code: AdminUnitCode) -> Result<(), UnknownCode> {
        self.check(code, Date::trusted(1900, 1, 1), true)
            .map(|_| ())
    }

    /// The refusal for a code outside the table.
    pub fn unknown(&self, code: AdminUnitCode) -> UnknownCode {
        UnknownCode::new(ReferenceList::HaiPhongUnits, code.to_string())
    }

    /// The codes the pre-2025 communes of Hải Phòng and Hải Dương can have
    /// had: the national numbering gave each province one block of codes, and
    /// every 2025 unit reused a code of one of its predecessors, so the block
    /// is taken as the span of the current table's codes (10507–11948). A code
    /// outside it (e.g. `99999`) was never a commune of either province.
    pub fn predecessor_block(&self) -> std::ops::RangeInclusive<AdminUnitCode> {
        let lowest = self.units.iter().map(|u| u.code).min();
        let highest = self.units.iter().map(|u| u.code).max();
        match (lowest, highest) {
            (Some(lo), Some(hi)) => lo..=hi,
            // An empty table knows no block: an inverted range contains nothing.
            _ => AdminUnitCode(*b"99999")..=AdminUnitCode(*b"00000"),
        }
    }

    /// What `code` denoted on `on`. On or after the table's effective date the
    /// code must be in the table; before it, documented predecessors resolve
    /// as [`ResolvedUnit::Historical`] and anything else is accepted as an
    /// opaque [`ResolvedUnit::UnverifiedHistorical`] code.
    pub fn resolve(
        &self,
        code: AdminUnitCode,
        on: Date,
    ) -> Result<ResolvedUnit<'_>, AdminUnitError> {
        if on >= self.effective_from {
            return self
                .by_code(code)
                .map(ResolvedUnit::Current)
                .ok_or_else(|| {
                    let successor = self
                        .predecessors
                        .iter()
                        .find(|p| p.code == code)
                        .map(|p| p.successor);
                    AdminUnitError::NotCurrent {
                        code,
                        on,
                        successor,
                    }
                });
        }
        Ok(self
            .predecessors
            .iter()
            .find(|p| p.code == code && on < p.valid_until)
            .map(ResolvedUnit::Historical)
            .unwrap_or(ResolvedUnit::UnverifiedHistorical(code)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> AdminUnitCode {
        s.parse().unwrap()
    }

    #[test]
    fn embedded_table_has_114_units() {
        let t = AdminUnitTable::hai_phong_2025();
        assert_eq!(t.units().len(), 114);
        assert_eq!(t.of_kind(UnitKind::Ward).count(), 45);
        assert_eq!(t.of_kind(UnitKind::Commune).count(), 67);
        assert_eq!(t.of_kind(UnitKind::SpecialZone).count(), 2);
        assert!(t.units().iter().all(|u| u.province_code == 31));
        assert_eq!(
            t.by_code(code("11311")).map(|u| u.name.as_str()),
            Some("Phường Hồng Bàng")
        );
        assert_eq!(t.effective_from().to_string(), "2025-07-01");
    }

    #[test]
    fn codes_are_five_digits() {
        assert_eq!(code("10507").to_string(), "10507");
        for bad in ["1050", "105071", "1050a", "", "１０５０７"] {
            assert!(bad.parse::<AdminUnitCode>().is_err(), "{bad}");
        }
    }

    #[test]
    fn name_lookup_ranks_exact_before_folded_and_ignores_tone_placement() {
        let t = AdminUnitTable::hai_phong_2025();
        let found = t.find_by_name("Hồng Bàng");
        assert_eq!(found.first().map(|u| u.code), Some(code("11311")));
        // "Hoà Bình" (new-style tone) finds "Phường Hòa Bình" as an exact match.
        let found = t.find_by_name("phường hoà bình");
        assert_eq!(found.first().map(|u| u.code), Some(code("11533")));
        let folded = t.find_by_name("hong bang");
        assert_eq!(folded.first().map(|u| u.code), Some(code("11311")));
        assert!(t.find_by_name("Atlantis").is_empty());
    }

    #[test]
    fn resolve_is_dated() {
        let t = AdminUnitTable::hai_phong_2025();
        let after = Date::new(2025, 7, 1).unwrap();
        let before = Date::new(2020, 1, 1).unwrap();
        assert!(
            matches!(t.resolve(code("11311"), after), Ok(ResolvedUnit::Current(u)) if u.name == "Phường Hồng Bàng")
        );
        assert!(
            matches!(t.resolve(code("11311"), before), Ok(ResolvedUnit::Historical(p)) if p.name == "Phường Minh Khai")
        );
        assert_eq!(
            t.resolve(code("99999"), before),
            Ok(ResolvedUnit::UnverifiedHistorical(code("99999")))
        );
        assert_eq!(
            t.resolve(code("99999"), after),
            Err(AdminUnitError::NotCurrent {
                code: code("99999"),
                on: after,
                successor: None
            })
        );
    }

    #[test]
    fn check_accepts_current_units_always_and_predecessors_only_for_old_facts() {
        let t = AdminUnitTable::hai_phong_2025();
        let new_fact = Date::new(2026, 11, 20).unwrap();
        let old_fact = Date::new(2010, 3, 1).unwrap();
        // Current units: any date.
        assert_eq!(
            t.check(code("11311"), new_fact, false),
            Ok(UnitCheck::Current)
        );
        assert_eq!(
            t.check(code("11311"), old_fact, false),
            Ok(UnitCheck::Current)
        );
        // 10508 is in the former provinces' block but not a current unit.
        assert!(t.by_code(code("10508")).is_none());
        assert_eq!(
            t.check(code("10508"), old_fact, false),
            Ok(UnitCheck::UnverifiedPredecessor)
        );
        assert_eq!(
            t.check(code("10508"), new_fact, true),
            Ok(UnitCheck::UnverifiedPredecessor),
            "an initial load may carry predecessor codes"
        );
        let refused = t.check(code("10508"), new_fact, false).unwrap_err();
        assert_eq!(refused.list, ReferenceList::HaiPhongUnits);
        // In no list, on no date.
        for c in ["99999", "00001", "10506", "11949"] {
            for (on, load) in [(old_fact, true), (new_fact, false), (old_fact, false)] {
                assert_eq!(
                    t.check(code(c), on, load),
                    Err(UnknownCode::new(ReferenceList::HaiPhongUnits, c)),
                    "{c}"
                );
            }
            assert!(t.knows(code(c)).is_err());
        }
        assert_eq!(t.knows(code("10508")), Ok(()));
    }

    #[test]
    fn parse_rejects_bad_tables() {
        let d = Date::new(2025, 7, 1).unwrap();
        assert_eq!(
            AdminUnitTable::parse("x", d).unwrap_err(),
            AdminTableError::Header
        );
        let dup = "code,name,kind,province_code\n11311,A,ward,31\n11311,B,ward,31\n";
        assert_eq!(
            AdminUnitTable::parse(dup, d).unwrap_err(),
            AdminTableError::DuplicateCode(code("11311"))
        );
        let kind = "code,name,kind,province_code\n11311,A,district,31\n";
        assert!(matches!(
            AdminUnitTable::parse(kind, d),
            Err(AdminTableError::Kind(_))
        ));
    }
}
