"""The chat page in a real browser: two browser sessions and a terminal IRC client on the TCP
port share one channel; history scroll-back after a reload; a reconnect after its gateway dies.

The session's one Chromium: each browser session is a window of its own (the page keeps its
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
from scripts.devkit.waiting import NotMet, wait_until
from tests.e2e.browser import console_errors, missing, screenshot

pytestmark = pytest.mark.skipif(bool(missing()), reason=missing() or "browser available")

PASSWORD = "correct horse battery"
BACKSPACE = "\ue003"  # WebDriver's key code (selenium's Keys.BACKSPACE; selenium may be absent)


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

    def join(self, channel: str) -> None:
        """JOIN `channel` and wait until the server has sent its member list (366)."""
        self.send(f"JOIN {channel}")
        self.wait_for(lambda line: f" 366 {self.nick} {channel} " in line)

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


def page_url(stack: LocalStack) -> str:
    """The chat's URL, as the ready table of `scripts/up` tells a user to open it."""
    found = re.search(r"open:\s+(\S+/)\s+\(the chat\)", stack.log())
    assert found, "no chat URL in the ready table"
    return found.group(1)


@pytest.fixture(scope="module")
def chat(stack: LocalStack, chromium_browser: Any) -> Iterator[tuple[Any, dict[str, int], str]]:
    """The session's Chromium (each user a window of its own), the gateways' IRC ports, and
    the page's URL; the module's windows are closed at the end."""
    instances = stack.get("/directory").json()["services"]
    if "ircd" not in instances or "users" not in instances:
        pytest.skip("the chat's IRC gateways (service ircd) or users service are not in this stack")
    ports = irc_ports(stack)
    assert ports, "no IRC port in the ready table"
    assert session_token_accepted(stack, next(iter(ports.values()))), \
        "the IRC gateways refuse a web session token as the SASL PLAIN password"
    driver = chromium_browser
    first = driver.current_window_handle
    yield driver, ports, page_url(stack)
    for handle in driver.window_handles:
        if handle != first:
            driver.switch_to.window(handle)
            driver.close()
    driver.switch_to.window(first)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def window_for(driver: Any, url: str) -> str:
    driver.switch_to.new_window("window")
    driver.set_window_size(1200, 800)
    driver.get(url)
    return driver.current_window_handle


def wait_online(driver: Any, as_nick: str | None = None, timeout: float = 20) -> None:
    """Wait until the page says it is online (as `as_nick`, if given); a timeout names the
    statuses it showed meanwhile."""
    shown: list[str] = []

    def online() -> bool:
        text = driver.find_element("id", "conn-status").text
        if not shown or shown[-1] != text:
            shown.append(text)
        return text == f"online as {as_nick}" if as_nick else text.startswith("online")

    try:
        wait_until(online, timeout=timeout)
    except NotMet:
        raise NotMet(f"not online{f' as {as_nick}' if as_nick else ''} within {timeout} s; "
                     f"the page showed {shown}") from None


