"""A round-robin TCP proxy: one listening port in front of several IRC gateways.

Each accepted connection goes to the next backend in turn and its bytes are copied both ways
untouched, so a test suite written for one server (irctest) spreads its clients over several
gateway replicas: the first client lands on one replica, the second on the other, and every
message between them has to cross Redis. A half-close is passed on (EOF one way shuts down the
write side of the other), and a backend that refuses closes the client's connection at once.

Used by the irctest controller (in a thread, so a test pays no process start) and runnable
alone: `python -m tests.irctest.proxy --listen 127.0.0.1:6667 127.0.0.1:6668 127.0.0.1:6669`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import threading
from collections.abc import Sequence

Address = tuple[str, int]
_CHUNK = 65536


def parse_address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


class RoundRobinProxy:
    """Listens on `listen` and hands each new connection to the next of `backends`."""

    def __init__(self, listen: Address, backends: Sequence[Address]) -> None:
        if not backends:
            raise ValueError("a proxy needs at least one backend")
        self.listen = listen
        self.backends = list(backends)
        self._next = itertools.cycle(self.backends)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0

    async def start(self) -> RoundRobinProxy:
        self._server = await asyncio.start_server(self._accept, *self.listen, reuse_address=True)
        return self

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        backend = next(self._next)
        self.connections += 1
        backend_writer: asyncio.StreamWriter | None = None
        try:
            try:
                backend_reader, backend_writer = await asyncio.open_connection(*backend)
            except OSError:
                return  # refused: the client's connection is closed below
            await asyncio.gather(_pipe(client_reader, backend_writer), _pipe(backend_reader, client_writer))
        finally:
            client_writer.close()
            if backend_writer is not None:
                backend_writer.close()
            self._tasks.discard(task)

    async def stop(self) -> None:
        """Stop listening and cut every connection still open."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()


class ThreadedProxy:
    """A `RoundRobinProxy` on an event loop of its own, in a daemon thread."""

    def __init__(self, listen: Address, backends: Sequence[Address]) -> None:
        self.proxy = RoundRobinProxy(listen, backends)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rr-proxy", daemon=True)

    def start(self) -> ThreadedProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.proxy.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


async def _serve(listen: Address, backends: list[Address]) -> None:
    proxy = await RoundRobinProxy(listen, backends).start()
    print(f"proxy: {listen[0]}:{listen[1]} -> " + ", ".join(f"{h}:{p}" for h, p in backends), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await proxy.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:6667", type=parse_address)
    parser.add_argument("backends", nargs="+", type=parse_address, metavar="HOST:PORT")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.listen, args.backends))


if __name__ == "__main__":
    main()
