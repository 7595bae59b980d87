//! Agencies and services by name in the reader's language: the directory names each in Bulgarian (the
//! official name) and, where it has one, in English; an English reader of an agency with no English name
//! reads the Bulgarian one.

use crate::i18n::Lang;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    bg: String,
    en: String,
}

impl Names {
    pub fn new(bg: String, en: String) -> Self {
        Self { bg, en }
    }

    pub fn of_agency(a: &placement_proto::v1::Agency) -> Self {
        Self::new(a.name.clone(), a.name_en.clone())
    }

    pub fn of_service(s: &placement_proto::v1::SocialService) -> Self {
        Self::new(s.name.clone(), s.name_en.clone())
    }

    pub fn in_language(&self, lang: Lang) -> &str {
        match lang {
            Lang::En if !self.en.is_empty() => &self.en,
            _ => &self.bg,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_falls_back_to_bulgarian() {
        let both = Names::new("ЦНСТДБУ Враца 1".into(), "FTPC Vratsa 1".into());
        assert_eq!(both.in_language(Lang::Bg), "ЦНСТДБУ Враца 1");
        assert_eq!(both.in_language(Lang::En), "FTPC Vratsa 1");
        let bulgarian_only = Names::new("ЦНСТ Враца 7".into(), String::new());
        assert_eq!(bulgarian_only.in_language(Lang::En), "ЦНСТ Враца 7");
    }
}
