//! A child's name and personal number: stored sealed, shown only to the owning DSA, and found nowhere else —
//! not in any log line, any message that went through RabbitMQ, any notification, e-mail or webhook, nor in
//! clear in any table of any service.

use placement_cli::clients::as_agency;
use placement_e2e::{EventRecorder, StackOptions, mail::SmtpSink, webhook::WebhookReceiver};
use placement_proto::v1::{
    AcceptReferralRequest, Case, Child, ChildNeed, ConfirmPlacementRequest, GetCaseRequest,
    Language, ListNotificationsRequest, NotificationChannel, OpenCaseRequest, Sex,
};
use sqlx::Row;
use tonic::Code;

use crate::support::{Fixture, WAIT};

const NAME: &str = "Десислава Откриваемова";
const NAME_LATIN: &str = "Otkrivaemova";
const EGN: &str = "7501020018";

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_personal_numbers_never_leave_the_case() {
    let smtp = SmtpSink::start();
    let receiver = WebhookReceiver::start().await;
    let f = Fixture::with(StackOptions {
        env: vec![("PLACEMENT_SMTP_URL".into(), smtp.url())],
        ..Default::default()
    })
    .await;
    let mut recorder = f.stack.record_events().await;
    register_endpoints(&f, &receiver).await;
    a_wrong_personal_number_is_refused_without_echoing_it(&f).await;
    let case = open_a_case_with_a_name(&f).await;
    let referral_id = place_the_child(&f, &case).await;
    f.settle(&mut recorder, &referral_id, 5).await;
    only_the_owner_sees_name_and_number(&f, &case).await;
    found_in_no_message(&f, &smtp, &receiver, &recorder).await;
    found_in_no_table(&f).await;
}

const SECRETS: [&str; 3] = [NAME, NAME_LATIN, EGN];

fn assert_absent(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{s:?} found in {what}");
    }
}

/// An e-mail address for the sender and a webhook for the provider, known to the notifications service.
async fn register_endpoints(f: &Fixture, receiver: &WebhookReceiver) {
    let sender = f.agency("dsa-pirdop");
    let provider = f.agency("provider-vratsa");
    for (agency, channel, address) in [
        (
            sender,
            NotificationChannel::Email,
            "dsp.pirdop@example.bg".to_string(),
        ),
        (provider, NotificationChannel::Webhook, receiver.url()),
    ] {
        let e = f
            .add_endpoint(agency, channel, &address, &[], Language::Bg)
            .await
            .expect("endpoint");
        if !e.secret.is_empty() {
            receiver.set_secret(&e.secret);
        }
    }
    assert!(
        f.stack.wait_for_endpoints(2, WAIT).await,
        "endpoints to reach the notifications service"
    );
}

/// A child with a name and personal number.
fn child(name: &str, egn: &str) -> Child {
    Child {
        pseudonym: "Child D".into(),
        birth_year: 2019,
        sex: Sex::Female as i32,
        needs: vec![ChildNeed::Educational as i32],
        name: name.into(),
        personal_number: egn.into(),
        ..Default::default()
    }
}

