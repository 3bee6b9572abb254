//! Exact quantities: ownership shares, land areas and money. No floating
//! point anywhere: shares must sum to exactly 1 and split areas must add up to
//! exactly the source area, which floats cannot promise.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ShareError {
    #[error("a share is `n/d` or `1` with 0 < n ≤ d, got `{0}`")]
    Format(String),
    #[error("a share must be greater than 0 and at most 1")]
    OutOfRange,
    #[error("share arithmetic overflowed")]
    Overflow,
}

/// A fraction of a right, `0 < share ≤ 1`, kept reduced (so equality is
/// structural). Serialised as `"1/2"`, or `"1"` for the whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Share {
    num: u128,
    den: u128,
}

crate::text_form::serde_as_text!(Share);

/// A non-negative exact sum of shares (may exceed 1 while adding up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareSum {
    num: u128,
    den: u128,
}

impl ShareSum {
    pub const ZERO: ShareSum = ShareSum { num: 0, den: 1 };

    pub fn plus(self, s: Share) -> Result<ShareSum, ShareError> {
        let g = gcd(self.den, s.den);
        let lcm = (self.den / g)
            .checked_mul(s.den)
            .ok_or(ShareError::Overflow)?;
        let a = self
            .num
            .checked_mul(lcm / self.den)
            .ok_or(ShareError::Overflow)?;
        let b = s.num.checked_mul(lcm / s.den).ok_or(ShareError::Overflow)?;
        let num = a.checked_add(b).ok_or(ShareError::Overflow)?;
        let g = gcd(num, lcm).max(1);
        Ok(ShareSum {
            num: num / g,
            den: lcm / g,
        })
    }

    pub fn is_one(&self) -> bool {
        self.num == self.den
    }
}

impl fmt::Display for ShareSum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

impl Share {
    pub const WHOLE: Share = Share { num: 1, den: 1 };

    pub fn new(num: u128, den: u128) -> Result<Self, ShareError> {
        if num == 0 || den == 0 || num > den {
            return Err(ShareError::OutOfRange);
        }
        let g = gcd(num, den);
        Ok(Self {
            num: num / g,
            den: den / g,
        })
    }

    pub fn numerator(&self) -> u128 {
        self.num
    }
    pub fn denominator(&self) -> u128 {
        self.den
    }

    /// The exact sum of `shares`.
    pub fn sum<'a>(shares: impl IntoIterator<Item = &'a Share>) -> Result<ShareSum, ShareError> {
        shares
            .into_iter()
            .try_fold(ShareSum::ZERO, |acc, s| acc.plus(*s))
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

impl FromStr for Share {
    type Err = ShareError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ShareError::Format(s.to_owned());
        let digits = |t: &str| -> Result<u128, ShareError> {
            let t = t.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            t.parse().map_err(|_| err())
        };
        match s.split_once('/') {
            Some((n, d)) => Self::new(digits(n)?, digits(d)?),
            None => Self::new(digits(s)?, 1),
        }
    }
}

impl TryFrom<String> for Share {
    type Error = ShareError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Share> for String {
    fn from(s: Share) -> Self {
        s.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AreaError {
    #[error("an area is square metres with at most two decimals (e.g. `125.5`), got `{0}`")]
    Format(String),
    #[error("area arithmetic overflowed")]
    Overflow,
}

/// A land area held exactly, in hundredths of a square metre (= dm²).
/// Serialised as a decimal string of square metres with two decimals,
/// `"125.50"`; parsing accepts 0–2 decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Area {
    hundredths: u64,
}

crate::text_form::serde_as_text!(Area);

impl Area {
    pub const ZERO: Area = Area { hundredths: 0 };

    pub fn from_hundredths(hundredths: u64) -> Self {
        Self { hundredths }
    }
    pub fn hundredths(&self) -> u64 {
        self.hundredths
    }
    pub fn checked_add(self, other: Area) -> Result<Area, AreaError> {
        self.hundredths
            .checked_add(other.hundredths)
            .map(Area::from_hundredths)
            .ok_or(AreaError::Overflow)
    }
    pub fn sum<'a>(areas: impl IntoIterator<Item = &'a Area>) -> Result<Area, AreaError> {
        areas
            .into_iter()
            .try_fold(Area::ZERO, |acc, a| acc.checked_add(*a))
    }
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.hundredths / 100, self.hundredths % 100)
    }
}