def register(driver: Any, account: str) -> None:
    driver.find_element("id", "account").send_keys(account)
    driver.find_element("id", "password").send_keys(PASSWORD)
    driver.find_element("id", "register-button").click()
    wait_online(driver)
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
    """The msgids of the messages drawn (the events among them, JOINs..., left out)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#log li[data-msgid]:not(.info)')].map((e) => e.dataset.msgid)")


def members(driver: Any) -> dict[str, str]:
    return driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#members li')]"
        ".map((li) => [li.dataset.nick, li.dataset.away]))")


def test_two_browsers_and_a_terminal_client_share_a_channel(stack, chat):
    driver, ports, url = chat
    channel = f"#{unique('room')}"
    alice, bob, carol = unique("alice"), unique("bob"), unique("carol")
    a = window_for(driver, url)
    register(driver, alice)
    join(driver, channel)
    b = window_for(driver, url)
    register(driver, bob)
    join(driver, channel)
    terminal = IrcClient(next(iter(ports.values())), carol)
    try:
        terminal.send("CAP REQ :message-tags")  # to see the pages' typing notifications
        terminal.wait_for(lambda line: " ACK " in line and "message-tags" in line)
        terminal.join(channel)

        # One after the other (each seen by the terminal first), so the order is known.
        driver.switch_to.window(a)
        say(driver, "hello from alice's browser")
        terminal.wait_for(lambda line: f"PRIVMSG {channel} :hello from alice's browser" in line)
        driver.switch_to.window(b)
        say(driver, "and bob's")
        terminal.wait_for(lambda line: f"PRIVMSG {channel} :and bob's" in line)
        terminal.send(f"PRIVMSG {channel} :hi from a terminal")
        said = ["hello from alice's browser", "and bob's", "hi from a terminal"]
        for window in (a, b):
            driver.switch_to.window(window)
            wait_until(lambda: len(log_texts(driver)) >= 3, timeout=15)
            assert log_texts(driver) == said
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
        typed = f":{alice}!"
        terminal.wait_for(lambda line: "+typing=active" in line and typed in line and channel in line)
        # She stops without sending: "paused" (once), then clears the box: "done", and bob's
        # page stops saying she types.
        terminal.wait_for(lambda line: "+typing=paused" in line and typed in line, timeout=15)
        driver.switch_to.window(a)
        driver.find_element("id", "message").send_keys(BACKSPACE * len("typing"))
        terminal.wait_for(lambda line: "+typing=done" in line and typed in line, timeout=10)
        driver.switch_to.window(b)
        wait_until(lambda: driver.find_element("id", "typing").text == "", timeout=10)
        assert sum("+typing=paused" in line and typed in line for line in terminal.lines) == 1
        # Seconds later, after presence and typing went through: still each message once, each
        # with the server's msgid (whichever gateway relayed it), no typing in the log.
        for window in (a, b):
            driver.switch_to.window(window)
            assert log_texts(driver) == said
            ids = msgids(driver)
            assert len(ids) == len(set(ids)) == 3
            assert console_errors(driver) == []
        stored = stack.get(f"/api/messages/{channel.replace('#', '%23')}",
                           headers={"Authorization": f"Bearer {session_token(driver)}"}).json()["messages"]
        assert [(m["command"], m["text"]) for m in stored] == [("PRIVMSG", text) for text in said]
        assert [m["id"] for m in stored] == ids  # the page shows the server's msgids
    finally:
        terminal.close()


def test_scroll_back_after_a_reload_has_no_gap_and_no_duplicate(stack, chat):
    driver, ports, url = chat
    channel = f"#{unique('history')}"
    dave, erin = unique("dave"), unique("erin")
    terminal = IrcClient(next(iter(ports.values())), erin)
    try:
        terminal.join(channel)
        sent = [f"line {n:03d}" for n in range(120)]
        for text in sent:
            terminal.send(f"PRIVMSG {channel} :{text}")
        terminal.send("PING :sent")
        terminal.wait_for(lambda line: "PONG" in line and "sent" in line, timeout=60)

        window_for(driver, url)
        register(driver, dave)
        join(driver, channel)
        driver.refresh()  # the page comes back logged in, in its channel, with the latest page
        wait_online(driver)
        wait_until(lambda: log_texts(driver)[-1:] == [sent[-1]], timeout=20)
        assert len(log_texts(driver)) < len(sent)  # one page, not everything
        older = driver.find_element("id", "older-button")
        for _ in range(10):
            wait_until(lambda: not older.get_attribute("disabled") or "Beginning" in older.text, timeout=15)
            if "Beginning" in older.text:
                break
            held = len(log_texts(driver))
            older.click()
            wait_until(lambda h=held: len(log_texts(driver)) > h or "Beginning" in older.text, timeout=15)
        assert "Beginning" in older.text
        assert log_texts(driver) == sent
        ids = msgids(driver)
        assert len(ids) == len(set(ids))
    finally:
        terminal.close()


def test_the_page_reconnects_when_its_gateway_dies_and_fills_the_gap(stack, chat):
    driver, ports, url = chat
    if len(ports) < 2:
        pytest.skip("one IRC gateway only: nothing to fail over to")
    (first, first_port), (second, second_port) = sorted(ports.items())[:2]
    channel = f"#{unique('failover')}"
    frank = unique("frank")
    window_for(driver, url)
    register(driver, frank)
    join(driver, channel)
    # Every status the page shows, recorded, so the test knows its link did break.
    driver.execute_script(
        "const status = document.getElementById('conn-status'); window.statuses = [];"
        "new MutationObserver(() => window.statuses.push(status.textContent))"
        ".observe(status, {childList: true, characterData: true, subtree: true});")
    # Whichever gateway Caddy gave the page, killing both in turn kills the page's link once.
    writers = []
    try:
        for dying, survivor_port in ((first, second_port), (second, first_port)):
            wait_until(lambda p=survivor_port: accepts(p), timeout=30, interval=0.2)
            writer = IrcClient(survivor_port, unique("gina"))
            writers.append(writer)
            writer.join(channel)
            with stack.held_down(dying):
                # Sent at once, long before a reconnected page is back in the channel: if the
                # page was on the dead gateway, only its gap fill can bring these.
                writer.send(*(f"PRIVMSG {channel} :while {dying} is down {n}" for n in range(5)))
                wait_online(driver, timeout=30)
                wait_until(lambda d=dying: sum(f"while {d} is down" in t for t in log_texts(driver)) == 5,
                           timeout=30)
        assert any("reconnecting" in status for status in driver.execute_script("return window.statuses"))
        texts = log_texts(driver)
        assert len(texts) == len(set(texts)) == 10
        ids = msgids(driver)
        assert len(ids) == len(set(ids))
        # Handshakes refused while a gateway was down are the browser's expected complaints
        # (reading them also clears them for the next test); nothing else may be logged.
        assert [e for e in console_errors(driver) if "WebSocket connection to" not in e] == []
    finally:
        for writer in writers:
            writer.close()


def session_token(driver: Any) -> str | None:
    return driver.execute_script(
        "const s = Object.values(sessionStorage)"
        ".map((v) => { try { return JSON.parse(v); } catch { return null; } })"
        ".find((v) => v && v.token); return s ? s.token : null;")


def test_private_messages_the_channel_list_leaving_and_logging_out_and_in(stack, chat):
    driver, ports, url = chat
    channel = f"#{unique('lobby')}"
    hank, ivy = unique("hank"), unique("ivy")
    terminal = IrcClient(next(iter(ports.values())), ivy)
    try:
        terminal.join(channel)
        window_for(driver, url)
        register(driver, hank)

        # The list of channels, and joining one from it.
        driver.find_element("id", "list-button").click()
        entry = f"{channel} (1)"
        wait_until(lambda: entry in driver.find_element("id", "channel-list").text, timeout=10)
        driver.find_element("xpath", f'//ul[@id="channel-list"]//button[text()="{entry}"]').click()
        wait_until(lambda: driver.find_element("id", "title").text == channel, timeout=15)
        terminal.wait_for(lambda line: line.startswith(f":{hank}!") and f"JOIN {channel}" in line)

        # A private conversation, opened from the members list.
        wait_until(lambda: ivy in members(driver), timeout=10)
        driver.find_element("css selector", f'#members li[data-nick="{ivy}"] button').click()
        wait_until(lambda: driver.find_element("id", "title").text == ivy, timeout=10)
        wait_until(lambda: not driver.find_element("id", "message").get_attribute("disabled"), timeout=10)
        say(driver, "psst, ivy")
        terminal.wait_for(lambda line: line.startswith(f":{hank}!") and f"PRIVMSG {ivy} :psst, ivy" in line)
        terminal.send(f"PRIVMSG {hank} :psst, {hank}")
        wait_until(lambda: log_texts(driver) == ["psst, ivy", f"psst, {hank}"], timeout=15)

        # Logging out ends the IRC link and revokes the token; logging in makes a new one. The
        # account's user is always-on: it stays in the channel, away, and nobody sees it quit.
        token = session_token(driver)
        assert token
        driver.find_element("id", "logout-button").click()
        wait_until(lambda: driver.find_element("id", "auth").is_displayed(), timeout=10)
        # The page shows its form as the link closes: the gateway may answer a WHOIS sent at
        # once before it has seen the end. Asked again until it says the user is away.
        def away() -> bool:
            terminal.lines.clear()
            terminal.send(f"WHOIS {hank}")
            terminal.wait_for(lambda line: f" 318 {ivy} {hank} " in line)
            return any(f" 301 {ivy} {hank} " in line and "Disconnected" in line for line in terminal.lines)

        wait_until(away, timeout=15, interval=0.2)
        terminal.lines.clear()
        assert session_token(driver) is None
        assert stack.get("/api/users/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        # Every field has its label (the page's accessibility, checked in the browser).
        assert driver.execute_script(
            "return [...document.querySelectorAll('input')].every((i) => i.labels.length > 0)")
        driver.find_element("id", "account").clear()
        driver.find_element("id", "account").send_keys(hank)
        driver.find_element("id", "password").send_keys(PASSWORD)
        driver.find_element("id", "login-button").click()
        wait_online(driver, as_nick=hank)
        assert session_token(driver) not in (None, token)
        assert driver.find_element("id", "password").get_attribute("value") == ""

        # Back in the channel (its user never left it), then leaving it: the terminal sees
        # it go, the page drops it.
        show(driver, channel)
        wait_until(lambda: not driver.find_element("id", "message").get_attribute("disabled"), timeout=10)
        terminal.send("PING :settled")
        terminal.wait_for(lambda line: "PONG" in line and "settled" in line)
        assert not [line for line in terminal.lines if line.startswith(f":{hank}!") and " AWAY" not in line]
        driver.find_element("id", "part-button").click()
        terminal.wait_for(lambda line: line.startswith(f":{hank}!") and f"PART {channel}" in line)
        in_buffers = f'#buffers button[data-buffer="{channel}"]'
        wait_until(lambda: not driver.find_elements("css selector", in_buffers), timeout=10)
        assert console_errors(driver) == []
    finally:
        terminal.close()


def search_texts(driver: Any) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#search-list li .text')].map((e) => e.textContent)")


def test_the_search_box_finds_words_in_the_current_channel(stack, chat):
    driver, ports, url = chat
    channel = f"#{unique('search')}"
    hana, ivan = unique("hana"), unique("ivan")
    terminal = IrcClient(next(iter(ports.values())), ivan)
    try:
        terminal.join(channel)
        said = [f"Duck number {n}" for n in range(23)] + ["a goose", "the DUCK and the goose"]
        for text in said:
            terminal.send(f"PRIVMSG {channel} :{text}")
        terminal.send("PING :said")
        terminal.wait_for(lambda line: "PONG" in line and "said" in line, timeout=30)
        window_for(driver, url)
        register(driver, hana)
        join(driver, channel)
        box = driver.find_element("id", "search-q")
        assert box.is_displayed()

        box.send_keys("goose duck")
        driver.find_element("id", "search-button").click()
        wait_until(lambda: search_texts(driver) == ["the DUCK and the goose"], timeout=15)
        marked = driver.execute_script(
            "return [...document.querySelectorAll('#search-list mark')].map((e) => e.textContent)")
        assert marked == ["DUCK", "goose"]  # every searched word, as written

        box.clear()
        box.send_keys("duck")
        driver.find_element("id", "search-button").click()
        # Newest first, a page of 20, then the older ones on demand.
        newest = ["the DUCK and the goose", *[f"Duck number {n}" for n in range(22, 3, -1)]]
        wait_until(lambda: search_texts(driver) == newest, timeout=15)
        screenshot(driver, "web-search.png")
        more = driver.find_element("id", "search-more")
        assert more.is_displayed()
        more.click()
        wait_until(lambda: len(search_texts(driver)) == 24, timeout=15)
        assert search_texts(driver)[20:] == [f"Duck number {n}" for n in range(3, -1, -1)]
        assert not more.is_displayed()
        assert driver.find_element("id", "search-status").text == "24 messages found, newest first."

        box.clear()
        box.send_keys("xylophone")
        driver.find_element("id", "search-button").click()
        wait_until(lambda: driver.find_element("id", "search-status").text == "No message found.", timeout=15)
        assert console_errors(driver) == []
        box.clear()
        box.send_keys("!!!")  # no word: the service's 400 is shown, not a crash
        driver.find_element("id", "search-button").click()
        wait_until(lambda: "no word to search" in driver.find_element("id", "search-status").text, timeout=15)
        # The browser logs the refused request itself, and nothing else.
        assert all("status of 400" in line for line in console_errors(driver))

        driver.find_element("id", "search-close").click()
        assert not driver.find_element("id", "search-results").is_displayed()
        assert log_texts(driver)[-2:] == said[-2:]  # the conversation itself is untouched
    finally:
        terminal.close()


def log_in(driver: Any, account: str) -> None:
    driver.find_element("id", "account").send_keys(account)
    driver.find_element("id", "password").send_keys(PASSWORD)
    driver.find_element("id", "login-button").click()
    wait_online(driver)


def show(driver: Any, name: str) -> None:
    """Open a conversation from the list (joining a second channel leaves the first shown)."""
    # Found and clicked in one go: the list is drawn again whenever a count changes.
    wait_until(lambda: driver.execute_script(
        "const b = document.querySelector(`#buffers button[data-buffer=\"${arguments[0]}\"]`);"
        "if (b) b.click(); return Boolean(b);", name), timeout=15)
    wait_until(lambda: driver.find_element("id", "title").text == name, timeout=10)


def join_also(driver: Any, channel: str) -> None:
    driver.find_element("id", "join-name").send_keys(channel)
    driver.find_element("css selector", "#join-form button").click()
    show(driver, channel)


def unread(driver: Any, name: str) -> int:
    """The count beside a conversation in the list (0 when none is shown)."""
    return int(driver.execute_script(
        "const b = document.querySelector(`#buffers button[data-buffer=\"${arguments[0]}\"] .unread`);"
        "return b ? b.dataset.count : 0;", name))


def test_unread_counts_and_the_new_messages_line_follow_the_read_marker(stack, chat):
    driver, ports, url = chat
    room, other = f"#{unique('unread')}", f"#{unique('elsewhere')}"
    kim, lee = unique("kim"), unique("lee")
    terminal = IrcClient(next(iter(ports.values())), lee)
    try:
        terminal.join(room)
        # Device one reads the room up to its own message, then looks at another channel.
        one = window_for(driver, url)
        register(driver, kim)
        join(driver, room)
        say(driver, "read so far")
        wait_until(lambda: log_texts(driver) == ["read so far"], timeout=15)
        join_also(driver, other)
        # Device two: the same account in another window: one user (the same nick, not a
        # variant), on two devices, put in its user's channels at once.
        two = window_for(driver, url)
        log_in(driver, kim)
        wait_online(driver, as_nick=kim)
        show(driver, room)
        wait_until(lambda: log_texts(driver) == ["read so far"], timeout=15)
        show(driver, other)
        # What one device says, the other shows as its own.
        say(driver, "said on device two")
        driver.switch_to.window(one)
        wait_until(lambda: "said on device two" in log_texts(driver), timeout=15)
        driver.switch_to.window(two)

        terminal.send(f"PRIVMSG {room} :first unread", f"PRIVMSG {room} :second unread")
        for window in (one, two):
            driver.switch_to.window(window)
            wait_until(lambda: unread(driver, room) == 2, timeout=15)
            assert unread(driver, other) == 0

        # Device one opens the room: the line sits where its marker was, the count goes...
        driver.switch_to.window(one)
        show(driver, room)
        wait_until(lambda: log_texts(driver)[-1:] == ["second unread"], timeout=10)
        below = driver.execute_script(
            "const line = document.querySelector('#log li.new-line');"
            "return line ? line.nextElementSibling.querySelector('.text').textContent : null;")
        assert below == "first unread"
        assert unread(driver, room) == 0
        # ... and on device two too: the gateway told it (MARKREAD to the account's others).
        driver.switch_to.window(two)
        wait_until(lambda: unread(driver, room) == 0, timeout=15)
        # Read there, nothing is new any more after a reload of device two.
        driver.refresh()
        wait_online(driver)
        wait_until(lambda: driver.find_elements("css selector", f'#buffers button[data-buffer="{room}"]'),
                   timeout=15)
        terminal.send("PING :settled")
        terminal.wait_for(lambda line: "PONG" in line and "settled" in line)
        show(driver, room)
        wait_until(lambda: log_texts(driver)[-1:] == ["second unread"], timeout=15)
        assert not driver.find_elements("css selector", "#log li.new-line")
        for window in (one, two):
            driver.switch_to.window(window)
            assert console_errors(driver) == []
    finally:
        terminal.close()


def delete_buttons(driver: Any) -> list[str]:
    """The texts of the messages that show a delete control."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#log li')].filter((li) => li.querySelector('button.delete'))"
        ".map((li) => li.querySelector('.text').textContent)")


