//! A child's name and personal number, sealed at rest with AES-256-GCM.
//!
//! The key comes from configuration (`PLACEMENT_DATA_KEY`, 32 bytes in base64); without one the service
//! refuses to store these fields (FAILED_PRECONDITION) rather than keep them in clear. Each value is sealed
//! with a fresh random nonce and bound (as associated data) to the child's id and the field's name. The
//! first byte names the key version, so a key can be rotated later by adding one (`placement_platform::seal`).

use placement_platform::seal;
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct Sealer(seal::Sealer);

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("PLACEMENT_DATA_KEY must be 32 bytes in base64")]
    Key,
    #[error("a sealed value does not open (wrong key, or it was altered or moved)")]
    Open,
}

impl Sealer {
    pub fn from_base64(key: &str) -> Result<Self, SealError> {
        seal::Sealer::from_base64(key)
            .map(Self)
            .map_err(|_| SealError::Key)
    }

    pub fn seal(&self, child: Uuid, field: &str, value: &str) -> Vec<u8> {
        self.0.seal(&associated(child, field), value)
    }

    pub fn open(&self, child: Uuid, field: &str, sealed: &[u8]) -> Result<String, SealError> {
        (self.0)
            .open(&associated(child, field), sealed)
            .map_err(|_| SealError::Open)
    }
}

fn associated(child: Uuid, field: &str) -> Vec<u8> {
    let mut aad = child.as_bytes().to_vec();
    aad.extend_from_slice(field.as_bytes());
    aad
}

/// Whether `value` is a Bulgarian personal number (EGN): 10 digits, the first six a date of birth that exists
/// and the last a check digit over the first 9 (weights 2, 4, 8, 5, 10, 9, 7, 3, 6; sum mod 11, where 10 counts
/// as 0). A checksum alone lets through numbers such as 1234567890, whose month (34) and day (56) cannot exist.
pub fn is_egn(value: &str) -> bool {
    let digits: Vec<u32> = value.chars().filter_map(|c| c.to_digit(10)).collect();
    if value.len() != 10 || digits.len() != 10 {
        return false;
    }
    const WEIGHTS: [u32; 9] = [2, 4, 8, 5, 10, 9, 7, 3, 6];
    let sum: u32 = digits.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
    (sum % 11) % 10 == digits[9] && egn_birth_date(&digits).is_some()
}

/// The date of birth an EGN encodes: YYMMDD, where the month carries the century (1–12: the 1900s, 21–32: the
/// 1800s, 41–52: the 2000s).
fn egn_birth_date(digits: &[u32]) -> Option<chrono::NaiveDate> {
    let pair = |i: usize| digits[i] * 10 + digits[i + 1];
    let (yy, mm, dd) = (pair(0), pair(2), pair(4));
    let (century, month) = match mm {
        1..=12 => (1900, mm),
        21..=32 => (1800, mm - 20),
        41..=52 => (2000, mm - 40),
        _ => return None,
    };
    let year = i32::try_from(century + yy).ok()?;
    chrono::NaiveDate::from_ymd_opt(year, month, dd)
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::STANDARD};

    use super::*;

    fn sealer() -> Sealer {
        Sealer::from_base64(&STANDARD.encode([7u8; 32])).unwrap()
    }

    #[test]
    fn sealed_values_open_only_where_they_were_sealed() {
        let s = sealer();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let sealed = s.seal(a, "name", "Мария Иванова");
        assert!(
            !sealed
                .windows(5)
                .any(|w| w == "Мария".as_bytes()[..5].to_vec().as_slice())
        );
        assert_eq!(s.open(a, "name", &sealed).unwrap(), "Мария Иванова");
        assert!(
            s.open(b, "name", &sealed).is_err(),
            "moved to another child"
        );
        assert!(
            s.open(a, "personal_number", &sealed).is_err(),
            "moved to another field"
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(s.open(a, "name", &tampered).is_err());
        let other = Sealer::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        assert!(other.open(a, "name", &sealed).is_err(), "another key");
        // A fresh nonce each time.
        assert_ne!(s.seal(a, "name", "x"), s.seal(a, "name", "x"));
    }

    #[test]
    fn keys_must_be_32_bytes() {
        assert!(Sealer::from_base64("c2hvcnQ=").is_err());
        assert!(Sealer::from_base64("not base64!").is_err());
    }

    #[test]
    fn egn_check_digits() {
        assert!(is_egn("7501020018"));
        assert!(!is_egn("7501020017"));
        assert!(!is_egn("750102001"));
        assert!(!is_egn("75010200a8"));
    }

    #[test]
    fn egn_dates_must_exist() {
        // Right check digits, impossible dates: month 34 and day 56; 30 February; month 13.
        assert!(!is_egn("1234567890"));
        let with_check = |first9: &str| {
            const WEIGHTS: [u32; 9] = [2, 4, 8, 5, 10, 9, 7, 3, 6];
            let sum: u32 = (first9.chars().filter_map(|c| c.to_digit(10)))
                .zip(WEIGHTS)
                .map(|(d, w)| d * w)
                .sum();
            format!("{first9}{}", (sum % 11) % 10)
        };
        assert!(!is_egn(&with_check("750230001")), "30 February");
        assert!(!is_egn(&with_check("751301001")), "month 13");
        assert!(!is_egn(&with_check("750100001")), "day 0");
        // The centuries: 29 February 2016 (month 42), 31 December 1899 (month 32).
        assert!(is_egn(&with_check("164229001")));
        assert!(is_egn(&with_check("993231001")));
        assert!(!is_egn(&with_check("154229001")), "2015 had no 29 February");
    }
}
