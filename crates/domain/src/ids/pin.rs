//! The 12-digit personal identification number (số định danh cá nhân).
//!
//! Structure `PPP G YY RRRRRR` (Decree 137/2015/NĐ-CP art. 13; code tables in
//! Circular 07/2016/TT-BCA, later 59/2021/TT-BCA). There is no check digit, so
//! validation is: 12 digits, a known province (or a country code), and — once
//! the record is known — `G`/`YY` agreeing with the recorded sex and birth year
//! ([`PersonalIdNumber::check_against`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::lists::{ReferenceList, UnknownCode, is_country_code};

/// Sex as recorded in the population register (the PIN encodes it in `G`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

/// The 63 pre-2025 province codes of Circular 07/2016/TT-BCA, Appendix 1 (the
/// province where the birth was registered). The code never changes when the
/// person moves, and stays valid after the 2025 province mergers because it
/// records where the birth was registered at the time.
pub const PROVINCE_CODES: [(u16, &str); 63] = [
    (1, "Hà Nội"),
    (2, "Hà Giang"),
    (4, "Cao Bằng"),
    (6, "Bắc Kạn"),
    (8, "Tuyên Quang"),
    (10, "Lào Cai"),
    (11, "Điện Biên"),
    (12, "Lai Châu"),
    (14, "Sơn La"),
    (15, "Yên Bái"),
    (17, "Hòa Bình"),
    (19, "Thái Nguyên"),
    (20, "Lạng Sơn"),
    (22, "Quảng Ninh"),
    (24, "Bắc Giang"),
    (25, "Phú Thọ"),
    (26, "Vĩnh Phúc"),
    (27, "Bắc Ninh"),
    (30, "Hải Dương"),
    (31, "Hải Phòng"),
    (33, "Hưng Yên"),
    (34, "Thái Bình"),
    (35, "Hà Nam"),
    (36, "Nam Định"),
    (37, "Ninh Bình"),
    (38, "Thanh Hóa"),
    (40, "Nghệ An"),
    (42, "Hà Tĩnh"),
    (44, "Quảng Bình"),
    (45, "Quảng Trị"),
    (46, "Thừa Thiên Huế"),
    (48, "Đà Nẵng"),
    (49, "Quảng Nam"),
    (51, "Quảng Ngãi"),
    (52, "Bình Định"),
    (54, "Phú Yên"),
    (56, "Khánh Hòa"),
    (58, "Ninh Thuận"),
    (60, "Bình Thuận"),
    (62, "Kon Tum"),
    (64, "Gia Lai"),
    (66, "Đắk Lắk"),
    (67, "Đắk Nông"),
    (68, "Lâm Đồng"),
    (70, "Bình Phước"),
    (72, "Tây Ninh"),
    (74, "Bình Dương"),
    (75, "Đồng Nai"),
    (77, "Bà Rịa - Vũng Tàu"),
    (79, "Hồ Chí Minh"),
    (80, "Long An"),
    (82, "Tiền Giang"),
    (83, "Bến Tre"),
    (84, "Trà Vinh"),
    (86, "Vĩnh Long"),
    (87, "Đồng Tháp"),
    (89, "An Giang"),
    (91, "Kiên Giang"),
    (92, "Cần Thơ"),
    (93, "Hậu Giang"),
    (94, "Sóc Trăng"),
    (95, "Bạc Liêu"),
    (96, "Cà Mau"),
];

/// Name of a pre-2025 province code (`1` for `001` Hà Nội), if it exists.
pub fn province_name(code: u16) -> Option<&'static str> {
    PROVINCE_CODES
        .binary_search_by_key(&code, |(c, _)| *c)
        .ok()
        .and_then(|i| PROVINCE_CODES.get(i))
        .map(|(_, name)| *name)
}