def delete(driver: Any, text: str) -> None:
    """Click the delete control of the message saying `text`, and confirm."""
    assert driver.execute_script(
        "const li = [...document.querySelectorAll('#log li')].find((li) =>"
        " li.querySelector('.text')?.textContent === arguments[0]);"
        "const button = li && li.querySelector('button.delete');"
        "if (button) setTimeout(() => button.click());"  # the confirm would block the script
        "return Boolean(button);", text)
    wait_until(lambda: _alert(driver), timeout=5)


def _alert(driver: Any) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert.accept()
    except NoAlertPresentException:
        return False
    return True


def deleted(driver: Any) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#log li.deleted .text')].map((e) => e.textContent)")


def infos(driver: Any) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#log li.info .text')].map((e) => e.textContent)")


def test_deleting_messages_with_message_redaction(stack, chat):
    driver, ports, url = chat
    channel = f"#{unique('redact')}"
    mia, ned, oli = unique("mia"), unique("ned"), unique("oli")
    terminal = IrcClient(next(iter(ports.values())), oli)
    try:
        terminal.join(channel)  # first in: the channel's operator
        a = window_for(driver, url)
        register(driver, mia)
        join(driver, channel)
        b = window_for(driver, url)
        register(driver, ned)
        join(driver, channel)

        # One's own message: a delete control for its author only; deleted, gone for everyone.
        say(driver, "oops, wrong channel")
        wait_until(lambda: delete_buttons(driver) == ["oops, wrong channel"], timeout=15)
        driver.switch_to.window(a)
        wait_until(lambda: "oops, wrong channel" in log_texts(driver), timeout=15)
        assert delete_buttons(driver) == []  # not hers, and she is no operator
        driver.switch_to.window(b)
        delete(driver, "oops, wrong channel")
        for window in (a, b):
            driver.switch_to.window(window)
            wait_until(lambda: deleted(driver) == ["message deleted"], timeout=15)
            assert "oops, wrong channel" not in log_texts(driver)
        stored = stack.get(f"/api/messages/{channel.replace('#', '%23')}",
                           headers={"Authorization": f"Bearer {session_token(driver)}"}).json()["messages"]
        assert "oops, wrong channel" not in [m["text"] for m in stored]

        # A channel operator may delete others' messages: mia is made one (the page follows MODE).
        terminal.send(f"PRIVMSG {channel} :buy cheap ducks", f"MODE {channel} +o {mia}")
        driver.switch_to.window(a)
        wait_until(lambda: "buy cheap ducks" in delete_buttons(driver), timeout=15)
        delete(driver, "buy cheap ducks")
        for window in (a, b):
            driver.switch_to.window(window)
            wait_until(lambda: f"message deleted by {mia}" in deleted(driver), timeout=15)
        assert delete_buttons(driver) == []  # ned is still no operator

        # A refusal is shown: a message the server does not hold any more (its id changed here).
        say(driver, "gone already")
        wait_until(lambda: delete_buttons(driver) == ["gone already"], timeout=15)
        # The id is changed and the control clicked in one task of the page, so that no
        # re-rendering of the log (another window's read marker, history) can put it back.
        driver.execute_script(
            "setTimeout(() => { const li = [...document.querySelectorAll('#log li')].find((li) =>"
            " li.querySelector('.text')?.textContent === 'gone already'); li.dataset.msgid = '1-0';"
            " li.querySelector('button.delete').click(); });")
        wait_until(lambda: _alert(driver), timeout=5)
        wait_until(lambda: any(t.startswith("Could not delete the message:") for t in infos(driver)),
                   timeout=15)
        assert "gone already" in log_texts(driver)
        for window in (a, b):
            driver.switch_to.window(window)
            assert console_errors(driver) == []
    finally:
        terminal.close()


