//! How durations are summed up: nearest-rank percentiles over whole microseconds, so a figure is always
//! one that some referral actually took.

use placement_proto::v1::DurationFigures;
use prost_types::Duration;

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

fn duration(micros: i64) -> Duration {
    Duration {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1000).expect("under a second"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
