"""The one percentile of the project: services, benchmarks and demos all report with it."""

from __future__ import annotations

from collections.abc import Iterable


def percentile(samples: Iterable[float], pct: float) -> float | None:
    """The `pct` percentile (0 to 100) of `samples` by nearest rank; None if there are none.

    Nearest rank always returns one of the samples (no interpolation), so a p99 over a few
    hundred round trips is a time that was really measured: the median of 1..5 is 3, of 1..4
    is 2, and p100 is the largest sample.
    """
    ordered = sorted(samples)
    if not ordered:
        return None
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be between 0 and 100, not {pct}")
    # The smallest rank covering pct% of the samples: a ceiling by floor division, so that
    # 50% of 100 samples is rank 50 exactly (n * pct / 100 in floats can drift above it).
    rank = max(1, int(-(-len(ordered) * pct // 100)))
    return ordered[min(len(ordered), rank) - 1]
