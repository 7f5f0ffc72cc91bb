"""A 1-vs-N curve over several rounds, as `scripts/bench-irc` and `scripts/bench-scale` run it
with `--rounds`: the order of the runs, and each round's scaling efficiency.

The efficiency is a ratio of two figures measured minutes apart on a machine whose speed
drifts; running the counts back and forth and taking each count's median keeps a drift from
favouring one of them.
"""

from __future__ import annotations

from collections.abc import Sequence


def curve_order(counts: list[int], rounds: int = 1) -> list[int]:
    """The replica counts of a curve for `rounds` rounds, every other round in reverse order
    (1, 2, 4, 4, 2, 1, 1, 2, 4...): a machine whose speed drifts during the runs then favours
    no count, and each count's runs are spread over the whole series."""
    return [n for r in range(rounds) for n in (counts if r % 2 == 0 else counts[::-1])]


def each_round(runs: Sequence[float], ones: Sequence[float], n: int) -> list[float]:
    """Each round's efficiency at `n` replicas: its k-th run over `n` times the k-th run of 1.
    A run that failed has no figure: the rounds after it pair as they can."""
    return [rate / (n * one) for rate, one in zip(runs, ones, strict=False) if one]