/// Where the birth behind a PIN was registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BirthRegistration {
    Province {
        code: u16,
        name: &'static str,
    },
    /// A first digit other than 0 denotes a country code: the birth was
    /// registered abroad. The country table is not modelled; the code is kept.
    Abroad {
        country_code: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PinError {
    #[error("a personal identification number has exactly 12 digits, got {0} characters")]
    Length(usize),
    #[error("a personal identification number contains only the digits 0-9")]
    NotDigits,
    /// Digits 1-3 name no province (first digit 0) or no country (else).
    #[error(transparent)]
    UnknownCode(UnknownCode),
}

impl PinError {
    /// The unknown province or country code, if that is what is wrong.
    pub fn unknown_code(&self) -> Option<&UnknownCode> {
        match self {
            Self::UnknownCode(u) => Some(u),
            _ => None,
        }
    }
}

/// The PIN contradicts the record it is attached to.
///
/// The message and the serialised form say what the PIN encodes, never what the record holds:
/// on a correction the record's sex and birth year are stored personal data, and a refusal is
/// no logged read (the record's values stay in the fields, for callers that read the record).
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
pub enum PinMismatch {
    #[error(
        "the PIN's century/sex digit encodes {pin:?}, which does not agree with the record's sex"
    )]
    Sex {
        pin: Sex,
        #[serde(skip)]
        record: Sex,
    },
    #[error("the PIN encodes birth year {pin}, which does not agree with the record's birth year")]
    BirthYear {
        pin: u16,
        #[serde(skip)]
        record: u16,
    },
}

/// A syntactically valid PIN with a known province (or a country code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonalIdNumber([u8; 12]);

crate::text_form::serde_as_text!(PersonalIdNumber);

impl PersonalIdNumber {
    fn number(&self, range: std::ops::Range<usize>) -> u16 {
        self.0
            .get(range)
            .unwrap_or(&[])
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(*d))
    }

    /// `PPP`: the three-digit province (or country) code.
    pub fn province_code(&self) -> u16 {
        self.number(0..3)
    }

    pub fn birth_registration(&self) -> BirthRegistration {
        let code = self.province_code();
        match province_name(code) {
            Some(name) if code < 100 => BirthRegistration::Province { code, name },
            _ => BirthRegistration::Abroad { country_code: code },
        }
    }

    /// `G` decoded: the first year of the birth century (1900 for the 1900s,
    /// `century = 19 + G/2`) and the sex (`G` odd = female).
    pub fn century_and_sex(&self) -> (u16, Sex) {
        let g = self.number(3..4);
        let sex = if g % 2 == 1 { Sex::Female } else { Sex::Male };
        ((19 + g / 2) * 100, sex)
    }

    /// `YY`: the last two digits of the birth year.
    pub fn birth_year_two_digits(&self) -> u8 {
        // Two decimal digits always fit.
        u8::try_from(self.number(4..6)).unwrap_or(0)
    }

    /// The full birth year encoded by `G` and `YY`.
    pub fn birth_year(&self) -> u16 {
        self.century_and_sex().0 + u16::from(self.birth_year_two_digits())
    }

    pub fn sex(&self) -> Sex {
        self.century_and_sex().1
    }

    /// Errors when `G`/`YY` disagree with the record's sex and birth year.
    pub fn check_against(&self, sex: Sex, birth_year: u16) -> Result<(), PinMismatch> {
        if self.sex() != sex {
            return Err(PinMismatch::Sex {
                pin: self.sex(),
                record: sex,
            });
        }
        if self.birth_year() != birth_year {
            return Err(PinMismatch::BirthYear {
                pin: self.birth_year(),
                record: birth_year,
            });
        }
        Ok(())
    }
}

impl fmt::Display for PersonalIdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        super::digits::write_digits(f, &self.0)
    }
}

impl FromStr for PersonalIdNumber {
    type Err = PinError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let count = s.chars().count();
        if count != 12 {
            return Err(PinError::Length(count));
        }
        let mut digits = [0u8; 12];
        for (slot, b) in digits.iter_mut().zip(s.bytes()) {
            if !b.is_ascii_digit() {
                return Err(PinError::NotDigits);
            }
            *slot = b - b'0';
        }
        let pin = Self(digits);
        let code = pin.province_code();
        // Codes 0xx must be provinces; 1xx-9xx are country codes (abroad).
        // Both are checked against the list they name, so a number in no
        // list is refused the same way whichever part of the space it is in.
        let known = if code < 100 {
            province_name(code).is_some()
        } else {
            is_country_code(code)
        };
        if !known {
            let list = if code < 100 {
                ReferenceList::ProvinceCodes
            } else {
                ReferenceList::CountryCodes
            };
            return Err(PinError::UnknownCode(UnknownCode::new(
                list,
                format!("{code:03}"),
            )));
        }
        Ok(pin)
    }
}

