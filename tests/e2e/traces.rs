//! Traces across gRPC and AMQP: one referral submitted by a traced caller makes one trace — the caller's
//! SubmitReferral, the relay's publish, each consumer's application, the e-mail and webhook deliveries —
//! received by an OTLP receiver on the official protocol definitions (tests/tools/otlp_receiver.py), with
//! the right parent links and no personal data in any attribute; the JSON logs carry the trace id.

use chrono::{Datelike, Utc};
use placement_cli::clients::as_agency;
use placement_e2e::{
    StackOptions,
    mail::SmtpSink,
    otlp::{OtlpReceiver, Span},
    webhook::WebhookReceiver,
};
use placement_proto::v1::{
    Case, Child as ChildOf, Language, NotificationChannel, OpenCaseRequest, Referral, Sex,
};
use uuid::Uuid;

use crate::support::{Fixture, WAIT};

const NAME: &str = "Ивана Тракова";
const EGN: &str = "7501020018";
const PSEUDONYM: &str = "Traced child";

/// The spans of `trace`, once `done` holds for them (or the deadline passed).
async fn trace_when(
    receiver: &OtlpReceiver,
    trace: &str,
    done: impl Fn(&[Span]) -> bool,
) -> Vec<Span> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let spans: Vec<Span> = receiver
            .spans()
            .into_iter()
            .filter(|s| s.trace_id == trace)
            .collect();
        if done(&spans) || tokio::time::Instant::now() > deadline {
            return spans;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn find<'a>(spans: &'a [Span], service: &str, name: &str) -> Option<&'a Span> {
    spans
        .iter()
        .find(|s| s.service == service && s.name == name)
}

/// Whether `span` descends from `ancestor` through the spans of the trace.
fn descends(spans: &[Span], span: &Span, ancestor: &Span) -> bool {
    let mut parent = span.parent_span_id.clone();
    for _ in 0..32 {
        if parent == ancestor.span_id {
            return true;
        }
        match spans.iter().find(|s| s.span_id == parent) {
            Some(p) => parent = p.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_referral_makes_one_trace_across_grpc_the_outbox_amqp_and_deliveries() {
    let receiver = OtlpReceiver::start();
    let smtp = SmtpSink::start();
    let webhook = WebhookReceiver::start().await;
    let f = Fixture::with(traced_options(&receiver, &smtp)).await;
    add_the_endpoints(&f, &webhook).await;
    let sender = f.agency("dsa-pirdop");
    let case = open_a_case_with_a_name_and_egn(&f, sender).await;
    // The caller is traced: its span is the parent of the exchange's.
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let caller_span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let referral = submit_traced(&f, sender, &case, &trace, caller_span).await;
    let spans = trace_when(&receiver, &trace, |spans| {
        find(spans, "placement-notifications", "deliver webhook").is_some()
            && find(spans, "placement-notifications", "deliver email").is_some()
            && find(spans, "placement-reports", "process referral.submitted").is_some()
    })
    .await;
    let names: Vec<(&str, &str)> = spans
        .iter()
        .map(|s| (s.service.as_str(), s.name.as_str()))
        .collect();
    eprintln!("the trace: {names:?}");
    let submit = assert_submission_spans(&spans, &names, caller_span);
    assert_amqp_and_delivery_spans(&f, &spans, submit, &names, &referral.id).await;
    // No attribute of any span of any trace carries the child's name, personal number or pseudonym.
    for span in receiver.spans() {
        let text = serde_json::to_string(&span.attributes).expect("attributes");
        for secret in [NAME, EGN, PSEUDONYM] {
            assert!(!text.contains(secret), "{secret:?} in {span:?}");
        }
    }
    // The JSON logs of the delivery carry the trace id.
    let log = std::fs::read_to_string(f.stack.log_dir.join("notifications.log")).expect("log");
    let delivered: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l.pointer("/fields/message") == Some(&serde_json::json!("delivered")))
        .collect();
    assert!(
        delivered
            .iter()
            .any(|l| l.pointer("/span/trace_id") == Some(&serde_json::json!(trace))),
        "no 'delivered' log line with trace id {trace}: {delivered:?}"
    );
}

fn traced_options(receiver: &OtlpReceiver, smtp: &SmtpSink) -> StackOptions {
    StackOptions {
        env: vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                format!("http://127.0.0.1:{}", receiver.port),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
            ("PLACEMENT_LOG_FORMAT".into(), "json".into()),
            ("PLACEMENT_SMTP_URL".into(), smtp.url()),
        ],
        ..Default::default()
    }
}

/// The provider's webhook and the foster-care team's e-mail, both told of new requests.
async fn add_the_endpoints(f: &Fixture, webhook: &WebhookReceiver) {
    let provider = f.agency("provider-vratsa");
    let foster = f.agency("foster-vratsa");
    for (agency, channel, address) in [
        (provider, NotificationChannel::Webhook, webhook.url()),
        (
            foster,
            NotificationChannel::Email,
            "foster.vratsa@example.bg".to_string(),
        ),
    ] {
        let endpoint = f
            .add_endpoint(
                agency,
                channel,
                &address,
                &["referral.submitted"],
                Language::En,
            )
            .await
            .expect("an endpoint");
        if channel == NotificationChannel::Webhook {
            webhook.set_secret(&endpoint.secret);
        }
    }
    assert!(
        f.stack.wait_for_endpoints(2, WAIT).await,
        "endpoints reach notifications"
    );
}

/// A case of one child with a name and an EGN, the data no span may carry.
async fn open_a_case_with_a_name_and_egn(f: &Fixture, sender: Uuid) -> Case {
    f.clients
        .cases
        .clone()
        .open_case(as_agency(
            sender,
            OpenCaseRequest {
                children: vec![ChildOf {
                    pseudonym: PSEUDONYM.into(),
                    birth_year: Utc::now().year() - 6,
                    sex: Sex::Female as i32,
                    name: NAME.into(),
                    personal_number: EGN.into(),
                    ..Default::default()
                }],
                current_setting: String::new(),
            },
        ))
        .await
        .expect("OpenCase")
        .into_inner()
}

/// Submits a referral of `case` as a caller whose span `caller_span` of `trace` is the parent.
async fn submit_traced(
    f: &Fixture,
    sender: Uuid,
    case: &Case,
    trace: &str,
    caller_span: &str,
) -> Referral {
    let mut request = as_agency(
        sender,
        f.submission(case, f.demo.service("ftpc-vratsa"), "traced"),
    );
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-{caller_span}-01")
            .parse()
            .expect("metadata"),
    );
    f.clients
        .referrals
        .clone()
        .submit_referral(request)
        .await
        .expect("SubmitReferral")
        .into_inner()
}

