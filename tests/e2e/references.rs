//! The references people say («Н-СФО-2026-00042», «С-2026-00007»; see `placement_model::reference`):
//! records made in the same second differ, in the documented form; a referral's reference is the same in
//! GetReferral, its event, the inbox and the webhook; a list filtered by reference finds exactly it, and
//! nothing for another agency; concurrent submissions in one district get consecutive numbers. One
//! in-process stack.

use std::collections::BTreeSet;

use chrono::{Datelike, Utc};
use placement_cli::{clients::as_agency, scenario::eventually};
use placement_e2e::{InProcessStack, webhook::WebhookReceiver};
use placement_messaging::EventType;
use placement_model::reference::{Kind, RESTORE_GAP, Reference};
use placement_proto::v1::{
    Case, Language, ListCasesRequest, ListReferralsRequest, NotificationChannel, Referral,
    ReferralDirection, ReferralEvent,
};
use prost::Message;
use sqlx::Connection;
use uuid::Uuid;

use crate::support::{Fixture, WAIT};

type Kit = Fixture<InProcessStack>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_are_unique_said_alike_everywhere_and_found_by_whom_may_see_them() {
    let receiver = WebhookReceiver::start().await;
    let f = Kit::in_process().await;
    let mut events = f.stack.record_events().await;
    let (sender, provider) = (f.agency("dsa-pirdop"), f.agency("provider-vratsa"));
    a_webhook_for(&f, &receiver, provider).await;

    let (case, [a, b]) = a_case_and_two_referrals_at_once(&f, sender).await;
    let case_reference = Reference::parse(&case.reference).expect("a case reference");
    assert_eq!(case_reference.kind, Kind::Case);
    assert_eq!(
        case_reference.to_string(),
        case.reference,
        "written as documented"
    );
    for r in [&a, &b] {
        let parsed = Reference::parse(&r.reference).expect("a referral reference");
        let expected = Reference::referral(&r.sender_region_code, parsed.year, parsed.number);
        assert_eq!(r.reference, expected.to_string(), "the documented form");
        assert!(r.reference.starts_with("Н-СФО-"), "{}", r.reference);
        assert!((Utc::now().year() - 1..=Utc::now().year() + 1).contains(&parsed.year));
    }
    assert_ne!(
        a.reference, b.reference,
        "made in the same second, told apart"
    );

    the_same_in_every_telling(&f, &mut events, &receiver, provider, &a).await;
    found_by_reference_only_by_whom_may_see_it(&f, sender, provider, &case, &a).await;
    concurrent_submissions_in_one_district_follow_on(&f).await;
}

/// The deploy script moves the counters by the gap the model documents.
#[test]
fn a_restore_skips_the_documented_gap() {
    let script = include_str!("../../deploy/restore.sh");
    let moved = format!("last_number = last_number + {RESTORE_GAP}");
    assert!(script.contains(&moved), "restore.sh: {moved}");
    assert!(script.contains(&format!("skipped = skipped + {RESTORE_GAP}")));
}

/// A webhook of `agency`'s at `receiver`, for new referrals, known to the notifications service.
async fn a_webhook_for(f: &Kit, receiver: &WebhookReceiver, agency: Uuid) {
    let hook = f
        .add_endpoint(
            agency,
            NotificationChannel::Webhook,
            &receiver.url(),
            &["referral.submitted"],
            Language::Bg,
        )
        .await
        .expect("a webhook");
    receiver.set_secret(&hook.secret);
    let id = Uuid::parse_str(&hook.id).expect("an endpoint id");
    let url = f.stack.database_url.clone();
    eventually(
        "the webhook to reach the notifications service",
        WAIT,
        || {
            let url = url.clone();
            async move {
                let mut db = sqlx::PgConnection::connect(&url).await.ok()?;
                let known: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM notifications.endpoints WHERE id = $1)",
                )
                .bind(id)
                .fetch_one(&mut db)
                .await
                .ok()?;
                known.then_some(())
            }
        },
    )
    .await
    .expect("the webhook known");
}

/// A case, then two referrals of it sent at the same moment.
async fn a_case_and_two_referrals_at_once(f: &Kit, sender: Uuid) -> (Case, [Referral; 2]) {
    let case = f.open_twins_case(sender).await;
    let (vratsa, haskovo) = (
        f.demo.service("ftpc-vratsa"),
        f.demo.service("ftpc-haskovo"),
    );
    let (a, b) = tokio::join!(
        f.submit(sender, &case, vratsa),
        f.submit(sender, &case, haskovo)
    );
    (case, [a, b])
}