def test_the_chat_fits_a_phone_screen(stack, chat):
    """390x844 CSS pixels (a common phone): nothing wider than the screen, every control of
    the conversation reachable and inside it."""
    driver, _, url = chat
    channel = f"#{unique('phone')}"
    window_for(driver, url)
    driver.set_window_size(390, 844)
    assert driver.execute_script("return window.innerWidth") <= 400
    register(driver, unique("pia"))
    join(driver, channel)
    say(driver, "a long line " * 20 + "and an unbreakable " + "a" * 80)
    wait_until(lambda: len(log_texts(driver)) == 1, timeout=15)
    overflow = driver.execute_script(
        "const w = document.documentElement.clientWidth;"
        # the skip link waits off screen until it has the focus, on purpose
        "return [...document.querySelectorAll('body *:not(.skip)')].filter((e) => e.offsetParent !== null)"
        ".filter((e) => { const r = e.getBoundingClientRect(); return r.right > w + 1 || r.left < -1; })"
        ".map((e) => `${e.tagName}#${e.id}.${e.className}`);")
    assert overflow == []
    assert driver.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    for control in ("message", "send-button", "search-q", "part-button", "log", "buffers", "members"):
        element = driver.find_element("id", control)
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        assert element.is_displayed(), control
        box = element.rect
        assert box["width"] > 0 and box["x"] >= 0 and box["x"] + box["width"] <= 391, (control, box)
    screenshot(driver, "web-chat-phone.png")
    assert console_errors(driver) == []


