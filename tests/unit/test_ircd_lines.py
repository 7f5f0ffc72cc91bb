"""The gateway's timestamps (apps/ircd/lines.py): server-time, from seconds and from a stored
message's milliseconds, as datetime formats them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.ircd.lines import parse_server_time, server_time, server_time_ms


def formatted(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@pytest.mark.parametrize("seconds", [0.0, 0.0005, 59.9999, 1796542900.123, 1796542900.9999995,
                                     1236243248.3569994, 2168397268.4019995, -0.5, 4102444799.999])
def test_server_time_is_datetimes_to_the_millisecond(seconds: float) -> None:
    # Microseconds rounded first, as datetime does: 0.3569994 is .357, not .356.
    assert server_time(seconds) == formatted(seconds)


def test_a_stored_messages_time_is_its_milliseconds_and_reads_back() -> None:
    for ms in (0, 999, 1000, 1796542900123, 1796542900999, 1796542901000):
        assert server_time_ms(ms) == formatted(ms / 1000)
        assert parse_server_time(server_time_ms(ms)) == ms
    # The same second formatted once: the next one is not taken for it.
    assert server_time_ms(1796542900999).endswith("40.999Z")
    assert server_time_ms(1796542901000).endswith("41.000Z")
