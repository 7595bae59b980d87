//! The steps' SQL: each referral as it stands now, its steps once per version with the milestones they
//! reach, and the districts' day counts.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use placement_proto::v1::{ReferralAction, ReferralStatus};
use sqlx::{Postgres, Transaction};

use super::model::{ReferralNow, Side, Step};

/// Keeps the referral as `r` describes it if that is newer than what is kept.
pub async fn note_referral(
    tx: &mut Transaction<'_, Postgres>,
    r: &ReferralNow,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO referrals (id, sender_agency_id, sender_region_code, receiving_agency_id,
             receiving_region_code, foster_team_agency_id, service_id, status, ack_deadline, version, places,
             youngest_child_age, oldest_child_age, step, step_deadline, waiting_reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, ack_deadline = EXCLUDED.ack_deadline,
             version = EXCLUDED.version, places = EXCLUDED.places, step = EXCLUDED.step,
             step_deadline = EXCLUDED.step_deadline, waiting_reason = EXCLUDED.waiting_reason,
             youngest_child_age = COALESCE(EXCLUDED.youngest_child_age, referrals.youngest_child_age),
             oldest_child_age = COALESCE(EXCLUDED.oldest_child_age, referrals.oldest_child_age)
         WHERE referrals.version < EXCLUDED.version",
    )
    .bind(r.id)
    .bind(r.sender_agency_id)
    .bind(&r.sender_region_code)
    .bind(r.receiving_agency_id)
    .bind(&r.receiving_region_code)
    .bind(r.foster_team_agency_id)
    .bind(r.service_id)
    .bind(r.status)
    .bind(r.ack_deadline)
    .bind(r.version)
    .bind(r.places)
    .bind(r.youngest_child_age)
    .bind(r.oldest_child_age)
    .bind(r.step)
    .bind(r.step_deadline)
    .bind(r.waiting_reason)
    .execute(&mut **tx)
    .await?;
    if r.search_id.is_some() {
        // A referral's search never changes, but one kept before searches were known has none: whichever
        // event or rebuild brings it next tells it, newer or not.
        sqlx::query("UPDATE referrals SET search_id = $2 WHERE id = $1 AND search_id IS NULL")
            .bind(r.id)
            .bind(r.search_id)
            .execute(&mut **tx)
            .await?;
    }
    if !r.reference.is_empty() {
        // Never changes either; a referral kept before references were told has none yet.
        sqlx::query("UPDATE referrals SET reference = $2 WHERE id = $1 AND reference = ''")
            .bind(r.id)
            .bind(&r.reference)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Keeps a step once: the same version brought again changes nothing. A new step also marks its
/// referral's milestone; it returns whether the step was new, so that the caller counts it (once) in
/// [`count_steps`].
pub async fn note_step(tx: &mut Transaction<'_, Postgres>, s: &Step) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO steps (referral_id, version, action, from_status, to_status, actor_agency_id, at,
             reason_code, sender_region_code, receiving_region_code)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (referral_id, version) DO NOTHING",
    )
    .bind(s.referral_id)
    .bind(s.version)
    .bind(s.action)
    .bind(s.from_status)
    .bind(s.to_status)
    .bind(s.actor_agency_id)
    .bind(s.at)
    .bind(s.reason_code)
    .bind(&s.sender_region_code)
    .bind(&s.receiving_region_code)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    let mut set: Vec<String> = (milestone_columns(s).iter())
        .map(|c| format!("{c} = LEAST({c}, $2)"))
        .collect();
    // A referral ends once (declined or withdrawn); why is kept with it for the figures by reason.
    let ends = matches!(
        s.action,
        ReferralAction::Declined | ReferralAction::Withdrawn
    );
    if ends {
        set.push("end_reason = $3".into());
    }
    if inserted && !set.is_empty() {
        let sql = format!("UPDATE referrals SET {} WHERE id = $1", set.join(", "));
        let mut update = sqlx::query(&sql).bind(s.referral_id).bind(s.at);
        if ends {
            update = update.bind(s.reason_code);
        }
        update.execute(&mut **tx).await?;
    }
    Ok(inserted)
}

/// The milestone columns a step may be the first to reach (the earliest such step wins).
fn milestone_columns(s: &Step) -> &'static [&'static str] {
    match s.action {
        ReferralAction::Submitted => &["submitted_at"],
        ReferralAction::Acknowledged if s.to_status == ReferralStatus::Acknowledged => {
            &["first_answer_at", "all_acks_at"]
        }
        ReferralAction::Acknowledged => &["first_answer_at"],
        ReferralAction::Accepted => &["accepted_at"],
        // A decline before any acknowledgement is the first answer too.
        ReferralAction::Declined => &["declined_at", "first_answer_at"],
        ReferralAction::Placed => &["placed_at"],
        _ => &[],
    }
}

/// Adds new steps to their districts' day counts. The rows are raised in one order (that of the table's
/// key), whoever raises them, so that the event handler and a rebuild writing side by side never wait
/// on each other in a circle.
pub async fn count_steps<'s>(
    tx: &mut Transaction<'_, Postgres>,
    steps: impl IntoIterator<Item = &'s Step>,
) -> sqlx::Result<()> {
    type Day = (
        &'static str,
        String,
        NaiveDate,
        &'static str,
        &'static str,
        i32,
    );
    let mut days: BTreeMap<Day, i64> = BTreeMap::new();
    for s in steps {
        for side in [Side::Sender, Side::Receiver] {
            let region = match side {
                Side::Sender => &s.sender_region_code,
                Side::Receiver => &s.receiving_region_code,
            };
            let key = (
                side.name(),
                region.clone(),
                s.at.date_naive(),
                s.action.as_str_name(),
                s.to_status.as_str_name(),
                s.reason_code,
            );
            *days.entry(key).or_default() += 1;
        }
    }
    if days.is_empty() {
        return Ok(());
    }
    let mut columns = (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for ((side, region, day, action, status, reason), n) in days {
        columns.0.push(side);
        columns.1.push(region);
        columns.2.push(day);
        columns.3.push(action);
        columns.4.push(status);
        columns.5.push(reason);
        columns.6.push(n);
    }
    sqlx::query(
        "INSERT INTO step_days (side, region_code, day, action, to_status, reason_code, steps)
         SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::int[],
             $7::bigint[])
         ON CONFLICT (side, region_code, day, action, to_status, reason_code)
         DO UPDATE SET steps = step_days.steps + EXCLUDED.steps",
    )
    .bind(columns.0)
    .bind(columns.1)
    .bind(columns.2)
    .bind(columns.3)
    .bind(columns.4)
    .bind(columns.5)
    .bind(columns.6)
    .execute(&mut **tx)
    .await
    .map(drop)
}

/// Whether the model holds no referral yet.
pub async fn is_empty(pool: &sqlx::PgPool) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM referrals)")
        .fetch_one(pool)
        .await
}
