//! Bulgaria's 28 districts and 265 municipalities (EKATTE codes), embedded in the binary and loaded at
//! start-up; loading is idempotent and fixes names that changed in a newer edition of the data.

use serde::Deserialize;
use sqlx::PgPool;

use crate::store;

const MUNICIPALITIES_CSV: &str = include_str!("../municipalities.csv");

#[derive(Debug, Deserialize)]
pub struct Row {
    pub oblast_code: String,
    pub oblast_name_bg: String,
    pub oblast_name_en: String,
    pub municipality_code: String,
    pub municipality_name_bg: String,
    pub municipality_name_en: String,
}

pub fn rows() -> Vec<Row> {
    csv::Reader::from_reader(MUNICIPALITIES_CSV.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .expect("the embedded municipalities.csv is well-formed")
}

/// Shown so that people can tell Sofia City from Sofia Province (EKATTE calls both "София").
fn region_name_en(code: &str, name: &str) -> String {
    match code {
        "SOF" => "Sofia City".into(),
        "SFO" => "Sofia Province".into(),
        _ => name.into(),
    }
}

/// Loads the districts and municipalities (EKATTE codes) into the directory, updating names that changed.
pub async fn load(pool: &PgPool) -> Result<(), sqlx::Error> {
    let rows = rows();
    let mut tx = placement_platform::db::begin(pool).await?;
    for r in &rows {
        store::upsert_region(
            &mut tx,
            &r.oblast_code,
            &r.oblast_name_bg,
            &region_name_en(&r.oblast_code, &r.oblast_name_en),
        )
        .await?;
        store::upsert_municipality(
            &mut tx,
            &r.municipality_code,
            &r.oblast_code,
            &r.municipality_name_bg,
            &r.municipality_name_en,
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(municipalities = rows.len(), "reference data loaded");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn embedded_data_has_28_districts_and_265_municipalities() {
        let rows = rows();
        assert_eq!(rows.len(), 265);
        let districts: BTreeSet<_> = rows.iter().map(|r| r.oblast_code.as_str()).collect();
        assert_eq!(districts.len(), 28);
        let pirdop = rows
            .iter()
            .find(|r| r.municipality_code == "SFO55")
            .unwrap();
        assert_eq!(pirdop.municipality_name_en, "Pirdop");
        assert!(
            rows.iter()
                .all(|r| r.municipality_code.starts_with(&r.oblast_code))
        );
    }
}
