//! Business-line code from the Vietnam Standard Industrial Classification
//! (VSIC). Business registration records level-4 codes (4 digits); level-5
//! codes (5 digits) are accepted too.
//!
//! [`VsicTable`] holds the part of VSIC 2018 (Decision 27/2018/QĐ-TTg) that
//! could be sourced: sections A and B, divisions 01–08
//! (`fixtures/vsic-2018.csv`; provenance in docs/reference-lists.md). A code
//! of another division is neither known nor refused by it. Commands do not
//! consult the table yet: they check a code's format only.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::lists::{ReferenceList, UnknownCode};
use crate::date::Date;

/// Divisions 01–03 (section A) and 05–08 of section B, level 4 and 5.
const VSIC_2018_CSV: &str = include_str!("../../../../fixtures/vsic-2018.csv");

/// The divisions (first two digits) whose every level-4 and level-5 code the
/// file holds: the NSO's correspondence table and an OCR of the signed
/// decision agree on their codes. Division 09 is left out: one of its names
/// could not be read from the source.
const VSIC_2018_DIVISIONS: [&str; 7] = ["01", "02", "03", "05", "06", "07", "08"];

/// Decision 27/2018/QĐ-TTg took effect on 20 August 2018 and was replaced by
/// Decision 36/2025/QĐ-TTg (VSIC 2025) from 15 November 2025.
const VSIC_2018_FROM: Date = Date::trusted(2018, 8, 20);
const VSIC_2018_UNTIL: Date = Date::trusted(2025, 11, 15);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VsicCodeError {
    #[error("a VSIC business-line code is 4 or 5 digits, got `{0}`")]
    Format(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VsicCode(String);

impl VsicCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VsicCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for VsicCode {
    type Err = VsicCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if (t.len() == 4 || t.len() == 5) && t.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(t.to_owned()))
        } else {
            Err(VsicCodeError::Format(s.to_owned()))
        }
    }
}

impl TryFrom<String> for VsicCode {
    type Error = VsicCodeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<VsicCode> for String {
    fn from(c: VsicCode) -> Self {
        c.0
    }
}

/// One code of the classification with its official name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VsicEntry {
    pub code: VsicCode,
    /// 4 or 5 (the number of digits).
    pub level: u8,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VsicTableError {
    #[error("VSIC table header must be `code,level,source,name`")]
    Header,
    #[error("VSIC table line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("VSIC code {0} appears twice")]
    DuplicateCode(VsicCode),
}

/// How a code passed [`VsicTable::knows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VsicCheck {
    /// In the list.
    Listed,
    /// In a division the table does not hold: not judged.
    NotCovered,
}

/// A dated VSIC list, complete for the divisions it covers.
#[derive(Debug, Clone)]
pub struct VsicTable {
    list: ReferenceList,
    valid_from: Date,
    valid_until: Date,
    divisions: Vec<String>,
    entries: Vec<VsicEntry>,
    by_code: HashMap<VsicCode, usize>,
}

static VSIC_2018: LazyLock<VsicTable> = LazyLock::new(|| {
    // Compiled in and parsed by a unit test: a failure is a build defect.
    #[allow(clippy::expect_used)]
    VsicTable::parse(
        VSIC_2018_CSV,
        ReferenceList::Vsic2018,
        &VSIC_2018_DIVISIONS,
        VSIC_2018_FROM,
        VSIC_2018_UNTIL,
    )
    .expect("embedded VSIC 2018 table is valid (checked by tests)")
});

