"""The one percentile: nearest rank, on small samples where the methods disagree."""

import math

import pytest

from apps.kit.stats import percentile
from scripts.devkit.loadgen import Result
from scripts.devkit.stats import histogram_buckets, histogram_quantile, percentile_or


def test_the_median_of_one_to_five_is_three():
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile([5, 3, 1, 4, 2], 50) == 3  # order does not matter


@pytest.mark.parametrize(("samples", "pct", "expected"), [
    ([7], 50, 7), ([7], 99, 7),
    ([1, 2], 50, 1), ([1, 2, 3, 4], 50, 2), ([1, 2, 3, 4], 51, 3),
    (range(1, 6), 0, 1), (range(1, 6), 100, 5), (range(1, 6), 99, 5), (range(1, 6), 20, 1),
    (range(1, 101), 50, 50), (range(1, 101), 99, 99), (range(1, 1001), 99.9, 999),
])
def test_nearest_rank_returns_a_sample(samples, pct, expected):
    assert percentile(samples, pct) == expected


def test_no_samples_and_bad_percentiles():
    assert percentile([], 50) is None
    assert percentile_or([], 50) == 0.0
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1], 101)


def test_the_load_generator_reports_with_the_same_percentile():
    result = Result("r", latencies=[0.001, 0.002, 0.003, 0.004, 0.005])
    assert result.percentile_ms(50) == pytest.approx(3.0)
    assert result.percentile_ms(99) == pytest.approx(5.0)


METRICS = """# HELP lag_seconds lag
# TYPE lag_seconds histogram
lag_seconds_bucket{le="0.001"} %d
lag_seconds_bucket{le="0.01"} %d
lag_seconds_bucket{le="0.1"} %d
lag_seconds_bucket{le="+Inf"} %d
lag_seconds_count %d
"""


def test_a_histograms_quantile_between_two_readings_is_its_buckets_bound():
    before = histogram_buckets(METRICS % (50, 60, 60, 60, 60), "lag_seconds")
    assert before == {0.001: 50, 0.01: 60, 0.1: 60, float("inf"): 60}
    # Since then: 90 on time, 9 within 10 ms, 1 within 100 ms.
    after = histogram_buckets(METRICS % (140, 159, 160, 160, 160), "lag_seconds")
    assert histogram_quantile(before, after, 0.5) == 0.001
    assert histogram_quantile(before, after, 0.99) == 0.01
    assert histogram_quantile(before, after, 1.0) == 0.1
    assert math.isnan(histogram_quantile(after, after, 0.99))  # nothing observed in between
    assert histogram_quantile({}, {1.0: 0, float("inf"): 4}, 0.99) == float("inf")
