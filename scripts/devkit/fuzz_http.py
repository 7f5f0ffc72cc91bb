"""Hypothesis against every HTTP route of every service, in process (scripts/fuzz, tests).

Each service's app (scripts/devkit/inprocess.py: fakeredis, its calls to other services
answered by a stand-in) is started, and every route its url_map lists, so a new route is
fuzzed with no edit here, gets requests built from what a client controls: the path's
variables, the query string (the route's own parameter names and others), the body (the
route's own JSON fields, or anything: broken JSON, deep nesting, bytes that are not UTF-8),
the Content-Type, Authorization, the method. Each request is hostile in one place (huge or
not-quite numbers, NaN, odd text, invalid UTF-8) and plausible elsewhere, where a value the
services take is known by name (`PLAUSIBLE`), so that the hostile part gets past the checks of
the others; now and then a request is hostile throughout.
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
#: Values the services take, by the name of the path variable, query parameter or JSON field
#: that carries them: drawn half the time, so that hostile input in one place gets past the
#: checks of the others, into deeper code.
PLAUSIBLE: dict[str, tuple[Any, ...]] = {
    "account": ("Alice", "alice"), "password": ("correct horse",), "new_password": ("battery staple",),
    "token": ("good-token",), "address": ("203.0.113.5", "2001:db8::1", "?"), "to": ("pong", "ping"),
    "kind": ("note", "shot"), "body": ({"hit": 1}, "hello"), "joke": ("Coin-coin !",),
    "op1": ("1", "2.5"), "op2": ("3",), "city": ("Rodez",), "limit": ("5",), "before": ("1-0",),
    "after": ("0-1",), "channel": ("#chan", "#canaduck"), "name": ("alice",), "first": ("alice",),
    "second": ("bob",), "service": ("ping", "calc"), "joke_id": ("0123456789ab",),
    "filename": ("site.css", "app.js"), "q": ("duck", "duck pond"), "party": ("bob", "~0badc0de"),
    "method": ("index", "scan"),
}
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
        target = _shortened(self.raw_path + (b"?" + self.query if self.query else b""))
        headers = {k.decode(): _shortened(v).decode("latin-1") for k, v in self.headers}
        return f"{self.method} {target!r} headers={headers} body={_shortened(self.body)!r}"


def _shortened(data: bytes, keep: int = 200) -> bytes:
    """`data`, or its start and end with the length of what is left out, if it is long."""
    if len(data) <= keep:
        return data
    return data[:keep // 2] + b"...(%d bytes)..." % (len(data) - keep) + data[-keep // 2:]


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


#: What passes a naive check for a number and fails a strict one: other scripts' digits (some
#: of which `int()` takes, some not: str.isdigit() says yes to all), more digits than `int()`
#: converts, separators, signs and spaces it forgives.
NUMBER_LOOKALIKES = ("\u00b2", "\u2460", "\u00bd", "\u0661\u0662", "\U0001d7d9", "9" * 5000, " 1", "1 ",
                     "1_000", "0x10", "+1", "-0", "0." + "0" * 300 + "1")
#: Floats that are not finite or do not fit, and the edges of machine integers.
NUMBER_EXTREMES = ("NaN", "nan", "inf", "-Infinity", "1e999", "1e-999", str(2**64), str(2**63),
                   str(-2**63 - 1), "0", "-1")
#: Stream ids and times, well and badly formed (the chat's history takes them).
IDS = ("1-0", "0-0", "0-1", "99999999999999999999-0", "1-", "-1-1", "1-99999999999999999999", "1.5-0")


def huge_numbers() -> st.SearchStrategy[str]:
    """Numbers as a client may write them: huge, tiny, negative zero, not numbers at all."""
    return st.one_of(
        st.sampled_from(NUMBER_LOOKALIKES),
        st.sampled_from(NUMBER_EXTREMES),
        st.sampled_from(IDS),
        st.integers().map(str),
        st.integers(min_value=10**17, max_value=10**400).flatmap(
            lambda n: st.sampled_from([str(n), str(-n)])),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
    )


def texts() -> st.SearchStrategy[str]:
    """Any text, the awkward characters more often than chance would give them."""
    awkward = st.sampled_from(["", " ", "\x00", "\r\n", "/", "..", "%", "#chan", "é", "\ud800", "\U0001f986",
                               "a" * 300, "ping", "Alice", "<script>", "'", '"', "\\"])
    return st.one_of(awkward, st.text(max_size=40), st.text(st.characters(codec="utf-8"), max_size=40))


def hostile_text() -> st.SearchStrategy[str]:
    """What a client may put where text is expected: numbers that are not, any text, bytes."""
    return st.one_of(huge_numbers(), texts(), st.binary(max_size=20).map(lambda b: b.decode("latin-1")))


def plausible(name: str) -> st.SearchStrategy[Any] | None:
    """A value the services take under `name`, if one is known."""
    return st.sampled_from(PLAUSIBLE[name]) if name in PLAUSIBLE else None


def _encode(text: str, *, safe: str = "") -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe=safe)


def json_values() -> st.SearchStrategy[Any]:
    """JSON values, big integers and deep structures included."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(),
                        st.integers(min_value=2**63, max_value=10**400),
                        st.floats(allow_nan=False, allow_infinity=False), hostile_text())
    return st.recursive(scalars, _containers, max_leaves=12)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts(), inner, max_size=4))


