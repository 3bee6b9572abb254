//! The commune-level units of Hải Phòng (province code 31) and Hải Dương (30)
//! in force until 30 June 2025, each with the 2025 units its area went to
//! (`fixtures/hai-phong-units-before-2025.csv`).
//!
//! The units and their names are the statistics office's list as published on
//! 1 March 2025; the successors are Resolution 1669/NQ-UBTVQH15, Article 1,
//! whose clause each row cites in its `source`. docs/reference-lists.md says
//! where each came from and how the mapping was checked. Nothing here is typed
//! from memory: a unit that is not in the file resolves as unverified.

use std::collections::HashMap;
use std::str::FromStr;

use serde::Serialize;
use thiserror::Error;
use unicode_normalization::UnicodeNormalization;

use super::code::{AdminUnitCode, AdminUnitCodeError};
use crate::date::Date;

pub(super) const HEADER: &str = "code,name,kind,district_code,district,province_code,listed_since,valid_until,successor_codes,source";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PredecessorTableError {
    #[error("predecessor table header must be `{HEADER}`")]
    Header,
    #[error("predecessor table line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("unknown former unit kind `{0}`")]
    Kind(String),
    #[error("predecessor code {0} appears twice")]
    DuplicateCode(AdminUnitCode),
}

/// Ward (phường), commune (xã) or township (thị trấn): the kinds of the
/// three-level system. Townships were abolished with the district level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FormerUnitKind {
    Ward,
    Commune,
    Township,
}

impl FromStr for FormerUnitKind {
    type Err = PredecessorTableError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ward" => Ok(Self::Ward),
            "commune" => Ok(Self::Commune),
            "township" => Ok(Self::Township),
            other => Err(PredecessorTableError::Kind(other.to_owned())),
        }
    }
}

/// A pre-2025 unit that used `code` until `valid_until` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PredecessorUnit {
    pub code: AdminUnitCode,
    /// NFC, with its kind prefix as the list writes it ("Thị trấn Núi Đối").
    pub name: String,
    pub kind: FormerUnitKind,
    /// The district (quận, huyện, thị xã, thành phố) it belonged to.
    pub district_code: u16,
    pub district: String,
    pub province_code: u16,
    /// The earliest list held (the oldest is of 11 September 2019) from which
    /// the code carried this name without a break: a lower bound of when the
    /// name held, not the legal date it took effect.
    pub listed_since: Date,
    /// The first day the unit no longer existed.
    pub valid_until: Date,
    /// The 2025 units its area went to: several when it was divided.
    pub successors: Vec<AdminUnitCode>,
    /// The legal act and clauses that made the change.
    pub source: String,
}

impl PredecessorUnit {
    /// Whether the unit existed under this name on `on`, as far as the lists show.
    pub fn named_on(&self, on: Date) -> bool {
        self.listed_since <= on && on < self.valid_until
    }
}

/// Parses the predecessor CSV (no quoting: no field contains a comma).
pub(super) fn parse(
    csv: &str,
) -> Result<(Vec<PredecessorUnit>, HashMap<AdminUnitCode, usize>), PredecessorTableError> {
    let mut lines = csv.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim() == HEADER => {}
        _ => return Err(PredecessorTableError::Header),
    }
    let mut units = Vec::new();
    let mut by_code = HashMap::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let unit = parse_line(line).map_err(|message| PredecessorTableError::Line {
            line: i + 1,
            message,
        })?;
        if by_code.insert(unit.code, units.len()).is_some() {
            return Err(PredecessorTableError::DuplicateCode(unit.code));
        }
        units.push(unit);
    }
    Ok((units, by_code))
}

fn parse_line(line: &str) -> Result<PredecessorUnit, String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [
        code,
        name,
        kind,
        district_code,
        district,
        province,
        since,
        until,
        successors,
        source,
    ] = fields.as_slice()
    else {
        return Err(format!("expected 10 fields, got {}", fields.len()));
    };
    let unit_code = |s: &str| {
        s.parse::<AdminUnitCode>()
            .map_err(|e: AdminUnitCodeError| e.to_string())
    };
    let number = |s: &str, what: &str| s.parse::<u16>().map_err(|_| format!("bad {what} `{s}`"));
    let date = |s: &str| s.parse::<Date>().map_err(|e| e.to_string());
    let successors = successors
        .split(';')
        .filter(|s| !s.is_empty())
        .map(unit_code)
        .collect::<Result<Vec<_>, _>>()?;
    let listed_since = date(since)?;
    let valid_until = date(until)?;
    if listed_since >= valid_until {
        return Err(format!(
            "listed since {listed_since}, not before {valid_until}"
        ));
    }
    for (value, what) in [
        (*name, "name"),
        (*district, "district"),
        (*source, "source"),
    ] {
        if value.is_empty() {
            return Err(format!("empty {what}"));
        }
    }
    Ok(PredecessorUnit {
        code: unit_code(code)?,
        name: name.nfc().collect(),
        kind: kind
            .parse()
            .map_err(|e: PredecessorTableError| e.to_string())?,
        district_code: number(district_code, "district code")?,
        district: district.nfc().collect(),
        province_code: number(province, "province code")?,
        listed_since,
        valid_until,
        successors,
        source: (*source).to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(row: &str) -> Result<Vec<PredecessorUnit>, PredecessorTableError> {
        parse(&format!("{HEADER}\n{row}\n")).map(|(units, _)| units)
    }

    #[test]
    fn a_row_parses_with_several_successors() {
        let units = one("10798,Xã Hòa Bình,commune,293,Huyện Kim Thành,30,2025-01-01,2025-07-01,10804;10843,src")
            .unwrap();
        let u = &units[0];
        assert_eq!(u.code.to_string(), "10798");
        assert_eq!(u.kind, FormerUnitKind::Commune);
        assert_eq!(u.district_code, 293);
        let successors: Vec<String> = u.successors.iter().map(|c| c.to_string()).collect();
        assert_eq!(successors, ["10804", "10843"]);
        assert!(u.named_on(Date::new(2025, 6, 30).unwrap()));
        assert!(!u.named_on(Date::new(2025, 7, 1).unwrap()));
        assert!(!u.named_on(Date::new(2024, 12, 31).unwrap()));
    }

    #[test]
    fn bad_rows_are_refused_with_their_line() {
        assert_eq!(
            parse("code,name\n").unwrap_err(),
            PredecessorTableError::Header
        );
        for bad in [
            "10798,Xã Hòa Bình,commune,293,Huyện Kim Thành,30,2025-01-01,2025-07-01,10804",
            "1079,Xã Hòa Bình,commune,293,Huyện Kim Thành,30,2025-01-01,2025-07-01,10804,src",
            "10798,Xã Hòa Bình,district,293,Huyện Kim Thành,30,2025-01-01,2025-07-01,10804,src",
            "10798,Xã Hòa Bình,commune,293,Huyện Kim Thành,30,2025-07-01,2025-07-01,10804,src",
            "10798,Xã Hòa Bình,commune,293,Huyện Kim Thành,30,2025-01-01,2025-07-01,1080x,src",
            "10798,,commune,293,Huyện Kim Thành,30,2025-01-01,2025-07-01,10804,src",
        ] {
            assert!(
                matches!(one(bad), Err(PredecessorTableError::Line { line: 2, .. })),
                "{bad}: {:?}",
                one(bad)
            );
        }
        let twice = "10798,A,commune,293,H,30,2025-01-01,2025-07-01,10804,s";
        assert!(matches!(
            parse(&format!("{HEADER}\n{twice}\n{twice}\n")),
            Err(PredecessorTableError::DuplicateCode(_))
        ));
    }
}
