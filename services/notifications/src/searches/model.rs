//! What the sender of a search that ran out is told: the search, the round, and how many services fit
//! now (by number; the sender opens the search to see them). Identifiers and counts only, like the event.
//! Pure, so the wording is tested alone.

use placement_proto::v1::{Language, SearchExhausted};

use crate::{
    referrals::model::short_ref,
    signature::{SIGNATURE_BG, SIGNATURE_EN},
};

/// Title and text of the notice, in `language`: the in-app notice is the Bulgarian one.
pub fn exhausted_text(e: &SearchExhausted, language: Language) -> (String, String) {
    let (short, id, round) = (short_ref(&e.search_id), &e.search_id, e.round);
    let fitting = e.suggested_service_ids.len();
    if language == Language::En {
        (
            format!("Search {short} ran out without a place"),
            format!(
                "Every request of round {round} of search {id} was declined, withdrawn or passed its \
                 deadline. Services that fit the children now: {fitting}. You can send them a new round \
                 of the search in one step."
            ),
        )
    } else {
        (
            format!("Търсене {short} приключи без място"),
            format!(
                "Всички запитвания от кръг {round} на търсене {id} са отказани, оттеглени или с изтекъл \
                 срок. Подходящи услуги със свободни места сега: {fitting}. Можете да им изпратите нов \
                 кръг на търсенето с една стъпка."
            ),
        )
    }
}

/// Subject and text of the e-mail, in the endpoint's language (Bulgarian unless it asks for English),
/// with a link to the case the search is for.
pub fn exhausted_email(
    e: &SearchExhausted,
    language: Language,
    public_url: &str,
) -> (String, String) {
    let link = format!("{}/cases/{}", public_url.trim_end_matches('/'), e.case_id);
    let (subject, text) = exhausted_text(e, language);
    let (open, signature) = if language == Language::En {
        ("Open the case", SIGNATURE_EN)
    } else {
        ("Отворете случая", SIGNATURE_BG)
    };
    (
        subject,
        format!("{text}\n\n{open}: {link}\n\n{signature}\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exhausted() -> SearchExhausted {
        SearchExhausted {
            search_id: "0193a5c2-0000-7000-8000-00000000abcd".into(),
            case_id: "0193a5c2-0000-7000-8000-000000001234".into(),
            sender_agency_id: "0193a5c2-0000-7000-8000-000000000001".into(),
            round: 2,
            suggested_service_ids: vec!["a".into(), "b".into(), "c".into()],
        }
    }

    #[test]
    fn the_notice_names_the_search_the_round_and_how_many_fit() {
        for language in [Language::Bg, Language::En] {
            let (title, body) = exhausted_text(&exhausted(), language);
            assert!(title.contains("0000abcd"), "{title}");
            assert!(
                body.contains("0193a5c2-0000-7000-8000-00000000abcd"),
                "{body}"
            );
            assert!(body.contains(" 2 "), "the round: {body}");
            assert!(body.contains(": 3."), "the number that fit: {body}");
        }
        let (_, bg) = exhausted_text(&exhausted(), Language::Bg);
        assert!(bg.contains("кръг 2"), "{bg}");
    }

    #[test]
    fn the_email_links_the_case() {
        let (_, text) = exhausted_email(&exhausted(), Language::En, "https://pe.example/");
        assert!(
            text.contains("https://pe.example/cases/0193a5c2-0000-7000-8000-000000001234"),
            "{text}"
        );
        assert!(text.ends_with(&format!("{SIGNATURE_EN}\n")));
    }
}
