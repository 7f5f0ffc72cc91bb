"""Hypothesis against every HTTP route of every service, in process (scripts/fuzz, tests).

Each service's app (scripts/devkit/inprocess.py: fakeredis, its calls to other services
answered by a stand-in) is started, and every route its url_map lists, so a new route is
fuzzed with no edit here, gets requests built from what a client controls: the path's
variables, the query string (the route's own parameter names and random ones, with huge
numbers, NaN, invalid UTF-8), the body (random JSON and JSON of the route's own fields with
values of every type, deep nesting, bytes that are not JSON or not UTF-8), the Content-Type.
The property: never a 5xx, never a hang, and a 4xx is a JSON object with an "error".

Requests go to the app's ASGI callable directly, as Hypercorn would hand them over: raw path
and query bytes, headers with the Content-Length a client sends. An answer that streams
(Server-Sent Events) is judged on its status line and then left.

Hypothesis runs in a worker thread, one run per route (a failure on one route does not hide
another's); each example is a coroutine submitted to the loop the app runs on. The routes the
kit gives every service (/health, /metrics, /openapi.json...) are the same code in each: they
are fuzzed in one service only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

import fakeredis
import hypothesis.strategies as st
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import HypothesisException
from quart_schema.validation import QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, QUART_SCHEMA_REQUEST_ATTRIBUTE

from apps.kit.app import ServiceApp
from apps.kit.app import create_app as create_kit_app
from apps.kit.settings import KitSettings
from scripts.devkit.inprocess import SERVICES

#: Seconds an answer may take before the request counts as a hang.
ANSWER_TIMEOUT = 5.0
#: Query parameter names the services read, tried on every route besides the route's own.
KNOWN_PARAMETERS = ("city", "op1", "op2", "op", "n", "limit", "before", "after", "token", "channel")
#: JSON field names the services read, tried in every body besides the route's own.
KNOWN_FIELDS = ("account", "password", "new_password", "token", "address", "to", "kind", "body",
                "joke", "op1", "op2", "op", "from", "id")
IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Route:
    """One method of one url_map rule, with what a client can put in it."""

    method: str
    rule: str
    arguments: dict[str, str]  # variable -> converter name
    query_names: tuple[str, ...]
    body_fields: tuple[str, ...]
    websocket: bool

    def __str__(self) -> str:
        return f"{self.method} {self.rule}"


@dataclass(frozen=True)
class Attempt:
    """One request as sent."""

    method: str
    raw_path: bytes
    query: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    def __str__(self) -> str:
        target = self.raw_path + (b"?" + self.query if self.query else b"")
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"..."
        headers = {k.decode(): v.decode("latin-1") for k, v in self.headers}
        return f"{self.method} {target!r} headers={headers} body={body!r}"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Finding:
    """A property that did not hold: where, the smallest request Hypothesis found, and why."""

    service: str
    route: str
    attempt: str
    problem: str


@dataclass
class Report:
    """What a run tried and found."""

    examples: int = 0
    routes: int = 0
    findings: list[Finding] = field(default_factory=list)


# --- what a client controls -------------------------------------------------------------------

def routes_of(app: ServiceApp, *, skip: frozenset[str] = frozenset()) -> list[Route]:
    """Every method of every rule in the app's url_map, but those of the `skip` endpoints."""
    found = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in skip:
            continue
        view = app.view_functions.get(rule.endpoint)
        query_model = getattr(view, QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, None)
        body_model = (getattr(view, QUART_SCHEMA_REQUEST_ATTRIBUTE, None) or (None,))[0]
        for method in sorted((rule.methods or {"GET"}) - IGNORED_METHODS):
            found.append(Route(method, rule.rule, _arguments(rule.rule),
                               tuple(getattr(query_model, "model_fields", {})),
                               tuple(getattr(body_model, "model_fields", {})), rule.websocket))
    return found


def kit_endpoints() -> frozenset[str]:
    """The endpoints every service gets from the kit (and quart-schema): the same code in each,
    fuzzed in one service only."""
    app = create_kit_app(KitSettings(), import_name="apps.kit", redis=fakeredis.FakeAsyncRedis())
    return frozenset(rule.endpoint for rule in app.url_map.iter_rules())


_VARIABLE = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def _arguments(rule: str) -> dict[str, str]:
    """The rule's variables and their converters (`<int:n>`: n -> int; `<name>`: default)."""
    return {name: converter or "default" for converter, name in _VARIABLE.findall(rule)}


def huge_numbers() -> st.SearchStrategy[str]:
    """Numbers as a client may write them: huge, tiny, negative zero, not numbers at all."""
    return st.one_of(
        st.integers().map(str),
        st.integers(min_value=10**17, max_value=10**400).flatmap(
            lambda n: st.sampled_from([str(n), str(-n)])),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["NaN", "nan", "inf", "-Infinity", "1e999", "-0", "0x10", "1_000", " 1", "१२",
                         "9" * 5000, "1e-999", "0." + "0" * 300 + "1"]),
    )


