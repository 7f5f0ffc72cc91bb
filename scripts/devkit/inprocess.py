"""Every service's app built in this process on a Redis client given (fakeredis in tests), its
calls to other services answered by a stand-in: what the fuzzer and the tests that must cover
every service drive with Quart's test client.

`SERVICES` maps a service name to its builder; a new service is added here once and every
such test and the fuzzer take it.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from redis.asyncio import Redis

from apps.aggregator.app import create_app as create_aggregator
from apps.aggregator.settings import AggregatorSettings
from apps.broker.app import create_app as create_broker
from apps.broker.settings import BrokerSettings
from apps.calc.app import create_app as create_calc
from apps.calc.settings import CalcSettings
from apps.directory.app import create_app as create_directory
from apps.directory.settings import DirectorySettings
from apps.ircd.app import create_app as create_ircd
from apps.ircd.settings import IrcdSettings
from apps.jokes.app import create_app as create_jokes
from apps.jokes.settings import JokesSettings
from apps.kit.app import ServiceApp
from apps.messages.app import create_app as create_messages
from apps.messages.settings import MessagesSettings
from apps.mult.app import create_app as create_mult
from apps.mult.settings import MultSettings
from apps.player.app import create_app as create_player
from apps.player.settings import PlayerSettings
from apps.users.app import create_app as create_users
from apps.users.settings import UsersSettings
from apps.weather.app import create_app as create_weather
from apps.weather.settings import WeatherSettings
from apps.web.app import create_app as create_web
from apps.web.settings import WebSettings

#: Where the services that call others find them (answered by `other_services`).
WEATHER_URL, JOKES_URL, USERS_URL = "http://weather.test", "http://jokes.test", "http://users.test"


async def other_services(request: httpx.Request) -> httpx.Response:
    """Plausible answers of the weather, jokes and users services to the calls the others make."""
    if request.url.host == "weather.test":
        return httpx.Response(200, json={"city": request.url.params.get("city", ""), "temperature": 12.5,
                                         "condition": "nuageux", "source": "synthetic"})
    if request.url.host == "jokes.test":
        return httpx.Response(200, json={"id": "0" * 16, "joke": "Coin-coin !"})
    return httpx.Response(401, json={"error": "invalid session token", "status": 401})


def _transport() -> httpx.MockTransport:
    return httpx.MockTransport(other_services)


# Every app publishes no counters (stats_interval=0) and takes no DNS or fixed IRC port.
SERVICES: dict[str, Callable[[Redis], ServiceApp]] = {
    "aggregator": lambda redis: create_aggregator(
        AggregatorSettings(instance_id="aggregator-1", weather_url=WEATHER_URL, jokes_url=JOKES_URL,
                           stats_interval=0), redis=redis, http_transport=_transport()),
    "broker": lambda redis: create_broker(
        BrokerSettings(instance_id="broker-1", stats_interval=0), redis=redis),
    "calc": lambda redis: create_calc(CalcSettings(instance_id="calc-1", stats_interval=0), redis=redis),
    "directory": lambda redis: create_directory(
        DirectorySettings(instance_id="directory-1", dns_port=0, stats_interval=0), redis=redis),
    "ircd": lambda redis: create_ircd(
        IrcdSettings(instance_id="ircd-1", irc_host="127.0.0.1", irc_port=0, irc_tls_port=0,
                     users_url=USERS_URL, stats_interval=0), redis=redis),
    "jokes": lambda redis: create_jokes(JokesSettings(instance_id="jokes-1", stats_interval=0), redis=redis),
    "messages": lambda redis: create_messages(
        MessagesSettings(instance_id="messages-1", users_url=USERS_URL, stats_interval=0), redis=redis,
        http_transport=_transport()),
    "mult": lambda redis: create_mult(MultSettings(instance_id="mult-a", stats_interval=0), redis=redis),
    "ping": lambda redis: create_player(
        PlayerSettings(instance_id="ping-1", think_time=60, stats_interval=0), redis=redis),
    "users": lambda redis: create_users(
        # The cheapest argon2 the service accepts: hashing is not what these runs look at.
        UsersSettings(instance_id="users-1", argon2_time_cost=1, argon2_memory_kib=64,
                      argon2_parallelism=1, stats_interval=0), redis=redis),
    "weather": lambda redis: create_weather(
        WeatherSettings(instance_id="weather-1", stats_interval=0), redis=redis),
    "web": lambda redis: create_web(WebSettings(instance_id="web-1", stats_interval=0), redis=redis),
}
