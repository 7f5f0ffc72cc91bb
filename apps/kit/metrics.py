"""Prometheus metrics per app: requests and latency per route, plus counters read at scrape."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """One registry per app, so several apps can live in one test process."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "HTTP requests served", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds", "Time to serve a request", ["method", "route"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "canaduck_event_loop_lag_seconds",
            "How much later than asked the event loop ran a timer (apps/kit/looplag.py)",
            # Finer about 100 ms, the gateway's target: a p99 of 110 ms reads <= 150, not <= 250.
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self._service = service

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def expose_counts(self, name: str, doc: str, source: Callable[[], Mapping[str, int]]) -> None:
        """Publish a live mapping of counts (e.g. a client's `counts`) as one labelled counter."""
        self.registry.register(_CountsCollector(name, doc, source))

    def expose_gauge(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """Publish a live value, read at each scrape (e.g. how many wait for something now)."""
        Gauge(name, doc, registry=self.registry).set_function(read)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every counter and gauge, as `{family: [{label: value, ..., "value": n}, ...]}`.

        What /metrics shows, minus histograms and the `_created` timestamps: the counts an
        instance publishes on `canaduck:stats` for the dashboard.
        """
        out: dict[str, list[dict[str, Any]]] = {}
        for family in self.registry.collect():
            if family.type not in ("counter", "gauge"):
                continue
            samples = [{**sample.labels, "value": sample.value} for sample in family.samples
                       if not sample.name.endswith("_created")]
            if samples:
                out[family.name] = samples
        return out


class _CountsCollector(Collector):
    def __init__(self, name: str, doc: str, source: Callable[[], Mapping[str, int]]) -> None:
        self._name, self._doc, self._source = name, doc, source

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self._name, self._doc, labels=["what"])
        for what, value in sorted(self._source().items()):
            family.add_metric([what], value)
        yield family