def texts() -> st.SearchStrategy[str]:
    """Any text, the awkward characters more often than chance would give them."""
    awkward = st.sampled_from(["", " ", "\x00", "\r\n", "/", "..", "%", "#chan", "é", "\ud800", "\U0001f986",
                               "a" * 300, "ping", "Alice", "<script>", "'", '"', "\\"])
    return st.one_of(awkward, st.text(max_size=40), st.text(st.characters(codec="utf-8"), max_size=40))


def path_value(converter: str) -> st.SearchStrategy[str]:
    """A path variable, percent-encoded as a client would send it."""
    if converter in ("int", "float"):
        return huge_numbers().map(lambda s: quote(s, safe=""))
    raw = st.one_of(texts(), st.binary(max_size=20).map(lambda b: b.decode("latin-1")))
    safe = "/" if converter == "path" else ""
    return raw.map(lambda s: quote(s.encode("utf-8", "surrogatepass"), safe=safe) or "x")


def query_strings(route: Route) -> st.SearchStrategy[bytes]:
    """A raw query string: the route's parameters and known ones, with any values, any bytes."""
    names = st.sampled_from(route.query_names + KNOWN_PARAMETERS) | texts()
    values = st.one_of(texts(), huge_numbers())
    pair = st.tuples(names, values).map(lambda kv: f"{quote(kv[0].encode('utf-8', 'surrogatepass'))}="
                                                   f"{quote(kv[1].encode('utf-8', 'surrogatepass'))}")
    encoded = st.lists(pair, max_size=6).map("&".join).map(str.encode)
    raw = st.binary(max_size=40).map(lambda b: quote(b, safe="=&").encode())  # invalid UTF-8 too
    return st.one_of(encoded, raw, st.just(b""))


def json_values() -> st.SearchStrategy[Any]:
    """JSON values, big integers and deep structures included."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(),
                        st.integers(min_value=2**63, max_value=10**400),
                        st.floats(allow_nan=False, allow_infinity=False), texts())
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(texts(), inner, max_size=4), max_leaves=12)


def bodies(route: Route) -> st.SearchStrategy[tuple[bytes, str | None]]:
    """A body and its Content-Type (None: no such header)."""
    fields = st.sampled_from(route.body_fields + KNOWN_FIELDS)
    shaped = st.dictionaries(fields, json_values(), max_size=5)  # the route's fields, any values
    as_json = st.one_of(shaped, json_values()).map(_dumps)
    deep = st.integers(min_value=1, max_value=3000).map(lambda depth: b"[" * depth + b"]" * depth)
    raw = st.one_of(st.binary(max_size=200), st.sampled_from([b"", b"{", b'{"a": "\xff"}', b"\xff\xfe{}",
                                                              b'{"a": 1e999}', b'{"a": NaN}', b"null",
                                                              b'{"a": "\\ud800"}', b"[" * 100000]))
    content_types = st.sampled_from(["application/json", "application/json; charset=latin-1", "text/plain",
                                     "application/x-www-form-urlencoded", "multipart/form-data", None])
    return st.tuples(st.one_of(as_json, as_json, deep, raw), st.one_of(st.just("application/json"),
                                                                      content_types))


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def attempts(route: Route) -> st.SearchStrategy[Attempt]:
    """Requests to `route`: its method (now and then another), any values where a client has a say."""
    parts = {name: path_value(converter) for name, converter in route.arguments.items()}
    method = st.sampled_from([route.method] * 3 + ["POST" if route.method == "GET" else "GET"])

    @st.composite
    def build(draw: st.DrawFn) -> Attempt:
        values = {name: draw(strategy) for name, strategy in parts.items()}
        path = _VARIABLE.sub(lambda m: values[m.group(2)], route.rule)
        with_body = route.method != "GET" or draw(st.booleans())
        body, content_type = draw(bodies(route)) if with_body else (b"", None)
        headers = [(b"host", b"localhost")]
        if content_type:
            headers.append((b"content-type", content_type.encode()))
        if with_body:
            headers.append((b"content-length", str(len(body)).encode()))
        if draw(st.booleans()):
            token = draw(texts()).encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")
            headers.append((b"authorization", b"Bearer " + token))
        return Attempt(draw(method), path.encode(), draw(query_strings(route)), tuple(headers), body)

    return build()


# --- sending and judging ----------------------------------------------------------------------

async def send(app: ServiceApp, attempt: Attempt) -> Answer:
    """`attempt` handed to the app as Hypercorn would; the answer (a stream: its first part)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "http",
             "method": attempt.method, "path": unquote(attempt.raw_path.decode("ascii")),
             "raw_path": attempt.raw_path, "query_string": attempt.query, "root_path": "",
             "headers": list(attempt.headers), "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", 80), "extensions": {}}
    incoming = [{"type": "http.request", "body": attempt.body, "more_body": False}]
    done = asyncio.Event()
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop()
        await done.wait()
        return {"type": "http.disconnect"}

    async def send_(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            if _header(message, b"content-type").startswith("text/event-stream"):
                done.set()
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    task = asyncio.ensure_future(app(scope, receive, send_))  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(ANSWER_TIMEOUT):
            await done.wait()
            await task  # a stream ends once told the client left (receive above)
    finally:
        done.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start.get("headers", [])}
    return Answer(int(start.get("status", 0)), headers, b"".join(chunks))


