"""HTTP/1.1 written and read byte by byte on one socket: what an HTTP client library hides.

Tests of how a server treats hostile framing need to see it all: whether a refused body is
read or cut off with a TCP reset, whether anything left of it is parsed as a next request,
whether the server closes the connection after an answer. `exchange` sends a request (and
whatever follows it on the same connection) from one thread while reading from another, so a
server that answers before reading everything is seen doing so.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})[^\r\n]*\r\n")
CHUNK = 64 * 1024


@dataclass
class Answer:
    """One response as it came: status, headers (names lowercased), body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def closes(self) -> bool:
        """True if the response says the connection ends after it."""
        return self.headers.get("connection", "").lower() == "close"


@dataclass
class Exchange:
    """What one connection carried back, and how it ended."""

    answers: list[Answer]
    #: The connection ended with a reset (ECONNRESET) rather than a clean close (EOF).
    reset: bool
    #: The server closed its side (EOF or reset) before the read timeout.
    closed: bool
    #: Bytes of the request (and what followed it) the socket took before an error.
    sent: int
    send_error: str = ""
    #: Whatever came after the last complete response (a truncated one, or garbage).
    rest: bytes = field(default=b"", repr=False)

    @property
    def statuses(self) -> list[int]:
        return [answer.status for answer in self.answers]


def request_head(method: str, path: str, *, body_length: int | None = None, chunked: bool = False,
                 headers: dict[str, str] | None = None) -> bytes:
    """A request line and headers; `body_length` adds Content-Length, `chunked` Transfer-Encoding."""
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body_length is not None:
        lines.append(f"Content-Length: {body_length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def body_of(size: int, *, chunked: bool = False, fill: bytes = b"x") -> Iterator[bytes]:
    """`size` bytes of `fill` repeated, in 64 KiB pieces, framed as chunks if `chunked`."""
    block = (fill * (CHUNK // len(fill) + 1))[:CHUNK]
    sent = 0
    while sent < size:
        piece = block[:min(CHUNK, size - sent)]
        sent += len(piece)
        yield b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
    if chunked:
        yield b"0\r\n\r\n"


def exchange(port: int, parts: Iterable[bytes], *, host: str = "127.0.0.1", timeout: float = 5.0,
             source: str = "") -> Exchange:
    """Send `parts` on one new connection while reading; return every answer and how it ended.

    Reading stops at the server's close, or `timeout` seconds after the last byte came.
    `source` binds the client side to that address (another loopback address: another client).
    """
    sock = socket.create_connection((host, port), timeout=timeout,
                                    source_address=(source, 0) if source else None)
    sent = 0
    error = ""

    def write() -> None:
        nonlocal sent, error
        try:
            for part in parts:
                sock.sendall(part)
                sent += len(part)
        except OSError as exc:
            error = type(exc).__name__

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    received = bytearray()
    reset = closed = False
    try:
        while True:
            data = sock.recv(CHUNK)
            if not data:
                closed = True
                break
            received += data
    except ConnectionResetError:
        reset = closed = True
    except TimeoutError:
        pass
    finally:
        writer.join(timeout)
        sock.close()
    answers, rest = parse(bytes(received))
    return Exchange(answers, reset, closed, sent, error, rest)


def parse(data: bytes) -> tuple[list[Answer], bytes]:
    """The responses in `data`, in order, and what follows the last complete one.

    Responses are framed by Content-Length; one without it runs to the end of `data`.
    """
    answers = []
    while match := _STATUS_LINE.match(data):
        head_end = data.find(b"\r\n\r\n", match.end() - 2)
        if head_end < 0:
            break
        headers = {}
        for line in data[match.end():head_end].split(b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        start = head_end + 4
        length = int(headers.get("content-length", len(data) - start))
        answers.append(Answer(int(match.group(1)), headers, data[start:start + length]))
        data = data[start + length:]
    return answers, data
