//! Land-use type codes of Circular 08/2024/TT-BTNMT (in force from 1 Aug 2024).
//!
//! A few sub-codes differ between sources, so the codes live in one data table
//! ([`LAND_USE_CODES`]) rather than in an enum: adding or renaming a code is a
//! data change. The table holds the codes listed in the project's reference.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::lists::{ReferenceList, UnknownCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LandUseGroup {
    Agricultural,
    NonAgricultural,
    Unused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LandUseEntry {
    pub code: &'static str,
    pub name: &'static str,
    pub group: LandUseGroup,
}

const fn entry(code: &'static str, name: &'static str, group: LandUseGroup) -> LandUseEntry {
    LandUseEntry { code, name, group }
}

use LandUseGroup::{Agricultural as A, NonAgricultural as N, Unused as U};

pub const LAND_USE_CODES: &[LandUseEntry] = &[
    entry("LUC", "Đất chuyên trồng lúa", A),
    entry("LUK", "Đất trồng lúa còn lại", A),
    entry("HNK", "Đất trồng cây hằng năm khác", A),
    entry("CLN", "Đất trồng cây lâu năm", A),
    entry("RDD", "Đất rừng đặc dụng", A),
    entry("RPH", "Đất rừng phòng hộ", A),
    entry("RSX", "Đất rừng sản xuất", A),
    entry("NTS", "Đất nuôi trồng thủy sản", A),
    entry("CNT", "Đất chăn nuôi tập trung", A),
    entry("LMU", "Đất làm muối", A),
    entry("NKH", "Đất nông nghiệp khác", A),
    entry("ONT", "Đất ở tại nông thôn", N),
    entry("ODT", "Đất ở tại đô thị", N),
    entry("TSC", "Đất xây dựng trụ sở cơ quan", N),
    entry("CQP", "Đất quốc phòng", N),
    entry("CAN", "Đất an ninh", N),
    entry("DVH", "Đất xây dựng cơ sở văn hóa", N),
    entry("DYT", "Đất xây dựng cơ sở y tế", N),
    entry("DGD", "Đất xây dựng cơ sở giáo dục và đào tạo", N),
    entry("DTT", "Đất xây dựng cơ sở thể dục, thể thao", N),
    entry("DKH", "Đất xây dựng cơ sở khoa học và công nghệ", N),
    entry("TMD", "Đất thương mại, dịch vụ", N),
    entry("SKC", "Đất cơ sở sản xuất phi nông nghiệp", N),
    entry("SKS", "Đất sử dụng cho hoạt động khoáng sản", N),
    entry("DGT", "Đất công trình giao thông", N),
    entry("DTL", "Đất công trình thủy lợi", N),
    entry("DDT", "Đất có di tích lịch sử - văn hóa", N),
    entry("DRA", "Đất công trình xử lý chất thải", N),
    entry("DNL", "Đất công trình năng lượng, chiếu sáng công cộng", N),
    entry("TON", "Đất tôn giáo", N),
    entry("TIN", "Đất tín ngưỡng", N),
    entry("NTD", "Đất nghĩa trang, nhà tang lễ, cơ sở hỏa táng", N),
    entry(
        "SON",
        "Đất có mặt nước chảy (sông, ngòi, kênh, rạch, suối)",
        N,
    ),
    entry("MNC", "Đất có mặt nước chuyên dùng", N),
    entry("PNK", "Đất phi nông nghiệp khác", N),
    entry("BCS", "Đất bằng chưa sử dụng", U),
    entry("DCS", "Đất đồi núi chưa sử dụng", U),
    entry("NCS", "Núi đá không có rừng cây", U),
];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LandUseCodeError {
    #[error(transparent)]
    Unknown(UnknownCode),
}

/// A code from [`LAND_USE_CODES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LandUseCode(&'static LandUseEntry);

impl std::hash::Hash for LandUseEntry {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.code.hash(state);
    }
}

impl LandUseCode {
    pub fn code(&self) -> &'static str {
        self.0.code
    }
    pub fn name(&self) -> &'static str {
        self.0.name
    }
    pub fn group(&self) -> LandUseGroup {
        self.0.group
    }
}

impl fmt::Display for LandUseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.code)
    }
}

impl FromStr for LandUseCode {
    type Err = LandUseCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_uppercase();
        LAND_USE_CODES
            .iter()
            .find(|e| e.code == wanted)
            .map(LandUseCode)
            .ok_or_else(|| {
                LandUseCodeError::Unknown(UnknownCode::new(ReferenceList::LandUseCodes, s.trim()))
            })
    }
}

impl TryFrom<String> for LandUseCode {
    type Error = LandUseCodeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<LandUseCode> for String {
    fn from(c: LandUseCode) -> Self {
        c.0.code.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_the_reference_codes() {
        let agri = "LUC LUK HNK CLN RDD RPH RSX NTS CNT LMU NKH";
        let non = "ONT ODT TSC CQP CAN DVH DYT DGD DTT DKH TMD SKC SKS DGT DTL DDT DRA DNL TON TIN NTD SON MNC PNK";
        let unused = "BCS DCS NCS";
        for (codes, group) in [(agri, A), (non, N), (unused, U)] {
            for c in codes.split(' ') {
                let code: LandUseCode = c.parse().unwrap();
                assert_eq!(code.group(), group, "{c}");
                assert_eq!(code.to_string(), c);
            }
        }
        assert_eq!(LAND_USE_CODES.len(), 38);
        let mut codes: Vec<_> = LAND_USE_CODES.iter().map(|e| e.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 38);
    }

    #[test]
    fn parsing_is_case_insensitive_and_rejects_unknown() {
        assert_eq!(
            "odt".parse::<LandUseCode>().map(|c| c.name()),
            Ok("Đất ở tại đô thị")
        );
        assert!(matches!(
            "XYZ".parse::<LandUseCode>(),
            Err(LandUseCodeError::Unknown(_))
        ));
        let json = serde_json::to_string(&"ONT".parse::<LandUseCode>().unwrap()).unwrap();
        assert_eq!(json, "\"ONT\"");
    }
}
