//! How the figures are counted: steps by kind and reason, small counts suppressed, durations summed up by
//! nearest-rank percentiles over whole microseconds (so a figure is always one that some referral actually
//! took), outcomes by key, a period cut at midnights for the day counts, and who holds a stalled step.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use placement_proto::v1::{
    Count, DurationFigures, ReasonCount, ReferralAction, ReferralStatus, ReferralStepName,
    WithdrawReason,
};
use prost_types::Duration;
use uuid::Uuid;

/// The agencies of a referral, as the reports keep them.
pub struct Parties<'a> {
    pub sender: Uuid,
    pub receiving: Uuid,
    pub foster_team: Uuid,
    /// The agencies whose acknowledgement the reports learnt.
    pub acknowledged_by: &'a [Uuid],
}

/// Who holds `step`, whose move the referral waits for, as the referrals service's state machine says:
/// the parties that have not acknowledged the acknowledgement, the receiving service's agency the
/// decision and the arrival, the sender the confirmation.
pub fn holders(step: ReferralStepName, p: &Parties<'_>) -> Vec<Uuid> {
    match step {
        ReferralStepName::Acknowledgement | ReferralStepName::Unspecified => {
            let mut parties = vec![p.receiving, p.foster_team];
            parties.dedup();
            parties.retain(|a| !p.acknowledged_by.contains(a));
            parties
        }
        ReferralStepName::Decision | ReferralStepName::Arrival => vec![p.receiving],
        ReferralStepName::Confirmation => vec![p.sender],
    }
}

/// Steps of a period counted by (action, status after, reason code).
pub struct StepCounts(pub Vec<(ReferralAction, ReferralStatus, i32, i64)>);

/// The reason of a withdrawal that closed a request because the children were placed elsewhere.
pub const PLACED_ELSEWHERE: i32 = WithdrawReason::PlacedElsewhere as i32;

/// Whether a step was a request closed as placed elsewhere: counted on its own, never as a withdrawal
/// (nor a decline, which it never is).
fn placed_elsewhere(action: ReferralAction, reason: i32) -> bool {
    action == ReferralAction::Withdrawn && reason == PLACED_ELSEWHERE
}

impl StepCounts {
    /// Steps of `action`; acknowledgements only when they completed (the status became ACKNOWLEDGED),
    /// withdrawals only when not as placed elsewhere.
    pub fn of(&self, action: ReferralAction) -> u32 {
        let n: i64 = (self.0.iter())
            .filter(|(a, to, reason, _)| {
                *a == action
                    && (action != ReferralAction::Acknowledged
                        || *to == ReferralStatus::Acknowledged)
                    && !placed_elsewhere(*a, *reason)
            })
            .map(|s| s.3)
            .sum();
        count(n)
    }

    /// Requests closed as placed elsewhere.
    pub fn placed_elsewhere(&self) -> u32 {
        let n: i64 = (self.0.iter())
            .filter(|(a, _, reason, _)| placed_elsewhere(*a, *reason))
            .map(|s| s.3)
            .sum();
        count(n)
    }

    /// Steps of `action` by reason, in the reasons' order (withdrawals without those as placed elsewhere).
    pub fn reasons(&self, action: ReferralAction) -> Vec<ReasonCount> {
        let mut out: Vec<ReasonCount> = Vec::new();
        let counted = self
            .0
            .iter()
            .filter(|s| s.0 == action && !placed_elsewhere(s.0, s.2));
        for (_, _, reason, n) in counted {
            match out.iter_mut().find(|r| r.reason == *reason) {
                Some(r) => r.count += count(*n),
                None => out.push(ReasonCount {
                    reason: *reason,
                    count: count(*n),
                }),
            }
        }
        out.sort_by_key(|r| r.reason);
        out
    }
}

/// Counts from 1 to 4 are not published: too few to show without pointing at a child.
pub const SMALLEST_PUBLISHED: i64 = 5;

/// A count as shown: suppressed when `published` and between 1 and 4.
pub fn shown(n: i64, published: bool) -> Count {
    if published && (1..SMALLEST_PUBLISHED).contains(&n) {
        Count {
            value: 0,
            suppressed: true,
        }
    } else {
        Count {
            value: count(n),
            suppressed: false,
        }
    }
}