# A stand-in for the browser's Notification API that records what the page does with it (a
# headless browser shows nothing); the permission is granted once asked.
FAKE_NOTIFICATIONS = """
window.asked = 0; window.shown = [];
window.Notification = class {
  static permission = 'default';
  static async requestPermission() { window.asked += 1; this.permission = 'granted'; return 'granted'; }
  constructor(title, options) { window.shown.push([title, options.body]); }
  close() {}
};
"""


def test_desktop_notifications_for_mentions_and_private_messages(stack, chat):
    driver, ports, url = chat
    here, elsewhere = f"#{unique('notify')}", f"#{unique('quiet')}"
    quinn, rob = unique("quinn"), unique("rob")
    terminal = IrcClient(next(iter(ports.values())), rob)
    try:
        terminal.join(here)
        terminal.join(elsewhere)
        window_for(driver, url)
        driver.execute_script(FAKE_NOTIFICATIONS)
        register(driver, quinn)
        join(driver, elsewhere)
        join_also(driver, here)
        button = driver.find_element("id", "notify-button")
        assert button.is_displayed() and button.text == "Notify me of mentions"
        terminal.send(f"PRIVMSG {elsewhere} :{quinn}: before asking")
        wait_until(lambda: unread(driver, elsewhere) == 1, timeout=15)
        assert driver.execute_script("return [window.asked, window.shown]") == [0, []]  # never by itself

        button.click()
        wait_until(lambda: driver.find_element("id", "notify-button").text == "Notifications on", timeout=5)
        assert driver.execute_script("return window.asked") == 1
        terminal.send(f"PRIVMSG {elsewhere} :no mention here",
                      f"PRIVMSG {elsewhere} :hey {quinn.upper()}, look",
                      f"PRIVMSG {quinn} :a private word")
        wait_until(lambda: len(driver.execute_script("return window.shown")) == 2, timeout=15)
        assert driver.execute_script("return window.shown") == [
            [f"{rob} in {elsewhere}", f"hey {quinn.upper()}, look"], [f"{rob} (private)", "a private word"]]
        assert console_errors(driver) == []
    finally:
        terminal.close()


