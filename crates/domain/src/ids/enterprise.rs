//! Enterprise code = tax code (mã số doanh nghiệp / mã số thuế).
//!
//! Format `N1N2 N3…N9 N10`, optionally `-N11N12N13` for branches and dependent
//! units (Circular 105/2020/TT-BTC art. 5, now Circular 86/2024/TT-BTC). The
//! check digit is `N10 = 10 − (S mod 11)` with
//! `S = 31·N1 + 29·N2 + 23·N3 + 19·N4 + 17·N5 + 13·N6 + 7·N7 + 5·N8 + 3·N9`;
//! `S mod 11 = 10` gives 0, and `S mod 11 = 0` gives 10, which no digit can
//! hold: such codes are refused for new registrations ([`EnterpriseCode::parse_strict`])
//! but accepted with a warning for legacy data ([`EnterpriseCode::parse_legacy`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

const WEIGHTS: [u32; 9] = [31, 29, 23, 19, 17, 13, 7, 5, 3];

/// What the check-digit formula says about nine leading digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckDigit {
    Digit(u8),
    /// `S mod 11 = 0`: the formula yields 10, no valid digit exists.
    None,
}

/// The check digit for `N1..N9`.
pub fn check_digit(first_nine: &[u8; 9]) -> CheckDigit {
    let s: u32 = first_nine
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(*d) * w)
        .sum();
    match s % 11 {
        0 => CheckDigit::None,
        10 => CheckDigit::Digit(0),
        // 1..=9 here, so 10 - r is a single digit.
        r => CheckDigit::Digit(u8::try_from(10 - r).unwrap_or(0)),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnterpriseCodeError {
    #[error("an enterprise code is 10 digits, optionally followed by `-` and 3 digits: `{0}`")]
    Format(String),
    #[error("digits N3..N9 of an enterprise code cannot all be zero")]
    ZeroSerial,
    #[error("check digit is {found}, expected {expected}")]
    CheckDigit { expected: u8, found: u8 },
    #[error(
        "no check digit is possible for these nine digits (S mod 11 = 0); only legacy data may carry such a code"
    )]
    NoCheckDigitPossible,
    #[error("branch suffix 000 is invalid")]
    ZeroBranchSuffix,
}

/// Accepted, but worth telling a steward about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EnterpriseCodeWarning {
    /// Legacy code whose nine digits admit no check digit (S mod 11 = 0).
    NoCheckDigitPossible,
}

/// A validated enterprise code, possibly with a branch suffix.
///
/// Serde deserialises in *legacy* mode, because stored events must stay
/// readable; new registrations are checked strictly in `decide`
/// (see [`EnterpriseCode::has_legacy_check_digit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnterpriseCode {
    digits: [u8; 10],
    /// 1..=999 when present.
    branch: Option<u16>,
}

impl EnterpriseCode {
    /// For new registrations: the check digit must be computable and right.
    pub fn parse_strict(s: &str) -> Result<Self, EnterpriseCodeError> {
        match Self::parse_legacy(s)? {
            (code, None) => Ok(code),
            (_, Some(EnterpriseCodeWarning::NoCheckDigitPossible)) => {
                Err(EnterpriseCodeError::NoCheckDigitPossible)
            }
        }
    }

