//! The 5-digit code of a commune-level unit. Its own module so the unit
//! tables (this module's parent and the predecessor table beside it) can both
//! use it without importing each other.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AdminUnitCodeError {
    #[error("an administrative unit code is exactly 5 digits, got `{0}`")]
    Format(String),
}

/// A 5-digit commune-level unit code (opaque: no province prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AdminUnitCode(pub(super) [u8; 5]);

crate::text_form::serde_as_text!(AdminUnitCode);

impl fmt::Display for AdminUnitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Five ASCII digits (`from_str` checks them): one write, not one per character.
        f.write_str(std::str::from_utf8(&self.0).map_err(|_| fmt::Error)?)
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