def parents(driver: Any) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#log li .parent')].map((e) => e.textContent)")


def test_replies_are_sent_and_shown(stack, chat):
    driver, ports, url = chat
    channel = f"#{unique('reply')}"
    sam, tess = unique("sam"), unique("tess")
    terminal = IrcClient(next(iter(ports.values())), tess)
    try:
        terminal.send("CAP REQ :message-tags")
        terminal.wait_for(lambda line: " ACK " in line and "message-tags" in line)
        terminal.join(channel)
        window_for(driver, url)
        register(driver, sam)
        join(driver, channel)
        terminal.send(f"PRIVMSG {channel} :who has the ducks?")
        wait_until(lambda: log_texts(driver) == ["who has the ducks?"], timeout=15)
        question = msgids(driver)[0]
        press_on_line(driver, question, "reply")
        assert f"Replying to {tess}: who has the ducks?" in driver.find_element("id", "reply-bar").text
        say(driver, "I do")
        terminal.wait_for(lambda line: f"+draft/reply={question}" in line and line.endswith(" :I do"))
        wait_until(lambda: parents(driver) == [f"↪ in reply to {tess}: who has the ducks?"], timeout=15)
        assert not driver.find_element("id", "reply-bar").is_displayed()
        answer = msgids(driver)[-1]
        terminal.send(f"@+draft/reply={answer} PRIVMSG {channel} :thanks")
        wait_until(lambda: parents(driver)[-1:] == [f"↪ in reply to {sam}: I do"], timeout=15)
        assert console_errors(driver) == []
    finally:
        terminal.close()


