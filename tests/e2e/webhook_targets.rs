//! Webhooks cannot be aimed inside (issue #25): every textual form of a loopback or unspecified address is
//! refused when it is registered, and a host name that resolves inside is refused when it is called, with
//! the refusal recorded coarsely and nothing reaching the receiver. Only loopback addresses are used: the
//! refusals come before any connection.

use placement_cli::scenario::eventually;
use placement_e2e::{StackOptions, webhook::WebhookReceiver};
use placement_proto::v1::{DeliveryStatus, Language, NotificationChannel};
use tonic::Code;

use crate::support::{Fixture, WAIT};

const ALLOWED_HOSTS: &str = "PLACEMENT_WEBHOOK_ALLOWED_HOSTS";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_aimed_inside_are_refused_at_registration_and_at_delivery() {
    let receiver = WebhookReceiver::start().await;
    // No internal host is allowed anywhere (the stack's default allows the tests' 127.0.0.1).
    let mut f = Fixture::with(StackOptions {
        env: vec![(ALLOWED_HOSTS.into(), String::new())],
        ..Default::default()
    })
    .await;

    every_internal_form_is_refused_at_registration(&f, &receiver.url()).await;
    a_name_resolving_inside_is_refused_at_delivery(&mut f, &receiver).await;
}

/// The forms, and the receiver's own address, are refused naming the address; nothing is stored.
async fn every_internal_form_is_refused_at_registration(f: &Fixture, receiver_url: &str) {
    let pirdop = f.agency("dsa-pirdop");
    for address in [
        "https://127.0.0.1/",
        "https://127.1/",
        "https://2130706433/",
        "https://0x7f000001/",
        "https://017700000001/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://localhost/",
        "https://0.0.0.0/",
        receiver_url,
    ] {
        let err = f
            .add_endpoint(
                pirdop,
                NotificationChannel::Webhook,
                address,
                &[],
                Language::En,
            )
            .await
            .expect_err(address);
        assert_eq!(err.code(), Code::InvalidArgument, "{address}: {err:?}");
        assert!(
            err.message().contains("address") && err.message().contains("not allowed"),
            "{address}: {}",
            err.message()
        );
    }
    // Nothing was registered.
    let listed = f.endpoints(pirdop).await.expect("list");
    assert!(listed.is_empty(), "{listed:#?}");
}

/// The directory allows the name `localhost`, the notifications service does not: the webhook is
/// registered, and refused when its name resolves to the loopback address.
async fn a_name_resolving_inside_is_refused_at_delivery(
    f: &mut Fixture,
    receiver: &WebhookReceiver,
) {
    let port = receiver.addr.port();
    f.stack.set_env("directory", ALLOWED_HOSTS, "localhost");
    f.stack.restart("directory");
    f.stack.wait_ready(WAIT).await;
    let foster = f.agency("foster-vratsa");
    let address = format!("http://localhost:{port}/hooks/placement");
    let hook = eventually("the directory to take the webhook", WAIT, || async {
        f.add_endpoint(
            foster,
            NotificationChannel::Webhook,
            &address,
            &[],
            Language::En,
        )
        .await
        .ok()
    })
    .await
    .expect("a webhook at an allowed name");
    receiver.set_secret(&hook.secret);
    assert!(
        f.stack.wait_for_endpoints(1, WAIT).await,
        "the endpoint to reach the notifications service"
    );

    let sender = f.agency("dsa-stara-zagora");
    let case = f.open_twins_case(sender).await;
    let r = f.submit(sender, &case, f.demo.service("ftpc-vratsa")).await;
    let delivery = eventually("the webhook delivery to settle", WAIT, || async {
        f.inbox(foster)
            .await
            .into_iter()
            .filter(|n| n.referral_id == r.id)
            .flat_map(|n| n.deliveries)
            .find(|d| d.status != DeliveryStatus::Pending as i32)
    })
    .await
    .expect("a delivery that settled");
    // Refused once, for good, in words that name no address or port.
    assert_eq!(
        delivery.status,
        DeliveryStatus::Failed as i32,
        "{delivery:#?}"
    );
    assert_eq!(delivery.last_error, "address not allowed");
    assert_eq!(delivery.attempts, 1, "a refused target is not retried");
    // The attempt was recorded after it ended: had it connected, the receiver would have seen it by now.
    assert!(receiver.calls().is_empty(), "{:#?}", receiver.calls());
    assert!(
        f.stack.logs().contains("resolves inside a network"),
        "the resolver refused it, not a check of the URL's text"
    );
    // The endpoint is disabled, and its agency is told why.
    let endpoint = f.disabled_endpoint(foster, &hook.id).await;
    assert!(
        endpoint.disabled_reason.contains("address not allowed"),
        "{}",
        endpoint.disabled_reason
    );
    f.assert_no_dead_letters().await;
}
