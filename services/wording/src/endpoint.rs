//! An endpoint that kept failing and was disabled, in words: its address and its last error as they are
//! (the agency's own, as it registered them), and what to do.

use placement_proto::v1::{EndpointDisabledFacts, Language};

use crate::{args, lookup};

/// The title and text of the notice that one of the agency's endpoints was disabled, in `language`.
pub fn endpoint_disabled(language: Language, f: &EndpointDisabledFacts) -> (String, String) {
    let words = args([
        ("address", f.address.clone().into()),
        ("reason", f.reason.clone().into()),
    ]);
    (
        lookup(language, "endpoint-disabled-title", &words),
        lookup(language, "endpoint-disabled-body", &words),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::has_uuid;

    #[test]
    fn the_notice_names_the_address_and_the_error_in_both_languages() {
        let f = EndpointDisabledFacts {
            endpoint_id: "0193a5c2-0000-7000-8000-00000000abcd".into(),
            address: "https://it.vratsa.example/hooks".into(),
            reason: "HTTP 503".into(),
        };
        let (title, body) = endpoint_disabled(Language::Bg, &f);
        assert_eq!(
            title,
            "Канал за известяване е изключен: https://it.vratsa.example/hooks"
        );
        assert!(
            body.starts_with(
                "Доставките до https://it.vratsa.example/hooks не успяваха (последна грешка: HTTP 503)"
            ),
            "{body}"
        );
        let (title, body) = endpoint_disabled(Language::En, &f);
        assert_eq!(
            title,
            "A notification endpoint was disabled: https://it.vratsa.example/hooks"
        );
        assert!(body.contains("(last error: HTTP 503)"), "{body}");
        for language in [Language::Bg, Language::En] {
            let (title, body) = endpoint_disabled(language, &f);
            assert!(!has_uuid(&format!("{title}{body}")), "{title} {body}");
        }
    }
}
