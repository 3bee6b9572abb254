//! Reading a [`Record`] without buffering it first.
//!
//! `Record` is stored internally tagged (`{"kind":"citizen", …fields}`, the format of every
//! projected state and every state set aside). serde's derive for that representation cannot
//! know where the tag is, so it first copies the whole object into an intermediate tree (a
//! `String` for every key and text value) and only then reads the variant from the copy: about
//! half of a state's decoding time, and a state is decoded on every read of a record.
//!
//! Every state this code writes puts the tag first (serde serialises the tag before the
//! fields), so the reader here takes that as the fast path: the first key is `kind`, then the
//! rest of the same map is read straight into the variant's struct (`crate::tagged`, shared with
//! `Command`'s reader). Any other order is still
//! accepted, through a buffered path, with the same result: the format is the same, only the
//! reading is faster (`tests::every_key_order_reads_the_same_record`). One difference: a second
//! `kind` after a first one is ignored, where the derive refuses the object; no writer makes
//! one.

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::ids::RecordKind;
use crate::snapshot::Record;

/// The tag's key. Its values are `RecordKind`'s names (`#[serde(tag = "kind", rename_all =
/// "snake_case")]` on `Record`), so a new kind is a new arm in [`variant`], or no build.
const TAG: &str = "kind";

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RecordVisitor)
    }
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = Record;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a record state: an object with its kind")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Record, A::Error> {
        crate::tagged::visit(map, TAG, variant, variant)
    }
}

