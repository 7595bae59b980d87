//! What an e-mail about a referral's step says, in the endpoint's language: the notice as the inbox words
//! it (one catalogue, `placement_wording`), the link to the referral, and the signature; never a child.

use placement_proto::v1::{Language, NoticeFacts, NotificationKind};

use crate::{
    names::NameBook,
    signature::{SIGNATURE_BG, SIGNATURE_EN},
};

/// Subject and text of the e-mail of a notice of `kind` about a referral.
pub fn referral_email(
    kind: NotificationKind,
    facts: &NoticeFacts,
    names: &NameBook,
    language: Language,
    public_url: &str,
) -> (String, String) {
    let (subject, text) = placement_wording::notice(language, kind as i32, facts, names);
    let link = format!(
        "{}/referrals/{}",
        public_url.trim_end_matches('/'),
        facts.referral_id
    );
    let open = placement_wording::text(language, "notice-open-referral");
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
    use placement_platform::time::timestamp;
    use placement_proto::v1::ReferralEvent;
    use uuid::Uuid;

    fn facts() -> NoticeFacts {
        crate::referrals::facts::of(&ReferralEvent {
            referral_id: Uuid::new_v4().to_string(),
            reference: "ВРЦ-2026-00042".into(),
            service_id: Uuid::new_v4().to_string(),
            receiving_region_code: "VRC".into(),
            sender_region_code: "SFO".into(),
            places: 2,
            acknowledgement_deadline: Some(timestamp("2026-11-30T12:00:00Z".parse().unwrap())),
            ..Default::default()
        })
    }

    #[test]
    fn the_email_says_what_the_inbox_says_and_links_to_the_referral() {
        let f = facts();
        let names = NameBook::default();
        for language in [Language::Bg, Language::En] {
            let kind = NotificationKind::ReferralSubmitted;
            let (subject, text) = referral_email(kind, &f, &names, language, "https://pe.example/");
            let (title, body) = placement_wording::notice(language, kind as i32, &f, &names);
            assert_eq!(subject, title);
            assert!(text.starts_with(&body), "{text}");
            assert!(text.contains(&format!("https://pe.example/referrals/{}", f.referral_id)));
            assert!(subject.contains("ВРЦ-2026-00042"), "{subject}");
        }
        let (subject, text) = referral_email(
            NotificationKind::ReferralSubmitted,
            &f,
            &names,
            Language::Bg,
            "x",
        );
        // Sofia time: 14:00 in winter.
        assert!(subject.ends_with("30 ноември 2026 г., 14:00"), "{subject}");
        assert!(
            text.contains("Отворете направлението: x/referrals/"),
            "{text}"
        );
    }
}
