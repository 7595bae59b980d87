//! Bulgaria's 28 districts (oblasts) by their EKATTE codes, as the directory's reference data has them: a
//! service that keeps no copy of the reference data checks a district code here.

/// Every district code, sorted.
pub const DISTRICTS: [&str; 28] = [
    "BGS", "BLG", "DOB", "GAB", "HKV", "JAM", "KNL", "KRZ", "LOV", "MON", "PAZ", "PDV", "PER",
    "PVN", "RAZ", "RSE", "SFO", "SHU", "SLS", "SLV", "SML", "SOF", "SZR", "TGV", "VAR", "VID",
    "VRC", "VTR",
];

/// Whether `code` is a district's code.
pub fn is_district(code: &str) -> bool {
    DISTRICTS.binary_search(&code).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same districts as the directory's embedded reference data: one list, checked against the other.
    #[test]
    fn the_districts_are_the_directorys() {
        let csv = include_str!("../../directory/municipalities.csv");
        let mut codes: Vec<&str> = (csv.lines().skip(1))
            .filter_map(|l| l.split(',').next())
            .collect();
        codes.dedup();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes, DISTRICTS);
        assert!(is_district("VRC"));
        assert!(!is_district("vrc") && !is_district("XYZ") && !is_district(""));
    }
}
