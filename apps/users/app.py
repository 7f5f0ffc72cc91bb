"""The users service: accounts (register, log in, change password), SASL checks, sessions.

Public through Caddy, under `/api/users/` (the web page): register, login, logout, me,
password. Internal, under `/internal/` and never routed by Caddy (the ircd): register (IRCv3
REGISTER, the same rules as the public route), verify (SASL PLAIN), account lookup, session
check. An account name is a nick, and the nick is reserved for the account: names compare
folded with the chat's casemapping. Whether a nick is an account's the gateway reads in Redis
itself, as it claims the nick: its ACL user may ask whether an account exists (EXISTS), and
nothing else of it (redis/README.md).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from quart import Blueprint, Response, jsonify, request
from quart_schema import validate_request
from redis.asyncio import Redis

from apps.chat.casemap import NICKLEN, casefold, is_valid_nick
from apps.chat.keys import ChatKeys
from apps.kit.app import ServiceApp, error, request_client, request_peer, service_app
from apps.kit.app import create_app as create_service_app
from apps.kit.clientaddr import IPAddress, is_trusted, limit_key, parse_address
from apps.kit.openapi import documented
from apps.kit.params import InvalidParameter
from apps.kit.ratelimit import Limit, RateLimiter
from apps.users.accounts import Account, AccountStore, Session
from apps.users.passwords import Hasher, WeakPassword, checked_password
from apps.users.settings import UsersSettings

public = Blueprint("users_public", __name__, url_prefix="/api/users")
internal = Blueprint("users_internal", __name__, url_prefix="/internal")


class TooManyFailures(Exception):
    """Too many wrong passwords lately, for one account or from one client address."""

    def __init__(self, retry_after: float, whose: str) -> None:
        super().__init__(f"retry in {retry_after:.1f} s")
        self.retry_after = retry_after
        self.whose = whose


@dataclass(frozen=True, slots=True)
class FailureBudget:
    """One limit on failed password checks: its limiter key, its limit, whose failures it counts."""

    key: str
    limit: Limit
    whose: str  # "for this account", "from this address"
    counter: str  # the metric's suffix when it refuses


class Credentials(BaseModel):
    """An account name and its password."""

    model_config = ConfigDict(extra="forbid")

    account: str
    password: str


class PasswordChange(BaseModel):
    """The current password and the new one."""

    model_config = ConfigDict(extra="forbid")

    password: str
    new_password: str


class AccountOut(BaseModel):
    """An account as the routes show it: its name as registered, when (unix seconds), and its
    choice of always-on in the chat (null: none made, the chat's default applies)."""

    account: str
    created: int
    always_on: bool | None = None


class AccountChange(BaseModel):
    """What an account may change of itself (the password has its own route)."""

    model_config = ConfigDict(extra="forbid")

    always_on: StrictBool


class SessionOut(BaseModel):
    """A web session: the bearer token and the seconds it lives."""

    account: str
    token: str
    expires_in: float


class SaslCredentials(Credentials):
    """SASL PLAIN's check, asked by the ircd: the credentials, and the IRC client's address
    (believed from a trusted peer only; without it, the peer's own address counts)."""

    address: str | None = Field(default=None, max_length=64)


class Verified(BaseModel):
    account: str


class Rules(BaseModel):
    """What registration accepts."""

    account_max_length: int
    password_min_length: int
    password_max_length: int


class TokenCheck(BaseModel):
    """A session token, as the web page got it from login."""

    model_config = ConfigDict(extra="forbid")

    token: str


def create_app(settings: UsersSettings | None = None, redis: Redis | None = None) -> ServiceApp:
    """The users service app."""
    settings = settings or UsersSettings()
    app = create_service_app(settings, import_name=__name__, redis=redis)
    app.extensions["users.store"] = AccountStore(app.runtime.redis, ChatKeys(settings.key_prefix),
                                                 settings.session_ttl)
    app.extensions["users.hasher"] = Hasher(
        time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism, concurrency=settings.hash_concurrency)
    app.extensions["users.limiter"] = RateLimiter(app.runtime.redis)
    app.extensions["users.failure_limit"] = Limit(rate=settings.failed_login_per_minute, period=60,
                                                  burst=settings.failed_login_burst)
    app.extensions["users.address_failure_limit"] = Limit(
        rate=settings.failed_login_per_address_per_minute, period=60,
        burst=settings.failed_login_per_address_burst)
    app.register_error_handler(TooManyFailures, _too_many_failures)
    counts: Counter[str] = Counter()
    app.extensions["users.counts"] = counts
    app.metrics.expose_counts("canaduck_users", "Account operations by outcome", lambda: counts)
    app.register_blueprint(public)
    app.register_blueprint(internal)
    return app


def _settings() -> UsersSettings:
    settings: UsersSettings = service_app().settings  # type: ignore[assignment]
    return settings


def _store() -> AccountStore:
    store: AccountStore = service_app().extensions["users.store"]
    return store


def _hasher() -> Hasher:
    hasher: Hasher = service_app().extensions["users.hasher"]
    return hasher


def _count(what: str) -> None:
    service_app().extensions["users.counts"][what] += 1


def _account_name(value: str) -> str:
    if not value:
        raise InvalidParameter("account", "empty")
    if not is_valid_nick(value):
        raise InvalidParameter(
            "account", f"not a nick (a letter or one of []\\`_^{{|}}, then letters, digits, those "
                       f"or '-', at most {NICKLEN} characters)")
    return value


def _new_password(value: str, field: str) -> str:
    settings = _settings()
    return checked_password(value, field=field, min_length=settings.password_min_length,
                            max_length=settings.password_max_length)


def _given_password(value: str) -> str:
    # A password being checked only has to be one that could have been set: a bad one is
    # simply wrong (401), and the rules in force today do not leak through a 400.
    return checked_password(value, field="password", min_length=1,
                            max_length=_settings().password_max_length)


def _failure_budgets(name: str, address: IPAddress | None) -> list[FailureBudget]:
    """The limits a failed check for `name` from `address` counts against: the address's first
    (one client spraying many accounts), then the account's (many clients guessing one)."""
    app = service_app()
    keys = ChatKeys(app.settings.key_prefix)
    budgets = [FailureBudget(keys.account_failures(casefold(name)), app.extensions["users.failure_limit"],
                             "for this account", "throttled")]
    if address is not None:
        budgets.insert(0, FailureBudget(keys.address_failures(limit_key(address)),
                                        app.extensions["users.address_failure_limit"],
                                        "from this address", "address_throttled"))
    return budgets


async def _check_credentials(data: Credentials, what: str, address: IPAddress | None) -> Account | None:
    """The account if the credentials are right; counted as `<what>_ok` or `<what>_failed`.

    `address` is the client's (None: unknown, only the account's limit applies)."""
    name = _account_name(data.account)
    try:
        password = _given_password(data.password)
    except InvalidParameter:
        _count(f"{what}_failed")
        return None
    limiter: RateLimiter = service_app().extensions["users.limiter"]
    budgets = _failure_budgets(name, address)
    # Guessing is slowed per client address and per account, whichever replica or route the
    # guesses go through; a refused check costs no hash. Only failures count, so an owner
    # typing the right password is never limited.
    for budget in budgets:
        allowed = await limiter.take(budget.key, budget.limit, dry_run=True)
        if not allowed.allowed:
            _count(f"{what}_{budget.counter}")
            raise TooManyFailures(allowed.retry_after, budget.whose)
    found = await _store().password_hash(name)
    verdict = await _hasher().verify(found[1] if found else None, password)
    if not verdict.ok or found is None:
        _count(f"{what}_failed")
        for budget in budgets:
            await limiter.take(budget.key, budget.limit)
        return None
    if verdict.rehash:
        await _store().set_password_hash(name, await _hasher().hash(password))
    _count(f"{what}_ok")
    return found[0]


async def _too_many_failures(exc: TooManyFailures) -> Response:
    response = error(429, f"too many failed password checks {exc.whose}",
                     retry_after=round(exc.retry_after, 1))
    response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return response


def _invalid_credentials() -> Response:
    return error(401, "invalid credentials")


def _session_json(session: Session) -> Response:
    return jsonify({"account": session.account, "token": session.token,
                    "expires_in": session.expires_in})


def _account_json(account: Account) -> dict[str, object]:
    return {"account": account.name, "created": account.created, "always_on": account.always_on}


def _bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _session_account() -> Account | None:
    token = _bearer_token()
    return None if token is None else await _store().session_account(token)


def _unauthorized(message: str = "missing or invalid session token") -> Response:
    response = error(401, message)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


# Public routes (through Caddy).

@public.get("/rules")
@documented(ok=Rules)
async def rules() -> Response:
    """What registration accepts, for a form to check before sending."""
    settings = _settings()
    return jsonify({"account_max_length": NICKLEN, "password_min_length": settings.password_min_length,
                    "password_max_length": settings.password_max_length})


@public.post("/register")
@validate_request(Credentials)
@documented(ok=AccountOut, ok_status=201, errors=[400, 409])
async def register(data: Credentials) -> Response:
    """Create an account: 201 {account, created}; 409 if the name (any case) is taken."""
    return await _register(data)


async def _register(data: Credentials) -> Response:
    """Registration's rules, whichever route asks: the name a nick, the password policy, one
    argon2 hash. 201 {account, created}; 409; InvalidParameter (400) for a bad name or password."""
    name = _account_name(data.account)
    password = _new_password(data.password, "password")
    if await _store().exists(name):  # spares a hash; create() below is the real guard
        return error(409, "account exists", account=name)
    account = await _store().create(name, await _hasher().hash(password))
    if account is None:
        return error(409, "account exists", account=name)
    _count("registered")
    response = jsonify(_account_json(account))
    response.status_code = 201
    return response


@public.post("/login")
@validate_request(Credentials)
@documented(ok=SessionOut, errors=[400, 401, 429])
async def login(data: Credentials) -> Response:
    """Check the credentials and open a session: 200 {account, token, expires_in}; 401."""
    account = await _check_credentials(data, "login", request_client())
    if account is None:
        return _invalid_credentials()
    return _session_json(await _store().open_session(account))


@public.post("/logout")
@documented(errors=[401])  # 204, no body
async def logout() -> Response:
    """End the session of the bearer token: 204; 401 if it is not a live one."""
    token = _bearer_token()
    if token is None or not await _store().close_session(token):
        return _unauthorized()
    return Response(status=204)


@public.get("/me")
@documented(ok=AccountOut, errors=[401])
async def me() -> Response:
    """The account of the bearer token: 200 {account, created}; 401."""
    account = await _session_account()
    if account is None:
        return _unauthorized()
    return jsonify(_account_json(account))


@public.patch("/me")
@validate_request(AccountChange)
@documented(ok=AccountOut, errors=[400, 401])
async def change_me(data: AccountChange) -> Response:
    """Change the bearer token's account: `{"always_on": true|false}` (the chat keeps its user
    when its last device goes, from its next connection on); 200 the account; 401."""
    account = await _session_account()
    if account is None:
        return _unauthorized()
    await _store().set_always_on(account.name, data.always_on)
    return jsonify(_account_json(replace(account, always_on=data.always_on)))


@public.post("/password")
@validate_request(PasswordChange)
@documented(ok=SessionOut, errors=[400, 401, 403, 429])
async def change_password(data: PasswordChange) -> Response:
    """Change the password: every session ends, and a new one is returned (200)."""
    account = await _session_account()
    if account is None:
        return _unauthorized()
    new_password = _new_password(data.new_password, "new_password")
    if await _check_credentials(Credentials(account=account.name, password=data.password),
                                "password_check", request_client()) is None:
        return error(403, "wrong password")
    await _store().set_password_hash(account.name, await _hasher().hash(new_password))
    await _store().close_all_sessions(account.name)
    _count("password_changed")
    return _session_json(await _store().open_session(account))


# Internal routes (other services only: never routed by Caddy).

@internal.post("/register")
@validate_request(Credentials)
@documented(ok=AccountOut, ok_status=201, errors=[400, 409])
async def register_for_irc(data: Credentials) -> Response:
    """IRCv3 REGISTER, asked by the ircd: the public route's rules and answers, and a refused
    password's 400 says `"weak": true` when it is only too short (the ircd answers
    WEAK_PASSWORD then, UNACCEPTABLE_PASSWORD otherwise)."""
    try:
        return await _register(data)
    except InvalidParameter as exc:
        return error(400, str(exc), parameter=exc.name, weak=isinstance(exc, WeakPassword))


@internal.post("/verify")
@validate_request(SaslCredentials)
@documented(ok=Verified, errors=[400, 401, 429])
async def verify(data: SaslCredentials) -> Response:
    """SASL PLAIN's check: 200 {account} (as registered) or 401. No session is opened."""
    account = await _check_credentials(data, "verify", _sasl_client(data.address))
    if account is None:
        return _invalid_credentials()
    return jsonify({"account": account.name})


def _sasl_client(given: str | None) -> IPAddress | None:
    """The IRC client's address as the ircd gives it, if the ircd is a trusted peer and the
    address is one (it says "?" for a peer it could not name); else the peer's own."""
    trusted = service_app().settings.trusted_proxies
    address = parse_address(given)
    if address is not None and is_trusted(parse_address(request_peer()), trusted):
        return address
    return request_client()


@internal.get("/accounts/<name>")
@documented(ok=AccountOut, errors=[400, 404])
async def lookup(name: str) -> Response:
    """The account of `name` (any case): 200 {account, created}, 404. A nick is reserved
    exactly when this answers 200."""
    account = await _store().get(_account_name(name))
    if account is None:
        return error(404, "no such account", account=name)
    return jsonify(_account_json(account))


@internal.post("/sessions/check")
@validate_request(TokenCheck)
@documented(ok=Verified, errors=[400, 401])
async def check_session(data: TokenCheck) -> Response:
    """The account of a web session token: 200 {account}; 401."""
    account = await _store().session_account(data.token)
    if account is None:
        return error(401, "invalid session token")
    return jsonify({"account": account.name})
