"""The dashboard in a real browser: the directory live, a killed instance dropping out, the
/mult split. In a window of the session's one Chromium, on the session's shared stack."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scripts.devkit.localstack import LocalStack
from scripts.devkit.waiting import wait_until
from tests.e2e.browser import console_errors, missing, screenshot

pytestmark = pytest.mark.skipif(bool(missing()), reason=missing() or "browser available")

TTL = 10.0  # DIRECTORY_TTL of the local stack
FEED_INTERVAL = 1.0  # the web service's FEED_INTERVAL


@pytest.fixture(scope="module")
def browser(stack: LocalStack, chromium_browser: Any) -> Iterator[Any]:
    """The session's Chromium, in a window of its own on the dashboard."""
    driver = chromium_browser
    first = driver.current_window_handle
    driver.switch_to.new_window("window")
    driver.set_window_size(1200, 1500)
    driver.get(f"{stack.url}/dashboard")
    yield driver
    driver.close()
    driver.switch_to.window(first)


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


def served_mult_totals(stack: LocalStack) -> dict[str, int]:
    """Each mult replica's /mult requests as it counts them itself (its /metrics): what the
    dashboard shows once the replica's next counters have been published."""
    totals = {}
    with httpx.Client(timeout=10) as client:
        for item in stack.get("/directory").json()["services"]["mult"]:
            text = client.get(f"{item['url']}/metrics").text
            totals[item["instance"]] = int(sum(
                sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                if sample.name == "http_requests_total" and sample.labels.get("route") == "/mult"))
    return totals


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
        before = served_mult_totals(stack)
        wait_until(lambda: mult_totals(browser) == before, timeout=10, interval=0.2)  # caught up
        served = [client.get("/mult", params={"op1": 6, "op2": 7}).json()["served_by"] for _ in range(80)]
    wait_until(lambda: mult_totals(browser) == served_mult_totals(stack), timeout=10, interval=0.2)
    after = mult_totals(browser)
    grew = {name: after[name] - before.get(name, 0) for name in after}
    assert grew == {name: served.count(name) for name in grew}
    assert grew == {"mult-a": 60, "mult-b": 20, "mult-backup": 0}
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
