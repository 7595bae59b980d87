//! The digest before each meeting: at its slot every RDSA gets one, in its inbox and by e-mail in
//! Bulgarian, with the district's figures and stalled referrals, however many reports instances run; and
//! one more each time one is asked for.

use chrono::Utc;
use placement_cli::{clients::as_agency_with, demo::NATIONAL_AUTHORITY, scenario::eventually};
use placement_e2e::{StackOptions, mail::SmtpSink};
use placement_platform::{caller::Role, services};
use placement_proto::v1::{
    Language, Notification, NotificationKind, SendDistrictDigestRequest,
    report_service_client::ReportServiceClient,
};
use sqlx::Row;
use tonic::Code;
use uuid::Uuid;

use crate::{
    notices::{has_district_code, has_uuid},
    support::{Fixture, WAIT},
};

/// The newest slot a schedule can name that has passed: this minute's weekday and time in Sofia, two
/// minutes ago (so that it is behind us whatever second the services start in).
fn slot_just_passed() -> String {
    let at = (Utc::now() - chrono::Duration::minutes(2)).with_timezone(&chrono_tz::Europe::Sofia);
    at.format("%a %H:%M").to_string().to_uppercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rdsa_gets_its_digest_once_before_the_meeting() {
    let smtp = SmtpSink::start();
    let mut f = Fixture::with(StackOptions {
        ack_deadline: Some("1s".into()),
        escalation_interval: Some("200ms".into()),
        env: vec![("PLACEMENT_SMTP_URL".into(), smtp.url())],
        ..Default::default()
    })
    .await;
    let rdsa = f.agency("rdsa-vratsa");
    rdsa_mailbox(&f, rdsa).await;
    // One referral to Vratsa nobody answers: stalled once its deadline passes.
    let pirdop = f.agency("dsa-pirdop");
    let stalled = f
        .submit(
            pirdop,
            &f.open_twins_case(pirdop).await,
            f.demo.service("ftpc-vratsa"),
        )
        .await;
    let reports = ReportServiceClient::new(
        placement_cli::clients::channel(f.stack.endpoints.url(services::REPORTS)).expect("channel"),
    );
    stalled_in_the_figures(&reports, &stalled.id).await;

    // The slot has just passed; two instances start and find it not sent.
    let name = services::REPORTS.name;
    f.stack
        .set_env(name, "PLACEMENT_REPORTS_DIGEST_AT", &slot_just_passed());
    f.stack.restart(name);
    f.stack.add_instance(name);
    f.stack.wait_ready(WAIT).await;

    assert!(!stalled.reference.is_empty(), "{stalled:?}");
    assert_the_digest_mailed_names_the_stalled(&smtp, &stalled.reference).await;
    assert_one_digest_per_rdsa_told_once(&f, rdsa, &stalled.reference).await;
    the_digest_reads_in_english_too(&f, rdsa, &stalled.reference).await;
    asked_for(&f, &reports, rdsa).await;
    assert_eq!(
        scheduled_digests(&f, 4).await.len(),
        4,
        "still one per RDSA for the slot"
    );
}

/// The RDSA's digest e-mail counts the stalled referral and names it by its reference, the districts by
/// name: no id, no district code.
async fn assert_the_digest_mailed_names_the_stalled(smtp: &SmtpSink, reference: &str) {
    let digest = |m: &placement_e2e::mail::Mail| m.subject.starts_with("Обобщение за област Враца");
    let mails = smtp.wait_for(WAIT, |m| m.iter().any(digest)).await;
    let mail = mails.iter().find(|m| digest(m)).expect("the digest e-mail");
    assert_eq!(mail.to, "rdsp.vratsa@example.bg");
    assert!(
        mail.subject.ends_with(": 1 блокирано направление"),
        "{}",
        mail.subject
    );
    assert!(
        mail.text.contains(&format!(
            "- № {reference} (Софийска област → област Враца): "
        )),
        "{}",
        mail.text
    );
    for words in [&mail.subject, &mail.text] {
        assert!(!has_uuid(words) && !has_district_code(words), "{words}");
    }
    assert!(
        // The e-mail's lines end in CRLF, as SMTP has them.
        mail.text
            .replace("\r\n", "\n")
            .contains("Към услуги в областта:\n  Изпратени през периода: 1\n"),
        "{}",
        mail.text
    );
}

/// One digest per RDSA (four in the demo) for this slot, each told once.
async fn assert_one_digest_per_rdsa_told_once(f: &Fixture, rdsa: Uuid, reference: &str) {
    let sent = scheduled_digests(f, 4).await;
    // A digest's id is its event's.
    eventually(
        "the notifications service applied every digest",
        WAIT,
        || async {
            (f.stack)
                .has_processed(services::NOTIFICATIONS.name, &sent)
                .await
                .then_some(())
        },
    )
    .await
    .expect("every digest applied");
    assert_eq!(digests_in_inbox(f, rdsa).await.len(), 1);
    assert_eq!(digests_in_inbox(f, f.agency("rdsa-haskovo")).await.len(), 1);
    let notice = &digests_in_inbox(f, rdsa).await[0];
    assert!(notice.body.contains(reference), "{}", notice.body);
    assert!(notice.referral_id.is_empty());
    assert!(
        notice.title.starts_with("Обобщение за област Враца"),
        "{notice:?}"
    );
}

/// Listed in English, the same digest reads in English: the district by its English name, the stalled
/// referral by its reference, no id and no district code.
async fn the_digest_reads_in_english_too(f: &Fixture, rdsa: Uuid, reference: &str) {
    let english: Vec<Notification> = (f.inbox_in(rdsa, Language::En).await.into_iter())
        .filter(|n| n.kind == NotificationKind::DistrictDigest as i32)
        .collect();
    let notice = english.first().expect("the digest, listed in English");
    assert!(
        notice
            .title
            .starts_with("Digest for Vratsa Province before"),
        "{notice:?}"
    );
    assert!(
        notice.body.contains("To services in the district:\n")
            && notice.body.contains(&format!(
                "- {reference} (Sofia Province → Vratsa Province): "
            )),
        "{}",
        notice.body
    );
    for words in [&notice.title, &notice.body] {
        assert!(!has_uuid(words) && !has_district_code(words), "{words}");
    }
}

/// The RDSA's e-mail endpoint for digests, known to the notifications service.
async fn rdsa_mailbox(f: &Fixture, rdsa: Uuid) {
    f.email_endpoint(rdsa, "rdsp.vratsa@example.bg", "report.digest_ready")
        .await;
    assert!(f.stack.wait_for_endpoints(1, WAIT).await);
}

async fn stalled_in_the_figures(
    reports: &ReportServiceClient<tonic::transport::Channel>,
    id: &str,
) {
    eventually("the referral stalled in Vratsa's figures", WAIT, || async {
        let now = Utc::now();
        let report = reports
            .clone()
            .get_district_report(as_agency_with(
                NATIONAL_AUTHORITY,
                &[Role::Supervisor],
                placement_proto::v1::GetDistrictReportRequest {
                    region_code: "VRC".into(),
                    period_start: Some(placement_platform::time::timestamp(
                        now - chrono::Duration::days(1),
                    )),
                    period_end: Some(placement_platform::time::timestamp(now)),
                },
            ))
            .await
            .ok()?
            .into_inner();
        report
            .stalled_now
            .iter()
            .any(|s| s.referral_id == id)
            .then_some(())
    })
    .await
    .expect("stalled");
}

/// Waits until the reports hold `n` scheduled digests (one per RDSA); returns their ids.
async fn scheduled_digests(f: &Fixture, n: usize) -> Vec<Uuid> {
    eventually("a scheduled digest for every RDSA", WAIT, || async {
        let mut db = f.stack.db().await;
        let rows = sqlx::query(
            "SELECT id FROM reports.digests WHERE scheduled_for IS NOT NULL ORDER BY id",
        )
        .fetch_all(&mut db)
        .await
        .ok()?;
        (rows.len() >= n).then(|| rows.iter().map(|r| r.get::<Uuid, _>(0)).collect::<Vec<_>>())
    })
    .await
    .expect("digests")
}

async fn digests_in_inbox(f: &Fixture, agency: Uuid) -> Vec<Notification> {
    (f.inbox(agency).await.into_iter())
        .filter(|n| n.kind == NotificationKind::DistrictDigest as i32)
        .collect()
}

/// Asked for, a digest goes out each time; only to the district's RDSA or a national authority, and only
/// for a district with an RDSA.
async fn asked_for(
    f: &Fixture,
    reports: &ReportServiceClient<tonic::transport::Channel>,
    rdsa: Uuid,
) {
    let ask = |agency: Uuid, region: &str| {
        let mut client = reports.clone();
        let asked = SendDistrictDigestRequest {
            region_code: region.into(),
        };
        async move {
            client
                .send_district_digest(as_agency_with(agency, &[Role::Supervisor], asked))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let sent = ask(rdsa, "VRC")
        .await
        .expect("the RDSA asks for its digest");
    assert_eq!(sent.rdsa_agency_id, rdsa.to_string());
    eventually("the asked-for digest in the inbox", WAIT, || async {
        (digests_in_inbox(f, rdsa).await.len() == 2).then_some(())
    })
    .await
    .expect("a second digest");
    let codes = [
        ask(rdsa, "SFO").await.map(drop).unwrap_err().code(),
        ask(NATIONAL_AUTHORITY, "BGS")
            .await
            .map(drop)
            .unwrap_err()
            .code(),
        ask(NATIONAL_AUTHORITY, "")
            .await
            .map(drop)
            .unwrap_err()
            .code(),
    ];
    assert_eq!(
        codes,
        [
            Code::PermissionDenied,
            Code::NotFound,
            Code::InvalidArgument
        ],
        "another district's, a district without an RDSA, no district"
    );
}
