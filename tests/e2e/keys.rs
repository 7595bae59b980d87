//! Verification keys from the identity provider's `jwks_uri`: fetched by every service at start, and
//! again when a token names a key not seen yet, so a provider that rotates its keys needs no restart.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};
use std::time::Duration;

use axum::{Router, extract::State, routing::get};
use placement_cli::{demo::NATIONAL_AUTHORITY, devkeys, scenario::eventually};
use placement_e2e::StackOptions;
use placement_platform::services::{self, DIRECTORY};
use placement_proto::v1::{ListRegionsRequest, directory_service_client::DirectoryServiceClient};
use tonic::Code;

use crate::support::{Fixture, WAIT, bearer};

/// A real HTTP server publishing a JWKS document that the test changes, counting the fetches.
#[derive(Clone)]
struct JwksServer {
    url: String,
    document: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(document: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let server = Self {
            url: format!("http://{}/jwks", listener.local_addr().expect("address")),
            document: Arc::new(Mutex::new(document)),
            fetches: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new()
            .route("/jwks", get(publish))
            .with_state(server.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        server
    }

    fn publish(&self, document: String) {
        *self.document.lock().expect("not poisoned") = document;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn publish(State(server): State<JwksServer>) -> ([(&'static str, &'static str); 1], String) {
    server.fetches.fetch_add(1, Ordering::SeqCst);
    let document = server.document.lock().expect("not poisoned").clone();
    ([("content-type", "application/json")], document)
}

/// Both key sets in one JWKS document, as a provider publishes them while it rotates.
fn both(a: &str, b: &str) -> String {
    let keys = |doc: &str| -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(doc).expect("a JWKS");
        v["keys"].as_array().expect("keys").clone()
    };
    let mut all = keys(a);
    all.extend(keys(b));
    serde_json::json!({ "keys": all }).to_string()
}

async fn list_regions(f: &Fixture, token: &str) -> Result<(), tonic::Status> {
    let channel =
        placement_cli::clients::channel(f.stack.endpoints.url(DIRECTORY)).expect("channel");
    DirectoryServiceClient::new(channel)
        .list_regions(bearer(token, ListRegionsRequest {}))
        .await
        .map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_come_from_the_jwks_uri_and_rotate_without_a_restart() {
    let dev = placement_e2e::dev_keys();
    let published = std::fs::read_to_string(dev.join(devkeys::JWKS_FILE)).expect("the dev JWKS");
    let server = JwksServer::start(published.clone()).await;
    // The demo data is loaded with tokens signed by the dev key: only possible once the services
    // fetched it from the server.
    let f = Fixture::with(StackOptions {
        jwks_uri: Some(server.url.clone()),
        ..Default::default()
    })
    .await;
    assert!(
        server.fetches() >= services::ALL.len(),
        "every service fetches the keys at start ({} fetches)",
        server.fetches()
    );

    // The provider's new key, not published yet: its tokens are refused, and say why.
    let rotated = std::env::temp_dir().join(format!("placement-rotated-{}", std::process::id()));
    devkeys::ensure(&rotated).expect("a new key");
    let signer = devkeys::signer(&rotated).expect("its signer");
    let roles = devkeys::default_roles(NATIONAL_AUTHORITY);
    let token = signer.mint(
        NATIONAL_AUTHORITY,
        "rotated",
        roles,
        Duration::from_secs(600),
    );
    let refused = list_regions(&f, &token)
        .await
        .expect_err("an unpublished key");
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(
        refused.message().contains("unknown signing key"),
        "{refused:?}"
    );

    // The provider publishes both keys: the new key's tokens are taken, without a restart.
    let new_keys = std::fs::read_to_string(rotated.join(devkeys::JWKS_FILE)).expect("the new JWKS");
    server.publish(both(&published, &new_keys));
    eventually("the new key to be taken", WAIT, || async {
        list_regions(&f, &token).await.ok()
    })
    .await
    .expect("a token of the rotated key is accepted");

    // Made-up key ids do not turn into a stream of fetches: at most one per service every 5 seconds.
    let before = server.fetches();
    let stranger = std::env::temp_dir().join(format!("placement-stranger-{}", std::process::id()));
    devkeys::ensure(&stranger).expect("a key nobody publishes");
    let unknown = devkeys::signer(&stranger).expect("its signer").mint(
        NATIONAL_AUTHORITY,
        "stranger",
        roles,
        Duration::from_secs(600),
    );
    for _ in 0..20 {
        let refused = list_regions(&f, &unknown)
            .await
            .expect_err("an unknown key");
        assert_eq!(refused.code(), Code::Unauthenticated);
    }
    assert!(
        server.fetches() - before <= 2,
        "20 calls with an unknown key made {} fetches",
        server.fetches() - before
    );
    // The other key still works.
    list_regions(&f, &token)
        .await
        .expect("the rotated key still verifies");
}
