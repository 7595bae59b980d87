//! The cross-region placement, told as it happens: DSA Pirdop (Sofia Province) places twins from the home
//! for medical and social care in Zlatitsa in a family-type placement centre in Vratsa.

use std::{future::Future, time::Duration};

use chrono::{Datelike, Utc};
use futures::StreamExt;
use placement_proto::v1::{
    AcceptReferralRequest, AcknowledgeReferralRequest, Case, CaseStatus, Child, ChildNeed,
    ConfirmPlacementRequest, GetCaseRequest, GetReferralRequest, GetServiceRequest, LegalBasis,
    LegalBasisKind, Notification, NotificationKind, OpenCaseRequest, Referral, ReferralStatus,
    SearchServicesRequest, ServiceType, Sex, SocialService, SubmitReferralRequest,
    UpdateCapacityRequest, WatchNotificationsRequest,
};
use tokio::{sync::mpsc::UnboundedReceiver, time::Instant};
use uuid::Uuid;

use crate::{
    clients::{Clients, as_agency},
    demo::DemoDirectory,
};

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{step}: {status}")]
    Call {
        step: &'static str,
        status: tonic::Status,
    },
    #[error("{0}")]
    Unexpected(String),
}

fn call(step: &'static str) -> impl FnOnce(tonic::Status) -> ScenarioError {
    move |status| ScenarioError::Call { step, status }
}

