//! The reference data as the binary carries it: one row per municipality with its district, in Bulgarian
//! and English, read from the embedded `municipalities.csv`.

use serde::Deserialize;

const MUNICIPALITIES_CSV: &str = include_str!("../../municipalities.csv");

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
pub(super) fn region_name_en(code: &str, name: &str) -> String {
    match code {
        "SOF" => "Sofia City".into(),
        "SFO" => "Sofia Province".into(),
        _ => name.into(),
    }
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
