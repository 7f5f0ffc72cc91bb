"""Kit: Peers keeps the last instances seen when the directory is unreachable; readiness policy."""

from __future__ import annotations

import fakeredis
import pytest

from apps.kit.app import create_app
from apps.kit.dircache import DirectoryCache
from apps.kit.directory import Directory, Entry
from apps.kit.http import NoInstance, Peers
from apps.kit.names import Keys
from apps.kit.settings import KitSettings
from scripts.devkit import wait_until_async


async def test_peers_fall_back_to_the_last_instances_seen(redis, fake_server):
    directory = Directory(redis, Keys(), ttl=10)
    await directory.register(Entry("weather", "a", "http://a.test/", "canaduck:inbox:weather"))
    peers = Peers(DirectoryCache(directory, ttl=0), lookup_timeout=0.5)
    assert await peers.url("weather") == "http://a.test"
    fake_server.connected = False
    assert await peers.url("weather") == "http://a.test"  # Redis away: the last one seen
    with pytest.raises(NoInstance):
        await peers.url("jokes")  # never seen: nothing to fall back to


async def test_peers_reuse_a_lookup_for_the_cache_ttl(redis):
    directory = Directory(redis, Keys(), ttl=10)
    peers = Peers(DirectoryCache(directory, ttl=60))
    with pytest.raises(NoInstance):
        await peers.url("weather")
    await directory.register(Entry("weather", "a", "http://a.test", "canaduck:inbox:weather"))
    with pytest.raises(NoInstance):
        await peers.url("weather")  # the empty answer is still fresh
    assert await Peers(DirectoryCache(directory, ttl=0)).url("weather") == "http://a.test"


async def test_overrides_win(redis):
    lookups = DirectoryCache(Directory(redis, Keys(), ttl=10), ttl=0)
    peers = Peers(lookups, {"weather": "http://fixed", "jokes": ""})
    assert await peers.url("weather") == "http://fixed"
    with pytest.raises(NoInstance):
        await peers.url("jokes")  # an empty override means "use the directory"


@pytest.mark.parametrize(("policy", "status", "state"), [(False, 503, "not ready"), (True, 200, "degraded")])
async def test_readiness_policy_when_redis_goes_away(started, policy, status, state):
    server = fakeredis.FakeServer()
    client = fakeredis.FakeAsyncRedis(server=server)
    settings = KitSettings(service_name="calc", instance_id="calc-1", heartbeat_interval=0.05)
    app = create_app(settings, import_name=__name__, redis=client, ready_without_redis=policy)
    async with started(app) as http:
        server.connected = False
        await wait_until_async(lambda: not app.runtime.redis_ok)
        response = await http.get("/ready")
        assert response.status_code == status
        assert (await response.get_json())["status"] == state
        server.connected = True
