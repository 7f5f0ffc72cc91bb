"""The dashboard's picture of the stack at one moment, built from what Redis holds.

Pure functions of the directory listing, the rally hash and the instances' counters, so the
unit tests need no server. Names of the figures read (metric families and labels) are those
the services put on /metrics: `http_requests` (route), `canaduck_relay` (the broker's
outcomes), `canaduck_aggregator` (cache outcomes), `canaduck_irc` and
`canaduck_irc_connections` (a chat gateway's messages and connections).
"""

from __future__ import annotations

from typing import Any

from apps.kit.directory import Listing
from apps.rally.scoreboard import summarize
from apps.web.counters import Counters, Labels, Where

PROBE_ROUTES = frozenset({"/health", "/ready", "/metrics"})
RELAY_OUTCOMES = ("relayed", "undeliverable", "expired", "malformed")
CACHE_OUTCOMES = ("hit", "miss", "stale")
GATEWAY_SERVICE = "ircd"


def _served(labels: Labels) -> bool:
    return labels.get("route") not in PROBE_ROUTES


def _what(value: str) -> Where:
    return lambda labels: labels.get("what") == value


def _route(value: str) -> Where:
    return lambda labels: labels.get("route") == value


def build(listings: list[Listing], rally: dict[Any, Any], counters: Counters, now: float) -> dict[str, Any]:
    """The whole snapshot sent to the dashboards."""
    by_service: dict[str, list[str]] = {}
    for listing in listings:
        by_service.setdefault(listing.entry.service, []).append(listing.entry.name)
    return {
        "at": round(now, 3),
        "instances": [_instance(listing, counters, now) for listing in listings],
        "rally": summarize(rally, now),
        "broker": _broker(by_service.get("broker", []), counters, now),
        "mult": _mult(listings, counters, now),
        "cache": _cache(by_service.get("aggregator", []), counters, now),
        "chat": _chat(listings, counters, now),
    }


def _instance(listing: Listing, counters: Counters, now: float) -> dict[str, Any]:
    entry, name = listing.entry, listing.entry.name
    return {
        "service": entry.service, "instance": entry.instance, "url": entry.url,
        "ttl": None if listing.ttl is None else round(listing.ttl, 2),
        "started_at": entry.started_at, "version": entry.version,
        "requests_per_s": round(counters.rate(name, "http_requests", now, _served), 1),
        "reporting": counters.reporting(name, now),
    }


def _sum_totals(names: list[str], counters: Counters, family: str, keys: tuple[str, ...],
                now: float) -> dict[str, Any]:
    totals = {key: int(sum(counters.total(n, family, _what(key)) for n in names)) for key in keys}
    rates = {f"{key}_per_s": round(sum(counters.rate(n, family, now, _what(key)) for n in names), 1)
             for key in keys}
    return {**totals, **rates}


def _broker(names: list[str], counters: Counters, now: float) -> dict[str, Any]:
    return {"instances": len(names), **_sum_totals(names, counters, "canaduck_relay", RELAY_OUTCOMES, now)}


def _cache(names: list[str], counters: Counters, now: float) -> dict[str, Any]:
    figures = _sum_totals(names, counters, "canaduck_aggregator", CACHE_OUTCOMES, now)
    looked_up = figures["hit"] + figures["miss"] + figures["stale"]
    return {"instances": len(names), **figures,
            "hit_ratio": None if not looked_up else round(figures["hit"] / looked_up, 3)}


def _mult(listings: list[Listing], counters: Counters, now: float) -> dict[str, Any]:
    """Each mult replica's /mult requests: total, per second, and its share of the window."""
    rows: list[dict[str, Any]] = []
    for listing in listings:
        if listing.entry.service != "mult":
            continue
        name = listing.entry.name
        rows.append({"instance": listing.entry.instance,
                     "requests": int(counters.total(name, "http_requests", _route("/mult"))),
                     "per_s": round(counters.rate(name, "http_requests", now, _route("/mult")), 1)})
    window = sum(row["per_s"] for row in rows)
    for row in rows:
        row["share"] = None if not window else round(row["per_s"] / window, 3)
    return {"replicas": rows, "per_s": round(window, 1)}


def _chat(listings: list[Listing], counters: Counters, now: float) -> dict[str, Any]:
    """Per gateway: clients connected now (the `canaduck_irc_connections` gauge), messages
    posted by clients per second (`canaduck_irc{what="posted"}`) and lines delivered to
    clients per second (`canaduck_irc{what="messages"}`)."""
    gateways: list[dict[str, Any]] = []
    for listing in listings:
        if listing.entry.service != GATEWAY_SERVICE:
            continue
        name = listing.entry.name
        gateways.append({
            "instance": listing.entry.instance,
            "connections": int(counters.total(name, "canaduck_irc_connections")),
            "messages_per_s": round(counters.rate(name, "canaduck_irc", now, _what("posted")), 1),
            "deliveries_per_s": round(counters.rate(name, "canaduck_irc", now, _what("messages")), 1),
        })
    return {"gateways": gateways,
            "connections": sum(g["connections"] for g in gateways),
            "messages_per_s": round(sum(g["messages_per_s"] for g in gateways), 1),
            "deliveries_per_s": round(sum(g["deliveries_per_s"] for g in gateways), 1)}
