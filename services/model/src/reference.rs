//! The reference people say on the phone and write in letters: one per case and one per referral, given
//! when the record is made and never changed or given again.
//!
//! - A referral: `Н-ВРЦ-2026-00042`: «Н» (направление), the sending DSA's district, the year the referral
//!   was made (Europe/Sofia), and its number among that district's referrals of that year.
//! - A case: `С-2026-00042`: «С» (случай), the year the case was opened, and its number among the whole
//!   country's cases of that year.
//!
//! Why this form:
//!
//! - **Cyrillic, one form for both languages.** Bulgarian staff dictate it in Bulgarian, letter by letter
//!   and number by number, and a Bulgarian page then shows no Latin district code. The English pages show
//!   the very same reference: a record has one reference, so an agency that reads English quotes to one
//!   that reads Bulgarian what the other sees. Only the letters are Cyrillic; dashes and digits are the
//!   same on every keyboard.
//! - **Typed however it comes.** [`Reference::parse`] takes the Latin letters that look like the Cyrillic
//!   ones («H-BPЦ», «C-2026-42»), the district's EKATTE code (`H-VRC-2026-42`), lower case, spaces or
//!   any dash, and the number without its zeros: what a person copies from an English page or types on a
//!   Latin keyboard finds the record.
//! - **A case and a referral differ at a glance**: by the first letter, and a referral has one part more.
//!   A case names no district because it stays with its DSA (the referral is what crosses districts), and
//!   the cases opened before references existed could only be numbered without one.
//! - **Unique across instances**: each number is taken from a counter row (per district and year for
//!   referrals, per year for cases) raised in the transaction that inserts the record, so concurrent
//!   submissions on any instance queue on the row and get consecutive numbers, and a transaction rolled
//!   back gives its number back; a unique index is the last guard.
//! - **Never given twice**: a restore (deploy/restore.sh) moves every counter, and the start of every
//!   counter made later, [`RESTORE_GAP`] numbers on, past anything issued between the backup and the loss.
//! - Five digits: no district sends 100 000 referrals a year; a larger number is written in full.

use std::fmt;

/// How many numbers a restore skips in every counter: more than any district sends referrals, or the
/// country opens cases, between a nightly backup and its restore.
pub const RESTORE_GAP: u32 = 1000;

/// What a reference names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Case,
    Referral,
}

impl Kind {
    /// The Cyrillic letter a reference of this kind begins with.
    pub fn letter(self) -> char {
        match self {
            Kind::Case => 'С',
            Kind::Referral => 'Н',
        }
    }
}

/// A case's or a referral's reference, read into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub kind: Kind,
    /// The sending DSA's district (EKATTE code, e.g. `VRC`) of a referral; `None` for a case.
    pub region_code: Option<String>,
    pub year: i32,
    pub number: u32,
}

/// Why a text is not a reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("required")]
    Empty,
    #[error("not a reference (e.g. Н-ВРЦ-2026-00042 for a referral, С-2026-00042 for a case)")]
    Unreadable,
}

/// The 28 districts: EKATTE code and the Cyrillic abbreviation it transliterates.
const DISTRICTS: [(&str, &str); 28] = [
    ("BGS", "БГС"),
    ("BLG", "БЛГ"),
    ("DOB", "ДОБ"),
    ("GAB", "ГАБ"),
    ("HKV", "ХКВ"),
    ("JAM", "ЯМБ"),
    ("KNL", "КНЛ"),
    ("KRZ", "КРЖ"),
    ("LOV", "ЛОВ"),
    ("MON", "МОН"),
    ("PAZ", "ПАЗ"),
    ("PDV", "ПДВ"),
    ("PER", "ПЕР"),
    ("PVN", "ПВН"),
    ("RAZ", "РАЗ"),
    ("RSE", "РСЕ"),
    ("SFO", "СФО"),
    ("SHU", "ШУМ"),
    ("SLS", "СЛС"),
    ("SLV", "СЛВ"),
    ("SML", "СМЛ"),
    ("SOF", "СОФ"),
    ("SZR", "СЗР"),
    ("TGV", "ТГВ"),
    ("VAR", "ВАР"),
    ("VID", "ВИД"),
    ("VRC", "ВРЦ"),
    ("VTR", "ВТР"),
];

/// The Cyrillic abbreviation of a district's EKATTE code; a code that is none of the 28 is written as it
/// is (upper case), so that every referral still has a reference.
pub fn district_letters(region_code: &str) -> String {
    let code = region_code.to_uppercase();
    DISTRICTS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(code, |(_, letters)| (*letters).to_string())
}

/// The district a reference's letters name: its Cyrillic abbreviation, its EKATTE code, or Latin letters
/// that look like the abbreviation's.
fn district_of(letters: &str) -> Option<String> {
    if let Some((code, _)) = DISTRICTS.iter().find(|(c, _)| *c == letters) {
        return Some((*code).to_string());
    }
    let folded = fold_latin(letters);
    if let Some((code, _)) = DISTRICTS.iter().find(|(_, l)| *l == folded) {
        return Some((*code).to_string());
    }
    // A district outside the 28 is written with its code (see `district_letters`).
    (letters.len() <= 8 && letters.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| letters.to_string())
}

