//! Consumers apply the deliveries already waiting in one transaction (group commit): events queued
//! together, duplicates and one that cannot be applied among them, are each applied once, and the one
//! that cannot is dead-lettered without taking the others with it.

use std::time::Duration;

use placement_cli::scenario::eventually;
use placement_messaging::{Event, EventBuilder};
use placement_proto::v1::{EventEnvelope, ReferralEvent, ReferralStatus};
use uuid::Uuid;

use crate::support::{Fixture, WAIT};

/// An acceptance of a new referral of one place at `service`.
fn accepted(service: Uuid) -> EventEnvelope {
    let referral_id = Uuid::new_v4();
    EventBuilder::new("a-test").build(
        Event::ReferralAccepted(ReferralEvent {
            referral_id: referral_id.to_string(),
            service_id: service.to_string(),
            sender_agency_id: Uuid::new_v4().to_string(),
            places: 1,
            status: ReferralStatus::Accepted as i32,
            ..Default::default()
        }),
        referral_id,
        4,
        Uuid::new_v4(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_queued_together_are_each_applied_once() {
    let mut f = Fixture::start().await;
    let service = f.demo.service("ftpc-haskovo");
    let held_before = f.service(service).await.held_places;
    let events: Vec<EventEnvelope> = (0..5).map(|_| accepted(service)).collect();
    let unknown = accepted(Uuid::new_v4());
    // The directory is down while they are queued, so that its consumer finds them all waiting.
    f.stack.kill("directory");
    let queue = f.stack.queue("directory");
    let queued = [
        &events[0], &events[1], &unknown, &events[2], &events[0], &events[3], &events[4],
        &events[1],
    ];
    for event in queued {
        f.stack.put_event_in_queue(&queue, event).await;
    }
    f.stack.restart("directory");
    f.stack.wait_ready(Duration::from_secs(60)).await;
    let stack = &f.stack;
    // The event about an unknown service is retried for a few seconds before it is dead-lettered; the
    // others are applied by then.
    eventually(
        "the unknown service's event dead-lettered",
        WAIT,
        || async {
            (stack.dead_letters().await.iter())
                .any(|(q, n)| q.contains(".directory.") && *n == 1)
                .then_some(())
        },
    )
    .await
    .expect("dead-lettered");
    let ids: Vec<Uuid> = events
        .iter()
        .map(|e| e.event_id.parse().expect("id"))
        .collect();
    assert!(stack.has_processed("directory", &ids).await);
    // Each acceptance held its one place once, however often it was queued.
    assert_eq!(f.service(service).await.held_places, held_before + 5);
}
