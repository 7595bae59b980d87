//! The names of the agencies and services notices name, learnt from the directory's events
//! ("agency.registered", "service.registered"): a notice is worded with them when it is shown or sent
//! (see `placement_wording`). Only words for people hold names; events and logs carry the ids.

pub(crate) mod store;

use std::collections::HashMap;

use placement_proto::v1::{Language, NoticeFacts};
use placement_wording::Names;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// Keeps a name the directory announced (an event without one, from before names were carried, changes
/// nothing).
pub async fn learn(
    conn: &mut PgConnection,
    id: Uuid,
    name: &str,
    name_en: &str,
) -> Result<(), sqlx::Error> {
    if name.trim().is_empty() {
        return Ok(());
    }
    store::keep_name(conn, id, name.trim(), name_en.trim()).await
}

/// The names some notices need, in Bulgarian and English.
#[derive(Debug, Default)]
pub struct NameBook {
    names: HashMap<String, (String, String)>,
}

impl NameBook {
    /// The names of every agency and service `facts` name.
    pub async fn of<'a, 'c>(
        db: impl PgExecutor<'c>,
        facts: impl IntoIterator<Item = &'a NoticeFacts>,
    ) -> Result<Self, sqlx::Error> {
        let mut ids: Vec<Uuid> = (facts.into_iter())
            .flat_map(placement_wording::named_ids)
            .filter_map(|id| Uuid::parse_str(id).ok())
            .collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Self::default());
        }
        let names = store::names_of(db, &ids).await?;
        Ok(Self {
            names: (names.into_iter())
                .map(|(id, name, en)| (id.to_string(), (name, en)))
                .collect(),
        })
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