def press_on_line(driver: Any, msgid: str, button: str) -> None:
    """Click the `button` (its class) of the message `msgid`'s line. The line may be drawn again
    (history merged in) between finding it and the click: it is then found again."""
    from selenium.common.exceptions import StaleElementReferenceException

    wait_until(lambda: driver.find_element(
        "css selector", f'#log li[data-msgid="{msgid}"] button.{button}').click() is None,
        timeout=10, ignore=(StaleElementReferenceException,))


def reactions(driver: Any) -> list[str]:
    """The reactions drawn under the messages (the quick 👍 offered alone aside)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#log button.react')].map((e) => e.textContent)"
        ".filter((t) => t.includes(' '))")


def test_reactions_are_sent_and_shown_and_drawn_again_from_the_history(stack, chat):
    driver, ports, url = chat
    channel = f"#{unique('react')}"
    uma, vic = unique("uma"), unique("vic")
    terminal = IrcClient(next(iter(ports.values())), vic)
    try:
        terminal.send("CAP REQ :message-tags")
        terminal.wait_for(lambda line: " ACK " in line and "message-tags" in line)
        terminal.join(channel)
        window_for(driver, url)
        register(driver, uma)
        join(driver, channel)
        terminal.send(f"PRIVMSG {channel} :ducks for everyone")
        wait_until(lambda: log_texts(driver) == ["ducks for everyone"], timeout=15)
        msgid = msgids(driver)[0]
        press_on_line(driver, msgid, "react")
        terminal.wait_for(lambda line: "+draft/react=👍" in line and f"+draft/reply={msgid}" in line
                          and f"TAGMSG {channel}" in line)
        wait_until(lambda: reactions(driver) == ["👍 1"], timeout=10)
        terminal.send(f"@+draft/react=🦆;+draft/reply={msgid} TAGMSG {channel}",
                      f"@+draft/react=👍;+draft/reply={msgid} TAGMSG {channel}")
        wait_until(lambda: sorted(reactions(driver)) == ["👍 2", "🦆 1"], timeout=15)
        terminal.send(f"@+draft/unreact=🦆;+draft/reply={msgid} TAGMSG {channel}")
        wait_until(lambda: reactions(driver) == ["👍 2"], timeout=15)
        # Pressed, the page's own reaction is taken back.
        press_on_line(driver, msgid, "react")
        terminal.wait_for(lambda line: "+draft/unreact=👍" in line and f"+draft/reply={msgid}" in line)
        wait_until(lambda: reactions(driver) == ["👍 1"], timeout=10)
        # A reload draws them from the history (draft/event-playback), as they stand, and who
        # joined before the message.
        driver.refresh()
        wait_online(driver)
        wait_until(lambda: log_texts(driver) == ["ducks for everyone"], timeout=20)
        wait_until(lambda: reactions(driver) == ["👍 1"], timeout=10)
        assert infos(driver)[:2] == [f"{vic} joined", f"{uma} joined"]
        assert console_errors(driver) == []
    finally:
        terminal.close()


SHIFT, ENTER = "\ue008", "\ue007"  # WebDriver's key codes (selenium's Keys)


def shown_lines(driver: Any) -> int:
    """How many lines the newest message's text takes on the screen."""
    return driver.execute_script(
        "const e = [...document.querySelectorAll('#log li.privmsg .text')].at(-1);"
        "if (!e) return 0; const range = document.createRange(); range.selectNodeContents(e);"
        "return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size")


