"""The messages service: the chat history over HTTP, read from the streams the ircd writes.

Public through Caddy: `GET /api/messages/<channel>` for a logged-in user (a users-service
session token) under the chat's one history rule (apps/chat/access.py `HistoryAccess`, the
same as CHATHISTORY's): the account must be in the channel through one of its connections.
`GET /api/messages/search/<channel>?q=` and `GET /api/messages/search/private/<party>?q=`
search a conversation under the same rule (apps/chat/search.py).
Internal, for tools and tests: `GET /internal/history/<channel>`,
`GET /internal/history/private/<party>/<party>` and `GET /internal/history/search/<channel>`
(by the index or by scanning the stream: the benchmark's baseline), any conversation, no
session.
The service only reads: its Redis user may not write a stream (`%R~` in the ACL).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
from pydantic import BaseModel
from quart import Blueprint, Response, jsonify, request
from redis.asyncio import Redis

from apps.chat.access import HistoryAccess
from apps.chat.casemap import casefold, is_channel_name, is_valid_nick
from apps.chat.conversations import ChatMessage, Conversation, InvalidRef, Ref
from apps.chat.history import History
from apps.chat.search import SearchIndex, SearchResult
from apps.kit.app import ServiceApp, error, runtime, service_app
from apps.kit.app import create_app as create_service_app
from apps.kit.dircache import DirectoryCache
from apps.kit.http import NoInstance, Peers
from apps.kit.openapi import documented, query_param
from apps.kit.params import InvalidParameter, text_param
from apps.messages.settings import MessagesSettings

public = Blueprint("messages_public", __name__, url_prefix="/api/messages")
internal = Blueprint("messages_internal", __name__, url_prefix="/internal/history")

#: A guest's party: `~` and the id of its connection (apps/chat/conversations.py `party`).
_GUEST_PARTY = re.compile(r"~[0-9a-f]{1,32}")
#: A `limit` as a client may write it: ASCII digits, no more than any limit needs.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


class HistoryQuery(BaseModel):
    """The query string of a history route (documentation: `_query` reads it)."""

    limit: str = query_param("how many messages, 1 to CHAT_HISTORY_LIMIT (default: a page)",
                             required=False, examples=["50"])
    before: str = query_param("only messages before this message id", required=False,
                              examples=["1795347671006-0"])
    after: str = query_param("only messages after this message id", required=False)


class HistoryPage(BaseModel):
    """Messages of one conversation, oldest first: `{id, time, command, from, ...}` each."""

    target: str
    messages: list[dict[str, Any]]


class SearchQuery(BaseModel):
    """The query string of a search route (documentation: `_search_query` reads it)."""

    q: str = query_param("the words to find, all of them, whole, in any case (at most "
                         "CHAT_SEARCH_QUERY_MAX characters and CHAT_SEARCH_TERMS_MAX words)",
                         examples=["duck pond"])
    limit: str = query_param("how many messages, 1 to CHAT_HISTORY_LIMIT (default SEARCH_PAGE)",
                             required=False, examples=["20"])
    before: str = query_param("only messages before this message id (a previous answer's "
                              "next_before)", required=False, examples=["1795347671006-0"])


class InternalSearchQuery(SearchQuery):
    """The internal search's query string: the public one and the way to search."""

    method: str = query_param("index (the default, as the public route) or scan (the stream "
                              "read newest first: the baseline the index is measured against)",
                              required=False, examples=["scan"])


class SearchPage(BaseModel):
    """Messages holding every word of the query, NEWEST first; `next_before`: pass it as
    `before` to go on (null: nothing older matches); `scanned`: candidates looked at."""

    target: str
    query: str
    terms: list[str]
    messages: list[dict[str, Any]]
    next_before: str | None
    scanned: int


class Limits(BaseModel):
    default_limit: int
    max_limit: int
    kept_per_conversation: int


class UsersUnavailable(RuntimeError):
    """The users service could not say whether a token is valid."""


def create_app(settings: MessagesSettings | None = None, redis: Redis | None = None,
               http_transport: httpx.AsyncBaseTransport | None = None) -> ServiceApp:
    """The messages service app."""
    settings = settings or MessagesSettings()
    app = create_service_app(settings, import_name=__name__, redis=redis, http_transport=http_transport)
    app.extensions["messages.history"] = History.from_settings(app.runtime.redis, settings)
    app.extensions["messages.access"] = HistoryAccess(app.runtime.redis, settings.chat_keys)
    app.extensions["messages.search"] = SearchIndex.from_settings(app.runtime.redis, settings)
    app.extensions["messages.peers"] = Peers(DirectoryCache(app.runtime.directory, 1.0),
                                             {"users": settings.users_url},
                                             lookup_timeout=settings.users_timeout)
    app.register_error_handler(UsersUnavailable, _users_unavailable)
    app.register_blueprint(public)
    app.register_blueprint(internal)
    return app


