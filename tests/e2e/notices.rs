//! Every notice written for its reader: one referral's notice says the same facts in the inbox (as the
//! notifications service lists it and as the web app words it), in a Bulgarian endpoint's e-mail and in an
//! English endpoint's e-mail, each in its language, with names, Sofia time and no id. One in-process
//! stack.

use chrono::{DateTime, Utc};
use placement_cli::{clients::as_agency, scenario::eventually};
use placement_e2e::{StackOptions, mail::SmtpSink};
use placement_proto::v1::{
    GetAgencyRequest, Language, NotificationChannel, NotificationKind, Referral,
};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::support::{Fixture, WAIT};

/// Whether `text` holds a UUID (36 characters: hex digits in groups of 8-4-4-4-12).
pub(crate) fn has_uuid(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .any(|w| w.len() == 36 && w.matches('-').count() == 4)
}

/// Whether `text` shows one of the 28 districts' EKATTE codes as a word (e.g. «VRC»).
pub(crate) fn has_district_code(text: &str) -> bool {
    let codes: Vec<&str> = include_str!("../../services/directory/municipalities.csv")
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    text.split(|c: char| !c.is_ascii_alphabetic())
        .any(|w| codes.contains(&w))
}

/// An agency's or service's name as the directory gives it, in Bulgarian and in English (the Bulgarian
/// when it has no English one).
struct Named {
    bg: String,
    en: String,
}