/// The rest of the object, read as the variant `kind` names.
fn variant<'de, D: Deserializer<'de>>(kind: RecordKind, rest: D) -> Result<Record, D::Error> {
    Ok(match kind {
        RecordKind::Citizen => Record::Citizen(Deserialize::deserialize(rest)?),
        RecordKind::Business => Record::Business(Deserialize::deserialize(rest)?),
        RecordKind::Parcel => Record::Parcel(Deserialize::deserialize(rest)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// States as a 1/10 city's projections hold them (`citydb fixtures`, seed 2025): each kind,
    /// with the nested tagged values (life, status, origin, holders, corrections) they carry.
    const STATES: [&str; 5] = [
        r#"{"kind":"citizen","id":"22ed2420-9431-8001-8c16-1148e08652f1","pin":"030197535452","name":{"family":"Nguyễn","middle":"Minh","given":"Phương"},"sex":"female","birth_date":"1997-11-13","birth_place":"11239","father":"22ed2420-9431-8001-ab95-c81d79c6e658","mother":"22ed2420-9431-8001-b22c-d4ed4c85775b","permanent_residence":{"commune":"11239","address":"Xóm 7, thôn Hòa Liễu","since":"2012-07-18"},"temporary_residence":null,"marriage":null,"identity_card":{"number":"030197535452","issue_date":"2021-08-22","place":"Cục Cảnh sát quản lý hành chính về trật tự xã hội"},"life":{"status":"alive"},"merged_into":null,"absorbed":[],"origin":{"kind":"initial_load","source":"CSDLQG về dân cư"},"corrections":{"22ed2420-9431-8004-8015-f6db95bf6aed":{"id":"22ed2420-9431-8004-8015-f6db95bf6aed","changes":[{"field":"name.given","old":"Phuong","new":"Phương"}],"reason":"Tên ghi thiếu dấu so với Giấy khai sinh bản chính","legal_basis":{"document_number":"123/QĐ-UBND","document_date":"2025-06-29"},"proposed_by":"steward-11239-02","status":{"status":"approved","by":"supervisor-11239-01"}}}}"#,
        r#"{"kind":"citizen","id":"22ed2420-9431-8001-baf7-6af2e76794d0","pin":"030150269696","name":{"family":"Phạm","middle":"Mai","given":"Phương"},"sex":"female","birth_date":"1950-08-29","birth_place":"10930","father":null,"mother":null,"permanent_residence":{"commune":"10930","address":"Thôn Bàng La","since":"2020-05-31"},"temporary_residence":null,"marriage":{"spouse":"22ed2420-9431-8001-b758-4012071b54b4","since":"1975-09-12"},"identity_card":{"number":"030150269696","issue_date":"2022-03-15","place":"Cục Cảnh sát quản lý hành chính về trật tự xã hội"},"life":{"status":"deceased","date":"2018-07-01"},"merged_into":null,"absorbed":[],"origin":{"kind":"initial_load","source":"CSDLQG về dân cư"},"corrections":{}}"#,
        r#"{"kind":"citizen","id":"22ed2420-9431-8001-bb5f-56f9937c3062","pin":"031067385902","name":{"family":"Nguyễn","middle":"Việt","given":"Hưng"},"sex":"male","birth_date":"1967-02-03","birth_place":"10525","father":null,"mother":null,"permanent_residence":null,"temporary_residence":null,"marriage":null,"identity_card":null,"life":{"status":"alive"},"merged_into":"22ed2420-9431-8001-88e8-98707043824f","absorbed":[],"origin":{"kind":"initial_load","source":"Sổ hộ tịch giấy đã số hóa"},"corrections":{}}"#,
        r#"{"kind":"business","id":"22ed2420-9431-8002-b9df-795ef17de641","code":"0219078550","names":{"vietnamese":"Công ty Cổ phần Đóng tàu Nam Phong","english":"Nam Phong Shipbuilding Joint Stock Company","abbreviated":"NAM PHONG JSC"},"head_office":{"commune":"11533","street":"Số 48 ngách 2/331 phố Lạch Tray"},"legal_representatives":["22ed2420-9431-8001-8f28-7d22230ae7f7","22ed2420-9431-8001-b599-96daec7821c0"],"charter_capital":461000000000,"business_lines":["3011","3315"],"registration_date":"2023-01-22","parent":null,"branches":["22ed2420-9431-8002-9d1f-efcd2793f4d4","22ed2420-9431-8002-82c7-39caa93c4159"],"status":{"status":"active"},"origin":{"kind":"initial_load","source":"Hệ thống thông tin quốc gia về đăng ký doanh nghiệp"},"corrections":{}}"#,
        r#"{"kind":"parcel","id":"22ed2420-9431-8003-b4a3-fc0a59c49b29","key":"10972/10972:1/1","national_parcel_id":null,"area":"723.40","land_use":["ONT","CLN"],"address":"Thôn Tràng Duệ","geometry":null,"holders":[{"holder":{"kind":"citizen","id":"22ed2420-9431-8001-80f0-341830291525"},"share":"1/2"},{"holder":{"kind":"citizen","id":"22ed2420-9431-8001-afa6-679303ccca41"},"share":"1/2"}],"certificate":{"serial":"BY 530202","entry_number":"CH00001","issue_date":"2011-08-22","issuer":"Sở Tài nguyên và Môi trường tỉnh Hải Dương"},"mortgages":[],"status":{"status":"active"},"origin":{"kind":"registration"},"corrections":{}}"#,
    ];

    fn sample_records() -> Vec<Record> {
        STATES
            .iter()
            .map(|text| {
                let record: Record = serde_json::from_str::<Derived>(text).unwrap().into();
                // The samples are in the stored format, byte for byte.
                assert_eq!(serde_json::to_string(&record).unwrap(), *text);
                record
            })
            .collect()
    }

    /// serde's own reading of the same format, for comparison.
    #[derive(Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Derived {
        Citizen(crate::citizen::state::Citizen),
        Business(crate::business::state::Business),
        Parcel(crate::parcel::state::Parcel),
    }

    impl From<Derived> for Record {
        fn from(d: Derived) -> Record {
            match d {
                Derived::Citizen(c) => Record::Citizen(c),
                Derived::Business(b) => Record::Business(b),
                Derived::Parcel(p) => Record::Parcel(p),
            }
        }
    }

    #[test]
    fn every_key_order_reads_the_same_record() {
        for record in sample_records() {
            let json = serde_json::to_string(&record).unwrap();
            let tag = serde_json::to_string(&record.kind()).unwrap();
            assert!(
                json.starts_with(&format!("{{\"kind\":{tag},")),
                "the tag is written first, as RecordKind names it: {json}"
            );
            let Value::Object(object) = serde_json::to_value(&record).unwrap() else {
                panic!("a record is an object");
            };
            // The tag first (the fast path), last, and in the middle.
            let keys: Vec<String> = object.keys().cloned().collect();
            for at in [0, keys.len() / 2, keys.len()] {
                let mut moved: Vec<(String, Value)> = object
                    .iter()
                    .filter(|(k, _)| k.as_str() != TAG)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                moved.insert(at.min(moved.len()), (TAG.into(), object[TAG].clone()));
                let text = format!(
                    "{{{}}}",
                    moved
                        .iter()
                        .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                let fast: Record = serde_json::from_str(&text).unwrap();
                let derived: Record = serde_json::from_str::<Derived>(&text).unwrap().into();
                assert_eq!(fast, record, "tag at {at}: {text}");
                assert_eq!(derived, record);
                // From a `Value` too (the buffered path's own input).
                let from_value: Record =
                    serde_json::from_value(serde_json::from_str::<Value>(&text).unwrap()).unwrap();
                assert_eq!(from_value, record);
            }
        }
    }

    #[test]
    fn what_serde_refuses_is_refused() {
        for bad in [
            r#"{}"#,
            r#"{"kind":"ship","id":"x"}"#,
            r#"{"id":"22ed2420-9431-8001-b0a7-b5aa9efd24c5"}"#,
            r#"{"kind":"citizen"}"#,
            r#"{"kind":"citizen","kind":"citizen"}"#,
            r#"[]"#,
            r#""citizen""#,
        ] {
            assert!(serde_json::from_str::<Record>(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<Derived>(bad).is_err(), "{bad}");
        }
    }
}