/// Polls `check` until it yields a value or `timeout` passes.
pub async fn eventually<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut check: F,
) -> Result<T, ScenarioError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(ScenarioError::Unexpected(format!(
                "timed out waiting for {what}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub struct Outcome {
    pub case_id: Uuid,
    pub referral_id: Uuid,
    pub service_id: Uuid,
}

struct Timeline {
    start: Instant,
}

impl Timeline {
    fn say(&self, line: impl AsRef<str>) {
        println!(
            "[{:>7.3}s] {}",
            self.start.elapsed().as_secs_f64(),
            line.as_ref()
        );
    }
}

/// Every run places two children in FTPC Vratsa 1 for good; on a stack that has run the scenario before,
/// the centre is full. Its provider then reports, as providers do, that children have left (returned to
/// their families), lowering the occupied places so that the twins fit; said on the timeline.
async fn make_room(
    clients: &Clients,
    demo: &DemoDirectory,
    t: &Timeline,
    needed: u32,
) -> Result<(), ScenarioError> {
    let (provider, service_id) = (demo.agency("provider-vratsa"), demo.service("ftpc-vratsa"));
    let mut directory = clients.directory.clone();
    let service = directory
        .get_service(as_agency(
            provider,
            GetServiceRequest {
                service_id: service_id.to_string(),
            },
        ))
        .await
        .map_err(call("GetService"))?
        .into_inner();
    if service.free_places >= needed {
        return Ok(());
    }
    let leaving = needed - service.free_places;
    let occupied = service.occupied_places.checked_sub(leaving).ok_or_else(|| {
        ScenarioError::Unexpected(format!(
            "FTPC Vratsa 1 has {} free places and {} held by open referrals: no room for {needed}",
            service.free_places, service.held_places
        ))
    })?;
    directory
        .update_capacity(as_agency(
            provider,
            UpdateCapacityRequest {
                service_id: service.id.clone(),
                capacity: service.capacity,
                occupied_places: Some(occupied),
                expected_version: Some(service.version),
                ..Default::default()
            },
        ))
        .await
        .map_err(call("UpdateCapacity"))?;
    t.say(format!(
        "FTPC Vratsa 1 was full from earlier runs: its provider reports {leaving} children left \
         (occupied {} → {occupied})",
        service.occupied_places
    ));
    Ok(())
}

/// The agencies of the scenario, as the timeline names them.
const CAST: [(&str, &str); 4] = [
    ("dsa-pirdop", "DSA Pirdop"),
    ("provider-vratsa", "Municipality of Vratsa (FTPC Vratsa 1)"),
    ("foster-vratsa", "Foster-care team Vratsa"),
    ("rdsa-vratsa", "RDSA Vratsa"),
];

/// Runs the scenario, printing the referral's timeline.
pub async fn run(clients: &Clients, demo: &DemoDirectory) -> Result<Outcome, ScenarioError> {
    let t = Timeline {
        start: Instant::now(),
    };
    let pirdop = demo.agency("dsa-pirdop");
    make_room(clients, demo, &t, 2).await?;
    let names: Vec<(Uuid, &str)> = CAST.iter().map(|(k, n)| (demo.agency(k), *n)).collect();
    let seen = watch_inboxes(clients, &names, &t).await?;
    let (case, case_id) = open_case(clients, pirdop, &t).await?;
    let service = find_service(clients, pirdop, demo.service("ftpc-vratsa"), &t).await?;
    let referral = submit(clients, pirdop, &case, &service, &t).await?;
    let referral_id = parse(&referral.id)?;
    let mut inbox = Inbox {
        referral_id,
        seen,
        items: Vec::new(),
    };
    let (provider, foster) = (demo.agency("provider-vratsa"), demo.agency("foster-vratsa"));
    inbox
        .wait_for(provider, NotificationKind::ReferralSubmitted)
        .await?;
    inbox
        .wait_for(foster, NotificationKind::ReferralSubmitted)
        .await?;
    acknowledge_and_accept(
        clients,
        &referral,
        [provider, foster, pirdop],
        &mut inbox,
        &t,
    )
    .await?;
    show_places_held(clients, pirdop, &service, &t).await?;
    confirm_placement(clients, pirdop, &referral, &case, &t).await?;
    inbox
        .wait_for(provider, NotificationKind::ReferralPlaced)
        .await?;
    inbox
        .wait_for(foster, NotificationKind::ReferralPlaced)
        .await?;
    show_places_occupied(clients, pirdop, &service, &t).await?;
    print_history(clients, pirdop, &referral, &names).await?;
    Ok(Outcome {
        case_id,
        referral_id,
        service_id: parse(&service.id)?,
    })
}

fn parse(id: &str) -> Result<Uuid, ScenarioError> {
    Uuid::parse_str(id).map_err(|e| ScenarioError::Unexpected(e.to_string()))
}

/// Every concerned agency's inbox, streamed as notifications arrive and printed on the timeline.
async fn watch_inboxes(
    clients: &Clients,
    names: &[(Uuid, &'static str)],
    t: &Timeline,
) -> Result<UnboundedReceiver<(Uuid, Notification)>, ScenarioError> {
    let (seen_tx, seen_rx) = tokio::sync::mpsc::unbounded_channel::<(Uuid, Notification)>();
    for (agency, name) in names.iter().copied() {
        let mut stream = clients
            .notifications
            .clone()
            .watch_notifications(as_agency(
                agency,
                WatchNotificationsRequest {
                    after_sequence: 0,
                    ..Default::default()
                },
            ))
            .await
            .map_err(call("WatchNotifications"))?
            .into_inner();
        let seen = seen_tx.clone();
        let start = t.start;
        tokio::spawn(async move {
            while let Some(Ok(n)) = stream.next().await {
                println!(
                    "[{:>7.3}s]     ✉ {name}: {}",
                    start.elapsed().as_secs_f64(),
                    n.title
                );
                let _ = seen.send((agency, n));
            }
        });
    }
    Ok(seen_rx)
}

/// What the agencies' inboxes received about the referral so far.
struct Inbox {
    referral_id: Uuid,
    seen: UnboundedReceiver<(Uuid, Notification)>,
    items: Vec<(Uuid, Notification)>,
}

impl Inbox {
    /// Waits (15 s at most) until `agency` was told of the referral with a notification of `kind`.
    async fn wait_for(
        &mut self,
        agency: Uuid,
        kind: NotificationKind,
    ) -> Result<(), ScenarioError> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let referral = self.referral_id.to_string();
        loop {
            if self
                .items
                .iter()
                .any(|(a, n)| *a == agency && n.kind == kind as i32 && n.referral_id == referral)
            {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, self.seen.recv()).await {
                Ok(Some(item)) => self.items.push(item),
                _ => {
                    return Err(ScenarioError::Unexpected(format!(
                        "no {} notification for {agency}",
                        kind.as_str_name()
                    )));
                }
            }
        }
    }
}

/// DSA Pirdop opens the case of twins (pseudonyms only).
async fn open_case(
    clients: &Clients,
    pirdop: Uuid,
    t: &Timeline,
) -> Result<(Case, Uuid), ScenarioError> {
    let year = Utc::now().year();
    let children = ["Twin A", "Twin B"]
        .into_iter()
        .enumerate()
        .map(|(i, p)| Child {
            pseudonym: p.into(),
            birth_year: year - 5,
            sex: if i == 0 { Sex::Female } else { Sex::Male } as i32,
            needs: vec![ChildNeed::Medical as i32],
            ..Default::default()
        })
        .collect();
    let case = clients
        .cases
        .clone()
        .open_case(as_agency(
            pirdop,
            OpenCaseRequest {
                children,
                current_setting: "Home for medical and social care for children, Zlatitsa".into(),
            },
        ))
        .await
        .map_err(call("OpenCase"))?
        .into_inner();
    let case_id = parse(&case.id)?;
    t.say(format!(
        "DSA Pirdop opened case {} ({}) for twins (2 children)",
        case.reference, case.id
    ));
    Ok((case, case_id))
}

/// The name of a service in the scenario's language, English (the demo's services have one).
fn english(s: &SocialService) -> &str {
    if s.name_en.is_empty() {
        &s.name
    } else {
        &s.name_en
    }
}

/// Searches other districts for a family-type placement centre with two free places: FTPC Vratsa 1.
async fn find_service(
    clients: &Clients,
    pirdop: Uuid,
    wanted: Uuid,
    t: &Timeline,
) -> Result<SocialService, ScenarioError> {
    let found = clients
        .directory
        .clone()
        .search_services(as_agency(
            pirdop,
            SearchServicesRequest {
                exclude_region_code: "SFO".into(),
                service_type: ServiceType::FamilyTypePlacementCentre as i32,
                min_free_places: 2,
                child_age: Some(5),
                ..Default::default()
            },
        ))
        .await
        .map_err(call("SearchServices"))?
        .into_inner()
        .services;
    t.say(format!(
        "Search: family-type placement centres outside Sofia Province with 2+ free places: {}",
        found
            .iter()
            .map(|s| format!("{} ({}, {} free)", english(s), s.region_code, s.free_places))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    found
        .into_iter()
        .find(|s| s.id == wanted.to_string())
        .ok_or_else(|| ScenarioError::Unexpected("FTPC Vratsa 1 not found".into()))
}

/// DSA Pirdop refers the case to the service, on its director's order of two days ago.
async fn submit(
    clients: &Clients,
    pirdop: Uuid,
    case: &Case,
    service: &SocialService,
    t: &Timeline,
) -> Result<Referral, ScenarioError> {
    let year = Utc::now().year();
    let case_id = parse(&case.id)?;
    let order_date = Utc::now().date_naive() - chrono::Days::new(2);
    let referral = clients
        .referrals
        .clone()
        .submit_referral(as_agency(
            pirdop,
            SubmitReferralRequest {
                case_id: case.id.clone(),
                service_id: service.id.clone(),
                legal_basis: Some(LegalBasis {
                    kind: LegalBasisKind::DsaDirectorOrder as i32,
                    number: format!("ZD-{}/{year}", case_id.as_fields().0 % 1000),
                    issued_on: Some(placement_platform::time::date(order_date)),
                    court: String::new(),
                }),
                reason: "The home for medical and social care is closing; no free places in the district."
                    .into(),
                idempotency_key: format!("demo-{case_id}"),
                urgency: placement_proto::v1::Urgency::Routine as i32,
            },
        ))
        .await
        .map_err(call("SubmitReferral"))?
        .into_inner();
    t.say(format!(
        "DSA Pirdop submitted referral {} ({}) to {} for {} places (DSA director's order); status SUBMITTED",
        referral.reference,
        referral.id,
        english(service),
        referral.places
    ));
    Ok(referral)
}

/// The provider and the foster-care team acknowledge (the sender is told of each); the provider accepts.
async fn acknowledge_and_accept(
    clients: &Clients,
    referral: &Referral,
    [provider, foster, sender]: [Uuid; 3],
    inbox: &mut Inbox,
    t: &Timeline,
) -> Result<(), ScenarioError> {
    let mut referrals = clients.referrals.clone();
    for (agency, who) in [
        (provider, "FTPC Vratsa 1's provider"),
        (foster, "Foster-care team Vratsa"),
    ] {
        let r = referrals
            .acknowledge_referral(as_agency(
                agency,
                AcknowledgeReferralRequest {
                    referral_id: referral.id.clone(),
                },
            ))
            .await
            .map_err(call("AcknowledgeReferral"))?
            .into_inner();
        t.say(format!(
            "{who} acknowledged; status {}",
            status_name(r.status)
        ));
        inbox
            .wait_for(sender, NotificationKind::ReferralAcknowledged)
            .await?;
    }
    let r = referrals
        .accept_referral(as_agency(
            provider,
            AcceptReferralRequest {
                referral_id: referral.id.clone(),
            },
        ))
        .await
        .map_err(call("AcceptReferral"))?
        .into_inner();
    t.say(format!(
        "The provider accepted; status {}",
        status_name(r.status)
    ));
    inbox
        .wait_for(sender, NotificationKind::ReferralAccepted)
        .await
}

/// Waits until the directory holds the two places the acceptance promised.
async fn show_places_held(
    clients: &Clients,
    pirdop: Uuid,
    service: &SocialService,
    t: &Timeline,
) -> Result<(), ScenarioError> {
    let free_before = service.free_places;
    let held = eventually("places to be held", Duration::from_secs(15), || {
        let mut directory = clients.directory.clone();
        let id = service.id.clone();
        async move {
            let s = directory
                .get_service(as_agency(pirdop, GetServiceRequest { service_id: id }))
                .await
                .ok()?
                .into_inner();
            (s.free_places + 2 == free_before).then_some(s)
        }
    })
    .await?;
    t.say(format!(
        "Directory: {} free places {} -> {} ({} held)",
        english(&held),
        free_before,
        held.free_places,
        held.held_places
    ));
    Ok(())
}

/// DSA Pirdop confirms the children arrived; the case shows where they were placed.
async fn confirm_placement(
    clients: &Clients,
    pirdop: Uuid,
    referral: &Referral,
    case: &Case,
    t: &Timeline,
) -> Result<(), ScenarioError> {
    let r = clients
        .referrals
        .clone()
        .confirm_placement(as_agency(
            pirdop,
            ConfirmPlacementRequest {
                referral_id: referral.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .map_err(call("ConfirmPlacement"))?
        .into_inner();
    t.say(format!(
        "DSA Pirdop confirmed the placement; status {}",
        status_name(r.status)
    ));
    let placed = eventually(
        "the case to show the placement",
        Duration::from_secs(15),
        || {
            let mut cases = clients.cases.clone();
            let id = case.id.clone();
            async move {
                let c = cases
                    .get_case(as_agency(pirdop, GetCaseRequest { case_id: id }))
                    .await
                    .ok()?
                    .into_inner();
                (c.status == CaseStatus::Placed as i32).then_some(c)
            }
        },
    )
    .await?;
    let placement = placed.placement.unwrap_or_default();
    t.say(format!(
        "Case {}: PLACED at service {} (district {}) by referral {}",
        placed.reference, placement.service_id, placement.region_code, placement.referral_reference
    ));
    Ok(())
}

async fn show_places_occupied(
    clients: &Clients,
    pirdop: Uuid,
    service: &SocialService,
    t: &Timeline,
) -> Result<(), ScenarioError> {
    let occupied = clients
        .directory
        .clone()
        .get_service(as_agency(
            pirdop,
            GetServiceRequest {
                service_id: service.id.clone(),
            },
        ))
        .await
        .map_err(call("GetService"))?
        .into_inner();
    t.say(format!(
        "Directory: {} now {} occupied, {} held, {} free",
        english(&occupied),
        occupied.occupied_places,
        occupied.held_places,
        occupied.free_places
    ));
    Ok(())
}

/// The referral's history, each step with who took it.
async fn print_history(
    clients: &Clients,
    pirdop: Uuid,
    referral: &Referral,
    names: &[(Uuid, &str)],
) -> Result<(), ScenarioError> {
    let history = clients
        .referrals
        .clone()
        .get_referral(as_agency(
            pirdop,
            GetReferralRequest {
                referral_id: referral.id.clone(),
            },
        ))
        .await
        .map_err(call("GetReferral"))?
        .into_inner()
        .history;
    println!(
        "\nReferral {} ({}) history:",
        referral.reference, referral.id
    );
    for h in history {
        let who = names
            .iter()
            .find(|(id, _)| id.to_string() == h.actor_agency_id)
            .map(|(_, n)| *n)
            .unwrap_or("system");
        println!(
            "  v{} {:<13} {:>12} -> {:<12} by {who}",
            h.version,
            placement_proto::v1::ReferralAction::try_from(h.action)
                .map(|a| a.as_str_name().trim_start_matches("REFERRAL_ACTION_"))
                .unwrap_or("?"),
            status_name(h.from_status),
            status_name(h.to_status),
        );
    }
    Ok(())
}

fn status_name(status: i32) -> &'static str {
    ReferralStatus::try_from(status)
        .map(|s| s.as_str_name().trim_start_matches("REFERRAL_STATUS_"))
        .unwrap_or("?")
}
