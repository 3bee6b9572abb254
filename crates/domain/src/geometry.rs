//! Optional parcel outline: a GeoJSON `Polygon` or `MultiPolygon` geometry
//! object (RFC 7946), validated structurally and kept as JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GeometryError {
    #[error("geometry must be a GeoJSON object with type Polygon or MultiPolygon")]
    Type,
    #[error("geometry coordinates are malformed: {0}")]
    Coordinates(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct Geometry(Value);

fn position(v: &Value) -> Result<(), GeometryError> {
    match v.as_array() {
        Some(p)
            if (2..=3).contains(&p.len())
                && p.iter().all(|c| c.as_f64().is_some_and(f64::is_finite)) =>
        {
            Ok(())
        }
        _ => Err(GeometryError::Coordinates(
            "a position is 2 or 3 finite numbers",
        )),
    }
}

/// A linear ring: at least four positions, first equals last.
fn ring(v: &Value) -> Result<(), GeometryError> {
    let positions = v.as_array().ok_or(GeometryError::Coordinates(
        "a ring is an array of positions",
    ))?;
    if positions.len() < 4 {
        return Err(GeometryError::Coordinates(
            "a ring has at least four positions",
        ));
    }
    positions.iter().try_for_each(position)?;
    if positions.first() != positions.last() {
        return Err(GeometryError::Coordinates(
            "a ring must be closed (first position = last)",
        ));
    }
    Ok(())
}

fn polygon(v: &Value) -> Result<(), GeometryError> {
    match v.as_array() {
        Some(rings) if !rings.is_empty() => rings.iter().try_for_each(ring),
        _ => Err(GeometryError::Coordinates(
            "a polygon is a non-empty array of rings",
        )),
    }
}

impl Geometry {
    pub fn new(value: Value) -> Result<Self, GeometryError> {
        let coords = value.get("coordinates");
        match (value.get("type").and_then(Value::as_str), coords) {
            (Some("Polygon"), Some(c)) => polygon(c)?,
            (Some("MultiPolygon"), Some(c)) => match c.as_array() {
                Some(polys) if !polys.is_empty() => polys.iter().try_for_each(polygon)?,
                _ => {
                    return Err(GeometryError::Coordinates(
                        "a multipolygon is a non-empty array of polygons",
                    ));
                }
            },
            (Some("Polygon" | "MultiPolygon"), None) => {
                return Err(GeometryError::Coordinates("missing `coordinates`"));
            }
            _ => return Err(GeometryError::Type),
        }
        Ok(Self(value))
    }

    pub fn as_json(&self) -> &Value {
        &self.0
    }
}

impl TryFrom<Value> for Geometry {
    type Error = GeometryError;
    fn try_from(v: Value) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<Geometry> for Value {
    fn from(g: Geometry) -> Self {
        g.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_polygons_and_multipolygons() {
        let ring = json!([
            [106.68, 20.86],
            [106.69, 20.86],
            [106.69, 20.87],
            [106.68, 20.86]
        ]);
        assert!(Geometry::new(json!({"type": "Polygon", "coordinates": [ring]})).is_ok());
        assert!(Geometry::new(json!({"type": "MultiPolygon", "coordinates": [[ring]]})).is_ok());
    }

    #[test]
    fn rejects_other_shapes() {
        assert_eq!(
            Geometry::new(json!({"type": "Point", "coordinates": [1, 2]})),
            Err(GeometryError::Type)
        );
        assert_eq!(Geometry::new(json!("Polygon")), Err(GeometryError::Type));
        let open = json!([[0, 0], [1, 0], [1, 1], [0, 1]]);
        assert!(matches!(
            Geometry::new(json!({"type": "Polygon", "coordinates": [open]})),
            Err(GeometryError::Coordinates(_))
        ));
        let short = json!([[0, 0], [1, 0], [0, 0]]);
        assert!(Geometry::new(json!({"type": "Polygon", "coordinates": [short]})).is_err());
        let bad = json!([[0, 0], [1, "x"], [1, 1], [0, 0]]);
        assert!(Geometry::new(json!({"type": "Polygon", "coordinates": [bad]})).is_err());
        assert!(Geometry::new(json!({"type": "Polygon", "coordinates": []})).is_err());
        assert!(serde_json::from_value::<Geometry>(json!({"type": "Polygon"})).is_err());
    }
}