pub fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// accepted / (accepted + declined), or 0 when nothing was decided.
pub fn acceptance_rate(accepted: i64, declined: i64) -> f64 {
    let decided = accepted + declined;
    if decided == 0 {
        return 0.0;
    }
    // Counts of referrals: far below 2^52, exact as floats.
    #[allow(clippy::cast_precision_loss)]
    let rate = accepted as f64 / decided as f64;
    rate
}

/// The smallest of `sorted` that at least `p` of them are no greater than (nearest rank); `None` if empty.
pub fn nearest_rank(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    // The rank is at least 1 and at most the count: the cast cannot lose anything that matters.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// The figures of the durations (in microseconds) that are there.
pub fn durations(values: impl Iterator<Item = Option<i64>>) -> DurationFigures {
    let mut v: Vec<i64> = values.flatten().collect();
    v.sort_unstable();
    let at = |p: f64| nearest_rank(&v, p).map(duration);
    DurationFigures {
        count: u32::try_from(v.len()).unwrap_or(u32::MAX),
        median: at(0.5),
        p90: at(0.9),
        slowest: v.last().copied().map(duration),
    }
}

/// The earlier of two instants that may not have come (as SQL's LEAST, which passes over NULLs).
pub fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What became of the referrals submitted in a period, for one key (a pair of districts, a service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<K> {
    pub key: K,
    pub submitted: i64,
    pub accepted: i64,
    pub declined: i64,
}

/// Referrals given as (key, accepted, declined), counted by key: most submitted first, then by key.
pub fn outcomes<K: Ord>(referrals: impl Iterator<Item = (K, bool, bool)>) -> Vec<Outcome<K>> {
    let mut by_key = std::collections::BTreeMap::<K, (i64, i64, i64)>::new();
    for (key, accepted, declined) in referrals {
        let o = by_key.entry(key).or_default();
        o.0 += 1;
        o.1 += i64::from(accepted);
        o.2 += i64::from(declined);
    }
    let mut out: Vec<Outcome<K>> = (by_key.into_iter())
        .map(|(key, (submitted, accepted, declined))| Outcome {
            key,
            submitted,
            accepted,
            declined,
        })
        .collect();
    // Stable: equal counts keep the keys' order.
    out.sort_by_key(|o| std::cmp::Reverse(o.submitted));
    out
}

fn duration(micros: i64) -> Duration {
    Duration {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1000).expect("under a second"),
    }
}

/// A period cut at UTC midnights: the whole days inside it, read from the day counts, and the parts at
/// its two ends (empty when the period starts or ends at midnight), read from the steps. A period within
/// one day has no whole day and is all one end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub days: (NaiveDate, NaiveDate),
    pub head: (DateTime<Utc>, DateTime<Utc>),
    pub tail: (DateTime<Utc>, DateTime<Utc>),
}

impl Cut {
    pub fn of((start, end): (DateTime<Utc>, DateTime<Utc>)) -> Cut {
        let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
        let start_day = start.date_naive();
        let first = if midnight(start_day) == start {
            start_day
        } else {
            start_day.succ_opt().unwrap_or(start_day)
        };
        let last = end.date_naive();
        if first >= last {
            return Cut {
                days: (first, first),
                head: (start, end),
                tail: (end, end),
            };
        }
        Cut {
            days: (first, last),
            head: (start, midnight(first)),
            tail: (midnight(last), end),
        }
    }

    /// The same period with the end's day taken whole from the day counts, less that day's steps from the
    /// end on. A report ends now, so this reads the few steps after it (none) where the tail read every
    /// step since midnight: on a busy day, thousands.
    pub fn through_end_day(self) -> EndDayCut {
        let (tail_start, end) = self.tail;
        let Some(next) = (tail_start < end)
            .then(|| tail_start.date_naive().succ_opt())
            .flatten()
        else {
            return EndDayCut {
                days: self.days,
                head: self.head,
                after_end: (end, end),
            };
        };
        EndDayCut {
            days: (self.days.0, next),
            head: self.head,
            after_end: (end, next.and_time(NaiveTime::MIN).and_utc()),
        }
    }
}

