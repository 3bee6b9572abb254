//! Land-use right certificate (GCN) issue serial, e.g. `CB 246904`: two
//! uppercase letters, a space, six digits. Distinct from the registry entry
//! number, which is stored separately as text.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertificateSerialError {
    #[error("a certificate serial is two letters and six digits (e.g. `CB 246904`), got `{0}`")]
    Format(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertificateSerial {
    letters: [u8; 2],
    digits: [u8; 6],
}

crate::text_form::serde_as_text!(CertificateSerial);

impl fmt::Display for CertificateSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letters: String = self.letters.iter().map(|b| char::from(*b)).collect();
        let digits: String = self.digits.iter().map(|b| char::from(*b)).collect();
        write!(f, "{letters} {digits}")
    }
}

/// Normalises clerk input: case and spacing are ignored (`cb246904`,
/// `CB-246904` is not accepted: only whitespace is dropped).
impl FromStr for CertificateSerial {
    type Err = CertificateSerialError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let compact: Vec<u8> = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect::<String>()
            .into_bytes();
        let err = || CertificateSerialError::Format(s.to_owned());
        let [l1, l2, d @ ..] = compact.as_slice() else {
            return Err(err());
        };
        let digits: [u8; 6] = d.try_into().map_err(|_| err())?;
        if !(l1.is_ascii_uppercase()
            && l2.is_ascii_uppercase()
            && digits.iter().all(u8::is_ascii_digit))
        {
            return Err(err());
        }
        Ok(Self {
            letters: [*l1, *l2],
            digits,
        })
    }
}

impl TryFrom<String> for CertificateSerial {
    type Error = CertificateSerialError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<CertificateSerial> for String {
    fn from(c: CertificateSerial) -> Self {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_input() {
        for input in ["CB 246904", "cb246904", "  Cb  246904 "] {
            assert_eq!(
                input.parse::<CertificateSerial>().unwrap().to_string(),
                "CB 246904"
            );
        }
        for bad in [
            "C 246904",
            "CB 24690",
            "CB 2469045",
            "C1 246904",
            "CB-246904",
            "ĐB 246904",
            "",
        ] {
            assert!(bad.parse::<CertificateSerial>().is_err(), "{bad}");
        }
    }
}
