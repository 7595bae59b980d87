//! A search that ran out, in words: named by the references of its referrals (never its id), with the
//! round that ran out and how many services fit the children now.

use placement_proto::v1::{Language, SearchExhausted};

use crate::{args, capitalised, lookup};

/// The title and text of the notice that a round of a search ran out, in `language`.
pub fn search_exhausted(language: Language, e: &SearchExhausted) -> (String, String) {
    let references: Vec<&str> = (e.referral_references.iter())
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .collect();
    // Fluent selects on them: "none" names a search from before its event carried references.
    let first = references.first().copied().unwrap_or("none");
    let words = args([
        ("first", first.to_string().into()),
        ("others", references.len().saturating_sub(1).into()),
        ("references", references.join(", ").into()),
        ("round", e.round.into()),
        ("fitting", e.suggested_service_ids.len().into()),
    ]);
    let title = lookup(language, "search-exhausted-title", &words);
    let body = lookup(language, "search-exhausted-body", &words);
    (capitalised(&title), capitalised(&body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::has_uuid;

    fn exhausted(references: &[&str], fitting: usize) -> SearchExhausted {
        SearchExhausted {
            search_id: "0193a5c2-0000-7000-8000-00000000abcd".into(),
            case_id: "0193a5c2-0000-7000-8000-000000001234".into(),
            sender_agency_id: "0193a5c2-0000-7000-8000-000000000001".into(),
            round: 2,
            suggested_service_ids: (0..fitting).map(|i| format!("service-{i}")).collect(),
            referral_references: references.iter().map(|r| r.to_string()).collect(),
        }
    }

    const REFERENCES: [&str; 3] = ["Н-ВРЦ-2026-00042", "Н-ВРЦ-2026-00043", "Н-МОН-2026-00007"];

    #[test]
    fn a_search_is_named_by_its_referrals_references_in_both_languages() {
        let e = exhausted(&REFERENCES, 3);
        let (title, body) = search_exhausted(Language::Bg, &e);
        assert_eq!(
            title,
            "Търсенето по направления № Н-ВРЦ-2026-00042 и още 2 остана без място"
        );
        assert!(
            body.starts_with(
                "Всички направления от кръг 2 на търсенето по направления № Н-ВРЦ-2026-00042 и още 2 \
                 са отказани, оттеглени или с изтекъл срок. Подходящи услуги със свободни места сега: 3."
            ),
            "{body}"
        );
        assert!(
            body.ends_with(
                "Направленията на търсенето: Н-ВРЦ-2026-00042, Н-ВРЦ-2026-00043, Н-МОН-2026-00007."
            ),
            "{body}"
        );
        let (title, body) = search_exhausted(Language::En, &e);
        assert_eq!(
            title,
            "The search for referrals Н-ВРЦ-2026-00042 and 2 more found no place"
        );
        assert!(
            body.starts_with("Every request of round 2 of the search"),
            "{body}"
        );
        assert!(body.contains("fit the children now: 3."), "{body}");
        for language in [Language::Bg, Language::En] {
            let (title, body) = search_exhausted(language, &e);
            let all = format!("{title}\n{body}");
            assert!(!has_uuid(&all), "{all}");
            assert!(!all.contains("abcd") && !all.contains('{'), "{all}");
            for reference in REFERENCES {
                assert!(body.contains(reference), "{reference} in {body}");
            }
        }
    }

    #[test]
    fn one_referral_none_fitting_and_an_event_from_before_references_still_read() {
        let (title, body) = search_exhausted(Language::Bg, &exhausted(&REFERENCES[..1], 0));
        assert_eq!(
            title,
            "Търсенето по направление № Н-ВРЦ-2026-00042 остана без място"
        );
        assert!(
            body.ends_with("Сега няма подходящи услуги със свободни места."),
            "{body}"
        );
        let (title, body) = search_exhausted(Language::En, &exhausted(&[], 1));
        assert_eq!(title, "The search found no place");
        assert!(
            body.starts_with("Every request of round 2 of the search was declined"),
            "{body}"
        );
        assert!(!has_uuid(&body), "{body}");
    }
}