/// The caller's span is SubmitReferral's parent; the calls to the cases service and the directory are
/// under the submission. Returns the SubmitReferral span.
fn assert_submission_spans<'a>(
    spans: &'a [Span],
    names: &[(&str, &str)],
    caller_span: &str,
) -> &'a Span {
    let submit_name = "placement.v1.ReferralService/SubmitReferral";
    let submit = find(spans, "placement-referrals", submit_name)
        .unwrap_or_else(|| panic!("no SubmitReferral span in the trace: {names:?}"));
    assert_eq!(
        submit.parent_span_id, caller_span,
        "the caller's span is its parent"
    );
    // The referrals service asks the cases service for the case and the directory for the service: both
    // calls are in the trace, under the submission.
    for (service, call) in [
        ("placement-cases", "placement.v1.CaseService/"),
        ("placement-directory", "placement.v1.DirectoryService/"),
    ] {
        let called = spans
            .iter()
            .find(|s| s.service == service && s.name.starts_with(call))
            .unwrap_or_else(|| panic!("no call to {service} in the trace: {names:?}"));
        assert!(
            descends(spans, called, submit),
            "{service}'s span is under SubmitReferral"
        );
    }
    submit
}

/// The publish follows the call that wrote the event; each consumer's processing follows the publish;
/// each delivery came of the notifications service's processing.
async fn assert_amqp_and_delivery_spans(
    f: &Fixture,
    spans: &[Span],
    submit: &Span,
    names: &[(&str, &str)],
    referral_id: &str,
) {
    let publish = find(spans, "placement-referrals", "publish referral.submitted")
        .unwrap_or_else(|| panic!("no publish span: {names:?}"));
    assert!(
        descends(spans, publish, submit),
        "the publish follows the call that wrote the event"
    );
    assert_eq!(
        publish.attributes["messaging.message.id"],
        serde_json::json!(events_of(f, referral_id).await)
    );
    for service in ["placement-notifications", "placement-reports"] {
        let process = find(spans, service, "process referral.submitted")
            .unwrap_or_else(|| panic!("no {service} process span: {names:?}"));
        assert_eq!(
            process.parent_span_id, publish.span_id,
            "{service} consumes what was published"
        );
    }
    let process = find(
        spans,
        "placement-notifications",
        "process referral.submitted",
    )
    .expect("process");
    for channel in ["webhook", "email"] {
        let deliver = find(
            spans,
            "placement-notifications",
            &format!("deliver {channel}"),
        )
        .unwrap_or_else(|| panic!("no {channel} delivery span: {names:?}"));
        assert_eq!(
            deliver.parent_span_id, process.span_id,
            "the {channel} delivery came of that event"
        );
    }
}

/// The id of the one event published about `referral`: what the publish span names.
async fn events_of(f: &Fixture, referral: &str) -> String {
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(&f.stack.database_url)
        .await
        .expect("database");
    sqlx::query_scalar(
        "SELECT event_id::text FROM referrals.outbox WHERE event_type = 'referral.submitted'
          AND envelope IS NOT NULL ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut db)
    .await
    .unwrap_or_else(|e| panic!("the event of {referral}: {e}"))
}
