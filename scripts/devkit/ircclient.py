"""A blocking IRC line client for tests, benchmarks and the fuzzer: send lines, read lines,
and `sync` (a PING of its own, then every line until its PONG, as irctest does)."""

from __future__ import annotations

import base64
import contextlib
import itertools
import socket
import ssl
import time
from collections.abc import Callable


class IrcClient:
    """One connection to a gateway (or any IRC server) on loopback or `host`."""

    _tokens = itertools.count()

    def __init__(self, port: int, *, host: str = "127.0.0.1", timeout: float = 5.0,
                 tls: ssl.SSLContext | None = None, server_name: str | None = None) -> None:
        """Connect, over TLS with `tls` (asking for `server_name`, SNI, when given)."""
        sock = socket.create_connection((host, port), timeout=timeout)
        self.sock = tls.wrap_socket(sock, server_hostname=server_name) if tls is not None else sock
        self.buffer = b""

    def send(self, *lines: str | bytes) -> None:
        """Write `lines`, each with its CRLF, in one call."""
        self.sock.sendall(b"".join((line if isinstance(line, bytes) else line.encode()) + b"\r\n"
                                   for line in lines))

    def raw_line(self) -> bytes:
        """The next line as bytes, without its CRLF; EOFError when the connection ends."""
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(f"connection closed; unread: {self.buffer[:200]!r}")
            self.buffer += data
        raw, self.buffer = self.buffer.split(b"\r\n", 1)
        return raw

    def line(self) -> str:
        return self.raw_line().decode("utf-8", "replace")

    def sync_raw(self) -> list[bytes]:
        """Every line (bytes) received until the answer to a PING of ours."""
        token = f"sync{next(self._tokens)}".encode()
        self.send(b"PING " + token)
        lines: list[bytes] = []
        while True:
            raw = self.raw_line()
            if b" PONG " in raw and raw.endswith(token):
                return lines
            lines.append(raw)

    def sync(self) -> list[str]:
        """Every line received until the answer to a PING of ours."""
        return [raw.decode("utf-8", "replace") for raw in self.sync_raw()]

    def until(self, predicate: Callable[[str], bool], timeout: float = 5.0) -> list[str]:
        """Lines until one satisfies `predicate` (deliveries from another replica come later)."""
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = self.line()
            lines.append(line)
            if predicate(line):
                return lines
        raise AssertionError(f"not seen within {timeout} s: {lines}")

    def register(self, nick: str, caps: str = "", *, sasl: tuple[str, str] | None = None) -> list[str]:
        """NICK and USER, after requesting `caps` (and logging in with SASL PLAIN as
        `sasl` = (account, password) when given); the lines up to the end of registration."""
        if caps or sasl:
            wanted = " ".join(filter(None, [caps, "sasl" if sasl else ""]))
            self.send("CAP LS 302", f"CAP REQ :{wanted}")
        if sasl:
            account, password = sasl
            payload = base64.b64encode(f"{account}\0{account}\0{password}".encode()).decode()
            self.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {payload}")
        self.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
        if caps or sasl:
            self.send("CAP END")
        return self.sync()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