impl FromStr for Area {
    type Err = AreaError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || AreaError::Format(s.to_owned());
        let t = s.trim();
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !all_digits(whole)
            || frac.len() > 2
            || !all_digits(frac)
            || t.ends_with('.')
        {
            return Err(err());
        }
        let whole: u64 = whole.parse().map_err(|_| err())?;
        let frac: u64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<u64>().map_err(|_| err())? * 10,
            _ => frac.parse().map_err(|_| err())?,
        };
        whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(frac))
            .map(Area::from_hundredths)
            .ok_or_else(err)
    }
}

impl TryFrom<String> for Area {
    type Error = AreaError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Area> for String {
    fn from(a: Area) -> Self {
        a.to_string()
    }
}

/// An amount of Vietnamese đồng (no minor unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Vnd(pub u64);

impl fmt::Display for Vnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} VND", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shares_are_reduced_and_bounded() {
        assert_eq!("2/4".parse::<Share>().unwrap().to_string(), "1/2");
        assert_eq!("1".parse::<Share>(), Ok(Share::WHOLE));
        assert_eq!("3/3".parse::<Share>(), Ok(Share::WHOLE));
        assert_eq!("0/3".parse::<Share>(), Err(ShareError::OutOfRange));
        assert_eq!("4/3".parse::<Share>(), Err(ShareError::OutOfRange));
        assert_eq!("1/0".parse::<Share>(), Err(ShareError::OutOfRange));
        assert!(matches!(
            "-1/2".parse::<Share>(),
            Err(ShareError::Format(_))
        ));
        assert!(matches!("0.5".parse::<Share>(), Err(ShareError::Format(_))));
    }

    #[test]
    fn sums_are_exact() {
        let s: Vec<Share> = ["1/3", "1/3", "1/3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert!(Share::sum(&s).unwrap().is_one());
        let s: Vec<Share> = ["1/2", "1/3", "1/7"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let sum = Share::sum(&s).unwrap();
        assert!(!sum.is_one());
        assert_eq!(sum.to_string(), "41/42");
        let huge = Share::new(1, u128::MAX).unwrap();
        let other = Share::new(1, u128::MAX - 1).unwrap();
        assert_eq!(Share::sum(&[huge, other]), Err(ShareError::Overflow));
    }

    #[test]
    fn areas_parse_exactly() {
        assert_eq!("125.5".parse::<Area>().map(|a| a.hundredths()), Ok(12550));
        assert_eq!(
            "125".parse::<Area>().map(|a| a.to_string()),
            Ok("125.00".to_owned())
        );
        assert_eq!("0.07".parse::<Area>().map(|a| a.hundredths()), Ok(7));
        for bad in ["", ".5", "1.", "1.234", "-1", "1e3", "1,5"] {
            assert!(bad.parse::<Area>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn share_round_trips(n in 1u128..1_000_000, extra in 0u128..1_000_000) {
            let s = Share::new(n, n + extra).unwrap();
            prop_assert_eq!(s.to_string().parse::<Share>(), Ok(s));
        }

        #[test]
        fn area_round_trips(h in any::<u64>()) {
            let a = Area::from_hundredths(h);
            prop_assert_eq!(a.to_string().parse::<Area>(), Ok(a));
        }

        #[test]
        fn n_equal_shares_sum_to_one(n in 1u128..200) {
            let parts = vec![Share::new(1, n).unwrap(); usize::try_from(n).unwrap()];
            prop_assert!(Share::sum(&parts).unwrap().is_one());
        }
    }
}
