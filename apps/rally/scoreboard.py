"""The rally scoreboard as readers see it: `canaduck:rally` turned into one summary.

The players write the hash (apps/player/scoreboard.py); the players' `GET /rally` and the
dashboard read it through `summarize`, so both show the same figures.
"""

from __future__ import annotations

import json
from typing import Any

from apps.kit.stats import percentile

#: A player whose state is older than this is shown as silent.
SILENT_AFTER = 5.0


def summarize(raw: dict[Any, Any], now: float) -> dict[str, Any]:
    """Turn the raw hash into the scoreboard; tolerant of missing or hand-edited fields."""
    fields = {_text(k): _text(v) for k, v in raw.items()}
    players: dict[str, dict[str, Any]] = {}
    states: dict[str, dict[str, Any]] = {}
    for name, value in fields.items():
        player, _, what = name.partition(":")
        if what in ("points", "misses"):
            players.setdefault(player, {})[what] = _int(value)
        elif what == "state":
            try:
                state = json.loads(value)
            except ValueError:
                continue
            if isinstance(state, dict):
                states[player] = state
                players.setdefault(player, {})

    rtts: list[int] = []
    shots_per_s = 0.0
    current: dict[str, int] | None = None
    longest = 0
    for player, row in sorted(players.items()):
        row.setdefault("points", 0)
        row.setdefault("misses", 0)
        state = states.get(player)
        if state is None:
            row["status"] = "unknown"
            continue
        age = now - float(state.get("updated_at", 0))
        silent = age > SILENT_AFTER
        row.update(
            status="silent" if silent else state.get("status", "unknown"),
            shots=state.get("shots", 0), returned=state.get("returned", 0),
            ignored=state.get("ignored", {}), think_time=state.get("think_time"),
            updated_s_ago=round(age, 2),
        )
        longest = max(longest, _int(state.get("longest")))
        rtts.extend(x for x in state.get("rtt_us", []) if isinstance(x, int))
        if not silent:
            shots_per_s += float(state.get("shots_per_s", 0.0))
            here = {"id": _int(state.get("rally")), "hits": _int(state.get("hit"))}
            if current is None or (here["id"], here["hits"]) > (current["id"], current["hits"]):
                current = here

    p50, p99 = percentile(rtts, 50), percentile(rtts, 99)
    return {
        "transport": fields.get("transport", ""),
        "rallies": _int(fields.get("rallies")),
        "current_rally": current or {"id": 0, "hits": 0},
        "longest_rally": longest,
        "players": players,
        "round_trip_ms": {
            "p50": None if p50 is None else round(p50 / 1000, 3),
            "p99": None if p99 is None else round(p99 / 1000, 3),
            "samples": len(rtts),
        },
        "shots_per_s": round(shots_per_s, 1),
    }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