impl VsicTable {
    /// VSIC 2018, divisions 01–08.
    pub fn vsic_2018() -> &'static VsicTable {
        &VSIC_2018
    }

    /// Parses `code,level,source,name` lines (the name is last and may hold
    /// commas). Every row must lie in one of `divisions`.
    pub fn parse(
        csv: &str,
        list: ReferenceList,
        divisions: &[&str],
        valid_from: Date,
        valid_until: Date,
    ) -> Result<Self, VsicTableError> {
        let mut lines = csv.lines().enumerate();
        match lines.next() {
            Some((_, h)) if h.trim() == "code,level,source,name" => {}
            _ => return Err(VsicTableError::Header),
        }
        let mut entries = Vec::new();
        let mut by_code = HashMap::new();
        for (i, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let err = |message: String| VsicTableError::Line {
                line: i + 1,
                message,
            };
            let fields: Vec<&str> = line.splitn(4, ',').map(str::trim).collect();
            let [code, level, source, name] = fields.as_slice() else {
                return Err(err(format!("expected 4 fields, got {}", fields.len())));
            };
            let code: VsicCode = code
                .parse()
                .map_err(|e: VsicCodeError| err(e.to_string()))?;
            let level: u8 = level
                .parse()
                .map_err(|_| err(format!("bad level `{level}`")))?;
            if usize::from(level) != code.as_str().len() {
                return Err(err(format!(
                    "level {level} for a {}-digit code",
                    code.as_str().len()
                )));
            }
            if !divisions.iter().any(|d| code.as_str().starts_with(d)) {
                return Err(err(format!("{code} is outside the divisions held")));
            }
            if name.is_empty() || source.is_empty() {
                return Err(err("empty name or source".to_owned()));
            }
            if by_code.insert(code.clone(), entries.len()).is_some() {
                return Err(VsicTableError::DuplicateCode(code));
            }
            entries.push(VsicEntry {
                code,
                level,
                name: (*name).to_owned(),
            });
        }
        Ok(Self {
            list,
            valid_from,
            valid_until,
            divisions: divisions.iter().map(|d| (*d).to_owned()).collect(),
            entries,
            by_code,
        })
    }

    pub fn entries(&self) -> &[VsicEntry] {
        &self.entries
    }

    pub fn get(&self, code: &VsicCode) -> Option<&VsicEntry> {
        self.by_code.get(code).and_then(|i| self.entries.get(*i))
    }

    /// Whether the list was in force on `on` (the wiring that checks a
    /// business line against the list of its event's date is to come).
    pub fn in_force_on(&self, on: Date) -> bool {
        self.valid_from <= on && on < self.valid_until
    }

    /// Whether the table holds the whole of `code`'s division.
    pub fn covers(&self, code: &VsicCode) -> bool {
        self.divisions
            .iter()
            .any(|d| code.as_str().starts_with(d.as_str()))
    }

    /// A code of a covered division must be listed ([`UnknownCode`] of this
    /// list otherwise); a code of another division is not judged.
    pub fn knows(&self, code: &VsicCode) -> Result<VsicCheck, UnknownCode> {
        if self.by_code.contains_key(code) {
            Ok(VsicCheck::Listed)
        } else if self.covers(code) {
            Err(UnknownCode::new(self.list, code.as_str()))
        } else {
            Ok(VsicCheck::NotCovered)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> VsicCode {
        s.parse().unwrap()
    }

    #[test]
    fn embedded_vsic_2018_table_is_a_complete_tree_for_its_divisions() {
        let t = VsicTable::vsic_2018();
        let at = |level| t.entries().iter().filter(|e| e.level == level).count();
        assert_eq!((at(4), at(5)), (54, 84));
        // Each level-5 code refines a listed level-4 code, and every level-4
        // code has at least one level-5 code (VSIC has no bare level-4 code).
        for e in t.entries() {
            let parent = &e.code.as_str()[..4];
            match e.level {
                5 => assert!(t.get(&code(parent)).is_some(), "{}", e.code),
                _ => assert!(
                    t.entries()
                        .iter()
                        .any(|c| c.level == 5 && c.code.as_str().starts_with(parent)),
                    "{}",
                    e.code
                ),
            }
        }
        for division in VSIC_2018_DIVISIONS {
            assert!(
                t.entries()
                    .iter()
                    .any(|e| e.code.as_str().starts_with(division))
            );
        }
        assert_eq!(
            t.get(&code("01110")).map(|e| e.name.as_str()),
            Some("Trồng lúa")
        );
        assert_eq!(
            t.get(&code("0810")).map(|e| e.name.as_str()),
            Some("Khai thác đá, cát, sỏi, đất sét")
        );
    }

    #[test]
    fn knows_refuses_only_within_the_divisions_held() {
        let t = VsicTable::vsic_2018();
        assert_eq!(t.knows(&code("0111")), Ok(VsicCheck::Listed));
        assert_eq!(t.knows(&code("08990")), Ok(VsicCheck::Listed));
        // 0130 is VSIC 2025's, not VSIC 2018's.
        assert_eq!(
            t.knows(&code("0130")),
            Err(UnknownCode::new(ReferenceList::Vsic2018, "0130"))
        );
        assert!(t.knows(&code("01111")).is_err());
        // Retail (division 47) is not held: not judged.
        assert_eq!(t.knows(&code("4711")), Ok(VsicCheck::NotCovered));
        assert!(!t.covers(&code("0990")));
    }

    #[test]
    fn the_list_is_dated() {
        let t = VsicTable::vsic_2018();
        let d = |y, m, day| Date::new(y, m, day).unwrap();
        assert!(!t.in_force_on(d(2018, 8, 19)));
        assert!(t.in_force_on(d(2018, 8, 20)));
        assert!(t.in_force_on(d(2025, 11, 14)));
        assert!(!t.in_force_on(d(2025, 11, 15)));
        assert_eq!(VSIC_2018_FROM, d(2018, 8, 20));
        assert_eq!(VSIC_2018_UNTIL, d(2025, 11, 15));
    }

    #[test]
    fn parse_rejects_bad_tables() {
        let d = |y, m, day| Date::new(y, m, day).unwrap();
        let parse = |csv: &str| {
            VsicTable::parse(
                csv,
                ReferenceList::Vsic2018,
                &["01"],
                d(2018, 8, 20),
                d(2025, 11, 15),
            )
        };
        assert_eq!(parse("code,name").unwrap_err(), VsicTableError::Header);
        for bad in [
            "0111,5,s,Trồng lúa",
            "0111,4,s,",
            "011,3,s,Trồng cây hàng năm",
            "4711,4,s,Bán lẻ",
            "0111,4,Trồng lúa",
        ] {
            assert!(
                matches!(
                    parse(&format!("code,level,source,name\n{bad}\n")),
                    Err(VsicTableError::Line { line: 2, .. })
                ),
                "{bad}"
            );
        }
        let twice = "code,level,source,name\n0111,4,s,A\n0111,4,s,B\n";
        assert_eq!(
            parse(twice).unwrap_err(),
            VsicTableError::DuplicateCode(code("0111"))
        );
        // A name may hold commas: only the first three commas split.
        let t = parse("code,level,source,name\n0115,4,s,Trồng cây thuốc lá, thuốc lào\n").unwrap();
        assert_eq!(t.entries()[0].name, "Trồng cây thuốc lá, thuốc lào");
    }

    #[test]
    fn four_or_five_digits() {
        assert_eq!(
            "4711".parse::<VsicCode>().map(|c| c.to_string()),
            Ok("4711".to_owned())
        );
        assert!("47110".parse::<VsicCode>().is_ok());
        for bad in ["471", "471100", "47a1", ""] {
            assert!(bad.parse::<VsicCode>().is_err(), "{bad}");
        }
    }
}
