"""Statistics for benchmarks, demos and tests.

The percentile itself lives in the services' kit (`apps/kit/stats.py`): the rally's
scoreboard (`GET /rally`, the dashboard) reports round trips with it, and a service may not
import from scripts/. Everything here that reports a percentile uses that one function.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from apps.kit.stats import percentile

__all__ = ["histogram_buckets", "histogram_quantile", "percentile", "percentile_or"]


def percentile_or(samples: Iterable[float], pct: float, empty: float = 0.0) -> float:
    """`percentile`, with `empty` when there are no samples (for tables: a number per cell)."""
    value = percentile(samples, pct)
    return empty if value is None else value


def histogram_buckets(metrics_text: str, name: str) -> dict[float, float]:
    """A Prometheus histogram's cumulative buckets from a /metrics page: upper bound -> count."""
    pattern = re.compile(rf'^{re.escape(name)}_bucket\{{.*?le="([^"]+)".*?\}} (\S+)$', re.MULTILINE)
    return {float(bound): float(count) for bound, count in pattern.findall(metrics_text)}


def histogram_quantile(before: Mapping[float, float], after: Mapping[float, float], q: float) -> float:
    """The upper bound of the bucket holding the `q` quantile (0-1) of what was observed between
    two readings of a histogram's cumulative buckets; nan if nothing was (inf past the last)."""
    bounds = sorted(after)
    if not bounds:
        return math.nan
    total = after[bounds[-1]] - before.get(bounds[-1], 0.0)
    if total <= 0:
        return math.nan
    for bound in bounds:
        if after[bound] - before.get(bound, 0.0) >= q * total:
            return bound
    return math.inf