/// A personal number with a wrong check digit, or with a right one but a date of birth that cannot exist
/// (1234567890: month 34, day 56), is refused, naming the field and not the value; no case is opened.
async fn a_wrong_personal_number_is_refused_without_echoing_it(f: &Fixture) {
    let sender = f.agency("dsa-pirdop");
    let mut cases = f.clients.cases.clone();
    for wrong in ["7501020017", "1234567890"] {
        let err = cases
            .open_case(as_agency(
                sender,
                OpenCaseRequest {
                    children: vec![child(NAME, wrong)],
                    current_setting: "Crisis centre".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{wrong}");
        assert!(
            err.message().starts_with("children[0].personal_number"),
            "{}",
            err.message()
        );
        assert!(!err.message().contains(wrong) && !err.message().contains(NAME_LATIN));
    }
}

async fn open_a_case_with_a_name(f: &Fixture) -> Case {
    let sender = f.agency("dsa-pirdop");
    let mut cases = f.clients.cases.clone();
    let case = cases
        .open_case(as_agency(
            sender,
            OpenCaseRequest {
                children: vec![child(&format!("{NAME} {NAME_LATIN}"), EGN)],
                current_setting: "Crisis centre".into(),
            },
        ))
        .await
        .expect("OpenCase")
        .into_inner();
    assert_eq!(case.children[0].personal_number, EGN);
    case
}

/// The whole flow, with e-mails and webhooks.
async fn place_the_child(f: &Fixture, case: &Case) -> String {
    let sender = f.agency("dsa-pirdop");
    let provider = f.agency("provider-vratsa");
    let r = f.submit(sender, case, f.demo.service("ftpc-vratsa")).await;
    f.acknowledge(&r.id, &["provider-vratsa", "foster-vratsa"])
        .await;
    f.clients
        .referrals
        .clone()
        .accept_referral(as_agency(
            provider,
            AcceptReferralRequest {
                referral_id: r.id.clone(),
            },
        ))
        .await
        .expect("accept");
    f.clients
        .referrals
        .clone()
        .confirm_placement(as_agency(
            sender,
            ConfirmPlacementRequest {
                referral_id: r.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("confirm");
    r.id
}

/// The owner sees the name and number; the receiving side reads the case without them.
async fn only_the_owner_sees_name_and_number(f: &Fixture, case: &Case) {
    let sender = f.agency("dsa-pirdop");
    let provider = f.agency("provider-vratsa");
    let mut cases = f.clients.cases.clone();
    let owner = cases
        .get_case(as_agency(
            sender,
            GetCaseRequest {
                case_id: case.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(owner.children[0].name, format!("{NAME} {NAME_LATIN}"));
    assert_eq!(owner.children[0].personal_number, EGN);
    let receiving = cases
        .get_case(as_agency(
            provider,
            GetCaseRequest {
                case_id: case.id.clone(),
            },
        ))
        .await
        .expect("the provider reads the placed case")
        .into_inner();
    assert!(
        receiving.children[0].name.is_empty() && receiving.children[0].personal_number.is_empty()
    );
}

/// Every message through RabbitMQ (the recorder is bound to every routing key).
async fn found_in_no_message(
    f: &Fixture,
    smtp: &SmtpSink,
    receiver: &WebhookReceiver,
    recorder: &EventRecorder,
) {
    let mails = smtp.wait_for(WAIT, |m| m.len() >= 3).await;
    let calls = receiver.wait_for(WAIT, |c| c.len() >= 2).await;
    assert!(recorder.events.len() >= 5);
    for (envelope, raw) in &recorder.events {
        assert_absent(
            &format!("event {}", envelope.event_type),
            &String::from_utf8_lossy(raw),
        );
    }
    // Every notification of every agency.
    for agency in f.demo.agencies.values() {
        let inbox = f
            .clients
            .notifications
            .clone()
            .list_notifications(as_agency(
                *agency,
                ListNotificationsRequest {
                    page_size: 500,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .notifications;
        for n in inbox {
            assert_absent("a notification", &format!("{} {}", n.title, n.body));
        }
    }
    assert!(mails.len() >= 3 && !calls.is_empty());
    for m in &mails {
        assert_absent("an e-mail", &format!("{} {}", m.subject, m.text));
    }
    for c in &calls {
        assert_absent("a webhook", &c.body.to_string());
    }
    // Every log line of every service.
    assert_absent("the logs", &f.stack.logs());
}

/// Every row of every table of every service, in clear or as hex.
async fn found_in_no_table(f: &Fixture) {
    let mut db = f.stack.db().await;
    let tables = sqlx::query(
        "SELECT table_schema, table_name FROM information_schema.tables
         WHERE table_schema IN ('directory', 'cases', 'referrals', 'notifications') AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert!(tables.len() > 15);
    for t in tables {
        let (schema, table): (String, String) = (t.get(0), t.get(1));
        for s in SECRETS {
            let hits: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM {schema}.{table} t WHERE t::text LIKE '%' || $1 || '%' OR t::text LIKE '%' || $2 || '%'"
            ))
            .bind(s)
            .bind(hex(s))
            .fetch_one(&mut db)
            .await
            .unwrap();
            assert_eq!(hits, 0, "{s:?} found in {schema}.{table}");
        }
    }
    // The sealed values are there, and they are not the clear ones.
    let sealed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM cases.children WHERE name_sealed IS NOT NULL AND personal_number_sealed IS NOT NULL",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(sealed, 1);
}
