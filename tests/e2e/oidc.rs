//! The services take the access tokens of a real OpenID provider (oidc-provider, run by the test), with
//! its keys from its `jwks_uri` as its discovery document names it, and its issuer: what staff signed in
//! through the web app will carry.

use placement_cli::{clients::as_agency, demo::NATIONAL_AUTHORITY};
use placement_e2e::{Stack, StackOptions, oidc::OpenIdProvider};
use placement_platform::services;
use placement_proto::v1::{
    AgencyKind, CreateAgencyRequest, GetStatusRequest, ListRegionsRequest,
    directory_service_client::DirectoryServiceClient,
    operator_service_client::OperatorServiceClient,
};
use tonic::Code;

use crate::support::bearer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_take_the_openid_providers_access_tokens() {
    let provider = OpenIdProvider::start(serde_json::json!({
        "clients": [
            {
                "client_id": "national-directory",
                "client_secret": "national-secret",
                "agency_id": NATIONAL_AUTHORITY.to_string(),
                "roles": ["directory_admin", "operator"]
            },
            { "client_id": "nobody", "client_secret": "nobody-secret" }
        ]
    }))
    .await;
    let stack = Stack::start(StackOptions {
        jwks_uri: Some(provider.discovery.jwks_uri.clone()),
        env: vec![(
            "PLACEMENT_AUTH_ISSUER".into(),
            provider.discovery.issuer.clone(),
        )],
        ..Default::default()
    })
    .await;
    let token = provider
        .client_credentials("national-directory", "national-secret")
        .await
        .expect("the provider issues an access token");
    let channel =
        |service| placement_cli::clients::channel(stack.endpoints.url(service)).expect("channel");

    // Every service verifies the provider's token (operator status), with the roles it grants.
    for service in services::ALL {
        let status = OperatorServiceClient::new(channel(*service))
            .get_status(bearer(&token, GetStatusRequest {}))
            .await;
        assert!(status.is_ok(), "{}: {status:?}", service.name);
    }
    let mut directory = DirectoryServiceClient::new(channel(services::DIRECTORY));
    the_directory_takes_the_token_with_its_roles(&mut directory, &token).await;
    // A token of a client the provider gives no agency: refused, naming the claim.
    let nobody = provider
        .client_credentials("nobody", "nobody-secret")
        .await
        .expect("a token without agency");
    let refused = directory
        .list_regions(bearer(&nobody, ListRegionsRequest {}))
        .await
        .expect_err("no agency_id");
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(refused.message().contains("agency_id"), "{refused:?}");

    // A wrong secret gets no token at all.
    assert!(
        provider
            .client_credentials("national-directory", "guess")
            .await
            .is_err()
    );

    // The development key is not trusted by a stack that trusts the provider.
    let refused = directory
        .list_regions(as_agency(NATIONAL_AUTHORITY, ListRegionsRequest {}))
        .await
        .expect_err("a development token");
    assert_eq!(refused.code(), Code::Unauthenticated);
}

type Directory = DirectoryServiceClient<tonic::transport::Channel>;

/// The directory answers a reader and registers an agency for a directory_admin of the national
/// authority, on the provider's token.
async fn the_directory_takes_the_token_with_its_roles(directory: &mut Directory, token: &str) {
    let regions = directory
        .list_regions(bearer(token, ListRegionsRequest {}))
        .await
        .expect("ListRegions with the provider's token")
        .into_inner()
        .regions;
    assert_eq!(regions.len(), 28);
    let created = directory
        .create_agency(bearer(
            token,
            CreateAgencyRequest {
                kind: AgencyKind::Dsa as i32,
                name: "DSA Etropole".into(),
                region_code: "SFO".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("a directory_admin of the national authority registers an agency")
        .into_inner();
    assert_eq!(created.kind, AgencyKind::Dsa as i32);
}