impl TryFrom<String> for PersonalIdNumber {
    type Error = PinError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PersonalIdNumber> for String {
    fn from(p: PersonalIdNumber) -> Self {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table_has_63_sorted_unique_provinces() {
        assert_eq!(PROVINCE_CODES.len(), 63);
        assert!(PROVINCE_CODES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(province_name(31), Some("Hải Phòng"));
        assert_eq!(province_name(30), Some("Hải Dương"));
        assert_eq!(province_name(79), Some("Hồ Chí Minh"));
        assert_eq!(province_name(96), Some("Cà Mau"));
        assert_eq!(province_name(3), None);
    }

    #[test]
    fn reference_example_is_ha_nam_female_1999() {
        let pin: PersonalIdNumber = "035199000123".parse().unwrap();
        assert_eq!(pin.province_code(), 35);
        assert_eq!(
            pin.birth_registration(),
            BirthRegistration::Province {
                code: 35,
                name: "Hà Nam"
            }
        );
        assert_eq!(pin.century_and_sex(), (1900, Sex::Female));
        assert_eq!(pin.birth_year_two_digits(), 99);
        assert_eq!(pin.birth_year(), 1999);
        assert_eq!(pin.check_against(Sex::Female, 1999), Ok(()));
        assert_eq!(
            pin.check_against(Sex::Male, 1999),
            Err(PinMismatch::Sex {
                pin: Sex::Female,
                record: Sex::Male
            })
        );
        assert_eq!(
            pin.check_against(Sex::Female, 2099),
            Err(PinMismatch::BirthYear {
                pin: 1999,
                record: 2099
            })
        );
    }

    #[test]
    fn century_digit_covers_all_centuries() {
        let cases = [
            ('0', 1900, Sex::Male),
            ('1', 1900, Sex::Female),
            ('2', 2000, Sex::Male),
            ('3', 2000, Sex::Female),
            ('4', 2100, Sex::Male),
            ('5', 2100, Sex::Female),
            ('6', 2200, Sex::Male),
            ('7', 2200, Sex::Female),
            ('8', 2300, Sex::Male),
            ('9', 2300, Sex::Female),
        ];
        for (g, century, sex) in cases {
            let pin: PersonalIdNumber = format!("031{g}05123456").parse().unwrap();
            assert_eq!(pin.century_and_sex(), (century, sex));
            assert_eq!(pin.birth_year(), century + 5);
        }
    }

    #[test]
    fn rejects_malformed_numbers() {
        assert_eq!(
            "03519900012".parse::<PersonalIdNumber>(),
            Err(PinError::Length(11))
        );
        assert_eq!(
            "0351990001234".parse::<PersonalIdNumber>(),
            Err(PinError::Length(13))
        );
        assert_eq!(
            "03519900012a".parse::<PersonalIdNumber>(),
            Err(PinError::NotDigits)
        );
        assert_eq!(
            "03519900012٣".parse::<PersonalIdNumber>(),
            Err(PinError::NotDigits)
        );
        for (pin, list, code) in [
            ("003199000123", ReferenceList::ProvinceCodes, "003"),
            ("097199000123", ReferenceList::ProvinceCodes, "097"),
            ("099199000123", ReferenceList::ProvinceCodes, "099"),
            ("999199000123", ReferenceList::CountryCodes, "999"),
        ] {
            assert_eq!(
                pin.parse::<PersonalIdNumber>(),
                Err(PinError::UnknownCode(UnknownCode::new(list, code))),
                "{pin}"
            );
        }
    }

    #[test]
    fn non_zero_first_digit_is_a_country_code() {
        let pin: PersonalIdNumber = "840199000123".parse().unwrap();
        assert_eq!(
            pin.birth_registration(),
            BirthRegistration::Abroad { country_code: 840 }
        );
    }

    proptest! {
        #[test]
        fn display_parse_round_trips(idx in 0usize..63, rest in 0u64..1_000_000_000) {
            let code = PROVINCE_CODES[idx].0;
            let s = format!("{code:03}{rest:09}");
            let pin: PersonalIdNumber = s.parse().unwrap();
            prop_assert_eq!(pin.to_string(), s.clone());
            let json = serde_json::to_string(&pin).unwrap();
            prop_assert_eq!(serde_json::from_str::<PersonalIdNumber>(&json).unwrap(), pin);
        }
    }
}
