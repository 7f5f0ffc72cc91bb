"""The dashboard in a real browser: the directory live, a killed instance dropping out, the
/mult split. One Chromium for the module, on the session's shared stack."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from scripts.devkit.localstack import LocalStack
from scripts.devkit.waiting import wait_until
from tests.e2e.browser import chromium, console_errors, missing, screenshot

pytestmark = pytest.mark.skipif(bool(missing()), reason=missing() or "browser available")

TTL = 10.0  # DIRECTORY_TTL of the local stack
FEED_INTERVAL = 1.0  # the web service's FEED_INTERVAL


@pytest.fixture(scope="module")
def browser(stack: LocalStack) -> Iterator[Any]:
    with chromium(1200, 1500) as driver:
        driver.get(f"{stack.url}/dashboard")
        yield driver


def live_rows(driver: Any) -> set[str]:
    return set(driver.execute_script(
        "return [...document.querySelectorAll('#directory tbody tr[data-state=live]')]"
        ".map((row) => row.dataset.instance)"))


def listed(stack: LocalStack) -> set[str]:
    services = stack.get("/directory").json()["services"]
    return {f"{service}/{item['instance']}" for service, items in services.items() for item in items}


def mult_totals(driver: Any) -> dict[str, int]:
    return driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#mult li')]"
        ".map((li) => [li.dataset.instance, Number(li.dataset.requests)]))")


def settled_mult_totals(driver: Any) -> dict[str, int]:
    """The totals once the requests just sent have all been counted (stats come every second)."""
    last: list[dict[str, int]] = [mult_totals(driver)]

    def unchanged() -> bool:
        time.sleep(1.5)
        now = mult_totals(driver)
        same = now == last[0]
        last[0] = now
        return same

    wait_until(unchanged, timeout=15, interval=0)
    return last[0]


def test_the_dashboard_shows_the_same_instances_as_the_directory(stack, browser):
    wait_until(lambda: live_rows(browser) and live_rows(browser) == listed(stack), timeout=20, interval=0.2)
    assert {"web/web", "mult/mult-backup", "directory/directory"} <= live_rows(browser)
    ttls = browser.execute_script(
        "return [...document.querySelectorAll('#directory tr[data-state=live] .ttl-text')]"
        ".map((cell) => parseFloat(cell.textContent))")
    assert ttls and all(0 <= ttl <= TTL for ttl in ttls), ttls
    # The other cards are fed too: the rally is being played, the broker relays it.
    wait_until(lambda: browser.find_element("css selector", '#rally dd[data-field="transport"]').text
               == "broker", timeout=10)
    wait_until(lambda: browser.find_element("css selector", '#broker dd[data-field="relayed"]').text
               not in ("\u2013", "0"), timeout=10)
    assert browser.find_element("id", "feed-status").get_attribute("data-state") == "live"
    assert console_errors(browser) == []


def test_the_mult_split_is_3_to_1_and_the_backup_idles(stack, browser):
    wait_until(lambda: len(mult_totals(browser)) == 3, timeout=10)
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        # Both primaries routed (a replica held down by an earlier test is back in rotation).
        wait_until(lambda: {client.get("/mult", params={"op1": 1, "op2": 1}).json()["served_by"]
                            for _ in range(8)} == {"mult-a", "mult-b"}, timeout=30, interval=0.2)
        before = settled_mult_totals(browser)
        served = [client.get("/mult", params={"op1": 6, "op2": 7}).json()["served_by"] for _ in range(400)]

    def counted() -> bool:
        now = mult_totals(browser)
        return sum(now.values()) - sum(before.values()) >= 400

    wait_until(counted, timeout=10, interval=0.2)
    after = mult_totals(browser)
    grew = {name: after[name] - before.get(name, 0) for name in after}
    assert grew == {name: served.count(name) for name in grew}
    assert grew == {"mult-a": 300, "mult-b": 100, "mult-backup": 0}
    lit = browser.execute_script(
        "return [...document.querySelectorAll('#mult li.lit')].map((li) => li.dataset.instance)")
    assert "mult-backup" not in lit
    screenshot(browser, "dashboard.png")


def test_a_killed_instance_drops_out_within_its_ttl(stack, browser):
    wait_until(lambda: "calc/calc-2" in live_rows(browser), timeout=20, interval=0.2)
    with stack.held_down("calc-2"):
        killed = time.monotonic()
        wait_until(lambda: "calc/calc-2" not in live_rows(browser), timeout=TTL + 10, interval=0.1)
        dropped_after = time.monotonic() - killed
        assert "calc/calc-2" not in listed(stack)
        # The field expires at most TTL after the last heartbeat, and the next snapshot shows it.
        assert dropped_after <= TTL + FEED_INTERVAL + 0.5, dropped_after
        row = browser.find_element("css selector", 'tr[data-instance="calc/calc-2"]')
        assert row.get_attribute("data-state") == "gone"
        wait_until(lambda: "calc/calc-2 dropped out" in browser.find_element("id", "events").text,
                   timeout=5)
        screenshot(browser, "dashboard-dropped.png")
    wait_until(lambda: "calc/calc-2" in live_rows(browser), timeout=20, interval=0.2)
