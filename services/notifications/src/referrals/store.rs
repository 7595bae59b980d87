//! The SQL of a referral event's notifications: all of them, with their recipients' endpoints, in one
//! statement.

use sqlx::PgConnection;

use super::model::{CreatedRow, EventNotifications};
use crate::inbox::model::COLUMNS;

/// Creates the notifications of one event, with their facts and no words (they are worded when shown or
/// sent), with the endpoints of each recipient that want the event, in
/// one statement (one round trip less on the way to the recipient); an agency already told of this event
/// gets nothing new. Rows go in agency order because each takes its agency's inbox head (see the
/// migration adding positions).
pub async fn create_notifications(
    conn: &mut PgConnection,
    n: &EventNotifications<'_>,
) -> Result<Vec<CreatedRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "WITH created AS (
             INSERT INTO notifications (id, recipient_agency_id, kind, referral_id, event_id, title, body,
                 reference, facts)
             SELECT id, agency, $3, $4, $5, '', '', $8, $6 FROM unnest($1::uuid[], $2::uuid[]) AS r(id, agency)
             ORDER BY agency
             ON CONFLICT (event_id, recipient_agency_id) DO NOTHING
             RETURNING {COLUMNS}, position)
         SELECT c.*, e.id AS endpoint_id, e.channel, e.address, e.language
         FROM created c
         LEFT JOIN endpoints e ON e.agency_id = c.recipient_agency_id AND e.enabled
              AND (cardinality(e.event_types) = 0 OR $7 = ANY (e.event_types))
         ORDER BY c.recipient_agency_id, e.id"
    ))
    .bind(n.ids)
    .bind(n.agencies)
    .bind(n.kind)
    .bind(n.referral_id)
    .bind(n.event_id)
    .bind(n.facts)
    .bind(n.event_type)
    .bind(n.reference)
    .fetch_all(conn)
    .await
}
