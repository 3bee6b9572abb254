//! The reference lists codes are checked against, and the one error a code
//! outside its list gets ([`UnknownCode`], API code `UNKNOWN_CODE`).
//!
//! Lists held: Hải Phòng's commune-level units (`fixtures/hai-phong-units-2025.csv`),
//! the national province codes of PINs ([`crate::PROVINCE_CODES`]), the country
//! codes of PINs for births registered abroad ([`COUNTRY_CODES`]) and the land-use
//! codes ([`crate::LAND_USE_CODES`]). VSIC 2018 is held for divisions 01–08 only
//! ([`crate::VsicTable`]) and not yet consulted by commands: business-line codes
//! are checked for their format only. Sources: docs/reference-lists.md.

use std::fmt;

use serde::Serialize;
use thiserror::Error;

/// A reference list the repository holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceList {
    /// Hải Phòng's commune-level units from 2025-07-01, and their predecessors.
    HaiPhongUnits,
    /// The 63 province codes of Circular 07/2016/TT-BCA (PIN digits 1-3).
    ProvinceCodes,
    /// Country codes of births registered abroad (PIN digits 1-3, first digit not 0).
    CountryCodes,
    /// Land-use type codes of Circular 08/2024/TT-BTNMT.
    LandUseCodes,
    /// VSIC 2018 business-line codes (levels 4 and 5) of the divisions held.
    Vsic2018,
}

const ALL_LISTS: [ReferenceList; 5] = [
    ReferenceList::HaiPhongUnits,
    ReferenceList::ProvinceCodes,
    ReferenceList::CountryCodes,
    ReferenceList::LandUseCodes,
    ReferenceList::Vsic2018,
];

impl ReferenceList {
    /// The list's stable name, as it appears in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::HaiPhongUnits => "hai_phong_units_2025",
            Self::ProvinceCodes => "province_codes",
            Self::CountryCodes => "country_codes",
            Self::LandUseCodes => "land_use_codes",
            Self::Vsic2018 => "vsic_2018",
        }
    }

    /// Where the list comes from.
    pub fn source(self) -> &'static str {
        match self {
            Self::HaiPhongUnits => "Resolution 1669/NQ-UBTVQH15",
            Self::ProvinceCodes => "Circular 07/2016/TT-BCA",
            Self::CountryCodes => "ISO 3166-1 numeric",
            Self::LandUseCodes => "Circular 08/2024/TT-BTNMT",
            Self::Vsic2018 => "Decision 27/2018/QĐ-TTg",
        }
    }

    fn by_name(name: &str) -> Option<Self> {
        ALL_LISTS.into_iter().find(|l| l.name() == name)
    }
}

impl fmt::Display for ReferenceList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A well-formed code that is in none of the entries of the list it names.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
#[error("unknown code `{code}`: not in the list {list} ({source})", source = list.source())]
pub struct UnknownCode {
    pub list: ReferenceList,
    pub code: String,
}

/// How much of an unknown code an error message repeats.
pub const MAX_ECHOED_CHARS: usize = 32;

const PREFIX: &str = "unknown code `";
const MIDDLE: &str = "`: not in the list ";

impl UnknownCode {
    /// `code` is cut to [`MAX_ECHOED_CHARS`] characters: the error echoes what
    /// was sent, and what was sent may be arbitrarily long.
    pub fn new(list: ReferenceList, code: impl Into<String>) -> Self {
        let code: String = code.into();
        let code = if code.chars().count() > MAX_ECHOED_CHARS {
            code.chars().take(MAX_ECHOED_CHARS).chain(['…']).collect()
        } else {
            code
        };
        Self { list, code }
    }

    /// Recovers an `UnknownCode` from a message that embeds its text. serde
    /// keeps only the text of an error raised while deserialising a command, so
    /// this is how a caller tells an unknown code inside a JSON input from any
    /// other malformed value. Inverse of `Display` (tested).
    pub fn find_in(message: &str) -> Option<Self> {
        let start = message.find(PREFIX)? + PREFIX.len();
        let rest = message.get(start..)?;
        let (code, rest) = rest.split_once(MIDDLE)?;
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        Some(Self::new(ReferenceList::by_name(&name)?, code))
    }
}

/// ISO 3166-1 numeric codes from 100 up (a PIN's country part has a first
/// digit other than 0), from the iso-codes 4.15 data. Whether the Ministry of
/// Public Security's table of country codes for births registered abroad is
/// exactly ISO 3166-1 is unconfirmed; see docs/domain.md.
pub const COUNTRY_CODES: &[u16] = &[
    100, 104, 108, 112, 116, 120, 124, 132, 136, 140, 144, 148, 152, 156, 158, 162, 166, 170, 174,
    175, 178, 180, 184, 188, 191, 192, 196, 203, 204, 208, 212, 214, 218, 222, 226, 231, 232, 233,
    234, 238, 239, 242, 246, 248, 250, 254, 258, 260, 262, 266, 268, 270, 275, 276, 288, 292, 296,
    300, 304, 308, 312, 316, 320, 324, 328, 332, 334, 336, 340, 344, 348, 352, 356, 360, 364, 368,
    372, 376, 380, 384, 388, 392, 398, 400, 404, 408, 410, 414, 417, 418, 422, 426, 428, 430, 434,
    438, 440, 442, 446, 450, 454, 458, 462, 466, 470, 474, 478, 480, 484, 492, 496, 498, 499, 500,
    504, 508, 512, 516, 520, 524, 528, 531, 533, 534, 535, 540, 548, 554, 558, 562, 566, 570, 574,
    578, 580, 581, 583, 584, 585, 586, 591, 598, 600, 604, 608, 612, 616, 620, 624, 626, 630, 634,
    638, 642, 643, 646, 652, 654, 659, 660, 662, 663, 666, 670, 674, 678, 682, 686, 688, 690, 694,
    702, 703, 704, 705, 706, 710, 716, 724, 728, 729, 732, 740, 744, 748, 752, 756, 760, 762, 764,
    768, 772, 776, 780, 784, 788, 792, 795, 796, 798, 800, 804, 807, 818, 826, 831, 832, 833, 834,
    840, 850, 854, 858, 860, 862, 876, 882, 887, 894,
];

/// Whether `code` is a country code of [`COUNTRY_CODES`].
pub fn is_country_code(code: u16) -> bool {
    COUNTRY_CODES.binary_search(&code).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_are_sorted_unique_and_three_digit() {
        assert!(COUNTRY_CODES.windows(2).all(|w| w[0] < w[1]));
        assert!(COUNTRY_CODES.iter().all(|c| (100..1000).contains(c)));
        assert!(is_country_code(840), "United States");
        assert!(is_country_code(704), "Viet Nam");
        assert!(!is_country_code(999));
    }

    #[test]
    fn find_in_inverts_display_inside_any_message() {
        for list in ALL_LISTS {
            let e = UnknownCode::new(list, "99999");
            let wrapped = format!("RegisterParcelInput: {e} at line 1 column 80");
            assert_eq!(UnknownCode::find_in(&wrapped), Some(e));
        }
        assert_eq!(UnknownCode::find_in("invalid type: string"), None);
    }
}
