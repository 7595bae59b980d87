//! The names of the agencies and services notices name, learnt from the directory's events
//! ("agency.registered", "service.registered"): a notice is worded with them when it is shown or sent
//! (see `placement_wording`). Only words for people hold names; events and logs carry the ids.

pub mod model;
pub(crate) mod store;

pub use model::NameBook;

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// Keeps a name the directory announced (an event without one, from before names were carried, changes
/// nothing).
pub async fn learn(
    conn: &mut PgConnection,
    id: Uuid,
    name: &str,
    name_en: &str,
) -> Result<(), sqlx::Error> {
    if name.trim().is_empty() {
        return Ok(());
    }
    store::keep_name(conn, id, name.trim(), name_en.trim()).await
}

/// The names of the agencies and services `ids` (those notices' facts name: see
/// `placement_wording::named_ids`); an id that is not a UUID names none.
pub async fn book_of<'a, 'c>(
    db: impl PgExecutor<'c>,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<NameBook, sqlx::Error> {
    let mut ids: Vec<Uuid> = (ids.into_iter())
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(NameBook::default());
    }
    Ok(NameBook::of_rows(store::names_of(db, &ids).await?))
}