/// The referral's reference in GetReferral (as the receiving side reads it), in its event, in the
/// receiver's inbox and in the receiver's webhook.
async fn the_same_in_every_telling(
    f: &Kit,
    events: &mut placement_e2e::EventRecorder,
    receiver: &WebhookReceiver,
    provider: Uuid,
    a: &Referral,
) {
    assert_eq!(f.referral(provider, &a.id).await.reference, a.reference);

    let submitted = EventType::ReferralSubmitted.as_str();
    let seen = events
        .wait_until(WAIT, |e| {
            e.iter()
                .any(|(env, _)| env.aggregate_id == a.id && env.event_type == submitted)
        })
        .await;
    assert!(seen, "the referral's submission published");
    let envelope = (events.about(&a.id).into_iter())
        .find(|env| env.event_type == submitted)
        .expect("the submission");
    let told = ReferralEvent::decode(envelope.payload.as_slice()).expect("a referral event");
    assert_eq!(told.reference, a.reference, "the event");

    let notice = eventually("the provider told", WAIT, || async {
        f.notifications(provider, &a.id).await.into_iter().next()
    })
    .await
    .expect("the inbox");
    assert_eq!(notice.reference, a.reference, "the inbox");

    let calls = receiver
        .wait_for(WAIT, |calls| {
            calls.iter().any(|c| c.body["data"]["referral_id"] == a.id)
        })
        .await;
    let call = (calls.iter())
        .find(|c| c.body["data"]["referral_id"] == a.id)
        .expect("the webhook called");
    assert!(call.verified, "signed with the endpoint's secret");
    assert_eq!(call.body["data"]["reference"], a.reference, "the webhook");
}

/// ListReferrals and ListCases filtered by a reference typed loosely find exactly the record, for the
/// agencies that may see it; another agency lists nothing; what is not a reference is refused, named.
async fn found_by_reference_only_by_whom_may_see_it(
    f: &Kit,
    sender: Uuid,
    provider: Uuid,
    case: &Case,
    a: &Referral,
) {
    // As a person types it on a Latin keyboard: «h-sfo-2026-42».
    let parsed = Reference::parse(&a.reference).expect("parses");
    let typed = format!("h-sfo-{}-{}", parsed.year, parsed.number);
    let outgoing = referrals_by(f, sender, ReferralDirection::Outgoing, &typed).await;
    assert_eq!(ids(&outgoing.expect("listed")), vec![a.id.clone()]);
    let incoming = referrals_by(f, provider, ReferralDirection::Incoming, &a.reference).await;
    assert_eq!(ids(&incoming.expect("listed")), vec![a.id.clone()]);
    for (stranger, direction) in [
        ("dsa-stara-zagora", ReferralDirection::Outgoing),
        ("provider-haskovo", ReferralDirection::Incoming),
        ("provider-vratsa", ReferralDirection::Outgoing),
    ] {
        let listed = referrals_by(f, f.agency(stranger), direction, &a.reference).await;
        assert!(
            listed.expect("listed").is_empty(),
            "{stranger} finds nothing"
        );
    }
    let refused = referrals_by(f, sender, ReferralDirection::Outgoing, "de1294cb").await;
    let refused = refused.expect_err("not a reference");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().starts_with("reference: "), "{refused:?}");

    let cases = |agency: Uuid, reference: String| {
        let mut client = f.clients.cases.clone();
        async move {
            let asked = ListCasesRequest {
                reference,
                ..Default::default()
            };
            (client.list_cases(as_agency(agency, asked)).await).map(|r| {
                r.into_inner()
                    .cases
                    .into_iter()
                    .map(|c| c.id)
                    .collect::<Vec<_>>()
            })
        }
    };
    let typed = case.reference.to_lowercase().replace('-', " ");
    assert_eq!(
        cases(sender, typed).await.expect("listed"),
        vec![case.id.clone()]
    );
    let other_dsa = f.agency("dsa-pravets");
    assert!(
        cases(other_dsa, case.reference.clone())
            .await
            .expect("listed")
            .is_empty()
    );
    let refused = cases(sender, a.reference.clone())
        .await
        .expect_err("a referral's");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}

async fn referrals_by(
    f: &Kit,
    agency: Uuid,
    direction: ReferralDirection,
    reference: &str,
) -> Result<Vec<Referral>, tonic::Status> {
    let asked = ListReferralsRequest {
        direction: direction as i32,
        reference: reference.to_string(),
        ..Default::default()
    };
    (f.clients.referrals.clone())
        .list_referrals(as_agency(agency, asked))
        .await
        .map(|r| r.into_inner().referrals)
}

fn ids(referrals: &[Referral]) -> Vec<String> {
    referrals.iter().map(|r| r.id.clone()).collect()
}

/// Twenty referrals sent at once by four DSAs of one district get twenty distinct numbers that follow
/// on: the district's counter is taken in each submission's transaction.
async fn concurrent_submissions_in_one_district_follow_on(f: &Kit) {
    let service = f.demo.service("ftpc-vratsa");
    let mut cases = Vec::new();
    for dsa in ["dsa-pirdop", "dsa-pravets", "dsa-dragoman", "dsa-zlatitsa"] {
        let dsa = f.agency(dsa);
        cases.push((dsa, f.open_twins_case(dsa).await));
    }
    let sent = futures::future::join_all(
        (cases.iter().cycle().take(20)).map(|(dsa, case)| f.submit(*dsa, case, service)),
    )
    .await;
    let numbers: BTreeSet<u32> = (sent.iter())
        .map(|r| {
            let parsed = Reference::parse(&r.reference).expect("a reference");
            assert_eq!(
                parsed.region_code.as_deref(),
                Some("SFO"),
                "{}",
                r.reference
            );
            parsed.number
        })
        .collect();
    assert_eq!(numbers.len(), 20, "distinct: {numbers:?}");
    let (first, last) = (numbers.first().copied(), numbers.last().copied());
    assert_eq!(
        last.zip(first).map(|(l, f)| l - f),
        Some(19),
        "consecutive: {numbers:?}"
    );
}