def raw_bodies() -> st.SearchStrategy[bytes]:
    """Bodies that are not the JSON object a route expects: any bytes, broken or odd JSON."""
    deep = st.integers(min_value=1, max_value=3000).map(lambda depth: b"[" * depth + b"]" * depth)
    odd = st.sampled_from([b"", b"{", b'{"a": "\xff"}', b"\xff\xfe{}", b'{"a": 1e999}', b'{"a": NaN}',
                           b"null", b'{"a": "\\ud800"}', b"[" * 100_000, b'{"a": 1, "a": 2}'])
    return st.one_of(st.binary(max_size=200), deep, odd, json_values().map(_dumps))


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW")
#: What one request makes hostile (everything else in it is plausible where a plausible value
#: is known): a path variable, a query parameter, a body field (by name), or a whole part.
WHOLE_PARTS = ("query", "body", "content-type", "authorization", "method", "everything")


def attempts(route: Route) -> st.SearchStrategy[Attempt]:
    """Requests to `route`, each hostile in one place, drawn at random; or hostile throughout."""
    named = ([("path", name) for name in route.arguments] + [("query", name) for name in route.query_names]
             + [("field", name) for name in route.body_fields])
    targets = named * 2 + [(part, "") for part in WHOLE_PARTS]  # one named part, mostly

    @st.composite
    def build(draw: st.DrawFn) -> Attempt:
        kind, name = draw(st.sampled_from(targets))
        wild = kind == "everything"

        def value(where: str, key: str, hostile: st.SearchStrategy[Any]) -> Any:
            known = plausible(key)
            targeted = wild or (kind, name) == (where, key)
            return draw(hostile if targeted or known is None else known)

        values = {}
        for key, converter in route.arguments.items():
            hostile = huge_numbers() if converter in ("int", "float") else hostile_text()
            safe = "/" if converter == "path" else ""
            values[key] = _encode(str(value("path", key, hostile)), safe=safe) or "x"
        path = _VARIABLE.sub(lambda m: values[m.group(2)], route.rule)

        pairs = [(key, str(value("query", key, hostile_text()))) for key in route.query_names
                 if (kind, name) == ("query", key) or draw(st.booleans())]
        if kind == "query" or wild:
            pairs += draw(st.lists(st.tuples(st.sampled_from(KNOWN_PARAMETERS) | texts(), hostile_text()),
                                   max_size=3))
        query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in pairs)
        if (kind == "query" or wild) and draw(st.booleans()):
            query = quote(draw(st.binary(max_size=40)), safe="=&")  # any bytes, invalid UTF-8 too

        has_body = bool(route.body_fields) or route.method != "GET" or kind == "body" or wild
        body = b""
        if kind == "body" or (wild and draw(st.booleans())):
            body = draw(raw_bodies())
        elif has_body:
            # Every field of the route's, now and then one missing.
            fields = {key: value("field", key, json_values()) for key in route.body_fields
                      if (kind, name) == ("field", key) or draw(st.integers(0, 9))}
            body = _dumps(fields)

        headers = [(b"host", b"localhost")]
        content_type: str | None = "application/json"
        if kind == "content-type" or wild:
            content_type = draw(st.sampled_from(["application/json; charset=latin-1", "text/plain", "",
                                                 "application/x-www-form-urlencoded", "multipart/form-data",
                                                 None]))
        if has_body and content_type is not None:
            headers.append((b"content-type", content_type.encode()))
        if has_body:
            headers.append((b"content-length", str(len(body)).encode()))
        if kind == "authorization" or wild:
            token = draw(hostile_text()).encode("utf-8", "surrogatepass").translate(None, b"\r\n")
            headers.append((b"authorization", draw(st.sampled_from([b"Bearer ", b"", b"Basic "])) + token))
        method = route.method
        if kind == "method" or wild:
            method = draw(st.sampled_from(METHODS))
        return Attempt(method, path.encode(), query.encode(), tuple(headers), body)

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