def _settings() -> MessagesSettings:
    settings: MessagesSettings = service_app().settings  # type: ignore[assignment]
    return settings


def _chat_history() -> History:
    history: History = service_app().extensions["messages.history"]
    return history


@public.get("/limits")
@documented(ok=Limits)
async def limits() -> Response:
    """Page sizes: the default, the most one request returns, and how much a channel keeps."""
    settings = _settings()
    return jsonify({"default_limit": settings.history_page, "max_limit": settings.chat_history_limit,
                    "kept_per_conversation": settings.chat_history_max})


@public.get("/<path:channel>")
@documented(query=HistoryQuery, ok=HistoryPage, errors=[400, 401, 403, 503])
async def channel_history(channel: str) -> Response:
    """A channel's history, for a logged-in user in that channel (through any of its IRC
    connections, the chat page's included): `?limit=&before=&after=` (message ids); oldest
    first. 401 without a live session; 403 when the account is not in the channel, which is
    also the answer for a channel that does not exist (so that a secret one is not revealed)."""
    name = _channel(channel)
    query = _query()
    account = await _session_account()
    if account is None:
        return _no_session()
    if not await _access().may_read_channel(name, await _access().connections_of(account)):
        return _not_in(name)
    return await _history(name, _chat_history().channel(name), query)


@public.get("/search/private/<party>")
@documented(query=SearchQuery, ok=SearchPage, errors=[400, 401, 503])
async def search_private(party: str) -> Response:
    """Search the session's private conversation with `party` (an account name, or
    `~<connection id>` for a guest): `?q=&limit=&before=`, newest first. Only a party reads a
    private conversation, and the session's account is always the one side here; a
    conversation that never was answers no messages."""
    other = _party(party, "party")
    query = _search_query()
    account = await _session_account()
    if account is None:
        return _no_session()
    me = casefold(account)
    if not _access().may_read_private((me, other), me):
        return _not_in(",".join(sorted((me, other))))
    conversation = _chat_history().private(me, other)
    return await _search(other, conversation, query)


@public.get("/search/<path:channel>")
@documented(query=SearchQuery, ok=SearchPage, errors=[400, 401, 403, 503])
async def search_channel(channel: str) -> Response:
    """Search a channel's history, under the history's rule (the account in the channel now,
    through any of its connections; 403 otherwise, also for a channel that does not exist):
    `?q=&limit=&before=`, newest first. Every word must be in a message, whole, in any case."""
    name = _channel(channel)
    query = _search_query()
    account = await _session_account()
    if account is None:
        return _no_session()
    if not await _access().may_read_channel(name, await _access().connections_of(account)):
        return _not_in(name)
    return await _search(name, _chat_history().channel(name), query)


@internal.get("/search/<path:channel>")
@documented(query=InternalSearchQuery, ok=SearchPage, errors=[400])
async def internal_search(channel: str) -> Response:
    """Search any channel, whatever its modes, by the index (`method=index`, the default) or
    by reading the stream (`method=scan`). Same answer, other cost."""
    name = _channel(channel)
    query = _search_query()
    method = request.args.get("method", "index")
    if method not in ("index", "scan") or len(request.args.getlist("method")) > 1:
        raise InvalidParameter("method", "expected index or scan, once")
    return await _search(name, _chat_history().channel(name), query, scan=method == "scan")


@internal.get("/private/<first>/<second>")
@documented(query=HistoryQuery, ok=HistoryPage, errors=[400])
async def private_history(first: str, second: str) -> Response:
    """A private conversation between two parties (`alice` for an account, `~<connection id>`
    for a guest), in either order. Same query parameters."""
    parties = [_party(first, "first"), _party(second, "second")]
    return await _history(",".join(parties), _chat_history().private(*parties), _query())


@internal.get("/<path:channel>")
@documented(query=HistoryQuery, ok=HistoryPage, errors=[400])
async def internal_channel_history(channel: str) -> Response:
    """Any channel's history, whatever its modes. Same query parameters."""
    name = _channel(channel)
    return await _history(name, _chat_history().channel(name), _query())


class _Query:
    def __init__(self, limit: int, before: Ref | None, after: Ref | None) -> None:
        self.limit, self.before, self.after = limit, before, after


