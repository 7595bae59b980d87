//! What a commit added to agencies' inboxes, as this instance's WatchNotifications streams are told it.

use std::sync::Arc;

use placement_proto::v1::Notification;
use tokio::sync::broadcast;
use uuid::Uuid;

/// Tells this instance's WatchNotifications streams what a commit added to their agencies' inboxes: only
/// those streams wake, and they send what they are handed without a query when it is next in line.
pub type Arrivals = broadcast::Sender<Arc<[Arrival]>>;

/// A notification this instance has just committed.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub agency: Uuid,
    /// The notification and its position in the agency's inbox; `None`: the stream has to look.
    pub notification: Option<(i64, Notification)>,
}