    /// For legacy data: a code whose nine digits admit no check digit is
    /// accepted (whatever its tenth digit) with a warning.
    pub fn parse_legacy(
        s: &str,
    ) -> Result<(Self, Option<EnterpriseCodeWarning>), EnterpriseCodeError> {
        let s = s.trim();
        let format_err = || EnterpriseCodeError::Format(s.to_owned());
        let (main, suffix) = match s.split_once('-') {
            Some((m, b)) => (m, Some(b)),
            None => (s, None),
        };
        if main.len() != 10 || !main.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format_err());
        }
        let mut digits = [0u8; 10];
        for (slot, b) in digits.iter_mut().zip(main.bytes()) {
            *slot = b - b'0';
        }
        let branch = match suffix {
            None => None,
            Some(b) if b.len() == 3 && b.bytes().all(|c| c.is_ascii_digit()) => {
                let n: u16 = b.parse().map_err(|_| format_err())?;
                if n == 0 {
                    return Err(EnterpriseCodeError::ZeroBranchSuffix);
                }
                Some(n)
            }
            Some(_) => return Err(format_err()),
        };
        if digits[2..9].iter().all(|d| *d == 0) {
            return Err(EnterpriseCodeError::ZeroSerial);
        }
        let mut first_nine = [0u8; 9];
        first_nine.copy_from_slice(&digits[..9]);
        let warning = match check_digit(&first_nine) {
            CheckDigit::Digit(expected) if expected == digits[9] => None,
            CheckDigit::Digit(expected) => {
                return Err(EnterpriseCodeError::CheckDigit {
                    expected,
                    found: digits[9],
                });
            }
            CheckDigit::None => Some(EnterpriseCodeWarning::NoCheckDigitPossible),
        };
        Ok((Self { digits, branch }, warning))
    }

    /// True for codes whose nine digits admit no check digit (legacy only).
    pub fn has_legacy_check_digit(&self) -> bool {
        let mut first_nine = [0u8; 9];
        first_nine.copy_from_slice(&self.digits[..9]);
        check_digit(&first_nine) == CheckDigit::None
    }

    pub fn is_branch(&self) -> bool {
        self.branch.is_some()
    }

    pub fn branch_suffix(&self) -> Option<u16> {
        self.branch
    }

    /// The enterprise's own code for a branch code; `None` for a main code.
    pub fn parent(&self) -> Option<EnterpriseCode> {
        self.branch.map(|_| Self {
            digits: self.digits,
            branch: None,
        })
    }

    /// The code of branch `suffix` (1..=999) of this (main) code.
    pub fn branch(&self, suffix: u16) -> Result<EnterpriseCode, EnterpriseCodeError> {
        match suffix {
            0 => Err(EnterpriseCodeError::ZeroBranchSuffix),
            1..=999 if self.branch.is_none() => Ok(Self {
                digits: self.digits,
                branch: Some(suffix),
            }),
            _ => Err(EnterpriseCodeError::Format(format!("{self}-{suffix}"))),
        }
    }
}

impl fmt::Display for EnterpriseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        super::digits::write_digits(f, &self.digits)?;
        if let Some(b) = self.branch {
            write!(f, "-{b:03}")?;
        }
        Ok(())
    }
}

/// `FromStr` is the strict mode: what a clerk types for a new registration.
impl FromStr for EnterpriseCode {
    type Err = EnterpriseCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_strict(s)
    }
}

impl TryFrom<String> for EnterpriseCode {
    type Error = EnterpriseCodeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse_legacy(&s).map(|(code, _)| code)
    }
}