def test_a_multiline_message_typed_with_shift_enter_goes_as_one_batch_and_shows_its_breaks(stack, chat):
    driver, ports, url = chat
    channel = f"#{unique('lines')}"
    gina, hal = unique("gina"), unique("hal")
    terminal = IrcClient(next(iter(ports.values())), hal)
    try:
        terminal.send("CAP REQ :message-tags batch draft/multiline")
        terminal.wait_for(lambda line: " ACK " in line and "draft/multiline" in line)
        terminal.join(channel)
        window_for(driver, url)
        register(driver, gina)
        join(driver, channel)
        box = driver.find_element("id", "message")
        # Shift+Enter is a line break in the box, not a send; Enter sends.
        for part in ("first line", None, "second line", None, None, "after a blank line"):
            if part is None:
                box.send_keys(SHIFT, ENTER)  # the modifier is let go at the end of each call
            else:
                box.send_keys(part)
        typed = "first line\nsecond line\n\nafter a blank line"
        assert box.get_attribute("value") == typed
        terminal.read()
        assert not any(f"PRIVMSG {channel} " in line for line in terminal.lines)  # nothing sent yet
        box.send_keys(ENTER)
        end = terminal.wait_for(lambda line: " BATCH -" in line)
        start = next(i for i, line in enumerate(terminal.lines) if " BATCH +" in line)
        batch = terminal.lines[start:terminal.lines.index(end) + 1]
        ref = batch[0].split("BATCH +")[1].split(" ")[0]
        assert batch[0].endswith(f" draft/multiline {channel}") and f":{gina}!" in batch[0]
        assert [line.split(f"PRIVMSG {channel} ", 1)[1] for line in batch[1:-1]] == [
            ":first line", ":second line", ":", ":after a blank line"]
        assert all(line.startswith(f"@batch={ref} ") for line in batch[1:-1])
        assert box.get_attribute("value") == ""
        wait_until(lambda: log_texts(driver) == [typed], timeout=15)
        assert shown_lines(driver) == 4  # the line breaks are drawn, the blank line included

        # The terminal's batch, with a line it split itself (draft/multiline-concat): one message.
        terminal.send(f"BATCH +t draft/multiline {channel}", f"@batch=t PRIVMSG {channel} :from the terminal",
                      f"@batch=t PRIVMSG {channel} :second ",
                      f"@batch=t;draft/multiline-concat PRIVMSG {channel} :half", "BATCH -t")
        theirs = "from the terminal\nsecond half"
        wait_until(lambda: log_texts(driver) == [typed, theirs], timeout=15)
        assert shown_lines(driver) == 2
        ids = msgids(driver)
        assert len(ids) == len(set(ids)) == 2

        # After a reload the history brings both back as they were, each once.
        driver.refresh()
        wait_online(driver)
        wait_until(lambda: log_texts(driver) == [typed, theirs], timeout=20)
        assert msgids(driver) == ids and shown_lines(driver) == 2
        stored = stack.get(f"/api/messages/{channel.replace('#', '%23')}",
                           headers={"Authorization": f"Bearer {session_token(driver)}"}).json()["messages"]
        assert [(m["id"], m["text"]) for m in stored] == list(zip(ids, [typed, theirs], strict=True))
        assert stored[1]["lines"] == [{"text": "from the terminal"}, {"text": "second "},
                                      {"text": "half", "concat": True}]
        assert console_errors(driver) == []
    finally:
        terminal.close()