/// Latin capitals that look like Cyrillic ones, as the Cyrillic ones.
fn fold_latin(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'A' => 'А',
            'B' => 'В',
            'C' => 'С',
            'E' => 'Е',
            'H' => 'Н',
            'K' => 'К',
            'M' => 'М',
            'O' => 'О',
            'P' => 'Р',
            'T' => 'Т',
            'X' => 'Х',
            'Y' => 'У',
            other => other,
        })
        .collect()
}

impl Reference {
    pub fn case(year: i32, number: u32) -> Self {
        Reference {
            kind: Kind::Case,
            region_code: None,
            year,
            number,
        }
    }

    pub fn referral(region_code: &str, year: i32, number: u32) -> Self {
        Reference {
            kind: Kind::Referral,
            region_code: Some(region_code.to_uppercase()),
            year,
            number,
        }
    }

    /// A reference as a person typed it (see the module's notes on what is taken).
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let upper = text.to_uppercase();
        let parts: Vec<&str> = upper
            .split(|c: char| {
                c.is_whitespace() || matches!(c, '-' | '‐' | '‑' | '–' | '—' | '−' | '/')
            })
            .filter(|p| !p.is_empty())
            .collect();
        let unreadable = ReferenceError::Unreadable;
        let (kind, rest) = parts.split_first().ok_or(ReferenceError::Unreadable)?;
        let kind = match fold_latin(kind).as_str() {
            "С" => Kind::Case,
            "Н" => Kind::Referral,
            _ => return Err(unreadable),
        };
        let (region_code, year, number) = match (kind, rest) {
            (Kind::Case, [year, number]) => (None, year, number),
            (Kind::Referral, [district, year, number]) => (
                Some(district_of(district).ok_or(ReferenceError::Unreadable)?),
                year,
                number,
            ),
            _ => return Err(unreadable),
        };
        let digits = |s: &str, max: usize| {
            (!s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())).then_some(())
        };
        digits(year, 4).ok_or(ReferenceError::Unreadable)?;
        digits(number, 9).ok_or(ReferenceError::Unreadable)?;
        let year: i32 = year.parse().map_err(|_| ReferenceError::Unreadable)?;
        let number: u32 = number.parse().map_err(|_| ReferenceError::Unreadable)?;
        if year < 2000 || number == 0 {
            return Err(unreadable);
        }
        Ok(Reference {
            kind,
            region_code,
            year,
            number,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.kind.letter())?;
        if let Some(region) = &self.region_code {
            write!(f, "{}-", district_letters(region))?;
        }
        write!(f, "{}-{:05}", self.year, self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_written_in_cyrillic_with_five_digits() {
        assert_eq!(
            Reference::referral("VRC", 2026, 42).to_string(),
            "Н-ВРЦ-2026-00042"
        );
        assert_eq!(Reference::case(2026, 7).to_string(), "С-2026-00007");
        assert_eq!(
            Reference::referral("sfo", 2027, 123_456).to_string(),
            "Н-СФО-2027-123456"
        );
        // A district outside the 28 keeps its code.
        assert_eq!(
            Reference::referral("ZZ1", 2026, 1).to_string(),
            "Н-ZZ1-2026-00001"
        );
    }

    #[test]
    fn every_district_has_its_own_letters() {
        let mut letters: Vec<&str> = DISTRICTS.iter().map(|(_, l)| *l).collect();
        letters.sort_unstable();
        letters.dedup();
        assert_eq!(letters.len(), 28);
        for (code, l) in DISTRICTS {
            assert_eq!(district_letters(code), l);
            assert_eq!(district_of(l).as_deref(), Some(code));
            assert_eq!(district_of(code).as_deref(), Some(code));
        }
    }

    #[test]
    fn what_a_person_types_reads_as_the_reference() {
        let referral = Reference::referral("VRC", 2026, 42);
        for typed in [
            "Н-ВРЦ-2026-00042",
            " н-врц-2026-42 ",
            "Н ВРЦ 2026 00042",
            "Н–ВРЦ–2026–00042",
            "H-BPЦ-2026-00042",
            "h-vrc-2026-42",
        ] {
            assert_eq!(Reference::parse(typed), Ok(referral.clone()), "{typed}");
        }
        let case = Reference::case(2026, 42);
        for typed in ["С-2026-00042", "c-2026-42", "С 2026 42"] {
            assert_eq!(Reference::parse(typed), Ok(case.clone()), "{typed}");
        }
        for written in [referral, case, Reference::referral("ZZ1", 2026, 5)] {
            assert_eq!(Reference::parse(&written.to_string()), Ok(written));
        }
    }

    #[test]
    fn what_is_not_a_reference_is_refused() {
        assert_eq!(Reference::parse("  "), Err(ReferenceError::Empty));
        for typed in [
            "01a23b88",
            "Н-2026-00042",
            "С-ВРЦ-2026-00042",
            "Х-ВРЦ-2026-00042",
            "Н-ВРЦ-26-00042x",
            "Н-ВРЦ-1999-00042",
            "Н-ВРЦ-2026-00000",
            "Н-ВРЦ-2026-1234567890",
            "Н-ВРЦ-2026",
            "Н-ДЪЛГО ИМЕ-2026-1",
        ] {
            assert_eq!(
                Reference::parse(typed),
                Err(ReferenceError::Unreadable),
                "{typed}"
            );
        }
    }
}
