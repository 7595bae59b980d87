//! The names a notice's facts need, as the wording reads them.

use std::collections::HashMap;

use placement_proto::v1::Language;
use placement_wording::Names;
use uuid::Uuid;

/// The names some notices need, in Bulgarian and English.
#[derive(Debug, Default)]
pub struct NameBook {
    names: HashMap<String, (String, String)>,
}

impl NameBook {
    /// The book of the names read, each as (id, Bulgarian name, English name).
    pub fn of_rows(rows: Vec<(Uuid, String, String)>) -> Self {
        Self {
            names: (rows.into_iter())
                .map(|(id, name, en)| (id.to_string(), (name, en)))
                .collect(),
        }
    }
}

impl Names for NameBook {
    fn name(&self, id: &str, language: Language) -> Option<String> {
        let (bg, en) = self.names.get(id)?;
        Some(
            if language == Language::En && !en.is_empty() {
                en
            } else {
                bg
            }
            .clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_english_reader_gets_the_english_name_when_there_is_one() {
        let book = NameBook {
            names: HashMap::from([
                ("a".into(), ("ДСП Пирдоп".into(), "DSA Pirdop".into())),
                ("b".into(), ("ЦНСТДБУ Враца 1".into(), String::new())),
            ]),
        };
        assert_eq!(book.name("a", Language::En).as_deref(), Some("DSA Pirdop"));
        assert_eq!(book.name("a", Language::Bg).as_deref(), Some("ДСП Пирдоп"));
        assert_eq!(
            book.name("b", Language::En).as_deref(),
            Some("ЦНСТДБУ Враца 1")
        );
        assert_eq!(book.name("c", Language::Bg), None);
    }
}
