//! Business-line code from the Vietnam Standard Industrial Classification
//! (VSIC). Business registration records level-4 codes (4 digits); level-5
//! codes (5 digits) are accepted too. Codes are opaque: no table is embedded.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

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

#[cfg(test)]
mod tests {
    use super::*;

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
