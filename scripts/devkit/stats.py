"""Statistics for benchmarks, demos and tests.

The percentile itself lives in the services' kit (`apps/kit/stats.py`): the rally's
scoreboard (`GET /rally`, the dashboard) reports round trips with it, and a service may not
import from scripts/. Everything here that reports a percentile uses that one function.
"""

from __future__ import annotations

from collections.abc import Iterable

from apps.kit.stats import percentile

__all__ = ["percentile", "percentile_or"]


def percentile_or(samples: Iterable[float], pct: float, empty: float = 0.0) -> float:
    """`percentile`, with `empty` when there are no samples (for tables: a number per cell)."""
    value = percentile(samples, pct)
    return empty if value is None else value