/// A period as [`Cut::through_end_day`] counts it: whole days [`days.0`, `days.1`) from the day counts,
/// plus the steps in `head`, less the steps in `after_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndDayCut {
    pub days: (NaiveDate, NaiveDate),
    pub head: (DateTime<Utc>, DateTime<Utc>),
    pub after_end: (DateTime<Utc>, DateTime<Utc>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_is_held_by_whose_move_it_waits_for() {
        use ReferralStepName as S;
        let [sender, receiving, foster_team] = [0; 3].map(|_| Uuid::new_v4());
        let acked = [receiving];
        let p = Parties {
            sender,
            receiving,
            foster_team,
            acknowledged_by: &acked,
        };
        assert_eq!(holders(S::Acknowledgement, &p), [foster_team]);
        assert_eq!(holders(S::Decision, &p), [receiving]);
        assert_eq!(holders(S::Confirmation, &p), [sender]);
        assert_eq!(holders(S::Arrival, &p), [receiving]);
        // One agency both runs the service and is the district's team: it holds the acknowledgement once.
        let both = Parties {
            foster_team: receiving,
            acknowledged_by: &[],
            ..p
        };
        assert_eq!(holders(S::Acknowledgement, &both), [receiving]);
    }

    #[test]
    fn outcomes_are_counted_by_key_most_first() {
        let referrals = [
            ("B", true, false),
            ("A", false, true),
            ("B", false, false),
            ("C", true, false),
        ];
        let counted = outcomes(referrals.into_iter());
        let shown: Vec<_> = (counted.iter())
            .map(|o| (o.key, o.submitted, o.accepted, o.declined))
            .collect();
        assert_eq!(shown, [("B", 2, 1, 0), ("A", 1, 0, 1), ("C", 1, 1, 0)]);
    }

    #[test]
    fn nearest_rank_is_a_value_that_was_taken() {
        let v = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
        assert_eq!(nearest_rank(&v, 0.5), Some(50));
        assert_eq!(nearest_rank(&v, 0.9), Some(90));
        assert_eq!(nearest_rank(&v, 0.91), Some(100));
        assert_eq!(nearest_rank(&[7], 0.9), Some(7));
        assert_eq!(nearest_rank(&[], 0.5), None);
        assert_eq!(nearest_rank(&[1, 2, 3], 0.5), Some(2));
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 0.5), Some(2));
    }

    #[test]
    fn steps_are_counted_by_kind_and_reason() {
        use ReferralAction as A;
        use ReferralStatus as S;
        let steps = StepCounts(vec![
            (A::Acknowledged, S::Submitted, 0, 3),
            (A::Acknowledged, S::Acknowledged, 0, 2),
            (A::Declined, S::Declined, 2, 1),
            (A::Declined, S::Declined, 1, 4),
            (A::Withdrawn, S::Withdrawn, 1, 1),
            (A::Withdrawn, S::Withdrawn, 4, 2),
        ]);
        assert_eq!(
            steps.of(A::Acknowledged),
            2,
            "completed acknowledgements only"
        );
        assert_eq!(steps.of(A::Declined), 5);
        let reasons: Vec<(i32, u32)> = steps
            .reasons(A::Declined)
            .iter()
            .map(|r| (r.reason, r.count))
            .collect();
        assert_eq!(reasons, [(1, 4), (2, 1)]);
        // Placed elsewhere (reason 1) is neither a withdrawal nor a decline: counted on its own.
        assert_eq!(steps.of(A::Withdrawn), 2);
        assert_eq!(steps.placed_elsewhere(), 1);
        let withdrawn: Vec<(i32, u32)> = (steps.reasons(A::Withdrawn).iter())
            .map(|r| (r.reason, r.count))
            .collect();
        assert_eq!(withdrawn, [(4, 2)]);
        assert_eq!(acceptance_rate(3, 1), 0.75);
        assert_eq!(acceptance_rate(0, 0), 0.0);
    }

    #[test]
    fn small_counts_are_suppressed_only_when_published() {
        assert_eq!(
            shown(4, true),
            Count {
                value: 0,
                suppressed: true
            }
        );
        assert_eq!(
            shown(1, true),
            Count {
                value: 0,
                suppressed: true
            }
        );
        assert_eq!(
            shown(0, true),
            Count {
                value: 0,
                suppressed: false
            }
        );
        assert_eq!(
            shown(5, true),
            Count {
                value: 5,
                suppressed: false
            }
        );
        assert_eq!(
            shown(3, false),
            Count {
                value: 3,
                suppressed: false
            }
        );
    }

    #[test]
    fn durations_count_only_what_happened() {
        let f = durations([Some(3_500_000), None, Some(1_000_000), Some(2_250_000)].into_iter());
        assert_eq!(f.count, 3);
        assert_eq!(
            f.median,
            Some(Duration {
                seconds: 2,
                nanos: 250_000_000
            })
        );
        assert_eq!(
            f.p90,
            Some(Duration {
                seconds: 3,
                nanos: 500_000_000
            })
        );
        assert_eq!(f.slowest, f.p90);
        let none = durations(std::iter::empty());
        assert_eq!((none.count, none.median), (0, None));
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_period_is_cut_at_midnights() {
        let cut = Cut::of((at("2026-11-02T10:00:00Z"), at("2026-11-05T08:30:00Z")));
        assert_eq!(cut.days, (day("2026-11-03"), day("2026-11-05")));
        assert_eq!(
            cut.head,
            (at("2026-11-02T10:00:00Z"), at("2026-11-03T00:00:00Z"))
        );
        assert_eq!(
            cut.tail,
            (at("2026-11-05T00:00:00Z"), at("2026-11-05T08:30:00Z"))
        );
    }

    #[test]
    fn a_period_ending_in_a_day_takes_that_day_whole_less_what_came_after_its_end() {
        let cut =
            Cut::of((at("2026-11-02T10:00:00Z"), at("2026-11-05T08:30:00Z"))).through_end_day();
        assert_eq!(cut.days, (day("2026-11-03"), day("2026-11-06")));
        assert_eq!(
            cut.head,
            (at("2026-11-02T10:00:00Z"), at("2026-11-03T00:00:00Z"))
        );
        assert_eq!(
            cut.after_end,
            (at("2026-11-05T08:30:00Z"), at("2026-11-06T00:00:00Z"))
        );
        // Ending at midnight or within one day, nothing is taken whole that the period does not hold.
        for (start, end) in [
            ("2026-11-02T00:00:00Z", "2026-11-04T00:00:00Z"),
            ("2026-11-02T10:00:00Z", "2026-11-03T11:00:00Z"),
        ] {
            let plain = Cut::of((at(start), at(end)));
            let cut = plain.through_end_day();
            assert_eq!((cut.days, cut.head), (plain.days, plain.head), "{start}");
            assert_eq!(cut.after_end.0, cut.after_end.1, "{start}");
        }
    }

    #[test]
    fn a_period_from_midnight_to_midnight_is_whole_days() {
        let cut = Cut::of((at("2026-11-02T00:00:00Z"), at("2026-11-04T00:00:00Z")));
        assert_eq!(cut.days, (day("2026-11-02"), day("2026-11-04")));
        assert_eq!(cut.head.0, cut.head.1);
        assert_eq!(cut.tail.0, cut.tail.1);
    }

    #[test]
    fn a_period_within_a_day_or_across_one_midnight_has_no_whole_day() {
        for (start, end) in [
            ("2026-11-02T10:00:00Z", "2026-11-02T11:00:00Z"),
            ("2026-11-02T10:00:00Z", "2026-11-03T11:00:00Z"),
        ] {
            let cut = Cut::of((at(start), at(end)));
            assert_eq!(cut.days.0, cut.days.1, "{start}");
            assert_eq!(cut.head, (at(start), at(end)), "{start}");
            assert_eq!(cut.tail.0, cut.tail.1, "{start}");
        }
    }
}