def _query() -> _Query:
    args = request.args
    for name in ("limit", "before", "after"):
        if len(args.getlist(name)) > 1:
            raise InvalidParameter(name, "given more than once")
    return _Query(_limit(_settings().history_page), _ref("before"), _ref("after"))


class _SearchQuery:
    def __init__(self, text: str, terms: list[str], limit: int, before: Ref | None) -> None:
        self.text, self.terms, self.limit, self.before = text, terms, limit, before


def _search_query() -> _SearchQuery:
    args = request.args
    settings = _settings()
    text = text_param(args, "q", max_length=settings.chat_search_query_max)
    terms = _search_index().tokenizer.terms(text)
    if not terms:
        raise InvalidParameter("q", "no word to search (letters or digits)")
    if len(terms) > settings.chat_search_terms_max:
        raise InvalidParameter("q", f"more than {settings.chat_search_terms_max} different words")
    for name in ("limit", "before"):
        if len(args.getlist(name)) > 1:
            raise InvalidParameter(name, "given more than once")
    return _SearchQuery(text, terms, _limit(settings.search_page), _ref("before"))


def _limit(default: int) -> int:
    raw = request.args.get("limit")
    if raw is None:
        return default
    maximum = _settings().chat_history_limit
    # ASCII digits, and few of them: str.isdigit() also takes "²", which int() refuses,
    # and int() refuses more than 4300 digits; either would be a 500.
    if not _WHOLE_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= maximum:
        raise InvalidParameter("limit", f"expected a whole number from 1 to {maximum}")
    return int(raw)


def _ref(name: str) -> Ref | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        return Ref.msgid(raw)
    except InvalidRef:
        raise InvalidParameter(name, "expected a message id such as 1795347671006-0") from None


def _channel(name: str) -> str:
    if not is_channel_name(name):
        raise InvalidParameter("channel", "not a channel name (# or & then up to 63 characters, "
                                          "no space, comma, colon or control character)")
    return name


def _party(value: str, field: str) -> str:
    if _GUEST_PARTY.fullmatch(value):
        return value
    if not is_valid_nick(value):
        raise InvalidParameter(field, "expected an account name or ~<connection id>")
    return casefold(value)


async def _history(target: str, conversation: Conversation, query: _Query) -> Response:
    history = _chat_history()
    messages: list[ChatMessage]
    if query.before and query.after:
        messages = await history.between(conversation, query.after, query.before, query.limit)
    elif query.before:
        messages = await history.before(conversation, query.before, query.limit)
    elif query.after:
        messages = await history.after(conversation, query.after, query.limit)
    else:
        messages = await history.latest(conversation, query.limit)
    return jsonify({"target": target, "messages": [m.to_dict() for m in messages]})


async def _search(target: str, conversation: Conversation, query: _SearchQuery, *,
                  scan: bool = False) -> Response:
    index = _search_index()
    find = index.scan if scan else index.search
    result: SearchResult = await find(conversation, query.terms, query.limit, query.before)
    return jsonify({"target": target, "query": query.text, "terms": result.terms,
                    "messages": [m.to_dict() for m in result.messages],
                    "next_before": result.next_before, "scanned": result.scanned})


def _access() -> HistoryAccess:
    access: HistoryAccess = service_app().extensions["messages.access"]
    return access


def _search_index() -> SearchIndex:
    index: SearchIndex = service_app().extensions["messages.search"]
    return index


def _no_session() -> Response:
    response = error(401, "missing or invalid session token")
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _not_in(name: str) -> Response:
    return error(403, "not in that channel: join it to read its history", target=name)


async def _session_account() -> str | None:
    """The account of the request's bearer token, None if there is none or it is not live."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    peers: Peers = service_app().extensions["messages.peers"]
    http = runtime().http
    assert http is not None, "the app has not started"
    try:
        async with asyncio.timeout(_settings().users_timeout):
            base = await peers.url("users")
            response = await http.post(f"{base}/internal/sessions/check", json={"token": token})
    except (TimeoutError, NoInstance, httpx.HTTPError) as exc:
        raise UsersUnavailable(type(exc).__name__) from None
    if response.status_code in (400, 401):
        return None
    if response.status_code != 200:
        raise UsersUnavailable(f"users answered {response.status_code}")
    account = response.json().get("account")
    return account if isinstance(account, str) else None


async def _users_unavailable(exc: UsersUnavailable) -> Response:
    response = error(503, "users service unavailable", detail=str(exc))
    response.headers["Retry-After"] = "1"
    return response
