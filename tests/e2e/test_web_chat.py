"""The chat page in a real browser: two browser sessions and a terminal IRC client on the TCP
port share one channel; history scroll-back after a reload; a reconnect after its gateway dies.

One Chromium for the module: each browser session is a window of its own (the page keeps its
session token per window, in sessionStorage). The IRC client is a plain socket speaking IRC.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from scripts.devkit.localstack import LocalStack
from scripts.devkit.waiting import wait_until
from tests.e2e.browser import chromium, console_errors, missing, screenshot

pytestmark = pytest.mark.skipif(bool(missing()), reason=missing() or "browser available")

PASSWORD = "correct horse battery"


class IrcClient:
    """A terminal IRC client, reduced to a socket: registers, joins, sends, collects lines."""

    def __init__(self, port: int, nick: str) -> None:
        self.nick = nick
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(0.2)
        self.lines: list[str] = []
        self._buffer = b""
        self.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
        self.wait_for(lambda line: f" 001 {nick} " in line)

    def send(self, *lines: str) -> None:
        self.sock.sendall("".join(f"{line}\r\n" for line in lines).encode())

    def read(self) -> None:
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\r\n")
        for raw in complete:
            line = raw.decode(errors="replace")
            if line.startswith("PING"):
                self.send("PONG" + line[4:])
            self.lines.append(line)

    def wait_for(self, match: Any, timeout: float = 15) -> str:
        def found() -> str | None:
            self.read()
            return next((line for line in self.lines if match(line)), None)

        wait_until(found, timeout=timeout, interval=0)
        line = found()
        assert line is not None
        return line

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.send("QUIT :done")
        self.sock.close()


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def session_token_accepted(stack: LocalStack, port: int) -> bool:
    """Does a gateway take a session token from the users service as the SASL password (the
    page's way to log in on IRC without ever holding the password)?"""
    import base64

    import httpx

    account = unique("probe")
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        client.post("/api/users/register", json={"account": account, "password": PASSWORD})
        token = client.post("/api/users/login", json={"account": account, "password": PASSWORD}
                            ).json().get("token", "")
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        plain = base64.b64encode(f"{account}\0{account}\0{token}".encode()).decode()
        sock.sendall(f"CAP REQ :sasl\r\nAUTHENTICATE PLAIN\r\nAUTHENTICATE {plain}\r\n".encode())
        received = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not re.search(rb" 90[2-8] ", received):
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
        return b" 903 " in received
    finally:
        sock.close()


def irc_ports(stack: LocalStack) -> dict[str, int]:
    """The gateways' IRC ports, as the ready table prints them (`ircd  <url>  ircd-1, irc :6667`)."""
    return {name: int(port) for name, port in re.findall(r"(\S+), irc :(\d+)", stack.log())}


@pytest.fixture(scope="module")
def chat(stack: LocalStack) -> Iterator[tuple[Any, dict[str, int]]]:
    instances = stack.get("/directory").json()["services"]
    if "ircd" not in instances or "users" not in instances:
        pytest.skip("the chat's IRC gateways (service ircd) or users service are not in this stack")
    ports = irc_ports(stack)
    assert ports, "no IRC port in the ready table"
    if not session_token_accepted(stack, next(iter(ports.values()))):
        pytest.skip("the IRC gateways refuse a web session token as the SASL PLAIN password: the "
                    "page cannot log in on IRC until they check it with the users service "
                    "(/internal/sessions/check), see docs/web.md")
    with chromium(1200, 800) as driver:
        yield driver, ports


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def window_for(driver: Any, url: str) -> str:
    driver.switch_to.new_window("window")
    driver.get(url)
    return driver.current_window_handle


def register(driver: Any, account: str) -> None:
    driver.find_element("id", "account").send_keys(account)
    driver.find_element("id", "password").send_keys(PASSWORD)
    driver.find_element("id", "register-button").click()
    wait_until(lambda: driver.find_element("id", "conn-status").text.startswith("online"), timeout=20)
    assert PASSWORD not in str(driver.execute_script("return JSON.stringify(sessionStorage)"))


def join(driver: Any, channel: str) -> None:
    field = driver.find_element("id", "join-name")
    field.send_keys(channel)
    driver.find_element("css selector", "#join-form button").click()
    wait_until(lambda: driver.find_element("id", "title").text == channel, timeout=15)
    wait_until(lambda: not driver.find_element("id", "message").get_attribute("disabled"), timeout=10)


def say(driver: Any, text: str) -> None:
    box = driver.find_element("id", "message")
    box.send_keys(text)
    driver.find_element("id", "send-button").click()


def log_texts(driver: Any) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#log li.privmsg .text')].map((e) => e.textContent)")


def msgids(driver: Any) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#log li[data-msgid]')].map((e) => e.dataset.msgid)")


def members(driver: Any) -> dict[str, str]:
    return driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#members li')]"
        ".map((li) => [li.dataset.nick, li.dataset.away]))")


