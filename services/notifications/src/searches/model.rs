//! What the e-mail of a search that ran out says: the notice as the inbox words it
//! (`placement_wording::search_exhausted`: the search by its referrals' references, the round, how many
//! services fit now), the link to the case, and the signature. Pure, so it is tested alone.

use placement_proto::v1::{Language, SearchExhausted};

use crate::signature::{SIGNATURE_BG, SIGNATURE_EN};

/// Subject and text of the e-mail, in the endpoint's language (Bulgarian unless it asks for English),
/// with a link to the case the search is for.
pub fn exhausted_email(
    e: &SearchExhausted,
    language: Language,
    public_url: &str,
) -> (String, String) {
    let link = format!("{}/cases/{}", public_url.trim_end_matches('/'), e.case_id);
    let (subject, text) = placement_wording::search_exhausted(language, e);
    let open = placement_wording::text(language, "search-open-case");
    let signature = if language == Language::En {
        SIGNATURE_EN
    } else {
        SIGNATURE_BG
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
            referral_references: vec!["Н-ВРЦ-2026-00042".into(), "Н-МОН-2026-00007".into()],
        }
    }

    #[test]
    fn the_email_says_what_the_inbox_says_and_links_the_case() {
        for language in [Language::Bg, Language::En] {
            let (subject, text) = exhausted_email(&exhausted(), language, "https://pe.example/");
            let (title, body) = placement_wording::search_exhausted(language, &exhausted());
            assert_eq!(subject, title);
            assert!(text.starts_with(&body), "{text}");
            assert!(subject.contains("Н-ВРЦ-2026-00042"), "{subject}");
            // The search's id is nowhere in the words; the case's only in the link.
            assert!(!text.contains("abcd"), "{text}");
            assert_eq!(text.matches("0193a5c2").count(), 1, "{text}");
        }
        let (_, text) = exhausted_email(&exhausted(), Language::En, "https://pe.example/");
        assert!(
            text.contains(
                "Open the case: https://pe.example/cases/0193a5c2-0000-7000-8000-000000001234"
            ),
            "{text}"
        );
        assert!(text.ends_with(&format!("{SIGNATURE_EN}\n")));
        let (subject, _) = exhausted_email(&exhausted(), Language::Bg, "x");
        assert_eq!(
            subject,
            "Търсенето по направления № Н-ВРЦ-2026-00042 и още 1 остана без място"
        );
    }
}