fn named(bg: String, en: String) -> Named {
    let en = if en.is_empty() { bg.clone() } else { en };
    Named { bg, en }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_notice_reads_the_same_in_the_inbox_and_in_each_languages_email() {
    let smtp = SmtpSink::start();
    let f = Fixture::in_process_with(StackOptions {
        env: vec![("PLACEMENT_SMTP_URL".into(), smtp.url())],
        ..Default::default()
    })
    .await;
    let (sender, provider, foster) = (
        f.agency("dsa-pirdop"),
        f.agency("provider-vratsa"),
        f.agency("foster-vratsa"),
    );
    let service_id = f.demo.service("ftpc-vratsa");
    email_endpoints(&f, provider, foster).await;
    // The notifications service learns endpoints and names from the directory's events.
    known_to_notifications(&f, &[sender, service_id], 2).await;
    let service = f.service(service_id).await;
    let service = named(service.name, service.name_en);
    let sender_name = agency_names(&f, sender).await;

    let case = f.open_twins_case(sender).await;
    let referral = f.submit(sender, &case, service_id).await;
    let mails = smtp.wait_for(WAIT, |m| m.len() >= 2).await;
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let mail_to = |address: &str| {
        (mails
            .iter()
            .find(|m| m.rcpt_tos == vec![address.to_string()]))
        .unwrap_or_else(|| panic!("no e-mail to {address}: {mails:#?}"))
    };
    let (bg, en) = (
        mail_to("ftpc.vratsa@example.bg"),
        mail_to("foster.vratsa@example.bg"),
    );

    // The inbox says what the Bulgarian e-mail says, word for word; the web app words the same facts so.
    let notices = f.notifications(provider, &referral.id).await;
    let notice = (notices.iter())
        .find(|n| n.kind == NotificationKind::ReferralSubmitted as i32)
        .expect("the provider's notice");
    assert_eq!(notice.title, bg.subject);
    assert!(
        bg.text.starts_with(&notice.body),
        "{}\n---\n{}",
        notice.body,
        bg.text
    );
    let facts = notice.facts.as_ref().expect("the notice keeps its facts");
    assert_eq!(facts.referral_id, referral.id);
    let directory_names = std::collections::HashMap::from([
        (service_id.to_string(), service.bg.clone()),
        (sender.to_string(), sender_name.bg.clone()),
    ]);
    let web = placement_wording::notice(Language::Bg, notice.kind, facts, &directory_names);
    assert_eq!(web, (notice.title.clone(), notice.body.clone()));

    each_mail_says_the_facts(&referral, (bg, en), &service, &sender_name);
    assert!(
        bg.subject.starts_with("Ново направление №"),
        "{}",
        bg.subject
    );
    assert!(
        en.subject.starts_with("New placement request"),
        "{}",
        en.subject
    );
    assert!(bg.text.contains("2 места"), "{}", bg.text);
    assert!(en.text.contains("2 places"), "{}", en.text);
    f.stack.stop().await;
}

/// A Bulgarian e-mail endpoint for the provider and an English one for the foster-care team, each for new
/// referrals.
async fn email_endpoints(f: &Fixture<placement_e2e::InProcessStack>, provider: Uuid, foster: Uuid) {
    for (agency, address, language) in [
        (provider, "ftpc.vratsa@example.bg", Language::Bg),
        (foster, "foster.vratsa@example.bg", Language::En),
    ] {
        f.add_endpoint(
            agency,
            NotificationChannel::Email,
            address,
            &["referral.submitted"],
            language,
        )
        .await
        .expect("an e-mail endpoint");
    }
}

/// Each language's e-mail names the service, the sender, both districts and the deadline in Sofia time
/// (and the reference), with no UUID, district code or "UTC" in its words.
fn each_mail_says_the_facts(
    referral: &Referral,
    (bg, en): (&placement_e2e::mail::Mail, &placement_e2e::mail::Mail),
    service: &Named,
    sender_name: &Named,
) {
    let sofia = sofia_time(referral);
    let said = |m: &placement_e2e::mail::Mail| {
        // The link names the referral by its id, for the web app; the words never do.
        let words: Vec<&str> = (m.text.lines())
            .filter(|l| !l.contains("/referrals/"))
            .collect();
        format!("{}\n{}", m.subject, words.join("\n"))
    };
    for (mail, service, sender, district, from) in [
        (
            bg,
            &service.bg,
            &sender_name.bg,
            "област Враца",
            "Софийска област",
        ),
        (
            en,
            &service.en,
            &sender_name.en,
            "Vratsa Province",
            "Sofia Province",
        ),
    ] {
        let words = said(mail);
        for fact in [
            service.as_str(),
            sender.as_str(),
            district,
            from,
            sofia.as_str(),
        ] {
            assert!(words.contains(fact), "{fact:?} missing in {words}");
        }
        if !referral.reference.is_empty() {
            assert!(words.contains(&referral.reference), "{words}");
        }
        assert!(!has_uuid(&words), "{words}");
        assert!(!has_district_code(&words), "{words}");
        assert!(!words.contains("UTC"), "{words}");
        assert!(mail.text.contains(&format!("/referrals/{}", referral.id)));
    }
}

/// The referral's acknowledgement deadline in Sofia, as people write its time of day («12:52»).
fn sofia_time(referral: &Referral) -> String {
    let deadline = referral
        .acknowledgement_deadline
        .as_ref()
        .expect("a deadline");
    let at = DateTime::<Utc>::from_timestamp(deadline.seconds, 0).expect("a time");
    at.with_timezone(&chrono_tz::Europe::Sofia)
        .format(", %H:%M")
        .to_string()
}

async fn agency_names(f: &Fixture<placement_e2e::InProcessStack>, id: Uuid) -> Named {
    let agency = f
        .clients
        .directory
        .clone()
        .get_agency(as_agency(
            id,
            GetAgencyRequest {
                agency_id: id.to_string(),
            },
        ))
        .await
        .expect("GetAgency")
        .into_inner();
    named(agency.name, agency.name_en)
}

/// Waits until the notifications service holds `endpoints` e-mail endpoints and the names of `ids`, which
/// reach it by the directory's events.
async fn known_to_notifications(
    f: &Fixture<placement_e2e::InProcessStack>,
    ids: &[Uuid],
    endpoints: i64,
) {
    let url = f.stack.database_url.clone();
    eventually(
        "the notifications service to know the endpoints and the names",
        WAIT,
        || {
            let url = url.clone();
            async move {
                let mut db = PgConnection::connect(&url).await.ok()?;
                let held: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications.endpoints")
                    .fetch_one(&mut db)
                    .await
                    .ok()?;
                let named: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM notifications.directory_names WHERE id = ANY ($1)",
                )
                .bind(ids)
                .fetch_one(&mut db)
                .await
                .ok()?;
                (held == endpoints && named == i64::try_from(ids.len()).ok()?).then_some(())
            }
        },
    )
    .await
    .expect("endpoints and names known");
}
