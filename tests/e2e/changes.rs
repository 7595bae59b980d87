//! `ListReferralChanges`: what a read model elsewhere (the reports) builds itself from. Every referral once,
//! in the order of its last change, paged, from a point in time, without free text; the whole country's
//! traffic for the national authority's systems only.

use placement_cli::clients::as_agency_with;
use placement_platform::caller::{NATIONAL_AUTHORITY, Role};
use placement_proto::v1::{
    ListReferralChangesRequest, ListReferralChangesResponse, PageRequest, Referral,
};
use tonic::Code;

use placement_e2e::InProcessStack;

use crate::support::Fixture;

/// The services in-process: the test needs gRPC alone.
type Kit = Fixture<InProcessStack>;

async fn changes(
    f: &Kit,
    agency: uuid::Uuid,
    roles: &[Role],
    req: ListReferralChangesRequest,
) -> Result<ListReferralChangesResponse, tonic::Status> {
    f.clients
        .referrals
        .clone()
        .list_referral_changes(as_agency_with(agency, roles, req))
        .await
        .map(tonic::Response::into_inner)
}

/// Every page after `changed_after`, `size` at a time.
async fn all_changes(
    f: &Kit,
    changed_after: Option<placement_proto::prost_types::Timestamp>,
    size: u32,
) -> Vec<Referral> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = changes(
            f,
            NATIONAL_AUTHORITY,
            &[Role::Integration],
            ListReferralChangesRequest {
                changed_after,
                page: Some(PageRequest {
                    page_size: size,
                    page_token: token,
                }),
            },
        )
        .await
        .expect("ListReferralChanges");
        assert!(page.referrals.len() <= size as usize);
        out.extend(page.referrals);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

fn order_key(r: &Referral) -> (i64, i32, String) {
    let t = r.updated_at.expect("updated_at");
    (t.seconds, t.nanos, r.id.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_model_can_be_built_from_every_referrals_changes() {
    let f = Kit::in_process().await;
    let pirdop = f.agency("dsa-pirdop");
    let service = f.demo.service("ftpc-vratsa");
    let mut sent = Vec::new();
    for _ in 0..5 {
        let case = f.open_twins_case(pirdop).await;
        sent.push(f.submit(pirdop, &case, service).await);
    }

    // Every referral once, oldest change first, each as it stands, without the free text.
    let listed = all_changes(&f, None, 2).await;
    let mut ids: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected: Vec<&str> = sent.iter().map(|r| r.id.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert!(
        listed
            .windows(2)
            .all(|w| order_key(&w[0]) < order_key(&w[1]))
    );
    for r in &listed {
        let now = f.referral(pirdop, &r.id).await;
        assert_eq!((r.version, r.status), (now.version, now.status));
        assert_eq!(r.history.len(), now.history.len());
        assert!(!now.reason.is_empty(), "the sender sees the reason");
        assert!(r.reason.is_empty() && r.resolution_comment.is_empty());
    }

    // A step moves the referral to the end; asking from the last change seen gives only what changed since.
    let seen = listed.last().and_then(|r| r.updated_at);
    let first = &sent[0].id;
    f.acknowledge(first, &["provider-vratsa"]).await;
    let since = all_changes(&f, seen, 50).await;
    let since: Vec<(&str, u64)> = since.iter().map(|r| (r.id.as_str(), r.version)).collect();
    let version = f.referral(pirdop, first).await.version;
    assert_eq!(since, [(first.as_str(), version)]);
    assert_eq!(
        all_changes(&f, None, 500).await.last().map(|r| &r.id),
        Some(first)
    );

    who_may_read_every_referral(&f, pirdop).await;
}

async fn who_may_read_every_referral(f: &Kit, dsa: uuid::Uuid) {
    let ask = |agency, roles: &'static [Role], page_size: u32, page_token: &str| {
        changes(
            f,
            agency,
            roles,
            ListReferralChangesRequest {
                changed_after: None,
                page: Some(PageRequest {
                    page_size,
                    page_token: page_token.into(),
                }),
            },
        )
    };
    let code =
        |r: Result<ListReferralChangesResponse, tonic::Status>| r.expect_err("refused").code();
    assert_eq!(
        code(ask(dsa, &[Role::Integration], 10, "").await),
        Code::PermissionDenied,
        "a DSA's system reads only its own referrals"
    );
    assert_eq!(
        code(
            ask(
                NATIONAL_AUTHORITY,
                &[Role::Caseworker, Role::Supervisor],
                10,
                ""
            )
            .await
        ),
        Code::PermissionDenied,
        "staff of the national authority read referrals one by one"
    );
    assert!(
        ask(NATIONAL_AUTHORITY, &[Role::Operator], 10, "")
            .await
            .is_ok()
    );
    // Times from before any referral, however far, ask for all of them; one that is no time is refused.
    let from = |seconds, nanos| {
        changes(
            f,
            NATIONAL_AUTHORITY,
            &[Role::Integration],
            ListReferralChangesRequest {
                changed_after: Some(placement_proto::prost_types::Timestamp { seconds, nanos }),
                page: None,
            },
        )
    };
    let everything = all_changes(f, None, 500).await.len();
    for seconds in [-1, -200_000_000_000] {
        let page = from(seconds, 0).await.expect("ListReferralChanges");
        assert_eq!(page.referrals.len(), everything);
    }
    let status = from(0, -5).await.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("changed_after"), "{status:?}");
    for (size, token, field) in [
        (501, "", "page.page_size"),
        (10, "not-a-token", "page.page_token"),
    ] {
        let status = ask(NATIONAL_AUTHORITY, &[Role::Integration], size, token)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().starts_with(field), "{status:?}");
    }
}
