//! What the digest's e-mail says: the digest as the inbox words it (`placement_wording::district_digest`:
//! the district's figures of the week and the referrals stalled now, by reference), the link to the
//! figures page, and the signature. Pure, so it is tested alone.

use placement_proto::v1::{DistrictDigestReady, Language};

use crate::{
    names::model::NameBook,
    signature::{SIGNATURE_BG, SIGNATURE_EN},
};

/// Subject and text of the digest e-mail, in the endpoint's language (Bulgarian unless it asks for
/// English).
pub fn digest_email(
    d: &DistrictDigestReady,
    names: &NameBook,
    language: Language,
    public_url: &str,
) -> (String, String) {
    let link = format!("{}/figures", public_url.trim_end_matches('/'));
    let (subject, text) = placement_wording::district_digest(language, d, names);
    let open = placement_wording::text(language, "digest-open-figures");
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
    use placement_proto::v1::{DistrictReport, StalledReferral};

    fn digest() -> DistrictDigestReady {
        DistrictDigestReady {
            digest_id: "d".into(),
            region_code: "VRC".into(),
            rdsa_agency_id: "r".into(),
            report: Some(DistrictReport {
                stalled_now: vec![StalledReferral {
                    referral_id: "0193c0de-0000-7000-8000-000000000001".into(),
                    reference: "Н-ВРЦ-2026-00042".into(),
                    sender_region_code: "SFO".into(),
                    receiving_region_code: "VRC".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_email_says_what_the_inbox_says_and_links_to_the_figures() {
        let names = NameBook::default();
        for language in [Language::Bg, Language::En] {
            let (subject, body) = digest_email(&digest(), &names, language, "https://x.example/");
            let (title, text) = placement_wording::district_digest(language, &digest(), &names);
            assert_eq!(subject, title);
            assert!(body.starts_with(&text), "{body}");
            assert!(body.contains("https://x.example/figures"), "{body}");
            assert!(body.contains("Н-ВРЦ-2026-00042"), "{body}");
            assert!(!body.contains("VRC") && !subject.contains("VRC"), "{body}");
            assert!(!body.contains("0193c0de"), "{body}");
        }
        let (subject, body) = digest_email(&digest(), &names, Language::Bg, "x");
        assert!(
            subject.starts_with("Обобщение за област Враца"),
            "{subject}"
        );
        assert!(
            body.contains("Отворете показателите на областта: x/figures"),
            "{body}"
        );
        let (subject, body) = digest_email(&digest(), &names, Language::En, "x");
        assert!(
            subject.starts_with("Digest for Vratsa Province"),
            "{subject}"
        );
        assert!(body.ends_with(&format!("{SIGNATURE_EN}\n")), "{body}");
    }
}
