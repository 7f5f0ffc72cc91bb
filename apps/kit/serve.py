"""Serve one service under Hypercorn: `python -m apps.kit.serve apps.<service>`.

Before Hypercorn starts, the Redis server is checked, so a wrong password or a server
without hash-field expiry ends the process with one clear line and exit status 2. On SIGTERM
(or SIGINT) the instance leaves the directory at once, keeps serving for DRAIN_SECONDS (the
gateway, which reads the directory every second, stops sending it requests meanwhile), then
Hypercorn stops listening and gives in-flight requests up to GRACEFUL_TIMEOUT seconds. A
second signal skips what is left of the drain.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import signal
import sys
from collections.abc import Callable

import uvloop
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from apps.kit.app import ServiceApp
from apps.kit.logs import setup_logging
from apps.kit.redisconn import StartupError

log = logging.getLogger("canaduck.serve")

#: The most of a request line and headers Hypercorn reads before refusing on its own (h11's
#: limit: a 431 with an empty body, and only for headers that span more than one read). It is
#: above anything Caddy forwards (its `max_header_size`, twice over, as Caddy copies Host into
#: X-Forwarded-Host), so that what is over MAX_HEADER_BYTES reaches the kit and gets its JSON
#: 431 instead; tests/unit/test_request_limits.py holds the two files to it.
HEADER_READ_LIMIT = 1024 * 1024


def collect_less_often(young_threshold: int) -> None:
    """Set the garbage collector's first threshold (GC_YOUNG_THRESHOLD), its others kept.

    An object that outlives two young collections is promoted to the oldest generation, and
    every promotion brings the next full collection nearer, which walks every object of the
    process. Objects that live across a few awaits (a NAMES read's members, a registration's
    state) are promoted when young collections come every 700 allocations, and die there: the
    gateway then ran a full collection every second while 7,000 clients joined one channel,
    60-215 ms each (docs/ircd.md, "CPU of a join wave"). Rarer young collections let them die
    young."""
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, oldest)


def load_app(module: str) -> ServiceApp:
    """Import `<module>.app` and call its `create_app()`."""
    return importlib.import_module(f"{module}.app").create_app()


def hypercorn_config(app: ServiceApp) -> Config:
    """Hypercorn's configuration for the app: where it listens, its timeouts and limits."""
    settings = app.settings
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.graceful_timeout = settings.graceful_timeout
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")  # our JSON handler, once
    config.keep_alive_timeout = 75  # longer than Caddy's idle pool timeout, so Caddy closes first
    config.h11_max_incomplete_size = HEADER_READ_LIMIT
    return config


async def run(app: ServiceApp) -> int:
    """Check Redis, serve until SIGTERM/SIGINT, return the exit status."""
    try:
        await app.runtime.check_server()
    except StartupError as exc:
        print(f"{app.settings.service_name}: cannot start: {exc}", file=sys.stderr, flush=True)
        return 2

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    leaving: list[asyncio.Task[None]] = []

    async def leave_then_stop() -> None:
        await app.runtime.withdraw()
        drain = app.settings.drain_seconds
        if app.runtime.started and drain:  # it was in the directory: requests may still come
            log.info("left the directory; serving %.1f s more while the gateway catches up", drain)
            await asyncio.sleep(drain)
        stop.set()

    def on_signal() -> None:
        if leaving:  # a second signal: stop now
            stop.set()
        else:
            leaving.append(loop.create_task(leave_then_stop()))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    await hypercorn_serve(app, hypercorn_config(app), shutdown_trigger=stop.wait)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m apps.kit.serve apps.<service>", file=sys.stderr)
        return 64
    try:
        app = load_app(argv[0])
    except (ValueError, OSError) as exc:  # pydantic's ValidationError is a ValueError
        print(f"{argv[0]}: bad settings: {exc}".replace("\n", "; "), file=sys.stderr)
        return 2
    setup_logging(app.settings.service_name, app.settings.instance_id, app.settings.log_level)
    collect_less_often(app.settings.gc_young_threshold)
    with asyncio.Runner(loop_factory=loop_factory(app.settings.event_loop)) as runner:
        return runner.run(run(app))


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The EVENT_LOOP setting's loop: uvloop's, or the standard library's."""
    if name == "uvloop":
        return uvloop.new_event_loop
    return asyncio.new_event_loop


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