def test_two_browsers_and_a_terminal_client_share_a_channel(stack, chat):
    driver, ports = chat
    channel = f"#{unique('room')}"
    alice, bob, carol = unique("alice"), unique("bob"), unique("carol")
    a = window_for(driver, f"{stack.url}/")
    register(driver, alice)
    join(driver, channel)
    b = window_for(driver, f"{stack.url}/")
    register(driver, bob)
    join(driver, channel)
    terminal = IrcClient(next(iter(ports.values())), carol)
    try:
        terminal.send(f"JOIN {channel}")
        terminal.wait_for(lambda line: f" 366 {carol} {channel} " in line)

        # One after the other (each seen by the terminal first), so the order is known.
        driver.switch_to.window(a)
        say(driver, "hello from alice's browser")
        terminal.wait_for(lambda line: f"PRIVMSG {channel} :hello from alice's browser" in line)
        driver.switch_to.window(b)
        say(driver, "and bob's")
        terminal.wait_for(lambda line: f"PRIVMSG {channel} :and bob's" in line)
        terminal.send(f"PRIVMSG {channel} :hi from a terminal")
        for window in (a, b):
            driver.switch_to.window(window)
            wait_until(lambda: len(log_texts(driver)) >= 3, timeout=15)
            time.sleep(0.5)  # anything more would be a duplicate: give it the time to show
            assert log_texts(driver) == ["hello from alice's browser", "and bob's", "hi from a terminal"]
            ids = msgids(driver)
            assert len(ids) == len(set(ids)) == 3
            wait_until(lambda: {alice, bob, carol} <= set(members(driver)), timeout=10)

        # Presence: the terminal user goes away, both pages show it (away-notify).
        terminal.send("AWAY :lunch")
        for window in (a, b):
            driver.switch_to.window(window)
            wait_until(lambda: members(driver).get(carol) == "true", timeout=10)

        # Typing: alice types, bob's page says so; nothing of it reaches the history.
        driver.switch_to.window(a)
        driver.find_element("id", "message").send_keys("typing")
        driver.switch_to.window(b)
        wait_until(lambda: f"{alice} is typing" in driver.find_element("id", "typing").text, timeout=10)
        screenshot(driver, "web-chat.png")
        assert console_errors(driver) == []
    finally:
        terminal.close()


def test_scroll_back_after_a_reload_has_no_gap_and_no_duplicate(stack, chat):
    driver, ports = chat
    channel = f"#{unique('history')}"
    dave, erin = unique("dave"), unique("erin")
    terminal = IrcClient(next(iter(ports.values())), erin)
    try:
        terminal.send(f"JOIN {channel}")
        terminal.wait_for(lambda line: f" 366 {erin} {channel} " in line)
        sent = [f"line {n:03d}" for n in range(120)]
        for text in sent:
            terminal.send(f"PRIVMSG {channel} :{text}")
        terminal.send("PING :sent")
        terminal.wait_for(lambda line: "PONG" in line and "sent" in line, timeout=60)

        window_for(driver, f"{stack.url}/")
        register(driver, dave)
        join(driver, channel)
        driver.refresh()  # the page comes back logged in, in its channel, with the latest page
        wait_until(lambda: driver.find_element("id", "conn-status").text.startswith("online"), timeout=20)
        wait_until(lambda: log_texts(driver)[-1:] == [sent[-1]], timeout=20)
        assert len(log_texts(driver)) < len(sent)  # one page, not everything
        older = driver.find_element("id", "older-button")
        for _ in range(10):
            if older.get_attribute("disabled") and "Beginning" in older.text:
                break
            older.click()
            time.sleep(0.3)
            wait_until(lambda: not older.get_attribute("disabled") or "Beginning" in older.text, timeout=15)
        assert log_texts(driver) == sent
        ids = msgids(driver)
        assert len(ids) == len(set(ids))
    finally:
        terminal.close()


def test_the_page_reconnects_when_its_gateway_dies_and_fills_the_gap(stack, chat):
    driver, ports = chat
    if len(ports) < 2:
        pytest.skip("one IRC gateway only: nothing to fail over to")
    (first, first_port), (second, second_port) = sorted(ports.items())[:2]
    channel = f"#{unique('failover')}"
    frank = unique("frank")
    window_for(driver, f"{stack.url}/")
    register(driver, frank)
    join(driver, channel)
    # Whichever gateway Caddy gave the page, killing both in turn kills the page's link once.
    writers = []
    try:
        for dying, survivor_port in ((first, second_port), (second, first_port)):
            wait_until(lambda p=survivor_port: accepts(p), timeout=30, interval=0.2)
            writer = IrcClient(survivor_port, unique("gina"))
            writers.append(writer)
            writer.send(f"JOIN {channel}")
            writer.wait_for(lambda line, w=writer: f" 366 {w.nick} {channel} " in line)
            with stack.held_down(dying):
                for n in range(5):
                    writer.send(f"PRIVMSG {channel} :while {dying} is down {n}")
                    time.sleep(0.2)
                wait_until(lambda: driver.find_element("id", "conn-status").text.startswith("online"),
                           timeout=30)
                wait_until(lambda d=dying: sum(f"while {d} is down" in t for t in log_texts(driver)) == 5,
                           timeout=30)
        texts = log_texts(driver)
        assert len(texts) == len(set(texts)) == 10
        ids = msgids(driver)
        assert len(ids) == len(set(ids))
    finally:
        for writer in writers:
            writer.close()