impl From<EnterpriseCode> for String {
    fn from(c: EnterpriseCode) -> Self {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reference_worked_example() {
        // S = 0+29+0+0+34+39+21+20+24 = 167; 167 mod 11 = 2; 10 − 2 = 8.
        assert_eq!(
            check_digit(&[0, 1, 0, 0, 2, 3, 3, 4, 8]),
            CheckDigit::Digit(8)
        );
        let code = EnterpriseCode::parse_strict("0100233488").unwrap();
        assert_eq!(code.to_string(), "0100233488");
        assert!(!code.is_branch());
        assert_eq!(code.parent(), None);
        assert_eq!(
            EnterpriseCode::parse_strict("0100233480"),
            Err(EnterpriseCodeError::CheckDigit {
                expected: 8,
                found: 0
            })
        );
        // The Hải Phòng example from the reference.
        assert!(EnterpriseCode::parse_strict("0200566628").is_ok());
    }

    #[test]
    fn remainder_ten_gives_zero() {
        // Find nine digits with S mod 11 = 10 and check the digit is 0.
        let nine = [0, 2, 0, 0, 0, 0, 0, 1, 3]; // S = 58+5+9 = 72; 72 mod 11 = 6 → 4
        assert_eq!(check_digit(&nine), CheckDigit::Digit(4));
        let nine = [0, 2, 0, 0, 0, 0, 0, 0, 6]; // S = 58+18 = 76; 76 mod 11 = 10 → 0
        assert_eq!(check_digit(&nine), CheckDigit::Digit(0));
        assert!(EnterpriseCode::parse_strict("0200000060").is_ok());
    }

    #[test]
    fn remainder_zero_is_legacy_only() {
        // 020100000x: S = 29·2 + 19·1 = 77 = 7·11, so S mod 11 = 0.
        assert_eq!(check_digit(&[0, 2, 0, 1, 0, 0, 0, 0, 0]), CheckDigit::None);
        assert_eq!(
            EnterpriseCode::parse_strict("0201000007"),
            Err(EnterpriseCodeError::NoCheckDigitPossible)
        );
        let (code, warning) = EnterpriseCode::parse_legacy("0201000007").unwrap();
        assert_eq!(warning, Some(EnterpriseCodeWarning::NoCheckDigitPossible));
        assert!(code.has_legacy_check_digit());
        // Serde reads legacy codes (stored data must stay readable).
        let json = serde_json::to_string(&code).unwrap();
        assert_eq!(serde_json::from_str::<EnterpriseCode>(&json).unwrap(), code);
    }

    #[test]
    fn branches() {
        let branch = EnterpriseCode::parse_strict("0100233488-001").unwrap();
        assert!(branch.is_branch());
        assert_eq!(branch.branch_suffix(), Some(1));
        assert_eq!(
            branch.parent().map(|p| p.to_string()),
            Some("0100233488".to_owned())
        );
        assert_eq!(branch.to_string(), "0100233488-001");
        assert_eq!(
            EnterpriseCode::parse_strict("0100233488-000"),
            Err(EnterpriseCodeError::ZeroBranchSuffix)
        );
        for bad in [
            "0100233488-01",
            "0100233488-0001",
            "0100233488-",
            "0100233488-abc",
        ] {
            assert!(
                matches!(
                    EnterpriseCode::parse_strict(bad),
                    Err(EnterpriseCodeError::Format(_))
                ),
                "{bad}"
            );
        }
        let parent = branch.parent().unwrap();
        assert_eq!(parent.branch(1), Ok(branch));
        assert!(branch.branch(2).is_err());
        assert_eq!(parent.branch(0), Err(EnterpriseCodeError::ZeroBranchSuffix));
    }

    #[test]
    fn structural_rules() {
        assert_eq!(
            EnterpriseCode::parse_strict("0100000000"),
            Err(EnterpriseCodeError::ZeroSerial)
        );
        assert_eq!(
            EnterpriseCode::parse_strict("9900000005"),
            Err(EnterpriseCodeError::ZeroSerial)
        );
        for bad in ["010023348", "01002334888", "010023348a", "", "0100 233488"] {
            assert!(
                matches!(
                    EnterpriseCode::parse_strict(bad),
                    Err(EnterpriseCodeError::Format(_))
                ),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn valid_codes_round_trip(nine in proptest::array::uniform9(0u8..10), suffix in proptest::option::of(1u16..1000)) {
            let CheckDigit::Digit(check) = check_digit(&nine) else { return Ok(()) };
            if nine[2..].iter().all(|d| *d == 0) { return Ok(()); }
            let mut s: String = nine.iter().map(|d| char::from(b'0' + d)).collect();
            s.push(char::from(b'0' + check));
            if let Some(b) = suffix { s.push_str(&format!("-{b:03}")); }
            let code = EnterpriseCode::parse_strict(&s).unwrap();
            prop_assert_eq!(code.to_string(), s.clone());
            prop_assert_eq!(code.to_string().parse::<EnterpriseCode>(), Ok(code));
            // Any other tenth digit is rejected.
            let mut wrong = s.clone().into_bytes();
            wrong[9] = b'0' + (check + 1) % 10;
            prop_assert!(EnterpriseCode::parse_strict(std::str::from_utf8(&wrong).unwrap()).is_err());
        }
    }
}
