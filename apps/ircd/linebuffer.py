"""Lines cut out of the bytes a stream received, one at a time, as they are read.

A line is cut only when it is read (an offset moves; the buffer is compacted when more bytes
arrive), so a flood of tiny lines costs no per-line work before its turn comes, and no copy of
the rest per line.
"""

from __future__ import annotations


class TooLong(Exception):
    """A line longer than the gateway reads: it was discarded up to its end."""


class LineBuffer:
    """Bytes received and not read yet; `limit` is the longest line read (CRLF included)."""

    __slots__ = ("_buffer", "_discarding", "_limit", "_start")  # one per connection: no dict

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buffer = b""
        self._start = 0  # where the unread part of `_buffer` begins
        self._discarding = False  # the rest of a line already answered as too long is skipped

    def __len__(self) -> int:
        """Bytes not read yet."""
        return len(self._buffer) - self._start

    def feed(self, data: bytes) -> None:
        if self._start:
            self._buffer = self._buffer[self._start:] + data
            self._start = 0
        else:
            self._buffer = self._buffer + data if self._buffer else data

    def clear(self) -> None:
        self._buffer, self._start = b"", 0

    def next_line(self) -> bytes | None:
        """The next complete line without its line ending (CRLF or LF), or None; TooLong (once)
        for a line past the limit, which is then skipped to its end."""
        buffer, start, limit = self._buffer, self._start, self._limit
        end = buffer.find(b"\n", start)
        if end < 0:
            if len(buffer) - start > limit:  # a line longer than any we read: answer it once
                self.clear()
                if not self._discarding:
                    self._discarding = True
                    raise TooLong()
            return None
        self._start = end + 1
        if self._start >= len(buffer):
            self.clear()
        if self._discarding:  # the end of a line already answered as too long
            self._discarding = False
            return self.next_line()
        if end + 1 - start > limit:
            raise TooLong()
        return buffer[start:end].rstrip(b"\r")
