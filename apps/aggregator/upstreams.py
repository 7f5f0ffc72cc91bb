"""Calling weather and jokes: one time limit per whole call, and a strict idea of "down".

An upstream is down for a call when it cannot be found or reached, takes longer than the
limit, answers 5xx, or answers something that is not the JSON it promised. A 4xx with a
JSON body is an answer (e.g. "unknown city"), passed on but never cached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from apps.kit.http import NoInstance, Peers

#: Instances tried when connecting is refused, within the one time limit of the call.
CONNECT_ATTEMPTS = 2


class UpstreamDown(Exception):
    """An upstream failed this call; `reason` says how, in a few words."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Answer:
    """What an upstream answered: its status and its JSON body, unchanged."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == 200


class WeatherShape(BaseModel):
    """What a weather answer must look like (extra fields are allowed and kept)."""

    model_config = ConfigDict(strict=True)
    city: str
    temperature: float
    condition: str
    source: str


class JokeShape(BaseModel):
    model_config = ConfigDict(strict=True)
    id: str
    joke: str


class Upstreams:
    """The two upstream calls. `http` gives the client (it exists once the app started)."""

    def __init__(self, peers: Peers, http: Callable[[], httpx.AsyncClient], timeout: float) -> None:
        self._peers = peers
        self._http = http
        self.timeout = timeout

    async def weather(self, city: str) -> Answer:
        return await self._call("weather", "/weather", {"city": city}, WeatherShape)

    async def joke(self) -> Answer:
        return await self._call("jokes", "/joke", {}, JokeShape)

    async def _call(self, service: str, path: str, params: dict[str, str],
                    shape: type[BaseModel]) -> Answer:
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._get(service, path, params)
        except TimeoutError:
            raise UpstreamDown(service, f"no answer within {self.timeout:g} s") from None
        except NoInstance:
            raise UpstreamDown(service, "no live instance in the directory") from None
        except httpx.HTTPError as exc:
            raise UpstreamDown(service, f"unreachable ({type(exc).__name__})") from None
        return _judge(service, response, shape)

    async def _get(self, service: str, path: str, params: dict[str, str]) -> httpx.Response:
        # A refused connection sent nothing, so it is safe to try the next instance: a killed
        # one stays in the directory until its TTL runs out, beside the one that replaced it.
        refused: list[str] = []
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            base = await self._peers.url(service, avoid=refused)
            try:
                return await self._http().get(f"{base}{path}", params=params)
            except httpx.ConnectError:
                if attempt == CONNECT_ATTEMPTS:
                    raise
                refused.append(base)
        raise AssertionError("unreachable")


def _judge(service: str, response: httpx.Response, shape: type[BaseModel]) -> Answer:
    status = response.status_code
    if status >= 500 or status < 200 or 300 <= status < 400:
        raise UpstreamDown(service, f"answered {status}")
    try:
        body = response.json()
    except ValueError:
        raise UpstreamDown(service, f"answered {status} with a body that is not JSON") from None
    if not isinstance(body, dict):
        raise UpstreamDown(service, "answered JSON of an unexpected shape")
    if status >= 400:
        return Answer(status, body)
    try:
        shape.model_validate(body)
    except ValidationError:
        raise UpstreamDown(service, "answered JSON of an unexpected shape") from None
    return Answer(status, body)
