//! Several broker addresses: every service is given two "nodes" (two TCP proxies the test controls, in front
//! of the one broker) and spreads over them; when one node's network is cut, every service that was on it
//! moves to the other, and the flow goes on.

use std::collections::BTreeMap;

use placement_cli::scenario::eventually;
use placement_e2e::{StackOptions, amqp_url, proxy::TcpProxy};
use placement_platform::services;

use crate::support::{Fixture, WAIT};

/// The broker's address and the URL with another host:port in its place.
fn through(proxy: &TcpProxy) -> String {
    let url = amqp_url();
    let (scheme_auth, rest) = url.split_once('@').expect("user@host in the AMQP URL");
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    format!("{scheme_auth}@127.0.0.1:{}/{path}", proxy.port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_move_to_another_broker_node_when_theirs_is_cut() {
    let broker = amqp_url();
    let host = broker
        .split_once('@')
        .and_then(|(_, rest)| rest.split('/').next())
        .expect("host:port")
        .to_string();
    let (a, b) = (
        TcpProxy::start(host.clone()).await,
        TcpProxy::start(host).await,
    );
    let nodes = format!("{},{}", through(&a), through(&b));
    let amqp_url_of: BTreeMap<&'static str, String> = services::ALL
        .iter()
        .map(|s| (s.name, nodes.clone()))
        .collect();
    let f = Fixture::with(StackOptions {
        amqp_url_of,
        ..Default::default()
    })
    .await;
    let every = services::ALL.len();
    assert!(
        a.live() + b.live() >= every,
        "every service connected to a node"
    );
    let sender = f.agency("dsa-pirdop");
    let provider = f.agency("provider-vratsa");
    let service = f.demo.service("ftpc-vratsa");
    let case = f.open_twins_case(sender).await;
    let first = f.submit(sender, &case, service).await;
    f.acknowledge(&first.id, &["provider-vratsa", "foster-vratsa"])
        .await;

    // The network of the node more services are on is cut: its connections drop, and no new one gets
    // through.
    let (cut, other) = if a.live() >= b.live() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    assert!(cut.live() > 0);
    cut.cut();
    eventually("every service to move to the other node", WAIT, || async {
        (cut.live() == 0 && other.live() >= every).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: cut {} other {}", cut.live(), other.live()));
    let case = f.open_twins_case(sender).await;
    let second = f.submit(sender, &case, service).await;
    f.acknowledge(&second.id, &["provider-vratsa", "foster-vratsa"])
        .await;
    // The provider is told of both.
    eventually("the provider told of both referrals", WAIT, || async {
        let told = f.inbox(provider).await;
        let of = |id: &str| told.iter().filter(|n| n.referral_id == id).count();
        (of(&first.id) >= 1 && of(&second.id) >= 1).then_some(())
    })
    .await
    .expect("told of both");
    f.assert_no_dead_letters().await;
}
