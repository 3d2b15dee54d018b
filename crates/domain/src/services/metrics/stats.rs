//! The arithmetic of the metrics: percentile ranks, means and rates, kept pure so that each
//! rule is unit-tested on known numbers.

/// The 0-based position in a list of `n` values sorted ascending that holds the `percent`-th
/// percentile by the nearest-rank method: the smallest value with at least `percent` % of the
/// values at or below it. It is always one of the observed values; `None` when `n` is 0.
pub fn nearest_rank(percent: u8, n: u64) -> Option<u64> {
    if n == 0 {
        return None;
    }
    let percent = u128::from(percent.min(100));
    // ceil(percent × n / 100), at least 1, as a 1-based rank; the product cannot overflow u128.
    let rank = (percent * u128::from(n)).div_ceil(100).max(1);
    // rank ≤ n, which is a u64.
    u64::try_from(rank - 1).ok()
}

/// The mean of values whose sum is `sum`, in whole units, halves rounded up; 0 for no values.
pub fn mean_rounded(sum: i64, count: u64) -> i64 {
    if count == 0 {
        return 0;
    }
    let count = i128::from(count);
    let mean = (2 * i128::from(sum) + count).div_euclid(2 * count);
    // The mean lies between the smallest and the largest value, so it fits in an i64.
    i64::try_from(mean).unwrap_or(if mean < 0 { i64::MIN } else { i64::MAX })
}

/// The mean of durations summing to `sum_ms` milliseconds, in seconds to the millisecond; 0 for
/// no durations.
pub fn mean_seconds(sum_ms: i64, count: u64) -> f64 {
    if count == 0 {
        return 0.0;
    }
    round_to(sum_ms as f64 / count as f64 / 1000.0, 3)
}

/// `part` as a percentage of `whole` to two decimals; 0 when `whole` is 0 (there is nothing to
/// rate).
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    round_to(part as f64 * 100.0 / whole as f64, 2)
}

/// The success and failure rates of `succeeded` and `failed` outcomes, in percent to two
/// decimals. They add up to exactly 100 when there is an outcome, and are both 0 when there is
/// none.
pub fn success_and_failure(succeeded: u64, failed: u64) -> (f64, f64) {
    let outcomes = succeeded + failed;
    if outcomes == 0 {
        return (0.0, 0.0);
    }
    let success = percent(succeeded, outcomes);
    (success, round_to(100.0 - success, 2))
}

/// A float average of milliseconds as whole milliseconds.
pub fn whole_ms(average: f64) -> i64 {
    // `as` saturates at the bounds and maps NaN to 0, which is what a nonsense average deserves.
    average.round() as i64
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The percentile of `values` (sorted ascending) by [`nearest_rank`].
    fn percentile(values: &[i64], p: u8) -> Option<i64> {
        nearest_rank(p, values.len() as u64).map(|i| values[usize::try_from(i).unwrap()])
    }

    #[test]
    fn percentiles_of_one_to_a_hundred_are_the_values_themselves() {
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50), Some(50));
        assert_eq!(percentile(&values, 90), Some(90));
        assert_eq!(percentile(&values, 99), Some(99));
        assert_eq!(percentile(&values, 100), Some(100));
        assert_eq!(percentile(&values, 1), Some(1));
    }

    #[test]
    fn percentiles_of_ten_values_use_the_nearest_rank_above() {
        let values: Vec<i64> = (1..=10).map(|s| s * 1000).collect();
        // p50: rank ceil(5.0) = 5; p90: ceil(9.0) = 9; p99: ceil(9.9) = 10.
        assert_eq!(percentile(&values, 50), Some(5000));
        assert_eq!(percentile(&values, 90), Some(9000));
        assert_eq!(percentile(&values, 99), Some(10_000));
    }

    #[test]
    fn percentiles_of_few_values_are_observed_values() {
        assert_eq!(percentile(&[], 50), None);
        for p in [0, 1, 50, 99, 100] {
            assert_eq!(percentile(&[7], p), Some(7), "p{p}");
        }
        let three = [10, 20, 30];
        assert_eq!(percentile(&three, 50), Some(20), "ceil(1.5) = 2");
        assert_eq!(percentile(&three, 33), Some(10), "ceil(0.99) = 1");
        assert_eq!(percentile(&three, 34), Some(20), "ceil(1.02) = 2");
        assert_eq!(percentile(&three, 90), Some(30));
        assert_eq!(nearest_rank(200, 3), Some(2), "capped at the maximum");
    }

    #[test]
    fn ranks_of_huge_counts_do_not_overflow() {
        assert_eq!(nearest_rank(99, u64::MAX), Some(18_262_276_632_972_456_098));
        assert_eq!(nearest_rank(100, u64::MAX), Some(u64::MAX - 1));
    }

    #[test]
    fn means_round_halves_up_and_are_zero_for_nothing() {
        assert_eq!(mean_rounded(0, 0), 0);
        assert_eq!(mean_rounded(10, 4), 3, "2.5 rounds up");
        assert_eq!(mean_rounded(9, 4), 2, "2.25 rounds down");
        assert_eq!(mean_rounded(11, 4), 3, "2.75 rounds up");
        assert_eq!(mean_rounded(-10, 4), -2, "-2.5 rounds up");
        assert_eq!(mean_rounded(i64::MAX, 1), i64::MAX);
        assert_eq!(mean_rounded(i64::MAX, 2), i64::MAX / 2 + 1);
    }

    #[test]
    fn mean_seconds_keep_milliseconds() {
        assert_eq!(mean_seconds(0, 0), 0.0);
        assert_eq!(mean_seconds(91_000, 2), 45.5);
        assert_eq!(mean_seconds(1_000, 3), 0.333);
        assert_eq!(mean_seconds(2_000, 3), 0.667);
    }

    #[test]
    fn rates_add_up_to_a_hundred() {
        assert_eq!(success_and_failure(0, 0), (0.0, 0.0));
        assert_eq!(success_and_failure(1, 0), (100.0, 0.0));
        assert_eq!(success_and_failure(0, 5), (0.0, 100.0));
        assert_eq!(success_and_failure(189, 11), (94.5, 5.5));
        assert_eq!(success_and_failure(1, 2), (33.33, 66.67));
        assert_eq!(success_and_failure(2, 1), (66.67, 33.33));
        for (s, f) in [(1, 6), (5, 7), (123, 457), (1, 999_999)] {
            let (success, failure) = success_and_failure(s, f);
            assert!(
                (success + failure - 100.0).abs() < 1e-9,
                "{s}/{f}: {success} + {failure}"
            );
        }
    }

    #[test]
    fn percentages_have_two_decimals() {
        assert_eq!(percent(0, 0), 0.0);
        assert_eq!(percent(1, 3), 33.33);
        assert_eq!(percent(171, 200), 85.5);
        assert_eq!(percent(3, 3), 100.0);
    }

    #[test]
    fn averages_become_whole_milliseconds() {
        assert_eq!(whole_ms(45_000.4), 45_000);
        assert_eq!(whole_ms(45_000.5), 45_001);
        assert_eq!(whole_ms(f64::NAN), 0);
    }
}
