//! What no client may grow without end: the metric series (a made-up method path is `unknown`, never a
//! label of its own), the WatchNotifications streams a person or an agency keeps open, and a stream's
//! life past its token's expiry.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use placement_cli::devkeys;
use placement_e2e::{Stack, StackOptions};
use placement_platform::{caller::Role, services};
use placement_proto::v1::{
    Notification, WatchNotificationsRequest, notification_service_client::NotificationServiceClient,
};
use tonic::{Code, codegen::http::uri::PathAndQuery};
use uuid::Uuid;

use crate::support::{WAIT, bearer};

/// The `/metrics` text of the stack's instance `name`.
async fn scrape(stack: &Stack, name: &str) -> String {
    let addr = &stack.metrics[name];
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("the metrics endpoint answers")
        .text()
        .await
        .expect("metrics text")
}

/// Every series (name and labels, without the value) that has a `method` label.
fn method_series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains("method=\""))
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series.to_string()))
        .collect()
}

fn method_of(series: &str) -> &str {
    series
        .split("method=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
}

/// The count of calls labelled `unknown` and answered `code`.
fn unknown_calls(text: &str, code: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("placement_grpc_requests_total{"))
        .filter(|l| l.contains("method=\"unknown\"") && l.contains(&format!("code=\"{code}\"")))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// Calls `path` with an empty body, with `token` if any; returns the status.
async fn call_path(channel: tonic::transport::Channel, path: &str, token: Option<&str>) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("channel ready");
    let request = match token {
        Some(token) => bearer(token, ()),
        None => tonic::Request::new(()),
    };
    let path = PathAndQuery::try_from(path.to_string()).expect("a path");
    let codec = placement_proto::codec::Codec::<(), ()>::default();
    match grpc.unary(request, path, codec).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_method_paths_add_no_metric_series() {
    const CALLS: usize = 25;
    let stack = Stack::start(StackOptions::default()).await;
    let channel = placement_cli::clients::channel(stack.endpoints.url(services::REFERRALS))
        .expect("a channel to the referrals service");
    let signer = devkeys::signer(placement_e2e::dev_keys()).expect("the development signer");
    let token = devkeys::token(&signer, Uuid::new_v4(), &[Role::Caseworker]);
    let before = scrape(&stack, "referrals").await;
    let unknown_before = unknown_calls(&before, "UNAUTHENTICATED");

    let mut made_up = Vec::new();
    for _ in 0..CALLS {
        let name = format!("Xyz{}", Uuid::new_v4().simple());
        // Without a token: refused before routing, as the issue saw it.
        let path = format!("/placement.v1.ReferralService/{name}");
        assert_eq!(
            call_path(channel.clone(), &path, None).await,
            Code::Unauthenticated
        );
        made_up.push(name);
    }
    // With a token, a made-up service and a made-up method of a real one are not served.
    let service = format!("Svc{}", Uuid::new_v4().simple());
    for path in [
        format!("/placement.v1.{service}/GetReferral"),
        format!("/placement.v1.ReferralService/{service}"),
    ] {
        assert_eq!(
            call_path(channel.clone(), &path, Some(&token)).await,
            Code::Unimplemented,
            "{path}"
        );
    }
    made_up.push(service);

    // Each call is counted when its answer ends; wait until all are, then compare.
    let deadline = Instant::now() + WAIT;
    let after = loop {
        let text = scrape(&stack, "referrals").await;
        if unknown_calls(&text, "UNAUTHENTICATED") >= unknown_before + CALLS as f64 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the {CALLS} refused calls were not counted as `unknown` within {WAIT:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for name in &made_up {
        assert!(
            !after.contains(name.as_str()),
            "{name} became part of a series"
        );
    }
    // Other services may call this one meanwhile (declared methods); nothing else may be a label.
    let declared = |m: &str| placement_platform::grpc_observed::declared(&format!("/{m}")) == m;
    let (old, new) = (method_series(&before), method_series(&after));
    let known: BTreeSet<&str> = old.iter().map(|s| method_of(s)).collect();
    let added: BTreeSet<&str> = new
        .iter()
        .map(|s| method_of(s))
        .filter(|m| !known.contains(m))
        .collect();
    let undeclared: Vec<&&str> = added.iter().filter(|m| !declared(m)).collect();
    assert!(
        undeclared.iter().all(|m| **m == "unknown"),
        "method labels added beyond the declared methods and `unknown`: {undeclared:?}"
    );
    assert!(
        new.iter()
            .all(|s| method_of(s) == "unknown" || declared(method_of(s))),
        "a series names a method no service declares"
    );
}

/// Opens a watch of its inbox as `token`'s bearer, on the test's one connection (so that closing a stream
/// is a stream's reset, not a connection's end).
async fn watch(
    client: &Watcher,
    token: &str,
) -> Result<tonic::Streaming<Notification>, tonic::Status> {
    client
        .clone()
        .watch_notifications(bearer(
            token,
            WatchNotificationsRequest {
                after_sequence: 0,
                ..Default::default()
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

type Watcher = NotificationServiceClient<tonic::transport::Channel>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_are_capped_per_person_and_per_agency_and_a_closed_one_frees_its_place() {
    let stack = Stack::start(StackOptions {
        env: vec![
            ("PLACEMENT_WATCH_STREAMS_PER_PERSON".into(), "3".into()),
            ("PLACEMENT_WATCH_STREAMS_PER_AGENCY".into(), "4".into()),
        ],
        ..Default::default()
    })
    .await;
    let client = stack.clients().notifications;
    let signer = devkeys::signer(placement_e2e::dev_keys()).expect("the development signer");
    let agency = Uuid::new_v4();
    let hour = Duration::from_secs(3600);
    let ana = signer.mint(agency, "ana@limits.test", &[Role::Caseworker], hour);
    let boris = signer.mint(agency, "boris@limits.test", &[Role::Caseworker], hour);

    let mut anas = Vec::new();
    for i in 0..3 {
        anas.push(
            watch(&client, &ana)
                .await
                .unwrap_or_else(|e| panic!("stream {i} within the cap: {e:?}")),
        );
    }
    let refused = watch(&client, &ana)
        .await
        .expect_err("a fourth stream of one person");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("per person"),
        "{}",
        refused.message()
    );

    // Another person of the agency has places of their own, up to the agency's.
    let _boris_first = watch(&client, &boris)
        .await
        .expect("another person's stream");
    let refused = watch(&client, &boris)
        .await
        .expect_err("a fifth stream of one agency");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("per agency"),
        "{}",
        refused.message()
    );

    // Another agency is not held back by this one.
    let other = signer.mint(Uuid::new_v4(), "ana@limits.test", &[Role::Caseworker], hour);
    let _others = watch(&client, &other)
        .await
        .expect("another agency's stream");

    // A stream closed by its client gives its place back, once the service has seen it go.
    drop(anas.pop());
    let deadline = Instant::now() + WAIT;
    let _again = loop {
        match watch(&client, &ana).await {
            Ok(stream) => break stream,
            Err(e) if e.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the closed stream's place was not given back within {WAIT:?}: {e:?}"),
        }
    };
    let refused = watch(&client, &ana).await.expect_err("the cap holds again");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_stream_ends_when_its_token_expires() {
    let stack = Stack::start(StackOptions::default()).await;
    let client = stack.clients().notifications;
    let signer = devkeys::signer(placement_e2e::dev_keys()).expect("the development signer");
    let agency = Uuid::new_v4();
    let roles = [Role::Caseworker];
    let lasting = signer.mint(
        agency,
        "lasting@limits.test",
        &roles,
        Duration::from_secs(3600),
    );
    let mut long = watch(&client, &lasting)
        .await
        .expect("a stream for an hour");
    let minted = Instant::now();
    let brief = signer.mint(agency, "brief@limits.test", &roles, Duration::from_secs(4));
    let mut short = watch(&client, &brief).await.expect("a stream for seconds");

    let ended = tokio::time::timeout(WAIT, short.message())
        .await
        .expect("the stream did not end at its token's expiry");
    let lived = minted.elapsed();
    let status = ended.expect_err("the stream ends with a status, not a notification");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("expired"), "{}", status.message());
    // `exp` is in whole seconds: the token was good for more than three.
    assert!(
        lived >= Duration::from_secs(3),
        "ended after {lived:?}, before its token expired"
    );
    // The stream opened with a lasting token goes on.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), long.message())
            .await
            .is_err(),
        "the stream of the lasting token ended too"
    );
}
