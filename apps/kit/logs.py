"""JSON logs, one object a line, each carrying the service, instance and request id."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar

#: The request being served by the current task ("" outside a request). Tasks started while
#: serving it inherit it (asyncio copies the context), so their log lines carry it too.
request_id_var: ContextVar[str] = ContextVar("request_id", default="")

REQUEST_ID_HEADER = "X-Request-ID"
#: A request id we accept from outside: a plain token, safe in a log line and a header.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


def is_request_id(value: str) -> bool:
    """True if `value` may be used as a request id as it is."""
    return bool(_REQUEST_ID.fullmatch(value))


@contextlib.contextmanager
def serving(request_id: str | None) -> Iterator[None]:
    """Log (and call other services) as part of `request_id` inside the block.

    For work that does not start with an HTTP request of its own: an envelope handled off a
    channel carries the id of the request that sent it.
    """
    token = request_id_var.set(request_id or "")
    try:
        yield
    finally:
        request_id_var.reset(token)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line."""

    def __init__(self, service: str, instance: str) -> None:
        super().__init__()
        self._service = service
        self._instance = instance

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "service": self._service,
            "instance": self._instance,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            line["request_id"] = request_id
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            line.update(extra)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def setup_logging(service: str, instance: str, level: str) -> None:
    """Send every logger's records to stderr as JSON lines at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service, instance))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Hypercorn's own access log duplicates ours (which carries the request id).
    logging.getLogger("hypercorn.access").disabled = True
    # httpx logs every request at INFO; callers log what matters to them.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    logging.Formatter.converter = time.gmtime
