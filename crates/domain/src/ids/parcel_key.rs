//! The traditional land parcel key: administrative unit + map sheet (số tờ
//! bản đồ) + parcel number (số thửa).
//!
//! After the 2025 mergers each predecessor unit's map sheets still start at
//! 1, so (new unit, sheet, parcel) is not unique. The key therefore keeps
//! the predecessor unit whose sheets the numbers belong to; it equals the
//! unit when no merger happened.
//!
//! Canonical string: `<unit>/<predecessor_unit>:<map_sheet>/<parcel_number>`,
//! e.g. `11311/10507:12/345` — parcel 345 on sheet 12 of the former unit 10507,
//! now in unit 11311. Numbers are written without leading zeros.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::admin::AdminUnitCode;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParcelKeyError {
    #[error("parcel key `{0}` is not in the form COMMUNE/PREDECESSOR:SHEET/PARCEL")]
    Format(String),
    #[error("map sheet numbers start at 1")]
    ZeroMapSheet,
    #[error("parcel numbers start at 1")]
    ZeroParcelNumber,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParcelKey {
    unit: AdminUnitCode,
    predecessor_unit: AdminUnitCode,
    map_sheet: u32,
    parcel_number: u32,
}

crate::text_form::serde_as_text!(ParcelKey);

impl ParcelKey {
    pub fn new(
        unit: AdminUnitCode,
        predecessor_unit: AdminUnitCode,
        map_sheet: u32,
        parcel_number: u32,
    ) -> Result<Self, ParcelKeyError> {
        if map_sheet == 0 {
            return Err(ParcelKeyError::ZeroMapSheet);
        }
        if parcel_number == 0 {
            return Err(ParcelKeyError::ZeroParcelNumber);
        }
        Ok(Self {
            unit,
            predecessor_unit,
            map_sheet,
            parcel_number,
        })
    }

    pub fn unit(&self) -> AdminUnitCode {
        self.unit
    }
    pub fn predecessor_unit(&self) -> AdminUnitCode {
        self.predecessor_unit
    }
    pub fn map_sheet(&self) -> u32 {
        self.map_sheet
    }
    pub fn parcel_number(&self) -> u32 {
        self.parcel_number
    }
}

impl fmt::Display for ParcelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}:{}/{}",
            self.unit, self.predecessor_unit, self.map_sheet, self.parcel_number
        )
    }
}

fn parse_number(s: &str, whole: &str) -> Result<u32, ParcelKeyError> {
    // Canonical form: digits only, no sign, no leading zeros (except "0",
    // which the range checks then reject with a precise error).
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return Err(ParcelKeyError::Format(whole.to_owned()));
    }
    s.parse()
        .map_err(|_| ParcelKeyError::Format(whole.to_owned()))
}

impl FromStr for ParcelKey {
    type Err = ParcelKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let format = || ParcelKeyError::Format(s.to_owned());
        let (units, numbers) = s.trim().split_once(':').ok_or_else(format)?;
        let (unit, predecessor) = units.split_once('/').ok_or_else(format)?;
        let (sheet, parcel) = numbers.split_once('/').ok_or_else(format)?;
        Self::new(
            unit.parse().map_err(|_| format())?,
            predecessor.parse().map_err(|_| format())?,
            parse_number(sheet, s)?,
            parse_number(parcel, s)?,
        )
    }
}

impl TryFrom<String> for ParcelKey {
    type Error = ParcelKeyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ParcelKey> for String {
    fn from(k: ParcelKey) -> Self {
        k.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_form() {
        let k: ParcelKey = "11311/10507:12/345".parse().unwrap();
        assert_eq!(k.unit().to_string(), "11311");
        assert_eq!(k.predecessor_unit().to_string(), "10507");
        assert_eq!((k.map_sheet(), k.parcel_number()), (12, 345));
        assert_eq!(k.to_string(), "11311/10507:12/345");
        assert_eq!(
            "11311/10507:0/345".parse::<ParcelKey>(),
            Err(ParcelKeyError::ZeroMapSheet)
        );
        assert_eq!(
            "11311/10507:12/0".parse::<ParcelKey>(),
            Err(ParcelKeyError::ZeroParcelNumber)
        );
        for bad in [
            "11311:12/345",
            "11311/10507/12/345",
            "11311/10507:012/345",
            "11311/1050:12/345",
            "11311/10507:12/+3",
            "11311/10507:12/",
        ] {
            assert!(
                matches!(bad.parse::<ParcelKey>(), Err(ParcelKeyError::Format(_))),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn round_trips(c in 0u32..100_000, p in 0u32..100_000, sheet in 1u32.., parcel in 1u32..) {
            let s = format!("{c:05}/{p:05}:{sheet}/{parcel}");
            let k: ParcelKey = s.parse().unwrap();
            prop_assert_eq!(k.to_string(), s);
            let json = serde_json::to_string(&k).unwrap();
            prop_assert_eq!(serde_json::from_str::<ParcelKey>(&json).unwrap(), k);
        }
    }
}