def _header(message: dict[str, Any], name: bytes) -> str:
    return next((v.decode("latin-1") for k, v in message.get("headers", []) if k.lower() == name), "")


def problem_with(answer: Answer) -> str | None:
    """Why `answer` breaks the property, or None."""
    if answer.status >= 500 or answer.status < 100:
        return f"status {answer.status}: {answer.body[:300]!r}"
    if 400 <= answer.status < 500:
        try:
            body = json.loads(answer.body)
        except ValueError:
            return f"status {answer.status} with a body that is not JSON: {answer.body[:200]!r}"
        if not isinstance(body, dict) or not body.get("error"):
            return f"status {answer.status} without an error: {answer.body[:200]!r}"
    return None


# --- running ----------------------------------------------------------------------------------

def fuzz_route(app: ServiceApp, loop: asyncio.AbstractEventLoop, service: str, route: Route, *,
               examples: int, seed: int) -> tuple[int, Finding | None]:
    """Hypothesis on one route, from a worker thread; (requests sent, the smallest failure)."""
    sent = 0
    last_failure: list[Finding] = []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink],
              report_multiple_bugs=False, print_blob=False)
    @hypothesis_seed(seed)
    @given(attempts(route))
    def holds(attempt: Attempt) -> None:
        nonlocal sent
        sent += 1
        try:
            answer = asyncio.run_coroutine_threadsafe(send(app, attempt), loop).result(ANSWER_TIMEOUT * 2)
        except TimeoutError:
            problem: str | None = f"no answer within {ANSWER_TIMEOUT:g} s"
        else:
            problem = problem_with(answer)
        if problem:
            # Hypothesis ends by replaying the smallest failing example: the last one kept.
            last_failure[:] = [Finding(service, str(route), str(attempt), problem)]
            raise AssertionError(problem)

    try:
        holds()
    except (AssertionError, HypothesisException) as exc:
        if not last_failure:
            last_failure.append(Finding(service, str(route), "", f"{type(exc).__name__}: {exc}"))
    return sent, (last_failure[0] if last_failure else None)


async def fuzz_service(service: str, *, examples: int, seed: int, kit_routes: bool = True,
                       deadline: float = math.inf, say: Callable[[str], None] = lambda line: None) -> Report:
    """Every route of `service` (a name in SERVICES), `examples` requests each, until `deadline`
    (time.monotonic()); the kit's own routes too if `kit_routes`. `say` is told what is tried
    and found."""
    report = Report()
    redis = fakeredis.FakeAsyncRedis()
    app = SERVICES[service](redis)
    loop = asyncio.get_running_loop()
    skip = frozenset() if kit_routes else kit_endpoints()
    try:
        async with app.test_app():  # started: registered, its background tasks running
            for route in routes_of(app, skip=skip):
                if time.monotonic() >= deadline:
                    break
                sent, finding = await asyncio.to_thread(fuzz_route, app, loop, service, route,
                                                        examples=examples, seed=seed)
                report.examples += sent
                report.routes += 1
                say(f"  {service:<10} {route!s:<48} {sent:>5} examples  "
                    f"{'FAILED: ' + finding.problem if finding else 'ok'}")
                if finding:
                    report.findings.append(finding)
                    say(f"      smallest request: {finding.attempt}")
    finally:
        await redis.aclose()
    return report


def run(services: list[str], *, seconds: float, seed: int, examples: int,
        say: Callable[[str], None] = print) -> Report:
    """Rounds over every route of `services` until `seconds` are up, a new seed each round
    (`seed`, `seed` + 1...); a route's failure is kept once."""
    total = Report()
    deadline = time.monotonic() + seconds
    seen: set[tuple[str, str]] = set()
    for round_seed in itertools.count(seed):
        say(f"round seed={round_seed}, {examples} examples per route")
        for service in services:
            report = asyncio.run(fuzz_service(service, examples=examples, seed=round_seed,
                                              kit_routes=service == services[0], deadline=deadline,
                                              say=say))
            total.examples += report.examples
            total.routes += report.routes
            for finding in report.findings:
                if (finding.service, finding.route) not in seen:
                    seen.add((finding.service, finding.route))
                    total.findings.append(finding)
            if time.monotonic() >= deadline:
                return total
    return total
