"""A request loop for load-balancing checks: sequential GETs through the gateway, each one
recorded with who answered it, while the caller kills and restarts replicas between requests.

The load-balancing demo (`scripts/lb-demo`) and its end-to-end test both drive it.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from scripts.devkit.waiting import wait_until

#: The request the mult checks repeat, and the only answer that counts as a success.
MULT_PATH, MULT_ANSWER = "/mult?op1=6&op2=7", 42
MULT_PRIMARIES, MULT_BACKUP = ("mult-a", "mult-b"), "mult-backup"


@dataclass(frozen=True)
class Sample:
    """One request of the loop: when it started and ended (monotonic), and who answered."""

    started: float
    ended: float
    status: int  # 0 when no HTTP answer came at all
    served_by: str  # "" unless the answer was a correct result

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.served_by)

    @property
    def ms(self) -> float:
        return (self.ended - self.started) * 1000


class RequestLoop:
    """Sequential GETs of `base_url + path` in a thread, each recorded as a Sample, until stopped.

    An answer is correct when it is a 200 whose JSON `result` is `expected`; its `served_by`
    names the replica. `between_requests` runs an action (a kill, a restart) in the loop's own
    thread, at a moment when none of its requests is in flight. A replica killed in the middle
    of writing a response (status line sent, body not yet) loses that response: Caddy has
    already passed the headers on and cannot retry. That is the server dying, not the routing
    failing, so the loop keeps it out of what it measures; docs/load-balancing.md shows how
    often it happens.
    """

    def __init__(self, base_url: str, path: str = MULT_PATH, expected: object = MULT_ANSWER,
                 timeout: float = 10.0) -> None:
        self.url = f"{base_url}{path}"
        self.expected = expected
        self.timeout = timeout
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._actions: queue.Queue[Callable[[], None]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def between_requests(self, action: Callable[[], None], timeout: float = 30.0) -> float:
        """Run `action` between two requests of the loop; return when it ran (monotonic)."""
        done = threading.Event()
        outcome: list[BaseException | float] = []

        def run() -> None:
            try:
                outcome.append(time.monotonic())
                action()
            except BaseException as exc:  # handed back to the caller below
                outcome.append(exc)
            finally:
                done.set()

        self._actions.put(run)
        if not done.wait(timeout):
            raise AssertionError(f"the request loop did not run the action within {timeout} s")
        if isinstance(outcome[-1], BaseException):
            raise outcome[-1]
        return outcome[0]  # type: ignore[return-value]

    def _run_pending_actions(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._actions.get_nowait()()

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while not self._stop.is_set():
                self._run_pending_actions()
                started = time.monotonic()
                status, served_by = 0, ""
                try:
                    response = client.get(self.url)
                    status = response.status_code
                    body = response.json()
                    if status == 200 and body.get("result") == self.expected:
                        served_by = str(body.get("served_by", ""))
                except (httpx.HTTPError, ValueError):
                    pass
                self.samples.append(Sample(started, time.monotonic(), status, served_by))

    def __enter__(self) -> RequestLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def count_since(self, since: float, served_by: str) -> int:
        """Correct answers from `served_by` to requests started at or after `since`."""
        return sum(1 for s in list(self.samples) if s.started >= since and s.served_by == served_by)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wait until `predicate()` holds while the loop runs; AssertionError after `timeout`."""
        wait_until(predicate, timeout=timeout)


def backup_only_when_down(samples: Sequence[Sample], both_down_at: float,
                          primaries: Sequence[str] = MULT_PRIMARIES, backup: str = MULT_BACKUP) -> bool:
    """True if the backup answered, and only while both primaries were down.

    `both_down_at` is when the second primary was killed: a request that ended before it was
    routed while one primary was still up. The backup's answers must also form one unbroken
    run: once a primary answers again, the backup must not.
    """
    served = [s.served_by for s in samples]
    answered = [i for i, name in enumerate(served) if name == backup]
    if not answered or samples[answered[0]].ended <= both_down_at:
        return False
    return not any(name in primaries for name in served[answered[0]:answered[-1]])
